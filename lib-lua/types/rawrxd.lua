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
---@field pool rawrxd.pool            load generation (Phase 2)
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

---@class rawrxd.PoolRequest  one request, as a request function returns it
---@field prompt? string          text for /v1/completions (or one user message for chat)
---@field messages? {role: string, content: string}[]  a conversation (chat endpoint)
---@field max_tokens? integer     default: the run's `max_tokens` (16)
---@field temperature? number
---@field top_p? number
---@field seed? integer
---@field extra? table            extra body fields: ignore_eos, top_k, min_p, repeat_penalty, …

---@class rawrxd.PoolArrival  an open-loop schedule
---@field kind? "poisson"|"constant"|"ramp"  default "poisson"
---@field rate? number            requests/s (poisson, constant)
---@field from? number            ramp start rate
---@field to? number              ramp end rate
---@field seed? integer

---@class rawrxd.PoolSlo  per-request bounds; goodput counts completed requests meeting all
---@field ttft_ms? number
---@field itl_ms? number
---@field itl_percentile? number  which percentile of a request's gaps itl_ms bounds (default 99)
---@field tpot_ms? number
---@field e2e_ms? number

---@class rawrxd.PoolEngineSpec  a model loaded for pool runs
---@field model string            GGUF file
---@field backend? "cpu"|"vulkan"|"auto"
---@field slots? integer          sequences served at once (default 4)
---@field ctx? integer            KV positions per sequence (default 2048)
---@field threads? integer        CPU threads (default: one per core)
---@field queue? integer          requests that may wait for a slot (default 256)
---@field prefill_chunk? integer  prompt tokens per engine step (default 256)
---@field timeout? number         seconds, per request (default: none)

---@class rawrxd.PoolEngine  an in-process engine behind the continuous-batching scheduler
local PoolEngine = {}
---The scheduler's counters (queue depth, running, tokens, outcomes, memory).
---@return table
function PoolEngine:metrics() end
---The model id (file name without .gguf).
---@return string
function PoolEngine:id() end
---KV cache slots.
---@return integer
function PoolEngine:slots() end
---The device name.
---@return string
function PoolEngine:device() end

---@class rawrxd.PoolRunSpec: rawrxd.PoolEngineSpec
---@field target rawrxd.PoolEngine|"engine"|string  an engine, "engine" (loads `model` for this run), or an http(s):// URL
---@field endpoint? "completions"|"chat"
---@field model_name? string      the `model` field sent over HTTP (default "default")
---@field concurrency? integer    closed loop: virtual users (give this or `arrival`)
---@field think? number           closed loop: seconds between a user's answer and next request
---@field arrival? rawrxd.PoolArrival  open loop
---@field max_in_flight? integer  open loop: cap on requests in flight (default 1024)
---@field duration? number        seconds of issuing requests (give this and/or `requests`)
---@field requests? integer       requests to issue
---@field request? fun(i: integer): rawrxd.PoolRequest  request i (1, 2, …), called on the script's thread
---@field jsonl? string           requests from a JSONL file (cycled)
---@field prompt? string          the same prompt for every request
---@field max_tokens? integer     default max_tokens (16)
---@field temperature? number     with `prompt`
---@field seed? integer           with `prompt`
---@field timeout? number         seconds per request (default 60)
---@field slo? rawrxd.PoolSlo
---@field name? string            prefix of stored measurements (default "pool")
---@field tags? table             tags of stored measurements (and histogram names)
---@field progress? boolean       live progress line on stderr
---@field records? boolean        include every request's record in the result
---@field api_key? string         HTTP bearer token

---@class rawrxd.Percentiles  milliseconds
---@field count integer
---@field mean number
---@field min number
---@field p50 number
---@field p90 number
---@field p95 number
---@field p99 number
---@field p999 number
---@field max number

---@class rawrxd.PoolResult
---@field target string
---@field wall_s number
---@field counts {scheduled: integer, sent: integer, completed: integer, failed: integer, dropped: integer, good: integer, errors: table<string, integer>}
---@field errors table<string, integer>   failed requests by kind (timeout, http_503, …)
---@field error_examples table<string, string[]>
---@field output_tokens integer
---@field prompt_tokens integer
---@field output_tps number               output tokens/s over the run
---@field requests_per_s number
---@field goodput_per_s number|nil        with an SLO
---@field slo_attainment number|nil       with an SLO
---@field level number                    concurrency or mean rate
---@field ttft rawrxd.Percentiles
---@field itl rawrxd.Percentiles
---@field tpot rawrxd.Percentiles
---@field e2e rawrxd.Percentiles
---@field queue_wait rawrxd.Percentiles
---@field prefill rawrxd.Percentiles
---@field decode rawrxd.Percentiles
---@field table string                    a plain-text report
---@field records table[]|nil             with `records = true`
---@field stored boolean                  whether it was recorded into the open results run

---Load generation: closed or open loops of streamed requests against the in-process engine or
---an OpenAI-compatible HTTP server, with TTFT/ITL/TPOT/E2E percentiles and goodput.
---@class rawrxd.pool
rawrxd.pool = {}

---Loads a model behind the continuous-batching scheduler, for several `run`s.
---@param spec rawrxd.PoolEngineSpec
---@return rawrxd.PoolEngine
function rawrxd.pool.engine(spec) end

---Runs a load and returns its result; when a results run is open, records its percentiles,
---rates and counts (`NAME.ttft_p50`, `NAME.output_tps`, …, tagged) and latency histograms
---(`NAME.ttft{tags}`, µs).
---@param spec rawrxd.PoolRunSpec
---@return rawrxd.PoolResult
function rawrxd.pool.run(spec) end

return rawrxd
