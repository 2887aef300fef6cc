//! The scheduler thread: retire, admit, build a step, run it, sample, repeat.
//!
//! Only this thread touches the engine and the running sequences. The queue lock is held just
//! long enough to move waiting requests out; engine steps run without it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::request::{FinishReason, GenError, GenErrorKind, GenEvent, RequestStats};
use super::{EogFn, Shared, Waiting};
use crate::engine::batch::{BatchEngine, BatchItem};
use crate::model::Sampler;

/// How often the device heaps are read (between steps).
const HEAPS_EVERY: Duration = Duration::from_secs(1);

/// How often the step timings are logged (debug level).
const CLOCK_EVERY: Duration = Duration::from_secs(10);

/// Where the scheduler thread's time goes, logged every [`CLOCK_EVERY`] at debug level: the
/// engine's share of each step against the thread's own (planning, sampling, sending).
struct StepClock {
    since: Instant,
    steps: u32,
    fed: usize,
    engine: Duration,
    step: Duration,
}

impl StepClock {
    fn new() -> Self {
        StepClock {
            since: Instant::now(),
            steps: 0,
            fed: 0,
            engine: Duration::ZERO,
            step: Duration::ZERO,
        }
    }

    fn add(&mut self, fed: usize, engine: Duration, step: Duration) {
        self.steps += 1;
        self.fed += fed;
        self.engine += engine;
        self.step += step;
        let wall = self.since.elapsed();
        if wall >= CLOCK_EVERY {
            let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.steps);
            log::debug!(
                "scheduler: {} steps in {:.1} s, {:.1} tokens a step; engine {:.2} ms, own {:.2} \
                 ms a step; idle {:.1} %",
                self.steps,
                wall.as_secs_f64(),
                self.fed as f64 / f64::from(self.steps),
                per(self.engine),
                per(self.step.saturating_sub(self.engine)),
                100.0 * (1.0 - self.step.as_secs_f64() / wall.as_secs_f64()),
            );
            *self = StepClock::new();
        }
    }
}

/// A sequence holding a slot.
struct Running {
    id: u64,
    slot: usize,
    tx: UnboundedSender<GenEvent>,
    sampler: Sampler,
    prompt: Vec<u32>,
    /// Prompt tokens cached so far.
    fed: usize,
    /// The sampled token to feed next (decode phase).
    next: Option<u32>,
    /// Positions cached in the slot.
    pos: usize,
    generated: usize,
    max_tokens: usize,
    ignore_eos: bool,
    submitted: Instant,
    admitted: Instant,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    deadline: Option<Instant>,
}

impl Running {
    fn stats(&self) -> RequestStats {
        let first = self.first_token.unwrap_or(self.admitted);
        RequestStats {
            prompt_tokens: self.prompt.len(),
            generated_tokens: self.generated,
            queue_wait: self.admitted - self.submitted,
            prefill: first - self.admitted,
            decode: self.last_token.unwrap_or(first) - first,
        }
    }
}

/// What happened to a sequence in a step.
enum Outcome {
    /// Still running.
    Continue,
    /// Finished normally.
    Done(FinishReason),
    /// The client went away.
    Cancelled,
    /// Failed; the client was told.
    Failed,
}

/// Prompt tokens a step feeds: `chunk` while no sequence decodes; else, on an engine that runs
/// steps in passes of `pass_rows`, what fills the last pass the `decoding` tokens leave part
/// empty (a whole pass when they fill theirs exactly), at most `chunk`. A prompt arriving among
/// running decodes then rides in rows the step pays for anyway instead of adding passes that
/// every decoding sequence waits for (vLLM's chunked prefill with a token budget of the
/// engine's pass).
pub(super) fn prompt_budget(chunk: usize, decoding: usize, pass_rows: Option<usize>) -> usize {
    match pass_rows {
        // 1 ..= p: a whole pass when the decodes fill theirs exactly.
        Some(p) if p > 0 && decoding > 0 => chunk.min(p - decoding % p),
        _ => chunk,
    }
}

/// The thread's state besides the shared queue.
struct Worker {
    shared: Arc<Shared>,
    engine: Box<dyn BatchEngine>,
    is_eog: EogFn,
    running: Vec<Running>,
    free_slots: Vec<usize>,
    max_batch: usize,
    /// When the device heaps were last read.
    heaps_read: Instant,
    clock: StepClock,
}

/// The thread's entry point: loops until shutdown; a panic in the engine marks the scheduler
/// dead and refuses what is queued.
pub(super) fn run(shared: Arc<Shared>, engine: Box<dyn BatchEngine>, is_eog: EogFn) {
    let n_slots = shared.n_slots;
    let max_batch = shared.config.max_batch.unwrap_or(n_slots).min(n_slots);
    let mut worker = Worker {
        shared: shared.clone(),
        engine,
        is_eog,
        running: Vec::new(),
        // Popped from the end: slot 0 is handed out first.
        free_slots: (0..n_slots).rev().collect(),
        max_batch,
        heaps_read: Instant::now(),
        clock: StepClock::new(),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.main_loop()));
    if outcome.is_err() {
        log::error!("the scheduler's engine panicked; no further requests are served");
        let waiting: Vec<Waiting> = {
            let mut q = shared.lock();
            q.dead = true;
            q.waiting.drain(..).collect()
        };
        let now = Instant::now();
        for w in waiting {
            fail(
                &shared,
                &w.tx,
                GenErrorKind::Engine,
                "the engine panicked",
                now,
            );
        }
        // The running sequences' senders dropped during unwinding; their clients see the
        // stream end without a terminal event.
        shared.metrics.running.store(0, Relaxed);
        shared.metrics.queue_depth.store(0, Relaxed);
    }
}

