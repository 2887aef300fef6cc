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
---@field model rawrxd.model
---@field engine rawrxd.engine
---@field bench rawrxd.bench
---@field probe rawrxd.probe
---@field quant rawrxd.quant
---@field report rawrxd.report
---@field pool rawrxd.pool            load generation (Phase 2)
---@field soak rawrxd.soak            soak runs with leak verdicts (Phase 2)
---@field alerts rawrxd.alerts        alert rules over samples, notified to webhooks
---@field webhook rawrxd.webhook      ad-hoc chat / JSON webhook notifications
local rawrxd = {}

---The one-line `file:line: message` of an error caught with `pcall` (a Rust error's `tostring`
---also carries a traceback).
---@param err any
---@return string
function rawrxd.error_message(err) end

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

---Everything stored about several runs, oldest first: the given ids, else the newest run of each
---(phase, name), optionally only of `phases` (what the Phase 3 documents read).
---@param opts? {runs?: integer|integer[], phases?: string[]}
---@return rawrxd.RunDetails[]
function rawrxd.results.gather(opts) end

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

-- ---------------------------------------------------------------------------------------------
-- Models

---@class rawrxd.TensorSummary
---@field name string
---@field type string      ggml type name ("q4_K", "f32")
---@field shape integer[]  ggml order: row length first
---@field bytes integer

