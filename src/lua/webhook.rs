//! `rawrxd.webhook`: ad-hoc notifications (`send{kind=, url_env=|url=, text=}`), and the webhook
//! spec tables `rawrxd.alerts.new` reads.
//!
//! One dispatcher per host serves `send` (started on first use, default [`DeliveryPolicy`]);
//! deliveries are recorded in the current results run when one is open. A URL given in a
//! script is never echoed back: errors and stats name the webhook by its label.

use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, Table, Value};

use super::error::lua_err;
use super::opts::{to_lua, Opts};
use super::results;
use crate::store;
use crate::webhook::{DeliveryPolicy, Dispatcher, Format, Notification, StoreTarget, Webhook};
use crate::Error;

/// The host's ad-hoc dispatcher (Lua app data).
struct AdHoc(Arc<Dispatcher>);

fn dispatcher(lua: &Lua) -> mlua::Result<Arc<Dispatcher>> {
    if let Some(d) = lua.app_data_ref::<AdHoc>() {
        return Ok(Arc::clone(&d.0));
    }
    let d = Arc::new(Dispatcher::new(DeliveryPolicy::default()).map_err(lua_err)?);
    lua.set_app_data(AdHoc(Arc::clone(&d)));
    Ok(d)
}

/// A webhook from `{kind = "slack"|"discord"|"generic", url_env = "VAR" | url = "…", name = …}`;
/// `what` names the caller in errors. Extra keys in `allowed` are left to the caller.
pub(crate) fn webhook_from(t: &Table, what: &str, extra: &[&str]) -> mlua::Result<Webhook> {
    let bad = |msg: String| lua_err(Error::Invalid(format!("{what}: {msg}")));
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            other => {
                return Err(bad(format!(
                    "a {} key, expected named fields",
                    other.type_name()
                )))
            }
        };
        if !["kind", "url", "url_env", "name"].contains(&key.as_str())
            && !extra.contains(&key.as_str())
        {
            return Err(bad(format!(
                "unknown field '{key}' (expected kind, url or url_env, name{})",
                extra.iter().map(|e| format!(", {e}")).collect::<String>()
            )));
        }
    }
    let text = |key: &str| -> mlua::Result<Option<String>> {
        match t.get::<Value>(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_string_lossy())),
            // Never print the value: it may be the URL.
            other => Err(bad(format!(
                "field '{key}': expected a string, got {}",
                other.type_name()
            ))),
        }
    };
    let kind: Format = text("kind")?
        .ok_or_else(|| bad("field 'kind' is missing (slack, discord or generic)".into()))?
        .parse()
        .map_err(|e: Error| bad(e.to_string()))?;
    let name = text("name")?;
    let w = match (text("url")?, text("url_env")?) {
        (Some(u), None) => Webhook::new(kind, &u, name.as_deref()),
        (None, Some(var)) => Webhook::from_env(kind, &var, name.as_deref()),
        (Some(_), Some(_)) => return Err(bad("give either url or url_env, not both".into())),
        (None, None) => {
            return Err(bad(
                "no URL: set url_env = \"VAR\" (the variable holding the URL) or url = …".into(),
            ))
        }
    };
    w.map_err(|e| bad(e.to_string()))
}

/// The current run's store target, if a run is open.
pub(crate) fn current_target(lua: &Lua) -> mlua::Result<Option<StoreTarget>> {
    results::with_current_run(lua, |s, run| {
        Ok(StoreTarget {
            path: s.path().to_path_buf(),
            run,
        })
    })
}

/// Seconds as a `Duration` (`what` names the caller when negative or not finite).
pub(crate) fn seconds(s: f64, what: &str) -> mlua::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        lua_err(Error::Invalid(format!(
            "{what}: expected a non-negative number of seconds, got {s}"
        )))
    })
}

/// Adds the `webhook` table (`send`, `flush`, `stats`, `deliveries`) to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "send",
        lua.create_function(|lua, spec: Table| {
            const WHAT: &str = "rawrxd.webhook.send";
            let w = Arc::new(webhook_from(&spec, WHAT, &["text"])?);
            let text = Opts::new(spec, WHAT, &["kind", "url", "url_env", "name", "text"])?
                .string("text")?
                .ok_or_else(|| {
                    lua_err(Error::Invalid(format!("{WHAT}: field 'text' is missing")))
                })?;
            let target = current_target(lua)?;
            let note = Notification::text(text, target.as_ref().map(|t| t.run.0), store::now());
            dispatcher(lua)?.send(&w, note, target);
            Ok(true)
        })?,
    )?;
    t.set(
        "flush",
        lua.create_function(|lua, timeout: Option<f64>| {
            let d = seconds(timeout.unwrap_or(10.0), "rawrxd.webhook.flush")?;
            Ok(lua.app_data_ref::<AdHoc>().is_none_or(|a| a.0.flush(d)))
        })?,
    )?;
    t.set(
        "stats",
        lua.create_function(|lua, ()| {
            let s = lua
                .app_data_ref::<AdHoc>()
                .map(|a| a.0.stats())
                .unwrap_or_default();
            to_lua(lua, &s)
        })?,
    )?;
    t.set(
        "deliveries",
        lua.create_function(|lua, ()| {
            let r = lua
                .app_data_ref::<AdHoc>()
                .map(|a| a.0.recent())
                .unwrap_or_default();
            to_lua(lua, &r)
        })?,
    )?;
    module.set("webhook", t)?;
    Ok(())
}
