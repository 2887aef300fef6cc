//! Q3_K: 3-bit quants, 16 sub-blocks of 16 with signed 6-bit scales (3.4375 bits per weight).
//!
//! `x = d * (scale[s] - 32) * (q - 4)`, where the low two bits of `q` are packed like Q2_K and
//! bit 2 of element `j` is bit `j / 32` of `hmask[j % 32]`. Scale `s` keeps its low nibble in
//! `scales[s % 8]` (low or high nibble for `s < 8` / `s >= 8`) and its top two bits in bits
//! `2 * (s / 4)` of `scales[8 + s % 4]`.

use bytemuck::{Pod, Zeroable};

use super::super::block::{Block, LeF16};
use super::super::helpers::{make_q3_quants, nearest_int};
use super::super::{GgmlType, QK_K};
use super::pack_2bit;

/// ggml's `block_q3_K`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ3K {
    hmask: [u8; QK_K / 8],
    qs: [u8; QK_K / 4],
    scales: [u8; 12],
    d: LeF16,
}

const _: () = assert!(size_of::<BlockQ3K>() == 110 && align_of::<BlockQ3K>() == 1);

/// The 6-bit unsigned scale of sub-block `j` (ggml subtracts 32 to use it).
#[inline]
fn scale6(scales: &[u8; 12], j: usize) -> u8 {
    let lo = if j < 8 {
        scales[j] & 0x0f
    } else {
        scales[j - 8] >> 4
    };
    lo | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)
}

impl Block for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3K;

    /// dequantize_row_q3_K
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK_K];
        let d_all = self.d.to_f32();
        let mut is = 0;
        let mut out = 0;
        let mut m = 1u8;
        for half in 0..2 {
            let q = &self.qs[half * 32..half * 32 + 32];
            for shift in [0, 2, 4, 6] {
                for part in 0..2 {
                    let dl = d_all * (i32::from(scale6(&self.scales, is)) - 32) as f32;
                    is += 1;
                    let range = part * 16..part * 16 + 16;
                    for (&qb, &hb) in q[range.clone()].iter().zip(&self.hmask[range]) {
                        let high = if hb & m != 0 { 0 } else { 4 };
                        y[out] = dl * (i32::from((qb >> shift) & 3) - high) as f32;
                        out += 1;
                    }
                }
                m <<= 1;
            }
        }
    }

    /// quantize_row_q3_K_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK_K];
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..QK_K / 16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..], true);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }

        let mut b = BlockQ3K::zeroed();
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &sc) in scales.iter().enumerate() {
                // `int8_t l = nearest_int(...)`: truncated to a byte before clamping.
                let mut ls = (nearest_int(iscale * sc) as i8).clamp(-32, 31) + 32;
                if j < 8 {
                    b.scales[j] = (ls & 0x0f) as u8;
                } else {
                    b.scales[j - 8] |= ((ls & 0x0f) << 4) as u8;
                }
                ls >>= 4;
                b.scales[j % 4 + 8] |= (ls << (2 * (j / 4))) as u8;
            }
            b.d = LeF16::from_f32(1.0 / iscale);
        } else {
            b.d = LeF16::from_f32(0.0);
        }

        let d_all = b.d.to_f32();
        for j in 0..QK_K / 16 {
            let sc = i32::from(scale6(&b.scales, j)) - 32;
            let d = d_all * sc as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let q = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
                l[16 * j + ii] = (q + 4) as i8;
            }
        }

        // The high bit of the first 32 quants goes to bit 0 of hmask[0..32], the next 32 to bit 1...
        let mut lu = [0u8; QK_K];
        for (j, (u, &q)) in lu.iter_mut().zip(&l).enumerate() {
            let mut q = q as u8;
            if q > 3 {
                b.hmask[j % 32] |= 1 << (j / 32);
                q -= 4;
            }
            *u = q;
        }
        b.qs = pack_2bit(&lu);
        b
    }
}
