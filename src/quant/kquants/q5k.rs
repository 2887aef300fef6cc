//! Q5_K: 5-bit quants, 8 sub-blocks of 32 with 6-bit scales and mins (5.5 bits per weight).
//!
//! Like Q4_K, plus bit 4 of each quant: for the `k`-th 64 elements, element `l` (< 32) keeps it in
//! bit `2k` of `qh[l]` and element `l + 32` in bit `2k + 1`.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF16};
use super::super::helpers::{get_scale_min_k4, Qkx2Search};
use super::super::{GgmlType, QK_K};
use super::q4k::quantize_scale_min;

/// ggml's `block_q5_K`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ5K {
    d: LeF16,
    dmin: LeF16,
    scales: [u8; 12],
    qh: [u8; QK_K / 8],
    qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ5K>() == 176 && align_of::<BlockQ5K>() == 1);

impl Block for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5K;

    /// dequantize_row_q5_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        for (k, (ql, y)) in self
            .qs
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc1, m1) = get_scale_min_k4(2 * k, &self.scales);
            let (sc2, m2) = get_scale_min_k4(2 * k + 1, &self.scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
            for l in 0..32 {
                let h1 = if self.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if self.qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * f32::from((ql[l] & 0x0f) + h1) - m1;
                y[l + 32] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
            }
        }
    }

    /// quantize_row_q5_K_ref
    fn from_float(x: &[f32]) -> Self {
        let search = Qkx2Search {
            nmax: 31,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: false,
        };
        let (d, dmin, scales, l) = quantize_scale_min(x, search);
        let mut qh = [0u8; QK_K / 8];
        let mut qs = [0u8; QK_K / 2];
        for (k, (ql, l)) in qs.chunks_exact_mut(32).zip(l.chunks_exact(64)).enumerate() {
            let (m1, m2) = (1u8 << (2 * k), 2u8 << (2 * k));
            for j in 0..32 {
                let mut l1 = l[j];
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                let mut l2 = l[j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = l1 | (l2 << 4);
            }
        }
        BlockQ5K {
            d,
            dmin,
            scales,
            qh,
            qs,
        }
    }
}
