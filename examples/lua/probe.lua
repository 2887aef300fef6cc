-- rawrxd.probe: what this process and a loaded engine hold.
--     rawrxd examples/lua/probe.lua [--backend auto|cpu|vulkan]
local rx = require "rawrxd"
local fmt = require "fmt"

local before = rx.probe.rss()
local eng = rx.engine.load { backend = rx.args.backend or "auto", ctx = 256 }
local v = rx.probe.vram(eng)
print(("engine: weights %s, KV cache %s, scratch %s (%s)"):format(fmt.bytes(v.weights),
  fmt.bytes(v.kv_cache), fmt.bytes(v.scratch), v.on_device and "device" or "host memory"))
for i, h in ipairs(v.heaps) do
  print(("heap %d: %s%s, budget %s, usage %s"):format(i - 1, fmt.bytes(h.size),
    h.device_local and " device-local" or "", fmt.bytes(h.budget), fmt.bytes(h.usage)))
end
local m = rx.probe.memory()
print(("process RSS %s (+%s since start), machine %s of %s available"):format(
  fmt.bytes(m.rss), fmt.bytes((m.rss or 0) - (before or 0)), fmt.bytes(m.available),
  fmt.bytes(m.total)))
local c = rx.probe.cpu()
print(("CPU: process %.0f %%, system %.0f %% over %d cores"):format(c.process or 0, c.system or 0,
                                                                     c.cores or 0))
for _, g in ipairs(rx.probe.gpu()) do
  print(("%s: VRAM used %s of %s"):format(g.card, fmt.bytes(g.vram_used), fmt.bytes(g.vram_total)))
end
