//! `rawrxd.pool`: load generation from Lua — `run{...}` drives a closed or open loop against the
//! in-process engine or an OpenAI-compatible HTTP endpoint and returns (and stores) the result;
//! `engine{...}` loads a model once for several runs.
//!
//! Threading: the load runs on a private multi-threaded tokio runtime; the Lua state stays on the
//! calling thread. When requests come from a Lua function, the pool's driver asks the calling
//! thread for request `i` through a channel and waits for the answer (only the sending side waits:
//! streams in flight keep being read and timed on the runtime's workers), so the Lua function is
//! only ever called on the thread that owns the state, once per request, at the edge.
//!
//! Storage: when a results run is open, `run` records its percentiles, rates and counts as
//! measurements (`NAME.ttft_p50`, … in ms; `NAME.output_tps`, …; tagged with `tags`, the target
//! and the load level) and its latency histograms (µs) as `NAME.ttft{k=v,…}` — histograms carry
//! no tags, so the tags are part of their name.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Function, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::engine::EngineHandle;
use super::error::lua_err;
use super::results::with_current_run;
use crate::engine::scheduler::SchedulerConfig;
use crate::engine::service::{ModelService, ServiceConfig};
use crate::engine::Backend;
use crate::pool::engine_target::EngineTarget;
use crate::pool::{
    run, Arrivals, CancellationToken, ChatMessage, Endpoint, Load, OpenAiHttpConfig,
    OpenAiHttpTarget, PoolConfig, PoolResult, Prompt, Request, RequestSource, Slo, Target,
};
use crate::{Error, Result};

/// A model loaded for pool runs (`rawrxd.pool.engine{...}`).
#[derive(Clone)]
pub struct PoolEngine(pub Arc<ModelService>);

impl UserData for PoolEngine {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("metrics", |lua, this, ()| {
            lua.to_value(&this.0.scheduler().metrics())
        });
        methods.add_method("id", |_, this, ()| Ok(this.0.id().to_string()));
        methods.add_method("slots", |_, this, ()| Ok(this.0.scheduler().n_slots()));
        methods.add_method("device", |_, this, ()| {
            Ok(this.0.scheduler().device().to_string())
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            let s = this.0.scheduler();
            Ok(format!(
                "pool engine {} ({}, {} slots)",
                this.0.id(),
                s.device(),
                s.n_slots()
            ))
        });
    }
}

pub(crate) fn invalid(what: &str, msg: impl std::fmt::Display) -> mlua::Error {
    lua_err(Error::Invalid(format!("rawrxd.pool.{what}: {msg}")))
}

