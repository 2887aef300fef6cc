//! Variants of a model — the file as it is, a standard mix (`Q4_K_M`), or a hybrid scheme — made
//! from the source file, cached on disk, and re-made tensor by tensor when a scheme changes.
//!
//! Invariants:
//! - A variant is planned as one type per source tensor ([`plan`]); its cache file is keyed by the
//!   source file's SHA-256 and a hash of that plan, so an edited scheme or a changed mix recipe
//!   never reuses a stale file, and the same plan is never quantized twice.
//! - Cache files are written to a temporary name and renamed into place: a crash mid-write leaves
//!   no file that looks complete.
//! - Every converted tensor comes from the source file's own data (its best precision available),
//!   dequantized to f32 and re-quantized with the reference quantizers; a tensor whose type does
//!   not change is copied byte for byte. A plan equal to the source's own types uses the source
//!   file itself.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::gguf::GgufFile;
use crate::model::LlamaHParams;
use crate::quant::convert::{convert_tensor, quantize_file, ConvertOptions, TensorReport};
use crate::quant::mix::mix_types;
use crate::quant::{GgmlType, Mix, MixModel, Resolution, Scheme};
use crate::{Error, Result};

/// Environment variable naming the variant cache directory (default `results/cache`).
pub const CACHE_ENV: &str = "RAWRXD_CACHE";

/// The variant cache directory: `$RAWRXD_CACHE`, else `results/cache`.
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("results").join("cache"),
    }
}

/// Which variant of a model to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VariantSpec {
    /// The file as it is.
    Source,
    /// A standard mix, with llama-quantize's per-tensor recipe.
    Mix(Mix),
    /// A hybrid scheme file.
    Scheme(PathBuf),
}

