//! GPU-vs-CPU tests of every Vulkan kernel on random inputs and awkward shapes, under the
//! validation layer (see vulkan_support for the pass/fail policy). CPU oracles are written here
//! from the ggml operation definitions, in f64; float weights are converted with the `half` crate.

mod vulkan_support;

use half::{bf16, f16};
use rawrxd::engine::vulkan::kernels::attention::{self, AttnShape};
use rawrxd::engine::vulkan::kernels::eltwise::{self, EltOp};
use rawrxd::engine::vulkan::kernels::matvec::{self, Act, Output};
use rawrxd::engine::vulkan::kernels::matvec_q8::Q8Order;
use rawrxd::engine::vulkan::kernels::norm;
use rawrxd::engine::vulkan::kernels::rope::{self, RopeMode, RopeShape};
use rawrxd::engine::vulkan::kernels::WeightMatrix;
use rawrxd::engine::vulkan::{Binding, GpuBuffer};
use rawrxd::quant::GgmlType;
use vulkan_support::{assert_close, harness, Rng};

/// Random float weights of `ty` as raw bytes and as the f32 values they decode to.
fn float_weights(rng: &mut Rng, ty: GgmlType, n: usize) -> (Vec<u8>, Vec<f32>) {
    let v = rng.vec(n);
    match ty {
        GgmlType::F32 => (bytemuck::cast_slice(&v).to_vec(), v),
        GgmlType::F16 => {
            let h: Vec<f16> = v.iter().map(|x| f16::from_f32(*x)).collect();
            (
                bytemuck::cast_slice(&h).to_vec(),
                h.iter().map(|x| x.to_f32()).collect(),
            )
        }
        GgmlType::BF16 => {
            let h: Vec<bf16> = v.iter().map(|x| bf16::from_f32(*x)).collect();
            (
                bytemuck::cast_slice(&h).to_vec(),
                h.iter().map(|x| x.to_f32()).collect(),
            )
        }
        _ => unreachable!("float types only"),
    }
}

/// Random weights of any type: [`float_weights`] or [`random_quant`].
fn random_weights(rng: &mut Rng, ty: GgmlType, ncols: usize, nrows: usize) -> (Vec<u8>, Vec<f32>) {
    if ty.is_float() {
        float_weights(rng, ty, ncols * nrows)
    } else {
        random_quant(rng, ty, ncols, nrows)
    }
}

/// y[t][r] = sum_k w[r][k] * x[t][k] in f64.
fn ref_matmul(w: &[f32], ncols: usize, nrows: usize, x: &[f32], xs: usize, n: usize) -> Vec<f64> {
    let mut y = vec![0f64; n * nrows];
    for t in 0..n {
        for r in 0..nrows {
            y[t * nrows + r] = (0..ncols)
                .map(|k| w[r * ncols + k] as f64 * x[t * xs + k] as f64)
                .sum();
        }
    }
    y
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// Two readback buffers for `n` vectors of `ncols` Q8 activations: one for a kernel that writes
/// them itself, one for quantize_q8 run on that kernel's f32 output.
fn q8_pair(
    h: &vulkan_support::Harness,
    ncols: usize,
    n: usize,
) -> (
    rawrxd::engine::vulkan::GpuBuffer,
    rawrxd::engine::vulkan::GpuBuffer,
) {
    let bytes = rawrxd::engine::vulkan::kernels::matvec_q8::q8_bytes(ncols, n);
    let buf = || {
        h.gpu
            .buffer(bytes, rawrxd::engine::vulkan::MemoryClass::Readback)
            .unwrap()
    };
    (buf(), buf())
}

/// Asserts that a kernel's own Q8 output (`fused`) has the bytes quantize_q8 wrote (`apart`),
/// and that those are not all zero.
fn assert_same_q8(
    fused: &rawrxd::engine::vulkan::GpuBuffer,
    apart: &rawrxd::engine::vulkan::GpuBuffer,
    what: &str,
) {
    let len = apart.size() as usize;
    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
    fused.read(0, &mut a).unwrap();
    apart.read(0, &mut b).unwrap();
    assert!(
        b.iter().any(|&v| v != 0),
        "{what}: quantize_q8 wrote nothing"
    );
    assert_eq!(a, b, "{what}");
}

/// Asserts that every workgroup counter a kernel used was left zeroed for the next dispatch.
fn assert_counters_zero(
    h: &vulkan_support::Harness,
    counters: &rawrxd::engine::vulkan::GpuBuffer,
    what: &str,
) {
    assert!(
        h.download_u32(counters).iter().all(|&c| c == 0),
        "{what}: counters not reset"
    );
}

/// Runs W x through `mul` for one shape/output mode and compares with the oracle.
#[allow(clippy::too_many_arguments)]
fn check_product(
    h: &vulkan_support::Harness,
    rng: &mut Rng,
    ty: GgmlType,
    w_bytes: &[u8],
    w_vals: &[f32],
    ncols: usize,
    nrows: usize,
    n: usize,
    out: Output,
    bound: f64,
) {
    check_product_via(
        h, rng, ty, w_bytes, w_vals, ncols, nrows, n, out, bound, None,
    );
}

/// As [`check_product`], through `matmul_coopmat` with tile shape `coopmat` when it is given.
#[allow(clippy::too_many_arguments)]
fn check_product_via(
    h: &vulkan_support::Harness,
    rng: &mut Rng,
    ty: GgmlType,
    w_bytes: &[u8],
    w_vals: &[f32],
    ncols: usize,
    nrows: usize,
    n: usize,
    out: Output,
    bound: f64,
    coopmat: Option<&str>,
) {
    let out_rows = if out == Output::Glu { nrows / 2 } else { nrows };
    // Strides wider than the rows exercise x_stride and y_stride; the tensor-core matmul moves
    // whole tiles straight to and from y when its stride is a multiple of 4 (even n here) and
    // element by element otherwise (odd n).
    let (xs, ys) = if coopmat.is_some() && n % 2 == 0 {
        (
            ncols.next_multiple_of(4) + 4,
            out_rows.next_multiple_of(4) + 4,
        )
    } else {
        (ncols + 3, out_rows + 1)
    };
    let x = rng.vec(n * xs);
    let y0 = rng.vec(n * ys);
    let w = WeightMatrix::upload(&h.gpu, ty, ncols, &[w_bytes]).expect("upload weights");
    let xb = h.upload_f32(&x);
    let yb = h.upload_f32(&y0);
    let (mut rec, mut descs) = h.recorder();
    rec.begin().unwrap();
    let (xa, ya) = (Act::packed(xb.range(), xs), Act::packed(yb.range(), ys));
    // Scratch of the staged path, alive until the submission below has run.
    let mut staging = None;
    match coopmat {
        None => matvec::mul(&h.gpu, &mut rec, &mut descs, &w, xa, ya, n, out),
        Some(how @ ("staged" | "prestaged" | "staged_s" | "cm2_m" | "cm2_s")) => {
            let scratch = staging.insert(
                h.gpu
                    .buffer(
                        matvec::staged_bytes(&w, n),
                        rawrxd::engine::vulkan::MemoryClass::Device,
                    )
                    .unwrap(),
            );
            // Prestaged: the weights dequantized by their own dispatch first, the product then
            // reading them without dequantizing again.
            let prestaged = how == "prestaged" && w.pieces.len() == 1;
            if prestaged {
                matvec::prestage(&h.gpu, &mut rec, &mut descs, &w, scratch.range()).unwrap();
            }
            matvec::matmul_coopmat_staged(
                &h.gpu,
                &mut rec,
                &mut descs,
                &w,
                scratch.range(),
                xa,
                ya,
                n,
                out,
                prestaged,
                match how {
                    "staged_s" => Some("s"),
                    "staged" | "prestaged" => None,
                    cm2 => Some(cm2),
                },
            )
        }
        Some(shape) => {
            matvec::matmul_coopmat(&h.gpu, &mut rec, &mut descs, &w, xa, ya, n, out, shape)
        }
    }
    .unwrap();
    rec.submit_wait().unwrap();
    let got = h.download_f32(&yb);
    // Where `mul` takes the tensor-core path its operands are f16.
    let bound = match (coopmat, matvec::route(&h.gpu, ty, n)) {
        (None, matvec::Route::Coopmat(_)) => bound.max(COOPMAT_NMSE),
        _ => bound,
    };
    let prod = ref_matmul(w_vals, ncols, nrows, &x, xs, n);
    let mut want = y0.clone();
    for t in 0..n {
        for r in 0..out_rows {
            let p = prod[t * nrows + r];
            want[t * ys + r] = match out {
                Output::Store => p,
                Output::Accumulate => y0[t * ys + r] as f64 + p,
                Output::Glu => silu(p) * prod[t * nrows + out_rows + r],
            } as f32;
        }
    }
    assert_close(
        &format!("{ty} {out:?} {nrows}x{ncols} n={n}"),
        &got,
        &want,
        bound,
    );
}

#[test]
fn float_matvec_and_matmul_match_cpu() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(1);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        for &(ncols, nrows) in &[(5, 3), (32, 1), (33, 17), (100, 66), (576, 7)] {
            let (wb, wv) = float_weights(&mut rng, ty, ncols * nrows);
            // Batches through matvec (<= 16) and both matmul tile shapes (17, 70).
            // (Each batch size <= 16 is its own pipeline: few of them keep lavapipe's compile time down.)
            for (n, out) in [
                (1, Output::Store),
                (3, Output::Accumulate),
                (17, Output::Accumulate),
                (70, Output::Store),
            ] {
                check_product(&h, &mut rng, ty, &wb, &wv, ncols, nrows, n, out, 1e-10);
            }
            if nrows % 2 == 0 {
                check_product(
                    &h,
                    &mut rng,
                    ty,
                    &wb,
                    &wv,
                    ncols,
                    nrows,
                    1,
                    Output::Glu,
                    1e-10,
                );
            }
        }
    }
    h.finish();
}

