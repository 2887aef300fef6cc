//! The CPU engine's kernels against naive, independently written f64 implementations on random
//! data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rawrxd::engine::cpu::{attention, ops, AttnShape, Rope};
use rawrxd::model::RopeMode;
use rawrxd::quant::{self, GgmlType};

fn rand_vec(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn rms_norm_matches_formula() {
    let mut rng = StdRng::seed_from_u64(1);
    let (n_tok, width, eps) = (3, 96, 1e-5f32);
    let x = rand_vec(&mut rng, n_tok * width, 4.0);
    let w = rand_vec(&mut rng, width, 2.0);
    let mut got = x.clone();
    ops::rms_norm(&mut got, &w, eps);
    let mut want = Vec::new();
    for row in x.chunks(width) {
        let ms: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / width as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        want.extend(row.iter().zip(&w).map(|(&v, &wi)| v as f64 * r * wi as f64));
    }
    assert_close(&got, &want, 1e-6, "rms_norm");
}

#[test]
fn swiglu_matches_formula() {
    let mut rng = StdRng::seed_from_u64(2);
    let g = rand_vec(&mut rng, 200, 8.0);
    let u = rand_vec(&mut rng, 200, 3.0);
    let mut got = g.clone();
    ops::swiglu(&mut got, &u);
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(&g, &u)| (g as f64 / (1.0 + (-(g as f64)).exp())) * u as f64)
        .collect();
    assert_close(&got, &want, 1e-6, "swiglu");
}

#[test]
fn softmax_matches_formula() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = rand_vec(&mut rng, 77, 20.0);
    let mut got = x.clone();
    ops::softmax(&mut got);
    let z: f64 = x.iter().map(|&v| (v as f64).exp()).sum();
    let want: Vec<f64> = x.iter().map(|&v| (v as f64).exp() / z).collect();
    assert_close(&got, &want, 1e-6, "softmax");
}