impl VariantSpec {
    /// The name runs and reports use: "source", the mix's name, or the scheme's file stem.
    pub fn name(&self) -> String {
        match self {
            VariantSpec::Source => "source".into(),
            VariantSpec::Mix(m) => m.name().into(),
            VariantSpec::Scheme(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        }
    }
}

/// One type per source tensor, and the `general.file_type` to declare.
#[derive(Clone, Debug)]
pub struct Plan {
    pub types: Vec<GgmlType>,
    pub file_type: u32,
    /// The scheme's resolution (which rule chose each type), for scheme variants.
    pub resolution: Option<Resolution>,
}

/// Plans `spec` for `source`.
pub fn plan(source: &GgufFile, hp: &LlamaHParams, spec: &VariantSpec) -> Result<Plan> {
    let current: Vec<GgmlType> = source.tensors().iter().map(|t| t.ty).collect();
    Ok(match spec {
        VariantSpec::Source => Plan {
            types: current,
            file_type: source
                .get("general.file_type")
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as u32,
            resolution: None,
        },
        VariantSpec::Mix(m) => Plan {
            types: mix_types(*m, &MixModel::from_file(source, hp), source.tensors()),
            file_type: m.file_type(),
            resolution: None,
        },
        VariantSpec::Scheme(p) => {
            let r = Scheme::load(p)?.resolve(source, hp)?;
            Plan {
                types: r.types(),
                file_type: r.file_type,
                resolution: Some(r),
            }
        }
    })
}

/// A stable hash of a plan (tensor names and type ids), hex.
pub fn plan_hash(source: &GgufFile, types: &[GgmlType]) -> String {
    let mut h = Sha256::new();
    for (t, ty) in source.tensors().iter().zip(types) {
        h.update(t.name.as_bytes());
        h.update([0]);
        h.update(ty.id().to_le_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type HashKey = (PathBuf, u64, u128);

/// SHA-256 (hex) of the file at `path`, computed once per process for an unchanged file (same
/// canonical path, size and modification time).
pub fn file_sha256(path: &Path) -> Result<String> {
    static CACHE: OnceLock<Mutex<HashMap<HashKey, String>>> = OnceLock::new();
    let canon = path.canonicalize().map_err(|e| Error::io(path, e))?;
    let meta = std::fs::metadata(&canon).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = (canon.clone(), meta.len(), mtime);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(h) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(h.clone());
    }
    let mut f = File::open(&canon).map_err(|e| Error::io(path, e))?;
    let h = crate::store::sha256_hex(&mut f, path)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, h.clone());
    Ok(h)
}

/// A variant ready to load.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The file to load: the source itself or a cache file.
    pub path: PathBuf,
    pub plan: Plan,
    /// Whether the file was already in the cache (or is the source).
    pub reused: bool,
    /// Seconds spent quantizing (0 when reused).
    pub seconds: f64,
}

/// Makes (or finds in `cache_dir`) the file of `spec` for `source`, calling `on_tensor` after each
/// converted tensor. `source_sha` is the source file's SHA-256 ([`file_sha256`]).
pub fn prepare(
    source: &GgufFile,
    source_sha: &str,
    spec: &VariantSpec,
    cache_dir: &Path,
    on_tensor: impl FnMut(&TensorReport),
) -> Result<Prepared> {
    let hp = LlamaHParams::from_gguf(source)?;
    let plan = plan(source, &hp, spec)?;
    let same = source
        .tensors()
        .iter()
        .zip(&plan.types)
        .all(|(t, ty)| t.ty == *ty);
    if same {
        return Ok(Prepared {
            path: source.path().to_path_buf(),
            plan,
            reused: true,
            seconds: 0.0,
        });
    }
    let name: String = spec
        .name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = cache_dir.join(format!(
        "{}-{name}-{}.gguf",
        &source_sha[..16.min(source_sha.len())],
        plan_hash(source, &plan.types)
    ));
    if path.is_file() && GgufFile::open(&path).is_ok() {
        return Ok(Prepared {
            path,
            plan,
            reused: true,
            seconds: 0.0,
        });
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let tmp = path.with_extension(format!("gguf.tmp-{}", std::process::id()));
    let t = Instant::now();
    let opts = ConvertOptions {
        allow_requantize: true,
        file_type: plan.file_type,
    };
    let written = quantize_file(source, &tmp, &plan.types, &opts, on_tensor);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(Prepared {
        path,
        plan,
        reused: false,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// One tensor whose type a scheme change altered, re-quantized from the source.
#[derive(Clone, Debug)]
pub struct Requantized {
    pub name: String,
    pub from: GgmlType,
    pub to: GgmlType,
    pub bytes: Vec<u8>,
}

/// A loaded engine's scheme: re-resolving it after an edit yields the tensors to swap.
pub struct SchemeBinding {
    path: PathBuf,
    source: Arc<GgufFile>,
    hp: LlamaHParams,
    /// The type each source tensor has in the engine now.
    types: Vec<GgmlType>,
}

impl SchemeBinding {
    /// A binding for an engine whose tensors have `types` (source order) under scheme `path`.
    pub fn new(path: PathBuf, source: Arc<GgufFile>, types: Vec<GgmlType>) -> Result<Self> {
        let hp = LlamaHParams::from_gguf(&source)?;
        Ok(SchemeBinding {
            path,
            source,
            hp,
            types,
        })
    }

    /// The scheme file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the scheme file again and resolves it; returns every tensor whose type changed,
    /// re-quantized from the source, and the seconds that took. On error (a broken scheme, a
    /// type that does not fit) nothing changes.
    pub fn reload(&mut self) -> Result<(Vec<Requantized>, f64)> {
        let t = Instant::now();
        let r = Scheme::load(&self.path)?.resolve(&self.source, &self.hp)?;
        let new = r.types();
        let changed: Vec<usize> = (0..new.len())
            .filter(|&i| new[i] != self.types[i])
            .collect();
        let mut out = Vec::with_capacity(changed.len());
        for &i in &changed {
            let info = &self.source.tensors()[i];
            let bytes = convert_tensor(
                info.ty,
                self.source.tensor_data(info),
                new[i],
                info.row_len(),
            )
            .map_err(|e| Error::Shape {
                name: info.name.clone(),
                msg: e.to_string(),
            })?;
            out.push(Requantized {
                name: info.name.clone(),
                from: self.types[i],
                to: new[i],
                bytes,
            });
        }
        self.types = new;
        Ok((out, t.elapsed().as_secs_f64()))
    }
}
