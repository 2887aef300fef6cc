-- rawrxd.engine: load a model and generate text.
--     rawrxd examples/lua/engine.lua [--backend auto|cpu|vulkan] [--n 32] [--prompt TEXT]
local rx = require "rawrxd"

local eng = rx.engine.load { backend = rx.args.backend or "auto", ctx = 256 }
print(eng)
local out = eng:generate {
  prompt = rx.args.prompt or "The capital of France is",
  n = rx.args.n or 32,
  temp = 0, -- greedy: the same text every run
  on_token = function(piece) io.write(piece) io.flush() end,
}
print(("\n%d tokens, prefill %.1f tok/s, decode %.1f tok/s, stopped by %s"):format(
  out.tokens, out.pp_tps, out.tg_tps, out.stop))
eng:unload()
