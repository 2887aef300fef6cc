-- Phase 2: does single-stream speed survive concurrent users?
--
-- For each stream count (closed loop: N users, each sending its next request as soon as the last
-- one is answered) this measures TTFT and ITL percentiles and aggregate output tokens/s, and the
-- scaling efficiency  tps(N) / (N × tps(1))  against one stream. Every level is stored in the
-- results store (run phase "phase2", measurements tagged streams=N, histograms per level).
--
--   rawrxd scripts/phase2_concurrency.lua --model models/SmolLM2-135M-Instruct.Q4_1.gguf
--   rawrxd scripts/phase2_concurrency.lua --target http://127.0.0.1:8080 --streams 1,4,16
--
-- Flags:
--   --target engine|URL   the in-process engine (default) or an OpenAI-compatible server
--   --model PATH          the model to load (engine target; default: the SmolLM2 test model)
--   --backend B           cpu, vulkan or auto (engine target; default auto)
--   --streams LIST        stream counts, comma-separated (default 1,2,4,8,12,16)
--   --duration S          seconds per level (default 30); or
--   --requests N          requests per level instead of a duration
--   --max-tokens N        tokens generated per request (default 64; EOS is ignored)
--   --endpoint E          completions (default) or chat
--   --ctx N, --threads N  engine context per stream and CPU threads
--   --prefill-chunk N     prompt tokens the scheduler feeds per step (engine target; default
--                         256; while other streams decode, also at most what fills the
--                         Vulkan engine's 16-row pass): smaller keeps decode steps short while
--                         prompts arrive (ITL), larger gets prompts through sooner (TTFT)
--   --model-name NAME     the `model` field sent to an HTTP target (default "default")
--   --db PATH             results database (default: $RAWRXD_RESULTS or results/rawrxd.sqlite)
--   --no-store            do not record anything
--   --plot PREFIX         write PREFIX_tps.{svg,png} and PREFIX_latency.{svg,png}
--                         (default results/phase2_concurrency); --no-plot skips them
-- Small settings for CI: --streams 1,2 --requests 4 --max-tokens 4

local rx = require "rawrxd"
local a = rx.args

local function list_of_ints(v, default)
  if v == nil then return default end
  local out = {}
  for item in tostring(v):gmatch("[^,%s]+") do
    local n = math.tointeger(tonumber(item))
    if not n or n < 1 then error("--streams: expected positive integers, got '" .. item .. "'") end
    out[#out + 1] = n
  end
  return out
end

local target = a.target or "engine"
local streams = list_of_ints(a.streams, { 1, 2, 4, 8, 12, 16 })
local max_tokens = math.tointeger(a.max_tokens) or 64
local requests = math.tointeger(a.requests)
local duration = (not requests) and (tonumber(a.duration) or 30) or tonumber(a.duration)
local endpoint = a.endpoint or "completions"
local model = a.model or "models/SmolLM2-135M-Instruct.Q4_1.gguf"
local top = 1
for _, n in ipairs(streams) do top = math.max(top, n) end

local request = require("phase").request_fn(max_tokens)

local engine, where
if target == "engine" then
  engine = rx.pool.engine {
    model = model, backend = a.backend or "auto", slots = top,
    ctx = math.tointeger(a.ctx) or 512, threads = math.tointeger(a.threads),
    prefill_chunk = math.tointeger(a.prefill_chunk),
  }
  where = tostring(engine)
else
  where = target
end

local store = not a.no_store
if store then
  if a.db then rx.results.open(a.db) end
  rx.results.begin_run {
    phase = "phase2", name = "concurrency",
    model = target == "engine" and model or nil,
    device = engine and engine:device() or target,
    params = { target = target, streams = table.concat(streams, ","), max_tokens = max_tokens,
               duration = duration, requests = requests, endpoint = endpoint },
  }
end

rx.log.info(string.format("phase2 concurrency on %s: streams %s, %s per level, %d tokens each",
  where, table.concat(streams, ","),
  requests and (requests .. " requests") or (duration .. " s"), max_tokens))

local rows = {}
for _, n in ipairs(streams) do
  local r = rx.pool.run {
    target = engine or target, endpoint = endpoint, model_name = a.model_name,
    concurrency = n, duration = duration, requests = requests,
    request = request, timeout = 600,
    name = "phase2", tags = { streams = n },
  }
  rows[#rows + 1] = {
    streams = n, completed = r.counts.completed, errors = r.counts.failed, tps = r.output_tps,
    ttft50 = r.ttft.p50, ttft95 = r.ttft.p95, ttft99 = r.ttft.p99,
    itl50 = r.itl.p50, itl95 = r.itl.p95, itl99 = r.itl.p99,
  }
  rx.log.info(string.format("%d streams: %.1f tok/s, TTFT p50 %.1f ms, ITL p50 %.1f ms, %d errors",
    n, r.output_tps, r.ttft.p50, r.itl.p50, r.counts.failed))
end

-- Scaling efficiency against the one-stream level, when there is one.
local base_tps
for _, r in ipairs(rows) do
  if r.streams == 1 then base_tps = r.tps end
end
for _, r in ipairs(rows) do
  if base_tps and base_tps > 0 then
    r.eff = r.tps / (r.streams * base_tps)
    if store then
      rx.results.record("phase2.scaling_efficiency", r.eff, "ratio", { streams = r.streams })
    end
  end
end

rx.report.table {
  title = "Phase 2 concurrency on " .. where .. " (latencies in ms; eff = tok/s(N) / (N × tok/s(1)))",
  columns = {
    "streams", "completed", "errors", { name = "tok/s", key = "tps", decimals = 1 },
    { name = "eff", decimals = 2 },
    { name = "ttft p50", key = "ttft50", decimals = 1 }, { name = "ttft p95", key = "ttft95", decimals = 1 },
    { name = "ttft p99", key = "ttft99", decimals = 1 },
    { name = "itl p50", key = "itl50", decimals = 1 }, { name = "itl p95", key = "itl95", decimals = 1 },
    { name = "itl p99", key = "itl99", decimals = 1 },
  },
  rows = rows,
}

if not a.no_plot then
  local prefix = a.plot or "results/phase2_concurrency"
  local function series(name, key)
    local pts = {}
    for _, r in ipairs(rows) do pts[#pts + 1] = { r.streams, r[key] } end
    return { name = name, points = pts }
  end
  local ideal = {}
  if base_tps then
    for _, r in ipairs(rows) do ideal[#ideal + 1] = { r.streams, r.streams * base_tps } end
  end
  local tps_series = { series("aggregate tok/s", "tps") }
  if #ideal > 0 then tps_series[2] = { name = "linear scaling", points = ideal, dashed = true } end
  local t = rx.report.plot { out = prefix .. "_tps", title = "Phase 2: aggregate throughput",
    x = "concurrent streams", y = "output tokens/s", kind = "line", series = tps_series }
  local l = rx.report.plot { out = prefix .. "_latency", title = "Phase 2: latency",
    x = "concurrent streams", y = "ms", kind = "line", log_y = true,
    series = { series("TTFT p50", "ttft50"), series("TTFT p95", "ttft95"),
               series("ITL p50", "itl50"), series("ITL p95", "itl95") } }
  rx.log.info("plots: " .. t.svg .. ", " .. l.svg)
end

if store then rx.results.end_run() end
local failed = 0
for _, r in ipairs(rows) do failed = failed + r.errors end
return failed == 0 and 0 or 1
