//! Perplexity and KL divergence exactly as llama.cpp's `llama-perplexity` computes them.
//!
//! Algorithm (`perplexity()` in tools/perplexity/perplexity.cpp): the text's tokens (tokenized
//! with BOS when the vocabulary adds one) are cut into `n_tokens / n_ctx` chunks of `n_ctx`; each
//! chunk is evaluated from an empty cache with its first token replaced by BOS when the vocabulary
//! adds BOS; only the second half is scored: logits at positions `first = n_ctx/2 .. n_ctx-2`
//! predict the next token. Each score is a log-softmax with an f32 max, an f64 sum of f32 `exp`s
//! and f64 logs; PPL = exp(mean NLL), and its ± is `sqrt(var(NLL) / (count-1)) × PPL`.
//!
//! KL divergence (`kl_divergence()`): a base run stores its full log-probabilities
//! ([`super::logprobs`]); a later run over the same tokens reports mean KL(base ‖ this), the share
//! of positions where both agree on the most likely token, and both perplexities, with
//! llama.cpp's uncertainty estimates. Our base file keeps f32 log-probs, so the divergence is
//! computed over the whole vocabulary rather than llama.cpp's 16-nat window.

use std::path::Path;

use super::logprobs::{LogProbHeader, LogProbReader, LogProbWriter};
use super::Engine;
use crate::model::argmax;
use crate::{Error, Result};

/// Tokens fed to the engine per `forward` call within a chunk.
const N_BATCH: usize = 512;

/// Settings of a perplexity run.
#[derive(Clone, Debug)]
pub struct PerplexityParams {
    /// Tokens per chunk (at most the engine's context).
    pub n_ctx: usize,
    /// Evaluate at most this many chunks.
    pub n_chunks: Option<usize>,
    /// The BOS token that replaces each chunk's first token, when the vocabulary adds BOS.
    pub bos: Option<u32>,
}

/// A mean with llama.cpp's uncertainty: `sqrt((E[x²] - E[x]²) / (n-1))`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Estimate {
    pub value: f64,
    pub err: f64,
}

/// The outcome of a perplexity run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PerplexityResult {
    /// Perplexity and its ± (llama.cpp's "Final estimate").
    pub ppl: Estimate,
    /// Running perplexity after each chunk (llama.cpp's `[i]value` line).
    pub chunk_ppl: Vec<f64>,
    pub n_ctx: usize,
    pub n_chunks: usize,
    /// Positions scored.
    pub n_scored: usize,
}

/// The outcome of a KL-divergence run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KldResult {
    /// Perplexity of this engine over the base file's tokens.
    pub ppl: Estimate,
    /// Perplexity of the base run.
    pub ppl_base: Estimate,
    /// Mean KL(base ‖ this) in nats.
    pub kld: Estimate,
    /// Largest per-position KL divergence.
    pub kld_max: f64,
    /// Fraction of positions where both put the same token on top.
    pub same_top: Estimate,
    pub n_ctx: usize,
    pub n_chunks: usize,
    pub n_scored: usize,
}

/// Running sums of a statistic.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    sum: f64,
    sum2: f64,
    n: usize,
}

