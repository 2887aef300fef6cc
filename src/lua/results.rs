//! `rawrxd.results`: the results store from Lua.
//!
//! One store per host (opened at the default path on first use, or by `open(path)`), and at most
//! one *current* run, which `record*` calls write into. Every row is stamped with the host's
//! configuration generation at the moment it is recorded; each hot reload also records a `reload`
//! event in the current run. A run still open when the script ends is ended by the host: `ok` when
//! the script finished, `failed` with the error when it did not.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table, Value};
use serde::Serialize;
use serde_json::Value as Json;

use super::error::lua_err;
use super::reload;
use crate::store::{
    self, CompareOptions, ExportFormat, HistogramSummary, RunFilter, RunId, RunInfo, RunStatus,
    Store, Tags,
};
use crate::Error;

/// The store and current run of one host.
#[derive(Default)]
struct ResultsState {
    store: Option<Store>,
    current: Option<RunId>,
}

#[derive(Clone, Default)]
struct ResultsHandle(Arc<Mutex<ResultsState>>);

fn state(lua: &Lua) -> ResultsHandle {
    if let Some(h) = lua.app_data_ref::<ResultsHandle>() {
        return h.clone();
    }
    let h = ResultsHandle::default();
    lua.set_app_data(h.clone());
    h
}

impl ResultsHandle {
    fn lock(&self) -> MutexGuard<'_, ResultsState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ResultsState {
    /// The open store, opening the default one on first use, stamped with `generation`.
    fn store(&mut self, generation: u64) -> mlua::Result<&Store> {
        if self.store.is_none() {
            self.store = Some(Store::open_default().map_err(lua_err)?);
        }
        let s = self
            .store
            .as_ref()
            .ok_or_else(|| lua_err(Error::Invalid("results store could not be opened".into())))?;
        s.set_config_generation(generation);
        Ok(s)
    }

    fn current(&self, what: &str) -> mlua::Result<RunId> {
        self.current.ok_or_else(|| {
            lua_err(Error::Invalid(format!(
                "rawrxd.results.{what}: no run is open (call rawrxd.results.begin_run first)"
            )))
        })
    }
}

fn to_lua<T: Serialize + ?Sized>(lua: &Lua, v: &T) -> mlua::Result<Value> {
    lua.to_value_with(
        v,
        SerializeOptions::new()
            .serialize_none_to_null(false)
            .serialize_unit_to_null(false),
    )
}

/// A Lua table of `key = value` pairs as JSON tags; `nil` is no tags.
fn tags_from(lua: &Lua, v: Value, what: &str) -> mlua::Result<Tags> {
    match v {
        Value::Nil => Ok(Tags::new()),
        Value::Table(_) => match lua.from_value::<Json>(v)? {
            Json::Object(m) => Ok(m),
            Json::Array(a) if a.is_empty() => Ok(Tags::new()),
            _ => Err(lua_err(Error::Invalid(format!(
                "{what}: expected a table of key = value pairs, got a list"
            )))),
        },
        other => Err(lua_err(Error::Invalid(format!(
            "{what}: expected a table, got {}",
            other.type_name()
        )))),
    }
}

fn opt_string(t: &Table, key: &str) -> mlua::Result<Option<String>> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_string())),
        Value::Integer(i) => Ok(Some(i.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(lua_err(Error::Invalid(format!(
            "rawrxd.results.begin_run: field '{key}': expected a string, got {}",
            other.type_name()
        )))),
    }
}

/// `RunInfo` from the `begin_run{...}` table; unknown fields are errors.
fn run_info(lua: &Lua, t: &Table) -> mlua::Result<RunInfo> {
    const FIELDS: &[&str] = &[
        "phase",
        "name",
        "device",
        "driver",
        "model",
        "model_sha256",
        "variant",
        "params",
    ];
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = k.to_string()?;
        if !FIELDS.contains(&key.as_str()) {
            return Err(lua_err(Error::Invalid(format!(
                "rawrxd.results.begin_run: unknown field '{key}' (expected one of {})",
                FIELDS.join(", ")
            ))));
        }
    }
    let script_stem = lua
        .app_data_ref::<super::host::HostInfo>()
        .and_then(|h| {
            h.script
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "script".into());
    let mut info = RunInfo::new(
        opt_string(t, "phase")?.unwrap_or_else(|| "script".into()),
        opt_string(t, "name")?.unwrap_or(script_stem),
    );
    info.device = opt_string(t, "device")?;
    info.driver = opt_string(t, "driver")?;
    info.model_path = opt_string(t, "model")?.map(PathBuf::from);
    info.model_sha256 = opt_string(t, "model_sha256")?;
    info.variant = opt_string(t, "variant")?;
    info.params = match t.get::<Value>("params")? {
        Value::Nil => Json::Object(Tags::new()),
        v => Json::Object(tags_from(
            lua,
            v,
            "rawrxd.results.begin_run: field 'params'",
        )?),
    };
    info.config_generation = reload::generation(lua);
    Ok(info)
}

