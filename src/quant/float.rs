//! The plain float formats F32, F16 and BF16, as one-element blocks.
//!
//! Invariants: one element per block, stored little-endian; conversions are those of
//! `block.rs` (ggml's fp16/bf16 conversion semantics), so F32 round-trips bit for bit and the
//! narrow formats round to nearest even.

use super::block::{Block, LeBF16, LeF16, LeF32};
use super::GgmlType;

const _: () = assert!(size_of::<LeF32>() == 4 && align_of::<LeF32>() == 1);
const _: () = assert!(size_of::<LeF16>() == 2 && align_of::<LeF16>() == 1);
const _: () = assert!(size_of::<LeBF16>() == 2 && align_of::<LeBF16>() == 1);

impl Block for LeF32 {
    const TYPE: GgmlType = GgmlType::F32;

    #[inline]
    fn to_float(&self, y: &mut [f32]) {
        y[0] = self.get();
    }

    #[inline]
    fn from_float(x: &[f32]) -> Self {
        LeF32::new(x[0])
    }
}

impl Block for LeF16 {
    const TYPE: GgmlType = GgmlType::F16;

    /// ggml_fp16_to_fp32_row
    #[inline]
    fn to_float(&self, y: &mut [f32]) {
        y[0] = self.to_f32();
    }

    /// ggml_fp32_to_fp16_row
    #[inline]
    fn from_float(x: &[f32]) -> Self {
        LeF16::from_f32(x[0])
    }
}

impl Block for LeBF16 {
    const TYPE: GgmlType = GgmlType::BF16;

    /// ggml_bf16_to_fp32_row
    #[inline]
    fn to_float(&self, y: &mut [f32]) {
        y[0] = self.to_f32();
    }

    /// ggml_fp32_to_bf16_row_ref
    #[inline]
    fn from_float(x: &[f32]) -> Self {
        LeBF16::from_f32(x[0])
    }
}
