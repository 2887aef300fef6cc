//! `rawrxd.soak`: long soak runs from Lua — `run{...}` keeps a steady pool load for hours,
//! samples memory and throughput, checkpoints to the results store, judges memory leaks by a
//! fitted slope, and returns a summary. See [`crate::soak`] for the measurement and storage.
//!
//! Threading: as `rawrxd.pool.run`, the load runs on a private multi-threaded tokio runtime while
//! the Lua state stays on the calling thread; the soak loop itself is driven on the calling
//! thread (`block_on`), so `on_sample`, the request function and hot reload all run there. Each
//! sample is a reload safe point: `poll_reload` runs before `on_sample`.
//!
//! Store: the soak opens its own connection to the script's database (`db`, or the one
//! `rawrxd.results` uses) and owns its run (phase `phase2-soak`); while it runs, that run is the
//! host's current run, so `rawrxd.results.record/event` from `on_sample` land in it. A run already
//! open in the script is an error (end it first).
//!
//! Ctrl-C ends the soak cleanly: the summary is returned with `status = "interrupted"` and the run
//! is ended `interrupted`; a second Ctrl-C quits at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};
use serde_json::{json, Value as Json};

use super::engine::EngineHandle;
use super::error::{describe, lua_err};
use super::pool::{
    call_request_fn, check_keys, endpoint_of, load_engine, load_like, load_of, seconds, source_of,
    PoolEngine, Source,
};
use super::results::{current_run, set_current_run, store_path};
use crate::engine::service::ModelService;
use crate::pool::engine_target::EngineTarget;
use crate::pool::{
    CancellationToken, Endpoint, OpenAiHttpConfig, OpenAiHttpTarget, Request, RequestSource,
};
use crate::soak::{
    self, Flow, InterruptGuard, Sample, SoakConfig, SoakHooks, SoakStart, SoakSummary, SoakTarget,
    TestHooks, SOAK_PHASE,
};
use crate::store::{RunFilter, RunId, RunInfo, RunStatus, Store};
use crate::{Error, Result};

fn invalid(msg: impl std::fmt::Display) -> mlua::Error {
    lua_err(Error::Invalid(format!("rawrxd.soak.run: {msg}")))
}

const FIELDS: &[&str] = &[
    "target",
    "endpoint",
    "model",
    "model_name",
    "api_key",
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
    "hours",
    "minutes",
    "request",
    "jsonl",
    "prompt",
    "max_tokens",
    "temperature",
    "seed",
    "timeout",
    "probe_interval_s",
    "checkpoint_s",
    "warmup_s",
    "leak_threshold_mb_per_h",
    "on_sample",
    "resume",
    "name",
    "db",
    "progress",
    "test_hooks",
];

/// The target and, for an in-process engine, the service whose memory is probed.
fn target_of(
    t: &Table,
    endpoint: Endpoint,
) -> mlua::Result<(SoakTarget, Option<Arc<ModelService>>)> {
    let engine = |service: Arc<ModelService>| {
        let target = SoakTarget {
            target: Arc::new(EngineTarget::new(service.clone(), endpoint)),
            memory: Some(Arc::new(service.clone())),
        };
        (target, Some(service))
    };
    match t.get::<Value>("target")? {
        Value::UserData(ud) => {
            if let Ok(e) = ud.borrow::<PoolEngine>() {
                return Ok(engine(e.0.clone()));
            }
            let handle = ud.borrow::<EngineHandle>().map_err(|_| {
                invalid("'target' userdata is neither a rawrxd.pool.engine nor a rawrxd.engine")
            })?;
            Ok(engine(Arc::new(load_like(t, &handle)?)))
        }
        Value::String(s) => {
            let s = s.to_str()?.to_string();
            if s == "engine" {
                return Ok(engine(Arc::new(load_engine(t, "soak")?)));
            }
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(invalid(format!(
                    "target '{s}': expected \"engine\", an engine, or an http(s):// URL"
                )));
            }
            let model = t
                .get::<Option<String>>("model_name")?
                .unwrap_or_else(|| "default".into());
            let mut config = OpenAiHttpConfig::new(s, endpoint, model);
            config.api_key = t.get("api_key")?;
            let target = OpenAiHttpTarget::new(config).map_err(lua_err)?;
            Ok((
                SoakTarget {
                    target: Arc::new(target),
                    memory: None,
                },
                None,
            ))
        }
        Value::Nil => Err(invalid("'target' is required")),
        other => Err(invalid(format!(
            "'target' must be a string or an engine, got {}",
            other.type_name()
        ))),
    }
}

