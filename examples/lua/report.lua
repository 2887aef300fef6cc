-- rawrxd.report and lib-lua's stats/fmt: summarise samples into a table.
--     rawrxd examples/lua/report.lua
local rx = require "rawrxd"
local stats = require "stats"

local samples = {
  Q4_K_M = { 41.2, 40.8, 41.9, 41.0, 40.7 },
  Q8_0 = { 30.1, 29.8, 30.4, 30.0, 30.2 },
}
local rows = {}
for name, xs in pairs(samples) do
  local s = stats.summary(xs)
  rows[#rows + 1] = { variant = name, mean = s.mean, sd = s.sd, p95 = s.p95 }
end
table.sort(rows, function(x, y) return x.variant < y.variant end)
local md = rx.report.table { title = "tg128 tokens/s", rows = rows, columns = {
  "variant", { name = "mean", key = "mean" }, { name = "sd", key = "sd", decimals = 3 },
  { name = "p95", key = "p95" } } }
io.write("\nMarkdown:\n", md)
-- The same numbers as a performance curve (bubble area: p95), SVG and PNG.
local files = rx.report.curve { out = rx.args.out or "results/example_curve", points = {
  { variant = "Q4_K_M", vram_mib = 95, tg_tps = 41.1, ms_p95 = 25 },
  { variant = "Q8_0", vram_mib = 140, tg_tps = 30.1, ms_p95 = 34 } } }
print(files.svg, files.png)
