-- Hot reload of a hybrid scheme: edit the scheme file while this runs, and the changed tensors
-- are re-quantized and swapped into the loaded engine between two bench repetitions.
--     rawrxd examples/lua/hot_scheme.lua [--scheme schemes/hybrid_example.lua] [--rounds 100]
local rx = require "rawrxd"
local a = rx.args

local eng = rx.engine.load { backend = a.backend or "auto", ctx = 128,
                             scheme = a.scheme or "schemes/hybrid_example.lua", quiet = true }
rx.on_reload(function(info)
  print(("generation %d: reloaded %s"):format(info.generation, table.concat(info.files, ", ")))
end)
for round = 1, a.rounds or 100 do
  local r = eng:bench { prompt = 16, gen = 8, repeats = 2, warmup = 0, progress = false }
  print(("round %d, generation %d: tg %.2f tok/s, ffn_down of layer 0 is %s"):format(
    round, rx.generation(), r.tg_tps, eng:types()["blk.0.ffn_down.weight"]))
  if rx.reload_error() then print("last edit rejected: " .. rx.reload_error()) end
  rx.time.sleep(a.pause or 1)
end