/// RoPE by the textbook formula in f64: pair `(a, b)` of pair index `i` rotated by
/// `pos * base^(-2i/n_rot)`; `Normal` pairs `(2i, 2i+1)`, `Neox` pairs `(i, i + n_rot/2)`.
fn rope_direct(
    x: &[f32],
    head_dim: usize,
    n_rot: usize,
    base: f64,
    pos: usize,
    neox: bool,
) -> Vec<f64> {
    let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for h in y.chunks_mut(head_dim) {
        for i in 0..n_rot / 2 {
            let theta = pos as f64 * base.powf(-2.0 * i as f64 / n_rot as f64);
            let (a, b) = if neox {
                (i, i + n_rot / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (x0, x1) = (h[a], h[b]);
            h[a] = x0 * theta.cos() - x1 * theta.sin();
            h[b] = x0 * theta.sin() + x1 * theta.cos();
        }
    }
    y
}

fn check_rope(mode: RopeMode, n_rot: usize) {
    let mut rng = StdRng::seed_from_u64(4);
    let (head_dim, n_head) = (32, 3);
    let rope = Rope {
        mode,
        n_rot,
        freq_base: 10000.0,
        freq_scale: 1.0,
        freq_factors: None,
    };
    for pos in [0, 1, 7, 63, 200] {
        let x = rand_vec(&mut rng, head_dim * n_head, 2.0);
        let mut cache = vec![0f32; n_rot];
        rope.angles(pos, &mut cache);
        let mut got = x.clone();
        rope.apply(&mut got, head_dim, &cache);
        let want = rope_direct(&x, head_dim, n_rot, 10000.0, pos, mode == RopeMode::Neox);
        // ggml accumulates the angle in f32: the error grows with the position (~1e-6 relative).
        assert_close(
            &got,
            &want,
            2e-4,
            &format!("rope {mode:?} n_rot {n_rot} pos {pos}"),
        );
        if n_rot < head_dim {
            for h in 0..n_head {
                let tail = h * head_dim + n_rot..(h + 1) * head_dim;
                assert_eq!(got[tail.clone()], x[tail], "unrotated dimensions changed");
            }
        }
    }
}

#[test]
fn rope_normal_matches_formula() {
    check_rope(RopeMode::Normal, 32);
    check_rope(RopeMode::Normal, 16);
}

#[test]
fn rope_neox_matches_formula() {
    check_rope(RopeMode::Neox, 32);
    check_rope(RopeMode::Neox, 16);
}

#[test]
fn rope_linear_scaling_and_freq_factors_scale_the_angle() {
    let base = Rope {
        mode: RopeMode::Normal,
        n_rot: 8,
        freq_base: 10000.0,
        freq_scale: 1.0,
        freq_factors: None,
    };
    let scaled = Rope {
        freq_scale: 0.25,
        freq_factors: Some(vec![1.0, 2.0, 4.0, 8.0]),
        ..base.clone()
    };
    let (mut a, mut b) = (vec![0f32; 8], vec![0f32; 8]);
    base.angles(40, &mut a);
    scaled.angles(40, &mut b);
    for i in 0..4 {
        let ta = a[2 * i + 1].atan2(a[2 * i]) as f64;
        let tb = b[2 * i + 1].atan2(b[2 * i]) as f64;
        let want = 40.0 * 10000f64.powf(-2.0 * i as f64 / 8.0) * 0.25 / [1.0, 2.0, 4.0, 8.0][i];
        // Compare on the circle: atan2 wraps.
        let d = |x: f64, y: f64| {
            ((x - y + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI)
                .abs()
        };
        assert!(d(tb, want) < 1e-4, "pair {i}: {tb} vs {want}");
        assert!(d(ta, 40.0 * 10000f64.powf(-2.0 * i as f64 / 8.0)) < 1e-4);
    }
}

#[test]
fn attention_matches_explicit_softmax() {
    let mut rng = StdRng::seed_from_u64(5);
    let s = AttnShape {
        n_head: 6,
        n_head_kv: 2,
        head_dim: 16,
    };
    let (pos, n_tok) = (5, 4);
    let n_keys = pos + n_tok;
    let (qw, kvw) = (s.n_head * s.head_dim, s.n_head_kv * s.head_dim);
    let q = rand_vec(&mut rng, n_tok * qw, 1.5);
    let k = rand_vec(&mut rng, n_keys * kvw, 1.5);
    let v = rand_vec(&mut rng, n_keys * kvw, 1.5);
    let mut got = vec![0f32; n_tok * qw];
    attention(s, &q, &k, &v, pos, &mut got);

    // softmax(Q Kᵀ / sqrt(d) + causal mask) V, per head, Q head h using KV head h / 3.
    let d = s.head_dim;
    let mut want = vec![0f64; n_tok * qw];
    for h in 0..s.n_head {
        let g = h / (s.n_head / s.n_head_kv);
        for t in 0..n_tok {
            let qv = |i: usize| q[t * qw + h * d + i] as f64;
            let scores: Vec<f64> = (0..n_keys)
                .map(|j| {
                    if j > pos + t {
                        f64::NEG_INFINITY
                    } else {
                        (0..d)
                            .map(|i| qv(i) * k[j * kvw + g * d + i] as f64)
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    }
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
            for i in 0..d {
                want[t * qw + h * d + i] = (0..n_keys)
                    .map(|j| (scores[j] - m).exp() / z * v[j * kvw + g * d + i] as f64)
                    .sum();
            }
        }
    }
    assert_close(&got, &want, 1e-5, "attention");
}

#[test]
fn matmul_matches_dequantized_product_for_every_batch_size() {
    let mut rng = StdRng::seed_from_u64(6);
    for (ty, n_in) in [
        (GgmlType::F32, 64),
        (GgmlType::F16, 64),
        (GgmlType::Q4_0, 96),
        (GgmlType::Q4_1, 96),
        (GgmlType::Q8_0, 96),
        (GgmlType::Q4K, 256),
        (GgmlType::Q6K, 512),
    ] {
        let n_out = 37;
        let w = rand_vec(&mut rng, n_out * n_in, 1.0);
        let data = quant::quantize_rows(ty, &w, n_in).unwrap();
        let dense = quant::dequantize_rows(ty, &data, n_in).unwrap();
        let n_tok = 5;
        let x = rand_vec(&mut rng, n_tok * n_in, 1.0);
        let mut got = vec![0f32; n_tok * n_out];
        ops::matmul(ty, &data, n_in, &x, n_tok, &mut got).unwrap();
        let mut want = vec![0f64; n_tok * n_out];
        for t in 0..n_tok {
            for r in 0..n_out {
                want[t * n_out + r] = (0..n_in)
                    .map(|i| dense[r * n_in + i] as f64 * x[t * n_in + i] as f64)
                    .sum();
            }
        }
        assert_close(&got, &want, 1e-5, &format!("matmul {ty}"));
        // One token at a time gives bit-identical rows.
        for t in 0..n_tok {
            let mut one = vec![0f32; n_out];
            ops::matmul(ty, &data, n_in, &x[t * n_in..(t + 1) * n_in], 1, &mut one).unwrap();
            assert_eq!(one, got[t * n_out..(t + 1) * n_out], "{ty}: token {t}");
        }
    }
}

#[test]
fn matmul_rejects_mismatched_lengths() {
    let data = vec![0u8; GgmlType::Q8_0.row_bytes(64).unwrap() * 3];
    let x = vec![0f32; 64];
    let mut y = vec![0f32; 4];
    assert!(ops::matmul(GgmlType::Q8_0, &data, 64, &x, 1, &mut y).is_err());
    let mut y = vec![0f32; 3];
    assert!(ops::matmul(GgmlType::Q8_0, &data, 48, &x[..48], 1, &mut y).is_err());
    assert!(ops::matmul(GgmlType::Q8_0, &data, 64, &x, 1, &mut y).is_ok());
}
