--- docs/analysis.lua — what the documents conclude, derived from the data (never hard-coded):
-- SLA checks against targets, use-case picks for the decision tree, the confidence score.

local M = {}

--- One SLA check: the measured figure, the committed figure (with the margin applied in the
--- safe direction), the target and the verdict ("pass", "fail", "not measured").
local function check(scope, metric, unit, measured, target, op, margin)
  local committed
  if measured then
    committed = op == "<=" and measured * (1 + margin) or measured * (1 - margin)
  end
  local verdict
  if target == nil then
    verdict = "no target"
  elseif committed == nil then
    verdict = "not measured"
  elseif (op == "<=" and committed <= target) or (op == ">=" and committed >= target) then
    verdict = "pass"
  else
    verdict = "fail"
  end
  return { scope = scope, metric = metric, unit = unit, measured = measured,
           committed = committed, target = target, op = op, verdict = verdict }
end

--- Every SLA check over the data: per variant, per concurrency level, per soak and fault run.
--- Targets that the data cannot address at all (no Phase 2 run, no soak) appear once as
--- "not measured".
function M.sla(d, t)
  local m = t.margin or 0
  local out = { variant = {}, concurrency = {}, soak = {}, faults = {} }
  for _, v in ipairs(d.variants) do
    local c = out.variant
    c[#c + 1] = check(v.name, "decode tokens/s", "tok/s", v.tg_tps, t.decode_tps, ">=", m)
    c[#c + 1] = check(v.name, "decode ms/token P95", "ms", v.ms_p95, t.ms_per_token_p95, "<=", m)
    c[#c + 1] = check(v.name, "decode ms/token P99", "ms", v.ms_p99, t.ms_per_token_p99, "<=", m)
  end
  if #d.variants == 0 then
    out.variant[1] = check("all variants", "decode tokens/s", "tok/s", nil, t.decode_tps, ">=", m)
  end
  for _, run in ipairs(d.concurrency) do
    local top
    for _, l in ipairs(run.levels) do
      local c = out.concurrency
      local scope = ("%d streams (run %d)"):format(l.streams, run.run.id)
      c[#c + 1] = check(scope, "ITL P50", "ms", l.itl_p50, t.itl_p50_ms, "<=", m)
      c[#c + 1] = check(scope, "ITL P95", "ms", l.itl_p95, t.itl_p95_ms, "<=", m)
      c[#c + 1] = check(scope, "ITL P99", "ms", l.itl_p99, t.itl_p99_ms, "<=", m)
      c[#c + 1] = check(scope, "TTFT P95", "ms", l.ttft_p95, t.ttft_p95_ms, "<=", m)
      local total = (l.completed or 0) + (l.errors or 0)
      local err = total > 0 and 100 * (l.errors or 0) / total or nil
      -- Errors are counted, not sampled: no margin.
      c[#c + 1] = check(scope, "failed requests", "%", err, t.error_rate_pct, "<=", 0)
      if l.streams > 1 then
        c[#c + 1] = check(scope, "scaling efficiency", "ratio", l.efficiency,
          t.scaling_efficiency, ">=", 0)
      end
      if l.streams == t.aggregate_streams then top = l end
    end
    top = top or run.levels[#run.levels]
    if top then
      out.concurrency[#out.concurrency + 1] = check(
        ("%d streams (run %d)"):format(top.streams, run.run.id), "aggregate tokens/s", "tok/s",
        top.tps, t.aggregate_tps, ">=", m)
    end
  end
  if #d.concurrency == 0 then
    out.concurrency[1] = check("concurrency", "ITL P95", "ms", nil, t.itl_p95_ms, "<=", m)
  end
  for _, s in ipairs(d.soaks) do
    local scope = ("soak run %d"):format(s.run.id)
    for _, l in ipairs(s.leaks) do
      local bound = l.hi and math.max(math.abs(l.hi), math.abs(l.lo or l.hi)) or
        (l.slope and math.abs(l.slope))
      local drift = bound and s.hours and bound * s.hours
      out.soak[#out.soak + 1] = check(scope, l.kind .. " drift over the soak", "MB", drift,
        t.soak_drift_mb, "<=", 0)
    end
    out.soak[#out.soak + 1] = check(scope, "crashes", "count", s.crashes, t.soak_crashes, "<=", 0)
  end
  if #d.soaks == 0 then
    out.soak[1] = check("soak", "VRAM drift", "MB", nil, t.soak_drift_mb, "<=", 0)
  end
  for _, f in ipairs(d.faults) do
    out.faults[#out.faults + 1] = check(("faults run %d"):format(f.run.id), "requests lost", "%",
      f.loss_pct, t.fault_loss_pct, "<=", 0)
  end
  if #d.faults == 0 then
    out.faults[1] = check("fault injection", "requests lost", "%", nil, t.fault_loss_pct, "<=", 0)
  end
  local all = {}
  for _, k in ipairs { "variant", "concurrency", "soak", "faults" } do
    for _, c in ipairs(out[k]) do all[#all + 1] = c end
  end
  out.all = all
  local n, pass, fail, nm = 0, 0, 0, 0
  for _, c in ipairs(all) do
    if c.verdict ~= "no target" then
      n = n + 1
      if c.verdict == "pass" then pass = pass + 1
      elseif c.verdict == "fail" then fail = fail + 1
      else nm = nm + 1 end
    end
  end
  out.counts = { total = n, pass = pass, fail = fail, not_measured = nm }
  -- Confidence: the share of checks that pass; a check not measured counts as not passed.
  out.confidence = n > 0 and pass / n or nil
  return out
end

local function best(list, key, better)
  local b
  for _, v in ipairs(list) do
    if v[key] ~= nil and (b == nil or better(v[key], b[key])) then b = v end
  end
  return b
end
local lt = function(a, b) return a < b end
local gt = function(a, b) return a > b end

--- The quality figure a variant is ranked by: KLD when any variant has one, else perplexity.
function M.quality_key(d)
  for _, v in ipairs(d.ok_variants) do
    if v.kld then return "kld", "KLD (nats)" end
  end
  for _, v in ipairs(d.ok_variants) do
    if v.ppl then return "ppl", "perplexity" end
  end
end

--- The picks of the decision tree, each with the rule that chose it.
function M.picks(d, t)
  local vs = d.ok_variants
  local p = {}
  p.fastest = best(vs, "tg_tps", gt)
  p.fastest_prefill = best(vs, "pp_tps", gt)
  p.lowest_latency = best(vs, "ms_p95", lt)
  p.smallest = best(vs, "vram_mib", lt)
  local qk, qlabel = M.quality_key(d)
  p.quality_key, p.quality_label = qk, qlabel
  if qk then p.best_quality = best(vs, qk, lt) end
  -- Sweet spot: the fastest decode among variants whose quality loss is no worse than the median.
  if qk then
    local qs = {}
    for _, v in ipairs(vs) do if v[qk] then qs[#qs + 1] = v[qk] end end
    table.sort(qs)
    local median = qs[math.max(1, math.ceil(#qs / 2))]
    local ok = {}
    for _, v in ipairs(vs) do if v[qk] and v[qk] <= median then ok[#ok + 1] = v end end
    p.sweet_spot, p.sweet_median = best(ok, "tg_tps", gt), median
  else
    p.sweet_spot = p.fastest
  end
  -- Memory tiers: for each budget (a measured VRAM figure), the best-quality variant that fits
  -- (the fastest when quality was not measured).
  local by_vram = {}
  for _, v in ipairs(vs) do if v.vram_mib then by_vram[#by_vram + 1] = v end end
  table.sort(by_vram, function(a, b) return a.vram_mib > b.vram_mib end)
  p.tiers = {}
  for _, budget in ipairs(by_vram) do
    local fits = {}
    for _, v in ipairs(by_vram) do if v.vram_mib <= budget.vram_mib then fits[#fits + 1] = v end end
    local pick = qk and best(fits, qk, lt) or best(fits, "tg_tps", gt)
    local last = p.tiers[#p.tiers]
    if not last or last.pick ~= pick then
      p.tiers[#p.tiers + 1] = { budget = budget.vram_mib, pick = pick }
    else
      last.budget = budget.vram_mib
    end
  end
  -- Concurrency: the most streams meeting the ITL P95 target, and the peak aggregate level.
  for _, c in ipairs(d.concurrency) do
    for _, l in ipairs(c.levels) do
      if l.itl_p95 and t.itl_p95_ms and l.itl_p95 <= t.itl_p95_ms and
          (not p.max_streams or l.streams > p.max_streams.streams) then
        p.max_streams = l
      end
      if l.tps and (not p.peak_level or l.tps > p.peak_level.tps) then p.peak_level = l end
    end
  end
  -- Bandwidth-bound: decode reads the whole model per token; a high share of peak says so.
  p.best_bandwidth = best(vs, "peak_pct", gt)
  return p
end

return M