/// Sends `Failed` and counts it.
fn fail(
    shared: &Shared,
    tx: &UnboundedSender<GenEvent>,
    kind: GenErrorKind,
    message: &str,
    at: Instant,
) {
    shared.metrics.failed(kind);
    let error = GenError {
        kind,
        message: message.to_string(),
    };
    let _ = tx.send(GenEvent::Failed { at, error });
}

impl Worker {
    fn main_loop(&mut self) {
        loop {
            if !self.admit() {
                self.shutdown();
                return;
            }
            self.retire_expired();
            if self.running.is_empty() {
                continue; // `admit` waits when there is nothing to do
            }
            self.step();
        }
    }

    /// Moves waiting requests into free slots; drops cancelled and expired waiting requests.
    /// Blocks while there is nothing to run. Returns false when the scheduler is stopping.
    fn admit(&mut self) -> bool {
        let shared = self.shared.clone();
        let m = &shared.metrics;
        let mut q = shared.lock();
        loop {
            if q.stopping {
                return false;
            }
            let now = Instant::now();
            q.waiting.retain(|w| {
                if w.tx.is_closed() {
                    m.cancelled.fetch_add(1, Relaxed);
                    return false;
                }
                if w.deadline.is_some_and(|d| now >= d) {
                    fail(
                        &shared,
                        &w.tx,
                        GenErrorKind::Timeout,
                        "timed out in the queue",
                        now,
                    );
                    return false;
                }
                true
            });
            while self.running.len() < self.max_batch && !self.free_slots.is_empty() {
                let Some(w) = q.waiting.pop_front() else {
                    break;
                };
                let slot = self.free_slots.pop().unwrap_or_default();
                self.start(w, slot, now);
            }
            m.queue_depth.store(q.waiting.len() as u64, Relaxed);
            m.running.store(self.running.len() as u64, Relaxed);
            if !self.running.is_empty() {
                return true;
            }
            // Nothing runs, so nothing waits either: sleep until a submission or shutdown. Waiting
            // requests' deadlines cannot pass unnoticed because none are waiting.
            q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Admits `w` into `slot`.
    fn start(&mut self, w: Waiting, slot: usize, now: Instant) {
        let m = &self.shared.metrics;
        m.admitted.fetch_add(1, Relaxed);
        m.prompt_tokens
            .fetch_add(w.request.prompt.len() as u64, Relaxed);
        self.engine.clear_slot(slot);
        let mut sampler = w.sampler;
        for &t in &w.request.prompt {
            sampler.accept(t);
        }
        let _ = w.tx.send(GenEvent::Admitted { at: now, slot });
        self.running.push(Running {
            id: w.id,
            slot,
            tx: w.tx,
            sampler,
            prompt: w.request.prompt,
            fed: 0,
            next: None,
            pos: 0,
            generated: 0,
            max_tokens: w.request.max_tokens,
            ignore_eos: w.request.ignore_eos,
            submitted: w.submitted,
            admitted: now,
            first_token: None,
            last_token: None,
            deadline: w.deadline,
        });
    }

    /// Frees the slot of `running[i]`.
    fn remove(&mut self, i: usize) -> Running {
        let r = self.running.remove(i);
        self.engine.clear_slot(r.slot);
        self.free_slots.push(r.slot);
        self.shared
            .metrics
            .running
            .store(self.running.len() as u64, Relaxed);
        r
    }

    /// Retires running sequences whose client went away or whose deadline passed.
    fn retire_expired(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.running.len() {
            let r = &self.running[i];
            if r.tx.is_closed() {
                self.shared.metrics.cancelled.fetch_add(1, Relaxed);
                let r = self.remove(i);
                log::debug!("request {} cancelled by its client", r.id);
            } else if r.deadline.is_some_and(|d| now >= d) {
                let r = self.remove(i);
                let msg = format!("timed out after {} generated tokens", r.generated);
                fail(&self.shared, &r.tx, GenErrorKind::Timeout, &msg, now);
            } else {
                i += 1;
            }
        }
    }

    /// One engine step over every running sequence.
    fn step(&mut self) {
        let started = Instant::now();
        let decoding = self.running.iter().filter(|r| r.next.is_some()).count();
        let mut budget = prompt_budget(
            self.shared.config.prefill_chunk,
            decoding,
            self.engine.pass_rows(),
        );
        // (index into `running`, tokens) of every sequence fed this step, in `running` order:
        // admission order, so prefill chunks go to the oldest prompts first (FIFO).
        let mut plan: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, r) in self.running.iter().enumerate() {
            if r.next.is_some() {
                plan.push((i, 0..1));
            } else if budget > 0 {
                let n = (r.prompt.len() - r.fed).min(budget);
                budget -= n;
                plan.push((i, r.fed..r.fed + n));
            }
        }
        let tokens: Vec<[u32; 1]> = plan
            .iter()
            .map(|(i, _)| [self.running[*i].next.unwrap_or(0)])
            .collect();
        let items: Vec<BatchItem<'_>> = plan
            .iter()
            .zip(&tokens)
            .map(|((i, range), one)| {
                let r = &self.running[*i];
                BatchItem {
                    slot: r.slot,
                    tokens: if r.next.is_some() {
                        one
                    } else {
                        &r.prompt[range.clone()]
                    },
                    pos: r.pos,
                }
            })
            .collect();
        let fed: usize = items.iter().map(|it| it.tokens.len()).sum();
        let engine_started = Instant::now();
        let result = self.engine.forward_batch(&items);
        let engine_time = engine_started.elapsed();
        drop(items);
        let shared = self.shared.clone();
        let m = &shared.metrics;
        m.steps.fetch_add(1, Relaxed);
        m.step_tokens.fetch_add(fed as u64, Relaxed);
        m.set_memory(self.engine.memory());
        if self.heaps_read.elapsed() >= HEAPS_EVERY {
            m.set_heaps(self.engine.memory_heaps());
            self.heaps_read = Instant::now();
        }
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("engine step failed: {e}");
                log::warn!("{msg}");
                let now = Instant::now();
                for &(i, _) in plan.iter().rev() {
                    let r = self.remove(i);
                    fail(&self.shared, &r.tx, GenErrorKind::Engine, &msg, now);
                }
                return;
            }
        };
        let now = Instant::now();
        let mut finished: Vec<(usize, Outcome)> = Vec::new();
        for ((i, range), logits) in plan.iter().zip(&logits) {
            let outcome = self.advance(*i, range.len(), logits, now);
            if !matches!(outcome, Outcome::Continue) {
                finished.push((*i, outcome));
            }
        }
        // Highest index first, so earlier indices stay valid.
        for (i, outcome) in finished.into_iter().rev() {
            let r = self.remove(i);
            match outcome {
                Outcome::Done(finish) => {
                    m.finished(finish);
                    let stats = r.stats();
                    let _ = r.tx.send(GenEvent::Done {
                        at: now,
                        finish,
                        stats,
                    });
                }
                Outcome::Cancelled => {
                    log::debug!("request {} cancelled by its client", r.id);
                    m.cancelled.fetch_add(1, Relaxed);
                }
                Outcome::Failed | Outcome::Continue => {}
            }
        }
        self.clock.add(fed, engine_time, started.elapsed());
    }

    /// Books `n` fed tokens of `running[i]` and, once its prompt is cached, samples from `logits`.
    fn advance(&mut self, i: usize, n: usize, logits: &[f32], now: Instant) -> Outcome {
        let n_ctx = self.shared.n_ctx;
        let r = &mut self.running[i];
        r.pos += n;
        if r.next.is_none() {
            r.fed += n;
            if r.fed < r.prompt.len() {
                return Outcome::Continue;
            }
        }
        let token = match r.sampler.sample(logits) {
            Ok(t) => t,
            Err(e) => {
                // Only empty logits fail to sample: an engine defect, reported as such.
                let msg = format!("sampling failed: {e}");
                fail(&self.shared, &r.tx, GenErrorKind::Engine, &msg, now);
                return Outcome::Failed;
            }
        };
        r.sampler.accept(token);
        if !r.ignore_eos && (self.is_eog)(token) {
            return Outcome::Done(FinishReason::Stop);
        }
        r.generated += 1;
        r.first_token.get_or_insert(now);
        r.last_token = Some(now);
        self.shared.metrics.generated_tokens.fetch_add(1, Relaxed);
        if r.tx.send(GenEvent::Token { at: now, id: token }).is_err() {
            return Outcome::Cancelled;
        }
        if r.generated >= r.max_tokens {
            return Outcome::Done(FinishReason::Length);
        }
        if r.pos >= n_ctx {
            return Outcome::Done(FinishReason::ContextFull);
        }
        r.next = Some(token);
        Outcome::Continue
    }

    /// Fails everything still waiting or running with `shutdown`.
    fn shutdown(&mut self) {
        let now = Instant::now();
        let waiting: Vec<Waiting> = self.shared.lock().waiting.drain(..).collect();
        for w in waiting {
            fail(
                &self.shared,
                &w.tx,
                GenErrorKind::Shutdown,
                "the scheduler shut down",
                now,
            );
        }
        while !self.running.is_empty() {
            let r = self.remove(self.running.len() - 1);
            fail(
                &self.shared,
                &r.tx,
                GenErrorKind::Shutdown,
                "the scheduler shut down",
                now,
            );
        }
        let m = &self.shared.metrics;
        m.queue_depth.store(0, Relaxed);
        m.running.store(0, Relaxed);
    }
}
