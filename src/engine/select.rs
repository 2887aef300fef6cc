//! Choosing a backend by name: `cpu`, `vulkan`, or `auto` (Vulkan when it can be used, else CPU,
//! saying why).

use std::str::FromStr;
use std::sync::Arc;

use super::cpu::Numerics;
use super::{CpuEngine, Engine};
use crate::gguf::GgufFile;
use crate::{Error, Result};

/// Which backend to run a model on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The f32 CPU reference.
    Cpu,
    /// The Vulkan engine.
    Vulkan,
    /// Vulkan if a usable device exists, else CPU.
    Auto,
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Backend> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "vulkan" => Ok(Backend::Vulkan),
            "auto" => Ok(Backend::Auto),
            _ => Err(Error::Invalid(format!(
                "unknown backend '{s}' (expected cpu, vulkan or auto)"
            ))),
        }
    }
}

/// Where and how to load an engine, beyond the backend.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// KV-cache positions.
    pub n_ctx: usize,
    /// CPU engine threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Vulkan device: an index or a name substring (`None`: `$RAWRXD_VULKAN_DEVICE`, else the
    /// best device — a discrete GPU first, lavapipe only when it is the only one).
    pub device: Option<String>,
    /// Time every Vulkan dispatch with GPU timestamps.
    pub profile: bool,
    /// The CPU engine's arithmetic; anything but `F32` is CPU-only (`auto` then picks the CPU).
    pub numerics: Numerics,
    /// Vulkan: most tokens per forward pass (`None`: the engine's default, 512).
    pub ubatch: Option<usize>,
}

/// The Vulkan engine's options for `opts` with `n_slots` KV cache slots.
pub(super) fn vulkan_options(
    opts: &LoadOptions,
    n_slots: usize,
) -> super::vulkan::VulkanEngineOptions {
    use super::vulkan::{DeviceSelector, VulkanEngineOptions};
    let mut vopts = VulkanEngineOptions {
        n_ctx: opts.n_ctx,
        profile: opts.profile,
        n_slots,
        ..VulkanEngineOptions::default()
    };
    if let Some(d) = &opts.device {
        vopts.gpu.device = DeviceSelector::parse(d);
    }
    if let Some(b) = opts.ubatch {
        vopts.max_batch = b;
    }
    vopts
}

/// Loads the Vulkan engine on the selected device.
fn load_vulkan(model: &Arc<GgufFile>, opts: &LoadOptions) -> Result<Box<dyn Engine>> {
    let vopts = vulkan_options(opts, 1);
    Ok(Box::new(super::vulkan::VulkanEngine::load(model, &vopts)?))
}

/// Loads `model` on `backend` with a KV cache of `n_ctx` positions; `threads` sizes the CPU
/// engine's pool (`None`: one per core).
pub fn load_engine(
    backend: Backend,
    model: Arc<GgufFile>,
    n_ctx: usize,
    threads: Option<usize>,
) -> Result<Box<dyn Engine>> {
    let opts = LoadOptions {
        n_ctx,
        threads,
        ..LoadOptions::default()
    };
    load_engine_with(backend, model, &opts)
}

/// Loads `model` on `backend` with every option of [`LoadOptions`]. `auto` tries Vulkan and falls
/// back to the CPU engine with a log line saying why.
pub fn load_engine_with(
    backend: Backend,
    model: Arc<GgufFile>,
    opts: &LoadOptions,
) -> Result<Box<dyn Engine>> {
    let cpu = |model| -> Result<Box<dyn Engine>> {
        let mut e = CpuEngine::load(model, opts.n_ctx, opts.threads)?;
        e.set_numerics(opts.numerics);
        Ok(Box::new(e))
    };
    let cpu_only = opts.numerics != Numerics::F32;
    match backend {
        Backend::Cpu => cpu(model),
        Backend::Vulkan if cpu_only => Err(Error::Invalid(format!(
            "numerics '{}' is a mode of the cpu backend; the vulkan backend has its own \
             arithmetic (use --backend cpu)",
            opts.numerics
        ))),
        Backend::Vulkan => load_vulkan(&model, opts),
        Backend::Auto if cpu_only => {
            log::info!("backend auto: using cpu (numerics '{}')", opts.numerics);
            cpu(model)
        }
        Backend::Auto => match load_vulkan(&model, opts) {
            Ok(e) => Ok(e),
            Err(why) => {
                log::info!("backend auto: using cpu ({why})");
                cpu(model)
            }
        },
    }
}
