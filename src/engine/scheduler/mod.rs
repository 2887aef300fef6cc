//! Continuous batching: a [`Scheduler`] owns a [`BatchEngine`] on its own thread and serves many
//! generation requests at once, one engine step at a time.
//!
//! Between two steps the scheduler thread retires finished, cancelled and timed-out sequences
//! (freeing their KV cache slots) and admits waiting requests into free slots in arrival order
//! (FIFO), up to `max_batch` sequences. Each step feeds one token of every decoding sequence plus
//! prompt chunks of sequences still in prefill, handed out in admission order until the step's
//! prompt budget is spent: `prefill_chunk` tokens while nothing decodes, and while sequences
//! decode on an engine that runs steps in passes ([`BatchEngine::pass_rows`]), only what fills
//! the last pass their tokens leave part empty — so a long prompt is prefilled over several
//! steps, and a prompt arriving among running decodes adds no pass they wait for.
//!
//! Invariants:
//! - The waiting queue holds at most `queue_capacity` requests; `submit` refuses more at once.
//! - A request's stream is `Admitted`, `Token`s, then exactly one of `Done` or `Failed`, unless the
//!   client dropped it (cancellation), which frees its slot at the next step boundary.
//! - Sampling is per request (its own [`Sampler`](crate::model::Sampler) and seed), and
//!   the engine's batch contract makes every sequence's logits independent of its neighbours, so
//!   a greedy request yields the same tokens alone or in any batch.
//! - Events are stamped on the scheduler thread when the token is sampled.
//! - If the engine fails a step, every request in that step fails (`engine`) and its slot is
//!   cleared; the scheduler keeps serving. If the engine panics, the scheduler stops: queued and
//!   later requests are refused.
//!
//! Submodules: `request` (requests, events, errors), `metrics` (live counters), `worker` (the
//! thread's loop).

mod metrics;
mod request;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::batch::BatchEngine;
use super::HeapUsage;
use crate::model::Sampler;
use crate::{Error, Result};

pub use metrics::{FailCounts, FinishCounts, MetricsSnapshot};
pub use request::{
    FinishReason, GenError, GenErrorKind, GenEvent, GenRequest, RequestHandle, RequestStats,
    SubmitError,
};

/// Whether a token ends generation (usually [`Tokenizer::is_eog`](crate::model::Tokenizer)).
pub type EogFn = Arc<dyn Fn(u32) -> bool + Send + Sync>;

/// Settings of a [`Scheduler`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SchedulerConfig {
    /// Requests that may wait for a slot at once.
    pub queue_capacity: usize,
    /// Sequences decoded together at most; `None` (or more than the engine holds) means one per
    /// KV cache slot.
    pub max_batch: Option<usize>,
    /// Prompt tokens fed per step at most, over all sequences in prefill (at least 1); while
    /// sequences decode, also at most what fills the engine's last pass (see the module header).
    pub prefill_chunk: usize,
    /// Limit on a request from submission to its end when it sets none; `None`: no limit.
    pub default_timeout: Option<Duration>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            queue_capacity: 256,
            max_batch: None,
            prefill_chunk: 256,
            default_timeout: None,
        }
    }
}

/// A request waiting for a slot.
pub(super) struct Waiting {
    id: u64,
    request: GenRequest,
    sampler: Sampler,
    tx: UnboundedSender<GenEvent>,
    submitted: Instant,
    deadline: Option<Instant>,
}

/// What `submit` and the scheduler thread share under the lock.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    next_id: u64,
    /// Set by `shutdown`: refuse new requests, fail the rest, stop the thread.
    stopping: bool,
    /// Set when the engine panicked: nothing will be served again.
    dead: bool,
}

