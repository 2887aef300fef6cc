-- Phase 3: the documents, generated from the results store.
--
-- Writes EXECUTIVE_SUMMARY.md, BENCHMARK_VISUAL_SUMMARY.txt, QUANT_VARIANTS_REPORT.md,
-- PERFORMANCE_SLA_SPECIFICATION.md, PERFORMANCE_TRADE_OFF_ANALYSIS.md and REGRESSION.md with their
-- plots (SVG and PNG) into --out. The templates are lib-lua/docs/*.lua; `rawrxd report` runs the
-- same ones.
--
--   rawrxd scripts/phase3_docs.lua                          # newest run of each phase/name
--   rawrxd scripts/phase3_docs.lua --runs 4,5,6 --baseline 1,2,3 --out results/phase3
--   rawrxd scripts/phase3_docs.lua --targets my_targets.lua
--
-- Flags: --db PATH, --runs IDS | --latest, --baseline IDS, --targets FILE (a Lua file returning
-- targets; see lib-lua/docs/targets.lua), --out DIR (results/phase3).

local rx = require "rawrxd"
local docs = require "docs"

-- The SLA targets this plan holds the runs to (the roadmap's): edit here, or pass --targets.
local targets = {
  margin = 0.20,
  decode_tps = 75, ms_per_token_p95 = 50, ms_per_token_p99 = 100,
  itl_p50_ms = 13, itl_p95_ms = 50, itl_p99_ms = 100, ttft_p95_ms = 1000,
  scaling_efficiency = 0.75, aggregate_tps = 800, aggregate_streams = 12,
  soak_drift_mb = 50, soak_crashes = 0, fault_loss_pct = 5,
}

return docs.main(rx.args, { out = "results/phase3", targets = rx.args.targets or targets })
