//! One soak sample, and the per-interval request counts and latency histograms it is built from.
//!
//! Invariants: [`Interval`] is fed by the pool's record observer and the token counter of
//! [`CountingTarget`]; it holds counts and fixed-precision HdrHistograms only, so its memory does
//! not grow with the number of requests. Counts are taken (and reset) at every sample;
//! histograms at every checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::regression::LeakEstimate;
use crate::pool::histogram::{new_histogram, record as record_us};
use crate::pool::{ErrorKind, Event, EventStream, Request, RequestRecord, Target};

/// The memory kinds a leak verdict is given for, with the series each is read from.
pub const MEMORY_KINDS: [(&str, &str); 3] = [
    ("vram_own", "vram_own_mb"),
    ("vram_heap_used", "vram_heap_used_mb"),
    ("rss", "rss_mb"),
];

/// One sample; see the module header of [`super`] for the fields' meaning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Sample number in this soak run (continues across a resume).
    pub index: u64,
    /// Unix time, seconds (soak time under the virtual clock).
    pub ts: f64,
    /// Soak time, seconds.
    pub elapsed_s: f64,
    /// The engine's own accounting, MB (`None` for an HTTP target).
    pub vram_own_mb: Option<f64>,
    /// Device-local heap usage from VK_EXT_memory_budget, MB, where present.
    pub vram_heap_used_mb: Option<f64>,
    /// VRAM used according to vendor sysfs, MB, where present.
    pub gpu_sysfs_used_mb: Option<f64>,
    /// This process's resident memory, MB.
    pub rss_mb: Option<f64>,
    /// This process's CPU use since the last sample, % of one core.
    pub cpu_pct: Option<f64>,
    /// Output tokens streamed per (real) second over the interval.
    pub tokens_per_s: f64,
    /// Requests completed since the soak began (across resumes).
    pub requests_ok: u64,
    /// Requests failed since the soak began (across resumes).
    pub requests_failed: u64,
    /// Requests completed in this interval.
    pub interval_ok: u64,
    /// Requests failed in this interval.
    pub interval_failed: u64,
    /// Failures in this interval by kind.
    pub interval_errors: BTreeMap<String, u64>,
    /// The leak fit so far per memory kind (absent until it has enough points after warm-up).
    pub leak: BTreeMap<String, LeakEstimate>,
    /// Whether this sample is still inside the warm-up of the current segment.
    pub warming_up: bool,
    /// The checkpoint number written at this sample, if one was.
    pub checkpoint: Option<u64>,
    /// MiB held by the test-only planted leak.
    pub planted_leak_mb: Option<f64>,
}

/// Counts and histograms since the last take.
#[derive(Debug)]
pub struct Interval {
    /// Completed requests.
    pub ok: u64,
    /// Failed requests (cancellations at the end of the soak are not failures).
    pub failed: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// TTFT, µs (since the last checkpoint).
    pub ttft: Histogram<u64>,
    /// Inter-token gaps, µs (since the last checkpoint).
    pub itl: Histogram<u64>,
    /// End-to-end latency, µs (since the last checkpoint).
    pub e2e: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            ok: 0,
            failed: 0,
            errors: BTreeMap::new(),
            ttft: new_histogram(),
            itl: new_histogram(),
            e2e: new_histogram(),
        }
    }
}

/// The interval state shared by the pool's observer and the soak loop.
#[derive(Clone, Debug, Default)]
pub struct SharedInterval(pub Arc<Mutex<Interval>>);

impl SharedInterval {
    /// Runs `f` on the interval under its lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Folds one finished request in.
    pub fn observe(&self, r: &RequestRecord) {
        self.with(|i| match &r.error {
            None => {
                i.ok += 1;
                if let Some(v) = r.ttft_us() {
                    record_us(&mut i.ttft, v);
                }
                record_us(&mut i.e2e, r.e2e_us());
                for gap in r.itl_gaps_us() {
                    record_us(&mut i.itl, gap);
                }
            }
            Some(e) if e.kind == ErrorKind::Cancelled => {}
            Some(e) => {
                i.failed += 1;
                *i.errors.entry(e.kind.label()).or_insert(0) += 1;
            }
        })
    }

    /// Takes the counts, leaving zero.
    pub fn take_counts(&self) -> (u64, u64, BTreeMap<String, u64>) {
        self.with(|i| {
            (
                std::mem::take(&mut i.ok),
                std::mem::take(&mut i.failed),
                std::mem::take(&mut i.errors),
            )
        })
    }

    /// Takes the histograms, leaving empty ones.
    pub fn take_histograms(&self) -> [(&'static str, Histogram<u64>); 3] {
        self.with(|i| {
            [
                ("ttft", std::mem::replace(&mut i.ttft, new_histogram())),
                ("itl", std::mem::replace(&mut i.itl, new_histogram())),
                ("e2e", std::mem::replace(&mut i.e2e, new_histogram())),
            ]
        })
    }
}

/// A target that counts the output tokens streamed through it, as they arrive.
pub struct CountingTarget {
    inner: Arc<dyn Target>,
    tokens: Arc<AtomicU64>,
}

impl CountingTarget {
    /// Wraps `inner`; tokens are added to `tokens`.
    pub fn new(inner: Arc<dyn Target>, tokens: Arc<AtomicU64>) -> CountingTarget {
        CountingTarget { inner, tokens }
    }
}

impl Target for CountingTarget {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn send(&self, request: Request) -> EventStream {
        let tokens = self.tokens.clone();
        Box::pin(self.inner.send(request).inspect(move |item| {
            if let Ok(Event::Tokens { count, .. }) = item {
                tokens.fetch_add(u64::from(*count), Ordering::Relaxed);
            }
        }))
    }
}
