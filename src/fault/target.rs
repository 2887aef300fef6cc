//! [`FaultTarget`]: a pool [`Target`] that injects a [`FaultPlan`]'s faults into the requests it
//! forwards, retries per [`RetryPolicy`], and keeps a [`Journal`] of what happened to each
//! request for the outcome accounting.
//!
//! Requests go either to a [`ManagedEngine`] (every fault kind; device losses rebuild it) or to
//! any other target (client-side faults only: cancel, malformed, slow client).
//!
//! Each request runs in its own task feeding the event stream through a channel; the stream is
//! lazy (the task starts on the first poll) and dropping it aborts the task, which drops the
//! inner stream and so frees the engine slot. Event contract toward the pool: at most one
//! `Accepted` over all attempts, the `Tokens` of every attempt (a retried request's record spans
//! its attempts), then exactly one `Done` or error.
//!
//! Timing: events keep the stamps the inner target gave them, except a slow client's, which are
//! stamped when the client takes them (that is when its user sees them). The step-timeout
//! watchdog runs only once a request was accepted (holds a slot): a request waiting in the
//! queue is bounded by the pool's request timeout instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use super::malformed::Malformed;
use super::plan::{AllocStage, FaultKind, FaultPlan};
use super::policy::{retryable, RetryPolicy};
use super::service::{Generation, ManagedEngine};
use crate::pool::{ErrorKind, Event, EventStream, Request, RequestError, Target};

/// Context assumed for over-long prompts when the target does not say (HTTP servers).
pub const DEFAULT_CONTEXT_TOKENS: usize = 32_768;

/// What happened to one request, as the fault target saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Journal {
    /// Labels of the faults injected into it.
    pub faults: Vec<&'static str>,
    /// The malformed variant sent instead of it, if any.
    pub malformed: Option<Malformed>,
    /// Attempts made.
    pub attempts: u32,
    /// The reason of each failed attempt, in order.
    pub failures: Vec<String>,
    /// The client cancelled it.
    pub client_cancelled: bool,
}

/// One injected fault, for the results store. `at_s`: seconds since the run's first request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultEvent {
    /// The fault kind's label.
    pub kind: &'static str,
    /// The request it was aimed at.
    pub request: u64,
    /// When it was injected.
    pub at_s: f64,
    /// Details (the malformed variant, the stall, …).
    pub detail: String,
}

/// Where requests go.
enum Inner {
    Engine(Arc<ManagedEngine>),
    Plain(Arc<dyn Target>, usize),
}

/// State shared by the target and its request tasks.
struct Shared {
    inner: Inner,
    plan: FaultPlan,
    retry: RetryPolicy,
    start: OnceLock<Instant>,
    malformed_sent: AtomicU64,
    journal: Mutex<HashMap<u64, Journal>>,
    events: Mutex<Vec<FaultEvent>>,
}

/// The fault-injecting target; see the module header.
#[derive(Clone)]
pub struct FaultTarget {
    shared: Arc<Shared>,
}

type Item = Result<Event, RequestError>;

/// How one attempt ended.
enum Attempt {
    Done,
    ClientCancelled(u64),
    Failed(String, RequestError),
    /// The pool stopped listening.
    Abandoned,
}

/// The reason label of a failed attempt.
fn classify(e: &RequestError, generation: Option<&Generation>) -> String {
    let m = e.message.to_ascii_lowercase();
    if generation.is_some_and(|g| g.switch.is_lost()) || m.contains("device lost") {
        "device_lost".into()
    } else if m.contains("out of memory") {
        "alloc_failure".into()
    } else {
        e.kind.label()
    }
}

