//! Dot product of one quantized row with an f32 vector, for the CPU reference engine's matvec.
//!
//! Invariants: no heap allocation; blocks are dequantized (bit-exact, as `dequantize`) into a
//! stack buffer of at most `CHUNK` elements and multiplied in f32 with eight independent
//! accumulators. The summation order is fixed for a given row length, so results are
//! deterministic, though not equal to a strictly sequential sum.

use super::block::Block;
use super::{check_lengths, with_block, GgmlType, QK_K};
use crate::Result;

/// Elements dequantized at a time: one K-quant super-block.
const CHUNK: usize = QK_K;

/// `sum(a[i] * b[i])` over equal-length slices, vectorizable (eight lanes, pairwise final sum).
/// Also the CPU engine's f32 dot (`engine::cpu::ops::dot`), so both sum in the same order.
#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn vec_dot_blocks<B: Block>(row: &[u8], x: &[f32]) -> f32 {
    let blocks: &[B] = bytemuck::cast_slice(row);
    let per_chunk = CHUNK / B::N;
    let mut buf = [0f32; CHUNK];
    let mut sum = 0f32;
    for (bs, xs) in blocks.chunks(per_chunk).zip(x.chunks(CHUNK)) {
        let n = xs.len();
        for (b, y) in bs.iter().zip(buf[..n].chunks_exact_mut(B::N)) {
            b.to_float(y);
        }
        sum += dot_f32(&buf[..n], xs);
    }
    sum
}

/// Dot product of one quantized row of type `ty` with `x` (`x.len()` = the row's element count,
/// `row.len() = ty.row_bytes(x.len())`), computed on the dequantized values without allocating.
pub fn vec_dot(ty: GgmlType, row: &[u8], x: &[f32]) -> Result<f32> {
    check_lengths(ty, x.len(), row.len())?;
    Ok(with_block!(ty, B => vec_dot_blocks::<B>(row, x)))
}
