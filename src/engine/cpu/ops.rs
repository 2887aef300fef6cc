//! The f32 kernels of the CPU reference engine, each mirroring the ggml-cpu operation named in its
//! doc comment.
//!
//! Invariants: every function is deterministic for given inputs (fixed summation order, no
//! dependence on thread count), so incremental decode and batched prefill give bit-identical
//! results. Activations are row-major `[n_tokens, width]`.

use rayon::prelude::*;

use crate::quant::{self, GgmlType};
use crate::{Error, Result};

/// `sum(a[i] * b[i])` over equal-length slices with eight independent accumulators
/// (vectorizable), combined pairwise, then the tail.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    quant::dot::dot_f32(a, b)
}

/// `y += a * x` elementwise.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// RMS normalisation of each `w.len()`-wide row of `x` in place, times `w`
/// (ggml `rms_norm` then `mul`): `x / sqrt(mean(x²) + eps) * w`, the sum of squares in f64.
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        let mean = (sum / row.len() as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for (v, wi) in row.iter_mut().zip(w) {
            *v = (*v * scale) * wi;
        }
    }
}

/// In-place softmax (ggml `soft_max`): subtract the max, `exp`, sum in f64, scale by `1/sum`.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `silu(x) = x / (1 + e^-x)` (ggml `silu_f32`).
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// Adds `b` to every `b.len()`-wide row of `x`.
pub fn add_rows(x: &mut [f32], b: &[f32]) {
    for row in x.chunks_exact_mut(b.len()) {
        for (v, bi) in row.iter_mut().zip(b) {
            *v += bi;
        }
    }
}

/// `y = W x` for each of `n_tok` rows of `x` (`[n_tok, n_in]`), into `y` (`[n_tok, n_out]`), where
/// `W` is `n_out` rows of `n_in` elements of type `ty` in `data`.
///
/// Weight rows are split across rayon tasks; each row is dequantized once into a scratch buffer
/// and dotted with every token, so a batch reads the weights once. The per-element arithmetic is
/// independent of `n_tok`.
pub fn matmul(
    ty: GgmlType,
    data: &[u8],
    n_in: usize,
    x: &[f32],
    n_tok: usize,
    y: &mut [f32],
) -> Result<()> {
    let bad = |msg: String| Err(Error::Type { ty, msg });
    if n_tok == 0 || n_in == 0 || x.len() != n_tok * n_in || y.len() % n_tok != 0 {
        return bad(format!(
            "matmul: {} inputs, {} outputs for {n_tok} tokens of width {n_in}",
            x.len(),
            y.len()
        ));
    }
    let n_out = y.len() / n_tok;
    let row_bytes = ty.row_bytes(n_in).unwrap_or(0);
    if row_bytes == 0 || data.len() != row_bytes * n_out {
        return bad(format!(
            "matmul: {} bytes of weights for {n_out} rows of {n_in}",
            data.len()
        ));
    }
    // Enough work per task that scheduling is noise, enough tasks to balance two or more cores.
    let rows_per_task = (8192 / n_in.max(1)).clamp(1, 64);
    let kernel = |scratch: &mut Vec<f32>, r0: usize, out: &mut [f32]| -> Result<()> {
        for (i, o) in out.chunks_exact_mut(n_tok).enumerate() {
            let r = r0 + i;
            quant::dequantize(ty, &data[r * row_bytes..(r + 1) * row_bytes], scratch)?;
            for (t, ot) in o.iter_mut().enumerate() {
                *ot = dot(scratch, &x[t * n_in..(t + 1) * n_in]);
            }
        }
        Ok(())
    };
    if n_tok == 1 {
        return y
            .par_chunks_mut(rows_per_task)
            .enumerate()
            .try_for_each_init(
                || vec![0f32; n_in],
                |s, (c, out)| kernel(s, c * rows_per_task, out),
            );
    }
    // Row-major by weight row (`[n_out, n_tok]`), then transposed into `y`.
    let mut yt = vec![0f32; n_out * n_tok];
    yt.par_chunks_mut(rows_per_task * n_tok)
        .enumerate()
        .try_for_each_init(
            || vec![0f32; n_in],
            |s, (c, out)| kernel(s, c * rows_per_task, out),
        )?;
    for (r, col) in yt.chunks_exact(n_tok).enumerate() {
        for (t, v) in col.iter().enumerate() {
            y[t * n_out + r] = *v;
        }
    }
    Ok(())
}
