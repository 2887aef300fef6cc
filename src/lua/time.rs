//! `rawrxd.time`: wall-clock time, a monotonic clock, and `sleep`, which is a reload safe point.
//!
//! `now()` is seconds since the Unix epoch (the unit the results store uses); `monotonic()` is
//! seconds since the host started, never going backwards. `sleep(s)` blocks the script, then
//! applies pending hot reloads (so a soak loop that sleeps between checkpoints picks up edits).

use std::time::{Duration, Instant};

use mlua::{Lua, Table};

use super::error::lua_err;
use super::reload;
use crate::Error;

/// When the monotonic clock started (set when the host is built).
pub(crate) struct Epoch(pub Instant);

/// Adds the `time` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    lua.set_app_data(Epoch(Instant::now()));
    let t = lua.create_table()?;
    t.set("now", lua.create_function(|_, ()| Ok(crate::store::now()))?)?;
    t.set(
        "monotonic",
        lua.create_function(|lua, ()| {
            let start = lua.app_data_ref::<Epoch>().map(|e| e.0);
            Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
        })?,
    )?;
    t.set(
        "sleep",
        lua.create_function(|lua, seconds: f64| {
            if !seconds.is_finite() || seconds < 0.0 {
                return Err(lua_err(Error::Invalid(format!(
                    "rawrxd.time.sleep: expected a non-negative number of seconds, got {seconds}"
                ))));
            }
            std::thread::sleep(Duration::from_secs_f64(seconds));
            reload::poll_reload(lua)?;
            Ok(())
        })?,
    )?;
    module.set("time", t)?;
    Ok(())
}
