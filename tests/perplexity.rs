//! Perplexity and KL divergence over synthetic models, against a direct computation from the
//! engine's logits (f64 log-softmax written here), and the generation loop's bookkeeping.

mod common;

use common::Synth;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rawrxd::engine::{
    generate, kl_divergence, perplexity, CpuEngine, Engine, PerplexityParams, StopReason,
};
use rawrxd::gguf::GgufFile;
use rawrxd::model::{Sampler, SamplerParams};
use rawrxd::quant::GgmlType;

fn synth(ty: GgmlType) -> Synth {
    Synth {
        arch: "llama",
        n_vocab: 50,
        n_embd: 64,
        n_layer: 2,
        n_head: 4,
        n_head_kv: 2,
        n_ff: 96,
        n_rot: 16,
        freq_base: 10000.0,
        eps: 1e-5,
        bias: false,
        untied: true,
        ty,
    }
}

fn engine(dir: &tempfile::TempDir, name: &str, ty: GgmlType, n_ctx: usize) -> CpuEngine {
    let path = dir.path().join(name);
    synth(ty).write(&path, 3);
    CpuEngine::load(GgufFile::open(&path).unwrap(), n_ctx, Some(2)).unwrap()
}

fn log_softmax(l: &[f32]) -> Vec<f64> {
    let m = l.iter().map(|&v| v as f64).fold(f64::MIN, f64::max);
    let z: f64 = l.iter().map(|&v| (v as f64 - m).exp()).sum();
    l.iter().map(|&v| v as f64 - m - z.ln()).collect()
}

fn random_tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..50)).collect()
}

#[test]
fn perplexity_scores_second_halves_with_bos_substituted() {
    let dir = tempfile::tempdir().unwrap();
    let n_ctx = 16;
    let mut eng = engine(&dir, "m.gguf", GgmlType::Q8_0, n_ctx);
    let tokens = random_tokens(3 * n_ctx + 5, 1);
    let bos = 7;
    let params = PerplexityParams {
        n_ctx,
        n_chunks: None,
        bos: Some(bos),
    };
    let mut seen = Vec::new();
    let r = perplexity(&mut eng, &tokens, &params, None, &mut |i, v| {
        seen.push((i, v))
    })
    .unwrap();

    // Direct: 3 whole chunks; BOS first; logits at positions 8..=14 predict tokens 9..=15.
    let (mut sum, mut sum2, mut n) = (0f64, 0f64, 0usize);
    let mut running = Vec::new();
    for c in 0..3 {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        chunk[0] = bos;
        eng.reset();
        let logits = eng.forward(&chunk, 0, true).unwrap();
        for j in n_ctx / 2..n_ctx - 1 {
            let lp = log_softmax(&logits[j * 50..(j + 1) * 50]);
            let nll = -lp[chunk[j + 1] as usize];
            sum += nll;
            sum2 += nll * nll;
            n += 1;
        }
        running.push((sum / n as f64).exp());
    }
    let mean = sum / n as f64;
    let ppl = mean.exp();
    let err = ((sum2 / n as f64 - mean * mean) / (n - 1) as f64).sqrt() * ppl;
    assert_eq!(r.n_chunks, 3);
    assert_eq!(r.n_scored, 21);
    assert!(
        (r.ppl.value - ppl).abs() < 1e-6 * ppl,
        "{} vs {ppl}",
        r.ppl.value
    );
    assert!(
        (r.ppl.err - err).abs() < 1e-5 * err,
        "{} vs {err}",
        r.ppl.err
    );
    assert_eq!(seen.len(), 3);
    for ((i, v), want) in seen.iter().zip(&running) {
        assert!((v - want).abs() < 1e-6 * want, "chunk {i}");
    }

    // --chunks limits, and too short a text is an error.
    let r2 = perplexity(
        &mut eng,
        &tokens,
        &PerplexityParams {
            n_chunks: Some(2),
            ..params.clone()
        },
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r2.n_chunks, 2);
    assert!((r2.chunk_ppl[1] - running[1]).abs() < 1e-6 * running[1]);
    assert!(perplexity(
        &mut eng,
        &tokens[..2 * n_ctx - 1],
        &params,
        None,
        &mut |_, _| {}
    )
    .is_err());
    // Chunks larger than the engine's context are refused.
    let big = PerplexityParams {
        n_ctx: 2 * n_ctx,
        ..params
    };
    assert!(perplexity(&mut eng, &tokens, &big, None, &mut |_, _| {}).is_err());
}