/// State shared by the handle and the thread.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    metrics: metrics::Metrics,
    config: SchedulerConfig,
    n_slots: usize,
    n_ctx: usize,
    n_vocab: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves the queue consistent (every change is one
        // push or pop), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A continuous-batching scheduler running one engine on its own thread; see the module
/// header. Dropping it shuts it down (as [`Scheduler::shutdown`]).
pub struct Scheduler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    device: String,
    backend: &'static str,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("device", &self.device)
            .field("n_slots", &self.shared.n_slots)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Scheduler {
    /// Starts the scheduler thread owning `engine`. `is_eog` says which tokens end generation.
    /// The engine is prepared ([`BatchEngine::prepare`]) first, so that the first requests do
    /// not pay for one-time work.
    pub fn start(
        mut engine: Box<dyn BatchEngine>,
        is_eog: EogFn,
        config: SchedulerConfig,
    ) -> Result<Scheduler> {
        if config.prefill_chunk == 0 {
            return Err(Error::Invalid(
                "scheduler: prefill_chunk must be at least 1".into(),
            ));
        }
        if config.max_batch == Some(0) {
            return Err(Error::Invalid(
                "scheduler: max_batch must be at least 1".into(),
            ));
        }
        let n_slots = engine.n_slots();
        if n_slots == 0 {
            return Err(Error::Invalid("scheduler: the engine has no slots".into()));
        }
        engine.prepare()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            metrics: metrics::Metrics::default(),
            n_slots,
            n_ctx: engine.n_ctx(),
            n_vocab: engine.hparams().n_vocab,
            config,
        });
        shared.metrics.set_memory(engine.memory());
        shared.metrics.set_heaps(engine.memory_heaps());
        let (device, backend) = (engine.device_name(), engine.backend());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rawrxd-scheduler".into())
            .spawn(move || worker::run(thread_shared, engine, is_eog))
            .map_err(|e| Error::Invalid(format!("cannot start the scheduler thread: {e}")))?;
        Ok(Scheduler {
            shared,
            thread: Some(thread),
            device,
            backend,
        })
    }

    /// Queues `request`; its events arrive on the returned handle. Refused when the queue is full,
    /// the request cannot run, or the scheduler is shut down.
    pub fn submit(&self, request: GenRequest) -> std::result::Result<RequestHandle, SubmitError> {
        let m = &self.shared.metrics;
        m.submitted.fetch_add(1, Relaxed);
        let refuse = |e: SubmitError| {
            m.rejected.fetch_add(1, Relaxed);
            Err(e)
        };
        if let Err(msg) = self.validate(&request) {
            return refuse(SubmitError::Invalid(msg));
        }
        let sampler = match Sampler::new(request.sampling.clone()) {
            Ok(s) => s,
            Err(e) => return refuse(SubmitError::Invalid(e.to_string())),
        };
        let mut q = self.shared.lock();
        if q.stopping || q.dead {
            return refuse(SubmitError::ShutDown);
        }
        let capacity = self.shared.config.queue_capacity;
        if q.waiting.len() >= capacity {
            return refuse(SubmitError::QueueFull { capacity });
        }
        let (tx, rx) = unbounded_channel();
        let id = q.next_id;
        q.next_id += 1;
        let submitted = Instant::now();
        let timeout = request.timeout.or(self.shared.config.default_timeout);
        q.waiting.push_back(Waiting {
            id,
            request,
            sampler,
            tx,
            submitted,
            deadline: timeout.map(|t| submitted + t),
        });
        m.queue_depth.store(q.waiting.len() as u64, Relaxed);
        drop(q);
        self.shared.wake.notify_one();
        Ok(RequestHandle { id, events: rx })
    }

    fn validate(&self, r: &GenRequest) -> std::result::Result<(), String> {
        let n_ctx = self.shared.n_ctx;
        if r.prompt.is_empty() {
            return Err("the prompt has no tokens".into());
        }
        if r.prompt.len() > n_ctx {
            return Err(format!(
                "the prompt has {} tokens but the context holds {n_ctx}",
                r.prompt.len()
            ));
        }
        if r.max_tokens == 0 {
            return Err("max_tokens must be at least 1".into());
        }
        let n_vocab = self.shared.n_vocab;
        if let Some(t) = r.prompt.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(format!(
                "token id {t} is outside the vocabulary of {n_vocab}"
            ));
        }
        Ok(())
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared
            .metrics
            .snapshot(self.shared.n_slots, self.shared.n_ctx)
    }

    /// The device's memory heaps as last read (at most a second old while steps run); empty
    /// for the CPU engine.
    pub fn memory_heaps(&self) -> Vec<HeapUsage> {
        self.shared.metrics.heaps()
    }

    /// KV cache slots of the engine.
    pub fn n_slots(&self) -> usize {
        self.shared.n_slots
    }

    /// Positions per slot.
    pub fn n_ctx(&self) -> usize {
        self.shared.n_ctx
    }

    /// The engine's device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The engine's backend name.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.shared.config
    }

    /// Whether the scheduler still accepts requests.
    pub fn is_running(&self) -> bool {
        let q = self.shared.lock();
        !(q.stopping || q.dead)
    }

    /// Refuses new requests, fails every waiting and running request (`shutdown`), and joins the
    /// thread. To finish the running requests first, stop submitting and wait for their streams.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // A panic in the thread was already turned into failed requests.
            let _ = t.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}
