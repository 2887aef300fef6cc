//! Rules written in Lua: a rules file returns a table of rule tables (a list, or a map from name
//! to rule), and an inline table in a script reads the same way.
//!
//! ```lua
//! return {
//!   { name = "vram-leak", metric = "vram_own_mb", kind = "slope", window_s = 1800, above = 50 },
//!   stalled = { metric = "requests_ok", kind = "no_progress", for_s = 60 },
//! }
//! ```
//!
//! Invariants: unknown fields are errors (a typo must not silently disable a check); every error
//! names the file and line (for a rule: the line of its `name = "…"`, or of its key in map form,
//! when found in the source) or, for inline tables, the rule's index.

use std::path::Path;

use mlua::{Lua, Table, Value};

use super::{Aggregate, Cmp, Condition, Op, Rule};
use crate::{Error, Result};

const FIELDS: &[&str] = &[
    "name",
    "metric",
    "kind",
    "above",
    "below",
    "for_s",
    "window_s",
    "agg",
    "min_samples",
    "min_span_s",
    "warmup_s",
    "severity",
    "message",
    "min_interval_s",
    "notify",
    "over",
];

/// Names a rule in errors: `(index from 1, name if known) → "file:line: rule 'x'"`.
pub type Locate<'a> = &'a dyn Fn(usize, Option<&str>) -> String;

/// Loads the rules file at `path` in a fresh Lua state (the file sees only Lua's standard
/// library). Errors read `file:line: message`.
pub fn load_rules(path: &Path) -> Result<Vec<Rule>> {
    let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    rules_from_source(path, &source)
}

/// Rules from the text of a rules file; `path` names it in errors.
pub fn rules_from_source(path: &Path, source: &str) -> Result<Vec<Rule>> {
    let shown = path.display().to_string();
    let lua = Lua::new();
    let value = lua
        .load(source)
        .set_name(format!("@{shown}"))
        .call::<Value>(())
        .map_err(|e| Error::Invalid(crate::lua::describe(&e)))?;
    let Value::Table(t) = value else {
        return Err(Error::Invalid(format!(
            "{shown}: a rules file must return a table of rules, got {}",
            value.type_name()
        )));
    };
    let locate = |i: usize, name: Option<&str>| -> String {
        let line = name.and_then(|n| line_of(source, n));
        match (line, name) {
            (Some(l), Some(n)) => format!("{shown}:{l}: rule '{n}'"),
            (None, Some(n)) => format!("{shown}: rule '{n}'"),
            (_, None) => format!("{shown}: rule #{i}"),
        }
    };
    rules_from_table(&t, &locate)
}

/// The 1-based line where rule `name` is defined: `name = "x"` / `name = 'x'`, or a map key
/// `x = {` / `["x"] = {`.
fn line_of(source: &str, name: &str) -> Option<usize> {
    let quoted = [format!("\"{name}\""), format!("'{name}'")];
    let is_ident = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    for (i, line) in source.lines().enumerate() {
        let l = line.trim_start();
        let named = l.contains("name") && quoted.iter().any(|q| l.contains(q.as_str()));
        let bracket_key = quoted.iter().any(|q| l.starts_with(&format!("[{q}]")));
        let ident_key = is_ident
            && l.strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
        if named || bracket_key || ident_key {
            return Some(i + 1);
        }
    }
    None
}

/// Rules from a Lua table: a list of rule tables, or a map from name to rule table (read in name
/// order).
pub fn rules_from_table(t: &Table, locate: Locate<'_>) -> Result<Vec<Rule>> {
    let lua_err = |e: mlua::Error| Error::Invalid(crate::lua::describe(&e));
    let mut listed: Vec<(i64, Table)> = Vec::new();
    let mut named: Vec<(String, Table)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(lua_err)?;
        let Value::Table(rule) = v else {
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                Value::Integer(i) => format!("#{i}"),
                other => other.type_name().to_string(),
            };
            return Err(Error::Invalid(format!(
                "{}: entry {key} is a {}, expected a rule table",
                locate(0, None)
                    .rsplit_once(": rule")
                    .map_or("rules", |p| p.0),
                v.type_name()
            )));
        };
        match k {
            Value::Integer(i) => listed.push((i, rule)),
            Value::String(s) => named.push((s.to_string_lossy(), rule)),
            other => {
                return Err(Error::Invalid(format!(
                    "rules: a {} key, expected a list index or a rule name",
                    other.type_name()
                )))
            }
        }
    }
    listed.sort_by_key(|p| p.0);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rules = Vec::new();
    for (i, rule) in &listed {
        let i = usize::try_from(*i).unwrap_or(0);
        rules.push(rule_from_table(rule, None, i, locate)?);
    }
    for (i, (key, rule)) in named.iter().enumerate() {
        rules.push(rule_from_table(
            rule,
            Some(key),
            listed.len() + i + 1,
            locate,
        )?);
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        if !seen.insert(r.name.as_str()) {
            return Err(Error::Invalid(format!(
                "{}: the name is used by an earlier rule too",
                locate(i + 1, Some(&r.name))
            )));
        }
    }
    Ok(rules)
}

