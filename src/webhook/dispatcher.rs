//! The background sender: a bounded queue in front of one worker thread that runs a
//! single-threaded tokio runtime and delivers with timeouts, retries and backoff.
//!
//! Invariants:
//! - [`Dispatcher::send`] only takes a short lock and pushes; it never waits on the network. A
//!   full queue drops its oldest notification (the newest state matters most) and counts it.
//! - At most `concurrency` deliveries run at once; a job leaves the queue only when a slot is
//!   free, so a hanging endpoint occupies slots, never the caller.
//! - A delivery's record is stored (when it names a run) *before* it stops counting as in flight,
//!   so after [`Dispatcher::flush`] returns `true` every outcome is in the store.
//! - The worker opens its own connection to each results database it writes to (SQLite in WAL
//!   mode serves several connections); the caller's `Store` is never shared across threads.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::{Delivery, DeliveryPolicy, DeliveryStats, Notification, Outcome, SecretUrl, Webhook};
use crate::store::{RunId, Store};
use crate::{Error, Result};

/// How many delivery records [`Dispatcher::recent`] keeps.
const RECENT: usize = 64;

/// A results run to store a delivery record in (as a `webhook` event).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreTarget {
    /// The results database file.
    pub path: PathBuf,
    /// The run the event goes into.
    pub run: RunId,
}

struct Job {
    webhook: Arc<Webhook>,
    note: Notification,
    store: Option<StoreTarget>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Drop records the worker has yet to store.
    dropped: Vec<(Delivery, Option<StoreTarget>)>,
    /// Jobs being delivered plus drop records being stored.
    in_flight: usize,
    closed: bool,
    stats: DeliveryStats,
    recent: VecDeque<Delivery>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled whenever in-flight work finishes (flush waits on it).
    changed: Condvar,
    /// Wakes the worker when a job arrives or the dispatcher closes.
    wake: Notify,
    policy: DeliveryPolicy,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Counters and a queue stay usable after a panic elsewhere; losing them would be worse.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note_outcome(q: &mut Queue, d: &Delivery) {
        match d.outcome {
            Outcome::Delivered => q.stats.sent += 1,
            Outcome::Failed => q.stats.failed += 1,
            Outcome::Dropped => q.stats.dropped += 1,
        }
        q.stats.retries += u64::from(d.attempts.saturating_sub(1));
        if q.recent.len() == RECENT {
            q.recent.pop_front();
        }
        q.recent.push_back(d.clone());
    }
}

