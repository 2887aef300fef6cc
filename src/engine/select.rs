//! Choosing a backend by name: `cpu`, `vulkan`, or `auto` (Vulkan when it can be used, else CPU,
//! saying why).

use std::str::FromStr;
use std::sync::Arc;

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

/// Loads the Vulkan engine (not part of this build yet).
fn load_vulkan(_model: &Arc<GgufFile>, _n_ctx: usize) -> Result<Box<dyn Engine>> {
    Err(Error::Invalid(
        "Vulkan backend not available in this build".into(),
    ))
}

/// Loads `model` on `backend` with a KV cache of `n_ctx` positions; `threads` sizes the CPU
/// engine's pool (`None`: one per core).
pub fn load_engine(
    backend: Backend,
    model: Arc<GgufFile>,
    n_ctx: usize,
    threads: Option<usize>,
) -> Result<Box<dyn Engine>> {
    match backend {
        Backend::Cpu => Ok(Box::new(CpuEngine::load(model, n_ctx, threads)?)),
        Backend::Vulkan => load_vulkan(&model, n_ctx),
        Backend::Auto => match load_vulkan(&model, n_ctx) {
            Ok(e) => Ok(e),
            Err(why) => {
                log::info!("backend auto: using cpu ({why})");
                Ok(Box::new(CpuEngine::load(model, n_ctx, threads)?))
            }
        },
    }
}
