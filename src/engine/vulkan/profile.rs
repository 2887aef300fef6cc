//! Per-kernel GPU time summaries from the recorder's timestamps.
//!
//! Invariant: timings come from serialised dispatches (profile mode inserts a barrier before each),
//! so each dispatch's time is the gap between its timestamp and the previous one.

use std::collections::BTreeMap;
use std::fmt;

/// What the recorder remembers about one timed dispatch.
#[derive(Clone, Copy, Debug)]
pub struct DispatchRecord {
    /// Kernel label.
    pub label: &'static str,
    /// Estimated bytes moved.
    pub bytes: u64,
}

/// Totals for one kernel label.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct KernelStats {
    /// Dispatches.
    pub calls: u64,
    /// Total GPU time, microseconds.
    pub total_us: f64,
    /// Estimated bytes moved.
    pub bytes: u64,
}

impl KernelStats {
    /// Mean microseconds per call.
    pub fn mean_us(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.total_us / self.calls as f64
        }
    }

    /// Effective bandwidth in GB/s.
    pub fn gbps(&self) -> f64 {
        if self.total_us <= 0.0 {
            0.0
        } else {
            self.bytes as f64 / (self.total_us * 1e3)
        }
    }
}

/// Per-kernel totals, accumulated over any number of submissions.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Profile {
    /// Totals by kernel label.
    pub kernels: BTreeMap<&'static str, KernelStats>,
}

impl Profile {
    /// Adds one timed dispatch.
    pub fn add(&mut self, label: &'static str, us: f64, bytes: u64) {
        let k = self.kernels.entry(label).or_default();
        k.calls += 1;
        k.total_us += us;
        k.bytes += bytes;
    }

    /// Adds every kernel of `other`.
    pub fn merge(&mut self, other: &Profile) {
        for (l, s) in &other.kernels {
            let k = self.kernels.entry(l).or_default();
            k.calls += s.calls;
            k.total_us += s.total_us;
            k.bytes += s.bytes;
        }
    }

    /// Total GPU time, microseconds.
    pub fn total_us(&self) -> f64 {
        self.kernels.values().map(|k| k.total_us).sum()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:>8} {:>12} {:>10} {:>12} {:>9}",
            "kernel", "calls", "total µs", "mean µs", "MB moved", "GB/s"
        )?;
        let mut rows: Vec<_> = self.kernels.iter().collect();
        rows.sort_by(|a, b| b.1.total_us.total_cmp(&a.1.total_us));
        for (l, k) in rows {
            writeln!(
                f,
                "{:<22} {:>8} {:>12.1} {:>10.2} {:>12.2} {:>9.1}",
                l,
                k.calls,
                k.total_us,
                k.mean_us(),
                k.bytes as f64 / 1e6,
                k.gbps()
            )?;
        }
        write!(f, "total {:.1} µs", self.total_us())
    }
}
