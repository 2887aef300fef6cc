//! The CPU engine end to end: synthetic models against a naive f64 forward pass, incremental
//! decode against prefill, and the SmolLM2 test model against llama.cpp's own outputs
//! (tests/fixtures/llama_cpp, see its README).

mod common;

use std::sync::Arc;

use common::{test_model, Synth, SynthTensor};
use rawrxd::engine::{perplexity, CpuEngine, Engine, PerplexityParams};
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::quant::GgmlType;

// ---------------------------------------------------------------------------------------------
// A naive forward pass in f64, written from the model's definition, not from the engine.

fn f64s(t: &SynthTensor) -> Vec<f64> {
    t.values.iter().map(|&v| v as f64).collect()
}

/// `W x` for a ggml `[n_in, n_out]` matrix.
fn matvec(w: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn rms_norm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    x.iter()
        .zip(w)
        .map(|(v, w)| v / (ms + eps).sqrt() * w)
        .collect()
}

fn rope(x: &mut [f64], head_dim: usize, n_rot: usize, base: f64, pos: usize, neox: bool) {
    for h in x.chunks_mut(head_dim) {
        for i in 0..n_rot / 2 {
            let th = pos as f64 * base.powf(-2.0 * i as f64 / n_rot as f64);
            let (a, b) = if neox {
                (i, i + n_rot / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (x0, x1) = (h[a], h[b]);
            h[a] = x0 * th.cos() - x1 * th.sin();
            h[b] = x0 * th.sin() + x1 * th.cos();
        }
    }
}

/// Logits of every position of `tokens`, `[n][n_vocab]`.
fn reference_forward(s: &Synth, ts: &[SynthTensor], tokens: &[u32]) -> Vec<Vec<f64>> {
    let get = |name: &str| f64s(ts.iter().find(|t| t.name == name).expect(name));
    let (e, hd) = (s.n_embd, s.n_embd / s.n_head);
    let neox = s.arch == "qwen2";
    let emb = get("token_embd.weight");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| emb[t as usize * e..(t as usize + 1) * e].to_vec())
        .collect();
    for l in 0..s.n_layer {
        let w = |n: &str| get(&format!("blk.{l}.{n}"));
        let (wq, wk, wv, wo) = (
            w("attn_q.weight"),
            w("attn_k.weight"),
            w("attn_v.weight"),
            w("attn_output.weight"),
        );
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (p, x) in xs.iter().enumerate() {
            let xn = rms_norm(x, &w("attn_norm.weight"), s.eps as f64);
            let (mut q, mut k, mut v) = (matvec(&wq, &xn), matvec(&wk, &xn), matvec(&wv, &xn));
            if s.bias {
                for (y, b) in [
                    (&mut q, "attn_q.bias"),
                    (&mut k, "attn_k.bias"),
                    (&mut v, "attn_v.bias"),
                ] {
                    for (yi, bi) in y.iter_mut().zip(w(b)) {
                        *yi += bi;
                    }
                }
            }
            rope(&mut q, hd, s.n_rot, s.freq_base as f64, p, neox);
            rope(&mut k, hd, s.n_rot, s.freq_base as f64, p, neox);
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        for p in 0..xs.len() {
            let mut att = vec![0f64; e];
            for h in 0..s.n_head {
                let g = h * s.n_head_kv / s.n_head;
                let sc: Vec<f64> = (0..=p)
                    .map(|j| {
                        (0..hd)
                            .map(|i| qs[p][h * hd + i] * ks[j][g * hd + i])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = sc.iter().map(|v| (v - m).exp()).sum();
                for (j, v) in sc.iter().enumerate() {
                    for i in 0..hd {
                        att[h * hd + i] += (v - m).exp() / z * vs[j][g * hd + i];
                    }
                }
            }
            let o = matvec(&wo, &att);
            for (xi, oi) in xs[p].iter_mut().zip(o) {
                *xi += oi;
            }
            let xn = rms_norm(&xs[p], &w("ffn_norm.weight"), s.eps as f64);
            let g = matvec(&w("ffn_gate.weight"), &xn);
            let u = matvec(&w("ffn_up.weight"), &xn);
            let hsw: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = matvec(&w("ffn_down.weight"), &hsw);
            for (xi, di) in xs[p].iter_mut().zip(d) {
                *xi += di;
            }
        }
    }
    let out = if s.untied { get("output.weight") } else { emb };
    xs.iter()
        .map(|x| matvec(&out, &rms_norm(x, &get("output_norm.weight"), s.eps as f64)))
        .collect()
}

fn llama_synth() -> Synth {
    Synth {
        arch: "llama",
        n_vocab: 61,
        n_embd: 64,
        n_layer: 2,
        n_head: 4,
        n_head_kv: 2,
        n_ff: 96,
        n_rot: 16,
        freq_base: 10000.0,
        eps: 1e-5,
        bias: false,
        untied: false,
        ty: GgmlType::Q4_0,
    }
}

fn qwen2_synth() -> Synth {
    Synth {
        arch: "qwen2",
        n_head: 8,
        n_head_kv: 2,
        n_rot: 8,
        freq_base: 1_000_000.0,
        eps: 1e-6,
        bias: true,
        untied: true,
        ty: GgmlType::Q8_0,
        ..llama_synth()
    }
}

/// A llama variant whose RoPE rotates only part of each head.
fn partial_rope_synth() -> Synth {
    Synth {
        n_rot: 8,
        ty: GgmlType::F16,
        ..llama_synth()
    }
}

fn load_synth(s: &Synth, seed: u64) -> (CpuEngine, Vec<SynthTensor>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.gguf");
    let ts = s.write(&path, seed);
    let f = GgufFile::open(&path).unwrap();
    (CpuEngine::load(f, 64, Some(2)).unwrap(), ts, dir)
}

const TOKENS: [u32; 12] = [3, 17, 60, 0, 42, 42, 7, 59, 1, 33, 20, 11];

#[test]
fn synthetic_models_match_naive_forward() {
    for s in [llama_synth(), qwen2_synth(), partial_rope_synth()] {
        let (mut eng, ts, _dir) = load_synth(&s, 11);
        let got = eng.forward(&TOKENS, 0, true).unwrap();
        let want = reference_forward(&s, &ts, &TOKENS);
        let nv = s.n_vocab;
        let mut worst = 0f64;
        for (p, w) in want.iter().enumerate() {
            for (i, &wv) in w.iter().enumerate() {
                let g = got[p * nv + i] as f64;
                worst = worst.max((g - wv).abs() / (1.0 + wv.abs()));
            }
        }
        assert!(
            worst < 1e-4,
            "{}: worst relative logit error {worst}",
            s.arch
        );
        // Sanity of the oracle itself: the logits are not trivially small.
        let spread = want[5].iter().cloned().fold(f64::MIN, f64::max)
            - want[5].iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 1.0, "{}: degenerate synthetic model", s.arch);
    }
}

/// Feeding tokens one at a time (and in uneven batches) gives the same logits as one prefill.
fn check_incremental(eng: &mut dyn Engine, tokens: &[u32]) {
    let nv = eng.hparams().n_vocab;
    eng.reset();
    let all = eng.forward(tokens, 0, true).unwrap();
    eng.reset();
    for (p, &t) in tokens.iter().enumerate() {
        let one = eng.forward(&[t], p, false).unwrap();
        assert_eq!(
            one,
            all[p * nv..(p + 1) * nv],
            "position {p}: one-by-one differs"
        );
    }
    // Uneven batches, last-token logits only.
    eng.reset();
    let mut p = 0;
    for n in [3, 1, 4, 2] {
        let n = n.min(tokens.len() - p);
        if n == 0 {
            break;
        }
        let last = eng.forward(&tokens[p..p + n], p, false).unwrap();
        p += n;
        assert_eq!(
            last,
            all[(p - 1) * nv..p * nv],
            "batch ending at {p} differs"
        );
    }
    // Rewinding: recompute the last three positions.
    let back = tokens.len() - 3;
    let again = eng.forward(&tokens[back..], back, true).unwrap();
    if p == tokens.len() {
        assert_eq!(again, all[back * nv..]);
    }
}

#[test]
fn synthetic_incremental_decode_equals_prefill() {
    for s in [llama_synth(), qwen2_synth()] {
        let (mut eng, _, _dir) = load_synth(&s, 5);
        check_incremental(&mut eng, &TOKENS[..10]);
    }
}

#[test]
fn forward_rejects_bad_calls() {
    let (mut eng, _, _dir) = load_synth(&llama_synth(), 1);
    let n_ctx = eng.n_ctx();
    assert!(eng.forward(&[], 0, false).is_err(), "no tokens");
    assert!(eng.forward(&[1], 1, false).is_err(), "gap before pos");
    assert!(
        eng.forward(&[61], 0, false).is_err(),
        "token outside the vocabulary"
    );
    let full: Vec<u32> = (0..n_ctx as u32).map(|i| i % 61).collect();
    eng.forward(&full, 0, false).unwrap();
    let err = eng.forward(&[1], n_ctx, false).unwrap_err();
    assert!(err.to_string().contains("context full"), "{err}");
    let err = eng.forward(&[1, 2], n_ctx - 1, false).unwrap_err();
    assert!(err.to_string().contains("context full"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The real model against llama.cpp.

fn fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama_cpp")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn argmax(v: &[f32]) -> u32 {
    let mut b = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[b] {
            b = i;
        }
    }
    b as u32
}

fn smollm2(n_ctx: usize) -> Option<CpuEngine> {
    let path = test_model()?;
    let f = Arc::new(GgufFile::open(path).unwrap());
    Some(CpuEngine::load(f, n_ctx, None).unwrap())
}

#[test]
fn smollm2_incremental_decode_equals_prefill() {
    let Some(mut eng) = smollm2(32) else { return };
    check_incremental(
        &mut eng,
        &[504, 3575, 282, 4649, 314, 7042, 30, 198, 198, 504, 2988],
    );
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    let Some(mut eng) = smollm2(128) else { return };
    let tok = Tokenizer::from_gguf(eng.file()).unwrap();
    let eos = eng.file().get_u64("tokenizer.ggml.eos_token_id").unwrap() as u32;
    assert!(tok.is_eog(eos));
    for case in fixture("greedy_smollm2_q4_1.json").as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let text = case["prompt"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true, true).unwrap(),
            prompt,
            "llama-tokenize ids"
        );
        let n = case["n_predict"].as_u64().unwrap() as usize;
        eng.reset();
        let mut logits = eng.forward(&prompt, 0, false).unwrap();
        let mut out = Vec::new();
        while out.len() < n {
            let t = argmax(&logits);
            out.push(t);
            if t == eos {
                break;
            }
            logits = eng
                .forward(&[t], prompt.len() + out.len() - 1, false)
                .unwrap();
        }
        // llama.cpp on the same weights dequantized to F32 with an f32 KV cache computes what we
        // compute: the continuation is identical, down to the end-of-generation.
        let exact = &case["f32_model"];
        let mut want = ids(&exact["ids"]);
        if exact["stopped_at_eog"].as_bool().unwrap() {
            want.push(eos);
        }
        assert_eq!(
            out, want,
            "prompt {:?} vs {}",
            case["prompt"], exact["command"]
        );
        // llama.cpp's quantized-activation paths on the Q4_1 file agree on the first tokens
        // (" Paris.\n\nThe", " Emma who loved to play in the sun. She") before a near-tie.
        for k in ["f32_kv", "default"] {
            let other = ids(&case[k]["ids"]);
            let common = out.iter().zip(&other).take_while(|(a, b)| a == b).count();
            assert!(
                common >= 5,
                "only {common} tokens agree with {}",
                case[k]["command"]
            );
        }
    }
}

#[test]
fn smollm2_perplexity_matches_llama_perplexity() {
    let fx = fixture("perplexity_smollm2_q4_1.json");
    let n_ctx = fx["n_ctx"].as_u64().unwrap() as usize;
    let Some(mut eng) = smollm2(n_ctx) else {
        return;
    };
    // Tokenized as llama-perplexity does (`-f` drops one trailing newline; BOS per the vocab),
    // and equal to llama-tokenize's ids over the chunks evaluated.
    let tok = Tokenizer::from_gguf(eng.file()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let tokens = tok
        .encode(text.strip_suffix('\n').unwrap_or(&text), true, false)
        .unwrap();
    let llama = ids(&fixture("eval_txt_tokens_smollm2.json")["ids"]);
    assert_eq!(tokens[..4 * n_ctx], llama[..4 * n_ctx]);
    assert!(!tok.adds_bos());
    let params = PerplexityParams {
        n_ctx,
        n_chunks: Some(fx["n_chunks"].as_u64().unwrap() as usize),
        bos: None, // SmolLM2 does not add BOS
    };
    let r = perplexity(&mut eng, &tokens, &params, None, &mut |_, _| {}).unwrap();
    let run = |k: &str| &fx["runs"][k];
    let rel = |a: f64, b: f64| (a - b).abs() / b;

    // Same arithmetic as llama.cpp on the model dequantized to F32 with an f32 KV cache: equal to
    // the printed precision, chunk by chunk.
    let exact = run("f32_model");
    for (i, (&got, want)) in r
        .chunk_ppl
        .iter()
        .zip(exact["chunk_ppl"].as_array().unwrap())
        .enumerate()
    {
        let want = want.as_f64().unwrap();
        assert!(rel(got, want) < 1e-5, "chunk {i}: {got} vs {want}");
    }
    assert!(
        rel(r.ppl.value, exact["ppl"].as_f64().unwrap()) < 1e-5,
        "{:?}",
        r.ppl
    );
    assert!(
        rel(r.ppl.err, exact["ppl_err"].as_f64().unwrap()) < 1e-4,
        "{:?}",
        r.ppl
    );
    // llama.cpp's own quantized-activation paths land within 0.5%.
    for k in ["default", "f32_kv"] {
        let want = run(k)["ppl"].as_f64().unwrap();
        assert!(
            rel(r.ppl.value, want) < 0.005,
            "{k}: {} vs {want}",
            r.ppl.value
        );
    }
    assert_eq!(r.n_scored, 4 * (n_ctx - 1 - n_ctx / 2));
}
