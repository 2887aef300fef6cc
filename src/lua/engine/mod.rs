//! `rawrxd.engine`: loading a model on a backend and driving it from Lua.
//!
//! `load{...}` returns an `Engine` userdata: a handle ([`EngineHandle`]) to state shared with the
//! host (the probe sums every live engine; a scheme hot reload reaches the engine through a weak
//! reference). The state is:
//!
//! - the engine itself, behind a mutex that is only ever *tried*: a Lua callback that reaches an
//!   engine already busy in a bench or perplexity run gets an error, never a deadlock;
//! - the weight types the engine holds now (changed by scheme swaps);
//! - swaps waiting for the next safe point. A scheme reload re-quantizes the changed tensors
//!   inside `poll_reload` (no engine lock needed) and queues them; they are put into the engine
//!   at the next safe point that holds it: between two bench repetitions, or before the next
//!   method call. A swap resets the KV cache.
//!
//! `unload()` drops the engine at once; every later call on the handle is an error saying so.
//!
//! Files: `load.rs` (`rawrxd.engine.load`, variants, the scheme reload hook), `text.rs`
//! (`generate`), `quality.rs` (`perplexity` and KL divergence).

mod load;
mod quality;
mod text;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::Instant;

use mlua::{AnyUserData, Lua, Table, UserData, UserDataFields, UserDataMethods};

use super::error::lua_err;
use super::opts::to_lua;
use super::probe::vram_table;
use super::reload;
use crate::engine::{Engine, HeapUsage, MemoryUsage};
use crate::gguf::GgufFile;
use crate::model::tokenizer::Tokenizer;
use crate::quant::GgmlType;
use crate::{Error, Result};

/// What an engine was loaded from and how, for reports and provenance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineInfo {
    /// The model as the script gave it (the source of every variant).
    pub model: PathBuf,
    /// The file the engine runs: the model itself, or a quantized copy in the cache.
    pub file: PathBuf,
    /// "source", a mix name ("Q4_K_M"), or the scheme's file stem.
    pub variant: String,
    /// The hybrid scheme file, when the engine runs one.
    pub scheme: Option<PathBuf>,
    /// The backend that runs it ("cpu", "vulkan").
    pub backend: String,
    /// The device name the engine reports.
    pub device: String,
    /// KV cache positions.
    pub n_ctx: usize,
    /// CPU threads asked for (`None`: one per core).
    pub threads: Option<usize>,
}

/// One tensor to put into a loaded engine.
#[derive(Clone, Debug)]
pub struct TensorSwap {
    pub name: String,
    /// The type it has in the engine now.
    pub from: GgmlType,
    pub to: GgmlType,
    pub bytes: Vec<u8>,
}

/// Tensors re-quantized after a scheme change, waiting for a safe point.
#[derive(Clone, Debug)]
pub struct PendingSwap {
    /// What changed (the scheme file).
    pub source: String,
    pub tensors: Vec<TensorSwap>,
    /// Seconds spent re-quantizing.
    pub quantize_s: f64,
}

/// What a loaded engine holds now, besides the engine.
pub(crate) struct Holding {
    /// Every tensor's current type, in file order.
    pub(crate) types: Vec<(String, GgmlType)>,
    /// The configuration generation its weights date from (the load, or the last swap).
    pub(crate) generation: u64,
}

/// The engine and what it holds now.
pub(crate) struct Slot {
    engine: Option<Box<dyn Engine>>,
    holding: Holding,
}

/// State shared between the Lua handle, the host's engine list and reload hooks.
pub(crate) struct Shared {
    slot: Mutex<Slot>,
    pending: Mutex<Vec<PendingSwap>>,
    info: EngineInfo,
    /// The model as given (source of re-quantization and of the KLD base).
    pub(crate) source: Arc<GgufFile>,
    /// How it was loaded (to load a KLD base the same way); `None` for engines made in Rust.
    settings: Option<load::LoadSettings>,
    /// The model's tokenizer, built on first use.
    tokenizer: Mutex<Option<Arc<Tokenizer>>>,
    /// Whether the backend can swap tensors in place (a scheme edit can apply while loaded).
    pub(crate) swappable: bool,
}

/// The `Engine` userdata.
#[derive(Clone)]
pub struct EngineHandle(pub(crate) Arc<Shared>);

