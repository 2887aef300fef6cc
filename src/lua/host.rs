//! The host: one Lua 5.4 state running one script, with `require "rawrxd"` bound to the API.
//!
//! The host module is built from one `register(lua, &table)` per API module; adding an API is one
//! more line in [`build_module`]. `package.path` searches, in order: the script's directory, the
//! repository's `lib-lua` (found through `$RAWRXD_LUA_PATH`, next to the executable, or in the
//! source tree this binary was built from), and the current directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlua::{Lua, MultiValue, Table, Value};

use super::error::describe;
use super::{args, bench, engine, log, model, probe, quant, reload, report, results, time};
use crate::{Error, Result};

/// Environment variable adding Lua library directories (or `?` patterns), `:`-separated.
pub const LUA_PATH_ENV: &str = "RAWRXD_LUA_PATH";

/// What the API modules may read about the running script (Lua app data).
pub struct HostInfo {
    /// The script as given on the command line.
    pub script: PathBuf,
    /// The script's arguments.
    pub args: Vec<String>,
}

/// A Lua state set up to run one script.
pub struct Host {
    lua: Lua,
    script: PathBuf,
}

/// The `lib-lua` directories to search: `$RAWRXD_LUA_PATH` entries, then the first `lib-lua`
/// found next to the executable (`<exe dir>/lib-lua`, `<exe dir>/../../lib-lua` for
/// `target/<profile>/rawrxd`, `<exe dir>/../share/rawrxd/lib-lua`), else the source tree's.
pub fn lib_lua_paths() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = std::env::var_os(LUA_PATH_ENV) {
        for p in std::env::split_paths(&v) {
            let s = p.to_string_lossy().into_owned();
            if !s.is_empty() {
                out.push(s);
            }
        }
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("lib-lua"));
        candidates.push(dir.join("../../lib-lua"));
        candidates.push(dir.join("../share/rawrxd/lib-lua"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("lib-lua"));
    if let Some(found) = candidates.into_iter().find(|c| c.is_dir()) {
        let found = found.canonicalize().unwrap_or(found);
        out.push(found.to_string_lossy().into_owned());
    }
    out
}

/// `dir/?.lua;dir/?/init.lua` for a directory, or the entry itself when it is a pattern.
fn patterns(entry: &str) -> String {
    if entry.contains('?') {
        entry.to_string()
    } else {
        format!("{entry}/?.lua;{entry}/?/init.lua")
    }
}

/// Builds the `rawrxd` module table: one registration per API module.
fn build_module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("version", crate::store::rawrxd_version())?;
    let script = lua
        .app_data_ref::<HostInfo>()
        .map(|h| h.script.to_string_lossy().into_owned());
    m.set("script", script)?;
    super::error::register(lua, &m)?;
    super::pool::register(lua, &m)?;
    args::register(lua, &m)?;
    log::register(lua, &m)?;
    time::register(lua, &m)?;
    results::register(lua, &m)?;
    reload::register(lua, &m)?;
    model::register(lua, &m)?;
    engine::register(lua, &m)?;
    bench::register(lua, &m)?;
    probe::register(lua, &m)?;
    quant::register(lua, &m)?;
    report::register(lua, &m)?;
    super::soak::register(lua, &m)?;
    super::alerts::register(lua, &m)?;
    super::webhook::register(lua, &m)?;
    Ok(m)
}

/// A script error as `file:line: message`.
fn script_error(e: &mlua::Error) -> Error {
    Error::Script(describe(e))
}

impl Host {
    /// Sets up a host for `script` with its arguments (not yet run).
    pub fn new(script: impl AsRef<Path>, args: &[String]) -> Result<Host> {
        Host::with_debounce(script, args, reload::DEBOUNCE)
    }

    /// Like [`Host::new`] with a given hot-reload debounce interval.
    pub fn with_debounce(
        script: impl AsRef<Path>,
        args: &[String],
        debounce: Duration,
    ) -> Result<Host> {
        let script = script.as_ref().to_path_buf();
        if !script.is_file() {
            return Err(Error::io(
                &script,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such script file"),
            ));
        }
        let lua = Lua::new();
        lua.set_app_data(HostInfo {
            script: script.clone(),
            args: args.to_vec(),
        });
        let setup = || -> mlua::Result<()> {
            let script_dir = match script.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_string_lossy().into_owned(),
                _ => ".".to_string(),
            };
            let mut path = vec![patterns(&script_dir)];
            path.extend(lib_lua_paths().iter().map(|p| patterns(p)));
            path.push(patterns("."));
            let package: Table = lua.globals().get("package")?;
            package.set("path", path.join(";"))?;
            reload::install(&lua, &script.to_string_lossy(), debounce)?;
            let module = build_module(&lua)?;
            package.get::<Table>("loaded")?.set("rawrxd", module)?;
            Ok(())
        };
        setup().map_err(|e| Error::Script(format!("setting up the Lua host: {}", describe(&e))))?;
        Ok(Host { lua, script })
    }

    /// The Lua state (for registering more APIs or evaluating code in tests).
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Runs the script with its arguments as `...`. Returns the exit code: the script's integer
    /// return value, 1 for `return false`, else 0. A script error comes back as
    /// [`Error::Script`] with `file:line: message`. A results run left open is ended (`ok`, or
    /// `failed` with the error).
    pub fn run(&self) -> Result<i32> {
        let source = std::fs::read(&self.script).map_err(|e| Error::io(&self.script, e))?;
        let args: Vec<String> = self
            .lua
            .app_data_ref::<HostInfo>()
            .map(|h| h.args.clone())
            .unwrap_or_default();
        let outcome = self
            .lua
            .load(source.as_slice())
            .set_name(format!("@{}", self.script.display()))
            .call::<MultiValue>(MultiValue::from_iter(
                args.iter()
                    .filter_map(|a| self.lua.create_string(a).ok().map(Value::String)),
            ));
        match outcome {
            Ok(values) => {
                results::finish(&self.lua, None)?;
                Ok(match values.front() {
                    Some(Value::Integer(i)) => i32::try_from(*i).unwrap_or(1),
                    Some(Value::Number(n)) => *n as i32,
                    Some(Value::Boolean(false)) => 1,
                    _ => 0,
                })
            }
            Err(e) => {
                if let Some(tb) = super::error::traceback(&e) {
                    ::log::debug!(target: "lua", "{tb}");
                }
                let err = script_error(&e);
                if let Err(store_err) = results::finish(&self.lua, Some(&err.to_string())) {
                    ::log::warn!("cannot end the open results run: {store_err}");
                }
                Err(err)
            }
        }
    }

    /// A reload safe point: applies settled edits to watched files; returns the new generation
    /// when something was reloaded.
    pub fn poll_reload(&self) -> Result<Option<u64>> {
        reload::poll_reload(&self.lua).map_err(|e| script_error(&e))
    }

    /// Re-evaluates the given watched files now, without waiting for the watcher.
    pub fn reload_now(&self, paths: &[&Path]) -> Result<Option<u64>> {
        reload::reload_now(&self.lua, paths).map_err(|e| script_error(&e))
    }

    /// The configuration generation (0 until the first successful reload).
    pub fn generation(&self) -> u64 {
        reload::generation(&self.lua)
    }

    /// The error of the last reload, if it failed.
    pub fn last_reload_error(&self) -> Option<String> {
        reload::last_error(&self.lua)
    }
}