impl FaultTarget {
    fn with_inner(inner: Inner, plan: FaultPlan, retry: RetryPolicy) -> FaultTarget {
        FaultTarget {
            shared: Arc::new(Shared {
                inner,
                plan,
                retry,
                start: OnceLock::new(),
                malformed_sent: AtomicU64::new(0),
                journal: Mutex::new(HashMap::new()),
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Faults into requests to `engine` (every kind).
    pub fn engine(engine: Arc<ManagedEngine>, plan: FaultPlan, retry: RetryPolicy) -> Self {
        FaultTarget::with_inner(Inner::Engine(engine), plan, retry)
    }

    /// Client-side faults into requests to `target`, whose context holds `context_tokens`
    /// (`None`: [`DEFAULT_CONTEXT_TOKENS`]). Fails if the plan has engine faults.
    pub fn client_side(
        target: Arc<dyn Target>,
        context_tokens: Option<usize>,
        plan: FaultPlan,
        retry: RetryPolicy,
    ) -> crate::Result<Self> {
        if let Some(f) = plan.faults.iter().find(|f| f.kind.needs_engine()) {
            return Err(crate::Error::Invalid(format!(
                "fault '{}' acts inside the engine: it needs the in-process engine target",
                f.kind.label()
            )));
        }
        let ctx = context_tokens.unwrap_or(DEFAULT_CONTEXT_TOKENS);
        Ok(FaultTarget::with_inner(
            Inner::Plain(target, ctx),
            plan,
            retry,
        ))
    }

    /// The managed engine, for an engine target.
    pub fn managed_engine(&self) -> Option<&Arc<ManagedEngine>> {
        match &self.shared.inner {
            Inner::Engine(e) => Some(e),
            Inner::Plain(..) => None,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.shared.plan
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.shared.retry
    }

    /// Every request's journal so far, by request id.
    pub fn journal(&self) -> BTreeMap<u64, Journal> {
        let j = self
            .shared
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        j.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Every injected fault so far, in injection order.
    pub fn events(&self) -> Vec<FaultEvent> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ends stalls still in progress (call when the run is over).
    pub fn release_stalls(&self) {
        if let Some(e) = self.managed_engine() {
            e.release_stalls();
        }
    }
}

impl Shared {
    fn journal(&self, id: u64, f: impl FnOnce(&mut Journal)) {
        let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        f(j.entry(id).or_default());
    }

    fn event(&self, kind: &'static str, request: u64, detail: String) {
        let start = *self.start.get_or_init(Instant::now);
        let at_s = start.elapsed().as_secs_f64();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(FaultEvent {
            kind,
            request,
            at_s,
            detail,
        });
    }

    fn context_tokens(&self) -> usize {
        match &self.inner {
            Inner::Engine(e) => e.context_tokens(),
            Inner::Plain(_, n) => *n,
        }
    }

    /// Injects the engine faults of `faults` into `generation` for request `id`.
    fn inject_engine_faults(&self, id: u64, faults: &[FaultKind], generation: &Generation) {
        let Inner::Engine(engine) = &self.inner else {
            return;
        };
        for f in faults {
            match f {
                FaultKind::DeviceLoss => {
                    self.event(
                        "device_loss",
                        id,
                        format!("generation {}", generation.number),
                    );
                    engine.inject_device_loss(generation, id);
                }
                FaultKind::AllocFailure { stage, count } => {
                    match stage {
                        AllocStage::Kv => generation.switch.refuse_kv(),
                        AllocStage::Load => engine.refuse_loads(*count),
                    }
                    let detail = match stage {
                        AllocStage::Kv => "kv slot".to_string(),
                        AllocStage::Load => format!("next {count} engine load(s)"),
                    };
                    self.event("alloc_failure", id, detail);
                }
                FaultKind::StepTimeout { stall } => {
                    generation.switch.arm_stall(*stall);
                    let detail = format!(
                        "stall {} ms, step timeout {} ms",
                        stall.as_millis(),
                        self.plan.step_timeout.as_millis()
                    );
                    self.event("step_timeout", id, detail);
                }
                _ => {}
            }
        }
    }
}

/// Sends `item` to the pool; false if it stopped listening.
fn emit(tx: &mpsc::UnboundedSender<Item>, item: Item) -> bool {
    tx.send(item).is_ok()
}

/// Runs one request with its faults and retries, feeding `tx`.
async fn drive(shared: Arc<Shared>, request: Request, tx: mpsc::UnboundedSender<Item>) {
    let id = request.id;
    let start = *shared.start.get_or_init(Instant::now);
    let faults = shared.plan.decide(id, start.elapsed());
    let mut request = request;
    let (mut cancel_after, mut slow) = (None, None);
    let mut malformed = None;
    for f in &faults {
        match f {
            FaultKind::Malformed => {
                let m = Malformed::nth(shared.malformed_sent.fetch_add(1, Ordering::Relaxed));
                request = m.apply(&request, shared.context_tokens());
                malformed = Some(m);
                shared.event("malformed", id, m.label().into());
            }
            FaultKind::Cancel { after_tokens } => {
                cancel_after = Some(*after_tokens as u64);
                shared.event("cancel", id, format!("after {after_tokens} tokens"));
            }
            FaultKind::SlowClient { delay } => {
                slow = Some(*delay);
                shared.event(
                    "slow_client",
                    id,
                    format!("{} ms per event", delay.as_millis()),
                );
            }
            _ => {}
        }
    }
    shared.journal(id, |j| {
        j.faults = faults.iter().map(FaultKind::label).collect();
        j.malformed = malformed;
    });
    let mut accepted = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        shared.journal(id, |j| j.attempts = attempt);
        let (target, generation): (Arc<dyn Target>, Option<Arc<Generation>>) = match &shared.inner {
            Inner::Plain(t, _) => (t.clone(), None),
            Inner::Engine(engine) => match engine.current().await {
                Ok(g) => (g.target.clone(), Some(g)),
                Err(why) => {
                    let e = RequestError::new(ErrorKind::Server, why);
                    let outcome = Attempt::Failed("device_lost".into(), e);
                    if !finish_attempt(&shared, id, attempt, outcome, malformed.is_some(), &tx)
                        .await
                    {
                        return;
                    }
                    continue;
                }
            },
        };
        if attempt == 1 {
            if let Some(g) = &generation {
                shared.inject_engine_faults(id, &faults, g);
            }
        }
        let stream = target.send(request.clone());
        let outcome = run_attempt(
            &shared,
            stream,
            generation.as_deref(),
            cancel_after,
            slow,
            &mut accepted,
            &tx,
        )
        .await;
        if let (Attempt::Failed(reason, _), Some(g), Inner::Engine(engine)) =
            (&outcome, &generation, &shared.inner)
        {
            if reason == "device_lost" {
                engine.device_lost(g, None);
            }
        }
        if !finish_attempt(&shared, id, attempt, outcome, malformed.is_some(), &tx).await {
            return;
        }
    }
}

/// Books an attempt's end; returns true when the request should be tried again.
async fn finish_attempt(
    shared: &Shared,
    id: u64,
    attempt: u32,
    outcome: Attempt,
    malformed: bool,
    tx: &mpsc::UnboundedSender<Item>,
) -> bool {
    match outcome {
        Attempt::Done | Attempt::Abandoned => false,
        Attempt::ClientCancelled(tokens) => {
            shared.journal(id, |j| j.client_cancelled = true);
            let e = RequestError::new(
                ErrorKind::Cancelled,
                format!("the client cancelled after {tokens} tokens"),
            );
            emit(tx, Err(e));
            false
        }
        Attempt::Failed(reason, error) => {
            let again = !malformed && retryable(&reason) && attempt < shared.retry.max_attempts;
            shared.journal(id, |j| j.failures.push(reason));
            if again {
                tokio::time::sleep(shared.retry.backoff_before(attempt + 1)).await;
                return !tx.is_closed();
            }
            emit(tx, Err(error));
            false
        }
    }
}

/// One attempt: forwards events until the end, a client cancel, a step timeout or a failure.
async fn run_attempt(
    shared: &Shared,
    mut stream: EventStream,
    generation: Option<&Generation>,
    cancel_after: Option<u64>,
    slow: Option<Duration>,
    accepted: &mut bool,
    tx: &mpsc::UnboundedSender<Item>,
) -> Attempt {
    let mut running = false;
    let mut tokens = 0u64;
    let engine = match &shared.inner {
        Inner::Engine(e) => Some(e),
        Inner::Plain(..) => None,
    };
    loop {
        let next = if running {
            match tokio::time::timeout(shared.plan.step_timeout, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Some(g) = generation {
                        g.switch.release_stall();
                    }
                    let e = RequestError::new(
                        ErrorKind::Timeout,
                        format!(
                            "step timeout: no token within {} ms",
                            shared.plan.step_timeout.as_millis()
                        ),
                    );
                    return Attempt::Failed("step_timeout".into(), e);
                }
            }
        } else {
            stream.next().await
        };
        let stamp = |at: Instant| if slow.is_some() { Instant::now() } else { at };
        let forwarded = match next {
            None => {
                let e = RequestError::new(
                    ErrorKind::Protocol,
                    "the target's stream ended without done or error",
                );
                return Attempt::Failed("protocol".into(), e);
            }
            Some(Err(e)) => {
                let reason = classify(&e, generation);
                return Attempt::Failed(reason, e);
            }
            Some(Ok(Event::Accepted { at })) => {
                running = true;
                let first = !std::mem::replace(accepted, true);
                if first && !emit(tx, Ok(Event::Accepted { at: stamp(at) })) {
                    return Attempt::Abandoned;
                }
                if cancel_after == Some(0) {
                    return Attempt::ClientCancelled(0);
                }
                true
            }
            Some(Ok(Event::Tokens { at, count, text })) => {
                if let (Some(engine), Some(g)) = (engine, generation) {
                    engine.note_token(g.number, at);
                }
                tokens += count as u64;
                let at = stamp(at);
                if !emit(tx, Ok(Event::Tokens { at, count, text })) {
                    return Attempt::Abandoned;
                }
                if cancel_after.is_some_and(|k| tokens >= k) {
                    // Dropping the stream is the client going away.
                    drop(stream);
                    return Attempt::ClientCancelled(tokens);
                }
                true
            }
            Some(Ok(Event::Done { at, usage })) => {
                emit(
                    tx,
                    Ok(Event::Done {
                        at: stamp(at),
                        usage,
                    }),
                );
                return Attempt::Done;
            }
        };
        if forwarded {
            if let Some(delay) = slow {
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Aborts the request's task when the pool drops its stream.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Target for FaultTarget {
    fn describe(&self) -> String {
        let what = match &self.shared.inner {
            Inner::Engine(e) => e.describe(),
            Inner::Plain(t, _) => t.describe(),
        };
        format!("{what} with {} faults", self.shared.plan.faults.len())
    }

    fn send(&self, request: Request) -> EventStream {
        let shared = self.shared.clone();
        let start = futures_util::stream::once(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = AbortOnDrop(tokio::spawn(drive(shared, request, tx)));
            futures_util::stream::unfold((rx, task), |(mut rx, task)| async move {
                rx.recv().await.map(|item| (item, (rx, task)))
            })
        });
        Box::pin(start.flatten())
    }
}
