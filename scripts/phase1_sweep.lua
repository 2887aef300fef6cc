-- Phase 1: the performance curve.
--
-- For every quantization variant (the standard mixes and hybrid schemes): load, warm up, run
-- pp and tg repeatedly, measure perplexity and KL divergence against the source model, store one
-- run per variant (with provenance), print a table and draw the curve (VRAM vs tokens/s, bubble
-- size = p95 ms/token) as SVG and PNG.
--
--     rawrxd scripts/phase1_sweep.lua                        # the default model, every variant
--     rawrxd scripts/phase1_sweep.lua --model m.gguf --variants q4_k_m,q8_0 --hybrid none
--     rawrxd scripts/phase1_sweep.lua --synth llama-7b --backend vulkan --repeats 10
--     rawrxd scripts/phase1_sweep.lua --prompt 32 --gen 16 --repeats 2 --ppl-chunks 2 --ctx 128
--
-- Flags: --model FILE, --variants a,b|none, --hybrid s.lua,...|none, --backend auto|cpu|vulkan,
-- --device N, --synth SHAPE, --prompt N (512), --gen N (128), --repeats N (5), --warmup N (1),
-- --ctx N (perplexity chunk size, 512), --ppl-chunks N (all), --text FILE (data/eval.txt),
-- --no-quality, --threads N, --db FILE, --out PREFIX (results/phase1_curve), --cache DIR, --quiet.
-- A variant that fails (out of memory, a broken scheme) is stored as failed; the sweep goes on.
-- Exit code: 0 when every variant ran, 2 when some failed.

local rx = require "rawrxd"
local phase = require "phase"
local fmt = require "fmt"

local opt = phase.options(rx.args, {
  model = "", prompt = 512, gen = 128, repeats = 5, warmup = 1, ctx = 512, ppl_chunks = 0,
  text = "data/eval.txt", no_quality = false, threads = 0, db = "", out = "results/phase1_curve",
  cache = "", quiet = false,
})
local variants = phase.variants(rx.args, {
  "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "q8_0",
  hybrid = "schemes/hybrid_example.lua",
})
if #variants == 0 then error("no variants to run (see --variants and --hybrid)") end

if opt.db ~= "" then rx.results.open(opt.db) else rx.results.open() end

-- The source model: a file, or (with --synth) none — each variant is synthesized directly.
local synth = variants[1].synth
local source
if not synth then
  source = rx.model.open(opt.model ~= "" and opt.model or rx.model.default())
end
local quality = not opt.no_quality and not synth
local n_ctx = math.max(opt.prompt, opt.gen, quality and opt.ctx or 0, 16)

local params = {
  prompt = opt.prompt, gen = opt.gen, repeats = opt.repeats, warmup = opt.warmup,
  ctx = opt.ctx, ppl_chunks = opt.ppl_chunks > 0 and opt.ppl_chunks or nil,
  text = quality and opt.text or nil, backend = variants[1].backend, synth = synth,
  threads = opt.threads > 0 and opt.threads or nil,
}

--- The model a variant runs: the source with a variant/scheme, or a synthetic file.
local function load(v)
  local base = {
    ctx = n_ctx, threads = params.threads, cache = opt.cache ~= "" and opt.cache or nil,
    quiet = opt.quiet,
  }
  if synth then
    local m = rx.model.synth { shape = synth, type = v.variant, scheme = v.scheme,
                               progress = not opt.quiet }
    base.model = m
    local o = phase.load_options(v, base)
    o.variant, o.scheme = nil, nil
    return rx.engine.load(o), m
  end
  base.model = source
  local eng = rx.engine.load(phase.load_options(v, base))
  return eng, rx.model.open(eng:info().file)
end

--- Stores a bench result and quality figures in the current run.
local function record(r, q, file_info)
  local R = rx.results
  for i, x in ipairs(r.pp and r.pp.samples or {}) do
    R.record("pp_tps", x, "tok/s", { rep = i, prompt_matmul = r.prompt_matmul })
  end
  for i, x in ipairs(r.tg and r.tg.samples or {}) do
    R.record("tg_tps", x, "tok/s", { rep = i, decode_matvec = r.decode_matvec })
  end
  if r.ms then
    R.record("ms_p50", r.ms.p50, "ms")
    R.record("ms_p95", r.ms.p95, "ms")
    R.record("ms_p99", r.ms.p99, "ms")
    local us = {}
    for i, ms in ipairs(r.token_ms) do us[i] = ms * 1000 end
    R.record_histogram("tg_token_latency", "us", us)
  end
  R.record("vram_mib", r.vram_mib, "MiB", { on_device = r.vram.on_device })
  if r.vram.device_usage then R.record("vram_driver_mib", r.vram.device_usage / 1048576, "MiB") end
  if r.bandwidth then R.record("bandwidth_gbs", r.bandwidth / 1e9, "GB/s") end
  if r.peak_pct then R.record("bandwidth_peak_pct", r.peak_pct, "%") end
  R.record("file_mib", file_info.file_size / 1048576, "MiB")
  R.record("bpw", file_info.bpw, "bits")
  if q then
    R.record("ppl", q.ppl, "", { sd = q.ppl_err, n = 1 })
    if q.kld then
      R.record("kld", q.kld, "nats", { sd = q.kld_err, n = 1 })
      R.record("same_top_pct", q.same_top * 100, "%")
    end
  end
