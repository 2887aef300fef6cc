--- docs/data.lua — the Phase 3 documents' view of the results store.
--
-- `data.build(docs)` turns what `rawrxd.results.gather` returns (one `{run, measurements,
-- histograms, series, events}` per run) into the tables the templates read:
--
--   variants     Phase 1, one per variant run (phase "phase1"), in run order
--   concurrency  Phase 2, one per concurrency run (phase "phase2"), with one level per stream count
--   soaks        soak runs (phase "soak"): series in hours, leak slopes per memory kind
--   faults       fault-injection runs (phase "faults"/"fault"): their measurements, loss %
--   provenance   runs, devices, drivers, commits, versions, models
--
-- Nothing here formats text; a value that was not measured is nil.

local M = {}

local HOUR = 3600

--- Measurements of a run grouped by name and tags other than `rep`: `{value, sd, n, unit, tags}`
--- with `value` the mean of the samples (a single sample's `sd`/`n` tags are kept).
local function grouped(doc)
  local groups, order = {}, {}
  for _, m in ipairs(doc.measurements or {}) do
    local tags = {}
    local keys = {}
    for k, v in pairs(m.tags or {}) do
      if k ~= "rep" and k ~= "sd" and k ~= "n" then
        tags[k] = v
        keys[#keys + 1] = k .. "=" .. tostring(v)
      end
    end
    table.sort(keys)
    local key = m.name .. "{" .. table.concat(keys, ",") .. "}"
    local g = groups[key]
    if not g then
      g = { name = m.name, unit = m.unit, tags = tags, samples = {}, raw = {} }
      groups[key] = g
      order[#order + 1] = key
    end
    g.samples[#g.samples + 1] = m.value
    g.raw[#g.raw + 1] = m
  end
  local out = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    local n, sum = #g.samples, 0
    for _, x in ipairs(g.samples) do sum = sum + x end
    g.value = sum / n
    if n >= 2 then
      local ss = 0
      for _, x in ipairs(g.samples) do ss = ss + (x - g.value) ^ 2 end
      g.sd, g.n = math.sqrt(ss / (n - 1)), n
    else
      local t = g.raw[1].tags or {}
      g.sd, g.n = tonumber(t.sd), tonumber(t.n) or 1
    end
    out[#out + 1] = g
  end
  return out
end

--- The first group named `name` whose tags include every pair of `want` (nil: any tags).
local function find(groups, name, want)
  for _, g in ipairs(groups) do
    if g.name == name then
      local ok = true
      for k, v in pairs(want or {}) do
        if tostring(g.tags[k]) ~= tostring(v) then ok = false end
      end
      if ok then return g end
    end
  end
end

local function value(groups, name, want)
  local g = find(groups, name, want)
  return g and g.value
end

local function variant_of(doc)
  local run, g = doc.run, grouped(doc)
  local params = run.params or {}
  local scheme = params.scheme
  local v = {
    name = run.variant or run.name, run = run, groups = g, status = run.status, error = run.error,
    scheme = type(scheme) == "string" and scheme or nil,
    file_mib = value(g, "file_mib"), bpw = value(g, "bpw"),
    ms_p50 = value(g, "ms_p50"), ms_p95 = value(g, "ms_p95"), ms_p99 = value(g, "ms_p99"),
    vram_mib = value(g, "vram_mib"), bandwidth_gbs = value(g, "bandwidth_gbs"),
    peak_pct = value(g, "bandwidth_peak_pct"), ppl = value(g, "ppl"), kld = value(g, "kld"),
    same_top_pct = value(g, "same_top_pct"),
  }
  v.hybrid = v.scheme ~= nil and v.scheme:match("%.lua$") ~= nil
  for _, k in ipairs { "pp_tps", "tg_tps", "ppl", "kld" } do
    local x = find(g, k)
    if x then v[k .. "_sd"], v[k .. "_n"] = x.sd, x.n end
  end
  v.pp_tps, v.tg_tps = value(g, "pp_tps"), value(g, "tg_tps")
  return v
end

--- Phase 2 levels: measurements `<pool>.<metric>` tagged `streams` (or `concurrency`).
local function concurrency_of(doc)
  local g = grouped(doc)
  local levels, by = {}, {}
  for _, m in ipairs(g) do
    local n = tonumber(m.tags.streams or m.tags.concurrency)
    local metric = m.name:match("^.-%.([%w_]+)$") or m.name
    if n then
      local l = by[n]
      if not l then
        l = { streams = n }
        by[n] = l
        levels[#levels + 1] = l
      end
      if l[metric] == nil then l[metric] = m.value end
    end
  end
  table.sort(levels, function(a, b) return a.streams < b.streams end)
  for _, l in ipairs(levels) do
    l.tps = l.output_tps
    l.efficiency = l.scaling_efficiency
  end
  return { run = doc.run, name = doc.run.name, levels = levels, groups = g }
end

--- Least-squares line through `pts` ({x, y}): slope, intercept (nil with fewer than 2 x values).
function M.fit(pts)
  local n, sx, sy = #pts, 0, 0
  if n < 2 then return nil end
  for _, p in ipairs(pts) do sx, sy = sx + p[1], sy + p[2] end
  local mx, my = sx / n, sy / n
  local sxx, sxy = 0, 0
  for _, p in ipairs(pts) do
    sxx = sxx + (p[1] - mx) ^ 2
    sxy = sxy + (p[1] - mx) * (p[2] - my)
  end
  if sxx == 0 then return nil end
  local slope = sxy / sxx
  return slope, my - slope * mx
end

local MEMORY_SERIES = { vram_own_mb = true, vram_heap_used_mb = true, rss_mb = true }

local function soak_of(doc)
  local g = grouped(doc)
  local t0
  for _, pts in pairs(doc.series or {}) do
    for _, p in ipairs(pts) do
      if not t0 or p.ts < t0 then t0 = p.ts end
    end
  end
  local series, t1 = {}, t0
  for name, pts in pairs(doc.series or {}) do
    local s = {}
    for _, p in ipairs(pts) do
      s[#s + 1] = { (p.ts - t0) / HOUR, p.value }
      if p.ts > t1 then t1 = p.ts end
    end
    series[name] = s
  end
  -- Leak slopes: leak_slope_mb_per_h (and CI bounds) tagged with the memory kind.
  local leaks, by = {}, {}
  for _, m in ipairs(g) do
    local field = ({ leak_slope_mb_per_h = "slope", leak_slope_ci95_lo = "lo",
                     leak_slope_ci95_hi = "hi" })[m.name]
    if field then
      local kind = m.tags.kind or m.tags.memory or m.tags.series
      if kind == nil then
        for _, v in pairs(m.tags) do if type(v) == "string" then kind = v end end
      end
      kind = tostring(kind or "memory")
      local l = by[kind]
      if not l then
        l = { kind = kind }
        by[kind] = l
        leaks[#leaks + 1] = l
      end
      l[field] = m.value
    end
  end
  table.sort(leaks, function(a, b) return a.kind < b.kind end)
  local crashes = 0
  for _, e in ipairs(doc.events or {}) do
    if e.kind == "crash" then crashes = crashes + 1 end
  end
  local last = function(name)
    local s = series[name]
    return s and #s > 0 and s[#s][2] or nil
  end
  return {
    run = doc.run, series = series, leaks = leaks, leak_by = by, groups = g,
    hours = t0 and (t1 - t0) / HOUR or nil, crashes = crashes,
    requests_ok = last("requests_ok"), requests_failed = last("requests_failed"),
    memory_series = MEMORY_SERIES,
  }
end

local function fault_of(doc)
  local g = grouped(doc)
  local loss
  for _, m in ipairs(g) do
    if m.name:match("loss") and (m.unit == "%" or m.name:match("pct")) then loss = m.value end
  end
  return { run = doc.run, groups = g, loss_pct = loss }
end

local function add(set, list, v)
  if v ~= nil and v ~= "" and not set[v] then
    set[v] = true
    list[#list + 1] = v
  end
end

--- The documents' data model from `rawrxd.results.gather` output.
function M.build(docs)
  local d = { variants = {}, concurrency = {}, soaks = {}, faults = {}, runs = {} }
  local p = { devices = {}, drivers = {}, commits = {}, versions = {}, hosts = {}, models = {} }
  local seen = { devices = {}, drivers = {}, commits = {}, versions = {}, hosts = {}, models = {} }
  for _, doc in ipairs(docs) do
    local r = doc.run
    d.runs[#d.runs + 1] = r
    add(seen.devices, p.devices, r.device)
    add(seen.drivers, p.drivers, r.driver)
    add(seen.commits, p.commits, r.git_commit)
    add(seen.versions, p.versions, r.rawrxd_version)
    add(seen.hosts, p.hosts, r.host)
    if r.model_path then
      add(seen.models, p.models, r.model_path .. (r.model_sha256 and
        (" (sha256 " .. r.model_sha256:sub(1, 12) .. "…)") or ""))
    end
    if r.phase == "phase1" then
      d.variants[#d.variants + 1] = variant_of(doc)
    elseif r.phase == "phase2" then
      d.concurrency[#d.concurrency + 1] = concurrency_of(doc)
    elseif r.phase == "soak" or r.phase:match("^phase2.soak") then
      d.soaks[#d.soaks + 1] = soak_of(doc)
    elseif r.phase:match("^fault") or r.phase:match("^phase2.fault") then
      d.faults[#d.faults + 1] = fault_of(doc)
    end
  end
  d.provenance = p
  d.ok_variants = {}
  for _, v in ipairs(d.variants) do
    if v.status == "ok" and v.tg_tps then d.ok_variants[#d.ok_variants + 1] = v end
  end
  return d
end

return M