#[test]
fn get_rows_matches_cpu() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(2);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        for &(ncols, nrows) in &[(33, 10), (576, 40)] {
            let (wb, wv) = float_weights(&mut rng, ty, ncols * nrows);
            let w = WeightMatrix::upload(&h.gpu, ty, ncols, &[&wb]).unwrap();
            let ids: Vec<u32> = vec![3, 0, (nrows - 1) as u32, 3, 7];
            let idb = h.upload_u32(&[&[99u32][..], &ids].concat());
            let ys = ncols + 2;
            let yb = h.zeros(ids.len() * ys);
            let (mut rec, mut descs) = h.recorder();
            rec.begin().unwrap();
            matvec::get_rows(
                &h.gpu,
                &mut rec,
                &mut descs,
                &w,
                idb.range(),
                1,
                Act::packed(yb.range(), ys),
                ids.len(),
            )
            .unwrap();
            rec.submit_wait().unwrap();
            let got = h.download_f32(&yb);
            let mut want = vec![0f32; ids.len() * ys];
            for (t, &id) in ids.iter().enumerate() {
                want[t * ys..t * ys + ncols]
                    .copy_from_slice(&wv[id as usize * ncols..(id as usize + 1) * ncols]);
            }
            assert_eq!(got, want, "{ty} get_rows {nrows}x{ncols}");
        }
    }
    h.finish();
}

#[test]
fn rms_norm_matches_cpu() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(3);
    for n in [1usize, 7, 576, 1000, 4096] {
        let rows = 3;
        let x: Vec<f32> = rng.vec(rows * n).iter().map(|v| v * 3.0).collect();
        let w = rng.vec(n);
        let eps = 1e-5f32;
        let xb = h.upload_f32(&x);
        let wb = h.upload_f32(&w);
        let yb = h.zeros(rows * n);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        norm::rms_norm(
            &h.gpu,
            &mut rec,
            &mut descs,
            Act::packed(xb.range(), n),
            wb.range(),
            Act::packed(yb.range(), n),
            n,
            rows,
            eps,
        )
        .unwrap();
        rec.submit_wait().unwrap();
        let got = h.download_f32(&yb);
        let mut want = vec![0f32; rows * n];
        for r in 0..rows {
            let row = &x[r * n..(r + 1) * n];
            let ms = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n as f64;
            let s = 1.0 / (ms + eps as f64).sqrt();
            for i in 0..n {
                want[r * n + i] = (row[i] as f64 * s * w[i] as f64) as f32;
            }
        }
        assert_close(&format!("rmsnorm n={n}"), &got, &want, 1e-11);
    }
    h.finish();
}

/// Rotates one head (f64 oracle of ggml_rope_ext with no scaling).
fn ref_rope(x: &[f32], pos: usize, n_rot: usize, base: f64, mode: RopeMode) -> Vec<f64> {
    let mut o: Vec<f64> = x.iter().map(|v| *v as f64).collect();
    for i in 0..n_rot / 2 {
        let theta = pos as f64 * base.powf(-2.0 * i as f64 / n_rot as f64);
        let (s, c) = theta.sin_cos();
        let (a, b) = match mode {
            RopeMode::Normal => (2 * i, 2 * i + 1),
            RopeMode::Neox => (i, i + n_rot / 2),
        };
        let (x0, x1) = (x[a] as f64, x[b] as f64);
        o[a] = x0 * c - x1 * s;
        o[b] = x0 * s + x1 * c;
    }
    o
}

#[test]
fn rope_kv_matches_cpu_and_writes_only_its_positions() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(4);
    for &(n_head, n_head_kv, head_dim, n_rot, mode) in &[
        (3usize, 1usize, 8usize, 8usize, RopeMode::Normal),
        (4, 4, 64, 64, RopeMode::Neox),
        (6, 2, 64, 32, RopeMode::Normal),
        (5, 5, 16, 12, RopeMode::Neox),
    ] {
        let (n_ctx, pos, n) = (16usize, 5usize, 3usize);
        let base = 10000.0;
        let (nq, nk) = (n_head * head_dim, n_head_kv * head_dim);
        let stride = nq + 2 * nk + 1;
        let src = rng.vec(n * stride);
        let srcb = h.upload_f32(&src);
        let qdst = h.zeros(n * nq);
        // Two cache slots; every row goes to slot 1, so slot 0 must stay zero.
        let slot_len = n_head_kv * n_ctx * head_dim;
        let kc = h.zeros(2 * slot_len / 2);
        let vc = h.zeros(2 * slot_len / 2);
        let angles = h.upload_f32(&rope::angle_table(n_ctx, n_rot, base));
        let rows: Vec<u32> = (0..n).flat_map(|t| [(pos + t) as u32, 1]).collect();
        let rows = h.upload_u32(&rows);
        let s = RopeShape {
            n_head,
            n_head_kv,
            head_dim,
            n_rot,
            mode,
            n_ctx,
        };
        let part = |off| Act {
            range: srcb.range(),
            off,
            stride,
        };
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        rope::rope_kv(
            &h.gpu,
            &mut rec,
            &mut descs,
            s,
            part(0),
            part(nq),
            part(nq + nk),
            Act::packed(qdst.range(), nq),
            kc.range(),
            vc.range(),
            angles.range(),
            rows.range(),
            n,
        )
        .unwrap();
        rec.submit_wait().unwrap();
        let got_q = h.download_f32(&qdst);
        let to_f16 = |words: Vec<u32>| -> Vec<f32> {
            words
                .iter()
                .flat_map(|w| {
                    [
                        f16::from_bits(*w as u16).to_f32(),
                        f16::from_bits((*w >> 16) as u16).to_f32(),
                    ]
                })
                .collect()
        };
        let got_k = to_f16(h.download_u32(&kc));
        let got_v = to_f16(h.download_u32(&vc));
        let mut want_q = vec![0f32; n * nq];
        let mut want_k = vec![0f32; 2 * slot_len];
        let mut want_v = vec![0f32; 2 * slot_len];
        for t in 0..n {
            let row = &src[t * stride..];
            for hh in 0..n_head {
                let r = ref_rope(
                    &row[hh * head_dim..(hh + 1) * head_dim],
                    pos + t,
                    n_rot,
                    base,
                    mode,
                );
                for d in 0..head_dim {
                    want_q[t * nq + hh * head_dim + d] = r[d] as f32;
                }
            }
            for hk in 0..n_head_kv {
                let k = ref_rope(
                    &row[nq + hk * head_dim..nq + (hk + 1) * head_dim],
                    pos + t,
                    n_rot,
                    base,
                    mode,
                );
                for d in 0..head_dim {
                    let at = slot_len + (hk * n_ctx + pos + t) * head_dim + d;
                    want_k[at] = f16::from_f64(k[d]).to_f32();
                    want_v[at] = f16::from_f32(row[nq + nk + hk * head_dim + d]).to_f32();
                }
            }
        }
        let what = format!("rope {mode:?} heads {n_head}/{n_head_kv} hd {head_dim} rot {n_rot}");
        assert_close(&what, &got_q, &want_q, 1e-11);
        assert_close(&format!("{what} k cache"), &got_k, &want_k, 1e-6);
        assert_eq!(got_v, want_v, "{what} v cache");
    }
    h.finish();
}

/// f32 values as f16 pairs, two per u32 word (the KV cache layout).
fn pack_f16(v: &[f32]) -> Vec<u32> {
    v.chunks(2)
        .map(|c| {
            f16::from_f32(c[0]).to_bits() as u32 | (f16::from_f32(c[1]).to_bits() as u32) << 16
        })
        .collect()
}

/// A K and a V cache of two slots (`slot_len` values each), random and f16-rounded (keys
/// doubled): the values for the oracle and the packed device buffers.
struct TwoSlotCaches {
    k: Vec<f32>,
    v: Vec<f32>,
    kc: rawrxd::engine::vulkan::GpuBuffer,
    vc: rawrxd::engine::vulkan::GpuBuffer,
}

fn two_slot_caches(h: &vulkan_support::Harness, rng: &mut Rng, slot_len: usize) -> TwoSlotCaches {
    let mut draw = |scale: f32| -> Vec<f32> {
        rng.vec(2 * slot_len)
            .iter()
            .map(|x| f16::from_f32(x * scale).to_f32())
            .collect()
    };
    let k = draw(2.0);
    let v = draw(1.0);
    let (kc, vc) = (h.upload_u32(&pack_f16(&k)), h.upload_u32(&pack_f16(&v)));
    TwoSlotCaches { k, v, kc, vc }
}

