//! llama-bench-style throughput measurement over any [`Engine`]: prompt processing (`pp`, one
//! batched forward of `n_prompt` tokens) and text generation (`tg`, `n_gen` single-token steps),
//! each repeated, after warm-up.
//!
//! Semantics follow llama-bench: every repetition starts from an empty KV cache; prompt and
//! generated tokens are seeded random ids (speed does not depend on which tokens); `pp` and `tg`
//! are separate tests. Timing includes the wait for the logits, so GPU work is always complete.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::Engine;
use crate::Result;

/// What to measure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchConfig {
    /// Prompt length of the pp test (0 skips it).
    pub n_prompt: usize,
    /// Generated tokens of the tg test (0 skips it).
    pub n_gen: usize,
    /// Measured repetitions of each test.
    pub repeats: usize,
    /// Unmeasured repetitions before them.
    pub warmup: usize,
    /// Seed of the random token ids.
    pub seed: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            n_prompt: 512,
            n_gen: 128,
            repeats: 5,
            warmup: 1,
            seed: 1234,
        }
    }
}

/// Mean, sample standard deviation and the raw samples.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Summary {
    /// Summarises `samples` (sd is 0 for fewer than two).
    pub fn of(samples: Vec<f64>) -> Summary {
        let n = samples.len() as f64;
        if samples.is_empty() {
            return Summary::default();
        }
        let mean = samples.iter().sum::<f64>() / n;
        let sd = if samples.len() > 1 {
            (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Summary {
            mean,
            sd,
            min,
            max,
            samples,
        }
    }
}

/// The `q`-quantile (0..=1) of `sorted` by linear interpolation between closest ranks.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Per-token latency percentiles of the tg test, in milliseconds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub count: usize,
}

/// Everything one bench run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    pub config: BenchConfig,
    pub backend: String,
    pub device: String,
    /// How prompt products were computed (`Engine::prompt_matmul`).
    pub prompt_matmul: String,
    /// How decode products were computed (`Engine::decode_matvec`).
    pub decode_matvec: String,
    /// Prompt tokens per second, per repetition.
    pub pp_tps: Option<Summary>,
    /// Generated tokens per second, per repetition.
    pub tg_tps: Option<Summary>,
    /// Milliseconds per generated token, pooled over repetitions.
    pub tg_ms: Option<Latency>,
    /// Every measured token's milliseconds, sorted (for histograms).
    #[serde(skip)]
    pub tg_token_ms: Vec<f64>,
    /// Weight bytes one decode step reads.
    pub decode_weight_bytes: u64,
    /// decode_weight_bytes × mean tg tokens/s.
    pub effective_bandwidth: Option<f64>,
    /// The device's peak bandwidth, if known.
    pub peak_bandwidth: Option<f64>,
    /// Memory held by the engine after the runs.
    pub memory: super::MemoryUsage,
}

impl BenchResult {
    /// Effective bandwidth as a share of the peak (0..1), if both are known.
    pub fn bandwidth_share(&self) -> Option<f64> {
        Some(self.effective_bandwidth? / self.peak_bandwidth?)
    }
}

/// Runs the pp and tg tests of `cfg` on `engine`. `progress` is called after every repetition
/// with (test name, repetition, total).
pub fn run(
    engine: &mut dyn Engine,
    cfg: &BenchConfig,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<BenchResult> {
    run_with(engine, cfg, &mut |_, step| {
        if !step.warmup {
            progress(step.test, step.index, step.total);
        }
        Ok(())
    })
}

/// Where a bench run stands when [`run_with`] calls back.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// "pp" or "tg".
    pub test: &'a str,
    /// Whether the repetition just finished was a warm-up.
    pub warmup: bool,
    /// 1-based index among the measured repetitions (among the warm-ups when `warmup`).
    pub index: usize,
    /// Measured repetitions of the test.
    pub total: usize,
}