/// Fails on keys of `t` not in `known`.
pub(crate) fn check_keys(t: &Table, known: &[&str], what: &str) -> mlua::Result<()> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = k.to_string()?;
        if !known.contains(&key.as_str()) {
            return Err(invalid(
                what,
                format!(
                    "unknown field '{key}' (expected one of {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A positive number of seconds.
pub(crate) fn seconds(v: Option<f64>, field: &str, what: &str) -> mlua::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| invalid(what, format!("'{field}' must be positive seconds, got {s}"))),
    }
}

const ENGINE_FIELDS: &[&str] = &[
    "model",
    "backend",
    "slots",
    "ctx",
    "threads",
    "queue",
    "prefill_chunk",
    "timeout",
];

/// Loads a model for serving from `engine{...}` fields (also accepted by `run` with
/// `target = "engine"`).
pub(crate) fn load_engine(t: &Table, what: &str) -> mlua::Result<ModelService> {
    let model: Option<String> = t.get("model")?;
    let model = model.ok_or_else(|| invalid(what, "'model' (a GGUF file path) is required"))?;
    load_with(t, what, PathBuf::from(model), ServiceConfig::default())
}

/// Loads `model` with the settings of `t`, defaulting to `d`.
fn load_with(
    t: &Table,
    what: &str,
    model: PathBuf,
    d: ServiceConfig,
) -> mlua::Result<ModelService> {
    let config = service_config(t, what, d)?;
    ModelService::load(&model, &config).map_err(lua_err)
}

/// The serving settings of `t`, defaulting to `d`.
fn service_config(t: &Table, what: &str, d: ServiceConfig) -> mlua::Result<ServiceConfig> {
    let backend: Backend = match t.get::<Option<String>>("backend")? {
        Some(b) => b.parse().map_err(lua_err)?,
        None => d.backend,
    };
    let config = ServiceConfig {
        backend,
        n_ctx: t.get::<Option<usize>>("ctx")?.unwrap_or(d.n_ctx),
        slots: t.get::<Option<usize>>("slots")?.unwrap_or(d.slots),
        threads: t.get::<Option<usize>>("threads")?.or(d.threads),
        scheduler: SchedulerConfig {
            queue_capacity: t
                .get::<Option<usize>>("queue")?
                .unwrap_or(d.scheduler.queue_capacity),
            max_batch: None,
            prefill_chunk: t
                .get::<Option<usize>>("prefill_chunk")?
                .unwrap_or(d.scheduler.prefill_chunk),
            default_timeout: seconds(t.get("timeout")?, "timeout", what)?,
        },
    };
    if config.slots == 0 || config.n_ctx == 0 || config.scheduler.prefill_chunk == 0 {
        return Err(invalid(
            what,
            "'slots', 'ctx' and 'prefill_chunk' must be at least 1",
        ));
    }
    Ok(config)
}

/// A batched engine like the one behind a `rawrxd.engine` handle: same file (the variant it
/// runs), backend, context and threads; `slots` and the scheduler settings come from `t`.
pub(crate) fn load_like(t: &Table, handle: &EngineHandle) -> mlua::Result<ModelService> {
    let (file, config) = config_like(t, handle)?;
    ModelService::load(&file, &config).map_err(lua_err)
}

/// The file and serving settings [`load_like`] loads.
fn config_like(t: &Table, handle: &EngineHandle) -> mlua::Result<(PathBuf, ServiceConfig)> {
    let info = handle.info();
    let d = ServiceConfig::default();
    let defaults = ServiceConfig {
        backend: info.backend.parse().unwrap_or(d.backend),
        n_ctx: info.n_ctx,
        threads: info.threads,
        ..d
    };
    Ok((info.file.clone(), service_config(t, "run", defaults)?))
}

/// What to load for a fault run on the in-process engine (`None`: the target is HTTP): the
/// `model` of `target = "engine"`, a `rawrxd.engine` handle's file, or a pool engine's file
/// (loaded again, with its settings, so the faults cannot disturb the original).
pub(super) fn engine_spec_of(
    t: &Table,
    endpoint: Endpoint,
) -> mlua::Result<Option<crate::fault::EngineSpec>> {
    use crate::fault::EngineSpec;
    match t.get::<Value>("target")? {
        Value::UserData(ud) => {
            if let Ok(engine) = ud.borrow::<PoolEngine>() {
                return Ok(Some(EngineSpec::of_service(&engine.0, endpoint)));
            }
            let handle = ud.borrow::<EngineHandle>().map_err(|_| {
                invalid(
                    "run",
                    "'target' userdata is neither a rawrxd.pool.engine nor a rawrxd.engine",
                )
            })?;
            let (model, config) = config_like(t, &handle)?;
            Ok(Some(EngineSpec {
                model,
                config,
                endpoint,
            }))
        }
        Value::String(s) if s.to_str()?.as_ref() as &str == "engine" => {
            let model: Option<String> = t.get("model")?;
            let model =
                model.ok_or_else(|| invalid("run", "'model' (a GGUF file path) is required"))?;
            Ok(Some(EngineSpec {
                model: PathBuf::from(model),
                config: service_config(t, "run", ServiceConfig::default())?,
                endpoint,
            }))
        }
        _ => Ok(None),
    }
}

/// One request as a Lua function or JSONL line gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LuaRequest {
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    extra: Map<String, Json>,
}

