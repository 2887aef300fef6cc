-- Fault injection through rawrxd.pool.run: a device loss (the engine is rebuilt), malformed
-- requests and a cancellation, with retries; every request ends as exactly one outcome.
--     rawrxd examples/lua/faults.lua [--backend auto|cpu|vulkan] [--requests 12]
local rx = require "rawrxd"

local model = os.getenv("RAWRXD_MODEL") or "models/SmolLM2-135M-Instruct.Q4_1.gguf"
local n = math.tointeger(tonumber(rx.args.requests)) or 12
local r = rx.pool.run {
  target = "engine", model = model, backend = rx.args.backend or "auto", slots = 1, ctx = 128,
  concurrency = 1, requests = n,
  request = function(i) return { prompt = "The capital of France is", max_tokens = 3, temperature = 0 } end,
  faults = {
    { kind = "device_loss", at_request = n // 2 },
    { kind = "malformed", every = 5 },
    { kind = "cancel", at_request = 2, after_tokens = 1 },
    seed = 1,
  },
  retry = { max_attempts = 3, backoff_ms = 10 },
  on_device_loss = "reinit",
}
local o = r.outcomes
print(r.faults.table)
print(("%d sent: %d ok, %d retried_ok, %d failed, %d cancelled; loss %.1f %%"):format(
  r.faults.sent, o.ok, o.retried_ok, o.failed, o.cancelled, r.loss_pct))
