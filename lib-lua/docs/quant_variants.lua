--- docs/quant_variants.lua — QUANT_VARIANTS_REPORT.md: every variant and hybrid scheme measured.
local md = require "docs.md"

return function(ctx)
  local d, out = ctx.d, {}
  local w = function(s) out[#out + 1] = s end
  w("# Quantization variants report\n\n")
  w("Every quantization variant and hybrid per-layer scheme in the selected Phase 1 runs: prefill " ..
    "and decode throughput (mean ± sd over repeats), decode time per token at P50/P95/P99, memory, " ..
    "effective memory bandwidth and its share of the device's peak, and output quality against " ..
    "the source model (perplexity; KL divergence and same-top-token rate where measured).\n\n")
  w(md.provenance(d, ctx.opts))
  w("## Variant matrix\n\n")
  if #d.variants == 0 then
    w("No Phase 1 runs were selected: variants not measured (run `rawrxd scripts/phase1_sweep.lua`).\n\n")
  else
    local rows = {}
    for _, v in ipairs(d.variants) do
      rows[#rows + 1] = {
        v.name, v.hybrid and "hybrid" or "standard", v.status, md.num(v.file_mib, 1),
        md.num(v.bpw, 2), md.pm(v.pp_tps, v.pp_tps_sd, 2), md.pm(v.tg_tps, v.tg_tps_sd, 2),
        md.num(v.ms_p50, 2), md.num(v.ms_p95, 2), md.num(v.ms_p99, 2), md.num(v.vram_mib, 1),
        md.num(v.bandwidth_gbs, 2), md.num(v.peak_pct, 1), md.num(v.ppl, 3), md.num(v.kld, 5),
        md.num(v.same_top_pct, 1), tostring(v.run.id),
      }
    end
    w(md.table({ "variant", "kind", "status", "file MiB", "bpw", "prefill tok/s", "decode tok/s",
      "ms/token P50", "ms/token P95", "ms/token P99", "VRAM MiB", "bandwidth GB/s", "% of peak BW",
      "PPL", "KLD (nats)", "same top %", "run" }, rows))
    w("\n")
    w("Units: tokens/s; ms per decoded token; MiB = 2^20 bytes; GB/s = 10^9 bytes/s. " ..
      "\"% of peak BW\" is not measured where the device's peak bandwidth is unknown (CPU).\n\n")
  end
  if ctx.plots.curve then
    w("## Performance curve\n\n")
    w(md.image("Decode tokens/s against VRAM; bubble area is P95 ms/token", ctx.plots.curve))
    w("\n")
  end
  w("## Hybrid schemes\n\n")
  local any = false
  for _, v in ipairs(d.variants) do
    if v.hybrid then
      any = true
      w(("- **%s** — scheme `%s` (run %d, %s)\n"):format(v.name, v.scheme, v.run.id, v.status))
    end
  end
  if not any then w("No hybrid scheme was measured.\n") end
  w("\n")
  local failed = {}
  for _, v in ipairs(d.variants) do
    if v.status ~= "ok" then
      failed[#failed + 1] = ("- **%s** (run %d): %s — %s\n"):format(v.name, v.run.id, v.status,
        ((v.error or "no error recorded"):gsub("\n.*", "")))
    end
  end
  if #failed > 0 then
    w("## Variants that did not complete\n\n" .. table.concat(failed) .. "\n")
  end
  local p = ctx.picks
  w("## Reading the matrix\n\n")
  if p.fastest then
    w(("- Fastest decode: **%s** at %s tok/s.\n"):format(p.fastest.name, md.num(p.fastest.tg_tps, 2)))
  end
  if p.best_quality then
    w(("- Best quality (%s): **%s** at %s.\n"):format(p.quality_label, p.best_quality.name,
      md.num(p.best_quality[p.quality_key], p.quality_key == "kld" and 5 or 3)))
  end
  if p.sweet_spot then
    w(("- Sweet spot: **%s** — %s\n"):format(p.sweet_spot.name, p.quality_key and
      ("the fastest decode among variants whose %s is no worse than the median (%s).")
        :format(p.quality_label, md.num(p.sweet_median, p.quality_key == "kld" and 5 or 3))
      or "the fastest decode (quality not measured)."))
  end
  if p.best_bandwidth then
    w(("- Highest bandwidth share: **%s** at %s %% of peak.\n"):format(p.best_bandwidth.name,
      md.num(p.best_bandwidth.peak_pct, 1)))
  else
    w("- Bandwidth share of peak: not measured (device peak unknown).\n")
  end
  return table.concat(out)
end
