//! Flags shared by the commands that run a model: model path, backend, context, threads,
//! numerics.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rawrxd::engine::{load_engine_with, Backend, Engine, LoadOptions, Numerics};
use rawrxd::gguf::GgufFile;

/// Which model to load and where to run it.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Backend: cpu, vulkan, or auto (Vulkan if usable, else CPU).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Threads of the CPU backend (default: one per core).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Vulkan device: index or name substring (see `rawrxd devices`).
    #[arg(long)]
    pub device: Option<String>,
    /// CPU arithmetic: f32 (the reference) or ggml (llama.cpp's CPU roundings: 8-bit
    /// activations, f16 KV cache); ggml runs on the cpu backend only.
    #[arg(long, default_value = "f32")]
    pub numerics: String,
    /// Vulkan: most tokens per forward pass (llama.cpp's -ub; default 512). 1 runs every token
    /// as a decode step, so perplexity then scores the decode path (Q8 activations where used).
    #[arg(long)]
    pub ubatch: Option<usize>,
}

impl EngineArgs {
    /// Opens the model file.
    pub fn open(&self) -> anyhow::Result<Arc<GgufFile>> {
        Ok(Arc::new(GgufFile::open(&self.model)?))
    }

    /// Loads `model` on the chosen backend with a KV cache of `n_ctx` positions.
    pub fn load(&self, model: Arc<GgufFile>, n_ctx: usize) -> anyhow::Result<Box<dyn Engine>> {
        let backend: Backend = self.backend.parse()?;
        let numerics: Numerics = self.numerics.parse()?;
        if self.threads == Some(0) {
            anyhow::bail!("--threads must be at least 1");
        }
        let opts = LoadOptions {
            n_ctx,
            threads: self.threads,
            device: self.device.clone(),
            profile: false,
            numerics,
            ubatch: self.ubatch,
        };
        if self.ubatch == Some(0) {
            anyhow::bail!("--ubatch must be at least 1");
        }
        load_engine_with(backend, model, &opts)
            .with_context(|| format!("loading {}", self.model.display()))
    }

    /// The numerics `engine` (loaded by [`EngineArgs::load`]) runs, for JSON output: the requested
    /// one on the cpu backend, `None` on vulkan (which has its own arithmetic).
    pub fn numerics_ran(&self, engine: &dyn Engine) -> Option<String> {
        (engine.backend() == "cpu").then(|| self.numerics.clone())
    }
}
