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
    fn absorb(&mut self, s: &KernelStats) {
        self.calls += s.calls;
        self.total_us += s.total_us;
        self.bytes += s.bytes;
    }

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
    /// Totals by kernel label and bytes per dispatch: one line per shape of a kernel (the 4096-
    /// and 11008-row products of one matvec apart), for the per-shape roofline.
    pub shapes: BTreeMap<(&'static str, u64), KernelStats>,
}

impl Profile {
    /// Adds one timed dispatch.
    pub fn add(&mut self, label: &'static str, us: f64, bytes: u64) {
        for k in [
            self.kernels.entry(label).or_default(),
            self.shapes.entry((label, bytes)).or_default(),
        ] {
            k.calls += 1;
            k.total_us += us;
            k.bytes += bytes;
        }
    }

    /// Adds every kernel of `other`.
    pub fn merge(&mut self, other: &Profile) {
        for (l, s) in &other.kernels {
            self.kernels.entry(l).or_default().absorb(s);
        }
        for (key, s) in &other.shapes {
            self.shapes.entry(*key).or_default().absorb(s);
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
        writeln!(f, "total {:.1} µs", self.total_us())?;
        // Kernels with several dispatch sizes: one line per size, the ten largest by time.
        let mut shapes: Vec<_> = self
            .shapes
            .iter()
            .filter(|((l, _), _)| self.shapes.keys().filter(|(m, _)| m == l).count() > 1)
            .collect();
        shapes.sort_by(|a, b| b.1.total_us.total_cmp(&a.1.total_us));
        if !shapes.is_empty() {
            writeln!(
                f,
                "{:<22} {:>8} {:>12} {:>10} {:>12} {:>9}",
                "by dispatch size", "calls", "total µs", "mean µs", "MB each", "GB/s"
            )?;
        }
        for ((l, b), k) in shapes.into_iter().take(10) {
            writeln!(
                f,
                "{:<22} {:>8} {:>12.1} {:>10.2} {:>12.2} {:>9.1}",
                l,
                k.calls,
                k.total_us,
                k.mean_us(),
                *b as f64 / 1e6,
                k.gbps()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_one_kernel_are_kept_apart_and_merged() {
        let mut a = Profile::default();
        a.add("matvec", 10.0, 1000);
        a.add("matvec", 30.0, 3000);
        a.add("matvec", 12.0, 1000);
        a.add("norm", 5.0, 64);
        let mut b = Profile::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(b.kernels["matvec"].calls, 6);
        assert_eq!(b.shapes[&("matvec", 1000)].calls, 4);
        assert_eq!(b.shapes[&("matvec", 1000)].total_us, 44.0);
        assert_eq!(b.shapes[&("matvec", 3000)].bytes, 6000);
        let text = b.to_string();
        // One size-table line per matvec size, none for norm (one size), largest time first.
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("by dispatch size"))
            .skip(1)
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("matvec") && lines[0].contains("60.0"),
            "{text}"
        );
        assert!(lines[1].contains("44.0"), "{text}");
    }
}
