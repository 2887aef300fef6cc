//! Scheduler behaviour against a toy batch engine whose next token is `(last + 1) % VOCAB` and
//! whose slots record every token they cached, so admission, chunking, slot reuse, cancellation
//! and timeouts can be checked exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::engine::batch::{check_items, BatchItem};
use crate::engine::Engine;
use crate::model::{LlamaHParams, RopeMode};

const VOCAB: usize = 16;
const EOG: u32 = 0;

/// What the toy engine saw.
#[derive(Debug, Default)]
struct Log {
    /// Per step: (slot, tokens fed, position) of each item.
    steps: Vec<Vec<(usize, Vec<u32>, usize)>>,
    /// Tokens cached per slot.
    slots: Vec<Vec<u32>>,
}

struct Toy {
    hp: LlamaHParams,
    n_ctx: usize,
    log: Arc<Mutex<Log>>,
    /// Fail every step that feeds this token.
    poison: Option<u32>,
    /// Sleep per step.
    delay: Duration,
    /// What `pass_rows` reports.
    pass_rows: Option<usize>,
}

fn toy(n_slots: usize, n_ctx: usize) -> (Toy, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log {
        steps: Vec::new(),
        slots: vec![Vec::new(); n_slots],
    }));
    let hp = LlamaHParams {
        arch: "toy".into(),
        n_vocab: VOCAB,
        n_embd: 1,
        n_layer: 1,
        n_head: 1,
        n_head_kv: 1,
        head_dim: 1,
        n_ff: 1,
        n_ctx_train: n_ctx,
        rms_norm_eps: 1e-5,
        rope_freq_base: 10000.0,
        n_rot: 1,
        rope_mode: RopeMode::Normal,
        tied_embeddings: true,
    };
    let engine = Toy {
        hp,
        n_ctx,
        log: log.clone(),
        poison: None,
        delay: Duration::ZERO,
        pass_rows: None,
    };
    (engine, log)
}

fn one_hot(next: u32) -> Vec<f32> {
    let mut l = vec![0f32; VOCAB];
    l[next as usize] = 1.0;
    l
}

impl Engine for Toy {
    fn backend(&self) -> &'static str {
        "toy"
    }
    fn hparams(&self) -> &LlamaHParams {
        &self.hp
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn forward(&mut self, tokens: &[u32], pos: usize, _all: bool) -> crate::Result<Vec<f32>> {
        let item = BatchItem {
            slot: 0,
            tokens,
            pos,
        };
        Ok(self.forward_batch(&[item])?.remove(0))
    }
    fn reset(&mut self) {
        let mut log = self.log.lock().unwrap();
        log.slots.iter_mut().for_each(Vec::clear);
    }
}

impl BatchEngine for Toy {
    fn n_slots(&self) -> usize {
        self.log.lock().unwrap().slots.len()
    }
    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> crate::Result<Vec<Vec<f32>>> {
        std::thread::sleep(self.delay);
        let mut log = self.log.lock().unwrap();
        check_items(items, log.slots.len(), self.n_ctx)?;
        if let Some(p) = self.poison {
            if items.iter().any(|it| it.tokens.contains(&p)) {
                return Err(crate::Error::Invalid("poisoned token".into()));
            }
        }
        log.steps.push(
            items
                .iter()
                .map(|it| (it.slot, it.tokens.to_vec(), it.pos))
                .collect(),
        );
        let mut out = Vec::new();
        for it in items {
            let cached = &mut log.slots[it.slot];
            assert!(it.pos <= cached.len(), "position {} not cached", it.pos);
            cached.truncate(it.pos);
            cached.extend_from_slice(it.tokens);
            let last = *it.tokens.last().unwrap();
            out.push(one_hot((last + 1) % VOCAB as u32));
        }
        Ok(out)
    }
    fn clear_slot(&mut self, slot: usize) {
        if let Some(s) = self.log.lock().unwrap().slots.get_mut(slot) {
            s.clear();
        }
    }
    fn pass_rows(&self) -> Option<usize> {
        self.pass_rows
    }
}

fn eog() -> EogFn {
    Arc::new(|t| t == EOG)
}

fn start(engine: Toy, config: SchedulerConfig) -> Scheduler {
    Scheduler::start(Box::new(engine), eog(), config).unwrap()
}

