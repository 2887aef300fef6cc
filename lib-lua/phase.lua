--- phase.lua — turning a script's command line into a test plan.
--
--     local rx = require "rawrxd"
--     local phase = require "phase"
--     local opt = phase.options(rx.args, { prompt = 512, gen = 128, repeats = 5 })
--     for _, v in ipairs(phase.variants(rx.args, { "q4_k_m", "q8_0",
--                                                  hybrid = "schemes/hybrid_example.lua" })) do
--       local eng = rx.engine.load(phase.load_options(v, { model = path, ctx = 512 }))
--       ...
--     end
--
-- Flags `variants` understands (all optional; defaults come from the script):
--   --variants q4_k_m,q8_0     the standard mixes to run ("none": no mix); repeatable
--   --hybrid a.lua,b.lua       hybrid scheme files to run ("none": no scheme); repeatable
--   --backend auto|cpu|vulkan  the backend of every variant
--   --device N|NAME            the device of every variant
--   --synth SHAPE              measure a synthetic model of SHAPE (e.g. llama-7b) instead
--
-- Mix names are passed through as given (lower case); the engine checks them. The order is the
-- mixes in the order given, then the schemes.

local M = {}

--- Splits a flag value into a list: "a,b" → {"a","b"}; a repeated flag (a list) is joined; a
--- boolean (a bare `--flag`) is an error naming the flag.
---@param value any
---@param flag string
---@return string[]
function M.list(value, flag)
  local out = {}
  local function add(v)
    if type(v) == "number" then v = tostring(v) end
    if type(v) ~= "string" then
      error(("--%s: expected a comma-separated list, got %s"):format(flag, tostring(v)), 4)
    end
    for item in v:gmatch("[^,%s]+") do out[#out + 1] = item end
  end
  if type(value) == "table" then
    for _, v in ipairs(value) do add(v) end
  else
    add(value)
  end
  return out
end

local function is_none(list)
  return #list == 0 or (#list == 1 and list[1]:lower() == "none")
end

--- The base name of a scheme file without directory and `.lua` ("schemes/x.lua" → "x").
---@param path string
---@return string
function M.scheme_name(path)
  return (path:match("([^/\\]+)$") or path):gsub("%.lua$", "")
end

---@class phase.Variant
---@field name string          display and store name: "Q4_K_M" or the scheme's base name
---@field kind "mix"|"scheme"
---@field variant string|nil   the mix (for `rawrxd.engine.load{variant=}`)
---@field scheme string|nil    the scheme file (for `rawrxd.engine.load{scheme=}`)
---@field backend string       "auto", "cpu" or "vulkan"
---@field device string|integer|nil
---@field synth string|nil     synthetic shape to measure instead of the model

--- The variants to run: `defaults` lists mix names (array part) and may set `hybrid` (a scheme
--- path or a list of them), `backend` and `device`; the flags in the header override them.
---@param args table   `rawrxd.args`
---@param defaults table
---@return phase.Variant[]
function M.variants(args, defaults)
  args = args or {}
  defaults = defaults or {}
  local mixes = {}
  for _, m in ipairs(defaults) do mixes[#mixes + 1] = m end
  if args.variants ~= nil then
    mixes = M.list(args.variants, "variants")
    if is_none(mixes) then mixes = {} end
  end
  local schemes = {}
  if type(defaults.hybrid) == "string" then
    schemes = { defaults.hybrid }
  elseif type(defaults.hybrid) == "table" then
    for _, s in ipairs(defaults.hybrid) do schemes[#schemes + 1] = s end
  end
  if args.hybrid ~= nil then
    schemes = M.list(args.hybrid, "hybrid")
    if is_none(schemes) then schemes = {} end
  end
  local backend = args.backend or defaults.backend or "auto"
  if backend ~= "auto" and backend ~= "cpu" and backend ~= "vulkan" then
    error(("--backend: expected auto, cpu or vulkan, got '%s'"):format(tostring(backend)), 2)
  end
  local device = args.device or defaults.device
  if device == true then error("--device: expected a device index or name", 2) end
  local synth = args.synth or defaults.synth
  if synth == true then error("--synth: expected a shape, e.g. --synth llama-7b", 2) end

  local out, seen = {}, {}
  local function push(v)
    if seen[v.name] then
      error(("variant '%s' is listed twice"):format(v.name), 3)
    end
    seen[v.name] = true
    v.backend, v.device, v.synth = backend, device, synth
    out[#out + 1] = v
  end
  for _, m in ipairs(mixes) do
    if not m:match("^[%w_]+$") then
      error(("--variants: '%s' is not a mix name (like q4_k_m)"):format(m), 2)
    end
    push { name = m:upper(), kind = "mix", variant = m:lower() }
  end
  for _, s in ipairs(schemes) do
    push { name = M.scheme_name(s), kind = "scheme", scheme = s }
  end
  return out
end

--- The `rawrxd.engine.load` options for variant `v`, on top of `base` (model, ctx, threads, …).
---@param v phase.Variant
---@param base? table
---@return table
function M.load_options(v, base)
  local o = {}
  for k, x in pairs(base or {}) do o[k] = x end
  o.backend = v.backend
  o.device = v.device
  o.variant = v.variant
  o.scheme = v.scheme
  return o
end

--- Numeric and string settings: every key of `defaults` may be overridden by a flag of the same
--- name (dashes or underscores); a flag must have the default's type (a number for a number).
---@param args table   `rawrxd.args`
---@param defaults table<string, any>
---@return table<string, any>
function M.options(args, defaults)
  local o = {}
  for k, d in pairs(defaults) do
    local v = args[k]
    if v == nil then v = args[(k:gsub("_", "-"))] end
    if v == nil then
      o[k] = d
    elseif type(d) == "number" then
      if type(v) ~= "number" then
        error(("--%s: expected a number, got %s"):format((k:gsub("_", "-")), tostring(v)), 2)
      end
      if math.type(d) == "integer" and math.type(v) ~= "integer" then
        error(("--%s: expected a whole number, got %s"):format((k:gsub("_", "-")), tostring(v)), 2)
      end
      o[k] = v
    elseif type(d) == "boolean" then
      o[k] = v == true or v == "true" or v == 1
    else
      o[k] = tostring(v)
    end
  end
  return o
end

--- Prompts of different lengths for Phase 2 load, cycled over requests.
M.prompts = {
  "The capital of France is",
  "Write a short poem about the sea.",
  "Explain in one paragraph why the sky is blue, as you would to a curious child who keeps asking why.",
  "List three uses of a paper clip:",
  "Once upon a time, in a village at the edge of a forest,",
}

--- A pool request function: request i gets prompt i of `M.prompts` (cycled), greedy, exactly
--- `max_tokens` tokens (EOS ignored), so runs are repeatable.
---@param max_tokens integer
---@return fun(i: integer): table
function M.request_fn(max_tokens)
  return function(i)
    return {
      prompt = M.prompts[(i - 1) % #M.prompts + 1],
      max_tokens = max_tokens,
      temperature = 0,
      extra = { ignore_eos = true },
    }
  end
end

return M
