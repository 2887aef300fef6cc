-- rawrxd.quant: resolve a hybrid scheme for a model, and quantize a file.
--     rawrxd examples/lua/quant.lua [--scheme schemes/hybrid_example.lua] [--out FILE.gguf]
local rx = require "rawrxd"
local fmt = require "fmt"
local a = rx.args

local r = rx.quant.scheme(a.scheme or "schemes/hybrid_example.lua")
local rows = {}
for ty, n in pairs(r.counts) do rows[#rows + 1] = { ty, n } end
table.sort(rows, function(x, y) return x[1] < y[1] end)
print(("%s on %s: %d rules"):format(r.path, r.model, r.rules))
print(fmt.text { columns = { "type", "tensors" }, rows = rows })
if a.out then
  local s = rx.quant.quantize { input = rx.model.default(), output = a.out,
                                scheme = a.scheme or "schemes/hybrid_example.lua",
                                allow_requantize = true }
  print(("%s: %s → %s (%.2f bits/weight) in %.1f s"):format(
    s.output, fmt.bytes(s.file_size_in), fmt.bytes(s.file_size_out), s.bpw, s.seconds))
end
