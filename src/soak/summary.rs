//! [`SoakSummary`]: what a soak returns — its run, how it ended, request totals, throughput and
//! the leak verdict per memory kind — and its plain-text form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::regression::LeakEstimate;
use super::sample::Sample;
use crate::store::{RunId, RunStatus};

/// The outcome of a soak.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSummary {
    /// The soak's run in the results store.
    pub run_id: RunId,
    /// How the run ended: `ok` or `interrupted`.
    pub status: RunStatus,
    /// Why it ended ("duration reached", "interrupted", "stopped by on_sample").
    pub reason: String,
    /// Whether this call resumed an earlier run.
    pub resumed: bool,
    /// Process lifetimes (segments) of the run so far.
    pub segments: u64,
    /// Soak time reached, s.
    pub elapsed_s: f64,
    /// Samples in the run (across resumes).
    pub samples: u64,
    /// Checkpoints in the run (across resumes).
    pub checkpoints: u64,
    /// Requests completed in the run (across resumes).
    pub requests_ok: u64,
    /// Requests failed in the run (across resumes).
    pub requests_failed: u64,
    /// Output tokens streamed by this call.
    pub tokens: u64,
    /// Output tokens per wall-clock second of this call.
    pub tokens_per_s: f64,
    /// The leak threshold the verdicts were judged with, MB/h.
    pub threshold_mb_per_h: f64,
    /// The leak fit per memory kind (kinds without enough points are absent).
    pub leak: BTreeMap<String, LeakEstimate>,
    /// The last sample.
    pub last: Sample,
    /// The pool's report of this call's load, if it ended cleanly.
    pub pool: Option<String>,
}

impl SoakSummary {
    /// A plain-text report.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soak run {} {} ({}): {:.0} s of soak time, {} samples, {} checkpoints{}",
            self.run_id,
            self.status,
            self.reason,
            self.elapsed_s,
            self.samples,
            self.checkpoints,
            if self.resumed { ", resumed" } else { "" }
        );
        let _ = writeln!(
            out,
            "requests: {} ok, {} failed; {:.1} output tok/s",
            self.requests_ok, self.requests_failed, self.tokens_per_s
        );
        let _ = writeln!(
            out,
            "{:<16}{:>6}{:>14}{:>14}{:>14}  verdict (threshold ±{:.3} MB/h)",
            "memory", "n", "slope MB/h", "ci95 lo", "ci95 hi", self.threshold_mb_per_h
        );
        for (kind, e) in &self.leak {
            let _ = writeln!(
                out,
                "{:<16}{:>6}{:>14.4}{:>14.4}{:>14.4}  {}",
                kind,
                e.n,
                e.slope,
                e.lo,
                e.hi,
                e.verdict.as_str()
            );
        }
        if self.leak.is_empty() {
            let _ = writeln!(out, "(no leak fit yet: too few samples after warm-up)");
        }
        out
    }
}
