//! `rawrxd.model`: GGUF model files from Lua.
//!
//! `open(path)` maps a file once and hands out a `Model` userdata sharing it (an `Arc`), so an
//! engine loaded from it and later `info()` calls never re-read or re-parse the file. `default()`
//! finds the embedded default model. Functions elsewhere that take a model accept a `Model` or a
//! path ([`model_arg`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{Lua, LuaSerdeExt, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::error::lua_err;
use crate::gguf::GgufFile;
use crate::model::LlamaHParams;
use crate::{Error, Result};

/// The default model's file name, under `models/`.
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Environment variable naming the default model file.
pub const MODEL_ENV: &str = "RAWRXD_MODEL";

/// An open model file.
#[derive(Clone)]
pub struct LuaModel {
    /// The parsed, memory-mapped file.
    pub file: Arc<GgufFile>,
}

impl LuaModel {
    /// Opens and parses `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<LuaModel> {
        Ok(LuaModel {
            file: Arc::new(GgufFile::open(path)?),
        })
    }

    /// The file's path as opened.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Where the default model may be, in the order searched: `$RAWRXD_MODEL`, then
/// `models/<DEFAULT_MODEL>` under the current directory, the executable's directory's parent (an
/// installed `bin/`), two levels up (`target/<profile>/`), and the source tree rawrxd was built
/// from.
pub fn default_model_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    let rel = Path::new("models").join(DEFAULT_MODEL);
    out.push(rel.clone());
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join("..").join(&rel));
        out.push(dir.join("../..").join(&rel));
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel));
    out
}

/// The default model's path: the first of [`default_model_candidates`] that exists. When
/// `$RAWRXD_MODEL` is set it must exist. The error lists where it looked and how to get it.
pub fn default_model() -> Result<PathBuf> {
    let candidates = default_model_candidates();
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Invalid(format!(
                "${MODEL_ENV} names {}, which is not a file",
                p.display()
            )))
        };
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.canonicalize().unwrap_or_else(|_| found.clone()));
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::Invalid(format!(
        "the default model {DEFAULT_MODEL} is missing (looked in {}); run scripts/setup.sh to \
         fetch it, or set ${MODEL_ENV} to a GGUF file",
        looked.join(", ")
    )))
}

/// A model argument: a `Model` userdata, or a path (opened now).
pub(crate) fn model_arg(v: &Value, what: &str) -> mlua::Result<LuaModel> {
    match v {
        Value::UserData(ud) => ud.borrow::<LuaModel>().map(|m| m.clone()).map_err(|_| {
            lua_err(Error::Invalid(format!(
                "{what}: expected a model (rawrxd.model.open) or a path, got another userdata"
            )))
        }),
        Value::String(s) => LuaModel::open(s.to_str()?.as_ref() as &str).map_err(lua_err),
        other => Err(lua_err(Error::Invalid(format!(
            "{what}: expected a model (rawrxd.model.open) or a path, got {}",
            other.type_name()
        )))),
    }
}

/// The `info()` table of a model.
pub(crate) fn info(lua: &Lua, f: &GgufFile) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("path", f.path().to_string_lossy().into_owned())?;
    t.set("gguf_version", f.version())?;
    t.set("arch", f.architecture().ok())?;
    t.set("name", f.get("general.name").and_then(|v| v.as_str()))?;
    t.set(
        "file_type",
        f.get("general.file_type").and_then(|v| v.as_u64()),
    )?;
    t.set("file_size", f.file_size())?;
    t.set("n_params", f.n_params())?;
    t.set("tensor_bytes", f.tensor_bytes())?;
    t.set("bpw", f.bits_per_weight())?;
    if let Ok(hp) = LlamaHParams::from_gguf(f) {
        t.set("hparams", lua.to_value(&hp)?)?;
    }
    let tok = lua.create_table()?;
    tok.set(
        "model",
        f.get("tokenizer.ggml.model").and_then(|v| v.as_str()),
    )?;
    tok.set("pre", f.get("tokenizer.ggml.pre").and_then(|v| v.as_str()))?;
    tok.set(
        "n_tokens",
        f.get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len()),
    )?;
    t.set("tokenizer", tok)?;
    let types = lua.create_table()?;
    let tensors = lua.create_table()?;
    let mut by_type: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for ti in f.tensors() {
        let e = by_type.entry(ti.ty.ggml_name()).or_default();
        e.0 += 1;
        e.1 += ti.n_bytes;
        let row = lua.create_table()?;
        row.set("name", ti.name.as_str())?;
        row.set("type", ti.ty.ggml_name())?;
        row.set("shape", ti.dims.clone())?;
        row.set("bytes", ti.n_bytes)?;
        tensors.push(row)?;
    }
    for (name, (count, bytes)) in by_type {
        let e = lua.create_table()?;
        e.set("count", count)?;
        e.set("bytes", bytes)?;
        types.set(name, e)?;
    }
    t.set("n_tensors", f.tensors().len())?;
    t.set("types", types)?;
    t.set("tensors", tensors)?;
    Ok(t)
}

impl UserData for LuaModel {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("path", |_, m| Ok(m.path().to_string_lossy().into_owned()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("info", |lua, m, ()| info(lua, &m.file));
        methods.add_meta_method("__tostring", |_, m, ()| {
            Ok(format!("rawrxd.Model({})", m.path().display()))
        });
    }
}

/// Adds the `model` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "open",
        lua.create_function(|_, path: String| LuaModel::open(&path).map_err(lua_err))?,
    )?;
    t.set(
        "default",
        lua.create_function(|_, ()| {
            default_model()
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(lua_err)
        })?,
    )?;
    module.set("model", t)?;
    Ok(())
}
