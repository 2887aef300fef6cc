//! Text generation over any [`Engine`]: prefill the prompt, then decode one token at a time.
//!
//! Invariants: the engine is reset first, so the sequence is exactly `prompt` followed by the
//! generated tokens; prompt tokens are accepted into the sampler's penalty history (as
//! llama.cpp's completion tool does). Timings cover the engine's `forward` calls only (sampling
//! and the callback are excluded), prefill and decode separately.

use std::time::{Duration, Instant};

use super::Engine;
use crate::model::Sampler;
use crate::{Error, Result};

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eog,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The KV cache is full.
    ContextFull,
    /// The callback asked to stop.
    Callback,
}

/// What a generation did and how fast.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GenerateStats {
    /// Prompt tokens fed in the prefill.
    pub n_prompt: usize,
    /// Tokens sampled (including a final end-of-generation token, which is not passed on).
    pub n_generated: usize,
    /// Tokens fed through single-token decode steps.
    pub n_decoded: usize,
    /// Wall time of the prefill `forward`.
    pub prefill: Duration,
    /// Wall time of all decode `forward` calls.
    pub decode: Duration,
    /// Why it stopped.
    pub stop: StopReason,
}

impl StopReason {
    /// The reason in snake case (`eog`, `max_tokens`, `context_full`, `callback`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eog => "eog",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Callback => "callback",
        }
    }
}

impl GenerateStats {
    /// Prompt tokens per second of prefill.
    pub fn prefill_tps(&self) -> f64 {
        rate(self.n_prompt, self.prefill)
    }

    /// Tokens per second of decode.
    pub fn decode_tps(&self) -> f64 {
        rate(self.n_decoded, self.decode)
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    if n == 0 || d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Generates up to `max_tokens` tokens after `prompt`.
///
/// `on_token` receives every generated token that is not end-of-generation (per `is_eog`) and
/// returns `false` to stop early.
pub fn generate(
    engine: &mut dyn Engine,
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    is_eog: &dyn Fn(u32) -> bool,
    on_token: &mut dyn FnMut(u32) -> Result<bool>,
) -> Result<GenerateStats> {
    if prompt.is_empty() {
        return Err(Error::Invalid("generate: the prompt has no tokens".into()));
    }
    engine.reset();
    for &t in prompt {
        sampler.accept(t);
    }
    let t0 = Instant::now();
    let mut logits = engine.forward(prompt, 0, false)?;
    let mut stats = GenerateStats {
        n_prompt: prompt.len(),
        n_generated: 0,
        n_decoded: 0,
        prefill: t0.elapsed(),
        decode: Duration::ZERO,
        stop: StopReason::MaxTokens,
    };
    let mut pos = prompt.len();
    while stats.n_generated < max_tokens {
        let tok = sampler.sample(&logits)?;
        sampler.accept(tok);
        stats.n_generated += 1;
        if is_eog(tok) {
            stats.stop = StopReason::Eog;
            return Ok(stats);
        }
        if !on_token(tok)? {
            stats.stop = StopReason::Callback;
            return Ok(stats);
        }
        if stats.n_generated == max_tokens {
            break;
        }
        if pos >= engine.n_ctx() {
            stats.stop = StopReason::ContextFull;
            return Ok(stats);
        }
        let t = Instant::now();
        logits = engine.forward(&[tok], pos, false)?;
        stats.decode += t.elapsed();
        stats.n_decoded += 1;
        pos += 1;
    }
    stats.stop = StopReason::MaxTokens;
    Ok(stats)
}
