//! rawrxd::quant against ggml itself: fixtures written by ggml's reference routines (see
//! tests/fixtures/quant/README.md) for dequantization and quantization, plus round-trip error,
//! parallel helpers, vec_dot and length checks.

use std::path::PathBuf;

use rawrxd::quant::{self, GgmlType};

/// Every type with ggml fixtures (F32 is the identity and is tested separately).
const FIXTURE_TYPES: [GgmlType; 14] = [
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
];

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/quant", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_f32(name: &str) -> Vec<f32> {
    fixture(name)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The f32 input ggml quantized for `ty`'s fixture.
fn fixture_input(ty: GgmlType) -> Vec<f32> {
    if matches!(ty, GgmlType::F16 | GgmlType::BF16) {
        fixture_f32("special.f32")
    } else {
        fixture_f32("input.f32")
    }
}

/// Bitwise equality, except that any NaN matches any NaN (ggml and rustc may propagate different
/// NaN payloads when both operands of an operation are NaN).
fn assert_same_floats(ty: GgmlType, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{ty} {what}: length");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| {
            let (g, w) = (got[i], want[i]);
            !(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()))
        })
        .collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{ty} {what}: {} of {} values differ; first at {i}: got {:e} ({:#010x}), ggml {:e} ({:#010x})",
            bad.len(),
            got.len(),
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}

#[test]
fn dequantize_is_bit_exact_with_ggml() {
    for ty in FIXTURE_TYPES {
        let t = ty.ggml_name();
        for (q, deq) in [
            (format!("{t}.q"), format!("{t}.deq.f32")),
            (format!("{t}.rand.q"), format!("{t}.rand.deq.f32")),
        ] {
            let src = fixture(&q);
            let want = fixture_f32(&deq);
            let mut got = vec![0f32; want.len()];
            quant::dequantize(ty, &src, &mut got).unwrap();
            assert_same_floats(ty, &q, &got, &want);
        }
    }
}

#[test]
fn dequantize_rows_matches_dequantize() {
    for ty in FIXTURE_TYPES {
        let t = ty.ggml_name();
        let src = fixture(&format!("{t}.rand.q"));
        let want = fixture_f32(&format!("{t}.rand.deq.f32"));
        let n_per_row = 2 * ty.block_size();
        let got = quant::dequantize_rows(ty, &src, n_per_row).unwrap();
        assert_same_floats(ty, "dequantize_rows", &got, &want);
    }
}

#[test]
fn f32_is_the_identity() {
    let x = fixture_f32("special.f32");
    let mut bytes = vec![0u8; x.len() * 4];
    quant::quantize(GgmlType::F32, &x, &mut bytes).unwrap();
    let mut y = vec![0f32; x.len()];
    quant::dequantize(GgmlType::F32, &bytes, &mut y).unwrap();
    for (a, b) in x.iter().zip(&y) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

#[test]
fn bad_lengths_are_errors() {
    for ty in GgmlType::ALL {
        let bs = ty.block_size();
        let ts = ty.type_size();
        let x = vec![0.5f32; 2 * bs];
        let mut bytes = vec![0u8; 2 * ts];
        // a fine call, then each kind of mismatch
        quant::quantize(ty, &x, &mut bytes).unwrap();
        assert!(quant::quantize(ty, &x, &mut bytes[..ts]).is_err(), "{ty}");
        assert!(quant::dequantize(ty, &bytes[1..], &mut vec![0f32; 2 * bs]).is_err());
        assert!(quant::vec_dot(ty, &bytes, &x[..bs]).is_err(), "{ty}");
        assert!(quant::quantize_rows(ty, &x, 0).is_err(), "{ty}");
        assert!(quant::quantize_rows(ty, &x[..bs], 2 * bs).is_err(), "{ty}");
        assert!(quant::dequantize_rows(ty, &bytes[..ts], 2 * bs).is_err());
        if bs > 1 {
            assert!(quant::quantize(ty, &x[..bs - 1], &mut bytes).is_err());
            assert!(quant::dequantize(ty, &bytes, &mut vec![0f32; 2 * bs - 1]).is_err());
            assert!(quant::vec_dot(ty, &bytes[..ts], &x[..bs + 1]).is_err());
            assert!(quant::quantize_rows(ty, &x, bs + 1).is_err(), "{ty}");
            assert!(quant::dequantize_rows(ty, &bytes, bs / 2).is_err());
        }
        // empty input is zero blocks, not an error
        quant::dequantize(ty, &[], &mut []).unwrap();
        assert_eq!(quant::quantize_rows(ty, &[], bs).unwrap(), Vec::<u8>::new());
    }
}

#[test]
fn quantize_is_bit_exact_with_ggml() {
    let mut failures = Vec::new();
    for ty in FIXTURE_TYPES {
        let t = ty.ggml_name();
        let x = fixture_input(ty);
        let want = fixture(&format!("{t}.q"));
        let mut got = vec![0u8; want.len()];
        quant::quantize(ty, &x, &mut got).unwrap();
        let ts = ty.type_size();
        let bad: Vec<usize> = (0..want.len() / ts)
            .filter(|&b| {
                let (g, w) = (&got[b * ts..(b + 1) * ts], &want[b * ts..(b + 1) * ts]);
                // quantize_row_q8_K_ref leaves `bsums` of an all-zero block unwritten (whatever was
                // in ggml's buffer); rawrxd zeroes them, so only `d` and `qs` are compared there.
                let unwritten = ty == GgmlType::Q8K && w[..4 + 256].iter().all(|&v| v == 0);
                if unwritten {
                    g[..4 + 256] != w[..4 + 256] || g[4 + 256..].iter().any(|&v| v != 0)
                } else {
                    g != w
                }
            })
            .collect();
        if !bad.is_empty() {
            failures.push(format!("{t}: blocks {bad:?} differ"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
