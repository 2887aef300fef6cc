//! `rawrxd.alerts`: alert rules over samples, from a script.
//!
//! ```lua
//! local a = rx.alerts.new{ rules = "scripts/alerts/default.lua",
//!                          webhooks = { { kind = "slack", url_env = "RAWRXD_SLACK_WEBHOOK" } } }
//! local transitions = a:observe{ ts = os.time(), vram_own_mb = 812, requests_ok = 40 }
//! ```
//!
//! Invariants:
//! - `observe` is a reload safe point: it first applies settled edits of watched files, so an
//!   edited rules file takes effect at the next sample. A rules file is re-read in a fresh Lua
//!   state; if it fails, the error (`file:line: message`) is logged, the last good rules stay and
//!   `a:reload_error()` returns it. Rule state (pending/firing) carries over by rule name.
//! - Transitions are stored as `alert` events in the run given as `run`, else in the current
//!   results run when one is open; webhook deliveries likewise as `webhook` events.
//! - Nothing here waits on the network except `flush`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::error::lua_err;
use super::opts::{to_lua, Opts};
use super::reload::{self, DataOutcome};
use super::results;
use super::webhook::{seconds, webhook_from};
use crate::alert::{load_rules, rules_from_table, Alerts, Rule, Sample, Transition};
use crate::store::{self, RunId};
use crate::webhook::DeliveryPolicy;
use crate::Error;

const WHAT: &str = "rawrxd.alerts.new";

struct Inner {
    alerts: Alerts,
    run: Option<RunId>,
    /// Rules read from an edited file, applied at the next `observe`.
    next_rules: Option<Vec<Rule>>,
    rules_path: Option<PathBuf>,
    reload_error: Option<String>,
    reloads: u64,
}

/// The Lua handle of one alert set.
#[derive(Clone)]
struct LuaAlerts(Arc<Mutex<Inner>>);

impl LuaAlerts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reload hook of a rules file: parse it now (reporting errors with file:line), apply at the
/// next `observe`.
fn rules_hook(target: Weak<Mutex<Inner>>) -> reload::DataHook {
    Box::new(move |path| {
        let Some(inner) = target.upgrade() else {
            return DataOutcome::Gone;
        };
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        // Errors name the file as the script did, not the watcher's canonical path.
        let shown = inner
            .rules_path
            .clone()
            .unwrap_or_else(|| path.to_path_buf());
        match load_rules(&shown) {
            Ok(rules) => {
                let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                let msg = format!("{} alert rule(s): {}", rules.len(), names.join(", "));
                inner.next_rules = Some(rules);
                inner.reload_error = None;
                inner.reloads += 1;
                DataOutcome::Applied(msg)
            }
            Err(e) => {
                let msg = format!("{e} (keeping the previous alert rules)");
                inner.reload_error = Some(msg.clone());
                DataOutcome::Failed(msg)
            }
        }
    })
}

/// A sample from a Lua table: `ts` (default: now) and every numeric field.
fn sample_from(t: &Table) -> mlua::Result<Sample> {
    let mut s = Sample::at(store::now());
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else { continue };
        let k = k.to_string_lossy();
        let v = match v {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            Value::Boolean(b) => f64::from(u8::from(b)),
            _ => continue,
        };
        if k == "ts" {
            s.ts = v;
        } else {
            s.values.insert(k, v);
        }
    }
    Ok(s)
}

/// Runs `f` with the store sink of `run` (or the current run), or with no sink.
fn with_sink<T>(
    lua: &Lua,
    run: Option<RunId>,
    f: impl FnOnce(crate::alert::Sink<'_>) -> crate::Result<T>,
) -> mlua::Result<T> {
    match run {
        Some(run) => results::with_store(lua, |s| f(Some((s, run)))),
        None => {
            let mut f = Some(f);
            let done = results::with_current_run(lua, |s, run| {
                let f = f
                    .take()
                    .ok_or_else(|| Error::Invalid("sink used twice".into()))?;
                f(Some((s, run)))
            })?;
            match (done, f) {
                (Some(v), _) => Ok(v),
                (None, Some(f)) => f(None).map_err(lua_err),
                (None, None) => Err(lua_err(Error::Invalid("alerts: no sink".into()))),
            }
        }
    }
}

fn transitions_to_lua(lua: &Lua, t: &[Transition]) -> mlua::Result<Value> {
    to_lua(lua, t)
}

impl UserData for LuaAlerts {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("observe", |lua, this, sample: Table| {
            let sample = sample_from(&sample)?;
            // A safe point: edited rules files are re-read now (no lock of ours is held).
            reload::poll_reload(lua)?;
            let mut inner = this.lock();
            inner.alerts.set_generation(reload::generation(lua));
            let run = inner.run;
            let next = inner.next_rules.take();
            let mut out = Vec::new();
            with_sink(lua, run, |sink| {
                if let Some(rules) = next {
                    out.extend(inner.alerts.set_rules(rules, sink)?);
                }
                out.extend(inner.alerts.observe(&sample, sink)?);
                Ok(())
            })?;
            transitions_to_lua(lua, &out)
        });
        methods.add_method("state", |lua, this, ()| {
            let inner = this.lock();
            let t = lua.create_table()?;
            for s in inner.alerts.evaluator().states() {
                t.set(s.rule.clone(), to_lua(lua, &s)?)?;
            }
            Ok(t)
        });
        methods.add_method("rules", |lua, this, ()| {
            let inner = this.lock();
            let names: Vec<String> = inner
                .alerts
                .evaluator()
                .rules()
                .iter()
                .map(|r| r.name.clone())
                .collect();
            lua.create_sequence_from(names)
        });
        methods.add_method("reload_error", |_, this, ()| {
            Ok(this.lock().reload_error.clone())
        });
        methods.add_method("reloads", |_, this, ()| Ok(this.lock().reloads));
        methods.add_method("rules_file", |_, this, ()| {
            Ok(this
                .lock()
                .rules_path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()))
        });
        methods.add_method("flush", |_, this, timeout: Option<f64>| {
            let d = seconds(timeout.unwrap_or(10.0), "alerts:flush")?;
            Ok(this.lock().alerts.flush(d))
        });
        methods.add_method("stats", |lua, this, ()| {
            to_lua(lua, &this.lock().alerts.stats())
        });
        methods.add_method("deliveries", |lua, this, ()| {
            let inner = this.lock();
            let r = inner
                .alerts
                .dispatcher()
                .map(|d| d.recent())
                .unwrap_or_default();
            to_lua(lua, &r)
        });
    }
}