/// The (position, slot) pairs of token rows as the kernels' u32 rows buffer.
fn upload_rows(
    h: &vulkan_support::Harness,
    rows: &[(usize, usize)],
) -> rawrxd::engine::vulkan::GpuBuffer {
    let words: Vec<u32> = rows
        .iter()
        .flat_map(|&(p, slot)| [p as u32, slot as u32])
        .collect();
    h.upload_u32(&words)
}

/// f64 causal attention over f16-rounded caches ([slot][head_kv][n_ctx][head_dim]) for query row
/// t at position rows[t].0 of slot rows[t].1.
fn ref_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: &AttnShape,
    rows: &[(usize, usize)],
) -> Vec<f32> {
    let (hd, nq) = (s.head_dim, s.n_head * s.head_dim);
    let n = rows.len();
    let mut out = vec![0f32; n * nq];
    let group = s.n_head / s.n_head_kv;
    for (t, &(pos, slot)) in rows.iter().enumerate() {
        for h in 0..s.n_head {
            let hk = (slot * s.n_head_kv) + h / group;
            let qv = &q[t * nq + h * hd..t * nq + (h + 1) * hd];
            let n_kv = pos + 1;
            let scores: Vec<f64> = (0..n_kv)
                .map(|p| {
                    let kr = &k[(hk * s.n_ctx + p) * hd..];
                    (0..hd).map(|d| qv[d] as f64 * kr[d] as f64).sum::<f64>() / (hd as f64).sqrt()
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
            let l: f64 = e.iter().sum();
            for d in 0..hd {
                let acc: f64 = (0..n_kv)
                    .map(|p| e[p] * v[(hk * s.n_ctx + p) * hd + d] as f64)
                    .sum();
                out[t * nq + h * hd + d] = (acc / l) as f32;
            }
        }
    }
    out
}

#[test]
fn attention_matches_cpu_for_gqa_ratios_and_splits() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(5);
    // (n_head, n_head_kv, head_dim): GQA ratios 1, 3, 4 and an odd head count.
    for &(n_head, n_head_kv, head_dim) in &[
        (4usize, 4usize, 64usize),
        (6, 2, 32),
        (8, 2, 64),
        (3, 1, 128),
        (5, 5, 16),
        // head_dim / 2 not a multiple of 4: keys read a word at a time.
        (2, 1, 20),
    ] {
        let n_ctx = 300usize;
        // Two cache slots of different contents; rows alternate between them.
        let c = two_slot_caches(&h, &mut rng, n_head_kv * n_ctx * head_dim);
        // (first position, rows, most splits, positions a split covers at least: 0 = every
        // row takes every split; otherwise the rows of one call take different split counts).
        for &(pos, n, n_split, split_chunk) in &[
            (0usize, 1usize, 1usize, 0usize),
            (0, 1, 4, 0),
            (257, 1, 7, 0),
            (299, 1, 64, 0),
            (10, 5, 1, 0),
            (200, 9, 3, 0),
            (0, 40, 1, 0),
            (10, 5, 8, 4),
            (200, 9, 8, 16),
            (0, 40, 8, 64),
        ] {
            if pos + n > n_ctx {
                continue;
            }
            let s = AttnShape {
                n_head,
                n_head_kv,
                head_dim,
                n_ctx,
                n_split,
                split_chunk,
            };
            let nq = n_head * head_dim;
            let q = rng.vec(n * nq);
            let qb = h.upload_f32(&q);
            // Row t at position pos + t of slot t % 2; the last row is a decode row of the other
            // slot at its own position, as in a batched decode step.
            let mut rows: Vec<(usize, usize)> = (0..n).map(|t| (pos + t, t % 2)).collect();
            if n > 1 {
                rows[n - 1] = (n_ctx - 1 - pos, n % 2);
            }
            let rowb = upload_rows(&h, &rows);
            let parts = h.zeros(attention::partials_len(&s, n));
            let counters = h.zeros(attention::counters_len(&s, n));
            let ob = h.zeros(n * nq);
            // Heads of a multiple of 32 also take the variant that writes Q8 activations
            // (attn_q8), whose bytes must equal quantize_q8 run on its f32 output (in a word
            // order that permutes whole chunks where the width has them).
            let q8 = (head_dim % 32 == 0).then(|| q8_pair(&h, nq, n));
            let (mut rec, mut descs) = h.recorder();
            rec.begin().unwrap();
            attention::attention_into(
                &h.gpu,
                &mut rec,
                &mut descs,
                s,
                Act::packed(qb.range(), nq),
                c.kc.range(),
                c.vc.range(),
                parts.range(),
                counters.range(),
                rowb.range(),
                Act::packed(ob.range(), nq),
                n,
                q8.as_ref().map(|(fused, _)| (fused.range(), Q8Order::Q6K)),
                None,
            )
            .unwrap();
            if let Some((_, apart)) = &q8 {
                rawrxd::engine::vulkan::kernels::matvec_q8::quantize_q8(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    Act::packed(ob.range(), nq),
                    nq,
                    n,
                    apart.range(),
                    Q8Order::Q6K,
                )
                .unwrap();
            }
            rec.submit_wait().unwrap();
            let got = h.download_f32(&ob);
            let want = ref_attention(&q, &c.k, &c.v, &s, &rows);
            assert_close(
                &format!("attention {s:?} pos {pos} n {n}"),
                &got,
                &want,
                1e-10,
            );
            if let Some((fused, apart)) = &q8 {
                assert_same_q8(fused, apart, &format!("attn_q8 {s:?} pos {pos} n {n}"));
            }
            // The last split of each head merged and left its counter zeroed for the next call.
            assert_counters_zero(&h, &counters, &format!("attention {s:?} pos {pos} n {n}"));
        }
    }
    h.finish();
}

/// A decode step's attention with RoPE and the cache write done inside (attention::DecodeRope)
/// equals rope_kv then attention bit for bit: outputs, Q8 outputs and both caches, for GQA
/// ratios 1, 3 and 4, normal and neox RoPE (one with n_rot < head_dim), split counts that put
/// the new position first, last and alone in its split, and batches whose rows sit in different
/// slots at different positions (position 0 included).
#[test]
fn decode_attention_with_rope_equals_rope_kv_then_attention() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(25);
    for &(n_head, n_head_kv, head_dim, n_rot, mode) in &[
        (4usize, 4usize, 64usize, 64usize, RopeMode::Normal),
        (6, 2, 32, 32, RopeMode::Neox),
        (8, 2, 128, 96, RopeMode::Normal),
        (5, 5, 16, 12, RopeMode::Neox),
        (3, 1, 12, 12, RopeMode::Normal),
    ] {
        let n_ctx = 80usize;
        let base = 10000.0;
        let (nq, nk) = (n_head * head_dim, n_head_kv * head_dim);
        let angles = h.upload_f32(&rope::angle_table(n_ctx, n_rot, base));
        for &(n_split, split_chunk, ref positions) in &[
            (1usize, 0usize, vec![0usize]),
            (3, 0, vec![5, 0, 79]),
            (8, 0, vec![31, 32, 7, 63]),
            (64, 0, vec![40]),
            // Rows of 32, 33, 8 and 64 positions: 2, 3, 1 and 4 splits of 16.
            (8, 16, vec![31, 32, 7, 63]),
        ] {
            let n = positions.len();
            let s = AttnShape {
                n_head,
                n_head_kv,
                head_dim,
                n_ctx,
                n_split,
                split_chunk,
            };
            let rope_shape = RopeShape {
                n_head,
                n_head_kv,
                head_dim,
                n_rot,
                mode,
                n_ctx,
            };
            // Row t is the new token of slot n - 1 - t; the caches hold random (f16) keys and
            // values everywhere, so a position read before it is written would show.
            let slot_len = n_head_kv * n_ctx * head_dim;
            let (k0, v0) = (rng.vec(n * slot_len), rng.vec(n * slot_len));
            let rows: Vec<(usize, usize)> = positions
                .iter()
                .enumerate()
                .map(|(t, &p)| (p, n - 1 - t))
                .collect();
            let rowb = upload_rows(&h, &rows);
            let stride = nq + 2 * nk;
            let src = rng.vec(n * stride);
            let srcb = h.upload_f32(&src);
            let part = |off| Act {
                range: srcb.range(),
                off,
                stride,
            };
            let what = format!("{s:?} rot {n_rot} {mode:?} rows {rows:?}");
            let q8 = head_dim % 32 == 0;
            let mut results = Vec::new();
            for fused in [false, true] {
                let kc = h.upload_u32(&pack_f16(&k0));
                let vc = h.upload_u32(&pack_f16(&v0));
                let parts = h.zeros(attention::partials_len(&s, n));
                let counters = h.zeros(attention::counters_len(&s, n));
                let ob = h.zeros(n * nq);
                let qr = h.zeros(n * nq);
                let xq = q8.then(|| q8_pair(&h, nq, n).0);
                let (mut rec, mut descs) = h.recorder();
                rec.begin().unwrap();
                let q = if fused {
                    part(0)
                } else {
                    rope::rope_kv(
                        &h.gpu,
                        &mut rec,
                        &mut descs,
                        rope_shape,
                        part(0),
                        part(nq),
                        part(nq + nk),
                        Act::packed(qr.range(), nq),
                        kc.range(),
                        vc.range(),
                        angles.range(),
                        rowb.range(),
                        n,
                    )
                    .unwrap();
                    Act::packed(qr.range(), nq)
                };
                attention::attention_into(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    s,
                    q,
                    kc.range(),
                    vc.range(),
                    parts.range(),
                    counters.range(),
                    rowb.range(),
                    Act::packed(ob.range(), nq),
                    n,
                    xq.as_ref().map(|b| (b.range(), Q8Order::KPairs)),
                    fused.then_some(attention::DecodeRope {
                        n_rot,
                        mode,
                        k: part(nq),
                        v: part(nq + nk),
                        angles: angles.range(),
                    }),
                )
                .unwrap();
                rec.submit_wait().unwrap();
                assert_counters_zero(&h, &counters, &what);
                let xq_bytes = xq.map(|b| {
                    let mut v = vec![0u8; b.size() as usize];
                    b.read(0, &mut v).unwrap();
                    v
                });
                results.push((
                    h.download_f32(&ob),
                    h.download_u32(&kc),
                    h.download_u32(&vc),
                    xq_bytes,
                ));
            }
            let (a, b) = (&results[0], &results[1]);
            assert!(
                a.0.iter().all(|x| x.is_finite()),
                "{what}: non-finite output"
            );
            assert_eq!(
                a.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "{what}: outputs differ"
            );
            assert_eq!(a.1, b.1, "{what}: k caches differ");
            assert_eq!(a.2, b.2, "{what}: v caches differ");
            assert_eq!(a.3, b.3, "{what}: Q8 outputs differ");
            // The new keys were written: the caches differ from the initial ones.
            assert_ne!(a.1, pack_f16(&k0), "{what}: rope_kv wrote no key");
        }
    }
    h.finish();
}

