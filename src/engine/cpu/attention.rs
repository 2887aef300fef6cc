//! Causal grouped-query attention over the KV cache.
//!
//! Invariants: query rows are `[n_tok, n_head × head_dim]`, token `t` sits at position `pos + t`
//! and attends to cached positions `0..=pos + t`; query head `h` reads KV head
//! `h / (n_head / n_head_kv)` (llama.cpp's GQA broadcast). Scores are `(q·k) / sqrt(head_dim)`,
//! then a softmax ([`ops::softmax`]) and the weighted sum of values. Each (token, head) is one
//! independent task, so results do not depend on the batch split or thread count.
//! [`attention_f16_online`] is the same computation with llama.cpp's f16 roundings (numerics
//! `ggml`, small batches).

use rayon::prelude::*;

use super::ops;

/// Shape of the attention computation.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Writes the attention output of `q` (`[n_tok, n_head × head_dim]`, tokens at `pos..`) against
/// `keys`/`values` (`[>= pos + n_tok, n_head_kv × head_dim]`) into `out` (shaped like `q`).
pub fn attention(
    s: AttnShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    pos: usize,
    out: &mut [f32],
) {
    let (hd, nh) = (s.head_dim, s.n_head);
    let group = s.n_head / s.n_head_kv;
    let kv_w = s.n_head_kv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Vec::new, |scores: &mut Vec<f32>, (i, o)| {
            let (t, h) = (i / nh, i % nh);
            let kvh = h / group;
            let qh = &q[i * hd..(i + 1) * hd];
            let n_keys = pos + t + 1;
            scores.clear();
            scores.extend((0..n_keys).map(|j| {
                let k = &keys[j * kv_w + kvh * hd..j * kv_w + (kvh + 1) * hd];
                ops::dot(qh, k) * scale
            }));
            ops::softmax(scores);
            o.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                ops::axpy(
                    o,
                    p,
                    &values[j * kv_w + kvh * hd..j * kv_w + (kvh + 1) * hd],
                );
            }
        });
}

/// llama.cpp's CPU flash attention for fewer than 64 query rows over an f16 cache
/// (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`): each query row is rounded to f16, each
/// score is an f32 dot of f16 values times the scale, and the softmax-weighted sum of values runs
/// online (a running maximum `M` and sum `S`) in an f16 accumulator that is rescaled whenever the
/// maximum grows; the result is the accumulator over `S`. `keys`/`values` hold f16-rounded values.
/// Same shapes and task split as [`attention`].
pub fn attention_f16_online(
    s: AttnShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    pos: usize,
    out: &mut [f32],
) {
    let f16 = |v: f32| half::f16::from_f32(v).to_f32();
    let (hd, nh) = (s.head_dim, s.n_head);
    let group = s.n_head / s.n_head_kv;
    let kv_w = s.n_head_kv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Vec::new, |qh: &mut Vec<f32>, (i, o)| {
            let (t, h) = (i / nh, i % nh);
            let kvh = h / group;
            qh.clear();
            qh.extend(q[i * hd..(i + 1) * hd].iter().map(|&v| f16(v)));
            let (mut m, mut sum) = (f32::NEG_INFINITY, 0f32);
            o.fill(0.0);
            for j in 0..pos + t + 1 {
                let row = j * kv_w + kvh * hd..j * kv_w + (kvh + 1) * hd;
                let sc = ops::dot(qh, &keys[row.clone()]) * scale;
                let (mut ms, mut vs) = (1f32, 1f32);
                if sc > m {
                    ms = (m - sc).exp();
                    m = sc;
                    o.iter_mut().for_each(|a| *a = f16(*a * ms));
                } else {
                    vs = (sc - m).exp();
                }
                for (a, &v) in o.iter_mut().zip(&values[row]) {
                    *a = f16(v.mul_add(vs, *a));
                }
                sum = sum * ms + vs;
            }
            let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
            o.iter_mut().for_each(|a| *a *= inv);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16(v: f32) -> f32 {
        half::f16::from_f32(v).to_f32()
    }

    #[test]
    fn online_f16_attention_rounds_queries_and_the_accumulator() {
        let s = AttnShape {
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
        };
        // One cached position: softmax weight 1, so the output is that value row, exactly (an
        // f16 value times 1 added to 0, over S = 1).
        let v: Vec<f32> = [0.1f32, -0.2, 0.3, 1.0e-3]
            .iter()
            .map(|&x| f16(x))
            .collect();
        let k: Vec<f32> = [0.5f32, 0.25, -1.0, 2.0].to_vec();
        let q = [0.3f32, 0.1, -0.7, 0.2, 1.0, 0.0, 0.0, -1.0];
        let mut out = [0f32; 8];
        attention_f16_online(s, &q, &k, &v, 0, &mut out);
        assert_eq!(&out[..4], &v[..]);
        assert_eq!(&out[4..], &v[..]);

        // Two tokens at positions 0 and 1 with zero keys: token 1 weighs both values by 1/2.
        // The online path accumulates f16(v0 + v1) before dividing by S = 2; the f32 reference
        // keeps every bit of the sum.
        let k2 = [0.0f32; 8];
        let v1 = f16(1.0e-3);
        let v2 = [1.0f32, 0.0, 0.0, 0.0, v1, 0.0, 0.0, 0.0];
        let q2 = [q, q].concat();
        let (mut ggml, mut reference) = ([0f32; 16], [0f32; 16]);
        attention_f16_online(s, &q2, &k2, &v2, 0, &mut ggml);
        attention(s, &q2, &k2, &v2, 0, &mut reference);
        assert_eq!(ggml[8], f16(1.0 + v1) * 0.5);
        assert_eq!(ggml[8], 0.500_488_3); // (1 + 2^-10) / 2
        assert!((reference[8] - 0.5 * (1.0 + v1)).abs() < 1e-7);
        assert!(ggml[8] != reference[8]);
    }
}
