---@meta rawrxd
-- Type annotations of the rawrxd host module for LuaLS / EmmyLua (editor completion only; this
-- file is never run). Point your editor's `workspace.library` at rawrxd's lib-lua directory.
--
--     local rx = require "rawrxd"

---@class rawrxd
---@field version string             rawrxd version (Cargo package version)
---@field script string              the script path as given on the command line
---@field args rawrxd.Args           parsed script arguments
---@field argv string[]              the raw script arguments
---@field log rawrxd.log
---@field time rawrxd.time
---@field results rawrxd.results
local rawrxd = {}

---Script arguments: `--key value` / `--key=value` set `args.key` (numbers become numbers; dashes
---in keys are mirrored with underscores), a bare `--flag` is `true`, a repeated key is a list,
---everything else is positional (`args[1]`, …); after `--` all is positional.
---@class rawrxd.Args: { [string]: string|number|boolean|(string|number|boolean)[], [integer]: string|number }

---The configuration generation: 0 at start, +1 for every successful hot reload. Every stored
---result carries the generation it was recorded under.
---@return integer
function rawrxd.generation() end

---@class rawrxd.ReloadInfo
---@field generation integer  the new generation
---@field modules string[]    module names that were reloaded
---@field files string[]      their files

---Registers a function called after each successful hot reload (at a safe point). Use it to pick
---up the new values: `require(name)` returns the reloaded module.
---@param fn fun(info: rawrxd.ReloadInfo)
function rawrxd.on_reload(fn) end

---A reload safe point: applies edits to watched files that have settled. Long-running APIs and
---`rawrxd.time.sleep` call it for you.
---@return integer|nil generation the new generation when something was reloaded
function rawrxd.poll_reload() end

---The error (`file:line: message`) of the last reload attempt, or nil when it succeeded.
---@return string|nil
function rawrxd.reload_error() end

---@class rawrxd.log
rawrxd.log = {}
---Logs its arguments (joined with spaces, after `tostring`) at debug level.
---@param ... any
function rawrxd.log.debug(...) end
---Logs at info level.
---@param ... any
function rawrxd.log.info(...) end
---Logs at warn level.
---@param ... any
function rawrxd.log.warn(...) end
---Logs at error level.
---@param ... any
function rawrxd.log.error(...) end

---@class rawrxd.time
rawrxd.time = {}
---Seconds since the Unix epoch (UTC), with sub-second precision.
---@return number
function rawrxd.time.now() end
---Seconds since the host started, never going backwards.
---@return number
function rawrxd.time.monotonic() end
---Sleeps `seconds`, then applies pending hot reloads (a safe point).
---@param seconds number
function rawrxd.time.sleep(seconds) end

---@alias rawrxd.RunStatus "running"|"ok"|"failed"|"interrupted"

---@class rawrxd.Run
---@field id integer
---@field phase string
---@field name string
---@field rawrxd_version string
---@field git_commit string
---@field host string
---@field pid integer
---@field device string|nil
---@field driver string|nil
---@field model_path string|nil
---@field model_sha256 string|nil
---@field variant string|nil
---@field params table
---@field config_generation integer
---@field started_at number   seconds since the Unix epoch
---@field ended_at number|nil
---@field status rawrxd.RunStatus
---@field error string|nil

---@class rawrxd.Measurement
---@field run_id integer
---@field name string
---@field value number
---@field unit string
---@field tags table
---@field config_generation integer
---@field ts number

---@class rawrxd.HistogramSummary
---@field name string
---@field unit string
---@field count integer
---@field min integer
---@field mean number
---@field stdev number
---@field p50 integer
---@field p90 integer
---@field p95 integer
---@field p99 integer
---@field ["p99.9"] integer
---@field max integer

---@class rawrxd.RunDetails
---@field run rawrxd.Run
---@field measurements rawrxd.Measurement[]
---@field histograms rawrxd.HistogramSummary[]
---@field series table<string, {ts: number, value: number}[]>
---@field events {run_id: integer, ts: number, kind: string, payload: any}[]