/// Soak time from `duration` (s), `hours` or `minutes` — exactly one.
fn duration_of(t: &Table) -> mlua::Result<Duration> {
    let given: Vec<(&str, f64)> = [("duration", 1.0), ("hours", 3600.0), ("minutes", 60.0)]
        .into_iter()
        .filter_map(|(k, scale)| match t.get::<Option<f64>>(k) {
            Ok(Some(v)) => Some(Ok((k, v * scale))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<mlua::Result<_>>()?;
    match given.as_slice() {
        [(k, s)] => {
            seconds(Some(*s), k, "soak")?.ok_or_else(|| invalid(format!("'{k}' must be positive")))
        }
        [] => Err(invalid("give one of 'duration' (s), 'hours' and 'minutes'")),
        _ => Err(invalid(
            "give only one of 'duration', 'hours' and 'minutes'",
        )),
    }
}

fn config_of(t: &Table) -> mlua::Result<SoakConfig> {
    let mut c = SoakConfig::new(load_of(t)?, duration_of(t)?);
    let secs = |k: &str| seconds(t.get::<Option<f64>>(k)?, k, "soak");
    if let Some(d) = secs("probe_interval_s")? {
        c.probe_interval = d;
    }
    if let Some(d) = secs("checkpoint_s")? {
        c.checkpoint_interval = d;
    }
    if let Some(w) = t.get::<Option<f64>>("warmup_s")? {
        c.warmup = Duration::try_from_secs_f64(w)
            .map_err(|_| invalid(format!("'warmup_s' must be seconds ≥ 0, got {w}")))?;
    }
    if let Some(d) = secs("timeout")? {
        c.request_timeout = d;
    }
    if let Some(x) = t.get::<Option<f64>>("leak_threshold_mb_per_h")? {
        c.leak_threshold_mb_per_h = x;
    }
    c.progress = t.get::<Option<bool>>("progress")?.unwrap_or(true);
    if let Some(h) = t.get::<Option<Table>>("test_hooks")? {
        check_keys(
            &h,
            &["leak_mb_per_min", "virtual_clock"],
            "soak: test_hooks",
        )?;
        c.test_hooks = TestHooks {
            leak_mb_per_min: h.get("leak_mb_per_min")?,
            virtual_clock: h.get::<Option<bool>>("virtual_clock")?.unwrap_or(false),
        };
    }
    c.validate().map_err(lua_err)?;
    Ok(c)
}

/// New run or resumed one, from `resume` (nil/false, true, or a run id).
fn start_of(store: &Store, t: &Table, name: &str, info: RunInfo) -> mlua::Result<SoakStart> {
    match t.get::<Value>("resume")? {
        Value::Nil | Value::Boolean(false) => Ok(SoakStart::New(info)),
        Value::Boolean(true) => {
            let filter = RunFilter {
                phase: Some(SOAK_PHASE.into()),
                name: Some(name.into()),
                ..RunFilter::default()
            };
            let newest = store
                .list_runs(&filter)
                .map_err(lua_err)?
                .into_iter()
                .next();
            match newest {
                Some(r) if matches!(r.status, RunStatus::Interrupted | RunStatus::Failed) => {
                    log::info!(target: "rawrxd::soak", "resuming soak run {} ({})", r.id, r.status);
                    Ok(SoakStart::Resume(r.id))
                }
                Some(r) if r.status == RunStatus::Running => Err(invalid(format!(
                    "soak run {} ('{name}') is still running in another process",
                    r.id
                ))),
                _ => Ok(SoakStart::New(info)),
            }
        }
        Value::Integer(i) => Ok(SoakStart::Resume(RunId(i))),
        Value::Number(n) if n.fract() == 0.0 => Ok(SoakStart::Resume(RunId(n as i64))),
        other => Err(invalid(format!(
            "'resume' must be a run id or true, got {}",
            other.type_name()
        ))),
    }
}

/// A sample as Lua sees it: the [`Sample`] fields, plus `run_id` and the shortcuts
/// `vram_slope_mb_per_h` (own accounting, else heap usage) and `rss_slope_mb_per_h`.
fn sample_value(lua: &Lua, s: &Sample, run: Option<RunId>) -> mlua::Result<Value> {
    let mut doc = serde_json::to_value(s).map_err(|e| invalid(format!("sample: {e}")))?;
    if let Json::Object(m) = &mut doc {
        let slope = |k: &str| s.leak.get(k).map(|e| e.slope);
        m.insert("run_id".into(), json!(run.map(|r| r.0)));
        m.insert(
            "vram_slope_mb_per_h".into(),
            json!(slope("vram_own").or(slope("vram_heap_used"))),
        );
        m.insert("rss_slope_mb_per_h".into(), json!(slope("rss")));
    }
    super::opts::to_lua(lua, &doc)
}

/// The Lua side of a soak: reload safe points and the `on_sample` callback.
struct LuaHooks<'a> {
    lua: &'a Lua,
    on_sample: Option<Function>,
    db: PathBuf,
    run: Option<RunId>,
}

impl SoakHooks for LuaHooks<'_> {
    fn on_start(&mut self, run: RunId) -> Result<()> {
        self.run = Some(run);
        set_current_run(self.lua, &self.db, Some(run)).map_err(|e| Error::Script(describe(&e)))
    }

    fn on_sample(&mut self, sample: &Sample) -> Result<Flow> {
        super::reload::poll_reload(self.lua).map_err(|e| Error::Script(describe(&e)))?;
        let Some(f) = &self.on_sample else {
            return Ok(Flow::Continue);
        };
        let v =
            sample_value(self.lua, sample, self.run).map_err(|e| Error::Script(describe(&e)))?;
        match f.call::<Value>(v) {
            Ok(Value::Boolean(false)) => Ok(Flow::Stop),
            Ok(_) => Ok(Flow::Continue),
            Err(e) => Err(Error::Script(format!("on_sample: {}", describe(&e)))),
        }
    }
}

/// The summary as a Lua table.
fn summary_value(lua: &Lua, s: &SoakSummary) -> mlua::Result<Value> {
    let mut verdicts = serde_json::Map::new();
    for (kind, e) in &s.leak {
        verdicts.insert(
            kind.clone(),
            json!({ "slope_mb_per_h": e.slope, "ci95_lo": e.lo, "ci95_hi": e.hi,
                    "verdict": e.verdict.as_str(), "n": e.n, "se": e.se }),
        );
    }
    let doc = json!({
        "run_id": s.run_id.0,
        "status": s.status.as_str(),
        "reason": s.reason,
        "resumed": s.resumed,
        "segments": s.segments,
        "elapsed_s": s.elapsed_s,
        "samples": s.samples,
        "checkpoints": s.checkpoints,
        "requests_ok": s.requests_ok,
        "requests_failed": s.requests_failed,
        "tokens": s.tokens,
        "tokens_per_s": s.tokens_per_s,
        "threshold_mb_per_h": s.threshold_mb_per_h,
        "leak": verdicts,
        "last": s.last,
        "pool": s.pool,
        "table": s.table(),
    });
    super::opts::to_lua(lua, &doc)
}

/// A Lua request function as a request source: the pool asks over a channel; the answers are made
/// on the Lua thread by the future this returns alongside.
type Ask = (u64, std_mpsc::SyncSender<Result<Request>>);

fn lua_source(
    lua: &Lua,
    f: Function,
    default_max: u32,
) -> (RequestSource, impl std::future::Future<Output = ()> + '_) {
    let (ask, mut asked) = tokio::sync::mpsc::unbounded_channel::<Ask>();
    let source = RequestSource::from_fn(move |i| {
        let (reply, answer) = std_mpsc::sync_channel(1);
        ask.send((i, reply))
            .map_err(|_| Error::Invalid("the Lua thread stopped".into()))?;
        tokio::task::block_in_place(|| answer.recv())
            .map_err(|_| Error::Invalid("the Lua thread stopped".into()))?
    });
    let server = async move {
        // Ends when the load drops its source (the sender).
        while let Some((i, reply)) = asked.recv().await {
            let made = call_request_fn(lua, &f, i, default_max);
            let _ = reply.send(made);
        }
    };
    (source, server)
}

fn run(lua: &Lua, opts: Table) -> mlua::Result<Value> {
    check_keys(&opts, FIELDS, "soak.run")?;
    if let Some(run) = current_run(lua) {
        return Err(invalid(format!(
            "results run {run} is open; end_run it first (a soak owns a run of its own)"
        )));
    }
    let config = config_of(&opts)?;
    let endpoint = endpoint_of(&opts)?;
    let source = source_of(&opts)?;
    let on_sample: Option<Function> = opts.get("on_sample")?;
    let name: String = opts.get::<Option<String>>("name")?.unwrap_or("soak".into());
    let db = match opts.get::<Option<String>>("db")? {
        Some(p) => PathBuf::from(p),
        None => store_path(lua),
    };
    let store = Store::open(&db).map_err(lua_err)?;
    let (target, service) = target_of(&opts, endpoint)?;
    let mut info = RunInfo::new(SOAK_PHASE, name.clone());
    info.config_generation = super::reload::generation(lua);
    if let Some(s) = &service {
        info.model_path = Some(s.path().to_path_buf());
        info.device = Some(s.scheduler().device().to_string());
    }
    info.params = json!({
        "target": target.target.describe(),
        "config": config,
    });
    let start = start_of(&store, &opts, &name, info)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rawrxd-soak")
        .build()
        .map_err(|e| invalid(format!("cannot start the async runtime: {e}")))?;
    let cancel = CancellationToken::new();
    let _interrupts = InterruptGuard::new(cancel.clone());
    let mut hooks = LuaHooks {
        lua,
        on_sample,
        db: db.clone(),
        run: None,
    };
    let outcome = match source {
        Source::Rust(rs) => runtime.block_on(soak::run(
            &store, start, target, rs, &config, &mut hooks, cancel,
        )),
        Source::Lua(f, default_max) => {
            let (rs, server) = lua_source(lua, f, default_max);
            runtime.block_on(async {
                let (r, ()) = tokio::join!(
                    soak::run(&store, start, target, rs, &config, &mut hooks, cancel),
                    server
                );
                r
            })
        }
    };
    runtime.shutdown_background();
    let run_id = hooks.run;
    if run_id.is_some() && current_run(lua) == run_id {
        set_current_run(lua, Path::new(""), None)?;
    }
    let summary = outcome.map_err(lua_err)?;
    summary_value(lua, &summary)
}

/// Adds the `soak` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("run", lua.create_function(run)?)?;
    module.set("soak", t)?;
    Ok(())
}
