//! Q6_K: 6-bit quants, 16 sub-blocks of 16 with signed 8-bit scales (6.5625 bits per weight).
//!
//! `x = d * scales[s] * (q - 32)`. Per 128 elements: `ql` (64 bytes) holds the low nibbles of
//! elements `l` and `l + 64` (low / high nibble of `ql[l]`) and of `l + 32`, `l + 96`
//! (`ql[l + 32]`); `qh[l]` (32 bytes) holds their top two bits at bits 0, 4 / 2, 6.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF16};
use super::super::helpers::{make_qx_quants, nearest_int, GROUP_MAX_EPS};
use super::super::{GgmlType, QK_K};

/// ggml's `block_q6_K`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ6K {
    ql: [u8; QK_K / 2],
    qh: [u8; QK_K / 4],
    scales: [i8; QK_K / 16],
    d: LeF16,
}

const _: () = assert!(size_of::<BlockQ6K>() == 210 && align_of::<BlockQ6K>() == 1);

impl Block for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6K;

    /// dequantize_row_q6_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d = self.d.to_f32();
        for n in 0..2 {
            let ql = &self.ql[64 * n..64 * n + 64];
            let qh = &self.qh[32 * n..32 * n + 32];
            let sc = &self.scales[8 * n..8 * n + 8];
            let y = &mut y[128 * n..128 * n + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
                let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                y[l] = d * f32::from(sc[is]) * f32::from(q1);
                y[l + 32] = d * f32::from(sc[is + 2]) * f32::from(q2);
                y[l + 64] = d * f32::from(sc[is + 4]) * f32::from(q3);
                y[l + 96] = d * f32::from(sc[is + 6]) * f32::from(q4);
            }
        }
    }

    /// quantize_row_q6_K_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK_K];
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..], 1);
            scales[ib] = scale;
            let abs_scale = scale.abs();
            if abs_scale > max_abs_scale {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }

        let mut b = BlockQ6K::zeroed();
        if max_abs_scale < GROUP_MAX_EPS {
            b.d = LeF16::from_f32(0.0);
            return b;
        }
        let iscale = -128.0 / max_scale;
        b.d = LeF16::from_f32(1.0 / iscale);
        for (s, &sc) in b.scales.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * sc).min(127) as i8;
        }
        let d_all = b.d.to_f32();
        for j in 0..QK_K / 16 {
            let d = d_all * f32::from(b.scales[j]);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let q = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
                l[16 * j + ii] = (q + 32) as i8;
            }
        }

        let l = l.map(|v| v as u8);
        for n in 0..2 {
            let (j, ql, qh) = (128 * n, 64 * n, 32 * n);
            for i in 0..32 {
                let q1 = l[j + i] & 0x0f;
                let q2 = l[j + i + 32] & 0x0f;
                let q3 = l[j + i + 64] & 0x0f;
                let q4 = l[j + i + 96] & 0x0f;
                b.ql[ql + i] = q1 | (q3 << 4);
                b.ql[ql + i + 32] = q2 | (q4 << 4);
                b.qh[qh + i] = (l[j + i] >> 4)
                    | ((l[j + i + 32] >> 4) << 2)
                    | ((l[j + i + 64] >> 4) << 4)
                    | ((l[j + i + 96] >> 4) << 6);
            }
        }
        b
    }
}