/// Every event of a request until its end.
fn drain(mut h: RequestHandle) -> Vec<GenEvent> {
    let mut events = Vec::new();
    while let Some(e) = h.blocking_next() {
        let end = matches!(e, GenEvent::Done { .. } | GenEvent::Failed { .. });
        events.push(e);
        if end {
            break;
        }
    }
    events
}

fn tokens(events: &[GenEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            GenEvent::Token { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn finish(events: &[GenEvent]) -> Option<FinishReason> {
    match events.last() {
        Some(GenEvent::Done { finish, .. }) => Some(*finish),
        _ => None,
    }
}

fn failure(events: &[GenEvent]) -> Option<GenErrorKind> {
    match events.last() {
        Some(GenEvent::Failed { error, .. }) => Some(error.kind),
        _ => None,
    }
}

fn request(prompt: &[u32], max_tokens: usize) -> GenRequest {
    GenRequest::greedy(prompt.to_vec(), max_tokens)
}

fn forever(prompt: &[u32]) -> GenRequest {
    GenRequest {
        ignore_eos: true,
        ..request(prompt, usize::MAX)
    }
}

/// Reads `h`'s admission into `slot` and its first token, which must be `first`.
fn admitted_then(h: &mut RequestHandle, slot: usize, first: u32) {
    let e = h.blocking_next();
    assert!(
        matches!(e, Some(GenEvent::Admitted { slot: s, .. }) if s == slot),
        "{e:?}"
    );
    let e = h.blocking_next();
    assert!(
        matches!(e, Some(GenEvent::Token { id, .. }) if id == first),
        "{e:?}"
    );
}

/// Waits (bounded) until the scheduler's counters satisfy `pred`.
fn wait_for(s: &Scheduler, pred: impl Fn(&MetricsSnapshot) -> bool) -> MetricsSnapshot {
    for _ in 0..2000 {
        let m = s.metrics();
        if pred(&m) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("condition not reached: {:?}", s.metrics());
}

#[test]
fn greedy_streams_stop_on_eog_length_and_context() {
    let (engine, _) = toy(2, 16);
    let s = start(engine, SchedulerConfig::default());
    // 5 → 6 … 15 → 0 (EOG, not emitted)
    let e = drain(s.submit(request(&[3, 5], 100)).unwrap());
    assert!(matches!(e[0], GenEvent::Admitted { .. }));
    assert_eq!(tokens(&e), (6..16).collect::<Vec<u32>>());
    assert_eq!(finish(&e), Some(FinishReason::Stop));
    let e = drain(s.submit(request(&[1], 3)).unwrap());
    assert_eq!(
        (tokens(&e), finish(&e)),
        (vec![2, 3, 4], Some(FinishReason::Length))
    );
    // Context of 16 with an 11-token prompt: tokens sampled at positions 11..=16, six of them.
    let e = drain(
        s.submit(forever(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14]))
            .unwrap(),
    );
    assert_eq!(tokens(&e), vec![15, 0, 1, 2, 3, 4]);
    assert_eq!(finish(&e), Some(FinishReason::ContextFull));
    match e.last() {
        Some(GenEvent::Done { stats, .. }) => {
            assert_eq!((stats.prompt_tokens, stats.generated_tokens), (11, 6));
        }
        other => panic!("{other:?}"),
    }
    let m = s.metrics();
    assert_eq!(
        m.completed,
        FinishCounts {
            stop: 1,
            length: 1,
            context_full: 1
        }
    );
    assert_eq!((m.generated_tokens, m.prompt_tokens), (19, 14));
    assert_eq!((m.running, m.queue_depth), (0, 0));
}

#[test]
fn admits_up_to_the_slots_fifo_and_reuses_slots() {
    let (engine, log) = toy(2, 64);
    let s = start(engine, SchedulerConfig::default());
    // Submitted before the thread can admit any of them (they queue while the first runs).
    let handles: Vec<_> = (0..5u32)
        .map(|i| s.submit(request(&[i + 1], 4)).unwrap())
        .collect();
    let ids: Vec<u64> = handles.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    let results: Vec<Vec<GenEvent>> = handles.into_iter().map(drain).collect();
    let mut admitted = Vec::new();
    for (i, e) in results.iter().enumerate() {
        let first = i as u32 + 1;
        assert_eq!(
            tokens(e),
            (first + 1..first + 5).collect::<Vec<u32>>(),
            "request {i}"
        );
        assert_eq!(finish(e), Some(FinishReason::Length));
        match e[0] {
            GenEvent::Admitted { at, slot } => admitted.push((at, slot)),
            ref other => panic!("{other:?}"),
        }
    }
    // FIFO: admission times follow submission order.
    assert!(admitted.windows(2).all(|w| w[0].0 <= w[1].0));
    let log = log.lock().unwrap();
    assert!(
        log.steps.iter().all(|step| step.len() <= 2),
        "never more than 2 sequences"
    );
    let m = s.metrics();
    assert_eq!((m.admitted, m.completed.total(), m.running), (5, 5, 0));
}

#[test]
fn long_prompts_are_prefilled_in_chunks_between_decodes() {
    let (engine, log) = toy(2, 1 << 20);
    let config = SchedulerConfig {
        prefill_chunk: 8,
        ..SchedulerConfig::default()
    };
    let s = start(engine, config);
    let mut decoding = s.submit(forever(&[1])).unwrap();
    // Wait until the first request decodes, then send a 50-token prompt.
    admitted_then(&mut decoding, 0, 2);
    let long_prompt: Vec<u32> = (0..50).map(|i| 1 + i % 14).collect();
    let long = s.submit(request(&long_prompt, 2)).unwrap();
    let b = drain(long);
    drop(decoding);
    assert_eq!(
        tokens(&b),
        vec![(long_prompt[49] + 1) % 16, (long_prompt[49] + 2) % 16]
    );
    let log = log.lock().unwrap();
    // The long prompt went in chunks of at most 8, each in a step where the first sequence
    // decoded one token; its chunks follow each other in position.
    let mut chunks = Vec::new();
    for step in &log.steps {
        for (slot, fed, pos) in step {
            if *slot == 1 && chunks.len() * 8 < 50 {
                assert_eq!(*pos, chunks.len() * 8, "{step:?}");
                chunks.push(fed.len());
                assert_eq!(
                    step.len(),
                    2,
                    "a decode shares every prefill chunk: {step:?}"
                );
                assert_eq!(step[0].1.len(), 1, "{step:?}");
            }
        }
    }
    assert_eq!(
        chunks,
        vec![8, 8, 8, 8, 8, 8, 2],
        "50 tokens: 6 chunks of 8 and one of 2"
    );
}

#[test]
fn prompt_budget_fills_the_last_pass() {
    use super::worker::prompt_budget;
    // (chunk, decoding, pass rows) -> prompt tokens.
    for (chunk, decoding, pass, want) in [
        (256, 0, Some(16), 256), // nothing decodes: the whole chunk
        (256, 12, Some(16), 4),  // 12 decode rows leave 4 of the pass
        (256, 15, Some(16), 1),
        (256, 16, Some(16), 16), // a full pass: the prompt gets a pass of its own
        (256, 20, Some(16), 12), // 16 + 4: the second pass's rest
        (3, 12, Some(16), 3),    // never more than the chunk
        (256, 5, None, 256),     // engines without passes: the chunk
    ] {
        assert_eq!(
            prompt_budget(chunk, decoding, pass),
            want,
            "chunk {chunk}, decoding {decoding}, pass {pass:?}"
        );
    }
}

/// On an engine with passes of 4 rows, a 10-token prompt arriving next to two decoding
/// sequences goes in chunks of 2 (every step 4 rows), while the first request's prompt, sent
/// when nothing decoded, went in one step.
#[test]
fn prompts_among_decodes_fill_the_engines_pass() {
    let (mut engine, log) = toy(3, 1 << 20);
    engine.pass_rows = Some(4);
    let s = start(engine, SchedulerConfig::default());
    let first_prompt: Vec<u32> = (1..=9).collect();
    let mut a = s.submit(forever(&first_prompt)).unwrap();
    admitted_then(&mut a, 0, 10);
    let mut b = s.submit(forever(&[1])).unwrap();
    admitted_then(&mut b, 1, 2);
    let prompt: Vec<u32> = (1..=10).collect();
    let c = drain(s.submit(request(&prompt, 3)).unwrap());
    drop((a, b));
    assert_eq!(tokens(&c), vec![11, 12, 13]);
    let log = log.lock().unwrap();
    assert_eq!(log.steps[0], vec![(0, first_prompt.clone(), 0)]);
    let chunks: Vec<usize> = log
        .steps
        .iter()
        .filter_map(|step| {
            let fed = step.iter().find(|(slot, _, pos)| *slot == 2 && *pos < 10)?;
            let rows: usize = step.iter().map(|(_, t, _)| t.len()).sum();
            assert_eq!(
                rows, 4,
                "every step with the prompt fills the pass: {step:?}"
            );
            Some(fed.1.len())
        })
        .collect();
    assert_eq!(chunks, vec![2, 2, 2, 2, 2], "10 tokens next to 2 decodes");
}

#[test]
fn dropping_the_stream_cancels_and_frees_the_slot() {
    let (engine, log) = toy(1, 1 << 20);
    let s = start(engine, SchedulerConfig::default());
    let mut a = s.submit(forever(&[1])).unwrap();
    assert!(matches!(
        a.blocking_next(),
        Some(GenEvent::Admitted { slot: 0, .. })
    ));
    assert!(matches!(a.blocking_next(), Some(GenEvent::Token { .. })));
    let b = s.submit(request(&[7], 2)).unwrap();
    drop(a);
    let e = drain(b);
    assert_eq!(tokens(&e), vec![8, 9]);
    let m = wait_for(&s, |m| m.cancelled == 1);
    assert_eq!((m.completed.total(), m.running), (1, 0));
    // b reused slot 0 from position 0: its prompt, then its first token.
    let log = log.lock().unwrap();
    let n = log.steps.len();
    assert_eq!(log.steps[n - 2], vec![(0, vec![7], 0)]);
    assert_eq!(log.steps[n - 1], vec![(0, vec![8], 1)]);
}

#[test]
fn timeouts_fail_running_and_waiting_requests() {
    let (mut engine, _) = toy(1, 1 << 20);
    engine.delay = Duration::from_millis(2);
    let s = start(engine, SchedulerConfig::default());
    let running = GenRequest {
        timeout: Some(Duration::from_millis(50)),
        ..forever(&[1])
    };
    let e = drain(s.submit(running).unwrap());
    assert_eq!(failure(&e), Some(GenErrorKind::Timeout));
    assert!(!tokens(&e).is_empty());

    let blocker = s.submit(forever(&[1])).unwrap();
    let queued = GenRequest {
        timeout: Some(Duration::from_millis(30)),
        ..request(&[2], 1)
    };
    let e = drain(s.submit(queued).unwrap());
    assert_eq!(failure(&e), Some(GenErrorKind::Timeout));
    assert_eq!(e.len(), 1, "never admitted: {e:?}");
    drop(blocker);
    let m = wait_for(&s, |m| m.cancelled == 1);
    assert_eq!(m.failed.timeout, 2);
}

#[test]
fn an_engine_error_fails_the_step_and_serving_goes_on() {
    let (mut engine, _) = toy(2, 64);
    engine.poison = Some(9);
    let s = start(engine, SchedulerConfig::default());
    // 7 → 8 → 9 is fed on the third step: poisoned.
    let e = drain(s.submit(request(&[7], 10)).unwrap());
    assert_eq!(tokens(&e), vec![8, 9]);
    assert_eq!(failure(&e), Some(GenErrorKind::Engine));
    let e = drain(s.submit(request(&[1], 3)).unwrap());
    assert_eq!(tokens(&e), vec![2, 3, 4]);
    assert_eq!(s.metrics().failed.engine, 1);
}

#[test]
fn submissions_are_checked_and_the_queue_is_bounded() {
    let (engine, _) = toy(1, 1 << 20);
    let config = SchedulerConfig {
        queue_capacity: 1,
        ..SchedulerConfig::default()
    };
    let s = start(engine, config);
    let invalid = |r: GenRequest| matches!(s.submit(r), Err(SubmitError::Invalid(_)));
    assert!(invalid(request(&[], 1)));
    assert!(invalid(request(&vec![1; (1 << 20) + 1], 1)));
    assert!(invalid(request(&[1], 0)));
    assert!(invalid(request(&[VOCAB as u32], 1)));
    let mut running = s.submit(forever(&[1])).unwrap();
    let first = running.blocking_next();
    assert!(
        matches!(first, Some(GenEvent::Admitted { .. })),
        "{first:?}"
    );
    let queued = s.submit(request(&[1], 1)).unwrap();
    assert_eq!(
        s.submit(request(&[1], 1)).unwrap_err(),
        SubmitError::QueueFull { capacity: 1 }
    );
    let m = s.metrics();
    assert_eq!((m.rejected, m.queue_depth, m.running), (5, 1, 1));
    s.shutdown();
    let (a, b) = (drain(running), drain(queued));
    assert_eq!(failure(&a), Some(GenErrorKind::Shutdown));
    assert_eq!(failure(&b), Some(GenErrorKind::Shutdown));
}
