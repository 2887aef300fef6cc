--- docs/regression.lua — REGRESSION.md: the selected runs against baseline runs, with the store's
-- noise-aware verdicts (Welch's t-test where both runs have spread; see `rawrxd results compare`).
local rx = require "rawrxd"
local md = require "docs.md"

return function(ctx)
  local d, out = ctx.d, {}
  local w = function(x) out[#out + 1] = x end
  w("# Regression report\n\n")
  w(md.provenance(d, ctx.opts))
  local baselines = ctx.opts.baseline or {}
  if #baselines == 0 then
    w("No baseline given: regression not measured. Pass `--baseline RUN[,RUN...]`; each baseline " ..
      "run is compared with the selected run of the same phase and name.\n")
    return table.concat(out)
  end
  local summary = {}
  local details = {}
  for _, b in ipairs(baselines) do
    local base = rx.results.query(b).run
    local match
    for _, r in ipairs(d.runs) do
      if r.id ~= base.id and r.phase == base.phase and r.name == base.name then match = r end
    end
    if not match then
      summary[#summary + 1] = { tostring(base.id), base.phase .. "/" .. base.name, "—", "—", "—", "—",
        "no selected run of the same phase and name" }
    else
      local c = rx.results.compare(base.id, match.id)
      local n = { improved = 0, regressed = 0, no_significant_change = 0 }
      local worst = {}
      for _, row in ipairs(c.rows) do
        n[row.verdict] = (n[row.verdict] or 0) + 1
        if row.verdict == "regressed" then worst[#worst + 1] = row.metric end
      end
      summary[#summary + 1] = { tostring(base.id), base.phase .. "/" .. base.name, tostring(match.id),
        tostring(n.regressed), tostring(n.improved), tostring(n.no_significant_change),
        #worst > 0 and ("regressed: " .. table.concat(worst, ", ")) or "no regression" }
      details[#details + 1] = ("## Run %d against baseline %d (%s/%s)\n\n%s\n"):format(match.id,
        base.id, base.phase, base.name, c.markdown)
    end
  end
  w("## Summary\n\n")
  w(md.table({ "baseline", "phase/name", "run", "regressed", "improved", "no significant change",
    "verdict" }, summary) .. "\n")
  w("A change counts only when it is statistically significant (Welch's t-test at α = 0.05 when " ..
    "both runs have spread) and at least 2 % (5 % for single samples and percentiles).\n\n")
  w(table.concat(details, "\n"))
  return table.concat(out)
end
