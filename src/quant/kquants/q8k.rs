//! Q8_K: ggml's 8-bit activation format for K-quant dot products: one f32 scale per 256 values
//! plus the sums of each 16 quants.
//!
//! `x = d * q`; `bsums[k] = sum(q[16k..16k+16])`.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF32, LeI16};
use super::super::helpers::nearest_int;
use super::super::{GgmlType, QK_K};

/// ggml's `block_q8_K` (the f32 and i16 fields stored as little-endian bytes, so alignment is 1).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8K {
    d: LeF32,
    qs: [i8; QK_K],
    bsums: [LeI16; QK_K / 16],
}

const _: () = assert!(size_of::<BlockQ8K>() == 292 && align_of::<BlockQ8K>() == 1);

impl Block for BlockQ8K {
    const TYPE: GgmlType = GgmlType::Q8K;

    /// dequantize_row_q8_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d = self.d.get();
        for (y, &q) in y.iter_mut().zip(&self.qs) {
            *y = d * f32::from(q);
        }
    }

    /// quantize_row_q8_K_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK_K];
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in x {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        let mut b = BlockQ8K::zeroed();
        if amax == 0.0 {
            return b;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = LeI16::new(q.iter().map(|&v| i32::from(v)).sum::<i32>() as i16);
        }
        b.d = LeF32::new(1.0 / iscale);
        b
    }
}
