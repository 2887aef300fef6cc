//! Hybrid quantization schemes: a Lua file that maps every tensor of a model to a type.
//!
//! ```lua
//! return {
//!   default = "q4_k_m",        -- a type ("q4_k": every weight) or a mix ("q4_k_m": its recipe)
//!   fallback = false,          -- optional: let rules (and a type default) fall back like llama.cpp
//!   { role = "token_embd", type = "q8_0" },
//!   { layers = "0-3", type = "q6_k" },                    -- "0-3", "28-", "1,5-6", {0, 1, 31}
//!   { name = "blk%.%d+%.ffn_down", type = "q5_k" },       -- Lua pattern, searched in the name
//!   { role = "ffn_down", type = function(layer, n_layers, tensor) return "q4_k" end },
//! }
//! ```
//!
//! Semantics: the default gives every tensor a type first; then each rule, in order, that matches
//! a tensor (all of its `role`, `layers` and `name` selectors must match) overrides it, so later
//! rules win. A function rule receives `(layer, n_layers, tensor)` with `tensor = {name, role,
//! layer, shape, n_elements}` and returns a type name or `nil` (no opinion). Tensors llama.cpp
//! never quantizes (norms and other 1-D tensors) keep their source type whatever the rules say.
//! When the chosen type does not fit a tensor's rows (576 is not a multiple of 256), resolution
//! fails naming the tensor and the rule, unless the rule (or, for the default and as the rules'
//! default, the scheme) says `fallback = true`: then llama.cpp's fallback type is used.
//!
//! Invariants: a [`Scheme`] owns its own Lua state (no global state; several schemes can live
//! side by side and be reloaded independently); every error from Lua keeps Lua's `file:line`
//! prefix; resolving is deterministic and does not mutate the scheme (a scheme's functions may
//! keep Lua-side state of their own, which is their business).

mod layers;
mod rule;

use std::path::{Path, PathBuf};

use mlua::{Function, Lua, Table, Value};

pub use layers::LayerSet;
use rule::{parse_type, Rule, Target};

use super::mix::{allows_quantization, fallback_type, mix_types, Mix, MixModel};
use super::GgmlType;
use crate::gguf::{GgufFile, TensorInfo};
use crate::model::{LlamaHParams, TensorRole};
use crate::{Error, Result};

/// What a scheme starts every tensor from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeDefault {
    /// One type for every quantizable tensor.
    Type(GgmlType),
    /// A standard mix's per-tensor recipe (with llama.cpp's own fallbacks).
    Mix(Mix),
}

/// The type a scheme gives one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorAssignment {
    /// Tensor name.
    pub name: String,
    /// Chosen type.
    pub ty: GgmlType,
    /// 1-based index of the rule that decided, `None` for the default (or a tensor that is never
    /// quantized).
    pub rule_index: Option<usize>,
}

/// The outcome of [`Scheme::resolve`].
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// One assignment per tensor, in the order the tensors were given.
    pub assignments: Vec<TensorAssignment>,
    /// Rules that matched no tensor (each also logged with `log::warn!`).
    pub warnings: Vec<String>,
    /// The `general.file_type` a file of this resolution should carry: the mix's id for a mix
    /// default, otherwise llama.cpp's guess from the most common weight type.
    pub file_type: u32,
}

impl Resolution {
    /// The chosen types, in tensor order.
    pub fn types(&self) -> Vec<GgmlType> {
        self.assignments.iter().map(|a| a.ty).collect()
    }
}

/// A loaded scheme.
pub struct Scheme {
    /// Keeps the functions of `rules` alive.
    lua: Lua,
    path: PathBuf,
    default: SchemeDefault,
    default_fallback: bool,
    rules: Vec<Rule>,
    /// `string.find`, captured before the scheme ran (a scheme may shadow globals).
    find: Function,
}

