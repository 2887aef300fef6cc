//! Reading `f{ key = value, ... }` option tables the same way in every API: unknown keys are
//! errors (a typo should not silently fall back to a default), and a field of the wrong type says
//! which function, which field, what was expected and what was given.

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table, Value};

use super::error::lua_err;
use crate::Error;

/// An option table being read by the API function `what` (e.g. `rawrxd.engine.load`).
pub(crate) struct Opts {
    table: Table,
    what: &'static str,
}

impl Opts {
    /// Checks that `table` holds only `allowed` keys.
    pub(crate) fn new(table: Table, what: &'static str, allowed: &[&str]) -> mlua::Result<Opts> {
        for pair in table.pairs::<Value, Value>() {
            let (k, _) = pair?;
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return Err(lua_err(Error::Invalid(format!(
                        "{what}: expected a table of named options, got a {} key",
                        other.type_name()
                    ))))
                }
            };
            if !allowed.contains(&key.as_str()) {
                return Err(lua_err(Error::Invalid(format!(
                    "{what}: unknown option '{key}' (expected one of {})",
                    allowed.join(", ")
                ))));
            }
        }
        Ok(Opts { table, what })
    }

    /// An option table that may be absent (`nil` reads as empty).
    pub(crate) fn maybe(
        lua: &mlua::Lua,
        table: Option<Table>,
        what: &'static str,
        allowed: &[&str],
    ) -> mlua::Result<Opts> {
        match table {
            Some(t) => Opts::new(t, what, allowed),
            None => Opts::new(lua.create_table()?, what, allowed),
        }
    }

    fn bad(&self, key: &str, expected: &str, got: &Value) -> mlua::Error {
        let shown = match got {
            Value::String(s) => format!("'{}'", s.to_string_lossy()),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            other => other.type_name().to_string(),
        };
        lua_err(Error::Invalid(format!(
            "{}: option '{key}': expected {expected}, got {shown}",
            self.what
        )))
    }

    /// The raw value of `key`.
    pub(crate) fn value(&self, key: &str) -> mlua::Result<Value> {
        self.table.get(key)
    }

    /// A string (numbers are accepted and printed).
    pub(crate) fn string(&self, key: &str) -> mlua::Result<Option<String>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_str()?.to_string())),
            Value::Integer(i) => Ok(Some(i.to_string())),
            Value::Number(n) => Ok(Some(n.to_string())),
            other => Err(self.bad(key, "a string", &other)),
        }
    }

    /// A whole number ≥ `min`.
    pub(crate) fn int(&self, key: &str, min: i64) -> mlua::Result<Option<i64>> {
        let v = self.value(key)?;
        let n = match &v {
            Value::Nil => return Ok(None),
            Value::Integer(i) => *i,
            Value::Number(n) if n.fract() == 0.0 && n.is_finite() => *n as i64,
            _ => return Err(self.bad(key, &format!("a whole number ≥ {min}"), &v)),
        };
        if n < min {
            return Err(self.bad(key, &format!("a whole number ≥ {min}"), &v));
        }
        Ok(Some(n))
    }

    /// A whole number ≥ `min` as `usize`.
    pub(crate) fn usize(&self, key: &str, min: usize) -> mlua::Result<Option<usize>> {
        Ok(self.int(key, min as i64)?.map(|n| n as usize))
    }

    /// A finite number.
    pub(crate) fn number(&self, key: &str) -> mlua::Result<Option<f64>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::Integer(i) => Ok(Some(i as f64)),
            Value::Number(n) if n.is_finite() => Ok(Some(n)),
            other => Err(self.bad(key, "a number", &other)),
        }
    }

    /// A boolean.
    pub(crate) fn bool(&self, key: &str) -> mlua::Result<Option<bool>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(self.bad(key, "true or false", &other)),
        }
    }

    /// An error about this call (for checks across several options).
    pub(crate) fn error(&self, msg: impl std::fmt::Display) -> mlua::Error {
        lua_err(Error::Invalid(format!("{}: {msg}", self.what)))
    }
}

/// A Rust value as a Lua value, with `None` and `()` as `nil` (mlua's default makes them a `null`
/// light userdata, which is truthy in Lua).
pub(crate) fn to_lua<T: serde::Serialize + ?Sized>(lua: &Lua, v: &T) -> mlua::Result<Value> {
    lua.to_value_with(
        v,
        SerializeOptions::new()
            .serialize_none_to_null(false)
            .serialize_unit_to_null(false),
    )
}
