--- docs/targets.lua — the SLA targets and margins PERFORMANCE_SLA_SPECIFICATION.md checks.
--
-- Defaults from the GPU roadmap's Phase 1/2 targets. Copy this file, edit it and pass it with
-- `rawrxd report --targets FILE` (or `scripts/phase3_docs.lua --targets FILE`). A target set to
-- nil is not checked.
return {
  -- An SLA commits to the measured figure with a margin: latencies × (1 + margin), throughputs
  -- × (1 − margin). Pass = the committed figure still meets the target.
  margin = 0.20,

  -- Single stream, per variant (Phase 1).
  decode_tps = 75,            -- decode tokens/s, at least
  ms_per_token_p95 = 50,      -- decode ms/token at P95, at most
  ms_per_token_p99 = 100,     -- decode ms/token at P99, at most

  -- Per concurrency level (Phase 2).
  itl_p50_ms = 13,            -- inter-token latency P50, at most
  itl_p95_ms = 50,            -- inter-token latency P95, at most
  itl_p99_ms = 100,           -- inter-token latency P99, at most
  ttft_p95_ms = 1000,         -- time to first token P95, at most
  error_rate_pct = 0,         -- failed requests, at most (percent of requests)
  scaling_efficiency = 0.75,  -- tok/s(N) / (N × tok/s(1)) at every N > 1, at least
  aggregate_tps = 800,        -- aggregate output tokens/s at `aggregate_streams`, at least
  aggregate_streams = 12,     -- (the highest measured level when 12 was not measured)

  -- Soak and faults (Phase 2).
  soak_drift_mb = 50,         -- |leak slope| × soak hours, upper 95 % bound, at most (MB)
  soak_crashes = 0,           -- crash events, at most
  fault_loss_pct = 5,         -- requests lost under injected faults, at most (percent)
}