/// Engines loaded by one host (weak: an engine lives as long as its Lua handle).
#[derive(Clone, Default)]
struct Registry(Arc<Mutex<Vec<Weak<Shared>>>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live engines of this host, oldest first.
pub(crate) fn live_engines(lua: &Lua) -> Vec<EngineHandle> {
    let Some(reg) = lua.app_data_ref::<Registry>().map(|r| r.clone()) else {
        return Vec::new();
    };
    let mut list = lock(&reg.0);
    list.retain(|w| w.strong_count() > 0);
    list.iter()
        .filter_map(|w| w.upgrade().map(EngineHandle))
        .filter(|h| h.is_loaded())
        .collect()
}

impl EngineHandle {
    /// Wraps a loaded engine; `types` are its tensors' types in file order.
    pub(crate) fn new(
        lua: &Lua,
        engine: Box<dyn Engine>,
        info: EngineInfo,
        source: Arc<GgufFile>,
        types: Vec<(String, GgmlType)>,
        settings: Option<load::LoadSettings>,
    ) -> EngineHandle {
        let swappable = engine.can_replace_tensors();
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                engine: Some(engine),
                holding: Holding {
                    types,
                    generation: reload::generation(lua),
                },
            }),
            pending: Mutex::new(Vec::new()),
            info,
            source,
            settings,
            tokenizer: Mutex::new(None),
            swappable,
        });
        let reg = match lua.app_data_ref::<Registry>() {
            Some(r) => r.clone(),
            None => {
                let r = Registry::default();
                lua.set_app_data(r.clone());
                r
            }
        };
        lock(&reg.0).push(Arc::downgrade(&shared));
        EngineHandle(shared)
    }

    /// How the engine was loaded.
    pub fn info(&self) -> &EngineInfo {
        &self.0.info
    }

    /// The load settings, if `rawrxd.engine.load` made the engine.
    pub(crate) fn settings(&self) -> Option<load::LoadSettings> {
        self.0.settings.clone()
    }

    /// The model's tokenizer (built from the source file on first use).
    pub(crate) fn tokenizer(&self) -> Result<Arc<Tokenizer>> {
        let mut t = lock(&self.0.tokenizer);
        if let Some(t) = &*t {
            return Ok(Arc::clone(t));
        }
        let built = Arc::new(Tokenizer::from_gguf(&self.0.source)?);
        *t = Some(Arc::clone(&built));
        Ok(built)
    }

    /// A weak reference for reload hooks.
    pub(crate) fn downgrade(&self) -> Weak<Shared> {
        Arc::downgrade(&self.0)
    }

    fn is_loaded(&self) -> bool {
        match self.0.slot.try_lock() {
            Ok(s) => s.engine.is_some(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().engine.is_some(),
            Err(TryLockError::WouldBlock) => true,
        }
    }

    /// The slot, or an error when the engine is in use further up the stack.
    fn slot(&self) -> Result<MutexGuard<'_, Slot>> {
        match self.0.slot.try_lock() {
            Ok(s) => Ok(s),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Error::Invalid(format!(
                "the {} engine ({}) is busy: it is running a bench or perplexity that called \
                 back into this script",
                self.0.info.variant, self.0.info.backend
            ))),
        }
    }

    /// Runs `f` on the engine after applying pending swaps. `lua` stamps the swap generation.
    pub(crate) fn with_engine<R>(
        &self,
        lua: &Lua,
        f: impl FnOnce(&mut dyn Engine, &mut Holding) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.slot()?;
        let slot = &mut *guard;
        let Some(engine) = slot.engine.as_deref_mut() else {
            return Err(self.unloaded());
        };
        apply_pending(lua, &self.0, engine, &mut slot.holding)?;
        f(engine, &mut slot.holding)
    }

    /// Applies pending swaps to `engine` (a safe point inside a long run holding the engine).
    pub(crate) fn safe_point(
        &self,
        lua: &Lua,
        engine: &mut dyn Engine,
        holding: &mut Holding,
    ) -> Result<()> {
        apply_pending(lua, &self.0, engine, holding)
    }

    fn unloaded(&self) -> Error {
        Error::Invalid(format!(
            "the {} engine was unloaded (engine:unload()); load it again to use it",
            self.0.info.variant
        ))
    }

    /// Queues re-quantized tensors for the next safe point.
    pub(crate) fn queue(shared: &Shared, swap: PendingSwap) {
        lock(&shared.pending).push(swap);
    }

    /// The engine's memory accounting and device heaps (pending swaps are not applied: probing
    /// must not change the engine).
    pub fn memory(&self) -> Result<(MemoryUsage, Vec<HeapUsage>)> {
        let guard = self.slot()?;
        let engine = guard.engine.as_deref().ok_or_else(|| self.unloaded())?;
        Ok((engine.memory(), engine.memory_heaps()))
    }

    /// Every tensor's current type, after applying pending swaps.
    pub(crate) fn types(&self, lua: &Lua) -> Result<Vec<(String, GgmlType)>> {
        self.with_engine(lua, |_, h| Ok(h.types.clone()))
    }

    /// Drops the engine now.
    pub(crate) fn unload(&self) -> Result<bool> {
        let mut slot = self.slot()?;
        lock(&self.0.pending).clear();
        Ok(slot.engine.take().is_some())
    }
}