impl std::fmt::Debug for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheme")
            .field("path", &self.path)
            .field("default", &self.default)
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// Lua's message for `e`, `file:line:` prefix kept, traceback dropped.
fn lua_message(e: &mlua::Error) -> String {
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => return lua_message(cause),
        mlua::Error::WithContext { cause, .. } => return lua_message(cause),
        other => other.to_string(),
    };
    match msg.find("\nstack traceback:") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

impl Scheme {
    /// Loads and checks the scheme file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Scheme> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Scheme::from_source(path, &src)
    }

    /// Loads a scheme from `source`; `path` names it in error messages (`path:line: ...`).
    pub fn from_source(path: impl AsRef<Path>, source: &str) -> Result<Scheme> {
        let path = path.as_ref().to_path_buf();
        let err = |msg: String| Error::Scheme {
            path: path.clone(),
            msg,
        };
        let lua = Lua::new();
        let lua_err = |e: mlua::Error| err(lua_message(&e));
        let find: Function = lua
            .globals()
            .get::<Table>("string")
            .and_then(|s| s.get("find"))
            .map_err(lua_err)?;
        let chunk = lua
            .load(source)
            .set_name(format!("@{}", path.display()))
            .into_function()
            .map_err(lua_err)?;
        let top = match chunk.call::<Value>(()).map_err(lua_err)? {
            Value::Table(t) => t,
            other => {
                return Err(err(format!(
                    "{}: a scheme must return a table, got {}",
                    path.display(),
                    other.type_name()
                )))
            }
        };
        let at = |msg: String| err(format!("{}: {msg}", path.display()));

        let default_fallback = match top.get::<Value>("fallback").map_err(lua_err)? {
            Value::Nil => false,
            Value::Boolean(b) => b,
            other => {
                return Err(at(format!(
                    "fallback must be true or false, got {}",
                    other.type_name()
                )))
            }
        };
        let default =
            match top.get::<Value>("default").map_err(lua_err)? {
                Value::String(s) => {
                    let s = s.to_string_lossy();
                    match parse_type(&s) {
                        Ok(t) => SchemeDefault::Type(t),
                        Err(_) => SchemeDefault::Mix(s.parse::<Mix>().map_err(|_| {
                            at(format!(
                            "default '{s}' is neither a tensor type (q4_k, q8_0, f16, ...) nor a \
                             mix ({})",
                            Mix::ALL.map(|m| m.name().to_ascii_lowercase()).join(", ")
                        ))
                        })?),
                    }
                }
                Value::Nil => return Err(at(
                    "the scheme sets no 'default' (a type like \"q4_k\" or a mix like \"q4_k_m\")"
                        .into(),
                )),
                other => {
                    return Err(at(format!(
                        "default must be a string, got {}",
                        other.type_name()
                    )))
                }
            };

        let mut indexed = Vec::new();
        for pair in top.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(lua_err)?;
            match k {
                Value::Integer(i) => indexed.push((i, v)),
                Value::String(s) if matches!(&*s.to_string_lossy(), "default" | "fallback") => {}
                other => {
                    let name = match &other {
                        Value::String(s) => s.to_string_lossy(),
                        v => v.type_name().to_string(),
                    };
                    return Err(at(format!(
                        "unknown top-level key '{name}' (a scheme has default, fallback and a \
                         list of rules)"
                    )));
                }
            }
        }
        indexed.sort_by_key(|(i, _)| *i);
        let mut rules = Vec::with_capacity(indexed.len());
        for (pos, (i, v)) in indexed.into_iter().enumerate() {
            if i != pos as i64 + 1 {
                return Err(at(format!(
                    "rules must form a list 1..n, but entry {i} follows {pos}"
                )));
            }
            let idx = pos + 1;
            let Value::Table(t) = v else {
                return Err(at(format!(
                    "rule {idx} is a {}, expected a table like {{ role = \"attn_v\", type = \"q6_k\" }}",
                    v.type_name()
                )));
            };
            rules.push(
                Rule::parse(idx, &t, default_fallback)
                    .map_err(|m| at(format!("rule {idx}: {m}")))?,
            );
        }
        Ok(Scheme {
            lua,
            path,
            default,
            default_fallback,
            rules,
            find,
        })
    }

    /// The file the scheme came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The scheme's default.
    pub fn default_spec(&self) -> SchemeDefault {
        self.default
    }

    /// Number of rules.
    pub fn n_rules(&self) -> usize {
        self.rules.len()
    }

    /// Resolves the scheme for every tensor of `file` (whose expert count, if any, the mix
    /// recipes take into account).
    pub fn resolve(&self, file: &GgufFile, hp: &LlamaHParams) -> Result<Resolution> {
        let model = MixModel::from_file(file, hp);
        self.resolve_for(file.tensors(), hp, &model)
    }

    /// Resolves the scheme for `tensors` (a whole model, in any order) of a dense model `hp`.
    pub fn resolve_tensors(&self, tensors: &[TensorInfo], hp: &LlamaHParams) -> Result<Resolution> {
        self.resolve_for(tensors, hp, &MixModel::from_hparams(hp))
    }

    fn err(&self, msg: String) -> Error {
        Error::Scheme {
            path: self.path.clone(),
            msg,
        }
    }

    fn resolve_for(
        &self,
        tensors: &[TensorInfo],
        hp: &LlamaHParams,
        model: &MixModel,
    ) -> Result<Resolution> {
        let base: Vec<GgmlType> = match self.default {
            SchemeDefault::Mix(m) => mix_types(m, model, tensors),
            SchemeDefault::Type(ty) => tensors
                .iter()
                .map(|t| {
                    if allows_quantization(&t.name, &t.dims) {
                        ty
                    } else {
                        t.ty
                    }
                })
                .collect(),
        };
        let mut matched = vec![false; self.rules.len()];
        let mut assignments = Vec::with_capacity(tensors.len());
        for (t, &base_ty) in tensors.iter().zip(&base) {
            let mut a = TensorAssignment {
                name: t.name.clone(),
                ty: base_ty,
                rule_index: None,
            };
            if allows_quantization(&t.name, &t.dims) {
                let (role, layer) = TensorRole::of(&t.name);
                let mut info: Option<Table> = None;
                let mut winner: Option<&Rule> = None;
                for (r, m) in self.rules.iter().zip(matched.iter_mut()) {
                    if !self.matches(r, t, role, layer, hp.n_layer)? {
                        continue;
                    }
                    *m = true;
                    let ty = match &r.target {
                        Target::Type(ty) => Some(*ty),
                        Target::Func(f) => {
                            let table = match &info {
                                Some(tb) => tb.clone(),
                                None => info.insert(self.tensor_table(t, role, layer)?).clone(),
                            };
                            self.call(r, f, t, layer, hp.n_layer, table)?
                        }
                    };
                    if let Some(ty) = ty {
                        a.ty = ty;
                        winner = Some(r);
                    }
                }
                a.rule_index = winner.map(|r| r.index);
                let (fallback, who) = match winner {
                    Some(r) => (r.fallback, r.label()),
                    None => (self.default_fallback, "the default".to_string()),
                };
                if winner.is_some() || matches!(self.default, SchemeDefault::Type(_)) {
                    a.ty = self.fit(t, a.ty, fallback, &who)?;
                }
            }
            assignments.push(a);
        }
        let mut warnings = Vec::new();
        for (r, m) in self.rules.iter().zip(&matched) {
            if !*m {
                let w = format!(
                    "{}: {} matched no tensor of this model",
                    self.path.display(),
                    r.label()
                );
                log::warn!("{w}");
                warnings.push(w);
            }
        }
        let file_type = match self.default {
            SchemeDefault::Mix(m) => m.file_type(),
            SchemeDefault::Type(_) => guess_file_type(tensors, &assignments),
        };
        Ok(Resolution {
            assignments,
            warnings,
            file_type,
        })
    }

    /// Whether every selector of `r` accepts the tensor.
    fn matches(
        &self,
        r: &Rule,
        t: &TensorInfo,
        role: TensorRole,
        layer: Option<usize>,
        n_layer: usize,
    ) -> Result<bool> {
        if let Some(roles) = &r.roles {
            if !roles.contains(&role) {
                return Ok(false);
            }
        }
        if let Some(set) = &r.layers {
            match layer {
                Some(l) if set.contains(l, n_layer) => {}
                _ => return Ok(false),
            }
        }
        if let Some(pat) = &r.name {
            let found: Value = self
                .find
                .call((t.name.as_str(), pat.as_str()))
                .map_err(|e| {
                    self.err(format!(
                        "{}: {}: name pattern {pat:?}: {}",
                        self.path.display(),
                        r.label(),
                        lua_message(&e)
                    ))
                })?;
            if found.is_nil() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The `tensor` table handed to rule functions.
    fn tensor_table(
        &self,
        t: &TensorInfo,
        role: TensorRole,
        layer: Option<usize>,
    ) -> Result<Table> {
        let build = || -> mlua::Result<Table> {
            let tb = self.lua.create_table()?;
            tb.set("name", t.name.as_str())?;
            tb.set("role", role.as_str())?;
            tb.set("layer", layer)?;
            tb.set(
                "shape",
                self.lua.create_sequence_from(t.dims.iter().copied())?,
            )?;
            tb.set("n_elements", t.n_elements())?;
            Ok(tb)
        };
        build().map_err(|e| self.err(lua_message(&e)))
    }

    /// Calls a rule function and checks what it returns.
    fn call(
        &self,
        r: &Rule,
        f: &Function,
        t: &TensorInfo,
        layer: Option<usize>,
        n_layer: usize,
        table: Table,
    ) -> Result<Option<GgmlType>> {
        let ctx = || format!("in {} for tensor '{}'", r.label(), t.name);
        let v: Value = f
            .call((layer, n_layer, table))
            .map_err(|e| self.err(format!("{} ({})", lua_message(&e), ctx())))?;
        match v {
            Value::Nil => Ok(None),
            Value::String(s) => parse_type(&s.to_string_lossy())
                .map(Some)
                .map_err(|m| self.err(format!("{}: {m} ({})", self.path.display(), ctx()))),
            other => Err(self.err(format!(
                "{}: the function returned a {}, expected a type name or nil ({})",
                self.path.display(),
                other.type_name(),
                ctx()
            ))),
        }
    }

    /// `ty` if its blocks fit the tensor's rows; otherwise llama.cpp's fallback when allowed,
    /// else an error naming the tensor and whoever chose `ty`.
    fn fit(&self, t: &TensorInfo, ty: GgmlType, fallback: bool, who: &str) -> Result<GgmlType> {
        let ncols = t.dims[0];
        if ncols % ty.block_size() as u64 == 0 {
            return Ok(ty);
        }
        if fallback {
            return Ok(fallback_type(ty, ncols));
        }
        Err(self.err(format!(
            "{}: {who} gives tensor '{}' {shape} type {ty}, but its rows of {ncols} elements are \
             not a multiple of {ty}'s {}-element blocks; set `fallback = true` on the rule (or \
             the scheme) to use llama.cpp's fallback ({})",
            self.path.display(),
            t.name,
            ty.block_size(),
            fallback_type(ty, ncols),
            shape = t.shape_string(),
        )))
    }
}

/// `general.file_type` from the most common type among the quantizable tensors, as llama.cpp
/// guesses it for files without the key.
fn guess_file_type(tensors: &[TensorInfo], assignments: &[TensorAssignment]) -> u32 {
    let mut counts = std::collections::BTreeMap::<GgmlType, usize>::new();
    for (t, a) in tensors.iter().zip(assignments) {
        if allows_quantization(&t.name, &t.dims) {
            *counts.entry(a.ty).or_default() += 1;
        }
    }
    counts
        .iter()
        .max_by_key(|(ty, n)| (**n, std::cmp::Reverse(**ty)))
        .and_then(|(ty, _)| Mix::guess_from_type(*ty))
        .unwrap_or(Mix::F32)
        .file_type()
}

#[cfg(test)]
mod tests;
