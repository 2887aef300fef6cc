-- Default alert rules for a soak (rawrxd.soak samples: vram_own_mb, vram_heap_used_mb, rss_mb,
-- cpu_pct, tokens_per_s, requests_ok, requests_failed, leak_slope_mb_per_h; ts in seconds).
--
--   local a = rx.alerts.new { rules = "scripts/alerts/default.lua",
--                             webhooks = { { kind = "slack", url_env = "RAWRXD_SLACK_WEBHOOK" } } }
--
-- Edit this file while a soak runs: the rules are re-read at the next sample; a broken edit is
-- reported with file:line and the previous rules stay. The file runs in a fresh Lua state with
-- the standard library only (os.getenv works). Fields: name, metric, kind (threshold | window |
-- slope | no_progress | ratio), above | below, for_s, window_s, agg (mean|max|min|p95),
-- min_samples, min_span_s, warmup_s, severity, message ({name} {metric} {value} {limit}),
-- min_interval_s, notify, over (ratio denominators).

local env = function(name, default) return tonumber(os.getenv(name)) or default end

-- Expected decode throughput floor; set it to ~80 % of the variant's measured tokens/s.
local min_tps = env("RAWRXD_ALERT_MIN_TPS", 1)

return {
  -- Device memory must stay flat (±50 MB over 48 h): a fitted slope over the last hour, judged
  -- once the first 10 minutes (allocation warm-up) are over and half an hour of data is in.
  { name = "vram-leak", metric = "vram_own_mb", kind = "slope", window_s = 3600,
    min_span_s = 1800, warmup_s = 600, above = 50, severity = "critical",
    message = "VRAM grows {value} MB/h (limit {limit} MB/h)" },

  -- The soak runner's own leak estimate (slope with a confidence bound), when it reports one.
  { name = "leak-slope", metric = "leak_slope_mb_per_h", above = 50, for_s = 600,
    severity = "critical" },

  -- Host memory growth: the same fit on the process RSS, with a looser limit.
  { name = "rss-growth", metric = "rss_mb", kind = "slope", window_s = 3600, min_span_s = 1800,
    warmup_s = 600, above = 100, severity = "warning",
    message = "RSS grows {value} MB/h (limit {limit} MB/h)" },

  -- Throughput collapse: the 5-minute mean under the floor for 2 minutes.
  { name = "tokens-per-s-drop", metric = "tokens_per_s", kind = "window", agg = "mean",
    window_s = 300, min_span_s = 120, warmup_s = 300, below = min_tps, for_s = 120,
    severity = "warning" },

  -- Nothing completes for a minute: stalled scheduler, hung device, dead server.
  { name = "no-progress", metric = "requests_ok", kind = "no_progress", for_s = 60,
    severity = "critical" },

  -- More than 1 % of the requests of the last 5 minutes failed, for a minute.
  { name = "error-rate", metric = "requests_failed", kind = "ratio",
    over = { "requests_ok", "requests_failed" }, window_s = 300, above = 0.01, for_s = 60,
    severity = "critical", message = "{value} of requests failed over 5 min (limit {limit})" },
}
