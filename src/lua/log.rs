//! `rawrxd.log.{debug,info,warn,error}(...)`: log lines from scripts through the `log` crate
//! (target `lua`), so they interleave with the host's own logging and obey `RUST_LOG`.
//! Arguments are joined with spaces after `tostring`, like `print`.

use mlua::{Lua, MultiValue, Table};

fn join(values: MultiValue) -> mlua::Result<String> {
    let parts = values
        .iter()
        .map(|v| v.to_string())
        .collect::<mlua::Result<Vec<_>>>()?;
    Ok(parts.join(" "))
}

/// Adds the `log` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    let levels = [
        ("debug", ::log::Level::Debug),
        ("info", ::log::Level::Info),
        ("warn", ::log::Level::Warn),
        ("error", ::log::Level::Error),
    ];
    for (name, level) in levels {
        let f = lua.create_function(move |_, values: MultiValue| {
            let msg = join(values)?;
            ::log::log!(target: "lua", level, "{msg}");
            Ok(())
        })?;
        t.set(name, f)?;
    }
    module.set("log", t)?;
    Ok(())
}
