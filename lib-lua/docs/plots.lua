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

--- Memory series of a soak run (MB against hours) with each one's fitted leak line, dashed.
function M.soak(s, dir)
  local series = {}
  local names = {}
  for name in pairs(s.series) do
    if s.memory_series[name] then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local pts = s.series[name]
    if #pts > 0 then
      series[#series + 1] = { name = name, points = pts }
      local slope, intercept = data.fit(pts)
      local kind = name:gsub("_mb$", "")
      local stored = s.leak_by[kind] or s.leak_by[name]
      if stored and stored.slope then
        -- The stored slope (fitted after warm-up by the soak runner), through the points' mean.
        local mx, my = 0, 0
        for _, p in ipairs(pts) do mx, my = mx + p[1], my + p[2] end
        mx, my = mx / #pts, my / #pts
        slope, intercept = stored.slope, my - stored.slope * mx
      end
      if slope then
        local t0, t1 = pts[1][1], pts[#pts][1]
        series[#series + 1] = {
          name = ("%s fit: %+.2f MB/h"):format(name, slope), dashed = true,
          points = { { t0, slope * t0 + intercept }, { t1, slope * t1 + intercept } },
        }
      end
    end
  end
  if #series == 0 then return nil end
  return rel(rx.report.plot {
    out = dir .. "/soak_run" .. s.run.id, title = ("Soak run %d: memory over time"):format(s.run.id),
    x = "time (h)", y = "memory (MB)", kind = "line", series = series,
  }, dir)
end

return M
