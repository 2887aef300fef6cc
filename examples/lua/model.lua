-- rawrxd.model: open a GGUF file and look inside.
--     rawrxd examples/lua/model.lua [--model FILE]
local rx = require "rawrxd"
local fmt = require "fmt"

local m = rx.model.open(rx.args.model or rx.model.default())
local info = m:info()
print(("%s: %s, %s parameters, %s, %.2f bits/weight"):format(
  m.path, info.arch, info.n_params, fmt.bytes(info.file_size), info.bpw))
local hp = info.hparams
print(("layers %d, width %d, heads %d/%d, ffn %d, vocab %d"):format(
  hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff, hp.n_vocab))
local rows = {}
for ty, c in pairs(info.types) do rows[#rows + 1] = { ty, c.count, fmt.bytes(c.bytes) } end
table.sort(rows, function(a, b) return a[1] < b[1] end)
print(fmt.text { columns = { "type", "tensors", "bytes" }, rows = rows })