impl LuaRequest {
    pub(crate) fn into_request(self, default_max: u32) -> Result<Request> {
        let prompt = match (self.prompt, self.messages) {
            (Some(p), None) => Prompt::Text(p),
            (None, Some(m)) if !m.is_empty() => Prompt::Chat(m),
            _ => {
                return Err(Error::Invalid(
                    "a request needs exactly one of 'prompt' (a string) and 'messages' (a \
                     non-empty list)"
                        .into(),
                ))
            }
        };
        let max_tokens = self.max_tokens.unwrap_or(default_max);
        if max_tokens == 0 {
            return Err(Error::Invalid("'max_tokens' must be at least 1".into()));
        }
        Ok(Request {
            id: 0,
            prompt,
            max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            stream: true,
            extra: self.extra,
        })
    }
}

const RUN_FIELDS: &[&str] = &[
    "target",
    "endpoint",
    "model",
    "model_name",
    "backend",
    "slots",
    "ctx",
    "threads",
    "queue",
    "prefill_chunk",
    "concurrency",
    "think",
    "arrival",
    "max_in_flight",
    "duration",
    "requests",
    "request",
    "jsonl",
    "prompt",
    "max_tokens",
    "temperature",
    "seed",
    "timeout",
    "slo",
    "name",
    "tags",
    "progress",
    "records",
    "api_key",
    "faults",
    "retry",
    "on_device_loss",
];

/// Request `i` (0-based) from the script's request function `f(i + 1)`: a table read as a
/// [`LuaRequest`], `max_tokens` defaulting to `default_max`.
pub(crate) fn call_request_fn(
    lua: &Lua,
    f: &Function,
    i: u64,
    default_max: u32,
) -> Result<Request> {
    f.call::<Value>(i + 1)
        .map_err(|e| Error::Script(super::error::describe(&e)))
        .and_then(|v| match v {
            Value::Table(_) => lua
                .from_value::<LuaRequest>(v)
                .map_err(|e| Error::Invalid(format!("request {}: {e}", i + 1))),
            other => Err(Error::Invalid(format!(
                "request {}: the request function returned {}, expected a table",
                i + 1,
                other.type_name()
            ))),
        })
        .and_then(|r| r.into_request(default_max))
}

/// Where a run's requests come from.
pub(crate) enum Source {
    /// A Lua function, called on the Lua thread.
    Lua(Function, u32),
    /// Built in Rust.
    Rust(RequestSource),
}

pub(crate) fn source_of(t: &Table) -> mlua::Result<Source> {
    let default_max = t.get::<Option<u32>>("max_tokens")?.unwrap_or(16);
    let request: Option<Function> = t.get("request")?;
    let jsonl: Option<String> = t.get("jsonl")?;
    let prompt: Option<String> = t.get("prompt")?;
    match (request, jsonl, prompt) {
        (Some(f), None, None) => Ok(Source::Lua(f, default_max)),
        (None, Some(path), None) => Ok(Source::Rust(RequestSource::jsonl(&path).map_err(lua_err)?)),
        (None, None, Some(p)) => {
            let mut r = Request::text(p, default_max);
            r.temperature = t.get("temperature")?;
            r.seed = t.get("seed")?;
            Ok(Source::Rust(
                RequestSource::from_list(vec![r]).map_err(lua_err)?,
            ))
        }
        _ => Err(invalid(
            "run",
            "give exactly one of 'request' (a function), 'jsonl' (a file) and 'prompt'",
        )),
    }
}

pub(crate) fn load_of(t: &Table) -> mlua::Result<Load> {
    let concurrency: Option<u32> = t.get("concurrency")?;
    let arrival: Option<Table> = t.get("arrival")?;
    match (concurrency, arrival) {
        (Some(users), None) => Ok(Load::Closed {
            users,
            think: seconds(t.get("think")?, "think", "run")?.unwrap_or(Duration::ZERO),
        }),
        (None, Some(a)) => {
            check_keys(&a, &["kind", "rate", "from", "to", "seed"], "run: arrival")?;
            let kind: String = a.get::<Option<String>>("kind")?.unwrap_or("poisson".into());
            let rate = |k: &str| -> mlua::Result<f64> {
                a.get::<Option<f64>>(k)?
                    .ok_or_else(|| invalid("run", format!("arrival.{k} is required")))
            };
            let arrivals = match kind.as_str() {
                "constant" => Arrivals::Constant {
                    rate: rate("rate")?,
                },
                "poisson" => Arrivals::Poisson {
                    rate: rate("rate")?,
                    seed: a.get::<Option<u64>>("seed")?.unwrap_or(0),
                },
                "ramp" => Arrivals::Ramp {
                    from: rate("from")?,
                    to: rate("to")?,
                    seed: a.get("seed")?,
                },
                other => {
                    return Err(invalid(
                        "run",
                        format!("arrival.kind '{other}' (expected poisson, constant or ramp)"),
                    ))
                }
            };
            Ok(Load::Open {
                arrivals,
                max_in_flight: t.get::<Option<usize>>("max_in_flight")?.unwrap_or(1024),
            })
        }
        _ => Err(invalid(
            "run",
            "give exactly one of 'concurrency' (closed loop) and 'arrival' (open loop)",
        )),
    }
}

