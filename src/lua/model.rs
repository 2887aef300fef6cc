//! `rawrxd.model`: GGUF model files from Lua.
//!
//! `open(path)` maps a file once and hands out a `Model` userdata sharing it (an `Arc`), so an
//! engine loaded from it and later `info()` calls never re-read or re-parse the file. `default()`
//! finds the embedded default model. `synth{shape=, type= | scheme=, out=, seed=}` writes a
//! synthetic llama model (seeded random weights, quantized while written) and opens it; without
//! `out` it goes to the variant cache and is reused when already there. Functions elsewhere that
//! take a model accept a `Model` or a path ([`model_arg`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::bench::bar;
use super::error::lua_err;
use super::opts::{to_lua, Opts};
use crate::engine::variant::default_cache_dir;
use crate::gguf::GgufFile;
use crate::model::synth::{builtin_vocab, donor_vocab, write_synthetic, SynthShape, NAMED_SHAPES};
use crate::model::LlamaHParams;
use crate::quant::mix::mix_types;
use crate::quant::{Mix, MixModel, Scheme};
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
        t.set("hparams", to_lua(lua, &hp)?)?;
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

const SYNTH: &str = "rawrxd.model.synth";

/// `rawrxd.model.synth{...}`.
fn synth(opts: Table) -> mlua::Result<LuaModel> {
    let o = Opts::new(
        opts,
        SYNTH,
        &[
            "shape",
            "type",
            "scheme",
            "out",
            "seed",
            "vocab_from",
            "progress",
        ],
    )?;
    let spec = o.string("shape")?.ok_or_else(|| {
        o.error(format!(
            "option 'shape' is required ({})",
            NAMED_SHAPES.join(", ")
        ))
    })?;
    let shape = SynthShape::parse(&spec).map_err(|e| {
        o.error(format!(
            "option 'shape': {e} (presets: {})",
            NAMED_SHAPES.join(", ")
        ))
    })?;
    let seed = o.int("seed", 0)?.map_or(42, |s| s as u64);
    let tensors = shape.tensors();
    let hp = shape.hparams();
    let (types, file_type, label) = match (o.string("type")?, o.string("scheme")?) {
        (Some(_), Some(_)) => return Err(o.error("give either type= (a mix) or scheme=, not both")),
        (None, Some(s)) => {
            let r = Scheme::load(&s)
                .and_then(|sc| sc.resolve_tensors(&tensors, &hp))
                .map_err(lua_err)?;
            let stem = Path::new(&s)
                .file_stem()
                .map_or_else(|| "scheme".into(), |x| x.to_string_lossy().into_owned());
            (r.types(), r.file_type, stem)
        }
        (m, None) => {
            let mix: Mix = m
                .as_deref()
                .unwrap_or("Q4_K_M")
                .parse()
                .map_err(|e| o.error(format!("option 'type': {e}")))?;
            let types = mix_types(mix, &MixModel::from_hparams(&hp), &tensors);
            (types, mix.file_type(), mix.name().to_string())
        }
    };
    let (out, reuse) = match o.string("out")? {
        Some(p) => (PathBuf::from(p), false),
        None => {
            let plan: Vec<u32> = types.iter().map(|t| t.id()).collect();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&(&spec, &plan), &mut h);
            let key = std::hash::Hasher::finish(&h);
            let name: String = format!("synth-{}-{label}-s{seed}-{key:016x}.gguf", shape.label)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (default_cache_dir().join(name), true)
        }
    };
    if reuse {
        if let Ok(m) = LuaModel::open(&out) {
            return Ok(m);
        }
    }
    let vocab = match o.value("vocab_from")? {
        Value::Nil => builtin_vocab(shape.n_vocab),
        v => donor_vocab(&model_arg(&v, SYNTH)?.file, shape.n_vocab),
    }
    .map_err(lua_err)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| lua_err(Error::io(dir, e)))?;
    }
    let tmp = out.with_extension(format!("gguf.tmp-{}", std::process::id()));
    let pb = bar(
        tensors.len() as u64,
        format!("synth {label}"),
        o.bool("progress")?.unwrap_or(true),
    );
    let written = write_synthetic(&tmp, &shape, &types, file_type, vocab, seed, |_| pb.inc(1));
    pb.finish_and_clear();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(lua_err(e));
    }
    std::fs::rename(&tmp, &out).map_err(|e| lua_err(Error::io(&out, e)))?;
    LuaModel::open(&out).map_err(lua_err)
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
    t.set("synth", lua.create_function(|_, opts: Table| synth(opts))?)?;
    module.set("model", t)?;
    Ok(())
}
