//! The `Engine` trait every backend implements, and the backends: `cpu` (the f32 reference and
//! oracle) and `vulkan`.
//!
//! Contract: an engine owns a KV cache of `n_ctx()` positions. `forward(tokens, pos, ..)` requires
//! that positions `0..pos` are cached, computes positions `pos..pos + tokens.len()`, caches them, and
//! returns logits. Backends must agree with the CPU reference to within documented tolerances.

pub mod batch;
pub mod batched_bench;
pub mod bench;
pub mod cpu;
pub mod generate;
pub mod logprobs;
pub mod perplexity;
pub mod scheduler;
mod select;
pub mod service;
pub mod variant;
pub mod vulkan;

use crate::model::LlamaHParams;
use crate::Result;

pub use batch::{BatchEngine, BatchItem};
pub use cpu::{CpuEngine, Numerics};
pub use generate::{generate, GenerateStats, StopReason};
pub use perplexity::{kl_divergence, perplexity, KldResult, PerplexityParams, PerplexityResult};
pub use select::{load_engine, load_engine_with, Backend, LoadOptions};

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

/// One device memory heap as the driver reports it; `budget` and `usage` come from
/// VK_EXT_memory_budget where the device offers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeapUsage {
    /// Heap size in bytes.
    pub size: u64,
    /// Whether the heap is device-local (VRAM).
    pub device_local: bool,
    /// Bytes this process may use.
    pub budget: Option<u64>,
    /// Bytes this process uses (all allocations, not only rawrxd's own accounting).
    pub usage: Option<u64>,
}

/// An inference backend holding one loaded model and one sequence's KV cache.
///
/// Engines are `Send`: a script host may hand a loaded engine to another thread (one user at a
/// time).
pub trait Engine: Send {
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
    /// How prompt-sized matrix products are computed, for reports: "f32" (FMAs on f32 operands)
    /// or "f16 tensor cores" (operands rounded to f16, f32 sums; the Vulkan engine on devices
    /// with VK_NV_cooperative_matrix). Numbers from the two are not like for like.
    fn prompt_matmul(&self) -> &'static str {
        "f32"
    }
    /// How decode steps' matrix products are computed, for reports: "f32" or "q8 int dot"
    /// (activations rounded to 8 bits per 32-element block, integer dot products: the Vulkan
    /// engine on devices with integer dot products, as llama.cpp's GPU backends decode), which
    /// names the integer tiles when batches take them (`RAWRXD_MMQ`; batches of
    /// `RAWRXD_MMQ_MIN_BATCH` or more).
    fn decode_matvec(&self) -> &'static str {
        "f32"
    }
    /// The per-kernel profile gathered since the last call, as a printable table, when the engine
    /// was loaded with profiling on (GPU timestamps). Taking it resets the counters.
    fn take_profile_report(&mut self) -> Option<String> {
        None
    }
    /// The device's memory heaps with the driver's budget and usage, read now; empty when the
    /// backend has no device heaps (CPU) or cannot tell.
    fn memory_heaps(&self) -> Vec<HeapUsage> {
        Vec::new()
    }
    /// Whether [`Engine::replace_tensor`] works on this backend.
    fn can_replace_tensors(&self) -> bool {
        false
    }
    /// Replaces the data of weight tensor `name` with `bytes` of type `ty` (same shape), e.g. after
    /// a hybrid scheme changed its type. The KV cache is stale afterwards; callers reset. Backends
    /// that cannot swap weights in place return an error (the default).
    fn replace_tensor(
        &mut self,
        name: &str,
        ty: crate::quant::GgmlType,
        bytes: &[u8],
    ) -> Result<()> {
        let _ = (ty, bytes);
        Err(crate::Error::Invalid(format!(
            "the {} backend cannot replace tensor '{name}' of a loaded model",
            self.backend()
        )))
    }
}
