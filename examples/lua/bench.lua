-- rawrxd.bench: llama-bench-style pp/tg numbers for one variant.
--     rawrxd examples/lua/bench.lua [--variant q8_0] [--prompt 512] [--gen 128] [--repeats 5]
local rx = require "rawrxd"
local fmt = require "fmt"
local a = rx.args

local eng = rx.engine.load { backend = a.backend or "auto", variant = a.variant,
                             ctx = math.max(a.prompt or 512, a.gen or 128) }
local r = rx.bench.run(eng, { prompt = a.prompt or 512, gen = a.gen or 128,
                              repeats = a.repeats or 5, warmup = 1 })
print(("%s on %s"):format(r.variant, r.device))
print(("pp%d: %s tok/s   tg%d: %s tok/s"):format(r.prompt, fmt.pm(r.pp_tps, r.pp_sd, 1),
                                                  r.gen, fmt.pm(r.tg_tps, r.tg_sd, 2)))
print(("ms/token p50 %.2f  p95 %.2f  p99 %.2f   memory %s"):format(
  r.ms_p50, r.ms_p95, r.ms_p99, fmt.bytes(r.vram.total)))
if r.bandwidth then
  print(("effective bandwidth %.1f GB/s (%s of peak)"):format(r.bandwidth / 1e9, fmt.pct(
    r.peak_pct and r.peak_pct / 100)))
end
