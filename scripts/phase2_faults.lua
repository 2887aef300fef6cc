-- Phase 2: under injected faults, how many requests are lost and how fast does the engine recover?
--
-- Runs a closed loop against the in-process engine while a fault plan injects a device loss
-- (the engine is torn down and reloaded from the model file), refused KV allocations, stalled
-- steps (caught by the step timeout), client cancellations, malformed requests and slow
-- clients; transient failures are retried. Every request ends as exactly one of ok, retried_ok,
-- failed or cancelled (with a reason); request loss = failed / sent. Prints the outcome counts,
-- loss %, recovery time of each device loss, latency percentiles with failures (at their time to
-- failure) and without, and pass/fail against the target of < 5 % request loss. Everything is
-- stored in the results store (run phase "phase2", name "faults"; one event per injected fault).
--
--   rawrxd scripts/phase2_faults.lua
--   rawrxd scripts/phase2_faults.lua --model models/x.gguf --backend vulkan --requests 1000
--
-- Flags:
--   --model PATH          the model (default: the SmolLM2 test model)
--   --backend B           cpu, vulkan or auto (default auto)
--   --requests N          requests to send (default 200)
--   --concurrency N       virtual users (default 4; also the engine's slots)
--   --max-tokens N        tokens per request (default 16; EOS is ignored)
--   --ctx N, --threads N  context per sequence (default 512) and CPU threads
--   --seed N              seed of the probabilistic faults (default 1)
--   --step-timeout-ms MS  a running request without a token for this long fails (default 2000)
--   --attempts N          attempts per request (default 3; 1 = no retry)
--   --backoff-ms MS       wait before the first retry, doubled per retry (default 50)
--   --on-device-loss P    reinit (default) or give_up
--   --max-loss PCT        the pass mark (default 5)
--   --db PATH             results database (default: $RAWRXD_RESULTS or results/rawrxd.sqlite)
--   --no-store            do not record anything
-- Small settings for CI: --requests 30 --concurrency 2 --max-tokens 4 --ctx 128 --step-timeout-ms 1000
--
-- The plan scales with --requests: one device loss half-way, a refused KV slot every
-- max(5, N/5) requests, a stalled step every max(7, N/3), a malformed request every max(21, N/4)
-- (under 5 % of the load), a slow client every 7th request, cancellations with probability 0.05.
-- Exit status: 0 when request loss is under the mark, else 1.

local rx = require "rawrxd"
local a = rx.args

local model = a.model or "models/SmolLM2-135M-Instruct.Q4_1.gguf"
local requests = math.tointeger(tonumber(a.requests)) or 200
local users = math.tointeger(tonumber(a.concurrency)) or 4
local max_tokens = math.tointeger(tonumber(a.max_tokens)) or 16
local seed = math.tointeger(tonumber(a.seed)) or 1
local step_timeout_ms = tonumber(a.step_timeout_ms) or 2000
local attempts = math.tointeger(tonumber(a.attempts)) or 3
local backoff_ms = tonumber(a.backoff_ms) or 50
local policy = a.on_device_loss or "reinit"
local max_loss = tonumber(a.max_loss) or 5
if requests < 2 then error("--requests: at least 2") end

local faults = {
  { kind = "device_loss", at_request = requests // 2 },
  { kind = "alloc_failure", every = math.max(5, requests // 5) },
  { kind = "step_timeout", every = math.max(7, requests // 3), stall_ms = 3 * step_timeout_ms },
  { kind = "malformed", every = math.max(21, requests // 4) },
  { kind = "slow_client", every = 7, delay_ms = 20 },
  { kind = "cancel", probability = 0.05 },
  seed = seed,
  step_timeout_ms = step_timeout_ms,
}


local store = not a.no_store
if store then
  if a.db then rx.results.open(a.db) end
  rx.results.begin_run {
    phase = "phase2", name = "faults", model = model,
    params = { requests = requests, concurrency = users, max_tokens = max_tokens, seed = seed,
               step_timeout_ms = step_timeout_ms, attempts = attempts, backoff_ms = backoff_ms,
               on_device_loss = policy, max_loss_pct = max_loss },
  }
end

rx.log.info(string.format("phase2 faults: %d requests, %d users, %d tokens each, %s on device loss",
  requests, users, max_tokens, policy))

local r = rx.pool.run {
  target = "engine", model = model, backend = a.backend or "auto",
  slots = users, ctx = math.tointeger(tonumber(a.ctx)) or 512, threads = math.tointeger(tonumber(a.threads)),
  concurrency = users, requests = requests, timeout = 600,
  request = require("phase").request_fn(max_tokens),
  faults = faults,
  retry = { max_attempts = attempts, backoff_ms = backoff_ms },
  on_device_loss = policy,
  name = "phase2_faults",
}

local f = r.faults
local o = f.outcomes
local pass = f.loss_pct < max_loss
print(f.table)

local function reasons(t)
  local out = {}
  for k, n in pairs(t) do out[#out + 1] = k .. " " .. n end
  table.sort(out)
  return #out > 0 and table.concat(out, ", ") or "-"
end

rx.report.table {
  title = "Phase 2 faults: outcomes (" .. r.target .. ")",
  columns = { "outcome", "requests", "reasons" },
  rows = {
    { outcome = "ok", requests = o.ok, reasons = "-" },
    { outcome = "retried_ok", requests = o.retried_ok, reasons = reasons(f.retried_by_reason) },
    { outcome = "failed", requests = o.failed, reasons = reasons(f.failed_by_reason) },
    { outcome = "cancelled", requests = o.cancelled, reasons = reasons(f.cancelled_by_reason) },
    { outcome = "sent", requests = f.sent, reasons = "injected: " .. reasons(f.injected) },
  },
}

-- JSON nulls arrive as a null light userdata, not nil.
local function given(v, default)
  if type(v) == "userdata" or v == nil then return default end
  return v
end

local losses = {}
for k, l in ipairs(f.device_losses) do
  losses[#losses + 1] = { loss = k, generation = l.generation, lost_s = l.lost_s,
    recovery_ms = given(l.recovery_ms, -1), load_failures = l.load_failures, error = given(l.error, "-") }
end
if #losses > 0 then
  rx.report.table {
    title = "Device losses (recovery: loss → first token served by the rebuilt engine; -1: none)",
    columns = { "loss", "generation", { name = "lost at s", key = "lost_s", decimals = 3 },
                { name = "recovery ms", key = "recovery_ms", decimals = 1 }, "load_failures", "error" },
    rows = losses,
  }
end

local rows = {}
for _, p in ipairs { { "e2e, failures at time to failure", f.e2e_all }, { "e2e, successful only", f.e2e_ok },
                     { "ttft, successful only", f.ttft_ok } } do
  local s = p[2]
  rows[#rows + 1] = { latency = p[1], n = s.count, p50 = s.p50, p95 = s.p95, p99 = s.p99, max = s.max }
end
rx.report.table {
  title = "Failure-adjusted latency (ms)",
  columns = { "latency", "n", { name = "p50", decimals = 1 }, { name = "p95", decimals = 1 },
              { name = "p99", decimals = 1 }, { name = "max", decimals = 1 } },
  rows = rows,
}

local verdict = string.format("request loss %.2f %% (%d of %d) — %s (target < %g %%)",
  f.loss_pct, o.failed, f.sent, pass and "PASS" or "FAIL", max_loss)
print(verdict)
if store then
  rx.results.record("phase2_faults.pass", pass and 1 or 0, "bool", { max_loss_pct = max_loss })
  rx.results.end_run()
end
return pass and 0 or 1
