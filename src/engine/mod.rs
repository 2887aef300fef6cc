//! The `Engine` trait every backend implements, and the backends: `cpu` (the f32 reference and
//! oracle) and `vulkan`.
//!
//! Contract: an engine owns a KV cache of `n_ctx()` positions. `forward(tokens, pos, ..)` requires
//! that positions `0..pos` are cached, computes positions `pos..pos + tokens.len()`, caches them, and
//! returns logits. Backends must agree with the CPU reference to within documented tolerances.

pub mod cpu;
pub mod generate;
pub mod logprobs;
pub mod perplexity;
mod select;

use crate::model::LlamaHParams;
use crate::Result;

pub use cpu::CpuEngine;
pub use generate::{generate, GenerateStats, StopReason};
pub use perplexity::{kl_divergence, perplexity, KldResult, PerplexityParams, PerplexityResult};
pub use select::{load_engine, Backend};

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
}