---@class rawrxd.ModelInfo
---@field path string
---@field gguf_version integer
---@field arch string|nil
---@field name string|nil
---@field file_type integer|nil   general.file_type (llama.cpp's LLAMA_FTYPE_*)
---@field file_size integer       bytes
---@field n_params integer
---@field tensor_bytes integer
---@field bpw number              bits per weight over all tensors
---@field hparams table|nil       n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, ...
---@field tokenizer {model: string|nil, pre: string|nil, n_tokens: integer|nil}
---@field n_tensors integer
---@field types table<string, {count: integer, bytes: integer}>  by ggml type name
---@field tensors rawrxd.TensorSummary[]

---An open GGUF model file (memory-mapped once, shared by the engines loaded from it).
---@class rawrxd.Model
---@field path string
local Model = {}
---What the file holds.
---@return rawrxd.ModelInfo
function Model:info() end

---@class rawrxd.model
rawrxd.model = {}
---Opens a GGUF file.
---@param path string
---@return rawrxd.Model
function rawrxd.model.open(path) end
---@class rawrxd.SynthOptions
---@field shape string           a preset (llama-7b, llama-3b, llama-1b, smollm-135m), a
---                              `key=value,...` list (n_embd, n_layer, n_head, n_head_kv, n_ff,
---                              n_vocab, n_ctx, tied, rope_base) or a preset with overrides
---@field type? string           a mix (default "Q4_K_M"), quantized while written
---@field scheme? string         or a hybrid scheme file
---@field out? string            output file (default: the variant cache, reused when present)
---@field seed? integer          weight seed (default 42)
---@field vocab_from? rawrxd.Model|string  take the tokenizer of this model (same vocab size)
---@field progress? boolean      progress bar on stderr (default true)

---Writes a synthetic llama model (seeded random weights) and opens it. Speed does not depend on
---weight values, so this is how big shapes are measured without downloading weights.
---@param opts rawrxd.SynthOptions
---@return rawrxd.Model
function rawrxd.model.synth(opts) end

---The path of the embedded default model (models/SmolLM2-135M-Instruct.Q4_1.gguf), searched in
---`$RAWRXD_MODEL`, `./models`, next to the executable and in the source tree. Errors (telling to
---run scripts/setup.sh) when it is missing.
---@return string
function rawrxd.model.default() end

-- ---------------------------------------------------------------------------------------------
-- Engines

---@class rawrxd.HeapUsage
---@field size integer
---@field device_local boolean
---@field budget integer|nil  bytes this process may use (VK_EXT_memory_budget)
---@field usage integer|nil   bytes this process uses

---@class rawrxd.Vram
---@field weights integer    bytes of weights (rawrxd's own accounting)
---@field kv_cache integer
---@field scratch integer
---@field total integer
---@field on_device boolean  device memory (true) or host memory (false)
---@field heaps rawrxd.HeapUsage[]  the driver's view, where available
---@field device_usage integer|nil  summed usage of device-local heaps

---@class rawrxd.EngineInfo
---@field model string        the model as given
---@field file string         the file the engine runs (the model or a cached variant)
---@field variant string      "source", a mix ("Q4_K_M") or the scheme's name
---@field scheme string|nil
---@field backend string
---@field device string
---@field n_ctx integer
---@field threads integer|nil
---@field loaded boolean
---@field generation integer  configuration generation of the weights it holds now

---A model loaded on a backend.
---@class rawrxd.Engine
---@field backend string
---@field device string
---@field variant string
---@field n_ctx integer
local Engine = {}
---How the engine was loaded.
---@return rawrxd.EngineInfo
function Engine:info() end
---Memory the engine holds (as `rawrxd.probe.vram(engine)`).
---@return rawrxd.Vram
function Engine:memory() end
---Every tensor's type in the engine now: `{ ["blk.0.attn_q.weight"] = "q4_K", ... }`.
---@return table<string, string>
function Engine:types() end
---Same as `rawrxd.bench.run(engine, opts)`.
---@param opts? rawrxd.BenchOptions
---@return rawrxd.BenchResult
function Engine:bench(opts) end
---Frees the engine now; later calls on it are errors.
---@return boolean was_loaded
function Engine:unload() end

---@class rawrxd.GenerateOptions
---@field prompt string
---@field n? integer             tokens to generate at most (default 128)
---@field temp? number           temperature (default 0.8; 0 is greedy)
---@field top_k? integer         default 40 (0 disables)
---@field top_p? number          default 0.95
---@field min_p? number          default 0.05
---@field repeat_penalty? number default 1 (off)
---@field repeat_last_n? integer default 64
---@field seed? integer          default 0
---@field special? boolean       parse special tokens in the prompt (default true)
---@field on_token? fun(piece: string): boolean|nil  each piece as generated; false stops

---@class rawrxd.GenerateResult
---@field text string
---@field tokens integer         generated tokens (an end-of-generation token is not counted)
---@field token_ids integer[]
---@field n_prompt integer
---@field pp_tps number          prefill tokens/s
---@field tg_tps number          decode tokens/s
---@field stop "eog"|"max_tokens"|"context_full"|"callback"

---Generates text after `prompt` (llama.cpp's default sampler chain).
---@param opts rawrxd.GenerateOptions
---@return rawrxd.GenerateResult
function Engine:generate(opts) end

---@class rawrxd.PerplexityOptions
---@field text string            a text file
---@field ctx? integer           tokens per chunk (default min(512, the engine's context))
---@field chunks? integer        at most this many chunks (default all)
---@field kld_base? rawrxd.Model|string|rawrxd.Engine  compare against this model's distributions
---@field progress? boolean
---@field cache? string          where base log-probabilities are kept

---@class rawrxd.PerplexityResult
---@field ppl number
---@field ppl_err number
---@field ctx integer
---@field chunks integer
---@field n_scored integer
---@field n_tokens integer
---@field text string
---@field chunk_ppl number[]|nil running perplexity after each chunk (without kld_base)
---@field kld number|nil         mean KL(base ‖ this), nats
---@field kld_err number|nil
---@field kld_max number|nil
---@field same_top number|nil    fraction (0..1) of positions with the same most likely token
---@field same_top_err number|nil
---@field base_ppl number|nil
---@field base_ppl_err number|nil

---Perplexity of a text (llama-perplexity's algorithm); with `kld_base`, also KL divergence and
---top-token agreement against that model (its log-probabilities are computed once and cached).
---@param opts rawrxd.PerplexityOptions
---@return rawrxd.PerplexityResult
function Engine:perplexity(opts) end

---@class rawrxd.LoadOptions
---@field model? rawrxd.Model|string  default: rawrxd.model.default()
---@field backend? "auto"|"cpu"|"vulkan"  default "auto" (Vulkan when usable, else CPU)
---@field device? string|integer      the device to run on (Vulkan)
---@field ctx? integer                KV cache positions (default min(1024, training context))
---@field threads? integer            CPU threads (default: one per core)
---@field variant? string             a mix ("q4_k_m"): quantized into the cache (reused) first
---@field scheme? string              a hybrid scheme file: resolved per tensor, quantized, and
---                                   hot-reloaded while the engine lives
---@field cache? string               variant cache directory (default $RAWRXD_CACHE or results/cache)
---@field progress? boolean           progress bars on stderr (default true)
---@field quiet? boolean              do not print a scheme's per-tensor types

---@class rawrxd.engine
rawrxd.engine = {}
---Loads a model (or a variant of it) on a backend.
---@param opts? rawrxd.LoadOptions
---@return rawrxd.Engine
function rawrxd.engine.load(opts) end
---The engines this script has loaded and not unloaded.
---@return rawrxd.Engine[]
function rawrxd.engine.list() end

-- ---------------------------------------------------------------------------------------------
-- Bench

---@class rawrxd.BenchOptions
---@field prompt? integer    prompt tokens of the pp test (default 512; 0 skips it)
---@field gen? integer       generated tokens of the tg test (default 128; 0 skips it)
---@field repeats? integer   measured repetitions (default 5)
---@field warmup? integer    unmeasured repetitions first (default 1)
---@field seed? integer      seed of the random token ids
---@field progress? boolean  progress bar on stderr (default true; only on a terminal)

---@class rawrxd.RateSummary
---@field mean number
---@field sd number
---@field min number
---@field max number
---@field samples number[]  one per repetition

---@class rawrxd.BenchResult
---@field backend string
---@field device string
---@field prompt_matmul string       "f32" or "f16 tensor cores" (how prompt products ran; not like for like)
---@field decode_matvec string       "f32" or "q8 int dot" (how decode products ran: 8-bit activations, as llama.cpp's GPU backends), with ", batches on int8 tensor cores" (or "emulated int8 tiles") when RAWRXD_MMQ put batches (of RAWRXD_MMQ_MIN_BATCH, default 6, or more) on them, ", every product on …" when RAWRXD_MMQ_MIN_BATCH=1 put single sequences on them too
---@field variant string
---@field prompt integer
---@field gen integer
---@field repeats integer
---@field warmup integer
---@field pp rawrxd.RateSummary|nil   prompt tokens/s
---@field tg rawrxd.RateSummary|nil   generated tokens/s
---@field pp_tps number|nil
---@field pp_sd number|nil
---@field tg_tps number|nil
---@field tg_sd number|nil
---@field ms {p50: number, p95: number, p99: number, max: number, count: integer}|nil  ms/token
---@field ms_p50 number|nil
---@field ms_p95 number|nil
---@field ms_p99 number|nil
---@field token_ms number[]          every measured token's ms, sorted
---@field decode_weight_bytes integer  weight bytes one decode step reads
---@field bandwidth number|nil       effective bytes/s (decode_weight_bytes × tg_tps)
---@field peak_bandwidth number|nil  the device's peak bytes/s, if known
---@field peak_pct number|nil        bandwidth as % of peak
---@field vram rawrxd.Vram
---@field vram_mib number            the engine's accounted memory in MiB
---@field generation_start integer   configuration generation when the bench began
---@field generation integer         ... and when it ended (a scheme reload in between moves it)

---@class rawrxd.bench
rawrxd.bench = {}
---llama-bench-style pp/tg measurement in Rust. Between repetitions it is a hot-reload safe point:
---edits are applied and re-quantized tensors of a changed scheme are swapped in.
---@param engine rawrxd.Engine
---@param opts? rawrxd.BenchOptions
---@return rawrxd.BenchResult
function rawrxd.bench.run(engine, opts) end

-- ---------------------------------------------------------------------------------------------
-- Probes

---@class rawrxd.probe
rawrxd.probe = {}
---An engine's memory (or, without one, the sum over every loaded engine): rawrxd's accounting
---plus the driver's heap budget/usage where the backend can read it.
---@param engine? rawrxd.Engine
---@return rawrxd.Vram
function rawrxd.probe.vram(engine) end
---This process's resident memory in bytes (nil if it cannot be read).
---@return integer|nil
function rawrxd.probe.rss() end
---This process's RSS and the machine's memory, bytes.
---@return {rss: integer|nil, total: integer|nil, available: integer|nil, used: integer|nil}
function rawrxd.probe.memory() end
---CPU usage in % since the previous call: `process` (100 = one core), `system` (all cores),
---`cores`, and `time_ms` (this process's accumulated CPU time).
---@return {process: number|nil, system: number|nil, cores: integer|nil, time_ms: integer|nil}
function rawrxd.probe.cpu() end
---GPU memory counters from sysfs where the kernel offers them (AMD); empty elsewhere.
---@return {card: string, vendor: string|nil, vram_used: integer|nil, vram_total: integer|nil, gtt_used: integer|nil}[]
function rawrxd.probe.gpu() end

-- ---------------------------------------------------------------------------------------------
-- Quantization

---@class rawrxd.SchemeTensor
---@field name string
---@field type string    the type the scheme gives it
---@field from string    its type in the model
---@field rule integer|nil  1-based index of the rule that decided (nil: the default)

---@class rawrxd.SchemeResolution
---@field path string
---@field model string
---@field rules integer
---@field types table<string, string>   tensor name → type
---@field tensors rawrxd.SchemeTensor[]
---@field counts table<string, integer> type → tensors
---@field file_type integer
---@field warnings string[]              rules that matched nothing

---@class rawrxd.QuantizeOptions
---@field input rawrxd.Model|string
---@field output string
---@field type? string          a mix (llama-quantize's names)
---@field scheme? string        or a hybrid scheme file
---@field allow_requantize? boolean  convert already-quantized tensors (default false)
---@field progress? boolean

---@class rawrxd.QuantizeResult
---@field output string
---@field n_tensors integer
---@field bytes_in integer
---@field bytes_out integer
---@field file_size_in integer
---@field file_size_out integer
---@field bpw number
---@field seconds number

---@class rawrxd.quant
rawrxd.quant = {}
---The standard mixes rawrxd can make ("Q2_K", ..., "Q4_K_M", ..., "F32").
---@return string[]
function rawrxd.quant.mixes() end
---Loads a hybrid scheme and resolves it for a model (default: the default model).
---@param path string
---@param model? rawrxd.Model|string
---@return rawrxd.SchemeResolution
function rawrxd.quant.scheme(path, model) end
---Converts a whole GGUF file to a mix or a scheme (in Rust, streamed, rows in parallel).
---@param opts rawrxd.QuantizeOptions
---@return rawrxd.QuantizeResult
function rawrxd.quant.quantize(opts) end

-- ---------------------------------------------------------------------------------------------
-- Reports

---@class rawrxd.TableColumn
---@field name string
---@field key? string             field of map rows (default: name)
---@field decimals? integer       digits after the point for numbers (default 2; integers as is)
---@field format? string|fun(v: any): string
---@field align? "left"|"right"   default: right for numbers, left otherwise

---@class rawrxd.TableSpec
---@field title? string
---@field columns (string|rawrxd.TableColumn)[]
---@field rows table[]            maps (by column key) or lists (by position); nil/NaN print "-"
---@field print? boolean          print the aligned text (default true)

---@class rawrxd.report
rawrxd.report = {}
---Prints the table as aligned text and returns it as Markdown (lib-lua's fmt.lua rules).
---@param spec rawrxd.TableSpec
---@return string markdown
function rawrxd.report.table(spec) end

---@class rawrxd.CurvePoint
---@field variant string
---@field vram_mib number
---@field tg_tps number
---@field ms_p95 number

---@class rawrxd.PlotFiles
---@field svg string
---@field png string

---Phase 1's performance curve: decode tokens/s against VRAM, one bubble per variant whose area is
---its p95 ms/token. Writes `<out>.svg` and `<out>.png` (directories are created).
---@param opts {points: rawrxd.CurvePoint[], out: string, title?: string, width?: integer, height?: integer}
---@return rawrxd.PlotFiles
function rawrxd.report.curve(opts) end

---@class rawrxd.PlotSeries
---@field name? string
---@field points ({[1]: number, [2]: number}|{x: number, y: number})[]
---@field labels? string[]   one per point
---@field sizes? number[]    bubble sizes (kind = "bubble")
---@field dashed? boolean    a dashed reference line

---Any line, scatter or bubble plot, as `<out>.svg` and `<out>.png`.
---@param opts {out: string, title?: string, x?: string, y?: string, kind?: "line"|"scatter"|"bubble", series: rawrxd.PlotSeries[], size_label?: string, log_x?: boolean, log_y?: boolean, width?: integer, height?: integer}
---@return rawrxd.PlotFiles
function rawrxd.report.plot(opts) end

---A text bar chart, one `label  bar  value unit` line per row, `width` characters (default 72).
---@param opts {rows: {[1]: string, [2]: number}[], unit?: string, decimals?: integer, width?: integer}
---@return string
function rawrxd.report.bars(opts) end

---A one-line sparkline (`▁` … `█`) of at most `width` characters (default 60).
---@param values number[]
---@param width? integer
---@return string
function rawrxd.report.sparkline(values, width) end

-- ---------------------------------------------------------------------------------------------
-- Load generation

---@class rawrxd.PoolRequest  one request, as a request function returns it
---@field prompt? string          text for /v1/completions (or one user message for chat)
---@field messages? {role: string, content: string}[]  a conversation (chat endpoint)
---@field max_tokens? integer     default: the run's `max_tokens` (16)
---@field temperature? number
---@field top_p? number
---@field seed? integer
---@field extra? table            extra body fields: ignore_eos, top_k, min_p, repeat_penalty, stop (a string or a list: the answer ends before the first; honoured in process too), …

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
---@field prefill_chunk? integer  prompt tokens per engine step (default 256; next to running decodes, at most what fills the engine's pass)
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
---@field target rawrxd.PoolEngine|rawrxd.Engine|"engine"|string  a pool engine; an engine handle or "engine" (a batched engine loaded for this run: like the handle's, or from `model`); or an http(s):// URL
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
---@field faults? rawrxd.FaultPlan  inject faults (see rawrxd.FaultPlan); the result gains `faults`, `outcomes`, `loss_pct`
---@field retry? {max_attempts?: integer, backoff_ms?: number}  retry transient failures (default max_attempts 3 when given; backoff doubles per attempt)
---@field on_device_loss? "reinit"|"give_up"  rebuild the engine from its file after a device loss (default) or leave it dead

---@class rawrxd.Fault  one fault: a kind and exactly one trigger (at_request, every, probability, at_s)
---@field kind "device_loss"|"alloc_failure"|"step_timeout"|"cancel"|"malformed"|"slow_client"
---@field at_request? integer     on the k-th request (1-based)
---@field every? integer          on requests n, 2n, 3n, …
---@field probability? number     on each request with this probability (seeded by the plan's seed)
---@field at_s? number            once, on the first request started at or after t seconds
---@field stage? "kv"|"load"      alloc_failure: refuse a new sequence's KV slot (default) or the next engine load(s)
---@field count? integer          alloc_failure stage "load": loads refused (default 1)
---@field stall_ms? number        step_timeout: how long the step stalls (default twice the step timeout)
---@field after_tokens? integer   cancel: tokens received before the client cancels (default 1)
---@field delay_ms? number        slow_client: wait before taking each event (default 50)

---@class rawrxd.FaultPlan: rawrxd.Fault[]  engine faults (device_loss, alloc_failure, step_timeout) need an in-process engine target
---@field seed? integer           seed of the probability draws (default 0)
---@field step_timeout_ms? number a running request without a token for this long fails (default 5000)

---@class rawrxd.DeviceLoss  times in seconds since the engine was loaded
---@field generation integer      the engine generation lost
---@field request integer|nil     the request id (0-based) whose fault caused it
---@field lost_s number
---@field rebuilt_s number|nil
---@field first_token_s number|nil
---@field recovery_ms number|nil  loss → first token served by the rebuilt engine
---@field load_failures integer
---@field error string|nil

---@class rawrxd.FaultReport
---@field sent integer            requests issued; ok + retried_ok + failed + cancelled == sent
---@field outcomes {ok: integer, retried_ok: integer, failed: integer, cancelled: integer}
---@field failed_by_reason table<string, integer>     malformed, device_lost, alloc_failure, step_timeout, timeout, …
---@field retried_by_reason table<string, integer>    by the reason of the first failure
---@field cancelled_by_reason table<string, integer>  client_cancel, run_cancelled
---@field injected table<string, integer>             faults injected, by kind
---@field malformed_accepted integer                  malformed requests the target accepted (a defect)
---@field loss_pct number         failed / sent × 100
---@field device_losses rawrxd.DeviceLoss[]
---@field recovery_ms number[]    per recovered device loss
---@field e2e_all rawrxd.Percentiles  every sent, not cancelled request; failures at their time to failure
---@field e2e_ok rawrxd.Percentiles   completed requests only
---@field ttft_ok rawrxd.Percentiles
---@field events {kind: string, request: integer, at_s: number, detail: string}[]
---@field requests {id: integer, outcome: string, reason: string|nil, attempts: integer, faults: string[]}[]
---@field table string            a plain-text report

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
---@field faults rawrxd.FaultReport|nil   with `faults`, `retry` or `on_device_loss`
---@field outcomes {ok: integer, retried_ok: integer, failed: integer, cancelled: integer}|nil  with faults
---@field loss_pct number|nil             with faults: failed / sent × 100

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
---(`NAME.ttft{tags}`, µs). With `faults` it also records `NAME.outcome_*`, `NAME.failed{reason}`,
---`NAME.loss_pct`, `NAME.recovery_ms{loss}`, `NAME.e2e_all_p*`, `NAME.e2e_ok_p*` and one `fault`
---event per injected fault, one `device_loss` event per loss.
---@param spec rawrxd.PoolRunSpec
---@return rawrxd.PoolResult
function rawrxd.pool.run(spec) end

---@class rawrxd.SoakTestHooks  test-only
---@field leak_mb_per_min? number  plant a real, touched allocation of this many MiB per soak minute
---@field virtual_clock? boolean   soak time jumps one probe interval per tick (no sleeping)

---@class rawrxd.SoakSpec: rawrxd.PoolEngineSpec
---@field target rawrxd.PoolEngine|rawrxd.Engine|"engine"|string  as in rawrxd.pool.run
---@field endpoint? "completions"|"chat"
---@field model_name? string      the `model` field sent over HTTP
---@field api_key? string
---@field concurrency? integer    closed loop: virtual users (give this or `arrival`)
---@field think? number           closed loop: seconds between answer and next request
---@field arrival? rawrxd.PoolArrival  open loop
---@field max_in_flight? integer  open loop cap (default 1024)
---@field duration? number        soak time in seconds (or `hours`, or `minutes`)
---@field hours? number
---@field minutes? number
---@field request? fun(i: integer): rawrxd.PoolRequest  request i, called on the script's thread
---@field jsonl? string
---@field prompt? string
---@field max_tokens? integer
---@field temperature? number
---@field seed? integer
---@field timeout? number         seconds per request (default 60)
---@field probe_interval_s? number  seconds between samples (default 5)
---@field checkpoint_s? number    seconds between checkpoints (default 3600)
---@field warmup_s? number        seconds after each (re)start left out of the leak fit (default 600)
---@field leak_threshold_mb_per_h? number  default 50/48 ≈ 1.04
---@field on_sample? fun(sample: rawrxd.SoakSample): boolean|nil  return false to stop the soak
---@field resume? integer|boolean  a soak run id, or true: the newest interrupted/failed run of `name`
---@field name? string            run name (default "soak")
---@field db? string              results database (default: the script's)
---@field progress? boolean       live status line on stderr (default true)
---@field test_hooks? rawrxd.SoakTestHooks

---@class rawrxd.LeakEstimate  MB/h (MiB per hour)
---@field n integer               points in the fit
---@field df integer              residual degrees of freedom
---@field slope number
---@field se number
---@field lo number               95 % lower bound (summary: `ci95_lo`)
---@field hi number               95 % upper bound (summary: `ci95_hi`)
---@field verdict "leak"|"stable"|"inconclusive"

---@class rawrxd.SoakSample
---@field run_id integer
---@field index integer
---@field ts number               Unix seconds
---@field elapsed_s number        soak time
---@field vram_own_mb number|nil  the engine's own accounting
---@field vram_heap_used_mb number|nil  VK_EXT_memory_budget device-local usage
---@field gpu_sysfs_used_mb number|nil  vendor sysfs
---@field rss_mb number|nil
---@field cpu_pct number|nil      % of one core since the last sample
---@field tokens_per_s number     over the interval
---@field requests_ok integer     cumulative over the soak (across resumes)
---@field requests_failed integer
---@field interval_ok integer
---@field interval_failed integer
---@field interval_errors table<string, integer>
---@field leak table<string, rawrxd.LeakEstimate>  by kind: vram_own, vram_heap_used, rss
---@field vram_slope_mb_per_h number|nil
---@field rss_slope_mb_per_h number|nil
---@field warming_up boolean
---@field checkpoint integer|nil  the checkpoint written at this sample
---@field planted_leak_mb number|nil  test hook only

---@class rawrxd.SoakVerdict
---@field slope_mb_per_h number
---@field ci95_lo number
---@field ci95_hi number
---@field se number
---@field n integer
---@field verdict "leak"|"stable"|"inconclusive"

---@class rawrxd.SoakSummary
---@field run_id integer
---@field status "ok"|"interrupted"
---@field reason string
---@field resumed boolean
---@field segments integer        process lifetimes of the run
---@field elapsed_s number
---@field samples integer
---@field checkpoints integer
---@field requests_ok integer
---@field requests_failed integer
---@field tokens integer          streamed by this call
---@field tokens_per_s number     this call's average
---@field threshold_mb_per_h number
---@field leak table<string, rawrxd.SoakVerdict>  by memory kind
---@field last rawrxd.SoakSample
---@field pool string|nil         the pool's report of this call's load
---@field table string            a plain-text report

---Soak runs: a steady load for hours with memory samples, checkpoints and a leak verdict per
---memory kind from a fitted slope with a 95 % interval.
---@class rawrxd.soak
rawrxd.soak = {}

---Runs a soak (its own results run, current while it runs) and returns its summary; Ctrl-C ends
---it with status "interrupted".
---@param spec rawrxd.SoakSpec
---@return rawrxd.SoakSummary
function rawrxd.soak.run(spec) end
---An alert rule (a rules file returns a list of these, or a map from name to rule).
---@class rawrxd.AlertRule
---@field name string             unique name (optional in map form: the key)
---@field metric string           the sample field watched
---@field kind? "threshold"|"window"|"slope"|"no_progress"|"ratio"  default "threshold"
---@field above? number           bad when the value is greater (one of above/below)
---@field below? number           bad when the value is less
---@field for_s? number           the condition must hold this long before firing (no_progress: seconds without an increase)
---@field window_s? number        window of `window`, `slope` and `ratio` rules
---@field agg? "mean"|"max"|"min"|"p95"  window summary (default mean)
---@field min_samples? integer    fewer samples in the window: no verdict (slope default 2)
---@field min_span_s? number      a window spanning less: no verdict
---@field warmup_s? number        not judged during the first seconds of samples
---@field severity? string        default "warning"
---@field message? string         template: {name} {metric} {value} {limit}
---@field min_interval_s? number  minimum seconds between firing notifications of this rule
---@field notify? boolean         false: store transitions, send nothing
---@field over? string|string[]   ratio: denominator counters (summed increases)

---A webhook: `url_env` names the environment variable holding the URL (preferred: URLs are
---secrets), or `url` gives it. Never printed or stored; logs use "slack webhook ($VAR)".
---@class rawrxd.WebhookSpec
---@field kind "slack"|"discord"|"generic"
---@field url_env? string
---@field url? string
---@field name? string

---@class rawrxd.AlertsSpec
---@field rules string|rawrxd.AlertRule[]  a rules file (hot-reloaded) or an inline table
---@field webhooks? rawrxd.WebhookSpec[]
---@field run? integer            results run for `alert`/`webhook` events (default: the current run)
---@field min_interval_s? number  minimum seconds between any two firing notifications
---@field tries? integer          delivery attempts per notification (default 3)
---@field backoff_s? number       first retry wait, doubling (default 0.5)
---@field backoff_max_s? number   longest retry wait (default 30)
---@field timeout_s? number       per-request timeout (default 10)
---@field queue? integer          notifications queued at most; beyond, the oldest is dropped (256)

---@class rawrxd.AlertTransition
---@field rule string
---@field metric string
---@field kind "pending"|"firing"|"resolved"|"cancelled"|"announced"
---@field from "inactive"|"pending"|"firing"
---@field to "inactive"|"pending"|"firing"
---@field ts number               the sample's ts
---@field value number|nil
---@field severity string
---@field message string
---@field notify boolean          a notification goes out
---@field suppressed string|nil   why not (rate limit, never announced, notify = false)

---@class rawrxd.AlertStatus
---@field rule string
---@field state "inactive"|"pending"|"firing"
---@field since number|nil
---@field value number|nil
---@field announced boolean
---@field last_notified number|nil

---@class rawrxd.DeliveryStats
---@field queued integer
---@field sent integer
---@field failed integer
---@field dropped integer
---@field retries integer
---@field pending integer
---@field in_flight integer

---@class rawrxd.Delivery
---@field webhook string          the webhook's label (never its URL)
---@field format string
---@field alert string|nil
---@field state string
---@field outcome "delivered"|"failed"|"dropped"
---@field status integer|nil
---@field attempts integer
---@field latency_s number
---@field error string|nil

---@class rawrxd.Alerts
local Alerts = {}
---Feeds a sample (`ts` in seconds, default now; every numeric field is a metric). A reload safe
---point: an edited rules file applies here. Stores each transition, queues notifications, never
---waits on the network.
---@param sample table<string, number>
---@return rawrxd.AlertTransition[]
function Alerts:observe(sample) end
---@return table<string, rawrxd.AlertStatus>
function Alerts:state() end
---@return string[] names of the rules in force
function Alerts:rules() end
---@return string|nil err the last rules-file reload error (`file:line: …`), nil after a good one
function Alerts:reload_error() end
---@return integer n successful rules-file reloads
function Alerts:reloads() end
---Waits for queued notifications, at most `timeout_s` (default 10).
---@param timeout_s? number
---@return boolean done
function Alerts:flush(timeout_s) end
---@return rawrxd.DeliveryStats
function Alerts:stats() end
---@return rawrxd.Delivery[] the latest delivery records (64 at most)
function Alerts:deliveries() end

---@class rawrxd.alerts
rawrxd.alerts = {}
---@param spec rawrxd.AlertsSpec
---@return rawrxd.Alerts
function rawrxd.alerts.new(spec) end

---@class rawrxd.WebhookSend: rawrxd.WebhookSpec
---@field text string

---@class rawrxd.webhook
rawrxd.webhook = {}
---Queues an ad-hoc message (delivered in the background; recorded in the current run).
---@param spec rawrxd.WebhookSend
---@return boolean
function rawrxd.webhook.send(spec) end
---@param timeout_s? number
---@return boolean done
function rawrxd.webhook.flush(timeout_s) end
---@return rawrxd.DeliveryStats
function rawrxd.webhook.stats() end
---@return rawrxd.Delivery[]
function rawrxd.webhook.deliveries() end

return rawrxd
