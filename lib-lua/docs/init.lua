--- docs — the Phase 3 documents, generated from the results store.
--
--     local docs = require "docs"
--     docs.generate { out = "results/phase3", db = nil, runs = nil, baseline = { 12 },
--                     targets = { itl_p95_ms = 40 } }
--
-- Writes into `out`: EXECUTIVE_SUMMARY.md, BENCHMARK_VISUAL_SUMMARY.txt,
-- QUANT_VARIANTS_REPORT.md, PERFORMANCE_SLA_SPECIFICATION.md, PERFORMANCE_TRADE_OFF_ANALYSIS.md,
-- REGRESSION.md, and the plots (performance_curve, latency_vs_concurrency,
-- throughput_vs_concurrency, soak_run<ID>; each .svg and .png).
--
-- The host gathers the runs (`rawrxd.results.gather`) and draws the plots (`rawrxd.report`);
-- everything a document says is decided here, in the templates next to this file
-- (docs/<document>.lua), which can be edited without recompiling rawrxd. `rawrxd report` runs
-- these same templates (through docs/run.lua).

local rx = require "rawrxd"
local data = require "docs.data"
local analysis = require "docs.analysis"
local plots = require "docs.plots"

local M = {}

--- The documents: output file name and the template module that renders it.
M.documents = {
  { file = "EXECUTIVE_SUMMARY.md", template = "docs.executive_summary" },
  { file = "BENCHMARK_VISUAL_SUMMARY.txt", template = "docs.visual_summary" },
  { file = "QUANT_VARIANTS_REPORT.md", template = "docs.quant_variants" },
  { file = "PERFORMANCE_SLA_SPECIFICATION.md", template = "docs.sla" },
  { file = "PERFORMANCE_TRADE_OFF_ANALYSIS.md", template = "docs.tradeoff" },
  { file = "REGRESSION.md", template = "docs.regression" },
}

--- A list of run ids from a number, "1,2,3", or a list; nil stays nil.
function M.ids(v, what)
  if v == nil or v == true then return nil end
  local out = {}
  if type(v) == "table" then
    for _, x in ipairs(v) do out[#out + 1] = math.tointeger(tonumber(x)) end
  else
    for item in tostring(v):gmatch("[^,%s]+") do
      local n = math.tointeger(tonumber(item))
      if not n then error(("%s: expected run ids like 3 or 1,2,5, got '%s'"):format(what, item), 0) end
      out[#out + 1] = n
    end
  end
  return out
end

--- The SLA targets: docs/targets.lua, overridden by a file (path) or a table.
function M.targets(over)
  local t = {}
  for k, v in pairs(dofile(package.searchpath("docs.targets", package.path))) do t[k] = v end
  if type(over) == "string" then
    local chunk, err = loadfile(over)
    if not chunk then error("--targets: " .. err, 0) end
    over = chunk()
    if type(over) ~= "table" then error("--targets: " .. over .. " must return a table", 0) end
  end
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

local function write(path, text)
  local f, err = io.open(path, "w")
  if not f then error("cannot write " .. path .. ": " .. tostring(err), 0) end
  f:write(text)
  f:close()
end

--- Generates every document; returns `{files = {...}, sla = ..., data = ...}`.
function M.generate(opts)
  local out = opts.out or "results/phase3"
  os.execute(("mkdir -p '%s'"):format(out:gsub("'", "'\\''")))
  local db = rx.results.open(opts.db)
  local docs = rx.results.gather { runs = M.ids(opts.runs, "--runs") }
  local d = data.build(docs)
  local targets = M.targets(opts.targets)
  local ctx = {
    d = d, targets = targets,
    opts = { db = db, version = rx.version, baseline = M.ids(opts.baseline, "--baseline") or {},
             targets_file = type(opts.targets) == "string" and opts.targets or
               (opts.targets and "the calling script's targets over lib-lua/docs/targets.lua") },
  }
  ctx.sla = analysis.sla(d, targets)
  ctx.picks = analysis.picks(d, targets)
  ctx.plots = {
    curve = plots.performance_curve(d, out),
    latency = plots.latency_vs_concurrency(d, out),
    throughput = plots.throughput_vs_concurrency(d, out),
    soak = {},
  }
  for _, s in ipairs(d.soaks) do ctx.plots.soak[s.run.id] = plots.soak(s, out) end
  local files = {}
  for _, doc in ipairs(M.documents) do
    local render = require(doc.template)
    local path = out .. "/" .. doc.file
    write(path, render(ctx))
    files[#files + 1] = path
  end
  return { files = files, sla = ctx.sla, data = d, plots = ctx.plots }
end

--- Entry point of `rawrxd report` and scripts/phase3_docs.lua: options from command-line `args`.
function M.main(args, defaults)
  local known = { db = true, runs = true, latest = true, baseline = true, targets = true, out = true }
  for k in pairs(args) do
    if type(k) == "string" and not known[k] then
      error(("unknown flag --%s (expected --db, --runs, --latest, --baseline, --targets, --out)")
        :format(k), 0)
    end
  end
  if type(args[1]) == "string" then error("unexpected argument '" .. args[1] .. "'", 0) end
  local o = {}
  for k, v in pairs(defaults or {}) do o[k] = v end
  for _, k in ipairs { "db", "runs", "baseline", "targets", "out" } do
    if args[k] ~= nil then o[k] = args[k] end
  end
  if args.latest then o.runs = nil end
  local r = M.generate(o)
  for _, f in ipairs(r.files) do print(f) end
  return 0
end

return M