fn slo_of(v: Value) -> mlua::Result<Option<Slo>> {
    let Value::Table(t) = v else {
        return match v {
            Value::Nil => Ok(None),
            other => Err(invalid(
                "run",
                format!("'slo' must be a table, got {}", other.type_name()),
            )),
        };
    };
    check_keys(
        &t,
        &["ttft_ms", "itl_ms", "itl_percentile", "tpot_ms", "e2e_ms"],
        "run: slo",
    )?;
    Ok(Some(Slo {
        ttft_ms: t.get("ttft_ms")?,
        itl_ms: t.get("itl_ms")?,
        itl_percentile: t.get::<Option<f64>>("itl_percentile")?.unwrap_or(99.0),
        tpot_ms: t.get("tpot_ms")?,
        e2e_ms: t.get("e2e_ms")?,
    }))
}

pub(crate) fn endpoint_of(t: &Table) -> mlua::Result<Endpoint> {
    match t.get::<Option<String>>("endpoint")?.as_deref() {
        None | Some("completions") => Ok(Endpoint::Completions),
        Some("chat") => Ok(Endpoint::Chat),
        Some(other) => Err(invalid(
            "run",
            format!("endpoint '{other}' (expected completions or chat)"),
        )),
    }
}

/// The target of a run. With `target = "engine"` (a model path in `model`) or a `rawrxd.engine`
/// handle, a batched engine is loaded for this run only — a handle's own engine decodes one
/// sequence, so the file, backend, context and threads it was loaded with are loaded again.
pub(super) fn target_of(t: &Table, endpoint: Endpoint) -> mlua::Result<Arc<dyn Target>> {
    match t.get::<Value>("target")? {
        Value::UserData(ud) => {
            if let Ok(engine) = ud.borrow::<PoolEngine>() {
                return Ok(Arc::new(EngineTarget::new(engine.0.clone(), endpoint)));
            }
            let handle = ud.borrow::<EngineHandle>().map_err(|_| {
                invalid(
                    "run",
                    "'target' userdata is neither a rawrxd.pool.engine nor a rawrxd.engine",
                )
            })?;
            let service = load_like(t, &handle)?;
            Ok(Arc::new(EngineTarget::new(Arc::new(service), endpoint)))
        }
        Value::String(s) => {
            let s = s.to_str()?.to_string();
            if s == "engine" {
                let service = load_engine(t, "run")?;
                return Ok(Arc::new(EngineTarget::new(Arc::new(service), endpoint)));
            }
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(invalid(
                    "run",
                    format!("target '{s}': expected \"engine\", an engine, or an http(s):// URL"),
                ));
            }
            let model: String = t
                .get::<Option<String>>("model_name")?
                .unwrap_or_else(|| "default".into());
            let mut config = OpenAiHttpConfig::new(s, endpoint, model);
            config.api_key = t.get("api_key")?;
            Ok(Arc::new(OpenAiHttpTarget::new(config).map_err(lua_err)?))
        }
        Value::Nil => Err(invalid("run", "'target' is required")),
        other => Err(invalid(
            "run",
            format!(
                "'target' must be a string or an engine, got {}",
                other.type_name()
            ),
        )),
    }
}

