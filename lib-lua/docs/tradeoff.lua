--- docs/tradeoff.lua — PERFORMANCE_TRADE_OFF_ANALYSIS.md: a decision tree by use case, derived
-- from the measurements (every branch names the figure that chose it).
local md = require "docs.md"

local function q(p, v)
  if not p.quality_key or not v[p.quality_key] then return "quality not measured" end
  return ("%s %s"):format(p.quality_label, md.num(v[p.quality_key], p.quality_key == "kld" and 5 or 3))
end

return function(ctx)
  local d, p, t, out = ctx.d, ctx.picks, ctx.targets, {}
  local w = function(x) out[#out + 1] = x end
  w("# Performance trade-off analysis\n\n")
  w("Which variant and load level to deploy, by use case. Every recommendation below is computed " ..
    "from the selected runs by the rule stated next to it; nothing is hard-coded.\n\n")
  w(md.provenance(d, ctx.opts))
  w("## Decision tree\n\n```\nWhat matters most?\n")
  local nm = md.NM
  local function pick(v, why) return v and (v.name .. "  (" .. why(v) .. ")") or nm end
  w("├─ Latency-critical (interactive chat, agents)\n")
  w("│   ├─ variant: " .. pick(p.lowest_latency, function(v)
    return "lowest P95 ms/token: " .. md.num(v.ms_p95, 2) .. " ms" end) .. "\n")
  w("│   └─ streams: " .. (p.max_streams and (("at most %d concurrent (ITL P95 %s ms ≤ %s ms target)")
    :format(p.max_streams.streams, md.num(p.max_streams.itl_p95, 2), md.num(t.itl_p95_ms + 0.0, 2)))
    or (#d.concurrency > 0 and "no measured level meets the ITL P95 target" or nm)) .. "\n")
  w("├─ Throughput (batch jobs, many users)\n")
  w("│   ├─ variant: " .. pick(p.fastest, function(v)
    return "highest decode: " .. md.num(v.tg_tps, 2) .. " tok/s" end) .. "\n")
  w("│   ├─ prefill-heavy (long prompts): " .. pick(p.fastest_prefill, function(v)
    return "highest prefill: " .. md.num(v.pp_tps, 2) .. " tok/s" end) .. "\n")
  w("│   └─ streams: " .. (p.peak_level and (("%d concurrent (peak aggregate %s tok/s)")
    :format(p.peak_level.streams, md.num(p.peak_level.tps, 2))) or nm) .. "\n")
  w("├─ Memory-constrained (small cards, many models per card)\n")
  if #p.tiers == 0 then
    w("│   └─ " .. nm .. "\n")
  else
    for _, tier in ipairs(p.tiers) do
      w(("│   ├─ VRAM budget ≥ %s MiB → %s  (%s)\n"):format(md.num(tier.budget, 1), tier.pick.name,
        q(p, tier.pick)))
    end
    w(("│   └─ VRAM budget < %s MiB → no measured variant fits\n"):format(
      md.num(p.tiers[#p.tiers].budget, 1)))
  end
  w("└─ Quality-critical (evaluation, long-form writing)\n")
  w("    └─ variant: " .. (p.best_quality and pick(p.best_quality, function(v) return "best " .. q(p, v) end)
    or "quality " .. nm) .. "\n")
  w("```\n\n")
  w("Rules: latency = lowest P95 decode ms/token; throughput = highest mean decode tokens/s (prefill: " ..
    "highest prefill tokens/s) and the concurrency level with the highest aggregate output tokens/s; " ..
    "memory = for each measured VRAM figure taken as a budget, the best-quality variant that fits " ..
    "(the fastest when quality was not measured); quality = lowest KL divergence against the source " ..
    "model, else lowest perplexity.\n\n")
  if p.sweet_spot then
    w(("**Sweet spot: %s** — %s.\n\n"):format(p.sweet_spot.name, p.quality_key and
      ("the fastest decode (%s tok/s) among variants whose %s is no worse than the median (%s)")
        :format(md.num(p.sweet_spot.tg_tps, 2), p.quality_label,
          md.num(p.sweet_median, p.quality_key == "kld" and 5 or 3))
      or "the fastest decode; quality not measured"))
  end
  w("## Trade-off table\n\n")
  local rows = {}
  local vs = {}
  for _, v in ipairs(d.ok_variants) do vs[#vs + 1] = v end
  table.sort(vs, function(a, b) return (a.vram_mib or 0) < (b.vram_mib or 0) end)
  local fastest = p.fastest and p.fastest.tg_tps
  for _, v in ipairs(vs) do
    rows[#rows + 1] = {
      v.name, md.num(v.vram_mib, 1), md.num(v.tg_tps, 2),
      fastest and md.num(100 * v.tg_tps / fastest, 1) or nm, md.num(v.ms_p95, 2),
      md.num(v.ppl, 3), md.num(v.kld, 5),
    }
  end
  if #rows == 0 then
    w("No completed Phase 1 variant: " .. nm .. ".\n\n")
  else
    w(md.table({ "variant", "VRAM MiB", "decode tok/s", "% of fastest", "P95 ms/token", "PPL",
      "KLD (nats)" }, rows) .. "\n")
  end
  if ctx.plots.curve then w(md.image("Performance curve", ctx.plots.curve) .. "\n") end
  w("## Concurrency\n\n")
  if #d.concurrency == 0 then
    w("Concurrency " .. nm .. " (run `rawrxd scripts/phase2_concurrency.lua`).\n")
  else
    for _, c in ipairs(d.concurrency) do
      local rows2 = {}
      for _, l in ipairs(c.levels) do
        rows2[#rows2 + 1] = { tostring(l.streams), md.num(l.tps, 2), md.num(l.efficiency, 2),
          md.num(l.itl_p95, 2), md.num(l.ttft_p95, 2) }
      end
      w(("Run %d (%s):\n\n"):format(c.run.id, c.run.device or "device not recorded"))
      w(md.table({ "streams", "aggregate tok/s", "scaling efficiency", "ITL P95 ms", "TTFT P95 ms" },
        rows2) .. "\n")
    end
    if ctx.plots.throughput then w(md.image("Aggregate throughput vs concurrency", ctx.plots.throughput)) end
  end
  return table.concat(out)
end