/// Sends notifications to webhooks in the background. Dropping it waits up to the policy's
/// `drop_grace` for queued notifications, then counts what is left as dropped.
pub struct Dispatcher {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts the worker thread with `policy`.
    pub fn new(policy: DeliveryPolicy) -> Result<Dispatcher> {
        let policy = policy.sane();
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| Error::Invalid(format!("webhook HTTP client: {}", e.without_url())))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("webhook runtime: {e}")))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            wake: Notify::new(),
            policy,
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("rawrxd-webhook".into())
            .spawn(move || runtime.block_on(work(worker_shared, client)))
            .map_err(|e| Error::Invalid(format!("cannot start the webhook thread: {e}")))?;
        Ok(Dispatcher {
            shared,
            worker: Some(worker),
        })
    }

    /// The delivery policy in force.
    pub fn policy(&self) -> &DeliveryPolicy {
        &self.shared.policy
    }

    /// Queues `note` for `webhook`; never blocks on the network. When the queue is full the
    /// oldest queued notification is dropped (and recorded as such). `store` names the run the
    /// delivery record goes into.
    pub fn send(&self, webhook: &Arc<Webhook>, note: Notification, store: Option<StoreTarget>) {
        let evicted = {
            let mut q = self.shared.lock();
            q.stats.queued += 1;
            let job = Job {
                webhook: Arc::clone(webhook),
                note,
                store,
            };
            let evicted = if q.closed {
                Some((job, "the dispatcher is shut down"))
            } else {
                let old = if q.jobs.len() >= self.shared.policy.queue_capacity {
                    q.jobs.pop_front()
                } else {
                    None
                };
                q.jobs.push_back(job);
                old.map(|j| (j, "queue full"))
            };
            if let Some((job, why)) = &evicted {
                let d = Delivery::dropped(
                    job.webhook.label(),
                    job.webhook.format().name(),
                    &job.note,
                    why,
                );
                Shared::note_outcome(&mut q, &d);
                q.dropped.push((d, job.store.clone()));
            }
            evicted
        };
        self.shared.wake.notify_one();
        if let Some((job, why)) = evicted {
            ::log::warn!(
                target: "rawrxd::webhook",
                "{}: dropped a {} notification{} ({why}, capacity {})",
                job.webhook.label(),
                job.note.state.name(),
                job.note
                    .alert
                    .as_deref()
                    .map(|a| format!(" of '{a}'"))
                    .unwrap_or_default(),
                self.shared.policy.queue_capacity
            );
        }
    }

    /// Waits until nothing is queued or in flight, at most `timeout`; `true` when all is done.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.lock();
        loop {
            if q.jobs.is_empty() && q.in_flight == 0 && q.dropped.is_empty() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = match self.shared.changed.wait_timeout(q, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// The counters so far (with `pending` and `in_flight` as of now).
    pub fn stats(&self) -> DeliveryStats {
        let q = self.shared.lock();
        let mut s = q.stats;
        s.pending = q.jobs.len() as u64;
        s.in_flight = q.in_flight as u64;
        s
    }

    /// The latest delivery records, oldest first (at most 64).
    pub fn recent(&self) -> Vec<Delivery> {
        self.shared.lock().recent.iter().cloned().collect()
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let done = self.flush(self.shared.policy.drop_grace);
        if done {
            if let Some(w) = self.worker.take() {
                // The worker exits once closed and idle; a panic in it has been reported already.
                let _ = w.join();
            }
            return;
        }
        let left = {
            let mut q = self.shared.lock();
            let left: Vec<Job> = q.jobs.drain(..).collect();
            for j in &left {
                let d = Delivery::dropped(
                    j.webhook.label(),
                    j.webhook.format().name(),
                    &j.note,
                    "shut down before delivery",
                );
                Shared::note_outcome(&mut q, &d);
            }
            left.len() + q.in_flight
        };
        ::log::warn!(
            target: "rawrxd::webhook",
            "{left} webhook notification(s) not delivered when the run ended"
        );
    }
}

/// Open results databases of the worker, by path.
#[derive(Default)]
struct Stores(HashMap<PathBuf, Store>);

impl Stores {
    fn record(&mut self, d: &Delivery, target: Option<&StoreTarget>) {
        let Some(t) = target else { return };
        if !self.0.contains_key(&t.path) {
            match Store::open(&t.path) {
                Ok(s) => {
                    self.0.insert(t.path.clone(), s);
                }
                Err(e) => {
                    ::log::warn!(target: "rawrxd::webhook", "cannot record webhook delivery: {e}");
                    return;
                }
            }
        }
        if let Some(s) = self.0.get(&t.path) {
            if let Err(e) = s.record_event(t.run, "webhook", &d.to_json()) {
                ::log::warn!(target: "rawrxd::webhook", "cannot record webhook delivery: {e}");
            }
        }
    }
}

/// The worker: takes jobs when a slot is free, delivers each in its own task.
async fn work(shared: Arc<Shared>, client: reqwest::Client) {
    let slots = Arc::new(Semaphore::new(shared.policy.concurrency));
    let stores = Arc::new(Mutex::new(Stores::default()));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let job = loop {
            let (job, dropped, done) = {
                let mut q = shared.lock();
                let dropped = std::mem::take(&mut q.dropped);
                q.in_flight += dropped.len();
                let job = q.jobs.pop_front();
                if job.is_some() {
                    q.in_flight += 1;
                }
                let done = q.closed && q.jobs.is_empty();
                (job, dropped, done)
            };
            if !dropped.is_empty() {
                let n = dropped.len();
                {
                    let mut st = stores.lock().unwrap_or_else(|e| e.into_inner());
                    for (d, t) in &dropped {
                        st.record(d, t.as_ref());
                    }
                }
                shared.lock().in_flight -= n;
                shared.changed.notify_all();
            }
            if job.is_some() || done {
                break job;
            }
            shared.wake.notified().await;
        };
        let Some(job) = job else { break };
        let shared = Arc::clone(&shared);
        let client = client.clone();
        let stores = Arc::clone(&stores);
        tokio::spawn(async move {
            let d = deliver(&client, &job, &shared.policy).await;
            match d.outcome {
                Outcome::Delivered => ::log::debug!(
                    target: "rawrxd::webhook",
                    "{}: delivered {} notification in {} attempt(s), {:.3} s",
                    d.webhook,
                    d.state,
                    d.attempts,
                    d.latency_s
                ),
                _ => ::log::warn!(
                    target: "rawrxd::webhook",
                    "{}: {} notification{} not delivered after {} attempt(s): {}",
                    d.webhook,
                    d.state,
                    d.alert.as_deref().map(|a| format!(" of '{a}'")).unwrap_or_default(),
                    d.attempts,
                    d.error.as_deref().unwrap_or("failed")
                ),
            }
            stores
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(&d, job.store.as_ref());
            {
                let mut q = shared.lock();
                Shared::note_outcome(&mut q, &d);
                q.in_flight -= 1;
            }
            shared.changed.notify_all();
            drop(permit);
        });
    }
    // Let the deliveries still running finish before the runtime goes away.
    let _ = slots
        .acquire_many(u32::try_from(shared.policy.concurrency).unwrap_or(u32::MAX))
        .await;
}

