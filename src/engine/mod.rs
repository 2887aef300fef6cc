//! The `Engine` trait every backend implements, and the backends: `cpu` (the f32 reference and
//! oracle) and `vulkan`.
//!
//! Contract: an engine owns a KV cache of `n_ctx()` positions. `forward(tokens, pos, ..)` requires
//! that positions `0..pos` are cached, computes positions `pos..pos + tokens.len()`, caches them, and
//! returns logits. Backends must agree with the CPU reference to within documented tolerances.

pub mod batch;
pub mod bench;
pub mod cpu;
pub mod generate;
pub mod logprobs;
pub mod perplexity;
pub mod scheduler;
mod select;
pub mod service;

use crate::model::LlamaHParams;
use crate::Result;

pub use batch::{BatchEngine, BatchItem};
pub use cpu::CpuEngine;
pub use generate::{generate, GenerateStats, StopReason};
pub use perplexity::{kl_divergence, perplexity, KldResult, PerplexityParams, PerplexityResult};
pub use select::{load_engine, Backend};

/// Memory an engine holds, by purpose, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryUsage {
    /// Model weights as stored for compute.
    pub weights: u64,
    /// The KV cache.
    pub kv_cache: u64,
    /// Activations, staging and other scratch buffers.
    pub scratch: u64,
    /// Whether this is device memory (VRAM) rather than host memory.
    pub on_device: bool,
}

impl MemoryUsage {
    /// All bytes together.
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.scratch
    }
}

/// An inference backend holding one loaded model and one sequence's KV cache.
pub trait Engine {
    /// Short backend name ("cpu", "vulkan").
    fn backend(&self) -> &'static str;
    /// The loaded model's hyper-parameters.
    fn hparams(&self) -> &LlamaHParams;
    /// Positions the KV cache holds.
    fn n_ctx(&self) -> usize;
    /// Feeds `tokens` at positions `pos..pos + tokens.len()` (positions `0..pos` must be cached) and
    /// returns the logits of the last token (`[n_vocab]`) or, if `all_logits`, of every token
    /// (`[tokens.len() * n_vocab]`, row-major).
    fn forward(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>>;
    /// Forgets the cached sequence.
    fn reset(&mut self);

    /// The device the engine runs on, for reports ("cpu (16 threads)", "NVIDIA H100 80GB HBM3").
    fn device_name(&self) -> String {
        self.backend().to_string()
    }
    /// Memory held by the engine.
    fn memory(&self) -> MemoryUsage {
        MemoryUsage::default()
    }
    /// Bytes of weights one decode step reads (every matrix once, one embedding row). 0 if unknown.
    fn decode_weight_bytes(&self) -> u64 {
        0
    }
    /// The device's peak memory bandwidth in bytes/s, if known (from a table or a measurement).
    fn peak_bandwidth(&self) -> Option<f64> {
        None
    }
}
