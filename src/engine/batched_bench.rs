//! llama-batched-bench-style measurement over any [`BatchEngine`]: for each batch size B, B
//! sequences are prefilled with `n_prompt` tokens each (one after another, as the engine's
//! prefill runs), then advanced together for `n_gen` decode steps of one token each.
//!
//! Columns follow llama-batched-bench: PP, TG, B, N_KV (= B × (PP + TG)), T_PP and S_PP (prefill
//! time and tokens/s), T_TG and S_TG (decode time and aggregate tokens/s), T and S (both). Added:
//! the decode step's milliseconds (p50, p99): the inter-token latency every sequence sees.
//! Token ids are seeded random (speed does not depend on which tokens). The engine is prepared
//! first ([`BatchEngine::prepare`]) and every batch size starts from cleared slots; timing
//! includes the wait for the logits, so device work is complete.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::batch::{BatchEngine, BatchItem};
use super::bench::percentile;
use crate::{Error, Result};

/// What to measure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BatchedBenchConfig {
    /// Prompt tokens per sequence (0: sequences start from one random token).
    pub n_prompt: usize,
    /// Decode steps per batch size (at least 1).
    pub n_gen: usize,
    /// Batch sizes, each at most the engine's slots.
    pub batches: Vec<usize>,
    /// Unmeasured decode steps before the measured ones, per batch size (compiles and warms).
    pub warmup_steps: usize,
    /// Seed of the random token ids.
    pub seed: u64,
}

/// One batch size's numbers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BatchedRow {
    pub pp: usize,
    pub tg: usize,
    pub b: usize,
    pub n_kv: usize,
    /// Seconds spent prefilling the B prompts.
    pub t_pp: f64,
    /// Prompt tokens per second (B × PP / T_PP).
    pub s_pp: f64,
    /// Seconds of the measured decode steps.
    pub t_tg: f64,
    /// Generated tokens per second, all sequences together (B × TG / T_TG).
    pub s_tg: f64,
    /// Milliseconds per decode step, median and 99th percentile.
    pub step_ms_p50: f64,
    pub step_ms_p99: f64,
}

/// Runs every batch size of `cfg` on `engine`; `progress` is called after each with its row.
pub fn run(
    engine: &mut dyn BatchEngine,
    cfg: &BatchedBenchConfig,
    mut progress: impl FnMut(&BatchedRow),
) -> Result<Vec<BatchedRow>> {
    let n_slots = engine.n_slots();
    if cfg.n_gen == 0 {
        return Err(Error::Invalid(
            "batched bench: n_gen must be at least 1".into(),
        ));
    }
    if let Some(&b) = cfg.batches.iter().find(|&&b| b == 0 || b > n_slots) {
        return Err(Error::Invalid(format!(
            "batched bench: batch {b} but the engine holds 1..={n_slots} sequences"
        )));
    }
    let need = cfg.n_prompt.max(1) + cfg.warmup_steps + cfg.n_gen;
    if need > engine.n_ctx() {
        return Err(Error::Invalid(format!(
            "batched bench needs {need} positions per sequence but the engine holds {}",
            engine.n_ctx()
        )));
    }
    engine.prepare()?;
    let n_vocab = engine.hparams().n_vocab as u32;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut rows = Vec::new();
    for &b in &cfg.batches {
        for s in 0..n_slots {
            engine.clear_slot(s);
        }
        let prompts: Vec<Vec<u32>> = (0..b)
            .map(|_| {
                (0..cfg.n_prompt.max(1))
                    .map(|_| rng.gen_range(0..n_vocab))
                    .collect()
            })
            .collect();
        let t = Instant::now();
        for (slot, p) in prompts.iter().enumerate() {
            engine.forward_batch(&[BatchItem {
                slot,
                tokens: p,
                pos: 0,
            }])?;
        }
        let t_pp = t.elapsed().as_secs_f64();
        let first = cfg.n_prompt.max(1);
        let mut step_ms = Vec::with_capacity(cfg.n_gen);
        let mut t_tg = 0.0;
        for i in 0..cfg.warmup_steps + cfg.n_gen {
            let pos = first + i;
            let toks: Vec<[u32; 1]> = (0..b).map(|_| [rng.gen_range(0..n_vocab)]).collect();
            let items: Vec<BatchItem<'_>> = toks
                .iter()
                .enumerate()
                .map(|(slot, tok)| BatchItem {
                    slot,
                    tokens: tok,
                    pos,
                })
                .collect();
            let t = Instant::now();
            engine.forward_batch(&items)?;
            let dt = t.elapsed().as_secs_f64();
            if i >= cfg.warmup_steps {
                t_tg += dt;
                step_ms.push(dt * 1e3);
            }
        }
        step_ms.sort_by(f64::total_cmp);
        let row = BatchedRow {
            pp: cfg.n_prompt,
            tg: cfg.n_gen,
            b,
            n_kv: b * (cfg.n_prompt + cfg.n_gen),
            t_pp,
            s_pp: if cfg.n_prompt > 0 {
                (b * cfg.n_prompt) as f64 / t_pp
            } else {
                0.0
            },
            t_tg,
            s_tg: (b * cfg.n_gen) as f64 / t_tg,
            step_ms_p50: percentile(&step_ms, 0.5),
            step_ms_p99: percentile(&step_ms, 0.99),
        };
        progress(&row);
        rows.push(row);
    }
    for s in 0..n_slots {
        engine.clear_slot(s);
    }
    Ok(rows)
}