/// One id or a list of ids.
fn run_ids(v: Value) -> mlua::Result<Vec<RunId>> {
    match v {
        Value::Integer(i) => Ok(vec![RunId(i)]),
        Value::Number(n) if n.fract() == 0.0 => Ok(vec![RunId(n as i64)]),
        Value::Table(t) => t.sequence_values::<i64>().map(|r| r.map(RunId)).collect(),
        other => Err(lua_err(Error::Invalid(format!(
            "expected a run id or a list of run ids, got {}",
            other.type_name()
        )))),
    }
}

fn status_from(s: Option<String>) -> mlua::Result<RunStatus> {
    match s {
        None => Ok(RunStatus::Ok),
        Some(s) => s.parse().map_err(lua_err),
    }
}

/// Called by the reloader after a successful reload: stamps new rows with `generation` and notes
/// the reload in the current run.
pub(crate) fn on_generation(lua: &Lua, generation: u64, modules: &[&str]) {
    let h = state(lua);
    let mut st = h.lock();
    let current = st.current;
    if let Some(s) = &st.store {
        s.set_config_generation(generation);
    }
    if let (Some(run), Some(s)) = (current, st.store.as_mut()) {
        let payload = serde_json::json!({ "generation": generation, "modules": modules });
        if let Err(e) = s.record_event(run, "reload", &payload) {
            ::log::warn!(target: "rawrxd::reload", "cannot record the reload event: {e}");
        }
    }
}

/// Calls `f` with the store and the current run when a run is open (`None` otherwise), for other
/// API modules that record into the script's run (e.g. `rawrxd.pool.run`).
pub(crate) fn with_current_run<T>(
    lua: &Lua,
    f: impl FnOnce(&Store, RunId) -> crate::Result<T>,
) -> mlua::Result<Option<T>> {
    let generation = reload::generation(lua);
    let h = state(lua);
    let mut st = h.lock();
    let Some(run) = st.current else {
        return Ok(None);
    };
    f(st.store(generation)?, run).map(Some).map_err(lua_err)
}

/// The database file of the host's store: the open one, else the default path.
pub(crate) fn store_path(lua: &Lua) -> PathBuf {
    let h = state(lua);
    let st = h.lock();
    st.store
        .as_ref()
        .map_or_else(Store::default_path, |s| s.path().to_path_buf())
}

/// The host's current run, if one is open.
pub(crate) fn current_run(lua: &Lua) -> Option<RunId> {
    state(lua).lock().current
}

/// Makes `run` of the database at `path` the host's current run (opening `path` as the host's
/// store unless it is the one open), or with `None` clears the current run — for APIs that own
/// a run of their own while Lua callbacks may record into it (`rawrxd.soak.run`).
pub(crate) fn set_current_run(lua: &Lua, path: &Path, run: Option<RunId>) -> mlua::Result<()> {
    let h = state(lua);
    let mut st = h.lock();
    let same = st.store.as_ref().is_some_and(|s| s.path() == path);
    if run.is_some() && !same {
        st.store = Some(Store::open(path).map_err(lua_err)?);
    }
    st.current = run;
    Ok(())
}

/// Calls `f` with the host's store (opening the default one on first use), for API modules that
/// record into a run the script names (e.g. `rawrxd.alerts` with `run = id`).
pub(crate) fn with_store<T>(
    lua: &Lua,
    f: impl FnOnce(&Store) -> crate::Result<T>,
) -> mlua::Result<T> {
    let generation = reload::generation(lua);
    let h = state(lua);
    let mut st = h.lock();
    f(st.store(generation)?).map_err(lua_err)
}

/// Ends the current run, if any, when the script is done: `ok` or `failed` with `error`.
pub(crate) fn finish(lua: &Lua, error: Option<&str>) -> crate::Result<()> {
    let h = state(lua);
    let mut st = h.lock();
    if let (Some(run), Some(store)) = (st.current.take(), st.store.as_ref()) {
        let status = if error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        store.end_run(run, status, error)?;
    }
    Ok(())
}

