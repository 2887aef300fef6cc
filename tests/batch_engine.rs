//! Batched decoding on the real test model (SmolLM2-135M Q4_1, CPU engine): several sequences
//! advanced together through `BatchEngine::forward_batch`, and through the continuous-batching
//! scheduler, must produce exactly what each sequence produces alone.
//!
//! Oracle: the single-sequence path (`Engine::forward` on a one-slot engine, greedy argmax, and
//! `engine::generate`), which `tests/cpu_engine.rs` checks against llama.cpp's greedy output.
//! The CPU engine's kernels do not depend on batch composition, so logits must be bit-identical,
//! not merely close.

mod common;

use std::sync::Arc;

use common::{
    argmax, batch_prompts, check_batched_schedule, generate_alone, greedy_alone, test_model,
};
use rawrxd::engine::scheduler::{FinishReason, GenEvent, GenRequest, Scheduler, SchedulerConfig};
use rawrxd::engine::{BatchEngine, BatchItem, CpuEngine};
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::model::SamplerParams;

fn model() -> Option<(Arc<GgufFile>, Tokenizer)> {
    let path = test_model()?;
    let f = Arc::new(GgufFile::open(path).unwrap());
    let tok = Tokenizer::from_gguf(&f).unwrap();
    Some((f, tok))
}

const GEN: usize = 4;

#[test]
fn batched_greedy_equals_each_sequence_alone() {
    let Some((f, tok)) = model() else { return };
    let prompts = batch_prompts(&tok);
    assert!(
        prompts
            .iter()
            .map(Vec::len)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= 3
    );
    let mut single = CpuEngine::load(f.clone(), 64, Some(2)).unwrap();
    let reference: Vec<_> = prompts
        .iter()
        .map(|p| greedy_alone(&mut single, p, GEN))
        .collect();

    let mut batch = CpuEngine::load_batch(f, 64, 4, Some(2)).unwrap();
    assert_eq!(batch.n_slots(), 4);
    // Sequence 1 sits in slot 3 and sequence 3 in slot 0 (slots are not positions).
    check_batched_schedule(&mut batch, &prompts, &[1, 3, 2, 0], &reference);

    // A cleared slot starts over: reusing slot 2 for sequence 0 gives its first token again.
    batch.clear_slot(2);
    let again = batch
        .forward_batch(&[BatchItem {
            slot: 2,
            tokens: &prompts[0],
            pos: 0,
        }])
        .unwrap();
    assert_eq!(argmax(&again[0]), reference[0].0[0]);
    // Positions past what a slot caches are refused.
    batch.clear_slot(1);
    let refused = batch.forward_batch(&[BatchItem {
        slot: 1,
        tokens: &[1],
        pos: 1,
    }]);
    match refused {
        Err(e) => assert!(e.to_string().contains("slot 1 caches only 0..0"), "{e}"),
        Ok(_) => panic!("a position past the cached ones was accepted"),
    }
}

#[test]
fn scheduler_streams_what_generate_produces_alone() {
    let Some((f, tok)) = model() else { return };
    let tok = Arc::new(tok);
    let prompts = batch_prompts(&tok);
    let eog = tok.clone();
    let is_eog = move |t: u32| eog.is_eog(t);
    // Reference: engine::generate on a one-slot engine, greedy and seeded sampling.
    let mut single = CpuEngine::load(f.clone(), 64, Some(2)).unwrap();
    let sampling = |i: usize| {
        if i % 2 == 0 {
            SamplerParams::greedy()
        } else {
            SamplerParams {
                seed: 40 + i as u64,
                ..SamplerParams::default()
            }
        }
    };
    let reference: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| generate_alone(&mut single, p, GEN, sampling(i), &is_eog))
        .collect();

    // Three slots for four requests: the fourth waits for a slot; a 3-token prefill chunk
    // splits the longer prompts over several steps.
    let engine = CpuEngine::load_batch(f, 64, 3, Some(2)).unwrap();
    let config = SchedulerConfig {
        prefill_chunk: 3,
        ..SchedulerConfig::default()
    };
    let eog = tok.clone();
    let sched =
        Scheduler::start(Box::new(engine), Arc::new(move |t| eog.is_eog(t)), config).unwrap();
    let handles: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let request = GenRequest {
                sampling: sampling(i),
                ..GenRequest::greedy(p.clone(), GEN)
            };
            sched.submit(request).unwrap()
        })
        .collect();
    for (i, mut h) in handles.into_iter().enumerate() {
        let mut got = Vec::new();
        let mut finish = None;
        while let Some(e) = h.blocking_next() {
            match e {
                GenEvent::Token { id, .. } => got.push(id),
                GenEvent::Done {
                    finish: f, stats, ..
                } => {
                    assert_eq!(stats.prompt_tokens, prompts[i].len());
                    assert_eq!(stats.generated_tokens, got.len());
                    finish = Some(f);
                    break;
                }
                GenEvent::Failed { error, .. } => panic!("request {i}: {error}"),
                GenEvent::Admitted { .. } => {}
            }
        }
        assert_eq!(got, reference[i], "request {i}");
        let want = if got.len() == GEN {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        assert_eq!(finish, Some(want), "request {i}");
    }
    let m = sched.metrics();
    assert_eq!((m.admitted, m.completed.total(), m.running), (4, 4, 0));
    let prompt_total: usize = prompts.iter().map(Vec::len).sum();
    assert_eq!(m.prompt_tokens, prompt_total as u64);
}

/// `batched_bench::run` on the CPU engine: one row per batch size with the configured counts,
/// rates that agree with their times, and a batch larger than the engine's slots refused by name.
#[test]
fn batched_bench_rows_follow_the_config() {
    use rawrxd::engine::batched_bench::{self, BatchedBenchConfig};
    let Some((f, _)) = model() else { return };
    let mut e = CpuEngine::load_batch(f, 32, 3, Some(2)).unwrap();
    let cfg = BatchedBenchConfig {
        n_prompt: 4,
        n_gen: 3,
        batches: vec![1, 3],
        warmup_steps: 1,
        seed: 7,
    };
    let mut seen = 0;
    let rows = batched_bench::run(&mut e, &cfg, |_| seen += 1).unwrap();
    assert_eq!(seen, 2);
    assert_eq!(rows.iter().map(|r| r.b).collect::<Vec<_>>(), [1, 3]);
    let r = &rows[1];
    assert_eq!((r.pp, r.tg, r.n_kv), (4, 3, 21));
    assert!((r.s_tg - 9.0 / r.t_tg).abs() < 1e-9 * r.s_tg);
    assert!((r.s_pp - 12.0 / r.t_pp).abs() < 1e-9 * r.s_pp);
    assert!(r.step_ms_p50 <= r.step_ms_p99);
    let bad = BatchedBenchConfig {
        batches: vec![4],
        ..cfg
    };
    let err = batched_bench::run(&mut e, &bad, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch 4") && err.contains("1..=3"), "{err}");
}
