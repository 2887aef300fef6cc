-- rawrxd.model.synth: a synthetic model of any shape (seeded random weights), then its speed.
--     rawrxd examples/lua/synth.lua [--shape llama-1b] [--type q4_k_m] [--gen 32]
local rx = require "rawrxd"
local a = rx.args

local m = rx.model.synth { shape = a.shape or "llama-1b", type = a.type or "q4_k_m" }
local info = m:info()
print(("%s: %d layers, width %d, %.2f GiB, %.2f bits/weight"):format(
  m.path, info.hparams.n_layer, info.hparams.n_embd, info.file_size / 2 ^ 30, info.bpw))
local eng = rx.engine.load { model = m, backend = a.backend or "auto", ctx = 128 }
local r = eng:bench { prompt = a.prompt or 64, gen = a.gen or 32, repeats = a.repeats or 3 }
print(("pp %.1f tok/s, tg %.2f tok/s, p95 %.1f ms/token"):format(r.pp_tps, r.tg_tps, r.ms_p95))