/// The tiled prefill kernel (attn_prefill.comp): a chunk of one sequence (slot 1 of two, so the
/// slot offset matters) at positions pos .. pos + n, against the f64 oracle; chunks smaller than,
/// equal to and larger than its 16-row tile, starting at 0 and deep into the cache (several
/// 32-key blocks, the last partial), GQA ratios 1, 3, 4 and odd head counts.
#[test]
fn prefill_attention_matches_cpu_for_tiles_and_offsets() {
    let Some(h) = harness() else { return };
    let shapes = [
        (4usize, 4usize, 64usize),
        (6, 2, 32),
        (8, 2, 128),
        (5, 5, 16),
        (3, 1, 8),
    ];
    let chunks = [(0usize, 2usize), (0, 16), (10, 17), (200, 40), (250, 50)];
    check_prefill_attention(&h, 15, &shapes, &chunks, false, 1e-10);
    h.finish();
}

/// NMSE bound of the tensor-core prefill attention: queries and probabilities rounded to f16
/// (a relative error of about 5e-4 each), as [`COOPMAT_NMSE`].
const ATTN_TC_NMSE: f64 = 2e-6;

/// The tensor-core prefill kernel (attn_prefill_cm.comp) against the f64 oracle: chunks smaller
/// than, equal to and larger than its 64-row tile (so subgroups with no rows, whole 16-row output
/// tiles and a partial last one), from position 0 and deep into the cache (partial 32-key blocks,
/// blocks some subgroups skip), GQA ratios 1, 3 and 4, head_dim 16 to 128. Runs where the device
/// has the NV cooperative matrix; elsewhere it says so and checks nothing.
#[test]
fn prefill_attention_on_tensor_cores_matches_cpu() {
    let Some(h) = harness() else { return };
    let probe = AttnShape {
        n_head: 1,
        n_head_kv: 1,
        head_dim: 64,
        n_ctx: 1,
        n_split: 1,
        split_chunk: 0,
    };
    if !attention::prefill_on_tensor_cores(&h.gpu, &probe) {
        eprintln!(
            "prefill_attention_on_tensor_cores_matches_cpu: {} has no NV cooperative-matrix path (or RAWRXD_ATTN_TC=0); nothing to check",
            h.gpu.caps().name
        );
        h.finish();
        return;
    }
    let shapes = [
        (4usize, 4usize, 64usize),
        (6, 2, 32),
        (8, 2, 128),
        (4, 1, 16),
    ];
    let chunks = [
        (0usize, 2usize),
        (0, 16),
        (10, 17),
        (0, 64),
        (200, 40),
        (150, 130),
    ];
    check_prefill_attention(&h, 16, &shapes, &chunks, true, ATTN_TC_NMSE);
    h.finish();
}

/// Prefill attention of every (n_head, n_head_kv, head_dim) in `shapes` and every (pos, n) chunk
/// against the f64 oracle, on tensor cores or not, within `bound` (NMSE).
fn check_prefill_attention(
    h: &vulkan_support::Harness,
    seed: u64,
    shapes: &[(usize, usize, usize)],
    chunks: &[(usize, usize)],
    tensor_cores: bool,
    bound: f64,
) {
    let mut rng = Rng::new(seed);
    for &(n_head, n_head_kv, head_dim) in shapes {
        let n_ctx = 300usize;
        let c = two_slot_caches(h, &mut rng, n_head_kv * n_ctx * head_dim);
        for &(pos, n) in chunks {
            let s = AttnShape {
                n_head,
                n_head_kv,
                head_dim,
                n_ctx,
                n_split: 1,
                split_chunk: 0,
            };
            let nq = n_head * head_dim;
            let q = rng.vec(n * nq);
            let qb = h.upload_f32(&q);
            let rows: Vec<(usize, usize)> = (0..n).map(|t| (pos + t, 1)).collect();
            let rowb = upload_rows(h, &rows);
            // Poisoned output: every element must be written.
            let ob = h.upload_f32(&vec![f32::NAN; n * nq]);
            let (mut rec, mut descs) = h.recorder();
            rec.begin().unwrap();
            attention::attention_prefill(
                &h.gpu,
                &mut rec,
                &mut descs,
                s,
                Act::packed(qb.range(), nq),
                c.kc.range(),
                c.vc.range(),
                rowb.range(),
                Act::packed(ob.range(), nq),
                n,
                tensor_cores,
            )
            .unwrap();
            rec.submit_wait().unwrap();
            let got = h.download_f32(&ob);
            let want = ref_attention(&q, &c.k, &c.v, &s, &rows);
            assert_close(
                &format!("prefill attention {s:?} pos {pos} n {n} tensor cores {tensor_cores}"),
                &got,
                &want,
                bound,
            );
        }
    }
}

#[test]
fn eltwise_ops_match_cpu() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(6);
    let (n, rows) = (1000usize, 3usize);
    let a = rng.vec(rows * n);
    let b = rng.vec(rows * n);
    let ab = h.upload_f32(&a);
    let bb = h.upload_f32(&b);
    for op in [EltOp::Add, EltOp::Mul, EltOp::SwiGlu, EltOp::Copy] {
        let yb = h.zeros(rows * n);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        eltwise::eltwise(
            &h.gpu,
            &mut rec,
            &mut descs,
            op,
            Act::packed(ab.range(), n),
            Act::packed(bb.range(), n),
            Act::packed(yb.range(), n),
            n,
            rows,
        )
        .unwrap();
        rec.submit_wait().unwrap();
        let got = h.download_f32(&yb);
        let want: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                let (x, y) = (*x as f64, *y as f64);
                (match op {
                    EltOp::Add => x + y,
                    EltOp::Mul => x * y,
                    EltOp::SwiGlu => silu(x) * y,
                    EltOp::Copy => x,
                }) as f32
            })
            .collect();
        assert_close(&format!("{op:?}"), &got, &want, 1e-12);
    }
    h.finish();
}

#[test]
fn argmax_finds_the_first_maximum() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(7);
    let n = 49_153usize;
    let rows = 3;
    let mut x = rng.vec(rows * n);
    x[n + 777] = 5.0; // row 1: a tie, the lower index wins
    x[n + 40_000] = 5.0;
    x[2 * n + n - 1] = 2.0; // row 2: the last element
    let xb = h.upload_f32(&x);
    let ob = h.upload_u32(&[0, 0, 0, 0]);
    let (mut rec, mut descs) = h.recorder();
    rec.begin().unwrap();
    eltwise::argmax(
        &h.gpu,
        &mut rec,
        &mut descs,
        Act::packed(xb.range(), n),
        ob.range(),
        1,
        n,
        rows,
    )
    .unwrap();
    rec.submit_wait().unwrap();
    let got = h.download_u32(&ob);
    let want0 = (0..n)
        .max_by(|&i, &j| x[i].total_cmp(&x[j]).then(j.cmp(&i)))
        .unwrap();
    assert_eq!(got, vec![0, want0 as u32, 777, (n - 1) as u32]);
    h.finish();
}

