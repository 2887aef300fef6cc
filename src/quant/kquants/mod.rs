//! The K-quant formats: 256-element super-blocks split into sub-blocks with quantized scales.
//!
//! Invariants: layouts are ggml-common.h's `block_q2_K` ... `block_q8_K` (sizes asserted in each
//! file), all with alignment 1; every routine names the ggml function it mirrors and reproduces
//! its arithmetic operation for operation (see `helpers.rs`), so output is bit-identical.

mod q2k;
mod q3k;
mod q4k;
mod q5k;
mod q6k;
mod q8k;

pub(crate) use q2k::BlockQ2K;
pub(crate) use q3k::BlockQ3K;
pub(crate) use q4k::BlockQ4K;
pub(crate) use q5k::BlockQ5K;
pub(crate) use q6k::BlockQ6K;
pub(crate) use q8k::BlockQ8K;

/// Packs 2-bit values as Q2_K and Q3_K store them: each 128-element half uses 32 bytes, element
/// `l + 32 * k` of the half in bits `2k..2k+2` of byte `l`.
fn pack_2bit(l: &[u8; super::QK_K]) -> [u8; super::QK_K / 4] {
    let mut qs = [0u8; super::QK_K / 4];
    for j in (0..super::QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
    qs
}
