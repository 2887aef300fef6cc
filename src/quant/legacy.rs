//! The legacy 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Invariants: layouts are ggml-common.h's `block_q4_0` ... `block_q8_1` (sizes asserted below);
//! within a block, element `j < 16` lives in the low nibble of `qs[j]` and element `j + 16` in its
//! high nibble; Q5 formats keep bit 4 of element `j` in bit `j` of the little-endian `qh` word.
//! Arithmetic follows ggml's reference C line by line (same operation order, no fused
//! multiply-add, C's truncating float-to-integer casts), so results are bit-identical.

use bytemuck::{Pod, Zeroable};

use super::block::{c_float_to_int, Block, LeF16};
use super::GgmlType;

const QK: usize = 32;

/// ggml's `block_q4_0`: `x = d * (q - 8)`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ4_0 {
    d: LeF16,
    qs: [u8; QK / 2],
}

/// ggml's `block_q4_1`: `x = d * q + m`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ4_1 {
    d: LeF16,
    m: LeF16,
    qs: [u8; QK / 2],
}

/// ggml's `block_q5_0`: `x = d * (q - 16)`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ5_0 {
    d: LeF16,
    qh: [u8; 4],
    qs: [u8; QK / 2],
}

/// ggml's `block_q5_1`: `x = d * q + m`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ5_1 {
    d: LeF16,
    m: LeF16,
    qh: [u8; 4],
    qs: [u8; QK / 2],
}

/// ggml's `block_q8_0`: `x = d * q`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8_0 {
    d: LeF16,
    qs: [i8; QK],
}

/// ggml's `block_q8_1`: `x = d * q`, and `s = d * sum(q)` for dot products.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8_1 {
    d: LeF16,
    s: LeF16,
    qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ4_0>() == 18 && align_of::<BlockQ4_0>() == 1);
const _: () = assert!(size_of::<BlockQ4_1>() == 20 && align_of::<BlockQ4_1>() == 1);
const _: () = assert!(size_of::<BlockQ5_0>() == 22 && align_of::<BlockQ5_0>() == 1);
const _: () = assert!(size_of::<BlockQ5_1>() == 24 && align_of::<BlockQ5_1>() == 1);
const _: () = assert!(size_of::<BlockQ8_0>() == 34 && align_of::<BlockQ8_0>() == 1);
const _: () = assert!(size_of::<BlockQ8_1>() == 36 && align_of::<BlockQ8_1>() == 1);

