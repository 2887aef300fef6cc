-- The Phase 3 documents from a script, with stricter targets and one document of your own.
--     rawrxd examples/lua/documents.lua --out results/example_docs
-- The templates are lib-lua/docs/*.lua; a template is a function of the context
-- `{d = data, sla =, picks =, plots =, targets =, opts =}` returning the document's text.
local rx = require "rawrxd"
local docs = require "docs"

-- An extra document: every variant's decode speed as CSV.
package.loaded["example.variants_csv"] = function(ctx)
  local lines = { "variant,status,decode_tps,vram_mib" }
  for _, v in ipairs(ctx.d.variants) do
    lines[#lines + 1] = ("%s,%s,%s,%s"):format(v.name, v.status, v.tg_tps or "", v.vram_mib or "")
  end
  return table.concat(lines, "\n") .. "\n"
end
docs.documents[#docs.documents + 1] = { file = "variants.csv", template = "example.variants_csv" }

local r = docs.generate { out = rx.args.out or "results/example_docs",
                          targets = { itl_p95_ms = 40, margin = 0.25 } }
for _, f in ipairs(r.files) do print(f) end
print(("SLA checks: %d pass, %d fail, %d not measured"):format(r.sla.counts.pass,
  r.sla.counts.fail, r.sla.counts.not_measured))