/// Everything stored about one run, as `query` and `gather` return it: `{run, measurements,
/// histograms (summaries), series = {name = points}, events}`.
fn run_doc(s: &Store, id: RunId) -> crate::Result<Json> {
    let run = s.run(id)?;
    let measurements = s.measurements(id)?;
    let mut histograms = Vec::new();
    for (name, unit) in s.histogram_names(id)? {
        if let Some(hist) = s.histogram(id, &name)? {
            histograms.push(HistogramSummary::of(&name, &unit, &hist));
        }
    }
    let mut series = serde_json::Map::new();
    for name in s.series_names(id)? {
        let pts = s.series(id, &name)?;
        series.insert(name, serde_json::to_value(pts).unwrap_or(Json::Null));
    }
    let events = s.events(id)?;
    Ok(serde_json::json!({
        "run": run,
        "measurements": measurements,
        "histograms": histograms,
        "series": series,
        "events": events,
    }))
}

/// The newest run of each (phase, name) — optionally only of `phases` — oldest first. A run still
/// `running` is skipped when an ended run of the same (phase, name) exists.
fn latest_runs(s: &Store, phases: Option<&[String]>) -> crate::Result<Vec<RunId>> {
    let runs = s.list_runs(&RunFilter::default())?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in runs
        .iter()
        .filter(|r| r.status != RunStatus::Running)
        .chain(runs.iter().filter(|r| r.status == RunStatus::Running))
    {
        if phases.is_some_and(|p| !p.iter().any(|x| x == &r.phase)) {
            continue;
        }
        if seen.insert((r.phase.clone(), r.name.clone())) {
            out.push(r.id);
        }
    }
    out.sort();
    Ok(out)
}

