//! Histograms as stored: HdrHistogram's V2 (deflate-compressed) serialization, the format every
//! HdrHistogram implementation reads, so stored runs can be merged and re-queried at any
//! percentile later. Summaries carry the percentiles reports quote.

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::Serialize;

/// The percentiles exports and summaries report, with their labels.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
];

/// A histogram reduced to the numbers reports quote; values are in the histogram's unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramSummary {
    /// The metric name.
    pub name: String,
    /// The unit of the recorded values.
    pub unit: String,
    /// How many values were recorded.
    pub count: u64,
    /// The smallest recorded value (within the histogram's precision).
    pub min: u64,
    /// The mean.
    pub mean: f64,
    /// The standard deviation (population).
    pub stdev: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p999: u64,
    /// The largest recorded value (within the histogram's precision).
    pub max: u64,
}

impl HistogramSummary {
    /// Summarizes `h`.
    pub fn of(name: &str, unit: &str, h: &Histogram<u64>) -> Self {
        HistogramSummary {
            name: name.to_string(),
            unit: unit.to_string(),
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_percentile(50.0),
            p90: h.value_at_percentile(90.0),
            p95: h.value_at_percentile(95.0),
            p99: h.value_at_percentile(99.0),
            p999: h.value_at_percentile(99.9),
            max: h.max(),
        }
    }

    /// `(label, value)` for each of [`PERCENTILES`] followed by `max`.
    pub fn percentiles(&self) -> [(&'static str, u64); 6] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p95", self.p95),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("max", self.max),
        ]
    }
}

/// `h` in V2 deflate format.
pub(crate) fn serialize(h: &Histogram<u64>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(|e| format!("cannot serialize: {e:?}"))?;
    Ok(out)
}

/// A histogram from a V2 (plain or deflate) blob.
pub(crate) fn deserialize(blob: &[u8]) -> Result<Histogram<u64>, String> {
    let mut reader = blob;
    Deserializer::new()
        .deserialize(&mut reader)
        .map_err(|e| format!("damaged HdrHistogram blob: {e:?}"))
}

/// Adds `next` into `acc` (which grows to cover `next`'s range).
pub(crate) fn merge_into(
    acc: &mut Option<Histogram<u64>>,
    next: Histogram<u64>,
) -> Result<(), String> {
    match acc {
        None => {
            let mut h = next;
            h.auto(true);
            *acc = Some(h);
            Ok(())
        }
        Some(h) => h.add(&next).map_err(|e| format!("cannot merge: {e:?}")),
    }
}
