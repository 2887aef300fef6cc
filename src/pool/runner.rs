//! Running a load: [`run`] drives a closed or open loop against a [`Target`] and folds every
//! request's record into a [`PoolResult`].
//!
//! Threading: the run is one future (it must be polled inside a tokio runtime). Scheduling
//! (open-loop dispatch, closed-loop users) and the request source live in that future; every
//! request executes in its own spawned task, so slow consumers of one stream do not delay the
//! timestamps of another. Records flow to a collector in the same future through a channel.
//!
//! Timer resolution: tokio's timers tick in milliseconds, so an open-loop send (or a closed-loop
//! send after think time) typically leaves up to ~1 ms after its due time. That lateness is real
//! client-side delay: it is reported as queue wait and included in TTFT and E2E, while `prefill`
//! (sent → first token) excludes it.
//!
//! Guarantees: every issued request yields exactly one record, completed or failed (a panicking
//! target is caught and counted as `internal`); dropped open-loop arrivals are records too; a
//! request never outlives `request_timeout` after its send; cancelling the token stops issuing
//! and fails the requests in flight as `cancelled`, and the result keeps everything measured.
//! A failing [`RequestSource`] stops the run and its error is returned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::arrivals::Arrivals;
use super::config::{Load, PoolConfig};
use super::metrics::{Aggregator, PoolResult};
use super::progress::{Progress, REDRAW};
use super::record::{RequestRecord, TokenChunk};
use super::request::{Request, RequestSource};
use super::target::{ErrorKind, Event, RequestError, Target, Usage};
use crate::Result;

/// µs from `start` to `t` (0 if `t` is earlier).
fn micros(start: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(start).as_micros() as u64
}

/// What every part of a run shares.
struct Ctx {
    target: Arc<dyn Target>,
    start: Instant,
    deadline: Option<Instant>,
    max_requests: Option<u64>,
    timeout: Duration,
    cancel: CancellationToken,
    sent: Arc<AtomicU64>,
    records: mpsc::UnboundedSender<RequestRecord>,
}

impl Ctx {
    /// Whether request `i` may still be issued.
    fn within_count(&self, i: u64) -> bool {
        self.max_requests.is_none_or(|m| i < m)
    }

    /// Spawns the execution of `request`, due at `scheduled`; the task sends the record and then
    /// releases `permit`.
    fn spawn(
        &self,
        request: Request,
        scheduled: Instant,
        permit: Option<OwnedSemaphorePermit>,
    ) -> JoinHandle<()> {
        let (id, start) = (request.id, self.start);
        let target = self.target.clone();
        let (timeout, cancel, sent) = (self.timeout, self.cancel.clone(), self.sent.clone());
        let records = self.records.clone();
        tokio::spawn(async move {
            let execution = execute(target, request, scheduled, start, timeout, cancel, sent);
            let record = std::panic::AssertUnwindSafe(execution)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    let scheduled_us = micros(start, scheduled);
                    RequestRecord {
                        sent_us: Some(scheduled_us),
                        end_us: micros(start, Instant::now()),
                        error: Some(RequestError::new(
                            ErrorKind::Internal,
                            "the target panicked",
                        )),
                        ..RequestRecord::new(id, scheduled_us)
                    }
                });
            // The collector outlives every task; a send can only fail if the run was dropped.
            let _ = records.send(record);
            drop(permit);
        })
    }
}

/// Sends one request and records its events until done, error, timeout or cancellation.
async fn execute(
    target: Arc<dyn Target>,
    request: Request,
    scheduled: Instant,
    start: Instant,
    timeout: Duration,
    cancel: CancellationToken,
    sent_counter: Arc<AtomicU64>,
) -> RequestRecord {
    let scheduled_us = micros(start, scheduled);
    let mut record = RequestRecord::new(request.id, scheduled_us);
    let mut usage: Option<Usage> = None;
    let sent = Instant::now();
    record.sent_us = Some(micros(start, sent));
    sent_counter.fetch_add(1, Ordering::Relaxed);
    let mut stream = target.send(request);
    let outcome = {
        let (rec, usage) = (&mut record, &mut usage);
        let drive = async move {
            while let Some(item) = stream.next().await {
                match item? {
                    Event::Accepted { at } => rec.accepted_us = Some(micros(start, at)),
                    Event::Tokens { at, count, .. } => rec.chunks.push(TokenChunk {
                        at_us: micros(start, at),
                        tokens: count.max(1),
                    }),
                    Event::Done { at, usage: u } => {
                        rec.end_us = micros(start, at);
                        *usage = u;
                        return Ok(());
                    }
                }
            }
            Err(RequestError::new(
                ErrorKind::Protocol,
                "the target's stream ended without done or error",
            ))
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(RequestError::new(ErrorKind::Cancelled, "run cancelled")),
            r = tokio::time::timeout(timeout, drive) => r.unwrap_or_else(|_| {
                Err(RequestError::new(
                    ErrorKind::Timeout,
                    format!("no complete answer within {:.3} s", timeout.as_secs_f64()),
                ))
            }),
        }
    };
    let streamed = record.streamed_tokens();
    match outcome {
        Ok(()) => {
            record.tokens = usage.map_or(streamed, |u| u.completion_tokens);
            record.prompt_tokens = usage.map(|u| u.prompt_tokens);
        }
        Err(error) => {
            record.end_us = micros(start, Instant::now());
            record.tokens = streamed;
            record.error = Some(error);
        }
    }
    record
}