#[test]
fn recorder_inserts_barriers_only_for_hazards() {
    let Some(h) = harness() else { return };
    let a = h.zeros(256);
    let b = h.zeros(256);
    let c = h.zeros(256);
    let (mut rec, _descs) = h.recorder();
    rec.begin().unwrap();
    let start = rec.barrier_count();
    rec.fill(a.range(), 1).unwrap();
    rec.fill(b.range(), 2).unwrap(); // independent of the first: no barrier
    assert_eq!(rec.barrier_count(), start);
    rec.copy(a.range(), c.range()).unwrap(); // reads a: barrier
    assert_eq!(rec.barrier_count(), start + 1);
    rec.copy(b.range(), a.range()).unwrap(); // writes a, read since the barrier: barrier
    assert_eq!(rec.barrier_count(), start + 2);
    rec.submit_wait().unwrap();
    assert_eq!(h.download_u32(&c), vec![1; 256]);
    assert_eq!(h.download_u32(&a), vec![2; 256]);
    let _ = Binding::read(a.range());
    h.finish();
}

/// Byte offsets of the f16 scale fields in one block of `ty` (everything else is random bits).
fn scale_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q2K => &[80, 82],
        GgmlType::Q3K => &[108],
        GgmlType::Q6K => &[208],
        _ => &[],
    }
}

/// `nrows` rows of `ncols` random quantized elements: random bits with finite, modest f16 scales.
fn random_quant(rng: &mut Rng, ty: GgmlType, ncols: usize, nrows: usize) -> (Vec<u8>, Vec<f32>) {
    let nblocks = ncols / ty.block_size() * nrows;
    let mut bytes = rng.bytes(nblocks * ty.type_size());
    for b in 0..nblocks {
        for &off in scale_fields(ty) {
            let v = f16::from_f32(rng.f32() * 0.05);
            bytes[b * ty.type_size() + off..][..2].copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut vals = vec![0f32; ncols * nrows];
    rawrxd::quant::dequantize(ty, &bytes, &mut vals).expect("CPU dequantize");
    (bytes, vals)
}

const QUANT_TYPES: [GgmlType; 10] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

#[test]
fn quant_matvec_and_matmul_match_cpu_dequantize() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(8);
    for ty in QUANT_TYPES {
        // An odd number of blocks per row makes rows start 2-aligned for the 2-byte-aligned formats.
        let widths: &[usize] = if ty.is_k_quant() {
            &[256, 768]
        } else {
            &[96, 576]
        };
        for &ncols in widths {
            for nrows in [7usize, 66] {
                let (wb, wv) = random_quant(&mut rng, ty, ncols, nrows);
                // Matvec batches of 1 and 12 (a batched decode step), matmul's two tile shapes.
                for (n, out) in [
                    (1, Output::Store),
                    (12, Output::Accumulate),
                    (17, Output::Store),
                    (70, Output::Accumulate),
                ] {
                    check_product(&h, &mut rng, ty, &wb, &wv, ncols, nrows, n, out, 1e-10);
                }
                if nrows % 2 == 0 {
                    check_product(
                        &h,
                        &mut rng,
                        ty,
                        &wb,
                        &wv,
                        ncols,
                        nrows,
                        1,
                        Output::Glu,
                        1e-10,
                    );
                }
            }
        }
    }
    h.finish();
}

/// NMSE bound of the tensor-core matmul: f16 rounding of both operands is a relative error of
/// about 4e-4 per product, an NMSE of about 2e-7.
const COOPMAT_NMSE: f64 = 2e-6;

/// The tensor-core matmul (NV cooperative matrix, f16 operands, f32 sums) against the f64 oracle
/// for every weight format, both tile shapes and the staged path (dequant_f16 first, in the
/// product's recording or prestaged by its own dispatch; its default kernel, matmul_coopmat's "s"
/// tile, and matmul_cm2's two tiles where the device has VK_NV_cooperative_matrix2), whole and
/// partial row and token tiles (130 rows: one whole 128-row tile) and both output modes.
/// Runs where the device has the path (NVIDIA); elsewhere it says so and checks nothing.
#[test]
fn coopmat_matmul_matches_cpu_for_every_format() {
    let Some(h) = harness() else { return };
    if !matvec::has_coopmat(&h.gpu, GgmlType::F16) {
        eprintln!(
            "coopmat_matmul_matches_cpu_for_every_format: {} has no NV cooperative-matrix path (or RAWRXD_COOPMAT=0); nothing to check",
            h.gpu.caps().name
        );
        h.finish();
        return;
    }
    let mut rng = Rng::new(12);
    let bound = COOPMAT_NMSE;
    let cases = [
        (2, Output::Store, "d"),
        (12, Output::Accumulate, "d"),
        (17, Output::Store, "d"),
        (70, Output::Accumulate, "w"),
        (33, Output::Accumulate, "w"),
        (150, Output::Accumulate, "w"),
        (5, Output::Store, "w"),
        (70, Output::Accumulate, "staged"),
        (33, Output::Store, "staged"),
        (40, Output::Accumulate, "prestaged"),
        (70, Output::Accumulate, "staged_s"),
    ];
    // matmul_cm2.comp's tiles where the device has VK_NV_cooperative_matrix2: whole tiles
    // (130 rows, 130 or 300 tokens) and partial ones, both output modes, odd strides.
    let cm2_cases: &[(usize, Output, &str)] = if h.gpu.caps().nv_coopmat2(128, 128) {
        &[
            (33, Output::Store, "cm2_s"),
            (70, Output::Accumulate, "cm2_s"),
            (130, Output::Store, "cm2_m"),
            (70, Output::Accumulate, "cm2_m"),
            (300, Output::Accumulate, "cm2_m"),
        ]
    } else {
        eprintln!(
            "coopmat_matmul_matches_cpu_for_every_format: {} has no VK_NV_cooperative_matrix2; matmul_cm2 not checked",
            h.gpu.caps().name
        );
        &[]
    };
    // (type, columns, rows, raw bytes, values): float matrices, then two widths of each quant.
    let mut mats = Vec::new();
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        for (ncols, nrows) in [(33, 17), (100, 66), (576, 7), (64, 130)] {
            let (wb, wv) = float_weights(&mut rng, ty, ncols * nrows);
            mats.push((ty, ncols, nrows, wb, wv));
        }
    }
    for ty in QUANT_TYPES {
        let widths: &[usize] = if ty.is_k_quant() {
            &[256, 768]
        } else {
            &[96, 576]
        };
        for &ncols in widths {
            for nrows in [7usize, 66] {
                let (wb, wv) = random_quant(&mut rng, ty, ncols, nrows);
                mats.push((ty, ncols, nrows, wb, wv));
            }
        }
    }
    for (ty, ncols, nrows, wb, wv) in &mats {
        for &(n, out, shape) in cases.iter().chain(cm2_cases) {
            check_product_via(
                &h,
                &mut rng,
                *ty,
                wb,
                wv,
                *ncols,
                *nrows,
                n,
                out,
                bound,
                Some(shape),
            );
        }
    }
    for ty in QUANT_TYPES {
        // `mul` sends prompt-sized batches (17 vectors and more) the tensor-core way.
        let ncols = if ty.is_k_quant() { 256 } else { 96 };
        let (wb, wv) = random_quant(&mut rng, ty, ncols, 66);
        for n in [17, 40, 130] {
            assert!(matches!(
                matvec::route(&h.gpu, ty, n),
                matvec::Route::Coopmat(_)
            ));
            check_product(
                &h,
                &mut rng,
                ty,
                &wb,
                &wv,
                ncols,
                66,
                n,
                Output::Store,
                bound,
            );
        }
    }
    h.finish();
}

/// A workgroup shape (subgroups, rows per pass, pieces per iteration) changes which rows a
/// subgroup takes, never how a row is summed: matvec and matvec_q8 give bit-identical results
/// under two different shapes (the tuning runs rely on it), batch of 3, rows that do not fill the
/// last workgroup.
#[test]
fn matvec_shapes_give_identical_results() {
    use rawrxd::engine::vulkan::kernels::matvec_q8;
    use rawrxd::engine::vulkan::MemoryClass;
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(11);
    let shapes = [
        matvec::MatvecTuning {
            subgroups: 4,
            rows_per_subgroup: 1,
            unroll: 1,
        },
        matvec::MatvecTuning {
            subgroups: 2,
            rows_per_subgroup: 2,
            unroll: 2,
        },
    ];
    let q8 = matvec_q8::has_matvec_q8(&h.gpu, GgmlType::Q4K);
    for (ty, ncols, on_q8) in [
        (GgmlType::F16, 264, false),
        (GgmlType::Q4K, 768, false),
        (GgmlType::Q4K, 768, true),
        (GgmlType::Q6K, 512, true),
    ] {
        if on_q8 && !q8 {
            continue;
        }
        let (nrows, n) = (38, 3);
        let (wb, _) = random_weights(&mut rng, ty, ncols, nrows);
        let w = WeightMatrix::upload(&h.gpu, ty, ncols, &[&wb]).unwrap();
        let x = rng.vec(n * ncols);
        let xb = h.upload_f32(&x);
        let xq = h
            .gpu
            .buffer(matvec_q8::q8_bytes(ncols, n), MemoryClass::Device)
            .unwrap();
        let run = |tuning: matvec::MatvecTuning| {
            let yb = h.zeros(n * nrows);
            let (mut rec, mut descs) = h.recorder();
            rec.begin().unwrap();
            let (xa, ya) = (
                Act::packed(xb.range(), ncols),
                Act::packed(yb.range(), nrows),
            );
            if on_q8 {
                let order = Q8Order::for_product(GgmlType::Q4K, n);
                matvec_q8::quantize_q8(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    xa,
                    ncols,
                    n,
                    xq.range(),
                    order,
                )
                .unwrap();
                matvec_q8::matvec_q8_tuned(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    &w,
                    xq.range(),
                    ya,
                    n,
                    Output::Store,
                    tuning,
                    None,
                )
            } else {
                matvec::matvec_tuned(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    &w,
                    xa,
                    ya,
                    n,
                    Output::Store,
                    tuning,
                )
            }
            .unwrap();
            rec.submit_wait().unwrap();
            h.download_f32(&yb)
        };
        let (a, b) = (run(shapes[0]), run(shapes[1]));
        assert!(a.iter().any(|v| *v != 0.0), "{ty}: nothing written");
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{ty} (q8 {on_q8}): results depend on the workgroup shape"
        );
    }
    h.finish();
}

