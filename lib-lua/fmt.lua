--- fmt.lua — number and table formatting for script output.
--
--     local fmt = require "fmt"
--     fmt.pm(41.234, 0.56)             --> "41.23 ± 0.56"
--     fmt.bytes(97517568)              --> "93.0 MiB"
--     print(fmt.text { columns = { "variant", { name = "tg t/s", key = "tg", decimals = 1 } },
--                      rows = { { variant = "Q4_K_M", tg = 41.2 } } })
--
-- A table spec is `{ title = ?, columns = {...}, rows = {...} }`. A column is a name (also the
-- key into map rows) or `{ name =, key = ?, decimals = ?, format = ?, align = "left"|"right" }`
-- (`format` is a `string.format` pattern or a function of the value). A row is a map (cells by
-- column key) or a list (cells by column position). Numbers are right-aligned, everything else
-- left-aligned, unless the column says otherwise; a missing cell (nil, NaN) prints as "-".
-- `rawrxd.report.table` takes the same spec.

local M = {}

--- `x` with `decimals` digits after the point (default 2); "-" for nil or NaN; integers as is.
---@param x number|nil
---@param decimals? integer
---@return string
function M.num(x, decimals)
  if x == nil or x ~= x then return "-" end
  if type(x) ~= "number" then return tostring(x) end
  if math.type(x) == "integer" and decimals == nil then return tostring(x) end
  return string.format("%." .. (decimals or 2) .. "f", x)
end

--- "mean ± sd" with `decimals` digits (default 2); the sd part is left out when sd is nil.
---@param mean number|nil
---@param sd number|nil
---@param decimals? integer
---@return string
function M.pm(mean, sd, decimals)
  if mean == nil or mean ~= mean then return "-" end
  local d = decimals or 2
  if sd == nil or sd ~= sd then return M.num(mean + 0.0, d) end
  return M.num(mean + 0.0, d) .. " ± " .. M.num(sd + 0.0, d)
end

--- A fraction (0..1) as a percentage: `fmt.pct(0.4512)` → "45.1 %".
---@param frac number|nil
---@param decimals? integer
---@return string
function M.pct(frac, decimals)
  if frac == nil or frac ~= frac then return "-" end
  return string.format("%." .. (decimals or 1) .. "f %%", frac * 100)
end

local UNITS = { "B", "KiB", "MiB", "GiB", "TiB" }

--- A byte count in binary units: 1536 → "1.5 KiB", 97517568 → "93.0 MiB".
---@param n number|nil
---@return string
function M.bytes(n)
  if n == nil or n ~= n then return "-" end
  local i = 1
  while math.abs(n) >= 1024 and i < #UNITS do
    n = n / 1024
    i = i + 1
  end
  if i == 1 then return string.format("%d B", math.floor(n)) end
  return string.format("%.1f %s", n, UNITS[i])
end

--- Bytes as MiB with one decimal ("93.0").
---@param n number|nil
---@return string
function M.mib(n)
  if n == nil or n ~= n then return "-" end
  return string.format("%.1f", n / 1048576)
end

--- The columns of a spec in canonical form: `{ name, key, decimals, format, align }`.
---@param spec table
---@return table[]
function M.columns(spec)
  if type(spec) ~= "table" or type(spec.columns) ~= "table" then
    error("fmt: a table spec needs a 'columns' list", 3)
  end
  local out = {}
  for i, c in ipairs(spec.columns) do
    if type(c) == "string" then
      out[i] = { name = c, key = c }
    elseif type(c) == "table" and type(c.name) == "string" then
      out[i] = { name = c.name, key = c.key or c.name, decimals = c.decimals, format = c.format,
                 align = c.align }
    else
      error(("fmt: column %d must be a name or { name = ... }"):format(i), 3)
    end
  end
  return out
end

local function cell(col, row, i)
  local v
  if row[1] ~= nil or next(row) == nil then v = row[i] else v = row[col.key] end
  local text
  if v == nil or v ~= v then
    text = "-"
  elseif type(col.format) == "function" then
    text = tostring(col.format(v))
  elseif type(col.format) == "string" then
    text = string.format(col.format, v)
  elseif type(v) == "number" then
    text = M.num(v, col.decimals)
  else
    text = tostring(v)
  end
  local align = col.align or (type(v) == "number" and "right" or "left")
  return text, align
end

--- The cells of a spec as strings, with per-cell alignment.
---@param spec table
---@return table[] columns, string[][] cells, string[][] aligns
function M.cells(spec)
  local cols = M.columns(spec)
  local cells, aligns = {}, {}
  for r, row in ipairs(spec.rows or {}) do
    if type(row) ~= "table" then error(("fmt: row %d is not a table"):format(r), 3) end
    cells[r], aligns[r] = {}, {}
    for i, c in ipairs(cols) do cells[r][i], aligns[r][i] = cell(c, row, i) end
  end
  return cols, cells, aligns
end

-- Display width: UTF-8 code points (good enough for "±", "→" and Latin text).
local function width(s)
  return utf8.len(s) or #s
end

local function pad(s, w, align)
  local fill = string.rep(" ", w - width(s))
  if align == "right" then return fill .. s end
  return s .. fill
end

--- The spec as aligned plain text (two spaces between columns, a dashed rule under the header).
---@param spec table
---@return string
function M.text(spec)
  local cols, cells, aligns = M.cells(spec)
  local w = {}
  for i, c in ipairs(cols) do
    w[i] = width(c.name)
    for r = 1, #cells do w[i] = math.max(w[i], width(cells[r][i])) end
  end
  local lines = {}
  if spec.title then lines[#lines + 1] = spec.title end
  local head, rule = {}, {}
  for i, c in ipairs(cols) do
    local a = (cells[1] and aligns[1][i]) or c.align or "left"
    head[i] = pad(c.name, w[i], a)
    rule[i] = string.rep("-", w[i])
  end
  lines[#lines + 1] = (table.concat(head, "  "):gsub("%s+$", ""))
  lines[#lines + 1] = table.concat(rule, "  ")
  for r = 1, #cells do
    local parts = {}
    for i = 1, #cols do parts[i] = pad(cells[r][i], w[i], aligns[r][i]) end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The spec as a GitHub-flavoured Markdown table (`|` in cells escaped).
---@param spec table
---@return string
function M.markdown(spec)
  local cols, cells, aligns = M.cells(spec)
  local esc = function(s) return (s:gsub("|", "\\|")) end
  local lines = {}
  if spec.title then lines[#lines + 1] = "**" .. spec.title .. "**\n" end
  local head, rule = {}, {}
  for i, c in ipairs(cols) do
    head[i] = esc(c.name)
    local a = (cells[1] and aligns[1][i]) or c.align or "left"
    rule[i] = a == "right" and "---:" or "---"
  end
  lines[#lines + 1] = "| " .. table.concat(head, " | ") .. " |"
  lines[#lines + 1] = "| " .. table.concat(rule, " | ") .. " |"
  for r = 1, #cells do
    local parts = {}
    for i = 1, #cols do parts[i] = esc(cells[r][i]) end
    lines[#lines + 1] = "| " .. table.concat(parts, " | ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
