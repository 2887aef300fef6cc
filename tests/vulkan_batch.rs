//! Batched decoding on the Vulkan engine (SmolLM2-135M Q4_1): several sequences, each in its own
//! KV cache slot, advanced together through `BatchEngine::forward_batch` and through the
//! continuous-batching scheduler, must produce exactly what each sequence produces alone.
//!
//! Oracle: the same model on a one-slot Vulkan engine, one sequence at a time (itself checked
//! against a float64 reference and the CPU engine in `tests/vulkan_engine.rs`). The engine's
//! kernels compute each token row on its own, in the same order whatever the batch, so logits
//! must be bit-identical, not merely close.

mod common;
mod vulkan_support;

use std::sync::Arc;

use rawrxd::engine::scheduler::{GenEvent, GenRequest, Scheduler, SchedulerConfig};
use rawrxd::engine::vulkan::{VulkanEngine, VulkanEngineOptions};
use rawrxd::engine::{generate, BatchEngine, BatchItem, Engine};
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::model::{LlamaHParams, LlamaWeights, Sampler, SamplerParams};
use vulkan_support::harness_with;

const GEN: usize = 5;
const N_CTX: usize = 64;

fn argmax(v: &[f32]) -> u32 {
    let mut b = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[b] {
            b = i;
        }
    }
    b as u32
}

/// Prompts of different lengths (1 to 9 tokens), as token ids.
fn prompts(tok: &Tokenizer) -> Vec<Vec<u32>> {
    [
        "The capital of France is",
        "Once",
        "def fibonacci(n):\n    ",
        "Water boils at a temperature of",
    ]
    .iter()
    .map(|t| tok.encode(t, true, false).unwrap())
    .collect()
}

/// Greedy tokens and the logits of every step of `prompt`, run alone.
fn alone(eng: &mut VulkanEngine, prompt: &[u32]) -> (Vec<u32>, Vec<Vec<f32>>) {
    eng.reset();
    let mut logits = eng.forward(prompt, 0, false).unwrap();
    let (mut out, mut all) = (Vec::new(), Vec::new());
    for step in 0..GEN {
        let t = argmax(&logits);
        out.push(t);
        let next = if step + 1 < GEN {
            eng.forward(&[t], prompt.len() + step, false).unwrap()
        } else {
            Vec::new()
        };
        all.push(std::mem::replace(&mut logits, next));
    }
    (out, all)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn batched_vulkan_decode_equals_each_sequence_alone() {
    let Some(h) = harness_with(false) else { return };
    let Some(path) = common::test_model() else {
        return;
    };
    let file = Arc::new(GgufFile::open(&path).expect("open model"));
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let hp = LlamaHParams::from_gguf(&file).unwrap();
    let weights = LlamaWeights::from_gguf(&file, &hp).unwrap();
    let load = |n_slots| {
        let opts = VulkanEngineOptions {
            n_ctx: N_CTX,
            n_slots,
            ..Default::default()
        };
        VulkanEngine::with_gpu(h.gpu.clone(), &hp, &weights, &opts).expect("load")
    };
    let prompts = prompts(&tok);
    let mut single = load(1);
    let reference: Vec<_> = prompts.iter().map(|p| alone(&mut single, p)).collect();
    let bos_alone = {
        single.reset();
        single.forward(&prompts[1][..1], 0, false).unwrap()
    };
    drop(single);

    // 17 slots: the schedule below uses four of them; the last step fills all 17, more than one
    // decode step holds (16), so it runs as two.
    let mut batch = load(17);
    assert_eq!(batch.n_slots(), 17);
    // Sequences 0 and 1 start first; 2 and 3 join after one step, so steps mix prefill and
    // decode; sequence 1 sits in slot 9 and sequence 3 in slot 0 (slots are not positions).
    let slot = [4, 9, 2, 0];
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); 4];
    let mut pos: Vec<usize> = vec![0; 4];
    let mut pending: Vec<Vec<u32>> = prompts.clone();
    let mut step = 0;
    while out.iter().any(|o| o.len() < GEN) {
        let active: Vec<usize> = (0..4)
            .filter(|&s| (s < 2 || step >= 1) && out[s].len() < GEN)
            .collect();
        let items: Vec<BatchItem<'_>> = active
            .iter()
            .map(|&s| BatchItem {
                slot: slot[s],
                tokens: &pending[s],
                pos: pos[s],
            })
            .collect();
        let logits = batch.forward_batch(&items).unwrap();
        assert_eq!(logits.len(), active.len());
        for (&s, l) in active.iter().zip(&logits) {
            let k = out[s].len();
            let want = &reference[s].1[k];
            assert!(
                l == want,
                "sequence {s}, token {k} (step {step}, {} in the step): batched logits differ \
                 from the sequence alone by up to {}",
                active.len(),
                max_diff(l, want)
            );
            let t = argmax(l);
            out[s].push(t);
            pos[s] += pending[s].len();
            pending[s] = vec![t];
        }
        step += 1;
    }
    for s in 0..4 {
        assert_eq!(out[s], reference[s].0, "sequence {s}");
    }

    // One-token sequences in cleared slots, each giving the logits of that token alone: 5 (run
    // as the 6-row step, padded), then all 17 (two decode steps' worth: 16 + 1).
    let bos = &prompts[1][..1];
    for n in [5usize, 17] {
        for s in 0..17 {
            batch.clear_slot(s);
        }
        let items: Vec<BatchItem<'_>> = (0..n)
            .map(|slot| BatchItem {
                slot,
                tokens: bos,
                pos: 0,
            })
            .collect();
        let logits = batch.forward_batch(&items).unwrap();
        assert_eq!(logits.len(), n);
        for (s, l) in logits.iter().enumerate() {
            assert!(
                l == &bos_alone,
                "slot {s} of {n}: differs by {}",
                max_diff(l, &bos_alone)
            );
        }
    }
    // Positions past what a slot caches are refused, naming the slot.
    batch.clear_slot(1);
    match batch.forward_batch(&[BatchItem {
        slot: 1,
        tokens: &[1],
        pos: 1,
    }]) {
        Err(e) => assert!(e.to_string().contains("slot 1 caches only 0..0"), "{e}"),
        Ok(_) => panic!("a position past the cached ones was accepted"),
    }
    drop(batch);
    h.finish();
}

