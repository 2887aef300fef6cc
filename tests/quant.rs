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

/// Root-mean-square of `a - b` divided by the RMS of `a`.
fn relative_rmse(a: &[f32], b: &[f32]) -> f64 {
    let (mut err, mut sig) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        err += (f64::from(x) - f64::from(y)).powi(2);
        sig += f64::from(x).powi(2);
    }
    (err / sig).sqrt()
}

/// The Gaussian-like segments of input.f32 (plain, scale-varying and with outliers).
fn gaussian_segments(x: &[f32]) -> Vec<f32> {
    [0, 1, 2, 5, 6]
        .iter()
        .flat_map(|&s| x[256 * s..256 * (s + 1)].iter().copied())
        .collect()
}

#[test]
fn round_trip_error_is_bounded_by_ggml_reference() {
    // ggml's own relative RMSE on these segments (from the `.deq.f32` fixtures) is below these
    // bounds, which are its measured values rounded up by about 10%.
    let bounds = [
        (GgmlType::Q4_0, 0.125),
        (GgmlType::Q4_1, 0.105),
        (GgmlType::Q5_0, 0.067),
        (GgmlType::Q5_1, 0.050),
        (GgmlType::Q8_0, 0.0085),
        (GgmlType::Q8_1, 0.0085),
        (GgmlType::Q2K, 0.35),
        (GgmlType::Q3K, 0.195),
        (GgmlType::Q4K, 0.095),
        (GgmlType::Q5K, 0.050),
        (GgmlType::Q6K, 0.024),
        (GgmlType::Q8K, 0.0155),
    ];
    let x = gaussian_segments(&fixture_f32("input.f32"));
    for (ty, bound) in bounds {
        let reference = gaussian_segments(&fixture_f32(&format!("{}.deq.f32", ty.ggml_name())));
        let ref_err = relative_rmse(&x, &reference);
        assert!(
            ref_err < bound,
            "{ty}: ggml's error {ref_err} vs bound {bound}"
        );

        let q = quant::quantize_rows(ty, &x, 256).unwrap();
        let y = quant::dequantize_rows(ty, &q, 256).unwrap();
        let err = relative_rmse(&x, &y);
        assert!(
            err <= ref_err * (1.0 + 1e-9),
            "{ty}: round-trip error {err} exceeds ggml's {ref_err}"
        );
    }
}

#[test]
fn float_round_trips_are_within_half_an_ulp() {
    let x = gaussian_segments(&fixture_f32("input.f32"));
    // fp16 keeps 11 significant bits, bf16 8: rounding to nearest errs by at most half a unit.
    for (ty, rel) in [
        (GgmlType::F16, 2f32.powi(-11)),
        (GgmlType::BF16, 2f32.powi(-8)),
    ] {
        let q = quant::quantize_rows(ty, &x, 256).unwrap();
        let y = quant::dequantize_rows(ty, &q, 256).unwrap();
        for (&a, &b) in x.iter().zip(&y) {
            if a.abs() > 1e-4 {
                assert!((a - b).abs() <= a.abs() * rel, "{ty}: {a} -> {b}");
            }
        }
    }
}

/// A deterministic pseudo-random tensor of `n` values (xorshift; shape does not matter here).
fn pseudo_random(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            u * (1.0 + (i / 512 % 7) as f32)
        })
        .collect()
}

#[test]
fn parallel_rows_equal_serial_quantization() {
    let (n_rows, n_per_row) = (48, 4096);
    let x = pseudo_random(n_rows * n_per_row);
    for ty in GgmlType::ALL {
        let rows = quant::quantize_rows(ty, &x, n_per_row).unwrap();
        let mut serial = vec![0u8; ty.row_bytes(x.len()).unwrap()];
        quant::quantize(ty, &x, &mut serial).unwrap();
        assert!(rows == serial, "{ty}: quantize_rows differs from quantize");

        let deq_rows = quant::dequantize_rows(ty, &rows, n_per_row).unwrap();
        let mut deq = vec![0f32; x.len()];
        quant::dequantize(ty, &serial, &mut deq).unwrap();
        assert!(
            deq_rows == deq,
            "{ty}: dequantize_rows differs from dequantize"
        );
    }
}

#[test]
fn vec_dot_matches_dequantized_dot() {
    let n = 768; // three super-blocks, 24 legacy blocks: several stack-buffer chunks
    let w = pseudo_random(4 * n);
    let x: Vec<f32> = pseudo_random(n + 7)[7..].to_vec();
    for ty in GgmlType::ALL {
        let q = quant::quantize_rows(ty, &w, n).unwrap();
        let deq = quant::dequantize_rows(ty, &q, n).unwrap();
        let row_bytes = ty.row_bytes(n).unwrap();
        for r in 0..4 {
            let row = &q[r * row_bytes..(r + 1) * row_bytes];
            let wr = &deq[r * n..(r + 1) * n];
            let exact: f64 = wr
                .iter()
                .zip(&x)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let scale: f64 = wr
                .iter()
                .zip(&x)
                .map(|(&a, &b)| f64::from(a * b).abs())
                .sum();
            let got = quant::vec_dot(ty, row, &x).unwrap();
            assert!(
                (f64::from(got) - exact).abs() <= 1e-6 * scale,
                "{ty} row {r}: vec_dot {got} vs {exact}"
            );
        }
    }
}