/// The value with the largest magnitude (first one on ties), as the symmetric quantizers pick it.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// `(min, max)` with ggml's strict comparisons, starting from `(FLT_MAX, -FLT_MAX)`.
#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `d ? 1.0f/d : 0.0f`
#[inline]
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// `MIN(hi, (int8_t)v)` as the legacy quantizers write it, stored into a `uint8_t`.
#[inline]
fn clamp_cast(v: f32, hi: i32) -> u8 {
    hi.min(i32::from(c_float_to_int(v) as i8)) as u8
}

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;

    /// dequantize_row_q4_0
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            y[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
            y[j + QK / 2] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }

    /// quantize_row_q4_0_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let d = signed_absmax(x) / -8.0;
        let id = inverse(d);
        let mut qs = [0u8; QK / 2];
        for (j, q) in qs.iter_mut().enumerate() {
            let xi0 = clamp_cast(x[j] * id + 8.5, 15);
            let xi1 = clamp_cast(x[j + QK / 2] * id + 8.5, 15);
            *q = xi0 | (xi1 << 4);
        }
        BlockQ4_0 {
            d: LeF16::from_f32(d),
            qs,
        }
    }
}

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;

    /// dequantize_row_q4_1
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            y[j] = f32::from(q & 0x0f) * d + m;
            y[j + QK / 2] = f32::from(q >> 4) * d + m;
        }
    }

    /// quantize_row_q4_1_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        let mut qs = [0u8; QK / 2];
        for (j, q) in qs.iter_mut().enumerate() {
            let xi0 = clamp_cast((x[j] - min) * id + 0.5, 15);
            let xi1 = clamp_cast((x[j + QK / 2] - min) * id + 0.5, 15);
            *q = xi0 | (xi1 << 4);
        }
        BlockQ4_1 {
            d: LeF16::from_f32(d),
            m: LeF16::from_f32(min),
            qs,
        }
    }
}

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;

    /// dequantize_row_q5_0
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = (u32::from(q & 0x0f) | xh_0) as i32 - 16;
            let x1 = (u32::from(q >> 4) | xh_1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + QK / 2] = x1 as f32 * d;
        }
    }

    /// quantize_row_q5_0_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let d = signed_absmax(x) / -16.0;
        let id = inverse(d);
        let mut qs = [0u8; QK / 2];
        let mut qh = 0u32;
        for (j, q) in qs.iter_mut().enumerate() {
            let xi0 = clamp_cast(x[j] * id + 16.5, 31);
            let xi1 = clamp_cast(x[j + QK / 2] * id + 16.5, 31);
            *q = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
            qh |= u32::from((xi0 & 0x10) >> 4) << j;
            qh |= u32::from((xi1 & 0x10) >> 4) << (j + QK / 2);
        }
        BlockQ5_0 {
            d: LeF16::from_f32(d),
            qh: qh.to_le_bytes(),
            qs,
        }
    }
}

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;

    /// dequantize_row_q5_1
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = u32::from(q & 0x0f) | xh_0;
            let x1 = u32::from(q >> 4) | xh_1;
            y[j] = x0 as f32 * d + m;
            y[j + QK / 2] = x1 as f32 * d + m;
        }
    }

    /// quantize_row_q5_1_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        let mut qs = [0u8; QK / 2];
        let mut qh = 0u32;
        for (j, q) in qs.iter_mut().enumerate() {
            // `(uint8_t)(x0 + 0.5f)`: no clamp in the reference.
            let xi0 = c_float_to_int((x[j] - min) * id + 0.5) as u8;
            let xi1 = c_float_to_int((x[j + QK / 2] - min) * id + 0.5) as u8;
            *q = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
            qh |= u32::from((xi0 & 0x10) >> 4) << j;
            qh |= u32::from((xi1 & 0x10) >> 4) << (j + QK / 2);
        }
        BlockQ5_1 {
            d: LeF16::from_f32(d),
            m: LeF16::from_f32(min),
            qh: qh.to_le_bytes(),
            qs,
        }
    }
}

/// `amax / 127` and its inverse, shared by Q8_0 and Q8_1.
#[inline]
fn q8_scale(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    for &v in x {
        // MAX(amax, fabsf(v)) = (amax > |v|) ? amax : |v|
        amax = if amax > v.abs() { amax } else { v.abs() };
    }
    let d = amax / 127.0;
    (d, inverse(d))
}

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;

    /// dequantize_row_q8_0
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        for (y, &q) in y.iter_mut().zip(&self.qs) {
            *y = f32::from(q) * d;
        }
    }

    /// quantize_row_q8_0_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let (d, id) = q8_scale(x);
        let mut qs = [0i8; QK];
        for (q, &v) in qs.iter_mut().zip(x) {
            *q = c_float_to_int((v * id).round()) as i8;
        }
        BlockQ8_0 {
            d: LeF16::from_f32(d),
            qs,
        }
    }
}

impl Block for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;

    /// ggml has no dequantize_row_q8_1 (Q8_1 is its activation format); this is `d * q`, the value
    /// ggml's Q8_1 dot products assume.
    fn to_float(&self, y: &mut [f32]) {
        let y = &mut y[..QK];
        let d = self.d.to_f32();
        for (y, &q) in y.iter_mut().zip(&self.qs) {
            *y = f32::from(q) * d;
        }
    }

    /// quantize_row_q8_1_ref
    fn from_float(x: &[f32]) -> Self {
        let x = &x[..QK];
        let (d, id) = q8_scale(x);
        let mut qs = [0i8; QK];
        let mut sum = 0i32;
        for j in 0..QK / 2 {
            qs[j] = c_float_to_int((x[j] * id).round()) as i8;
            qs[j + QK / 2] = c_float_to_int((x[j + QK / 2] * id).round()) as i8;
            sum += i32::from(qs[j]) + i32::from(qs[j + QK / 2]);
        }
        BlockQ8_1 {
            d: LeF16::from_f32(d),
            s: LeF16::from_f32(sum as f32 * d),
            qs,
        }
    }
}
