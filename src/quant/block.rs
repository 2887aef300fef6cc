//! The `Block` trait every tensor format implements, and the little-endian scalar fields blocks
//! are built from.
//!
//! Invariants: every block struct is `#[repr(C)]`, `Pod`, has alignment 1 and exactly ggml's
//! `sizeof(block_*)`, so any byte slice whose length is a whole number of blocks can be viewed as a
//! block slice without copying or alignment checks. Multi-byte fields are stored as little-endian
//! byte arrays (what GGUF files hold on every platform ggml supports) and decoded on access.
//!
//! Conversions mirror ggml exactly: `fp16 -> f32` is IEEE (ggml_compute_fp16_to_fp32),
//! `f32 -> fp16` rounds to nearest even and maps every NaN to `sign | 0x7e00`
//! (ggml_compute_fp32_to_fp16), `bf16 -> f32` is a 16-bit shift and `f32 -> bf16` rounds to
//! nearest even and quiets NaNs by setting bit 6 of the truncated pattern (ggml_compute_fp32_to_bf16).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::GgmlType;

/// One block of a ggml tensor format: `N` elements packed into `size_of::<Self>()` bytes.
///
/// Implementations mirror ggml's `dequantize_row_*` (`to_float`) and `quantize_row_*_ref`
/// (`from_float`) for a single block; rows are sequences of independent blocks.
pub(crate) trait Block: Pod {
    /// The ggml type this block belongs to.
    const TYPE: GgmlType;
    /// Elements per block (ggml's `blck_size`).
    const N: usize = Self::TYPE.block_size();

    /// Decodes the block into `y`, which holds exactly `N` elements.
    fn to_float(&self, y: &mut [f32]);

    /// Encodes exactly `N` elements of `x` with ggml's reference quantizer.
    fn from_float(x: &[f32]) -> Self;
}

/// An IEEE half stored as two little-endian bytes (ggml's `ggml_half`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub(crate) struct LeF16(pub [u8; 2]);

impl LeF16 {
    /// The raw 16-bit pattern.
    pub fn bits(self) -> u16 {
        u16::from_le_bytes(self.0)
    }

    /// Exact widening to f32 (GGML_FP16_TO_FP32).
    #[inline]
    pub fn to_f32(self) -> f32 {
        f16::from_bits(self.bits()).to_f32()
    }

    /// Rounds `x` to the nearest half, ties to even (GGML_FP32_TO_FP16).
    #[inline]
    pub fn from_f32(x: f32) -> Self {
        LeF16(f32_to_fp16_bits(x).to_le_bytes())
    }
}

/// A bfloat16 stored as two little-endian bytes (ggml's `ggml_bf16_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub(crate) struct LeBF16(pub [u8; 2]);

impl LeBF16 {
    /// Exact widening to f32 (ggml_compute_bf16_to_fp32: the upper half of an f32).
    #[inline]
    pub fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(u16::from_le_bytes(self.0)) << 16)
    }

    /// Rounds `x` to bfloat16 as ggml_compute_fp32_to_bf16 does.
    #[inline]
    pub fn from_f32(x: f32) -> Self {
        LeBF16(f32_to_bf16_bits(x).to_le_bytes())
    }
}

/// An f32 stored as four little-endian bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub(crate) struct LeF32(pub [u8; 4]);

impl LeF32 {
    /// The stored value.
    #[inline]
    pub fn get(self) -> f32 {
        f32::from_le_bytes(self.0)
    }

    /// Stores `x` bit for bit.
    #[inline]
    pub fn new(x: f32) -> Self {
        LeF32(x.to_le_bytes())
    }
}

/// An i16 stored as two little-endian bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
pub(crate) struct LeI16(pub [u8; 2]);

impl LeI16 {
    /// Stores `x`.
    #[inline]
    pub fn new(x: i16) -> Self {
        LeI16(x.to_le_bytes())
    }
}

/// ggml_compute_fp32_to_fp16: round to nearest even, overflow to infinity, NaN to `sign | 0x7e00`.
#[inline]
pub(crate) fn f32_to_fp16_bits(x: f32) -> u16 {
    if x.is_nan() {
        // half (and F16C) keep part of the payload; ggml's bit trick yields the canonical quiet NaN.
        ((x.to_bits() >> 16) as u16 & 0x8000) | 0x7e00
    } else {
        f16::from_f32(x).to_bits()
    }
}

/// ggml_compute_fp32_to_bf16: NaN keeps its upper half with the quiet bit forced, everything else
/// rounds to nearest even (overflowing to infinity).
#[inline]
pub(crate) fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// The int32 that x86's `cvttss2si` (what C compilers emit for a float-to-integer cast) produces:
/// truncation toward zero, and `i32::MIN` for NaN or out-of-range values. ggml's legacy quantizers
/// cast floats straight to `int8_t`/`uint8_t`, which keeps the low byte of this value.
#[inline]
pub(crate) fn c_float_to_int(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_rounds_to_nearest_even_and_canonicalizes_nan() {
        // 1 + 2^-11 is exactly between 1 and the next half: ties to even (1.0).
        assert_eq!(f32_to_fp16_bits(f32::from_bits(0x3f80_1000)), 0x3c00);
        // 1 + 3 * 2^-11: tie between odd and even neighbours, goes up to the even one.
        assert_eq!(f32_to_fp16_bits(f32::from_bits(0x3f80_3000)), 0x3c02);
        assert_eq!(f32_to_fp16_bits(65520.0), 0x7c00);
        assert_eq!(f32_to_fp16_bits(65519.99), 0x7bff);
        assert_eq!(f32_to_fp16_bits(f32::from_bits(0xffc0_1234)), 0xfe00);
        assert_eq!(f32_to_fp16_bits(f32::from_bits(0x7f80_0001)), 0x7e00);
    }

    #[test]
    fn bf16_matches_ggml_rounding() {
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even stays
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, odd rounds up
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0); // sNaN quieted
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f7f_ffff)), 0x7f80); // overflow to inf
        assert_eq!(LeBF16::from_f32(-2.5).to_f32(), -2.5);
    }

    #[test]
    fn c_casts_follow_cvttss2si() {
        assert_eq!(c_float_to_int(-1.9), -1);
        assert_eq!(c_float_to_int(16.5), 16);
        assert_eq!(c_float_to_int(f32::NAN), i32::MIN);
        assert_eq!(c_float_to_int(3.0e9), i32::MIN);
        assert_eq!(c_float_to_int(-2_147_483_648.0), i32::MIN);
    }
}