/// A pool run to drive: given the request source, the future of its result.
pub(super) type Job<T> = Box<
    dyn FnOnce(
            RequestSource,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>
        + Send,
>;

/// Runs the load on a private runtime; Lua requests are generated on this thread.
fn drive(
    lua: &Lua,
    target: Arc<dyn Target>,
    source: Source,
    config: PoolConfig,
) -> mlua::Result<PoolResult> {
    let job: Job<PoolResult> = Box::new(move |mut source| {
        Box::pin(async move { run(target, &mut source, &config, CancellationToken::new()).await })
    });
    drive_job(lua, source, job)
}

/// Runs `job` on a private runtime; Lua requests are generated on this thread.
pub(super) fn drive_job<T: Send + 'static>(
    lua: &Lua,
    source: Source,
    job: Job<T>,
) -> mlua::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rawrxd-pool")
        .build()
        .map_err(|e| invalid("run", format!("cannot start the async runtime: {e}")))?;
    type Reply = std_mpsc::SyncSender<Result<Request>>;
    let (ask, asked) = std_mpsc::channel::<(u64, Reply)>();
    let (function, rust_source) = match source {
        Source::Lua(f, default_max) => {
            let rs = RequestSource::from_fn(move |i| {
                let (reply, answer) = std_mpsc::sync_channel(1);
                ask.send((i, reply))
                    .map_err(|_| Error::Invalid("the Lua thread stopped".into()))?;
                tokio::task::block_in_place(|| answer.recv())
                    .map_err(|_| Error::Invalid("the Lua thread stopped".into()))?
            });
            (Some((f, default_max)), rs)
        }
        Source::Rust(rs) => {
            drop(ask);
            (None, rs)
        }
    };
    let task = runtime.spawn(job(rust_source));
    if let Some((f, default_max)) = function {
        // Ends when the run drops its source (the sender).
        while let Ok((i, reply)) = asked.recv() {
            let made = call_request_fn(lua, &f, i, default_max);
            let _ = reply.send(made);
        }
    }
    let result = runtime
        .block_on(task)
        .map_err(|e| invalid("run", format!("the load task failed: {e}")))?;
    runtime.shutdown_background();
    result.map_err(lua_err)
}

/// The result as a Lua-friendly JSON document.
pub(super) fn result_doc(r: &PoolResult) -> Json {
    let s = &r.summary;
    json!({
        "target": r.target,
        "wall_s": r.wall_s,
        "counts": r.counts,
        "errors": r.counts.errors,
        "error_examples": r.error_examples,
        "output_tokens": r.output_tokens,
        "prompt_tokens": r.prompt_tokens,
        "throughput": r.throughput,
        "output_tps": r.throughput.output_tokens_per_s,
        "requests_per_s": r.throughput.requests_per_s,
        "goodput_per_s": r.throughput.goodput_per_s,
        "slo_attainment": r.throughput.slo_attainment,
        "ttft": s.ttft, "itl": s.itl, "tpot": s.tpot, "e2e": s.e2e,
        "queue_wait": s.queue_wait, "prefill": s.prefill, "decode": s.decode,
        "level": r.config.load.level(),
        "table": r.table(),
        "records": if r.records.is_empty() { Json::Null } else { json!(r.records) },
    })
}

