-- Phase 2: does a long soak keep memory flat (±50 MB over 48 h) with zero crashes?
--
-- Keeps a steady load (closed loop: N users, each sending its next request when the last one is
-- answered) on the in-process engine or an OpenAI-compatible server, samples VRAM (the engine's
-- own accounting and the driver's heap usage), RSS, CPU and tokens/s every few seconds into the
-- results store (run phase "phase2-soak"), checkpoints every hour, and judges each memory kind by
-- the fitted slope after warm-up with a 95 % confidence interval: leak / stable / inconclusive.
-- Ctrl-C ends the soak cleanly (summary printed, run "interrupted"); --resume continues a killed
-- or interrupted soak in the same run.
--
--   rawrxd scripts/phase2_soak.lua --hours 48 --model models/SmolLM2-135M-Instruct.Q4_1.gguf
--   rawrxd scripts/phase2_soak.lua --target http://127.0.0.1:8080 --hours 48 --concurrency 8
--   rawrxd scripts/phase2_soak.lua --hours 48 --resume           # after a crash or Ctrl-C
--
-- Flags:
--   --target engine|URL   the in-process engine (default) or an OpenAI-compatible server
--   --model PATH          the model to load (engine target; default: the SmolLM2 test model)
--   --backend B           cpu, vulkan or auto (engine target; default auto)
--   --concurrency N       closed-loop users (default 4)
--   --hours H | --minutes M   soak time (default 48 h)
--   --max-tokens N        tokens generated per request (default 64; EOS is ignored)
--   --probe-interval S    seconds between samples (default 5)
--   --checkpoint S        seconds between checkpoints (default 3600)
--   --warmup S            seconds left out of the leak fit after a (re)start (default 600)
--   --threshold MB_PER_H  leak threshold (default 50 MB / 48 h = 1.04 MB/h)
--   --name NAME           soak run name (default "soak"); --resume picks the newest interrupted
--                         run of that name; --resume ID resumes run ID
--   --ctx N, --threads N  engine context per user and CPU threads
--   --model-name NAME     the `model` field sent to an HTTP target (default "default")
--   --db PATH             results database (default: $RAWRXD_RESULTS or results/rawrxd.sqlite)
--   --rules FILE          alert rules (rawrxd.alerts; default scripts/alerts/default.lua,
--                         hot-reloaded when edited); --no-rules turns alerting off
--   --webhook-env VAR     environment variable holding a chat webhook URL (the URL is never
--                         stored or logged); --webhook-kind slack|discord|generic (default slack)
--   --alerts FILE         a Lua file returning function(sample) called at each sample
--                         (hot-reloaded when edited)
--   --quiet               no live status line
-- Small settings for CI: --minutes 0.2 --probe-interval 1 --checkpoint 5 --warmup 2
--   --concurrency 1 --max-tokens 4

local rx = require "rawrxd"
local a = rx.args

local target = a.target or "engine"
local model = a.model or "models/SmolLM2-135M-Instruct.Q4_1.gguf"
local users = math.tointeger(a.concurrency) or 4
local max_tokens = math.tointeger(a.max_tokens) or 64

local request = require("phase").request_fn(max_tokens)

local engine
if target == "engine" then
  engine = rx.pool.engine {
    model = model, backend = a.backend or "auto", slots = users,
    ctx = math.tointeger(a.ctx) or 512, threads = math.tointeger(a.threads),
  }
end
if a.db then rx.results.open(a.db) end

local resume = nil
if a.resume == true then resume = true elseif a.resume then resume = math.tointeger(a.resume) end

local alerts = nil
if a.alerts then
  -- dofile each time: the file is re-read at every sample's safe point, so edits apply live.
  alerts = function(s) local f = dofile(a.alerts); if f then return f(s) end end
end

-- Alert rules over the samples (transitions stored as `alert` events in the soak's run and sent
-- to the webhook, if one is named).
local rules = nil
if not a.no_rules then
  local hooks = {}
  if a.webhook_env then
    hooks[1] = { kind = a.webhook_kind or "slack", url_env = a.webhook_env, name = "soak" }
  end
  rules = rx.alerts.new { rules = a.rules or "scripts/alerts/default.lua", webhooks = hooks }
end

local duration
if a.minutes then duration = { minutes = tonumber(a.minutes) }
else duration = { hours = tonumber(a.hours) or 48 } end

rx.log.info(string.format("phase2 soak on %s: %d users, %s", engine and tostring(engine) or target,
  users, duration.minutes and (duration.minutes .. " min") or (duration.hours .. " h")))

local s = rx.soak.run {
  target = engine or target, model_name = a.model_name,
  concurrency = users, request = request, timeout = 600,
  hours = duration.hours, minutes = duration.minutes,
  probe_interval_s = tonumber(a.probe_interval), checkpoint_s = tonumber(a.checkpoint),
  warmup_s = tonumber(a.warmup), leak_threshold_mb_per_h = tonumber(a.threshold),
  name = a.name or "soak", resume = resume, progress = not a.quiet,
  on_sample = function(sample)
    if sample.checkpoint then
      print(string.format("@checkpoint %d run %d elapsed %.1f", sample.checkpoint, sample.run_id,
        sample.elapsed_s))
      io.stdout:flush()
    end
    if rules then
      for _, t in ipairs(rules:observe(sample)) do
        local kind = tostring(t.kind)
        if kind ~= "pending" and kind ~= "cancelled" then
          rx.log.warn(string.format("alert %s %s: %s", t.rule, kind, t.message))
        end
      end
    end
    if alerts then return alerts(sample) end
  end,
}
if rules then rules:flush(10) end

print(s.table)
io.stdout:flush()
local leaked = false
for _, v in pairs(s.leak) do
  if v.verdict == "leak" then leaked = true end
end
if s.status ~= "ok" then return 2 end
return (leaked or s.requests_failed > 0) and 1 or 0
