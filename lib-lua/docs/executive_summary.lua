--- docs/executive_summary.lua — EXECUTIVE_SUMMARY.md: the headline figures, the performance
-- curve, concurrency percentiles, stability, faults, SLAs and a confidence score.
local md = require "docs.md"

return function(ctx)
  local d, p, s, out = ctx.d, ctx.picks, ctx.sla, {}
  local w = function(x) out[#out + 1] = x end
  local nm = md.NM
  w("# Executive summary\n\n")
  w(md.provenance(d, ctx.opts))
  w("## Headline\n\n")
  if p.fastest then
    w(("- **Peak decode:** %s at %s tok/s (P95 %s ms/token, %s MiB VRAM).\n"):format(p.fastest.name,
      md.num(p.fastest.tg_tps, 2), md.num(p.fastest.ms_p95, 2), md.num(p.fastest.vram_mib, 1)))
    w(("- **Sweet spot:** %s (%s tok/s, %s).\n"):format(p.sweet_spot.name,
      md.num(p.sweet_spot.tg_tps, 2), p.quality_key and (p.quality_label .. " " ..
        md.num(p.sweet_spot[p.quality_key], p.quality_key == "kld" and 5 or 3)) or "quality not measured"))
    w(("- **Bandwidth:** %s\n"):format(p.best_bandwidth and
      ("the best variant (%s) reads memory at %s %% of the device's peak."):format(
        p.best_bandwidth.name, md.num(p.best_bandwidth.peak_pct, 1)) or
      "share of peak not measured (device peak bandwidth unknown)."))
  else
    w("- Single-stream performance: " .. nm .. ".\n")
  end
  if p.peak_level then
    w(("- **Concurrency:** peak aggregate %s tok/s at %d streams.\n"):format(
      md.num(p.peak_level.tps, 2), p.peak_level.streams))
  else
    w("- Concurrency: " .. nm .. ".\n")
  end
  if #d.soaks > 0 then
    local sk = d.soaks[#d.soaks]
    w(("- **Stability:** soak run %d over %s h, %d crashes.\n"):format(sk.run.id,
      md.num(sk.hours, 2), sk.crashes))
  else
    w("- Stability (soak): " .. nm .. ".\n")
  end
  if #d.faults > 0 then
    local f = d.faults[#d.faults]
    w(("- **Faults:** %s %% of requests lost (run %d).\n"):format(md.num(f.loss_pct, 2), f.run.id))
  else
    w("- Fault injection: " .. nm .. ".\n")
  end
  w(("- **SLA checks:** %d pass, %d fail, %d not measured (of %d).\n"):format(s.counts.pass,
    s.counts.fail, s.counts.not_measured, s.counts.total))
  w(("- **Production deployment confidence score: %s %%** — the share of SLA checks that pass, " ..
    "a check not measured counting as not passed.\n\n"):format(
    s.confidence and md.num(100 * s.confidence, 0) or nm))
  w("## Performance curve\n\n")
  w(md.image("Performance curve: decode tokens/s against VRAM, bubble area = P95 ms/token",
    ctx.plots.curve) .. "\n")
  if #d.variants > 0 then
    local rows = {}
    for _, v in ipairs(d.variants) do
      rows[#rows + 1] = { v.name, v.status, md.num(v.tg_tps, 2), md.num(v.pp_tps, 2),
        md.num(v.ms_p95, 2), md.num(v.vram_mib, 1), md.num(v.kld, 5) }
    end
    w(md.table({ "variant", "status", "decode tok/s", "prefill tok/s", "P95 ms/token", "VRAM MiB",
      "KLD (nats)" }, rows) .. "\n")
  end
  w("## Concurrency\n\n")
  if #d.concurrency == 0 then
    w("Concurrency " .. nm .. ".\n\n")
  else
    for _, c in ipairs(d.concurrency) do
      local rows = {}
      for _, l in ipairs(c.levels) do
        rows[#rows + 1] = { tostring(l.streams), md.num(l.ttft_p50, 2), md.num(l.ttft_p95, 2),
          md.num(l.ttft_p99, 2), md.num(l.itl_p50, 2), md.num(l.itl_p95, 2), md.num(l.itl_p99, 2),
          md.num(l.tps, 2), md.num(l.efficiency, 2), tostring(math.floor(l.errors or 0)) }
      end
      w(("Run %d (%s), latencies in ms:\n\n"):format(c.run.id, c.run.device or "device not recorded"))
      w(md.table({ "streams", "TTFT P50", "TTFT P95", "TTFT P99", "ITL P50", "ITL P95", "ITL P99",
        "aggregate tok/s", "scaling efficiency", "errors" }, rows) .. "\n")
    end
    w(md.image("Latency against concurrent streams", ctx.plots.latency) .. "\n")
  end
  w("## Stability\n\n")
  if #d.soaks == 0 then
    w("48-hour soak " .. nm .. " (no soak run selected).\n\n")
  else
    for _, sk in ipairs(d.soaks) do
      local rows = {}
      for _, l in ipairs(sk.leaks) do
        rows[#rows + 1] = { l.kind, md.num(l.slope, 3), md.num(l.lo, 3), md.num(l.hi, 3) }
      end
      w(("Soak run %d: %s h, requests ok %s, failed %s, crashes %d.\n\n"):format(sk.run.id,
        md.num(sk.hours, 2), md.num(sk.requests_ok, 0), md.num(sk.requests_failed, 0), sk.crashes))
      if #rows > 0 then
        w(md.table({ "memory", "leak slope MB/h", "95 % CI low", "95 % CI high" }, rows) .. "\n")
      else
        w("Leak slope " .. nm .. ".\n\n")
      end
      for _, f in ipairs(ctx.plots.soak[sk.run.id] or {}) do
        w(md.image(f.name .. " during the soak with the fitted leak line", f) .. "\n")
      end
    end
  end
  w("## Faults\n\n")
  if #d.faults == 0 then
    w("Fault injection " .. nm .. ".\n\n")
  else
    for _, f in ipairs(d.faults) do
      local rows = {}
      for _, m in ipairs(f.groups) do
        local tags = {}
        for k, v in pairs(m.tags) do tags[#tags + 1] = k .. "=" .. tostring(v) end
        table.sort(tags)
        rows[#rows + 1] = { m.name, table.concat(tags, ", "), md.num(m.value, 2), m.unit }
      end
      w(("Run %d (%s):\n\n"):format(f.run.id, f.run.name))
      w(md.table({ "measurement", "tags", "value", "unit" }, rows) .. "\n")
    end
  end
  w("## Documents\n\n")
  for _, f in ipairs { "QUANT_VARIANTS_REPORT.md", "PERFORMANCE_SLA_SPECIFICATION.md",
                       "PERFORMANCE_TRADE_OFF_ANALYSIS.md", "REGRESSION.md",
                       "BENCHMARK_VISUAL_SUMMARY.txt" } do
    w(("- [%s](%s)\n"):format(f, f))
  end
  return table.concat(out)
end