/// Like [`run`], calling `between` after every repetition (warm-ups included) with the engine: a
/// safe point where the caller may report progress or change the engine (swap weights after a
/// scheme reload). Every repetition starts from a reset cache, so such a change never mixes into
/// one repetition; an error from `between` ends the run.
pub fn run_with(
    engine: &mut dyn Engine,
    cfg: &BenchConfig,
    between: &mut dyn FnMut(&mut dyn Engine, Step<'_>) -> Result<()>,
) -> Result<BenchResult> {
    let n_vocab = engine.hparams().n_vocab as u32;
    let need = cfg.n_prompt.max(cfg.n_gen);
    if need > engine.n_ctx() {
        return Err(crate::Error::Invalid(format!(
            "bench needs a context of {need} tokens but the engine holds {}",
            engine.n_ctx()
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let prompt: Vec<u32> = (0..cfg.n_prompt)
        .map(|_| rng.gen_range(0..n_vocab))
        .collect();
    let gen: Vec<u32> = (0..cfg.n_gen).map(|_| rng.gen_range(0..n_vocab)).collect();

    let mut pp = Vec::new();
    if cfg.n_prompt > 0 {
        for i in 0..cfg.warmup + cfg.repeats {
            engine.reset();
            let t = Instant::now();
            engine.forward(&prompt, 0, false)?;
            let dt = t.elapsed().as_secs_f64();
            if i >= cfg.warmup {
                pp.push(cfg.n_prompt as f64 / dt);
            }
            between(engine, step("pp", i, cfg))?;
        }
    }
    let mut tg = Vec::new();
    let mut token_ms = Vec::new();
    if cfg.n_gen > 0 {
        for i in 0..cfg.warmup + cfg.repeats {
            engine.reset();
            let start = Instant::now();
            let mut per_token = Vec::with_capacity(cfg.n_gen);
            for (pos, &tok) in gen.iter().enumerate() {
                let t = Instant::now();
                engine.forward(&[tok], pos, false)?;
                per_token.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let dt = start.elapsed().as_secs_f64();
            if i >= cfg.warmup {
                tg.push(cfg.n_gen as f64 / dt);
                token_ms.extend(per_token);
            }
            between(engine, step("tg", i, cfg))?;
        }
    }
    engine.reset();
    token_ms.sort_by(f64::total_cmp);
    let tg_ms = (!token_ms.is_empty()).then(|| Latency {
        p50: percentile(&token_ms, 0.50),
        p95: percentile(&token_ms, 0.95),
        p99: percentile(&token_ms, 0.99),
        max: *token_ms.last().unwrap_or(&f64::NAN),
        count: token_ms.len(),
    });
    let tg_tps = (!tg.is_empty()).then(|| Summary::of(tg));
    let decode_weight_bytes = engine.decode_weight_bytes();
    let effective_bandwidth = tg_tps
        .as_ref()
        .filter(|_| decode_weight_bytes > 0)
        .map(|s| s.mean * decode_weight_bytes as f64);
    Ok(BenchResult {
        config: cfg.clone(),
        backend: engine.backend().to_string(),
        device: engine.device_name(),
        prompt_matmul: engine.prompt_matmul().to_string(),
        decode_matvec: engine.decode_matvec().to_string(),
        pp_tps: (!pp.is_empty()).then(|| Summary::of(pp)),
        tg_tps,
        tg_ms,
        tg_token_ms: token_ms,
        decode_weight_bytes,
        effective_bandwidth,
        peak_bandwidth: engine.peak_bandwidth(),
        memory: engine.memory(),
    })
}

/// The [`Step`] after repetition `i` (0-based, warm-ups first) of `test`.
fn step<'a>(test: &'a str, i: usize, cfg: &BenchConfig) -> Step<'a> {
    let warmup = i < cfg.warmup;
    Step {
        test,
        warmup,
        index: if warmup { i + 1 } else { i + 1 - cfg.warmup },
        total: cfg.repeats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_closest_ranks() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.95), 96.0);
        assert_eq!(percentile(&[1.0, 2.0], 0.5), 1.5);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn summary_uses_the_sample_standard_deviation() {
        let s = Summary::of(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.mean, 5.0);
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max), (2.0, 9.0));
    }
}