---@class rawrxd.RunSpec
---@field phase? string        kind of run (default "script")
---@field name? string         name within the phase (default: the script's file name)
---@field device? string
---@field driver? string
---@field model? string        model file path; its SHA-256 is computed (and cached)
---@field model_sha256? string
---@field variant? string      quantization variant or scheme name
---@field params? table        run parameters, stored as JSON

---@class rawrxd.CompareOptions
---@field alpha? number                 Welch t-test significance level (default 0.05)
---@field min_change? number            smallest relative change reported (default 0.02 = 2 %)
---@field single_sample_change? number  relative change needed without spread (default 0.05)

---@class rawrxd.Summary
---@field n integer
---@field mean number
---@field sd number

---@class rawrxd.CompareRow
---@field metric string
---@field unit string
---@field a rawrxd.Summary
---@field b rawrxd.Summary
---@field change_pct number|nil
---@field direction "higher_is_better"|"lower_is_better"|"unknown"
---@field verdict "improved"|"regressed"|"no_significant_change"|"changed"|"incomparable"
---@field rule string  which rule decided, with its numbers

---@class rawrxd.Comparison
---@field a integer
---@field b integer
---@field options rawrxd.CompareOptions
---@field rows rawrxd.CompareRow[]
---@field only_in_a string[]
---@field only_in_b string[]
---@field markdown string  the comparison as a Markdown table

---The results store (SQLite). One store per script (default `results/rawrxd.sqlite` or
---`$RAWRXD_RESULTS`), one current run at a time; every row is committed as it is recorded.
---@class rawrxd.results
rawrxd.results = {}

---Opens (creating it) the results database at `path` (default: `$RAWRXD_RESULTS` or
---`results/rawrxd.sqlite`) as this script's store.
---@param path? string
---@return string path
function rawrxd.results.open(path) end

---Begins a run (provenance is added by the host) and makes it current.
---@param spec? rawrxd.RunSpec
---@return integer id
function rawrxd.results.begin_run(spec) end

---Records a value in the current run. Tags `sd` and `n` mark the value as a mean of n samples.
---@param name string
---@param value number
---@param unit? string   e.g. "tok/s", "ms", "MB"
---@param tags? table<string, any>
function rawrxd.results.record(name, value, unit, tags) end

---Records a point of a time series in the current run.
---@param name string
---@param value number
---@param ts? number  seconds since the epoch (default: now)
function rawrxd.results.record_series(name, value, ts) end

---Records a histogram (HdrHistogram, 3 significant digits) of non-negative values.
---@param name string
---@param unit? string
---@param values number[]
function rawrxd.results.record_histogram(name, unit, values) end

---Records an event (alert, fault, note) in the current run.
---@param kind string
---@param payload? any
function rawrxd.results.event(kind, payload) end

---Ends the current run. A run left open when the script ends is ended by the host.
---@param status? "ok"|"failed"|"interrupted"  default "ok"
---@param error? string
---@return integer id
function rawrxd.results.end_run(status, error) end

---The current run's id, or nil.
---@return integer|nil
function rawrxd.results.current() end

---Runs, newest first.
---@param filter? {phase?: string, name?: string, status?: rawrxd.RunStatus, limit?: integer}
---@return rawrxd.Run[]
function rawrxd.results.list(filter) end

---Everything stored about a run.
---@param id integer
---@return rawrxd.RunDetails
function rawrxd.results.query(id) end

---Compares run b against baseline run a, metric by metric, with a noise-aware verdict.
---@param a integer
---@param b integer
---@param options? rawrxd.CompareOptions
---@return rawrxd.Comparison
function rawrxd.results.compare(a, b, options) end

---Exports runs as "json" (default), "csv" or "md"; also writes `path` when given.
---@param ids integer|integer[]
---@param format? "json"|"csv"|"md"
---@param path? string
---@return string
function rawrxd.results.export(ids, format, path) end

return rawrxd