/// Puts pending swaps into `engine` (resetting its cache) and logs what it took. A swap that
/// fails part-way leaves the tensors already swapped in place (their types are recorded) and
/// returns the error.
fn apply_pending(
    lua: &Lua,
    shared: &Shared,
    engine: &mut dyn Engine,
    holding: &mut Holding,
) -> Result<()> {
    let pending: Vec<PendingSwap> = std::mem::take(&mut *lock(&shared.pending));
    if pending.is_empty() {
        return Ok(());
    }
    for p in pending {
        let t = Instant::now();
        for s in &p.tensors {
            engine.replace_tensor(&s.name, s.to, &s.bytes)?;
            if let Some(e) = holding.types.iter_mut().find(|(n, _)| *n == s.name) {
                e.1 = s.to;
            }
        }
        engine.reset();
        holding.generation = reload::generation(lua);
        let changed: Vec<String> = p
            .tensors
            .iter()
            .take(4)
            .map(|s| format!("{} {} → {}", s.name, s.from.ggml_name(), s.to.ggml_name()))
            .collect();
        let more = p.tensors.len().saturating_sub(changed.len());
        ::log::info!(
            target: "rawrxd::engine",
            "{}: {} tensor(s) changed type ({}{}); re-quantized in {:.2} s, swapped into the {} \
             engine in {:.1} ms (generation {})",
            p.source,
            p.tensors.len(),
            changed.join(", "),
            if more > 0 { format!(", … {more} more") } else { String::new() },
            p.quantize_s,
            engine.backend(),
            t.elapsed().as_secs_f64() * 1e3,
            holding.generation
        );
    }
    Ok(())
}

/// The engine argument of an API function.
pub(crate) fn engine_arg(ud: &AnyUserData, what: &str) -> mlua::Result<EngineHandle> {
    ud.borrow::<EngineHandle>().map(|h| h.clone()).map_err(|_| {
        lua_err(Error::Invalid(format!(
            "{what}: expected an engine (rawrxd.engine.load)"
        )))
    })
}

/// The `memory()` table of an engine.
fn memory_table(lua: &Lua, h: &EngineHandle) -> mlua::Result<Table> {
    let (m, heaps) = h.memory().map_err(lua_err)?;
    vram_table(lua, &m, &heaps)
}

impl UserData for EngineHandle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("backend", |_, h| Ok(h.info().backend.clone()));
        fields.add_field_method_get("device", |_, h| Ok(h.info().device.clone()));
        fields.add_field_method_get("variant", |_, h| Ok(h.info().variant.clone()));
        fields.add_field_method_get("n_ctx", |_, h| Ok(h.info().n_ctx));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("info", |lua, h, ()| {
            let t: Table = to_lua(lua, h.info())?
                .as_table()
                .cloned()
                .ok_or_else(|| lua_err(Error::Invalid("engine info is not a table".into())))?;
            t.set("loaded", h.is_loaded())?;
            if let Ok(slot) = h.slot() {
                t.set("generation", slot.holding.generation)?;
            }
            Ok(t)
        });
        methods.add_method("memory", |lua, h, ()| memory_table(lua, h));
        methods.add_method("types", |lua, h, ()| {
            let t = lua.create_table()?;
            for (name, ty) in h.types(lua).map_err(lua_err)? {
                t.set(name, ty.ggml_name())?;
            }
            Ok(t)
        });
        methods.add_method("bench", |lua, h, opts: Option<Table>| {
            super::bench::run(lua, h, opts)
        });
        methods.add_method("generate", |lua, h, opts: Table| {
            text::generate_text(lua, h, opts)
        });
        methods.add_method("perplexity", |lua, h, opts: Table| {
            quality::run(lua, h, Some(opts))
        });
        methods.add_method("unload", |_, h, ()| h.unload().map_err(lua_err));
        methods.add_meta_method("__tostring", |_, h, ()| {
            let i = h.info();
            Ok(format!(
                "rawrxd.Engine({} {} on {}{})",
                i.variant,
                i.model.display(),
                i.device,
                if h.is_loaded() { "" } else { ", unloaded" }
            ))
        });
    }
}

/// Adds the `engine` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "load",
        lua.create_function(|lua, opts: Option<Table>| load::load(lua, opts))?,
    )?;
    t.set(
        "list",
        lua.create_function(|lua, ()| {
            let out = lua.create_table()?;
            for h in live_engines(lua) {
                out.push(h)?;
            }
            Ok(out)
        })?,
    )?;
    module.set("engine", t)?;
    Ok(())
}
