//! Q4_K: 4-bit quants, 8 sub-blocks of 32 with 6-bit scales and mins (4.5 bits per weight).
//!
//! `x = d * sc[s] * q - dmin * m[s]` with `(sc, m)` packed by `pack_scale_min_k4`; each 64
//! elements use 32 bytes of `qs`, the first 32 in the low nibbles and the next 32 in the high ones.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF16};
use super::super::helpers::{
    get_scale_min_k4, make_qkx2_quants, nearest_int, pack_scale_min_k4, Qkx2Search,
};
use super::super::{GgmlType, QK_K};

/// ggml's `block_q4_K`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ4K {
    d: LeF16,
    dmin: LeF16,
    scales: [u8; 12],
    qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ4K>() == 144 && align_of::<BlockQ4K>() == 1);

/// The shared part of quantize_row_q4_K_ref and quantize_row_q5_K_ref: per 32-element sub-block
/// a weighted (scale, min) fit, both quantized to 6 bits against the super-block maxima, then the
/// quants recomputed against the quantized scales. Returns `(d, dmin, packed scales, quants)`.
pub(super) fn quantize_scale_min(
    x: &[f32],
    search: Qkx2Search,
) -> (LeF16, LeF16, [u8; 12], [u8; QK_K]) {
    let x = &x[..QK_K];
    let mut l = [0u8; QK_K];
    let mut mins = [0f32; QK_K / 32];
    let mut scales = [0f32; QK_K / 32];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0f32; 32];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(search, xs, &weights, &mut l[32 * j..]);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..QK_K / 32 {
        // `uint8_t ls = nearest_int(...)`: truncated to a byte, then clamped.
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = LeF16::from_f32(max_scale / 63.0);
    let dmin = LeF16::from_f32(max_min / 63.0);

    let nmax = search.nmax;
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let dj = d.to_f32() * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * f32::from(m);
        for ii in 0..32 {
            let q = nearest_int((x[32 * j + ii] + dm) / dj);
            l[32 * j + ii] = q.clamp(0, nmax) as u8;
        }
    }
    (d, dmin, packed, l)
}

impl Block for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4K;

    /// dequantize_row_q4_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        for (k, (q, y)) in self
            .qs
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc1, m1) = get_scale_min_k4(2 * k, &self.scales);
            let (sc2, m2) = get_scale_min_k4(2 * k + 1, &self.scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            for l in 0..32 {
                y[l] = d1 * f32::from(q[l] & 0x0f) - m1;
                y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }

    /// quantize_row_q4_K_ref
    fn from_float(x: &[f32]) -> Self {
        let search = Qkx2Search {
            nmax: 15,
            rmin: -1.0,
            rdelta: 0.1,
            nstep: 20,
            use_mad: false,
        };
        let (d, dmin, scales, l) = quantize_scale_min(x, search);
        let mut qs = [0u8; QK_K / 2];
        for (q, l) in qs.chunks_exact_mut(32).zip(l.chunks_exact(64)) {
            for i in 0..32 {
                q[i] = l[i] | (l[i + 32] << 4);
            }
        }
        BlockQ4K {
            d,
            dmin,
            scales,
            qs,
        }
    }
}