/// The open loop: dispatch each arrival at its due time, or drop it at the in-flight cap.
async fn open_loop(
    ctx: &Ctx,
    source: &mut RequestSource,
    arrivals: &Arrivals,
    max_in_flight: usize,
    duration: Option<Duration>,
) -> Result<()> {
    let permits = Arc::new(Semaphore::new(max_in_flight));
    for (i, offset) in (0u64..).zip(arrivals.schedule(duration)?) {
        if !ctx.within_count(i) {
            break;
        }
        let scheduled = ctx.start + offset;
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(scheduled.into()) => {}
        }
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let request = source.next(i)?;
                ctx.spawn(request, scheduled, Some(permit));
            }
            Err(_) => {
                let message = format!("{max_in_flight} requests in flight (the cap)");
                let record = RequestRecord::unsent(
                    i,
                    micros(ctx.start, scheduled),
                    ErrorKind::Dropped,
                    &message,
                );
                let _ = ctx.records.send(record);
            }
        }
    }
    Ok(())
}

/// The closed loop: `users` virtual users, each sending, waiting for the answer, thinking.
async fn closed_loop(
    ctx: &Ctx,
    source: &mut RequestSource,
    users: u32,
    think: Duration,
) -> Result<()> {
    let source = Mutex::new(source);
    let next = AtomicU64::new(0);
    let user = |_: u32| async {
        let mut due = ctx.start;
        let done: Result<()> = Ok(());
        loop {
            if ctx.cancel.is_cancelled() || ctx.deadline.is_some_and(|d| due >= d) {
                return done;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if !ctx.within_count(i) {
                return done;
            }
            let request = {
                // A poisoned lock only means another user panicked in the source; the source
                // itself is still usable.
                let mut source = source.lock().unwrap_or_else(|e| e.into_inner());
                source.next(i)?
            };
            // The task catches panics, so the handle only fails if the runtime shuts down.
            let _ = ctx.spawn(request, due, None).await;
            due = Instant::now() + think;
            if !think.is_zero() {
                tokio::select! {
                    biased;
                    _ = ctx.cancel.cancelled() => return done,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
            }
        }
    };
    futures_util::future::try_join_all((0..users).map(user)).await?;
    Ok(())
}

/// Sees every request's record as it is folded into the result (e.g. a soak's interval counts).
pub type RecordObserver = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// Runs `config.load` against `target` with requests from `source`; see the module header.
/// `cancel` stops the run early (e.g. on Ctrl-C); the result then holds what was measured.
pub async fn run(
    target: Arc<dyn Target>,
    source: &mut RequestSource,
    config: &PoolConfig,
    cancel: CancellationToken,
) -> Result<PoolResult> {
    run_observed(target, source, config, cancel, None).await
}

/// [`run`], also handing each record to `observer` (on the collector, before aggregation).
pub async fn run_observed(
    target: Arc<dyn Target>,
    source: &mut RequestSource,
    config: &PoolConfig,
    cancel: CancellationToken,
    observer: Option<RecordObserver>,
) -> Result<PoolResult> {
    config.validate()?;
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let start = Instant::now();
    let (records, mut inbox) = mpsc::unbounded_channel();
    let sent = Arc::new(AtomicU64::new(0));
    let description = target.describe();
    let ctx = Ctx {
        target,
        start,
        deadline: config.duration.map(|d| start + d),
        max_requests: config.max_requests,
        timeout: config.request_timeout,
        cancel: cancel.child_token(),
        sent: sent.clone(),
        records,
    };
    let driver = async move {
        let outcome = match &config.load {
            Load::Closed { users, think } => closed_loop(&ctx, source, *users, *think).await,
            Load::Open {
                arrivals,
                max_in_flight,
            } => open_loop(&ctx, source, arrivals, *max_in_flight, config.duration).await,
        };
        if outcome.is_err() {
            ctx.cancel.cancel();
        }
        outcome // `ctx` and its channel end drop here: the collector ends with the last task
    };
    let mut aggregator = Aggregator::new(config);
    let mut progress = Progress::new(config.progress, start);
    let collector = async {
        let mut ticker = tokio::time::interval(REDRAW);
        loop {
            let finished = |agg: &Aggregator| agg.counts.completed + agg.counts.failed;
            tokio::select! {
                record = inbox.recv() => match record {
                    Some(record) => {
                        if let Some(observe) = &observer {
                            observe(&record);
                        }
                        aggregator.add(record)
                    }
                    None => break,
                },
                _ = ticker.tick() => {}
            }
            let c = &aggregator.counts;
            let in_flight = sent
                .load(Ordering::Relaxed)
                .saturating_sub(finished(&aggregator) - c.dropped);
            progress.update(&aggregator, in_flight, false);
        }
    };
    let (outcome, ()) = tokio::join!(driver, collector);
    progress.finish();
    outcome?;
    let wall_s = if aggregator.last_end_us > 0 {
        aggregator.last_end_us as f64 / 1e6
    } else {
        start.elapsed().as_secs_f64()
    };
    Ok(aggregator.finish(description, config.clone(), started_unix_s, wall_s))
}
