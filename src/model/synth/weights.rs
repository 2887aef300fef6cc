//! Seeded pseudo-random weights, generated straight into quantized rows.
//!
//! Invariant: element `i` of the tensor named `name` depends only on `(seed, name, i)` (a
//! counter-based generator), so a tensor comes out the same whatever the thread count or the
//! order in which its rows are produced.

use rayon::prelude::*;

use crate::quant::{quantize, GgmlType};
use crate::{Error, Result};

/// Standard deviation of the synthetic weight matrices (a typical initialisation scale).
pub const WEIGHT_STD: f32 = 0.02;

/// f32 elements generated per rayon task.
const ELEMS_PER_TASK: usize = 1 << 16;

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `x`.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a of a tensor name, to give every tensor its own stream.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// What a synthetic tensor holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// Approximately normal values (Irwin–Hall sum of four uniforms) with this deviation.
    Normal(f32),
    /// Every element equal (norm weights: 1.0).
    Constant(f32),
}

impl Fill {
    /// The fill llama-family tensors get: norms 1.0, everything else N(0, 0.02).
    pub fn for_tensor(name: &str, n_dims: usize) -> Fill {
        if n_dims < 2 || name.contains("_norm") {
            Fill::Constant(1.0)
        } else {
            Fill::Normal(WEIGHT_STD)
        }
    }
}

/// Writes elements `start..start + out.len()` of tensor `name` into `out`.
pub fn generate(seed: u64, name: &str, fill: Fill, start: u64, out: &mut [f32]) {
    match fill {
        Fill::Constant(c) => out.fill(c),
        Fill::Normal(std) => {
            // four 16-bit uniforms summed: mean 2, variance 4/12; scale to unit variance
            let scale = std * 3f32.sqrt() / 65536.0;
            let key = mix64(seed ^ name_hash(name));
            for (i, x) in out.iter_mut().enumerate() {
                let h = mix64(key ^ (start + i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let sum = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
                *x = (sum as f32 - 2.0 * 65535.0) * scale;
            }
        }
    }
}

/// Generates tensor `name` (`n_rows` rows of `n_per_row`) and quantizes it to `ty`, rows in
/// parallel on the current rayon pool; never holds more than one task's rows as f32 per thread.
pub fn synthesize_tensor(
    seed: u64,
    name: &str,
    fill: Fill,
    n_per_row: usize,
    n_rows: usize,
    ty: GgmlType,
) -> Result<Vec<u8>> {
    let row_bytes = ty.row_bytes(n_per_row).ok_or_else(|| Error::Shape {
        name: name.to_string(),
        msg: format!(
            "rows of {n_per_row} do not fit {ty}'s {}-element blocks",
            ty.block_size()
        ),
    })?;
    let rows_per_task = (ELEMS_PER_TASK / n_per_row).max(1);
    let mut out = vec![0u8; n_rows * row_bytes];
    out.par_chunks_mut(rows_per_task * row_bytes)
        .enumerate()
        .try_for_each(|(task, dst)| {
            let rows = dst.len() / row_bytes;
            let mut f = vec![0f32; rows * n_per_row];
            let start = (task * rows_per_task * n_per_row) as u64;
            generate(seed, name, fill, start, &mut f);
            quantize(ty, &f, dst)
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize_rows;

    #[test]
    fn values_are_seeded_and_independent_of_chunking() {
        let mut a = vec![0f32; 1000];
        generate(7, "blk.0.attn_q.weight", Fill::Normal(0.02), 0, &mut a);
        let mut b = vec![0f32; 600];
        generate(7, "blk.0.attn_q.weight", Fill::Normal(0.02), 400, &mut b);
        assert_eq!(a[400..], b[..]);
        let mut c = vec![0f32; 1000];
        generate(8, "blk.0.attn_q.weight", Fill::Normal(0.02), 0, &mut c);
        assert_ne!(a, c);
        generate(7, "blk.0.attn_k.weight", Fill::Normal(0.02), 0, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn normal_fill_has_the_asked_moments() {
        let mut v = vec![0f32; 1 << 18];
        generate(1, "t", Fill::Normal(0.02), 0, &mut v);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() - 0.02).abs() < 2e-4, "std {}", var.sqrt());
        assert!(v.iter().all(|x| x.abs() < 0.07));
    }

    #[test]
    fn tensors_quantize_the_generated_values() {
        let (n, rows) = (256, 700); // several tasks of 256 rows
        let q = synthesize_tensor(3, "w", Fill::Normal(0.02), n, rows, GgmlType::Q8_0).unwrap();
        let mut f = vec![0f32; n * rows];
        generate(3, "w", Fill::Normal(0.02), 0, &mut f);
        let want = crate::quant::quantize_rows(GgmlType::Q8_0, &f, n).unwrap();
        assert_eq!(q, want);
        let back = dequantize_rows(GgmlType::Q8_0, &q, n).unwrap();
        assert!(back.iter().zip(&f).all(|(a, b)| (a - b).abs() < 1e-3));
        assert!(synthesize_tensor(3, "w", Fill::Normal(0.02), 100, 2, GgmlType::Q8_0).is_err());
    }
}
