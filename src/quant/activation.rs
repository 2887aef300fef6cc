//! How ggml's CPU backend rounds f32 activations before a matrix product: each weight type has a
//! `vec_dot_type` (ggml-cpu.c `type_traits_cpu`), the right-hand side is converted to it with that
//! type's `from_float`, and the dot product then sees the converted values. [`round_to`] writes
//! those values back in place (quantize, then dequantize), so an f32 dot product on them equals
//! ggml's integer dot product up to summation order.
//!
//! Invariants: blocks are independent and rounded in place; a slice must be whole blocks of the
//! target type (weight rows always are: a weight type and its `vec_dot_type` share a block size).
//! The Q8_0/Q8_1 rounding is ggml-cpu's x86 `quantize_row_q8_0`/`quantize_row_q8_1` (AVX/AVX2,
//! what the llama.cpp tools run on x86-64): `id = 127 / amax`, round half to even, scale `d =
//! amax / 127` stored as f16. That differs from the `_ref` quantizers (`1 / d`, `roundf`: half
//! away from zero) used to write model files ([`super::quantize`]). Q8_K uses
//! `quantize_row_q8_K_ref`, which x86 ggml-cpu calls directly (f32 scale, half to even).
//! Not reproduced: Q8_1's `s = fp16(d · Σq)`, which ggml's Q4_1/Q5_1 dot products multiply by the
//! weight block's minimum; an f32 dot on the rounded values uses `fp16(d) · Σq` there instead.

use super::block::{Block, LeBF16, LeF16};
use super::kquants::BlockQ8K;
use super::{GgmlType, QK_K};
use crate::{Error, Result};

/// The type ggml-cpu converts activations to before a dot product with a weight of type `ty`
/// (`type_traits_cpu[ty].vec_dot_type`).
pub fn vec_dot_type(ty: GgmlType) -> GgmlType {
    use GgmlType::*;
    match ty {
        F32 => F32,
        F16 => F16,
        BF16 => BF16,
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 | Q8_1 => Q8_1,
        Q2K | Q3K | Q4K | Q5K | Q6K | Q8K => Q8K,
    }
}

/// Rounds every block of `x` to activation type `target` (F32, F16, BF16, Q8_0, Q8_1 or Q8_K) as
/// ggml-cpu's `from_float` does, leaving the values its dot products use. `x.len()` must be a
/// multiple of `target`'s block size.
pub fn round_to(target: GgmlType, x: &mut [f32]) -> Result<()> {
    let n = target.block_size();
    if x.len() % n != 0 {
        return Err(Error::Type {
            ty: target,
            msg: format!("{} activations are not whole {n}-element blocks", x.len()),
        });
    }
    match target {
        GgmlType::F32 => {}
        GgmlType::F16 => x.iter_mut().for_each(|v| *v = LeF16::from_f32(*v).to_f32()),
        GgmlType::BF16 => x
            .iter_mut()
            .for_each(|v| *v = LeBF16::from_f32(*v).to_f32()),
        GgmlType::Q8_0 | GgmlType::Q8_1 => x.chunks_exact_mut(32).for_each(round_q8_x86),
        GgmlType::Q8K => x.chunks_exact_mut(QK_K).for_each(|b| {
            let q = BlockQ8K::from_float(b);
            q.to_float(b);
        }),
        other => {
            return Err(Error::Type {
                ty: other,
                msg: "not an activation type of ggml-cpu".into(),
            })
        }
    }
    Ok(())
}