/// Adds the `results` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;

    t.set(
        "open",
        lua.create_function(|lua, path: Option<String>| {
            let h = state(lua);
            let mut st = h.lock();
            if let Some(run) = st.current {
                return Err(lua_err(Error::Invalid(format!(
                    "rawrxd.results.open: run {run} is still open; end_run it first"
                ))));
            }
            let path = path.map(PathBuf::from).unwrap_or_else(Store::default_path);
            let store = Store::open(&path).map_err(lua_err)?;
            st.store = Some(store);
            Ok(path.to_string_lossy().into_owned())
        })?,
    )?;

    t.set(
        "begin_run",
        lua.create_function(|lua, info: Option<Table>| {
            let info = match info {
                Some(t) => run_info(lua, &t)?,
                None => run_info(lua, &lua.create_table()?)?,
            };
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            if let Some(run) = st.current {
                return Err(lua_err(Error::Invalid(format!(
                    "rawrxd.results.begin_run: run {run} is still open; end_run it first"
                ))));
            }
            let id = st.store(generation)?.begin_run(info).map_err(lua_err)?;
            st.current = Some(id);
            Ok(id.0)
        })?,
    )?;

    t.set(
        "record",
        lua.create_function(
            |lua, (name, value, unit, tags): (String, f64, Option<String>, Value)| {
                let tags = tags_from(lua, tags, "rawrxd.results.record: tags")?;
                let generation = reload::generation(lua);
                let h = state(lua);
                let mut st = h.lock();
                let run = st.current("record")?;
                st.store(generation)?
                    .record(run, &name, value, unit.as_deref().unwrap_or(""), &tags)
                    .map_err(lua_err)
            },
        )?,
    )?;

    t.set(
        "record_series",
        lua.create_function(|lua, (name, value, ts): (String, f64, Option<f64>)| {
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let run = st.current("record_series")?;
            st.store(generation)?
                .record_series(run, &name, ts.unwrap_or_else(store::now), value)
                .map_err(lua_err)
        })?,
    )?;

    t.set(
        "record_histogram",
        lua.create_function(
            |lua, (name, unit, values): (String, Option<String>, Vec<f64>)| {
                let mut hist = Histogram::<u64>::new(3)
                    .map_err(|e| lua_err(Error::Invalid(format!("histogram '{name}': {e:?}"))))?;
                for v in values {
                    if !v.is_finite() || v < 0.0 {
                        return Err(lua_err(Error::Invalid(format!(
                            "rawrxd.results.record_histogram '{name}': values must be \
                             non-negative numbers, got {v}"
                        ))));
                    }
                    hist.record(v.round() as u64).map_err(|e| {
                        lua_err(Error::Invalid(format!("histogram '{name}': {e:?}")))
                    })?;
                }
                let generation = reload::generation(lua);
                let h = state(lua);
                let mut st = h.lock();
                let run = st.current("record_histogram")?;
                st.store(generation)?
                    .record_histogram(run, &name, unit.as_deref().unwrap_or(""), &hist)
                    .map_err(lua_err)
            },
        )?,
    )?;

    t.set(
        "event",
        lua.create_function(|lua, (kind, payload): (String, Value)| {
            let payload: Json = match payload {
                Value::Nil => Json::Object(Tags::new()),
                v => lua.from_value(v)?,
            };
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let run = st.current("event")?;
            st.store(generation)?
                .record_event(run, &kind, &payload)
                .map_err(lua_err)
        })?,
    )?;

    t.set(
        "end_run",
        lua.create_function(|lua, (status, error): (Option<String>, Option<String>)| {
            let status = status_from(status)?;
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let run = st.current("end_run")?;
            st.store(generation)?
                .end_run(run, status, error.as_deref())
                .map_err(lua_err)?;
            st.current = None;
            Ok(run.0)
        })?,
    )?;

    t.set(
        "current",
        lua.create_function(|lua, ()| Ok(state(lua).lock().current.map(|r| r.0)))?,
    )?;

    t.set(
        "list",
        lua.create_function(|lua, filter: Option<Table>| {
            let mut f = RunFilter::default();
            if let Some(t) = filter {
                f.phase = t.get("phase")?;
                f.name = t.get("name")?;
                f.status = match t.get::<Option<String>>("status")? {
                    Some(s) => Some(s.parse().map_err(lua_err)?),
                    None => None,
                };
                f.limit = t.get("limit")?;
            }
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let runs = st.store(generation)?.list_runs(&f).map_err(lua_err)?;
            to_lua(lua, &runs)
        })?,
    )?;

    t.set(
        "query",
        lua.create_function(|lua, id: i64| {
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let doc = run_doc(st.store(generation)?, RunId(id)).map_err(lua_err)?;
            to_lua(lua, &doc)
        })?,
    )?;

    t.set(
        "gather",
        lua.create_function(|lua, opts: Option<Table>| {
            let (ids, phases) = match &opts {
                Some(t) => (
                    match t.get::<Value>("runs")? {
                        Value::Nil => None,
                        v => Some(run_ids(v)?),
                    },
                    t.get::<Option<Vec<String>>>("phases")?,
                ),
                None => (None, None),
            };
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let s = st.store(generation)?;
            let ids = match ids {
                Some(ids) => ids,
                None => latest_runs(s, phases.as_deref()).map_err(lua_err)?,
            };
            let docs = ids
                .into_iter()
                .map(|id| run_doc(s, id))
                .collect::<crate::Result<Vec<_>>>()
                .map_err(lua_err)?;
            to_lua(lua, &docs)
        })?,
    )?;

    t.set(
        "compare",
        lua.create_function(|lua, (a, b, opts): (i64, i64, Option<Table>)| {
            let mut o = CompareOptions::default();
            if let Some(t) = opts {
                if let Some(x) = t.get::<Option<f64>>("alpha")? {
                    o.alpha = x;
                }
                if let Some(x) = t.get::<Option<f64>>("min_change")? {
                    o.min_change = x;
                }
                if let Some(x) = t.get::<Option<f64>>("single_sample_change")? {
                    o.single_sample_change = x;
                }
            }
            let generation = reload::generation(lua);
            let h = state(lua);
            let mut st = h.lock();
            let c =
                store::compare(st.store(generation)?, RunId(a), RunId(b), &o).map_err(lua_err)?;
            let v = to_lua(lua, &c)?;
            if let Value::Table(t) = &v {
                t.set("markdown", c.to_markdown())?;
            }
            Ok(v)
        })?,
    )?;

    t.set(
        "export",
        lua.create_function(
            |lua, (ids, format, path): (Value, Option<String>, Option<String>)| {
                let ids = run_ids(ids)?;
                let format: ExportFormat = format
                    .as_deref()
                    .unwrap_or("json")
                    .parse()
                    .map_err(lua_err)?;
                let generation = reload::generation(lua);
                let h = state(lua);
                let mut st = h.lock();
                let text = store::export(st.store(generation)?, &ids, format).map_err(lua_err)?;
                if let Some(p) = path {
                    std::fs::write(&p, &text).map_err(|e| lua_err(Error::io(&p, e)))?;
                }
                Ok(text)
            },
        )?,
    )?;

    module.set("results", t)?;
    Ok(())
}