/// A buffer of f16 pairs (two per u32 word, low half first), read back.
fn download_f16(h: &vulkan_support::Harness, buf: &GpuBuffer) -> Vec<f16> {
    h.download_u32(buf)
        .iter()
        .flat_map(|&p| [f16::from_bits(p as u16), f16::from_bits((p >> 16) as u16)])
        .collect()
}

/// dequant_f16 (the staged tensor-core path's first pass; it needs no cooperative matrix, so it
/// runs everywhere): every format's rows as f16, equal to the CPU dequantization rounded to f16
/// (within one f16 step: the GPU's f32 dequant may round differently), zero past `ncols` up to
/// the padded row length, in the last piece of a matrix uploaded in two parts.
#[test]
fn dequant_f16_matches_cpu_rounded_to_f16() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(10);
    let mut cases: Vec<(GgmlType, usize)> = vec![
        (GgmlType::F32, 100),
        (GgmlType::F16, 33),
        (GgmlType::BF16, 130),
    ];
    cases.extend(
        QUANT_TYPES
            .iter()
            .map(|&ty| (ty, if ty.is_k_quant() { 768 } else { 96 })),
    );
    for (ty, ncols) in cases {
        let (rows_a, rows_b) = (3, 5);
        let (wa, mut wv) = random_weights(&mut rng, ty, ncols, rows_a);
        let (wb, vb) = random_weights(&mut rng, ty, ncols, rows_b);
        wv.extend(vb);
        let w = WeightMatrix::upload(&h.gpu, ty, ncols, &[&wa, &wb]).unwrap();
        // The last piece (the second part when parts stay pieces).
        let piece = w.pieces.len() - 1;
        let skip = w.pieces[piece].row_start;
        let rows = w.pieces[piece].nrows;
        let ld = matvec::staged_ld(&w);
        // Poisoned: every element, padding included, must be written.
        let out = h.upload_u32(&vec![0x7e00_7e00u32; rows * ld / 2]);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        matvec::dequant_f16(&h.gpu, &mut rec, &mut descs, &w, piece, out.range()).unwrap();
        rec.submit_wait().unwrap();
        let got = download_f16(&h, &out);
        for r in 0..rows {
            let src = skip + r;
            for c in 0..ld {
                let g = got[r * ld + c].to_f32();
                if c >= ncols {
                    assert_eq!(g, 0.0, "{ty} row {r} col {c}: padding not zero");
                    continue;
                }
                let want = f16::from_f32(wv[src * ncols + c]).to_f32();
                let step = f16::from_f32(want).to_f32().abs() * (1.0 / 1024.0) + 6e-8;
                assert!(
                    (g - want).abs() <= step,
                    "{ty} row {r} col {c}: got {g}, want {want}"
                );
            }
        }
    }
    h.finish();
}

/// f16_rows (the staged tensor-core path's activation pass; it needs no cooperative matrix, so
/// it runs everywhere): rows of a strided, offset activation buffer as f16 rows of `ld`, equal to
/// the CPU's rounding to f16 (within one f16 step), zero from `ncols` to `ld`, nothing written
/// past the last row; a row length that is not a multiple of 8 is refused.
#[test]
fn f16_rows_match_cpu_rounded_to_f16() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(14);
    for (ncols, n, stride, off, ld) in [
        (100, 5, 103, 7, 128),
        (256, 3, 256, 0, 256),
        (8, 1, 8, 4, 8),
    ] {
        let x = rng.vec(off + n * stride);
        let xb = h.upload_f32(&x);
        let act = Act {
            range: xb.range(),
            off,
            stride,
        };
        // Poisoned, one row more than written: every element of the n rows must be written, the
        // row after them kept.
        let out = h.upload_u32(&vec![0x7e00_7e00u32; (n + 1) * ld / 2]);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        matvec::f16_rows(&h.gpu, &mut rec, &mut descs, act, ncols, n, ld, out.range()).unwrap();
        rec.submit_wait().unwrap();
        let got = download_f16(&h, &out);
        for t in 0..n {
            for c in 0..ld {
                let g = got[t * ld + c].to_f32();
                if c >= ncols {
                    assert_eq!(g, 0.0, "row {t} col {c}: padding not zero");
                    continue;
                }
                let want = f16::from_f32(x[off + t * stride + c]).to_f32();
                let step = want.abs() * (1.0 / 1024.0) + 6e-8;
                assert!(
                    (g - want).abs() <= step,
                    "row {t} col {c}: got {g}, want {want}"
                );
            }
        }
        assert!(
            got[n * ld..].iter().all(|v| v.to_bits() == 0x7e00),
            "written past row {n}"
        );
    }
    let xb = h.upload_f32(&[0.0; 64]);
    let out = h.upload_u32(&[0; 64]);
    let (mut rec, mut descs) = h.recorder();
    rec.begin().unwrap();
    let act = Act::packed(xb.range(), 12);
    let err = matvec::f16_rows(&h.gpu, &mut rec, &mut descs, act, 12, 2, 12, out.range());
    assert!(
        err.is_err(),
        "a row length of 12 (not a multiple of 8) was accepted"
    );
    rec.submit_wait().unwrap();
    h.finish();
}

#[test]
fn quant_get_rows_match_cpu_dequantize() {
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(9);
    for ty in QUANT_TYPES {
        let ncols = if ty.is_k_quant() { 768 } else { 96 };
        let nrows = 13;
        let (wb, wv) = random_quant(&mut rng, ty, ncols, nrows);
        let w = WeightMatrix::upload(&h.gpu, ty, ncols, &[&wb]).unwrap();
        let ids: Vec<u32> = vec![12, 0, 5, 5, 1];
        let idb = h.upload_u32(&ids);
        let yb = h.zeros(ids.len() * ncols);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        matvec::get_rows(
            &h.gpu,
            &mut rec,
            &mut descs,
            &w,
            idb.range(),
            0,
            Act::packed(yb.range(), ncols),
            ids.len(),
        )
        .unwrap();
        rec.submit_wait().unwrap();
        let got = h.download_f32(&yb);
        let want: Vec<f32> = ids
            .iter()
            .flat_map(|&id| wv[id as usize * ncols..(id as usize + 1) * ncols].to_vec())
            .collect();
        assert_close(&format!("{ty} get_rows"), &got, &want, 1e-12);
    }
    h.finish();
}

/// x as matvec_q8.comp sees it: `n` vectors of `ncols` decoded from the Q8 activations
/// quantize_q8 wrote (`words`, the whole scratch), d * q per element, the quants found through
/// `order` (`Q8Order::word_pos`). (Whether quantize_q8 rounds as ggml does is
/// `quantize_q8_lays_out_each_word_order`'s question; here GLSL's inexact 1/d would otherwise
/// move a quant across a rounding boundary now and then.)
fn q8_decode(words: &[u32], ncols: usize, n: usize, order: Q8Order) -> Vec<f32> {
    let nblocks = ncols.div_ceil(32);
    let ds_base = n * nblocks * 8;
    let mut out = vec![0f32; n * ncols];
    for c in 0..n {
        for i in 0..ncols {
            let (b, e) = (i / 32, i % 32);
            let w = words[c * nblocks * 8 + order.word_pos(nblocks, b, e / 4)];
            let q = (w >> (8 * (e % 4))) as u8 as i8;
            let d = f32::from_bits(words[ds_base + 2 * (c * nblocks + b)]);
            out[c * ncols + i] = d * f32::from(q);
        }
    }
    out
}

/// The Q8 decode product (quantize_q8 then matvec_q8, integer dot products) for every quantized
/// format against two oracles: the f64 product of the CPU-dequantized weights with x as the
/// kernel reads it (decoded from the Q8 scratch; tight: only f32 summation differs), and with x
/// itself (loose: the
/// 8-bit rounding of x is the whole difference, NMSE about 1e-5). Batches of 1, 3 and 16 with
/// strided x, accumulate and GLU; x quantized in the product's word order (batches: the
/// format's), with whole chunks and a partial one; the GLU's own Q8 output in each order in
/// turn; 16-vector products (and Q8_0 batches) with the activations staged in shared memory.
/// Runs where the device has integer dot products (Vulkan 1.3: lavapipe and the H100 both do);
/// elsewhere it says so.
/// One product case on Q8 activations: random weights of `ty` (`nrows` x `ncols`), `n` random
/// vectors (from element 2, stride `ncols + 5`) and a random y (stride `out_rows + 1`), all
/// uploaded, and a scratch for the vectors' Q8 form in `Q8Order::for_product(ty, n)`.
struct Q8Case {
    ncols: usize,
    nrows: usize,
    n: usize,
    out: Output,
    order: Q8Order,
    out_rows: usize,
    ys: usize,
    wv: Vec<f32>,
    x: Vec<f32>,
    xs: usize,
    y0: Vec<f32>,
    w: WeightMatrix,
    xb: rawrxd::engine::vulkan::GpuBuffer,
    yb: rawrxd::engine::vulkan::GpuBuffer,
    xq: rawrxd::engine::vulkan::GpuBuffer,
}

