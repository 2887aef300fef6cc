//! Tensor formats: block layouts, dequantization, quantization and dot products, bit-exact with
//! ggml's reference C code.
//!
//! Invariants: a row of `n` elements of type `t` is `n / t.block_size()` consecutive blocks of
//! `t.type_size()` bytes each (`GgmlType::row_bytes`); every entry point checks that lengths are
//! whole blocks and agree with each other and returns `Error::Type` otherwise, never panicking.
//! Blocks are independent, so rows (and runs of blocks) can be processed in any order or in
//! parallel with identical results. Any byte slice can be read: block structs have alignment 1.
//!
//! Layout: `block.rs` (the `Block` trait, little-endian scalar fields, fp16/bf16 conversion),
//! `float.rs` (F32/F16/BF16), `legacy.rs` (Q4_0..Q8_1), `kquants/` (Q2_K..Q8_K), `helpers.rs`
//! (the K-quant scale searches), `rows.rs` (parallel whole-tensor helpers), `dot.rs` (vec_dot),
//! `activation.rs` (ggml-cpu's rounding of activations to a weight's `vec_dot_type`).

pub mod activation;
mod block;
pub mod convert;
pub(crate) mod dot;
mod float;
mod helpers;
mod kquants;
mod legacy;
pub mod mix;
mod rows;
pub mod scheme;
mod types;

pub use dot::vec_dot;
pub use mix::{Mix, MixModel};
pub use rows::{dequantize_rows, quantize_rows};
pub use scheme::{Resolution, Scheme, SchemeDefault, TensorAssignment};
pub use types::{GgmlType, QK_K};

use crate::{Error, Result};
use block::Block;

/// Runs `$body` with `$B` bound to the block type of `$ty`.
macro_rules! with_block {
    ($ty:expr, $B:ident => $body:expr) => {
        match $ty {
            GgmlType::F32 => {
                type $B = $crate::quant::block::LeF32;
                $body
            }
            GgmlType::F16 => {
                type $B = $crate::quant::block::LeF16;
                $body
            }
            GgmlType::BF16 => {
                type $B = $crate::quant::block::LeBF16;
                $body
            }
            GgmlType::Q4_0 => {
                type $B = $crate::quant::legacy::BlockQ4_0;
                $body
            }
            GgmlType::Q4_1 => {
                type $B = $crate::quant::legacy::BlockQ4_1;
                $body
            }
            GgmlType::Q5_0 => {
                type $B = $crate::quant::legacy::BlockQ5_0;
                $body
            }
            GgmlType::Q5_1 => {
                type $B = $crate::quant::legacy::BlockQ5_1;
                $body
            }
            GgmlType::Q8_0 => {
                type $B = $crate::quant::legacy::BlockQ8_0;
                $body
            }
            GgmlType::Q8_1 => {
                type $B = $crate::quant::legacy::BlockQ8_1;
                $body
            }
            GgmlType::Q2K => {
                type $B = $crate::quant::kquants::BlockQ2K;
                $body
            }
            GgmlType::Q3K => {
                type $B = $crate::quant::kquants::BlockQ3K;
                $body
            }
            GgmlType::Q4K => {
                type $B = $crate::quant::kquants::BlockQ4K;
                $body
            }
            GgmlType::Q5K => {
                type $B = $crate::quant::kquants::BlockQ5K;
                $body
            }
            GgmlType::Q6K => {
                type $B = $crate::quant::kquants::BlockQ6K;
                $body
            }
            GgmlType::Q8K => {
                type $B = $crate::quant::kquants::BlockQ8K;
                $body
            }
        }
    };
}
pub(crate) use with_block;

/// Checks that `n_elems` elements are whole blocks of `ty` stored in exactly `n_bytes` bytes.
fn check_lengths(ty: GgmlType, n_elems: usize, n_bytes: usize) -> Result<()> {
    let Some(expected) = ty.row_bytes(n_elems) else {
        return Err(Error::Type {
            ty,
            msg: format!(
                "{n_elems} elements is not a whole number of {}-element blocks",
                ty.block_size()
            ),
        });
    };
    if expected != n_bytes {
        return Err(Error::Type {
            ty,
            msg: format!("{n_elems} elements take {expected} bytes, but {n_bytes} were given"),
        });
    }
    Ok(())
}

/// Decodes the blocks of `src` into `dst` (lengths already checked).
fn dequantize_blocks<B: Block>(src: &[u8], dst: &mut [f32]) {
    let blocks: &[B] = bytemuck::cast_slice(src);
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(B::N)) {
        b.to_float(y);
    }
}

/// Encodes `src` into the blocks of `dst` (lengths already checked).
fn quantize_blocks<B: Block>(src: &[f32], dst: &mut [u8]) {
    let blocks: &mut [B] = bytemuck::cast_slice_mut(dst);
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(B::N)) {
        *b = B::from_float(x);
    }
}

/// Dequantizes `dst.len()` elements (a multiple of `ty.block_size()`) from `src`, which must hold
/// exactly `ty.row_bytes(dst.len())` bytes. Bit-exact with ggml's `dequantize_row_*` (for Q8_1,
/// which ggml cannot dequantize, `d * q`).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    check_lengths(ty, dst.len(), src.len())?;
    with_block!(ty, B => dequantize_blocks::<B>(src, dst));
    Ok(())
}

/// Quantizes `src` (a multiple of `ty.block_size()` elements) into `dst`, which must hold exactly
/// `ty.row_bytes(src.len())` bytes, with ggml's reference quantizer for `ty`
/// (`quantize_row_*_ref`: what llama-quantize does without an importance matrix; F16/BF16 round
/// to nearest even). Bit-exact with ggml.
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<()> {
    check_lengths(ty, src.len(), dst.len())?;
    with_block!(ty, B => quantize_blocks::<B>(src, dst));
    Ok(())
}