/// `rawrxd.alerts.new{ rules =, webhooks =, run =, min_interval_s =, tries =, backoff_s =,
/// timeout_s =, queue = }`.
fn new_alerts(lua: &Lua, spec: Table) -> mlua::Result<LuaAlerts> {
    let o = Opts::new(
        spec.clone(),
        WHAT,
        &[
            "rules",
            "webhooks",
            "run",
            "min_interval_s",
            "tries",
            "backoff_s",
            "backoff_max_s",
            "timeout_s",
            "queue",
        ],
    )?;
    let (rules, rules_path) = match o.value("rules")? {
        Value::String(s) => {
            let p = PathBuf::from(s.to_string_lossy());
            (load_rules(&p).map_err(lua_err)?, Some(p))
        }
        Value::Table(t) => {
            let locate = |i: usize, name: Option<&str>| match name {
                Some(n) => format!("{WHAT}: rules[{i}] ('{n}')"),
                None => format!("{WHAT}: rules[{i}]"),
            };
            (rules_from_table(&t, &locate).map_err(lua_err)?, None)
        }
        Value::Nil => return Err(o.error("option 'rules' is missing (a rules file or a table)")),
        other => {
            return Err(o.error(format!(
                "option 'rules': expected a file name or a table of rules, got {}",
                other.type_name()
            )))
        }
    };
    let mut webhooks = Vec::new();
    match o.value("webhooks")? {
        Value::Nil => {}
        Value::Table(list) => {
            for (i, w) in list.sequence_values::<Table>().enumerate() {
                let w = w.map_err(|_| o.error(format!("webhooks[{}] must be a table", i + 1)))?;
                webhooks.push(webhook_from(
                    &w,
                    &format!("{WHAT}: webhooks[{}]", i + 1),
                    &[],
                )?);
            }
        }
        other => {
            return Err(o.error(format!(
                "option 'webhooks': expected a list of webhook tables, got {}",
                other.type_name()
            )))
        }
    }
    let mut policy = DeliveryPolicy::default();
    if let Some(n) = o.int("tries", 1)? {
        policy.tries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(s) = o.number("backoff_s")? {
        policy.backoff_base = seconds(s, "rawrxd.alerts.new: backoff_s")?;
    }
    if let Some(s) = o.number("backoff_max_s")? {
        policy.backoff_max = seconds(s, "rawrxd.alerts.new: backoff_max_s")?;
    }
    if let Some(s) = o.number("timeout_s")? {
        policy.timeout = seconds(s, "rawrxd.alerts.new: timeout_s")?;
    }
    if let Some(n) = o.usize("queue", 1)? {
        policy.queue_capacity = n;
    }
    let min_interval_s = o.number("min_interval_s")?.unwrap_or(0.0);
    let run = o.int("run", 1)?.map(RunId);
    let alerts = Alerts::new(rules, min_interval_s, webhooks, policy).map_err(lua_err)?;
    for w in alerts.webhooks() {
        ::log::info!(target: "rawrxd::alert", "alerts notify {}", w.label());
    }
    let handle = LuaAlerts(Arc::new(Mutex::new(Inner {
        alerts,
        run,
        next_rules: None,
        rules_path: rules_path.clone(),
        reload_error: None,
        reloads: 0,
    })));
    if let Some(p) = rules_path {
        reload::watch_data(lua, &p, rules_hook(Arc::downgrade(&handle.0)));
    }
    Ok(handle)
}

/// Adds the `alerts` table (`new`) to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, spec: Table| new_alerts(lua, spec))?,
    )?;
    module.set("alerts", t)?;
    Ok(())
}
