//! Live counters of a scheduler, readable from any thread while it runs.
//!
//! Counters only grow; gauges (`queue_depth`, `running`) are set by the scheduler thread after
//! every change; memory after every step, device heaps (a driver query) at most once a second. Every submitted request ends up in exactly one of `rejected`, `completed`,
//! `failed` or `cancelled` (once it ended), so
//! `submitted = rejected + completed + failed + cancelled + queue_depth + running`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

use super::request::{FinishReason, GenErrorKind};
use crate::engine::{HeapUsage, MemoryUsage};

/// The counters; the scheduler owns the writing side.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    pub queue_depth: AtomicU64,
    pub running: AtomicU64,
    pub submitted: AtomicU64,
    pub rejected: AtomicU64,
    pub admitted: AtomicU64,
    pub completed_stop: AtomicU64,
    pub completed_length: AtomicU64,
    pub completed_context: AtomicU64,
    pub failed_timeout: AtomicU64,
    pub failed_engine: AtomicU64,
    pub failed_shutdown: AtomicU64,
    pub cancelled: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub steps: AtomicU64,
    pub step_tokens: AtomicU64,
    pub memory: Mutex<MemoryUsage>,
    pub heaps: Mutex<Vec<HeapUsage>>,
}

impl Metrics {
    pub fn finished(&self, reason: FinishReason) {
        match reason {
            FinishReason::Stop => &self.completed_stop,
            FinishReason::Length => &self.completed_length,
            FinishReason::ContextFull => &self.completed_context,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn failed(&self, kind: GenErrorKind) {
        match kind {
            GenErrorKind::Timeout => &self.failed_timeout,
            GenErrorKind::Engine => &self.failed_engine,
            GenErrorKind::Shutdown => &self.failed_shutdown,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn set_memory(&self, m: MemoryUsage) {
        *self.memory.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }

    pub fn set_heaps(&self, h: Vec<HeapUsage>) {
        *self.heaps.lock().unwrap_or_else(|e| e.into_inner()) = h;
    }

    pub fn heaps(&self) -> Vec<HeapUsage> {
        self.heaps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot(&self, n_slots: usize, n_ctx: usize) -> MetricsSnapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        MetricsSnapshot {
            n_slots,
            n_ctx,
            queue_depth: g(&self.queue_depth),
            running: g(&self.running),
            submitted: g(&self.submitted),
            rejected: g(&self.rejected),
            admitted: g(&self.admitted),
            completed: FinishCounts {
                stop: g(&self.completed_stop),
                length: g(&self.completed_length),
                context_full: g(&self.completed_context),
            },
            failed: FailCounts {
                timeout: g(&self.failed_timeout),
                engine: g(&self.failed_engine),
                shutdown: g(&self.failed_shutdown),
            },
            cancelled: g(&self.cancelled),
            prompt_tokens: g(&self.prompt_tokens),
            generated_tokens: g(&self.generated_tokens),
            steps: g(&self.steps),
            step_tokens: g(&self.step_tokens),
            memory: *self.memory.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Completed requests by finish reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FinishCounts {
    pub stop: u64,
    pub length: u64,
    pub context_full: u64,
}

impl FinishCounts {
    /// All completed requests.
    pub fn total(&self) -> u64 {
        self.stop + self.length + self.context_full
    }
}

/// Failed requests by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailCounts {
    pub timeout: u64,
    pub engine: u64,
    pub shutdown: u64,
}

impl FailCounts {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.timeout + self.engine + self.shutdown
    }
}

/// The scheduler's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// KV cache slots (the maximum batch).
    pub n_slots: usize,
    /// Positions per slot.
    pub n_ctx: usize,
    /// Requests waiting for a slot.
    pub queue_depth: u64,
    /// Sequences holding a slot.
    pub running: u64,
    /// Requests offered to `submit`.
    pub submitted: u64,
    /// Requests refused at submission (queue full, invalid, shut down).
    pub rejected: u64,
    /// Requests that got a slot.
    pub admitted: u64,
    /// Requests that finished normally.
    pub completed: FinishCounts,
    /// Requests that failed.
    pub failed: FailCounts,
    /// Requests whose client went away before the end.
    pub cancelled: u64,
    /// Prompt tokens of admitted requests.
    pub prompt_tokens: u64,
    /// Tokens emitted.
    pub generated_tokens: u64,
    /// Engine steps run.
    pub steps: u64,
    /// Tokens fed to the engine over all steps (prefill and decode).
    pub step_tokens: u64,
    /// Memory the engine holds.
    pub memory: MemoryUsage,
}
