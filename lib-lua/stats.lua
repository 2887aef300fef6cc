--- stats.lua — small descriptive statistics for scripts.
--
--     local stats = require "stats"
--     stats.mean { 1, 2, 3 }              --> 2
--     stats.percentile({ 1, 2, 3, 4 }, 95) --> 3.85
--
-- Conventions (the same as rawrxd's Rust side, so numbers agree): `sd` is the *sample* standard
-- deviation (n - 1 in the denominator; 0 for fewer than two values); percentiles interpolate
-- linearly between the closest ranks (numpy's default, "type 7"), with `p` in 0..100. Functions
-- never modify their input; NaN and non-numbers are errors, an empty list gives nil.

local M = {}

local function check(xs, what)
  if type(xs) ~= "table" then
    error(("stats.%s: expected a list of numbers, got %s"):format(what, type(xs)), 3)
  end
  for i, x in ipairs(xs) do
    if type(x) ~= "number" or x ~= x then
      error(("stats.%s: element %d is %s, not a number"):format(what, i, tostring(x)), 3)
    end
  end
  return #xs
end

--- The sum of `xs` (0 for an empty list).
---@param xs number[]
---@return number
function M.sum(xs)
  check(xs, "sum")
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end

--- The arithmetic mean, or nil for an empty list.
---@param xs number[]
---@return number|nil
function M.mean(xs)
  local n = check(xs, "mean")
  if n == 0 then return nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s / n
end

--- The sample variance (n - 1), 0 for one value, nil for none.
---@param xs number[]
---@return number|nil
function M.variance(xs)
  local n = check(xs, "variance")
  if n == 0 then return nil end
  if n == 1 then return 0 end
  local m = M.mean(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + (x - m) ^ 2 end
  return s / (n - 1)
end

--- The sample standard deviation (n - 1), 0 for one value, nil for none.
---@param xs number[]
---@return number|nil
function M.sd(xs)
  local v = M.variance(xs)
  return v and math.sqrt(v)
end

--- The smallest value, or nil.
---@param xs number[]
---@return number|nil
function M.min(xs)
  check(xs, "min")
  local m
  for _, x in ipairs(xs) do if m == nil or x < m then m = x end end
  return m
end

--- The largest value, or nil.
---@param xs number[]
---@return number|nil
function M.max(xs)
  check(xs, "max")
  local m
  for _, x in ipairs(xs) do if m == nil or x > m then m = x end end
  return m
end

--- A sorted copy of `xs`.
---@param xs number[]
---@return number[]
function M.sorted(xs)
  check(xs, "sorted")
  local c = {}
  for i, x in ipairs(xs) do c[i] = x end
  table.sort(c)
  return c
end

local function pct_sorted(s, p)
  local n = #s
  local rank = (math.max(0, math.min(100, p)) / 100) * (n - 1)
  local lo = math.floor(rank)
  local hi = math.ceil(rank)
  return s[lo + 1] + (s[hi + 1] - s[lo + 1]) * (rank - lo)
end

--- The `p`-th percentile (0..100) by linear interpolation between closest ranks, or nil.
---@param xs number[]
---@param p number
---@return number|nil
function M.percentile(xs, p)
  local n = check(xs, "percentile")
  if type(p) ~= "number" or p ~= p then
    error(("stats.percentile: p must be a number in 0..100, got %s"):format(tostring(p)), 2)
  end
  if n == 0 then return nil end
  return pct_sorted(M.sorted(xs), p)
end

--- The median (50th percentile), or nil.
---@param xs number[]
---@return number|nil
function M.median(xs)
  return M.percentile(xs, 50)
end

--- Several percentiles at once: `{ [50] = .., [95] = .., [99] = .. }` for `ps = {50, 95, 99}`.
---@param xs number[]
---@param ps number[]
---@return table<number, number>
function M.percentiles(xs, ps)
  local n = check(xs, "percentiles")
  local out = {}
  if n == 0 then return out end
  local s = M.sorted(xs)
  for _, p in ipairs(ps) do out[p] = pct_sorted(s, p) end
  return out
end

---@class stats.Summary
---@field n integer
---@field mean number|nil
---@field sd number|nil
---@field min number|nil
---@field max number|nil
---@field p50 number|nil
---@field p95 number|nil
---@field p99 number|nil

--- Count, mean, sd, min, max and the 50/95/99th percentiles of `xs`.
---@param xs number[]
---@return stats.Summary
function M.summary(xs)
  local n = check(xs, "summary")
  local out = { n = n, mean = M.mean(xs), sd = M.sd(xs), min = M.min(xs), max = M.max(xs) }
  if n > 0 then
    local s = M.sorted(xs)
    out.p50, out.p95, out.p99 = pct_sorted(s, 50), pct_sorted(s, 95), pct_sorted(s, 99)
  end
  return out
end

return M
