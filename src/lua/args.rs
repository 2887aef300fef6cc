//! `rawrxd.args`: the script's command-line arguments, parsed.
//!
//! Rules: `--key value` and `--key=value` set `args.key`; a `--flag` followed by another `--…` or
//! by nothing is `true`; a repeated key collects its values into a list in order; everything else
//! is positional, at `args[1]`, `args[2]`, …; after `--`, everything is positional. Values that
//! read as numbers become Lua numbers (`--hours 48` → `48`); others stay strings. Dashes inside
//! keys are kept (`args["max-tokens"]`) and also mirrored with underscores (`args.max_tokens`).
//! `rawrxd.argv` keeps the raw list.

use mlua::{Lua, Table, Value};

use super::host::HostInfo;

/// A parsed argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// A `--flag` with no value.
    Flag,
    /// A value as given.
    Text(String),
}

/// Parsed script arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedArgs {
    /// Positional arguments in order.
    pub positional: Vec<String>,
    /// `(key, values)` in first-seen order; `values` holds one entry per occurrence.
    pub named: Vec<(String, Vec<ArgValue>)>,
}

/// Parses script arguments by the rules in the module header.
pub fn parse(args: &[String]) -> ParsedArgs {
    let mut out = ParsedArgs::default();
    let mut i = 0;
    let add = |out: &mut ParsedArgs, key: &str, v: ArgValue| match out
        .named
        .iter_mut()
        .find(|(k, _)| k == key)
    {
        Some((_, vs)) => vs.push(v),
        None => out.named.push((key.to_string(), vec![v])),
    };
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        let Some(body) = a.strip_prefix("--").filter(|b| !b.is_empty()) else {
            out.positional.push(a.clone());
            continue;
        };
        if let Some((k, v)) = body.split_once('=') {
            add(&mut out, k, ArgValue::Text(v.to_string()));
        } else if i < args.len() && !args[i].starts_with("--") {
            add(&mut out, body, ArgValue::Text(args[i].clone()));
            i += 1;
        } else {
            add(&mut out, body, ArgValue::Flag);
        }
    }
    out
}

fn to_lua(lua: &Lua, v: &ArgValue) -> mlua::Result<Value> {
    Ok(match v {
        ArgValue::Flag => Value::Boolean(true),
        ArgValue::Text(s) => {
            if let Ok(i) = s.parse::<i64>() {
                Value::Integer(i)
            } else if let Some(f) = s.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Value::Number(f)
            } else {
                Value::String(lua.create_string(s)?)
            }
        }
    })
}

/// Adds `args` (parsed) and `argv` (raw) to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let raw: Vec<String> = lua
        .app_data_ref::<HostInfo>()
        .map(|h| h.args.clone())
        .unwrap_or_default();
    let parsed = parse(&raw);
    let t = lua.create_table()?;
    for (i, p) in parsed.positional.iter().enumerate() {
        t.raw_set(i + 1, to_lua(lua, &ArgValue::Text(p.clone()))?)?;
    }
    for (k, vs) in &parsed.named {
        let value = if vs.len() == 1 {
            to_lua(lua, &vs[0])?
        } else {
            let list = lua.create_table()?;
            for (i, v) in vs.iter().enumerate() {
                list.raw_set(i + 1, to_lua(lua, v)?)?;
            }
            Value::Table(list)
        };
        t.raw_set(k.as_str(), value.clone())?;
        let underscored = k.replace('-', "_");
        if underscored != *k {
            t.raw_set(underscored, value)?;
        }
    }
    module.set("args", t)?;
    module.set("argv", lua.create_sequence_from(raw)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_keys_flags_positionals_and_repeats() {
        let p = parse(&s(&[
            "model.gguf",
            "--hours",
            "48",
            "--verbose",
            "--backend=vulkan",
            "--tag",
            "a",
            "--tag",
            "b",
            "--offset",
            "-3",
            "--",
            "--not-a-flag",
        ]));
        assert_eq!(p.positional, s(&["model.gguf", "--not-a-flag"]));
        let get = |k: &str| p.named.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("hours"), Some(vec![ArgValue::Text("48".into())]));
        assert_eq!(get("verbose"), Some(vec![ArgValue::Flag]));
        assert_eq!(get("backend"), Some(vec![ArgValue::Text("vulkan".into())]));
        assert_eq!(
            get("tag"),
            Some(vec![ArgValue::Text("a".into()), ArgValue::Text("b".into())])
        );
        assert_eq!(get("offset"), Some(vec![ArgValue::Text("-3".into())]));
    }

    #[test]
    fn trailing_flag_is_true() {
        let p = parse(&s(&["--dry-run"]));
        assert_eq!(p.named, vec![("dry-run".to_string(), vec![ArgValue::Flag])]);
        assert!(p.positional.is_empty());
    }
}