/// Records `r` into the open results run, if any. Returns whether it did.
pub(super) fn store(
    lua: &Lua,
    r: &PoolResult,
    name: &str,
    tags: &Map<String, Json>,
) -> mlua::Result<bool> {
    let mut tags = tags.clone();
    tags.entry("target").or_insert_with(|| json!(r.target));
    let (level_key, level) = match &r.config.load {
        Load::Closed { users, .. } => ("concurrency", json!(users)),
        Load::Open { arrivals, .. } => ("rate", json!(arrivals.mean_rate())),
    };
    tags.entry(level_key).or_insert(level);
    let suffix = {
        let mut keys: Vec<String> = tags
            .iter()
            .filter(|(k, _)| k.as_str() != "target")
            .map(|(k, v)| match v {
                Json::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        keys.sort();
        format!("{{{}}}", keys.join(","))
    };
    let stored = with_current_run(lua, |store, run| {
        let s = &r.summary;
        let t = &r.throughput;
        let mut values: Vec<(String, f64, &str)> = Vec::new();
        for (metric, p) in [
            ("ttft", &s.ttft),
            ("itl", &s.itl),
            ("tpot", &s.tpot),
            ("e2e", &s.e2e),
        ] {
            if p.count == 0 {
                continue;
            }
            for (q, v) in [
                ("mean", p.mean),
                ("p50", p.p50),
                ("p90", p.p90),
                ("p95", p.p95),
                ("p99", p.p99),
                ("max", p.max),
            ] {
                values.push((format!("{name}.{metric}_{q}"), v, "ms"));
            }
        }
        values.push((format!("{name}.output_tps"), t.output_tokens_per_s, "tps"));
        values.push((format!("{name}.requests_per_s"), t.requests_per_s, "rps"));
        if let (Some(g), Some(a)) = (t.goodput_per_s, t.slo_attainment) {
            values.push((format!("{name}.goodput_per_s"), g, "rps"));
            values.push((format!("{name}.slo_attainment"), a, "ratio"));
        }
        let c = &r.counts;
        values.push((format!("{name}.completed"), c.completed as f64, "count"));
        values.push((format!("{name}.errors"), c.failed as f64, "count"));
        values.push((format!("{name}.wall"), r.wall_s, "s"));
        for (n, v, unit) in &values {
            store.record(run, n, *v, unit, &tags)?;
        }
        for (metric, h) in r.histograms.named() {
            if !h.is_empty() {
                store.record_histogram(run, &format!("{name}.{metric}{suffix}"), "us", h)?;
            }
        }
        Ok(())
    })?;
    Ok(stored.is_some())
}

/// Adds the `pool` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "engine",
        lua.create_function(|_, opts: Table| {
            check_keys(&opts, ENGINE_FIELDS, "engine")?;
            Ok(PoolEngine(Arc::new(load_engine(&opts, "engine")?)))
        })?,
    )?;
    t.set(
        "run",
        lua.create_function(|lua, opts: Table| {
            check_keys(&opts, RUN_FIELDS, "run")?;
            let endpoint = endpoint_of(&opts)?;
            let load = load_of(&opts)?;
            let duration = seconds(opts.get("duration")?, "duration", "run")?;
            let max_requests: Option<u64> = opts.get("requests")?;
            let timeout = seconds(opts.get("timeout")?, "timeout", "run")?;
            let mut config = PoolConfig::new(load, Duration::ZERO);
            config.duration = duration;
            config.max_requests = max_requests;
            if let Some(t) = timeout {
                config.request_timeout = t;
            }
            config.slo = slo_of(opts.get("slo")?)?;
            config.progress = opts.get::<Option<bool>>("progress")?.unwrap_or(false);
            config.keep_records = opts.get::<Option<bool>>("records")?.unwrap_or(false);
            config.validate().map_err(lua_err)?;
            let source = source_of(&opts)?;
            let name: String = opts.get::<Option<String>>("name")?.unwrap_or("pool".into());
            let tags: Map<String, Json> = match opts.get::<Value>("tags")? {
                Value::Nil => Map::new(),
                v @ Value::Table(_) => match lua.from_value::<Json>(v)? {
                    Json::Object(m) => m,
                    Json::Array(a) if a.is_empty() => Map::new(),
                    _ => {
                        return Err(invalid(
                            "run",
                            "'tags' must be a table of key = value pairs",
                        ))
                    }
                },
                other => {
                    return Err(invalid(
                        "run",
                        format!("'tags' must be a table, got {}", other.type_name()),
                    ))
                }
            };
            let mut faulted = false;
            for key in ["faults", "retry", "on_device_loss"] {
                faulted |= !opts.get::<Value>(key)?.is_nil();
            }
            if faulted {
                let job = super::faults::FaultJob {
                    endpoint,
                    config,
                    name,
                    tags,
                };
                return super::faults::run(lua, &opts, source, job);
            }
            let target = target_of(&opts, endpoint)?;
            let result = drive(lua, target, source, config)?;
            let stored = store(lua, &result, &name, &tags)?;
            let doc = lua.to_value(&result_doc(&result))?;
            if let Value::Table(t) = &doc {
                t.set("stored", stored)?;
            }
            Ok(doc)
        })?,
    )?;
    module.set("pool", t)?;
    Ok(())
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