end

local rows, failed, points = {}, 0, {}
for i, v in ipairs(variants) do
  if not opt.quiet then
    io.write(("[%d/%d] %s\n"):format(i, #variants, v.name))
    io.flush()
  end
  local eng, run
  local ok, err = pcall(function()
    local file
    eng, file = load(v)
    local info = file:info()
    local p = { file = eng:info().file, scheme = v.scheme }
    for k, x in pairs(params) do p[k] = x end
    run = rx.results.begin_run {
      phase = "phase1", name = v.name, variant = v.name, device = eng.device,
      model = synth and eng:info().file or source.path, params = p,
    }
    local r = rx.bench.run(eng, { prompt = opt.prompt, gen = opt.gen, repeats = opt.repeats,
                                  warmup = opt.warmup, progress = not opt.quiet })
    local q
    if quality then
      q = eng:perplexity { text = opt.text, ctx = opt.ctx, kld_base = source,
                           chunks = params.ppl_chunks, progress = not opt.quiet }
    end
    record(r, q, info)
    rx.results.end_run()
    run = nil
    rows[#rows + 1] = {
      variant = v.name, mib = info.file_size / 1048576, bpw = info.bpw,
      pp = fmt.pm(r.pp_tps, r.pp_sd, 1), tg = fmt.pm(r.tg_tps, r.tg_sd, 2),
      p50 = r.ms_p50, p95 = r.ms_p95, p99 = r.ms_p99, vram = r.vram_mib,
      gbs = r.bandwidth and r.bandwidth / 1e9, peak = r.peak_pct,
      ppl = q and q.ppl, kld = q and q.kld, top = q and q.same_top and q.same_top * 100,
      status = "ok",
    }
    points[#points + 1] = { variant = v.name, vram_mib = r.vram_mib, tg_tps = r.tg_tps,
                            ms_p95 = r.ms_p95 }
  end)
  if eng then eng:unload() end
  if not ok then
    failed = failed + 1
    local msg = rx.error_message(err)
    rx.log.error(("%s failed: %s"):format(v.name, msg))
    if run == nil then
      run = rx.results.begin_run { phase = "phase1", name = v.name, variant = v.name,
                                   model = source and source.path, params = params }
    end
    rx.results.end_run("failed", msg)
    local short = msg:gsub("\n.*", "")
    if #short > 72 then short = short:sub(1, 69) .. "..." end
    rows[#rows + 1] = { variant = v.name, status = "failed: " .. short }
  end
end

local spec = {
  title = ("Phase 1 — %s, %s backend, pp%d / tg%d × %d"):format(
    synth and ("synthetic " .. synth) or source.path, variants[1].backend, opt.prompt, opt.gen,
    opt.repeats),
  columns = {
    "variant", { name = "MiB", key = "mib", decimals = 1 }, { name = "bpw", key = "bpw" },
    { name = "pp t/s", key = "pp", align = "right" }, { name = "tg t/s", key = "tg", align = "right" },
    { name = "ms p50", key = "p50" }, { name = "p95", key = "p95" }, { name = "p99", key = "p99" },
    { name = "VRAM MiB", key = "vram", decimals = 1 }, { name = "GB/s", key = "gbs" },
    { name = "% peak", key = "peak", decimals = 1 },
    { name = "PPL", key = "ppl", decimals = 3 }, { name = "KLD", key = "kld", decimals = 5 },
    { name = "same top %", key = "top", decimals = 1 }, "status",
  },
  rows = rows,
}
local md = rx.report.table(spec)
local dir = opt.out:match("^(.*)/[^/]*$")
if dir then os.execute(("mkdir -p '%s'"):format(dir)) end
local f = io.open(opt.out .. ".md", "w")
if f then f:write(md) f:close() end
if #points > 0 and rx.report.curve then
  local files = rx.report.curve { points = points, out = opt.out }
  if not opt.quiet then print(("curve: %s, %s"):format(files.svg, files.png)) end
end
return failed == 0 and 0 or 2