impl Q8Case {
    #[allow(clippy::too_many_arguments)]
    fn new(
        h: &vulkan_support::Harness,
        rng: &mut Rng,
        ty: GgmlType,
        ncols: usize,
        nrows: usize,
        n: usize,
        out: Output,
    ) -> Self {
        use rawrxd::engine::vulkan::kernels::matvec_q8;
        let (wb, wv) = random_quant(rng, ty, ncols, nrows);
        let out_rows = if out == Output::Glu { nrows / 2 } else { nrows };
        let (xs, ys) = (ncols + 5, out_rows + 1);
        let x: Vec<f32> = rng.vec(n * xs).iter().map(|v| v * 4.0).collect();
        let y0 = rng.vec(n * ys);
        let xq = h
            .gpu
            .buffer(
                matvec_q8::q8_bytes(ncols, n),
                rawrxd::engine::vulkan::MemoryClass::Readback,
            )
            .unwrap();
        Q8Case {
            ncols,
            nrows,
            n,
            out,
            order: Q8Order::for_product(ty, n),
            out_rows,
            ys,
            w: WeightMatrix::upload(&h.gpu, ty, ncols, &[&wb]).unwrap(),
            xb: h.upload_f32(&x),
            yb: h.upload_f32(&y0),
            xq,
            wv,
            x,
            xs,
            y0,
        }
    }

    /// Records quantize_q8 of the vectors into the scratch.
    fn quantize(
        &self,
        h: &vulkan_support::Harness,
        rec: &mut rawrxd::engine::vulkan::Recorder,
        descs: &mut rawrxd::engine::vulkan::DescriptorCache,
    ) {
        let xa = Act {
            range: self.xb.range(),
            off: 2,
            stride: self.xs,
        };
        rawrxd::engine::vulkan::kernels::matvec_q8::quantize_q8(
            &h.gpu,
            rec,
            descs,
            xa,
            self.ncols,
            self.n,
            self.xq.range(),
            self.order,
        )
        .unwrap();
    }

    /// y as the products write it.
    fn y(&self) -> Act {
        Act::packed(self.yb.range(), self.ys)
    }

    /// The vectors as f32 (the second oracle's input).
    fn x_f32(&self) -> Vec<f32> {
        (0..self.n)
            .flat_map(|t| self.x[2 + t * self.xs..][..self.ncols].to_vec())
            .collect()
    }

    /// The vectors as the scratch holds them, decoded.
    fn x_q8(&self, h: &vulkan_support::Harness) -> Vec<f32> {
        q8_decode(&h.download_u32(&self.xq), self.ncols, self.n, self.order)
    }

    /// y after the product, in f64 from the decoded weights and `xv` (`n` packed vectors).
    fn want(&self, xv: &[f32]) -> Vec<f32> {
        let (nrows, out_rows, ys) = (self.nrows, self.out_rows, self.ys);
        let prod = ref_matmul(&self.wv, self.ncols, nrows, xv, self.ncols, self.n);
        let mut want = self.y0.clone();
        for t in 0..self.n {
            for r in 0..out_rows {
                let p = prod[t * nrows + r];
                want[t * ys + r] = match self.out {
                    Output::Store => p,
                    Output::Accumulate => self.y0[t * ys + r] as f64 + p,
                    Output::Glu => silu(p) * prod[t * nrows + out_rows + r],
                } as f32;
            }
        }
        want
    }
}

#[test]
fn matvec_q8_matches_cpu_on_q8_activations() {
    use rawrxd::engine::vulkan::kernels::matvec_q8;
    let Some(h) = harness() else { return };
    if !matvec_q8::has_matvec_q8(&h.gpu, GgmlType::Q4K) {
        // Where the device has the integer dot products, a missing route means a matvec_q8
        // variant failed to compile (build.rs only warns: the variants are optional for older
        // glslc), and the Q8 route would go untested.
        let caps = h.gpu.caps();
        let off = std::env::var("RAWRXD_INTDOT").is_ok_and(|v| v.trim() == "0");
        assert!(
            off || caps.integer_dot_product.is_none()
                || caps.api_version_raw < ash::vk::API_VERSION_1_3,
            "{} has integer dot products but no matvec_q8 route: see the build's shader warnings",
            caps.name
        );
        eprintln!(
            "matvec_q8_matches_cpu_on_q8_activations: {} has no integer dot products (or RAWRXD_INTDOT=0); nothing to check",
            h.gpu.caps().name
        );
        h.finish();
        return;
    }
    let mut rng = Rng::new(14);
    for (ti, ty) in QUANT_TYPES.into_iter().enumerate() {
        // 24 blocks (K-quants: three 8-block chunks, one 16-block chunk and a partial one) or 11.
        let ncols = if ty.is_k_quant() { 768 } else { 352 };
        for (ci, (nrows, n, out)) in [
            (7usize, 1usize, Output::Store),
            (66, 3, Output::Accumulate),
            (66, 16, Output::Store),
            (1100, 2, Output::Glu),
            (70, 5, Output::Glu),
            (70, 16, Output::Glu),
        ]
        .into_iter()
        .enumerate()
        {
            let out_order = Q8Order::ALL[(ti + ci) % Q8Order::ALL.len()];
            let case = Q8Case::new(&h, &mut rng, ty, ncols, nrows, n, out);
            let (out_rows, w, xq) = (case.out_rows, &case.w, &case.xq);
            // Counters for the GLU's 32-row blocks, left zeroed by every dispatch.
            let counters = h.zeros(out_rows.div_ceil(32));
            let (mut rec, mut descs) = h.recorder();
            rec.begin().unwrap();
            case.quantize(&h, &mut rec, &mut descs);
            let ya = case.y();
            // GLU products may also write their output's Q8 form: it must equal quantize_q8 of
            // the f32 output, byte for byte.
            let glu_q8 = (out == Output::Glu).then(|| q8_pair(&h, out_rows, n));
            match &glu_q8 {
                Some((fused, apart)) => {
                    matvec_q8::matvec_q8_glu_into(
                        &h.gpu,
                        &mut rec,
                        &mut descs,
                        w,
                        xq.range(),
                        ya,
                        n,
                        fused.range(),
                        out_order,
                        counters.range(),
                    )
                    .unwrap();
                    matvec_q8::quantize_q8(
                        &h.gpu,
                        &mut rec,
                        &mut descs,
                        ya,
                        out_rows,
                        n,
                        apart.range(),
                        out_order,
                    )
                    .unwrap();
                }
                None => {
                    matvec_q8::matvec_q8(&h.gpu, &mut rec, &mut descs, w, xq.range(), ya, n, out)
                        .unwrap()
                }
            }
            rec.submit_wait().unwrap();
            if let Some((fused, apart)) = &glu_q8 {
                assert_same_q8(
                    fused,
                    apart,
                    &format!("matvec_q8 {ty} GLU Q8 output in {out_order:?}"),
                );
            }
            assert_counters_zero(&h, &counters, &format!("matvec_q8 {ty}"));
            let got = h.download_f32(&case.yb);
            for (oracle, bound) in [(case.x_q8(&h), 1e-9), (case.x_f32(), 2e-3)] {
                let want = case.want(&oracle);
                let what = if bound < 1e-6 { "q8 x" } else { "f32 x" };
                assert_close(
                    &format!("matvec_q8 {ty} {out:?} {nrows}x{ncols} n={n} vs {what}"),
                    &got,
                    &want,
                    bound,
                );
            }
        }
    }
    h.finish();
}

