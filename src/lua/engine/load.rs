//! `rawrxd.engine.load{...}`: a model, a variant of it, a backend → an `Engine`.
//!
//! A `variant` (a mix) or `scheme` (a hybrid scheme file) is made from the model by
//! [`crate::engine::variant::prepare`] into the cache directory (reused when present); a scheme's
//! per-tensor types are printed, and the scheme file is watched: an edit that resolves is
//! re-quantized for the changed tensors only and swapped in at the next safe point.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use mlua::{Lua, Table, Value};

use super::{EngineHandle, EngineInfo, PendingSwap, Shared, TensorSwap};
use crate::engine::variant::{self, Prepared, SchemeBinding, VariantSpec};
use crate::engine::{load_engine_with, Backend, Engine, LoadOptions};
use crate::gguf::GgufFile;
use crate::lua::bench::bar;
use crate::lua::error::lua_err;
use crate::lua::model::{default_model, model_arg, LuaModel};
use crate::lua::opts::Opts;
use crate::lua::reload::{self, DataOutcome};
use crate::model::LlamaHParams;
use crate::quant::Mix;
use crate::{Error, Result};

const LOAD: &str = "rawrxd.engine.load";
const FIELDS: &[&str] = &[
    "model", "backend", "device", "ctx", "threads", "variant", "scheme", "cache", "progress",
    "quiet",
];

/// Default KV cache positions (capped by the model's training context).
pub const DEFAULT_CTX: usize = 1024;

/// Settings `load` keeps for engines it loads later from the same options (the KLD base).
#[derive(Clone, Debug)]
pub(crate) struct LoadSettings {
    pub backend: Backend,
    /// Vulkan device: an index or a name substring (default: `$RAWRXD_VULKAN_DEVICE`, else the
    /// first usable GPU).
    pub device: Option<String>,
    pub threads: Option<usize>,
    pub cache: PathBuf,
    pub progress: bool,
}

/// The variant an option table asks for.
fn spec_of(o: &Opts) -> mlua::Result<VariantSpec> {
    match (o.string("variant")?, o.string("scheme")?) {
        (Some(_), Some(_)) => {
            Err(o.error("give either variant= (a mix) or scheme= (a file), not both"))
        }
        (Some(v), None) if v.eq_ignore_ascii_case("source") => Ok(VariantSpec::Source),
        (Some(v), None) => v
            .parse::<Mix>()
            .map(VariantSpec::Mix)
            .map_err(|e| o.error(format!("option 'variant': {e}"))),
        (None, Some(s)) => {
            let p = PathBuf::from(&s);
            if !p.is_file() {
                return Err(o.error(format!("option 'scheme': no scheme file {s}")));
            }
            Ok(VariantSpec::Scheme(p))
        }
        (None, None) => Ok(VariantSpec::Source),
    }
}

