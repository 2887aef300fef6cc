--- docs/plots.lua — the documents' plots, drawn by the host (`rawrxd.report`) as SVG and PNG.
--
-- Every function returns `{svg=, png=}` paths relative to the output directory (as the documents
-- link them), or nil when there is nothing measured to draw.

local rx = require "rawrxd"
local data = require "docs.data"

local M = {}

local function rel(files, dir)
  local strip = function(p) return (p:sub(1, #dir + 1) == dir .. "/") and p:sub(#dir + 2) or p end
  return { svg = strip(files.svg), png = strip(files.png) }
end

--- Decode tokens/s against VRAM, bubble area = p95 ms/token, one bubble per variant.
function M.performance_curve(d, dir)
  local pts = {}
  for _, v in ipairs(d.ok_variants) do
    if v.vram_mib and v.ms_p95 then
      pts[#pts + 1] = { variant = v.name, vram_mib = v.vram_mib, tg_tps = v.tg_tps,
                        ms_p95 = v.ms_p95 }
    end
  end
  if #pts == 0 then return nil end
  return rel(rx.report.curve { points = pts, out = dir .. "/performance_curve" }, dir)
end

--- TTFT and ITL percentiles against concurrent streams (log ms), one plot for all Phase 2 runs.
function M.latency_vs_concurrency(d, dir)
  local series = {}
  for _, c in ipairs(d.concurrency) do
    local suffix = #d.concurrency > 1 and (" (run " .. c.run.id .. ")") or ""
    for _, m in ipairs { { "TTFT", "ttft" }, { "ITL", "itl" } } do
      for _, q in ipairs { "p50", "p95", "p99" } do
        local pts = {}
        for _, l in ipairs(c.levels) do
          local v = l[m[2] .. "_" .. q]
          if v and v > 0 then pts[#pts + 1] = { l.streams, v } end
        end
        if #pts > 0 then
          series[#series + 1] = { name = m[1] .. " " .. q:upper() .. suffix, points = pts }
        end
      end
    end
  end
  if #series == 0 then return nil end
  return rel(rx.report.plot {
    out = dir .. "/latency_vs_concurrency", title = "Latency vs concurrency",
    x = "concurrent streams (log scale)", y = "latency (ms, log scale)", kind = "line",
    log_x = true, log_y = true,
    series = series,
  }, dir)
end

--- Aggregate output tokens/s against concurrent streams, with linear scaling from one stream.
function M.throughput_vs_concurrency(d, dir)
  local series = {}
  for _, c in ipairs(d.concurrency) do
    local suffix = #d.concurrency > 1 and (" (run " .. c.run.id .. ")") or ""
    local pts, ideal, base = {}, {}, nil
    for _, l in ipairs(c.levels) do
      if l.streams == 1 then base = l.tps end
    end
    for _, l in ipairs(c.levels) do
      if l.tps then pts[#pts + 1] = { l.streams, l.tps } end
      if base then ideal[#ideal + 1] = { l.streams, l.streams * base } end
    end
    if #pts > 0 then series[#series + 1] = { name = "aggregate tokens/s" .. suffix, points = pts } end
    if #ideal > 0 then
      series[#series + 1] = { name = "linear scaling" .. suffix, points = ideal, dashed = true }
    end
  end
  if #series == 0 then return nil end
  return rel(rx.report.plot {
    out = dir .. "/throughput_vs_concurrency", title = "Aggregate throughput vs concurrency",
    x = "concurrent streams (log scale)", y = "output tokens/s", kind = "line", log_x = true,
    series = series,
  }, dir)
end

--- One plot per memory series of a soak run (MB against hours, each on its own scale) with its
--- fitted leak line, dashed: the soak runner's stored slope (fitted after warm-up) drawn through
--- the points' mean, else a least-squares fit over all points. Returns a list of
--- `{name=, svg=, png=}`.
function M.soak(s, dir)
  local names = {}
  for name in pairs(s.series) do
    if s.memory_series[name] and #s.series[name] > 0 then names[#names + 1] = name end
  end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    local pts = s.series[name]
    local series = { { name = name, points = pts } }
    local slope, intercept = data.fit(pts)
    local stored = s.leak_by[(name:gsub("_mb$", ""))] or s.leak_by[name]
    if stored and stored.slope then
      local mx, my = 0, 0
      for _, p in ipairs(pts) do mx, my = mx + p[1], my + p[2] end
      mx, my = mx / #pts, my / #pts
      slope, intercept = stored.slope, my - stored.slope * mx
    end
    if slope then
      local t0, t1 = pts[1][1], pts[#pts][1]
      series[2] = {
        name = ("leak fit: %+.2f MB/h%s"):format(slope, stored and stored.slope and "" or " (all points)"),
        dashed = true, points = { { t0, slope * t0 + intercept }, { t1, slope * t1 + intercept } },
      }
    end
    local files = rel(rx.report.plot {
      out = ("%s/soak_run%d_%s"):format(dir, s.run.id, name),
      title = ("Soak run %d: %s over time"):format(s.run.id, name),
      x = "time (h)", y = name:gsub("_mb$", "") .. " (MB)", kind = "line", series = series,
    }, dir)
    files.name = name
    out[#out + 1] = files
  end
  return out
end

return M