/// matmul_q8.comp (batched products on integer tiles) against the same f64 oracle as
/// matvec_q8: the product of the decoded weights and the decoded Q8 activations. Every
/// quantized format (Q2_K's mins from a second tile product); 1 ..= 16 vectors (partial 8-vector
/// tiles); rows that do not fill a 16-row tile; vectors of 11 blocks (a partial 8-block step) and K-quant
/// rows of 24 blocks (3 steps: with 4 warps one idles); store, accumulate and GLU. The emulated tiles run everywhere the
/// integer dot products do (lavapipe in CI); the tensor-core tiles where the device has them.
#[test]
fn matmul_q8_matches_cpu_on_q8_activations() {
    use rawrxd::engine::vulkan::kernels::matmul_q8::{self, Tiles};
    use rawrxd::engine::vulkan::kernels::matvec_q8;
    let Some(h) = harness() else { return };
    let mut modes = Vec::new();
    if matmul_q8::has_emulated(&h.gpu, GgmlType::Q4K) {
        modes.push(Tiles::Emulated);
    }
    if h.gpu.caps().nv_coopmat_s8_16x8x32() {
        assert!(
            matmul_q8::has_tensor_tiles(&h.gpu, GgmlType::Q4K),
            "{} has integer tensor-core tiles but this build has no matmul_q8 tensor variant",
            h.gpu.caps().name
        );
        modes.push(Tiles::Tensor);
    }
    if modes.is_empty() {
        // Devices with integer dot products always have the emulated build (no extension
        // beyond matvec_q8's), so this is a device without them.
        assert!(
            !matvec_q8::has_matvec_q8(&h.gpu, GgmlType::Q4K),
            "{} runs matvec_q8 but has no matmul_q8 variant: see the build's shader warnings",
            h.gpu.caps().name
        );
        eprintln!(
            "matmul_q8_matches_cpu_on_q8_activations: {} has no integer dot products; nothing to check",
            h.gpu.caps().name
        );
        h.finish();
        return;
    }
    let mut rng = Rng::new(15);
    let cases = [
        (33usize, 2usize, Output::Store),
        (66, 5, Output::Accumulate),
        (40, 8, Output::Store),
        (70, 9, Output::Glu),
        (1100, 16, Output::Glu),
        (50, 1, Output::Accumulate),
    ];
    for tiles in modes {
        for (ti, ty) in QUANT_TYPES.into_iter().enumerate() {
            assert!(matmul_q8::available(&h.gpu, tiles, ty), "{tiles:?} {ty}");
            let ncols = if ty.is_k_quant() { 768 } else { 352 };
            // Each case is its own pipeline: two a format (every case for some formats, the
            // store, accumulate and GLU forms for each), and for the K-quants one of 8192
            // columns (32 steps: four a warp) and a GLU whose halves are whole 16-row tiles,
            // these two and the second case from a copy in tile order (`WeightPiece::tile_order`).
            let with_cols = |(nrows, n, out): (usize, usize, Output)| (nrows, n, out, ncols, false);
            let mut picked = vec![with_cols(cases[ti % 6]), with_cols(cases[(ti + 3) % 6])];
            if ty.is_k_quant() {
                picked[1].4 = true;
                picked.push((40, 12, Output::Accumulate, 8192, true));
                picked.push((96, 11, Output::Glu, ncols, true));
                // Q2_K: the 8192-column case also in place (rows 16-aligned, blocks not).
                if ty == GgmlType::Q2K {
                    picked.push((40, 12, Output::Accumulate, 8192, false));
                }
            }
            for (nrows, n, out, ncols, tile_order) in picked {
                let mut case = Q8Case::new(&h, &mut rng, ty, ncols, nrows, n, out);
                if tile_order {
                    let wb = case.w.download_rows(&h.gpu, 0, nrows).unwrap();
                    case.w = WeightMatrix::upload_with_tile_order(&h.gpu, ty, ncols, &[&wb], true)
                        .unwrap();
                    assert!(case.w.has_tile_order(), "{ty} has a tile order");
                }
                let (mut rec, mut descs) = h.recorder();
                rec.begin().unwrap();
                case.quantize(&h, &mut rec, &mut descs);
                matmul_q8::matmul_q8(
                    &h.gpu,
                    &mut rec,
                    &mut descs,
                    &case.w,
                    case.xq.range(),
                    case.y(),
                    n,
                    out,
                    tiles,
                )
                .unwrap();
                rec.submit_wait().unwrap();
                let got = h.download_f32(&case.yb);
                let want = case.want(&case.x_q8(&h));
                assert_close(
                    &format!(
                        "matmul_q8 {tiles:?} {ty} {out:?} {nrows}x{ncols} n={n} tile order \
                         {tile_order}"
                    ),
                    &got,
                    &want,
                    1e-9,
                );
            }
        }
    }
    h.finish();
}

/// quantize_q8 in every word order against a CPU quantizer (ggml's Q8_1 rounding: d = max|x| /
/// 127, q = round(x / d) half away from zero, the pair (d, d * sum q)) placed by
/// `Q8Order::word_pos`: the shader's order is the documented one, the pairs stay in block order.
/// Two vectors of 25 blocks (whole chunks and a partial one; the last block partial).
#[test]
fn quantize_q8_lays_out_each_word_order() {
    use rawrxd::engine::vulkan::kernels::matvec_q8;
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(16);
    let (ncols, n) = (790usize, 2usize);
    let nblocks = ncols.div_ceil(32);
    let x: Vec<f32> = rng.vec(n * ncols).iter().map(|v| v * 5.0).collect();
    let xb = h.upload_f32(&x);
    // The CPU form: quant words and pairs of each vector's blocks, in block order.
    let mut words = vec![[0u32; 8]; n * nblocks];
    let mut pairs = vec![[0f32; 2]; n * nblocks];
    for c in 0..n {
        for b in 0..nblocks {
            let v: Vec<f32> = (0..32)
                .map(|k| {
                    x.get(c * ncols + 32 * b + k)
                        .copied()
                        .filter(|_| 32 * b + k < ncols)
                })
                .map(|v| v.unwrap_or(0.0))
                .collect();
            let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let q: Vec<i32> = v.iter().map(|x| (x * id).round() as i32).collect();
            for (wd, four) in q.chunks(4).enumerate() {
                words[c * nblocks + b][wd] = four
                    .iter()
                    .enumerate()
                    .fold(0u32, |w, (j, &q)| w | ((q as u32 & 0xFF) << (8 * j)));
            }
            pairs[c * nblocks + b] = [d, d * q.iter().sum::<i32>() as f32];
        }
    }
    for order in Q8Order::ALL {
        let out = h
            .gpu
            .buffer(
                matvec_q8::q8_bytes(ncols, n),
                rawrxd::engine::vulkan::MemoryClass::Readback,
            )
            .unwrap();
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        let xa = Act::packed(xb.range(), ncols);
        matvec_q8::quantize_q8(
            &h.gpu,
            &mut rec,
            &mut descs,
            xa,
            ncols,
            n,
            out.range(),
            order,
        )
        .unwrap();
        rec.submit_wait().unwrap();
        let got = h.download_u32(&out);
        let ds_base = n * nblocks * 8;
        for c in 0..n {
            for b in 0..nblocks {
                for (wd, &want) in words[c * nblocks + b].iter().enumerate() {
                    let at = c * nblocks * 8 + order.word_pos(nblocks, b, wd);
                    assert_eq!(got[at], want, "{order:?} vector {c} block {b} word {wd}");
                }
                // GLSL's division may be off by an ulp or two: the pair to 1e-6.
                let i = ds_base + 2 * (c * nblocks + b);
                let want = pairs[c * nblocks + b];
                for (k, w) in want.into_iter().enumerate() {
                    let g = f32::from_bits(got[i + k]);
                    assert!(
                        (g - w).abs() <= 1e-6 * w.abs(),
                        "{order:?} vector {c} block {b} pair: {g} vs {w}"
                    );
                }
            }
        }
    }
    h.finish();
}

/// rmsnorm_q8 (the norm that also writes Q8 activations) writes the same f32 rows as rmsnorm and
/// the same bytes as quantize_q8 run on those rows (batch of 3, a width with a partial block,
/// word orders with and without partial chunks).
#[test]
fn rms_norm_q8_equals_norm_then_quantize() {
    use rawrxd::engine::vulkan::kernels::matvec_q8;
    let Some(h) = harness() else { return };
    let mut rng = Rng::new(15);
    for (n, order) in [
        (576usize, Q8Order::KQuads),
        (1000, Q8Order::Halves),
        (1000, Q8Order::Q6K),
        // Rows wider than one pass of the workgroup (4 elements an invocation).
        (8288, Q8Order::Halves),
    ] {
        let rows = 3;
        let x: Vec<f32> = rng.vec(rows * n).iter().map(|v| v * 3.0).collect();
        let w = rng.vec(n);
        let xb = h.upload_f32(&x);
        let wb = h.upload_f32(&w);
        let (ya, yb) = (h.zeros(rows * n), h.zeros(rows * n));
        let (qb, qa) = q8_pair(&h, n, rows);
        let (mut rec, mut descs) = h.recorder();
        rec.begin().unwrap();
        let xa = Act::packed(xb.range(), n);
        norm::rms_norm(
            &h.gpu,
            &mut rec,
            &mut descs,
            xa,
            wb.range(),
            Act::packed(ya.range(), n),
            n,
            rows,
            1e-5,
        )
        .unwrap();
        matvec_q8::quantize_q8(
            &h.gpu,
            &mut rec,
            &mut descs,
            Act::packed(ya.range(), n),
            n,
            rows,
            qa.range(),
            order,
        )
        .unwrap();
        norm::rms_norm_into(
            &h.gpu,
            &mut rec,
            &mut descs,
            xa,
            wb.range(),
            Act::packed(yb.range(), n),
            n,
            rows,
            1e-5,
            Some((qb.range(), order)),
        )
        .unwrap();
        rec.submit_wait().unwrap();
        assert_eq!(
            h.download_f32(&ya),
            h.download_f32(&yb),
            "rmsnorm_q8 f32 n={n}"
        );
        assert_same_q8(&qb, &qa, &format!("rmsnorm_q8 quants n={n} {order:?}"));
    }
    h.finish();
}
