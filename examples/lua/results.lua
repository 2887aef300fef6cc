-- rawrxd.results: store measurements, read them back, compare two runs.
--     rawrxd examples/lua/results.lua [--db results/example.sqlite]
local rx = require "rawrxd"

rx.results.open(rx.args.db or "results/example.sqlite")
local function measure(name, base)
  local id = rx.results.begin_run { phase = "example", name = name, params = { base = base } }
  for i = 1, 5 do rx.results.record("tg_tps", base + i * 0.1, "tok/s", { rep = i }) end
  rx.results.record_histogram("itl", "us", { 900, 1000, 1100, 1500 })
  rx.results.end_run()
  return id
end
local a, b = measure("before", 40), measure("after", 44)
print(rx.results.compare(a, b).markdown)
local q = rx.results.query(b)
print(("run %d: %d measurements, itl p95 %d us"):format(q.run.id, #q.measurements,
                                                        q.histograms[1].p95))
print(rx.results.export({ a, b }, "csv"))
