//! Turning `mlua` errors into the one line a script author needs: `file:line: message`.
//!
//! Lua errors raised from Lua code (`error "x"`, indexing nil, syntax errors) already start with
//! the chunk name and line. Errors returned by Rust callbacks do not; for those the location is
//! the first Lua frame of the traceback mlua attaches (`[C]` frames are skipped). Nested callback
//! errors (Rust → Lua → Rust) are unwrapped to the innermost cause.

use mlua::Error as LuaError;

/// `file:line: message` for `e`, without Rust frames or `runtime error:` prefixes.
pub fn describe(e: &LuaError) -> String {
    describe_inner(e).1
}

/// Returns whether the message already carries a location, and the message.
fn describe_inner(e: &LuaError) -> (bool, String) {
    match e {
        LuaError::RuntimeError(m) => (true, strip_traceback(m).to_string()),
        LuaError::SyntaxError { message, .. } => (true, message.clone()),
        LuaError::CallbackError { traceback, cause } => {
            let (located, msg) = describe_inner(cause);
            if located {
                return (true, msg);
            }
            match first_lua_frame(traceback) {
                Some(loc) => (true, format!("{loc}: {msg}")),
                None => (false, msg),
            }
        }
        LuaError::WithContext { context, cause } => {
            let (located, msg) = describe_inner(cause);
            (located, format!("{msg} ({context})"))
        }
        LuaError::BadArgument {
            to,
            pos,
            name,
            cause,
        } => {
            let what = match (name, to) {
                (Some(n), Some(t)) => format!("bad argument '{n}' to '{t}'"),
                (None, Some(t)) => format!("bad argument #{pos} to '{t}'"),
                (Some(n), None) => format!("bad argument '{n}'"),
                (None, None) => format!("bad argument #{pos}"),
            };
            let (located, msg) = describe_inner(cause);
            (located, format!("{what}: {msg}"))
        }
        LuaError::ExternalError(inner) => (false, inner.to_string()),
        other => (false, other.to_string()),
    }
}

/// The message without the `stack traceback:` mlua appends to errors of a top-level call.
fn strip_traceback(m: &str) -> &str {
    m.split_once("\nstack traceback:")
        .map_or(m, |(head, _)| head)
}

/// The Lua stack traceback carried by `e`, if any (for `--verbose` style diagnostics).
pub fn traceback(e: &LuaError) -> Option<String> {
    match e {
        LuaError::RuntimeError(m) => m
            .split_once("\nstack traceback:")
            .map(|(_, tb)| format!("stack traceback:{tb}")),
        LuaError::CallbackError { traceback, .. } => Some(traceback.clone()),
        LuaError::WithContext { cause, .. } => traceback(cause),
        _ => None,
    }
}

/// `file:line` of the first Lua (not `[C]`) frame of an mlua traceback.
fn first_lua_frame(traceback: &str) -> Option<String> {
    traceback.lines().skip(1).find_map(|line| {
        let line = line.trim();
        if line.starts_with("[C]") || line.is_empty() {
            return None;
        }
        // "file.lua:12: in function <...>" → "file.lua:12"
        let mut parts = line.splitn(3, ':');
        let file = parts.next()?;
        let ln = parts.next()?;
        ln.parse::<u32>().ok()?;
        Some(format!("{file}:{ln}"))
    })
}

/// Adds `error_message(err)` to the host module: the one-line `file:line: message` of an error
/// caught with `pcall` (Rust errors carry a traceback in their `tostring`).
pub fn register(lua: &mlua::Lua, module: &mlua::Table) -> mlua::Result<()> {
    module.set(
        "error_message",
        lua.create_function(|_, v: mlua::Value| {
            Ok(match v {
                mlua::Value::Error(e) => describe(&e),
                mlua::Value::String(s) => strip_traceback(&s.to_string_lossy()).to_string(),
                other => other.to_string()?,
            })
        })?,
    )
}

/// Converts a library error into a Lua error (raised in the calling script).
pub fn lua_err(e: crate::Error) -> LuaError {
    LuaError::external(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lua_frame_skips_c_frames() {
        let tb = "stack traceback:\n\t[C]: in function 'rawrxd.results.record'\n\
                  \tscripts/x.lua:7: in main chunk\n\t[C]: in ?";
        assert_eq!(first_lua_frame(tb).as_deref(), Some("scripts/x.lua:7"));
        assert_eq!(first_lua_frame("stack traceback:\n\t[C]: in ?"), None);
    }
}
