//! One rule of a scheme: which tensors it selects (role, layers, Lua name pattern — all given
//! selectors must match) and the type it gives them (a type name or a Lua function).
//!
//! Invariant: a parsed rule holds only checked values: known roles, valid layer ranges, a
//! storable type name; only a function's return value is checked later, when it is called.

use mlua::{Function, Table, Value};

use super::layers::LayerSet;
use crate::model::TensorRole;
use crate::quant::GgmlType;

/// What a rule assigns.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// A fixed type.
    Type(GgmlType),
    /// `function(layer, n_layers, tensor) -> type name or nil`.
    Func(Function),
}

/// A parsed rule.
#[derive(Clone, Debug)]
pub(super) struct Rule {
    /// 1-based position in the scheme's list (what error messages and assignments cite).
    pub index: usize,
    /// The rule's selectors as written, for messages: `role=attn_v layers=0-3`.
    pub desc: String,
    pub roles: Option<Vec<TensorRole>>,
    pub layers: Option<LayerSet>,
    /// A Lua pattern searched for in the tensor name (`string.find`).
    pub name: Option<String>,
    pub target: Target,
    /// Apply llama.cpp's fallback when the type does not fit the tensor's rows.
    pub fallback: bool,
}

/// Parses a storage type name; Q8_1 and Q8_K exist only as dot-product operands.
pub(super) fn parse_type(s: &str) -> Result<GgmlType, String> {
    let ty: GgmlType = s.parse()?;
    if matches!(ty, GgmlType::Q8_1 | GgmlType::Q8K) {
        return Err(format!(
            "type '{s}' cannot hold model weights (ggml uses it only for activations)"
        ));
    }
    Ok(ty)
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Table(_) => "{…}".into(),
        other => other.type_name().to_string(),
    }
}

fn parse_roles(v: &Value) -> Result<Vec<TensorRole>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => s.to_string_lossy().parse::<TensorRole>(),
        other => Err(format!("role must be a string, got {}", other.type_name())),
    };
    match v {
        Value::Table(t) => t
            .clone()
            .sequence_values::<Value>()
            .map(|r| r.map_err(|e| e.to_string()).and_then(|v| one(&v)))
            .collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_layers(v: &Value) -> Result<LayerSet, String> {
    match v {
        Value::String(s) => LayerSet::parse(&s.to_string_lossy()),
        Value::Integer(i) => usize::try_from(*i)
            .map(|l| LayerSet::from_list(&[l]))
            .map_err(|_| format!("bad layer {i}")),
        Value::Table(t) => {
            let mut list = Vec::new();
            for v in t.clone().sequence_values::<Value>() {
                match v.map_err(|e| e.to_string())? {
                    Value::Integer(i) if i >= 0 => list.push(i as usize),
                    other => {
                        return Err(format!(
                            "layers list holds {}, expected layer numbers",
                            describe(&other)
                        ))
                    }
                }
            }
            Ok(LayerSet::from_list(&list))
        }
        other => Err(format!(
            "layers must be a string like \"0-3\" or a list of numbers, got {}",
            other.type_name()
        )),
    }
}

impl Rule {
    /// Parses the rule table `t` at 1-based position `index`; `fallback_default` is the
    /// scheme-wide `fallback` flag a rule inherits unless it sets its own.
    pub fn parse(index: usize, t: &Table, fallback_default: bool) -> Result<Rule, String> {
        let mut desc = Vec::new();
        let (mut roles, mut layers, mut name, mut target, mut fallback) =
            (None, None, None, None, fallback_default);
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                other => return Err(format!("unexpected entry {}", describe(other))),
            };
            match key.as_str() {
                "role" => {
                    roles = Some(parse_roles(&v)?);
                    desc.push(format!("role={}", describe(&v)));
                }
                "layers" => {
                    let set = parse_layers(&v)?;
                    desc.push(format!("layers={set}"));
                    layers = Some(set);
                }
                "name" => match &v {
                    Value::String(s) => {
                        name = Some(s.to_string_lossy());
                        desc.push(format!("name={}", describe(&v)));
                    }
                    other => {
                        return Err(format!(
                            "name must be a Lua pattern string, got {}",
                            other.type_name()
                        ))
                    }
                },
                "type" => {
                    target = Some(match &v {
                        Value::String(s) => Target::Type(parse_type(&s.to_string_lossy())?),
                        Value::Function(f) => Target::Func(f.clone()),
                        other => {
                            return Err(format!(
                                "type must be a type name or a function, got {}",
                                other.type_name()
                            ))
                        }
                    })
                }
                "fallback" => match v {
                    Value::Boolean(b) => fallback = b,
                    other => {
                        return Err(format!(
                            "fallback must be true or false, got {}",
                            other.type_name()
                        ))
                    }
                },
                other => {
                    return Err(format!(
                        "unknown key '{other}' (a rule has role, layers, name, type, fallback)"
                    ))
                }
            }
        }
        let target = target.ok_or("rule has no 'type'")?;
        if desc.is_empty() {
            desc.push("all tensors".into());
        }
        desc.sort(); // pairs() order is unspecified; keep messages stable
        Ok(Rule {
            index,
            desc: desc.join(" "),
            roles,
            layers,
            name,
            target,
            fallback,
        })
    }

    /// `rule 3 (role="attn_v")`, for messages.
    pub fn label(&self) -> String {
        format!("rule {} ({})", self.index, self.desc)
    }
}