/// One rule table; `key` is its map key in map form.
fn rule_from_table(t: &Table, key: Option<&str>, index: usize, locate: Locate<'_>) -> Result<Rule> {
    let name = match t.get::<Value>("name") {
        Ok(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
    .or_else(|| key.map(str::to_string));
    let at = locate(index, name.as_deref());
    let bad = |msg: String| Error::Invalid(format!("{at}: {msg}"));
    let f = Fields { t, at: &at };
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| bad(e.to_string()))?;
        let k = match k {
            Value::String(s) => s.to_string_lossy(),
            other => {
                return Err(bad(format!(
                    "a {} key, expected field names",
                    other.type_name()
                )))
            }
        };
        if !FIELDS.contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown field '{k}' (expected one of {})",
                FIELDS.join(", ")
            )));
        }
    }
    let Some(name) = name else {
        return Err(bad("no name (set name = \"…\")".into()));
    };
    let metric = f
        .string("metric")?
        .ok_or_else(|| bad("no metric (the sample field to watch)".into()))?;
    let kind = f.string("kind")?.unwrap_or_else(|| "threshold".into());
    let cmp = || -> Result<Cmp> {
        match (f.number("above")?, f.number("below")?) {
            (Some(l), None) => Ok(Cmp {
                op: Op::Above,
                limit: l,
            }),
            (None, Some(l)) => Ok(Cmp {
                op: Op::Below,
                limit: l,
            }),
            (Some(_), Some(_)) => Err(bad("set either 'above' or 'below', not both".into())),
            (None, None) => Err(bad(format!("a {kind} rule needs 'above' or 'below'"))),
        }
    };
    let window = || -> Result<f64> {
        f.number("window_s")?
            .ok_or_else(|| bad(format!("a {kind} rule needs window_s")))
    };
    let only = |allowed: &[&str]| -> Result<()> {
        for k in [
            "agg",
            "window_s",
            "min_samples",
            "min_span_s",
            "over",
            "above",
            "below",
        ] {
            if !allowed.contains(&k) && !matches!(t.get::<Value>(k), Ok(Value::Nil)) {
                return Err(bad(format!("field '{k}' does not apply to a {kind} rule")));
            }
        }
        Ok(())
    };
    let condition = match kind.as_str() {
        "threshold" => {
            only(&["above", "below"])?;
            Condition::Threshold { cmp: cmp()? }
        }
        "window" => {
            only(&[
                "agg",
                "window_s",
                "min_samples",
                "min_span_s",
                "above",
                "below",
            ])?;
            let agg = match f.string("agg")? {
                Some(a) => Aggregate::parse(&a).map_err(|e| bad(e.to_string()))?,
                None => Aggregate::Mean,
            };
            Condition::Window {
                agg,
                window_s: window()?,
                min_samples: f.count("min_samples")?.unwrap_or(1),
                min_span_s: f.number("min_span_s")?.unwrap_or(0.0),
                cmp: cmp()?,
            }
        }
        "slope" => {
            only(&["window_s", "min_samples", "min_span_s", "above", "below"])?;
            Condition::Slope {
                window_s: window()?,
                min_samples: f.count("min_samples")?.unwrap_or(2),
                min_span_s: f.number("min_span_s")?.unwrap_or(0.0),
                cmp: cmp()?,
            }
        }
        "no_progress" => {
            only(&[])?;
            Condition::NoProgress
        }
        "ratio" => {
            only(&["over", "window_s", "above", "below"])?;
            let over = match t.get::<Value>("over").map_err(|e| bad(e.to_string()))? {
                Value::String(s) => vec![s.to_string_lossy()],
                Value::Table(list) => {
                    let mut v = Vec::new();
                    for x in list.sequence_values::<String>() {
                        v.push(x.map_err(|_| bad("'over' must be a list of metric names".into()))?);
                    }
                    v
                }
                Value::Nil => Vec::new(),
                other => {
                    return Err(bad(format!(
                        "'over' must be a metric name or a list of them, got {}",
                        other.type_name()
                    )))
                }
            };
            Condition::Ratio {
                over,
                window_s: window()?,
                cmp: cmp()?,
            }
        }
        other => {
            return Err(bad(format!(
                "unknown kind '{other}' (expected threshold, window, slope, no_progress or ratio)"
            )))
        }
    };
    let rule = Rule {
        name,
        metric,
        condition,
        for_s: f.number("for_s")?.unwrap_or(0.0),
        severity: f.string("severity")?.unwrap_or_else(|| "warning".into()),
        message: f.string("message")?,
        min_interval_s: f.number("min_interval_s")?.unwrap_or(0.0),
        warmup_s: f.number("warmup_s")?.unwrap_or(0.0),
        notify: f.bool("notify")?.unwrap_or(true),
    };
    rule.validate().map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix(&format!("rule '{}': ", rule.name))
            .unwrap_or(&msg)
            .to_string();
        bad(msg)
    })?;
    Ok(rule)
}

/// Typed reads of a rule table's fields, with errors naming the rule and field.
struct Fields<'a> {
    t: &'a Table,
    at: &'a str,
}

impl Fields<'_> {
    fn bad(&self, key: &str, expected: &str, got: &Value) -> Error {
        Error::Invalid(format!(
            "{}: field '{key}': expected {expected}, got {}",
            self.at,
            got.type_name()
        ))
    }

    fn get(&self, key: &str) -> Result<Value> {
        self.t
            .get::<Value>(key)
            .map_err(|e| Error::Invalid(format!("{}: field '{key}': {e}", self.at)))
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_string_lossy())),
            other => Err(self.bad(key, "a string", &other)),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key)? {
            Value::Nil => Ok(None),
            Value::Integer(i) => Ok(Some(i as f64)),
            Value::Number(n) => Ok(Some(n)),
            other => Err(self.bad(key, "a number", &other)),
        }
    }

    fn count(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key)? {
            Value::Nil => Ok(None),
            Value::Integer(i) if i >= 0 => Ok(Some(i as usize)),
            Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
            other => Err(self.bad(key, "a whole number ≥ 0", &other)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key)? {
            Value::Nil => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(self.bad(key, "true or false", &other)),
        }
    }
}