impl Sums {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.sum2 += v * v;
        self.n += 1;
    }

    fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// llama.cpp's `mean_and_uncertainty` (KLD statistics).
    fn estimate(&self) -> Estimate {
        if self.n == 0 {
            return Estimate::default();
        }
        let f = self.mean();
        let var = self.sum2 / self.n as f64 - f * f;
        let err = if var > 0.0 && self.n > 10 {
            (var / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Estimate { value: f, err }
    }

    /// PPL = exp(mean NLL) with the ± of `perplexity()`'s final estimate (no minimum count).
    fn ppl(&self) -> Estimate {
        let m = self.mean();
        let var = self.sum2 / self.n as f64 - m * m;
        let ppl = m.exp();
        let err = if var > 0.0 && self.n > 1 {
            (var / (self.n - 1) as f64).sqrt() * ppl
        } else {
            0.0
        };
        Estimate { value: ppl, err }
    }

    /// PPL with the ± of `kl_divergence()` (`mean_and_uncertainty`, needs more than 10 values).
    fn ppl_kld(&self) -> Estimate {
        let e = self.estimate();
        let ppl = e.value.exp();
        Estimate {
            value: ppl,
            err: e.err * ppl,
        }
    }
}

/// `(max logit, ln Σ exp(l - max))` as llama.cpp's `log_softmax`: f32 max, f32 `exp`, f64 sum.
fn log_sum_exp(logits: &[f32]) -> (f32, f64) {
    let max = logits.iter().copied().fold(logits[0], f32::max);
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    (max, sum.ln())
}

/// Negative log-likelihood of `tok` under `logits`.
fn nll(logits: &[f32], tok: u32) -> f64 {
    let (max, lse) = log_sum_exp(logits);
    -((logits[tok as usize] - max) as f64 - lse)
}

/// Evaluates one chunk from an empty cache and returns the logits of positions `first..n_ctx-1`
/// (`[(n_ctx - 1 - first) × n_vocab]`).
fn eval_chunk(
    engine: &mut dyn Engine,
    chunk: &[u32],
    bos: Option<u32>,
    first: usize,
) -> Result<Vec<f32>> {
    let n_ctx = chunk.len();
    let n_vocab = engine.hparams().n_vocab;
    let mut input = chunk.to_vec();
    if let Some(b) = bos {
        input[0] = b;
    }
    engine.reset();
    let mut out = Vec::with_capacity((n_ctx - 1 - first) * n_vocab);
    let mut pos = 0;
    while pos < n_ctx {
        let end = (pos + N_BATCH).min(n_ctx);
        let logits = engine.forward(&input[pos..end], pos, true)?;
        // Keep rows first..n_ctx-1 that fall in this batch.
        let lo = first.max(pos);
        let hi = (n_ctx - 1).min(end);
        if lo < hi {
            out.extend_from_slice(&logits[(lo - pos) * n_vocab..(hi - pos) * n_vocab]);
        }
        pos = end;
    }
    Ok(out)
}

fn check_ctx(engine: &dyn Engine, n_ctx: usize) -> Result<()> {
    if n_ctx < 4 {
        return Err(Error::Invalid(format!(
            "perplexity: context {n_ctx} is too small"
        )));
    }
    if n_ctx > engine.n_ctx() {
        return Err(Error::Invalid(format!(
            "perplexity: chunks of {n_ctx} tokens do not fit the engine's context of {}",
            engine.n_ctx()
        )));
    }
    Ok(())
}

/// Computes the perplexity of `engine` over `tokens` (the whole text, tokenized with BOS if the
/// vocabulary adds it). With `save_base`, also writes every scored distribution there for a later
/// [`kl_divergence`]. `progress(chunk_index, running_ppl)` is called after each chunk.
pub fn perplexity(
    engine: &mut dyn Engine,
    tokens: &[u32],
    params: &PerplexityParams,
    save_base: Option<&Path>,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<PerplexityResult> {
    let n_ctx = params.n_ctx;
    check_ctx(engine, n_ctx)?;
    if tokens.len() < 2 * n_ctx {
        return Err(Error::Invalid(format!(
            "perplexity: the text tokenizes to {} tokens; a context of {n_ctx} needs at least {}",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let mut n_chunk = tokens.len() / n_ctx;
    if let Some(c) = params.n_chunks {
        n_chunk = n_chunk.min(c.max(1));
    }
    let n_vocab = engine.hparams().n_vocab;
    let first = n_ctx / 2;
    let mut writer = match save_base {
        Some(p) => Some(LogProbWriter::create(
            p,
            &LogProbHeader {
                n_ctx,
                n_vocab,
                n_chunk,
                first,
            },
            tokens,
        )?),
        None => None,
    };
    let mut sums = Sums::default();
    let mut chunk_ppl = Vec::with_capacity(n_chunk);
    let mut lp = vec![0f32; n_vocab];
    for c in 0..n_chunk {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        let logits = eval_chunk(engine, chunk, params.bos, first)?;
        for (j, row) in logits.chunks_exact(n_vocab).enumerate() {
            let tok = chunk[first + j + 1];
            sums.add(nll(row, tok));
            if let Some(w) = writer.as_mut() {
                let (max, lse) = log_sum_exp(row);
                for (o, &l) in lp.iter_mut().zip(row) {
                    *o = ((l - max) as f64 - lse) as f32;
                }
                w.row(&lp)?;
            }
        }
        let running = sums.mean().exp();
        chunk_ppl.push(running);
        progress(c, running);
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(PerplexityResult {
        ppl: sums.ppl(),
        chunk_ppl,
        n_ctx,
        n_chunks: n_chunk,
        n_scored: sums.n,
    })
}

/// Compares `engine` against the distributions stored in `base` (by a [`perplexity`] run with
/// `save_base`), over the tokens stored there. `progress(chunk_index, running_mean_kld)` is called
/// after each chunk.
pub fn kl_divergence(
    engine: &mut dyn Engine,
    base: &Path,
    bos: Option<u32>,
    n_chunks: Option<usize>,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<KldResult> {
    let mut r = LogProbReader::open(base)?;
    let h = r.header.clone();
    let n_vocab = engine.hparams().n_vocab;
    if h.n_vocab != n_vocab {
        return Err(Error::Invalid(format!(
            "{}: vocabulary of {} tokens, but the model has {n_vocab}",
            base.display(),
            h.n_vocab
        )));
    }
    check_ctx(engine, h.n_ctx)?;
    if h.first != h.n_ctx / 2 {
        return Err(Error::Invalid(format!(
            "{}: scored from position {}, expected n_ctx/2",
            base.display(),
            h.first
        )));
    }
    let n_chunk = n_chunks.map_or(h.n_chunk, |c| c.max(1).min(h.n_chunk));
    let (mut nll_q, mut nll_b, mut kld, mut same) = (
        Sums::default(),
        Sums::default(),
        Sums::default(),
        Sums::default(),
    );
    let mut kld_max = 0f64;
    let mut base_row = vec![0f32; n_vocab];
    for c in 0..n_chunk {
        let chunk = &r.tokens[c * h.n_ctx..(c + 1) * h.n_ctx].to_vec();
        let logits = eval_chunk(engine, chunk, bos, h.first)?;
        for (j, row) in logits.chunks_exact(n_vocab).enumerate() {
            r.row(&mut base_row)?;
            let tok = chunk[h.first + j + 1] as usize;
            let (max, lse) = log_sum_exp(row);
            nll_q.add(-((row[tok] - max) as f64 - lse));
            nll_b.add(-(base_row[tok] as f64));
            let mut d = 0f64;
            for (&l, &lb) in row.iter().zip(&base_row) {
                let lb = lb as f64;
                let pb = lb.exp();
                if pb > 0.0 {
                    d += pb * (lb - ((l - max) as f64 - lse));
                }
            }
            kld.add(d);
            kld_max = kld_max.max(d);
            same.add(if argmax(row) == argmax(&base_row) {
                1.0
            } else {
                0.0
            });
        }
        progress(c, kld.mean());
    }
    let p = same.mean();
    let same_top = Estimate {
        value: p,
        err: if same.n > 1 {
            (p * (1.0 - p) / (same.n - 1) as f64).sqrt()
        } else {
            0.0
        },
    };
    Ok(KldResult {
        ppl: nll_q.ppl_kld(),
        ppl_base: nll_b.ppl_kld(),
        kld: kld.estimate(),
        kld_max,
        same_top,
        n_ctx: h.n_ctx,
        n_chunks: n_chunk,
        n_scored: kld.n,
    })
}
