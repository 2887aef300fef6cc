--- docs/sla.lua — PERFORMANCE_SLA_SPECIFICATION.md: SLAs from measured percentiles, with margins.
local md = require "docs.md"

local function rows(checks)
  local out = {}
  for _, c in ipairs(checks) do
    local op = c.op == "<=" and "≤" or "≥"
    out[#out + 1] = {
      c.scope, c.metric, c.unit, md.num(c.measured, 2), md.num(c.committed, 2),
      c.target and (op .. " " .. md.num(c.target + 0.0, 2)) or "—", c.verdict:upper(),
    }
  end
  return out
end

local HEAD = { "scope", "metric", "unit", "measured", "SLA (committed)", "target", "verdict" }

return function(ctx)
  local s, t, out = ctx.sla, ctx.targets, {}
  local w = function(x) out[#out + 1] = x end
  local margin = (t.margin or 0) * 100
  w("# Performance SLA specification\n\n")
  w(("Service levels rawrxd commits to on the measured device, derived from the measured " ..
    "percentiles. **Margin: %s %%** — a latency is committed at measured × %.2f, a throughput " ..
    "at measured × %.2f; counted figures (errors, crashes, lost requests, drift bounds, scaling " ..
    "efficiency) are committed as measured. A check passes when the committed figure still meets " ..
    "the target; \"not measured\" means the selected runs hold no such measurement.\n\n")
    :format(md.num(margin, 0), 1 + (t.margin or 0), 1 - (t.margin or 0)))
  w(md.provenance(ctx.d, ctx.opts))
  w(("## Summary\n\n%d checks: **%d pass**, **%d fail**, %d not measured.\n\n"):format(
    s.counts.total, s.counts.pass, s.counts.fail, s.counts.not_measured))
  w("## Single stream, per variant (Phase 1)\n\n")
  w(md.table(HEAD, rows(s.variant)) .. "\n")
  w("## Per concurrency level (Phase 2)\n\n")
  w("ITL = every gap between consecutive tokens of a request, pooled; TTFT = send to first token.\n\n")
  w(md.table(HEAD, rows(s.concurrency)) .. "\n")
  w("## Stability (soak)\n\n")
  w("Drift = the upper 95 % bound of the fitted memory slope (after warm-up) × the soak's length.\n\n")
  w(md.table(HEAD, rows(s.soak)) .. "\n")
  w("## Fault recovery\n\n")
  w(md.table(HEAD, rows(s.faults)) .. "\n")
  w("## Targets\n\n")
  w("Set by " .. (ctx.opts.targets_file or "lib-lua/docs/targets.lua") .. ":\n\n")
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do w(("- `%s` = %s\n"):format(k, tostring(t[k]))) end
  return table.concat(out)
end