#[test]
fn kl_divergence_against_a_saved_base() {
    let dir = tempfile::tempdir().unwrap();
    let n_ctx = 16;
    let mut base = engine(&dir, "base.gguf", GgmlType::Q8_0, n_ctx);
    let mut other = engine(&dir, "other.gguf", GgmlType::Q4_0, n_ctx);
    let tokens = random_tokens(2 * n_ctx + 3, 2);
    let params = PerplexityParams {
        n_ctx,
        n_chunks: None,
        bos: None,
    };
    let file = dir.path().join("base.logprobs");
    let rb = perplexity(&mut base, &tokens, &params, Some(&file), &mut |_, _| {}).unwrap();

    // A model against its own base: no divergence, same top token everywhere.
    let same = kl_divergence(&mut base, &file, None, None, &mut |_, _| {}).unwrap();
    assert!(same.kld.value.abs() < 1e-6, "{:?}", same.kld);
    assert_eq!(same.same_top.value, 1.0);
    assert!((same.ppl.value - rb.ppl.value).abs() < 1e-4 * rb.ppl.value);
    assert!((same.ppl_base.value - rb.ppl.value).abs() < 1e-4 * rb.ppl.value);

    // Another quantization: KL(base || other) and top-token agreement computed directly.
    let r = kl_divergence(&mut other, &file, None, None, &mut |_, _| {}).unwrap();
    let (mut kl, mut agree, mut n) = (0f64, 0usize, 0usize);
    for c in 0..2 {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        base.reset();
        other.reset();
        let lb = base.forward(chunk, 0, true).unwrap();
        let lo = other.forward(chunk, 0, true).unwrap();
        for j in n_ctx / 2..n_ctx - 1 {
            let pb = log_softmax(&lb[j * 50..(j + 1) * 50]);
            let po = log_softmax(&lo[j * 50..(j + 1) * 50]);
            kl += pb
                .iter()
                .zip(&po)
                .map(|(b, o)| b.exp() * (b - o))
                .sum::<f64>();
            let top = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
            agree += (top(&pb) == top(&po)) as usize;
            n += 1;
        }
    }
    let kl = kl / n as f64;
    assert!(kl > 1e-4, "the two quantizations should differ (KL {kl})");
    assert!(
        (r.kld.value - kl).abs() < 1e-5 + 1e-4 * kl,
        "{:?} vs {kl}",
        r.kld
    );
    assert_eq!(r.same_top.value, agree as f64 / n as f64);
    assert_eq!(r.n_scored, n);

    // A base file from another vocabulary is refused; so is garbage.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a log-prob file at all").unwrap();
    assert!(kl_divergence(&mut other, &junk, None, None, &mut |_, _| {}).is_err());
}

#[test]
fn generate_stops_at_max_tokens_eog_and_full_context() {
    let dir = tempfile::tempdir().unwrap();
    let mut eng = engine(&dir, "m.gguf", GgmlType::Q8_0, 12);
    let prompt = [1, 2, 3, 4];

    // Greedy equals argmax decoding by hand.
    let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
    let mut got = Vec::new();
    let stats = generate(&mut eng, &prompt, 5, &mut sampler, &|_| false, &mut |t| {
        got.push(t);
        Ok(true)
    })
    .unwrap();
    assert_eq!(stats.stop, StopReason::MaxTokens);
    assert_eq!(
        (stats.n_prompt, stats.n_generated, stats.n_decoded),
        (4, 5, 4)
    );
    let mut seq = prompt.to_vec();
    eng.reset();
    for _ in 0..5 {
        let l = eng.forward(&seq, 0, false).unwrap();
        eng.reset();
        let best = (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b });
        seq.push(best as u32);
    }
    assert_eq!(got, seq[4..]);

    // The first EOG token stops generation and is not passed on.
    let eog = got[2];
    let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
    let mut got2 = Vec::new();
    let stats = generate(
        &mut eng,
        &prompt,
        50,
        &mut sampler,
        &|t| t == eog,
        &mut |t| {
            got2.push(t);
            Ok(true)
        },
    )
    .unwrap();
    assert_eq!(stats.stop, StopReason::Eog);
    assert_eq!(got2, got[..got.iter().position(|&t| t == eog).unwrap()]);

    // A context of 12 holds the prompt and 8 fed-back tokens; a 9th is sampled from the logits
    // of position 11 and there is no room to feed it.
    let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
    let stats = generate(&mut eng, &prompt, 50, &mut sampler, &|_| false, &mut |_| {
        Ok(true)
    })
    .unwrap();
    assert_eq!(stats.stop, StopReason::ContextFull);
    assert_eq!(stats.n_generated, 9);

    // The callback can stop it.
    let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
    let stats = generate(&mut eng, &prompt, 50, &mut sampler, &|_| false, &mut |_| {
        Ok(false)
    })
    .unwrap();
    assert_eq!((stats.stop, stats.n_generated), (StopReason::Callback, 1));
}
