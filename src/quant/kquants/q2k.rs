//! Q2_K: 2-bit quants, 16 sub-blocks of 16 with 4-bit scales and mins (2.625 bits per weight).
//!
//! `x = d * (scales[s] & 0xf) * q - dmin * (scales[s] >> 4)`; the 2-bit quants are packed as
//! described at `pack_2bit`.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF16};
use super::super::helpers::{make_qkx2_quants, nearest_int, Qkx2Search};
use super::super::{GgmlType, QK_K};
use super::pack_2bit;

/// ggml's `block_q2_K`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ2K {
    /// Low nibble: scale, high nibble: min, per 16-element sub-block.
    scales: [u8; QK_K / 16],
    qs: [u8; QK_K / 4],
    d: LeF16,
    dmin: LeF16,
}

const _: () = assert!(size_of::<BlockQ2K>() == 84 && align_of::<BlockQ2K>() == 1);

impl Block for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2K;

    /// dequantize_row_q2_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        let mut is = 0;
        let mut out = 0;
        for half in 0..2 {
            let q = &self.qs[half * 32..half * 32 + 32];
            for shift in [0, 2, 4, 6] {
                for part in 0..2 {
                    let sc = self.scales[is];
                    is += 1;
                    let dl = d * f32::from(sc & 0x0f);
                    let ml = min * f32::from(sc >> 4);
                    for &qb in &q[part * 16..part * 16 + 16] {
                        y[out] = dl * f32::from((qb >> shift) & 3) - ml;
                        out += 1;
                    }
                }
            }
        }
    }

    /// quantize_row_q2_K_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK_K];
        const Q4SCALE: f32 = 15.0;
        let search = Qkx2Search {
            nmax: 3,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: true,
        };
        let mut l = [0u8; QK_K];
        let mut mins = [0f32; QK_K / 16];
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..QK_K / 16 {
            let xs = &x[16 * j..16 * j + 16];
            let mut weights = [0f32; 16];
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(search, xs, &weights, &mut l[16 * j..]);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }

        let mut b = BlockQ2K::zeroed();
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for (s, &sc) in b.scales.iter_mut().zip(&scales) {
                *s = nearest_int(iscale * sc) as u8;
            }
            b.d = LeF16::from_f32(max_scale / Q4SCALE);
        } else {
            b.d = LeF16::from_f32(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for (s, &m) in b.scales.iter_mut().zip(&mins) {
                *s |= (nearest_int(iscale * m) << 4) as u8;
            }
            b.dmin = LeF16::from_f32(max_min / Q4SCALE);
        } else {
            b.dmin = LeF16::from_f32(0.0);
        }
        let d_all = b.d.to_f32();
        let dmin_all = b.dmin.to_f32();
        for j in 0..QK_K / 16 {
            let d = d_all * f32::from(b.scales[j] & 0x0f);
            if d == 0.0 {
                continue;
            }
            let dm = dmin_all * f32::from(b.scales[j] >> 4);
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        b.qs = pack_2bit(&l);
        b
    }
}