/// Prints the type a scheme gave each tensor.
fn print_assignments(source: &GgufFile, prepared: &Prepared, scheme: &std::path::Path) {
    let mut out = std::io::stdout().lock();
    let Some(r) = &prepared.plan.resolution else {
        return;
    };
    let _ = writeln!(out, "scheme {}:", scheme.display());
    for (t, a) in source.tensors().iter().zip(&r.assignments) {
        let by = match a.rule_index {
            Some(i) => format!("rule {i}"),
            None => "default".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<34} {:>14}  {:>5} → {:<5}  {by}",
            t.name,
            t.shape_string(),
            t.ty.ggml_name(),
            a.ty.ggml_name()
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
}

/// The reload hook of a scheme-run engine: re-resolve, re-quantize what changed, queue the swap.
fn scheme_hook(
    engine: Weak<Shared>,
    mut binding: SchemeBinding,
) -> Box<dyn FnMut(&std::path::Path) -> DataOutcome + Send> {
    Box::new(move |_path| {
        let Some(shared) = engine.upgrade() else {
            return DataOutcome::Gone;
        };
        if !EngineHandle(Arc::clone(&shared)).is_loaded() {
            return DataOutcome::Gone;
        }
        if !shared.swappable {
            return DataOutcome::Failed(format!(
                "{}: the {} engine cannot swap tensors while loaded; the edit applies when the \
                 engine is loaded again",
                binding.path().display(),
                shared.info.backend
            ));
        }
        match binding.reload() {
            Ok((tensors, seconds)) if tensors.is_empty() => DataOutcome::Applied(format!(
                "re-resolved in {seconds:.2} s; no tensor changed type"
            )),
            Ok((tensors, seconds)) => {
                let n = tensors.len();
                EngineHandle::queue(
                    &shared,
                    PendingSwap {
                        source: binding.path().display().to_string(),
                        tensors: tensors
                            .into_iter()
                            .map(|t| TensorSwap {
                                name: t.name,
                                from: t.from,
                                to: t.to,
                                bytes: t.bytes,
                            })
                            .collect(),
                        quantize_s: seconds,
                    },
                );
                DataOutcome::Applied(format!(
                    "{n} tensor(s) re-quantized in {seconds:.2} s; swapped into the engine at \
                     the next safe point"
                ))
            }
            Err(e) => DataOutcome::Failed(format!("{e} (keeping the previous scheme)")),
        }
    })
}

/// Loads `file` on the backend and device of `s` with `ctx` positions (`auto`: Vulkan when a
/// device can be used, else the CPU engine).
pub(crate) fn open_engine(
    file: Arc<GgufFile>,
    s: &LoadSettings,
    ctx: usize,
) -> Result<Box<dyn Engine>> {
    let opts = LoadOptions {
        n_ctx: ctx,
        threads: s.threads,
        device: s.device.clone(),
        ..LoadOptions::default()
    };
    load_engine_with(s.backend, file, &opts)
}

/// `rawrxd.engine.load{...}`.
pub(crate) fn load(lua: &Lua, opts: Option<Table>) -> mlua::Result<EngineHandle> {
    let o = Opts::maybe(lua, opts, LOAD, FIELDS)?;
    let model = match o.value("model")? {
        Value::Nil => LuaModel::open(default_model().map_err(lua_err)?).map_err(lua_err)?,
        v => model_arg(&v, LOAD)?,
    };
    let backend: Backend = o
        .string("backend")?
        .unwrap_or_else(|| "auto".into())
        .parse()
        .map_err(|e: Error| o.error(format!("option 'backend': {e}")))?;
    let device = o.string("device")?;
    let spec = spec_of(&o)?;
    let settings = LoadSettings {
        backend,
        device: device.clone(),
        threads: o.usize("threads", 1)?,
        cache: o
            .string("cache")?
            .map(PathBuf::from)
            .unwrap_or_else(variant::default_cache_dir),
        progress: o.bool("progress")?.unwrap_or(true),
    };
    let quiet = o.bool("quiet")?.unwrap_or(false);
    let source = Arc::clone(&model.file);
    let hp = LlamaHParams::from_gguf(&source).map_err(lua_err)?;
    let ctx = o
        .usize("ctx", 1)?
        .unwrap_or_else(|| DEFAULT_CTX.min(hp.n_ctx_train.max(1)));

    let prepared = if spec == VariantSpec::Source {
        variant::prepare(&source, "", &spec, &settings.cache, |_| {})
    } else {
        let sha = variant::file_sha256(source.path()).map_err(lua_err)?;
        let pb = bar(
            source.tensors().len() as u64,
            format!("quantize {}", spec.name()),
            settings.progress,
        );
        let r = variant::prepare(&source, &sha, &spec, &settings.cache, |_| pb.inc(1));
        pb.finish_and_clear();
        r
    }
    .map_err(lua_err)?;
    if !prepared.reused {
        ::log::info!(
            target: "rawrxd::engine",
            "quantized {} to {} in {:.1} s → {}",
            source.path().display(),
            spec.name(),
            prepared.seconds,
            prepared.path.display()
        );
    }
    let scheme_path = match &spec {
        VariantSpec::Scheme(p) => Some(p.clone()),
        _ => None,
    };
    if let (Some(p), false) = (&scheme_path, quiet) {
        print_assignments(&source, &prepared, p);
    }
    let file = if prepared.path == source.path() {
        Arc::clone(&source)
    } else {
        Arc::new(GgufFile::open(&prepared.path).map_err(|e| lua_err(e.into()))?)
    };
    let engine = open_engine(Arc::clone(&file), &settings, ctx).map_err(lua_err)?;
    if device.is_some() && engine.backend() == "cpu" {
        ::log::warn!(
            target: "rawrxd::engine",
            "device {} ignored: the model runs on the cpu backend",
            device.as_deref().unwrap_or_default()
        );
    }
    let info = EngineInfo {
        model: source.path().to_path_buf(),
        file: file.path().to_path_buf(),
        variant: spec.name(),
        scheme: scheme_path.clone(),
        backend: engine.backend().to_string(),
        device: engine.device_name(),
        n_ctx: engine.n_ctx(),
        threads: settings.threads,
    };
    let types = file
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.ty))
        .collect();
    let handle = EngineHandle::new(
        lua,
        engine,
        info,
        Arc::clone(&source),
        types,
        Some(settings),
    );
    if let Some(p) = scheme_path {
        let binding =
            SchemeBinding::new(p.clone(), source, prepared.plan.types.clone()).map_err(lua_err)?;
        reload::watch_data(lua, &p, scheme_hook(handle.downgrade(), binding));
    }
    Ok(handle)
}