/// The scheduler on a 3-slot Vulkan engine streams, for each of four requests (one waits for a
/// slot; prompts are prefilled in 3-token chunks), what `engine::generate` produces alone.
#[test]
fn scheduler_on_vulkan_streams_what_generate_produces_alone() {
    let Some(h) = harness_with(false) else { return };
    let Some(path) = common::test_model() else {
        return;
    };
    let file = Arc::new(GgufFile::open(&path).expect("open model"));
    let tok = Arc::new(Tokenizer::from_gguf(&file).unwrap());
    let hp = LlamaHParams::from_gguf(&file).unwrap();
    let weights = LlamaWeights::from_gguf(&file, &hp).unwrap();
    let load = |n_slots| {
        let opts = VulkanEngineOptions {
            n_ctx: N_CTX,
            n_slots,
            ..Default::default()
        };
        VulkanEngine::with_gpu(h.gpu.clone(), &hp, &weights, &opts).expect("load")
    };
    let prompts = prompts(&tok);
    let eog = tok.clone();
    let is_eog = move |t: u32| eog.is_eog(t);
    let mut single = load(1);
    let mut reference = Vec::new();
    for p in &prompts {
        let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
        let mut got = Vec::new();
        generate(&mut single, p, GEN, &mut sampler, &is_eog, &mut |t| {
            got.push(t);
            Ok(true)
        })
        .unwrap();
        reference.push(got);
    }
    drop(single);

    let config = SchedulerConfig {
        prefill_chunk: 3,
        ..SchedulerConfig::default()
    };
    let eog = tok.clone();
    let sched =
        Scheduler::start(Box::new(load(3)), Arc::new(move |t| eog.is_eog(t)), config).unwrap();
    let handles: Vec<_> = prompts
        .iter()
        .map(|p| sched.submit(GenRequest::greedy(p.clone(), GEN)).unwrap())
        .collect();
    for (i, mut handle) in handles.into_iter().enumerate() {
        let mut got = Vec::new();
        while let Some(e) = handle.blocking_next() {
            match e {
                GenEvent::Token { id, .. } => got.push(id),
                GenEvent::Done { .. } => break,
                GenEvent::Failed { error, .. } => panic!("request {i}: {error}"),
                GenEvent::Admitted { .. } => {}
            }
        }
        assert_eq!(got, reference[i], "request {i}");
    }
    drop(sched);
    h.finish();
}
