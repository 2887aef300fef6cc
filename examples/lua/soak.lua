-- rawrxd.soak: a short soak of the in-process engine — steady load, a sample every second, the
-- leak verdict per memory kind — and each sample handed to the alert rules.
--     rawrxd examples/lua/soak.lua [--backend auto|cpu|vulkan] [--seconds 6]
local rx = require "rawrxd"

local model = os.getenv("RAWRXD_MODEL") or "models/SmolLM2-135M-Instruct.Q4_1.gguf"
local eng = rx.pool.engine { model = model, backend = rx.args.backend or "auto", slots = 1, ctx = 128 }
local rules = rx.alerts.new { rules = "scripts/alerts/default.lua" }
local s = rx.soak.run {
  target = eng, concurrency = 1, duration = tonumber(rx.args.seconds) or 6,
  probe_interval_s = 1, warmup_s = 2, checkpoint_s = 3, progress = false,
  request = function(i) return { prompt = "Count to ten:", max_tokens = 4, temperature = 0 } end,
  on_sample = function(sample)
    for _, t in ipairs(rules:observe(sample)) do print("alert", t.rule, t.kind, t.message) end
  end,
}
print(s.table)
print(("soak run %d: %d requests ok, %d failed, %d samples, %d checkpoints"):format(
  s.run_id, s.requests_ok, s.requests_failed, s.samples, s.checkpoints))