/// One 32-element block through x86 ggml-cpu's `quantize_row_q8_0` (Q8_1's quants and `d` are
/// the same; its `s` only re-sums them) and back: `q = round_half_even(x * 127 / amax)`,
/// `x' = fp16(amax / 127) * q`.
fn round_q8_x86(x: &mut [f32]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = LeF16::from_f32(amax / 127.0).to_f32();
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for v in x {
        // _mm256_cvtps_epi32 then saturating packs: |q| <= 127 up to rounding, clamp anyway.
        let q = (*v * id).round_ties_even().clamp(-128.0, 127.0);
        *v = q * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_dot_types_follow_ggml_cpu_type_traits() {
        use GgmlType::*;
        let table = [
            (F32, F32),
            (F16, F16),
            (BF16, BF16),
            (Q4_0, Q8_0),
            (Q5_0, Q8_0),
            (Q8_0, Q8_0),
            (Q4_1, Q8_1),
            (Q5_1, Q8_1),
            (Q2K, Q8K),
            (Q3K, Q8K),
            (Q4K, Q8K),
            (Q5K, Q8K),
            (Q6K, Q8K),
        ];
        for (w, a) in table {
            assert_eq!(vec_dot_type(w), a, "{w}");
            assert_eq!(
                w.block_size(),
                a.block_size(),
                "{w}: weight rows are whole {a} blocks"
            );
        }
    }

    #[test]
    fn q8_0_rounds_half_to_even_with_127_over_amax() {
        // amax = 127: id = 1, d = 1 (exact in f16). Ties go to even, unlike quantize_row_q8_0_ref's
        // roundf (2.5 -> 3, -2.5 -> -3, 0.5 -> 1).
        let mut x = [0f32; 32];
        x[..8].copy_from_slice(&[-127.0, 2.5, 3.5, -2.5, 0.5, -0.5, 126.49, 1.25]);
        round_to(GgmlType::Q8_0, &mut x).unwrap();
        assert_eq!(&x[..8], &[-127.0, 2.0, 4.0, -2.0, 0.0, -0.0, 126.0, 1.0]);
        assert!(x[8..].iter().all(|&v| v == 0.0));
        // Q8_1 activations carry the same quants and scale.
        let mut y = [0f32; 32];
        y[..8].copy_from_slice(&[-127.0, 2.5, 3.5, -2.5, 0.5, -0.5, 126.49, 1.25]);
        round_to(GgmlType::Q8_1, &mut y).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn q8_0_scale_is_stored_as_f16() {
        // amax = 12.7: d = 0.1 -> f16 0.0999755859375 (0x2e66); the largest element maps to 127,
        // 6.35 to 63.5 * (1 + eps) or so: it must land on 63 or 64 times the f16 scale.
        let mut x = [0f32; 32];
        x[0] = 12.7;
        x[1] = -1.0;
        round_to(GgmlType::Q8_0, &mut x).unwrap();
        let d = half::f16::from_bits(0x2e66).to_f32(); // 0.0999755859375
        assert_eq!(x[0], 127.0 * d);
        // -1.0 * 127 / 12.7 = -10 (to f32 precision) -> q = -10.
        assert_eq!(x[1], -10.0 * d);
        // An all-zero block stays zero (id = 0).
        let mut z = [0f32; 32];
        round_to(GgmlType::Q8_0, &mut z).unwrap();
        assert!(z.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn q8_k_scales_by_the_signed_maximum() {
        // Largest magnitude negative: iscale = -127 / -127 = 1, d = 1; nearest_int ties to even.
        let mut x = [0f32; 256];
        x[..7].copy_from_slice(&[-127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 126.5]);
        round_to(GgmlType::Q8K, &mut x).unwrap();
        assert_eq!(&x[..7], &[-127.0, 0.0, 2.0, 2.0, 0.0, -2.0, 126.0]);
        // Largest magnitude positive (64): iscale = -127/64, d = -64/127; 32.25 -> q = -64,
        // back to 4096/127; -64 -> q = 127 (the MIN(127, .) clamp is not hit), back to 64.
        let mut y = [0f32; 256];
        y[0] = 64.0;
        y[1] = 32.25;
        y[2] = -64.0;
        round_to(GgmlType::Q8K, &mut y).unwrap();
        assert!((y[0] - 64.0).abs() < 1e-5, "{}", y[0]);
        assert!((y[1] as f64 - 4096.0 / 127.0).abs() < 1e-5, "{}", y[1]);
        assert!((y[2] + 64.0).abs() < 1e-5, "{}", y[2]);
        // Blocks are independent: the second block's scale comes from its own maximum.
        let mut w = [0f32; 512];
        w[0] = 1000.0;
        w[256] = 1.0;
        w[257] = 0.5;
        round_to(GgmlType::Q8K, &mut w).unwrap();
        // iscale = -127: 0.5 -> nearest_int(-63.5) = -64 (ties to even), back to 64/127.
        assert!((w[257] as f64 - 64.0 / 127.0).abs() < 1e-6, "{}", w[257]);
    }

    #[test]
    fn floats_round_to_nearest_even() {
        let mut x = [
            f32::from_bits(0x3f80_1000),
            f32::from_bits(0x3f80_3000),
            0.1,
        ];
        round_to(GgmlType::F16, &mut x).unwrap();
        assert_eq!(x[..2], [1.0, f32::from_bits(0x3f80_4000)]);
        assert_eq!(x[2], half::f16::from_bits(0x2e66).to_f32());
        let mut b = [f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000)];
        round_to(GgmlType::BF16, &mut b).unwrap();
        assert_eq!(b, [1.0, f32::from_bits(0x3f82_0000)]);
    }

    #[test]
    fn partial_blocks_and_weight_types_are_rejected() {
        assert!(round_to(GgmlType::Q8_0, &mut [0.0; 33]).is_err());
        assert!(round_to(GgmlType::Q8K, &mut [0.0; 32]).is_err());
        assert!(round_to(GgmlType::Q4K, &mut [0.0; 256]).is_err());
    }
}