/// Statuses worth another try: request timeout, too early, too many requests, server errors.
fn retryable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error()
}

/// A `Retry-After: <seconds>` header.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A transport error as text, with its causes, never naming the URL.
fn describe(e: reqwest::Error, url: &SecretUrl, timeout: Duration) -> String {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        format!("timed out after {:.3} s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    url.scrub(&text)
}

/// One notification, with retries; returns its record.
async fn deliver(client: &reqwest::Client, job: &Job, policy: &DeliveryPolicy) -> Delivery {
    let body = job.note.payload(job.webhook.format());
    let start = Instant::now();
    let mut attempts = 0;
    let mut status = None;
    let mut error;
    let outcome = loop {
        attempts += 1;
        let mut wait = policy.backoff(attempts);
        match client
            .post(job.webhook.url().expose().clone())
            .json(&body)
            .send()
            .await
        {
            Ok(resp) => {
                let s = resp.status();
                status = Some(s.as_u16());
                if s.is_success() {
                    error = None;
                    break Outcome::Delivered;
                }
                error = Some(format!("HTTP {s}"));
                if !retryable(s) {
                    break Outcome::Failed;
                }
                if let Some(ra) = retry_after(&resp) {
                    wait = wait.max(ra).min(policy.backoff_max);
                }
            }
            Err(e) => error = Some(describe(e, job.webhook.url(), policy.timeout)),
        }
        if attempts >= policy.tries {
            break Outcome::Failed;
        }
        tokio::time::sleep(wait).await;
    };
    Delivery {
        webhook: job.webhook.label().to_string(),
        format: job.webhook.format().name().to_string(),
        alert: job.note.alert.clone(),
        state: job.note.state.name().to_string(),
        outcome,
        status,
        attempts,
        latency_s: start.elapsed().as_secs_f64(),
        error,
        run_id: job.note.run_id,
    }
}
