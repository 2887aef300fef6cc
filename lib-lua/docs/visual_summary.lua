--- docs/visual_summary.lua — BENCHMARK_VISUAL_SUMMARY.txt: one page of terminal charts.
local rx = require "rawrxd"
local md = require "docs.md"

local WIDTH = 78

return function(ctx)
  local d, p, s, out = ctx.d, ctx.picks, ctx.sla, {}
  local w = function(x) out[#out + 1] = x end
  local rule = string.rep("=", WIDTH) .. "\n"
  local function section(title) w("\n" .. title .. "\n" .. string.rep("-", #title) .. "\n") end
  local function bars(key, unit, decimals)
    local rows = {}
    for _, v in ipairs(d.ok_variants) do
      if v[key] then rows[#rows + 1] = { v.name, v[key] } end
    end
    if #rows == 0 then return "  " .. md.NM .. "\n" end
    return rx.report.bars { rows = rows, unit = unit, decimals = decimals, width = WIDTH }
  end
  w(rule)
  w("RAWRXD BENCHMARK VISUAL SUMMARY\n")
  local pv = d.provenance
  local ids = {}
  for _, r in ipairs(d.runs) do ids[#ids + 1] = tostring(r.id) end
  w(("runs %s | device %s | driver %s\ncommit %s\n"):format(
    #ids > 0 and table.concat(ids, ",") or "none",
    #pv.devices > 0 and table.concat(pv.devices, "; ") or "not recorded",
    #pv.drivers > 0 and table.concat(pv.drivers, "; ") or "not recorded",
    #pv.commits > 0 and table.concat(pv.commits, "; ") or "not recorded"))
  w(rule)
  section("Decode throughput by variant (tokens/s, higher is better)")
  w(bars("tg_tps", "tok/s", 2))
  section("Prefill throughput by variant (tokens/s)")
  w(bars("pp_tps", "tok/s", 2))
  section("Decode latency P95 by variant (ms/token, lower is better)")
  w(bars("ms_p95", "ms", 2))
  section("VRAM by variant (MiB)")
  w(bars("vram_mib", "MiB", 1))
  section("Quality loss by variant (KL divergence, nats, lower is better)")
  w(bars("kld", "nats", 5))
  for _, c in ipairs(d.concurrency) do
    section(("Aggregate throughput by streams (run %d, tokens/s)"):format(c.run.id))
    local rows, lat = {}, {}
    for _, l in ipairs(c.levels) do
      if l.tps then rows[#rows + 1] = { l.streams .. " streams", l.tps } end
      if l.itl_p95 then lat[#lat + 1] = { l.streams .. " streams", l.itl_p95 } end
    end
    w(#rows > 0 and rx.report.bars { rows = rows, unit = "tok/s", decimals = 2, width = WIDTH }
      or "  " .. md.NM .. "\n")
    section(("ITL P95 by streams (run %d, ms)"):format(c.run.id))
    w(#lat > 0 and rx.report.bars { rows = lat, unit = "ms", decimals = 2, width = WIDTH }
      or "  " .. md.NM .. "\n")
  end
  if #d.concurrency == 0 then
    section("Concurrency")
    w("  " .. md.NM .. "\n")
  end
  section("Soak")
  if #d.soaks == 0 then w("  " .. md.NM .. "\n") end
  for _, sk in ipairs(d.soaks) do
    w(("  run %d, %s h, crashes %d\n"):format(sk.run.id, md.num(sk.hours, 2), sk.crashes))
    local names = {}
    for name in pairs(sk.series) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local vals = {}
      for _, pt in ipairs(sk.series[name]) do vals[#vals + 1] = pt[2] end
      w(("  %-18s %s  last %s\n"):format(name, rx.report.sparkline(vals, 40),
        md.num(vals[#vals], 1)))
    end
  end
  section("Faults")
  if #d.faults == 0 then w("  " .. md.NM .. "\n") end
  for _, f in ipairs(d.faults) do
    w(("  run %d: %s %% of requests lost\n"):format(f.run.id, md.num(f.loss_pct, 2)))
  end
  section("Recommendations by use case")
  local function line(label, v, why)
    w(("  %-20s %s\n"):format(label, v and (v.name .. " (" .. why(v) .. ")") or md.NM))
  end
  line("latency-critical", p.lowest_latency, function(v) return md.num(v.ms_p95, 2) .. " ms P95" end)
  line("throughput", p.fastest, function(v) return md.num(v.tg_tps, 2) .. " tok/s" end)
  line("memory-constrained", p.smallest, function(v) return md.num(v.vram_mib, 1) .. " MiB" end)
  line("quality-critical", p.best_quality, function(v)
    return p.quality_label .. " " .. md.num(v[p.quality_key], p.quality_key == "kld" and 5 or 3) end)
  line("sweet spot", p.sweet_spot, function(v) return md.num(v.tg_tps, 2) .. " tok/s" end)
  section("SLA summary")
  w(("  %d pass, %d fail, %d not measured of %d checks; confidence %s %%\n"):format(
    s.counts.pass, s.counts.fail, s.counts.not_measured, s.counts.total,
    s.confidence and md.num(100 * s.confidence, 0) or md.NM))
  for _, c in ipairs(s.all) do
    if c.verdict == "fail" then
      w(("  FAIL %-28s %-22s %s %s (target %s)\n"):format(c.scope, c.metric, md.num(c.committed, 2),
        c.unit, md.num(c.target + 0.0, 2)))
    end
  end
  w(rule)
  return table.concat(out)
end
