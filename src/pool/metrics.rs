//! Aggregation of [`RequestRecord`]s into a [`PoolResult`]: latency histograms, counts by
//! outcome, throughput and goodput.
//!
//! Invariants of a result: `scheduled = completed + failed`; `failed` is the sum of `errors`;
//! `sent = scheduled − dropped`. Latency histograms hold completed requests only (errors appear
//! in counts and as goodput misses); queue wait holds every request that was sent.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::config::PoolConfig;
use super::histogram::{new_histogram, record as record_us, serde_v2, Percentiles};
use super::record::{RequestRecord, Slo};
use super::target::ErrorKind;

/// The run's latency histograms, µs.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Histograms {
    /// Scheduled → first token.
    #[serde(with = "serde_v2")]
    pub ttft: Histogram<u64>,
    /// Every inter-token gap, pooled over requests.
    #[serde(with = "serde_v2")]
    pub itl: Histogram<u64>,
    /// Per-request time per output token.
    #[serde(with = "serde_v2")]
    pub tpot: Histogram<u64>,
    /// Scheduled → last token.
    #[serde(with = "serde_v2")]
    pub e2e: Histogram<u64>,
    /// Scheduled → sent.
    #[serde(with = "serde_v2")]
    pub queue_wait: Histogram<u64>,
    /// Sent → first token.
    #[serde(with = "serde_v2")]
    pub prefill: Histogram<u64>,
    /// First → last token.
    #[serde(with = "serde_v2")]
    pub decode: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms {
            ttft: new_histogram(),
            itl: new_histogram(),
            tpot: new_histogram(),
            e2e: new_histogram(),
            queue_wait: new_histogram(),
            prefill: new_histogram(),
            decode: new_histogram(),
        }
    }
}

impl Histograms {
    /// (name, histogram) in report order.
    pub fn named(&self) -> [(&'static str, &Histogram<u64>); 7] {
        [
            ("ttft", &self.ttft),
            ("itl", &self.itl),
            ("tpot", &self.tpot),
            ("e2e", &self.e2e),
            ("queue_wait", &self.queue_wait),
            ("prefill", &self.prefill),
            ("decode", &self.decode),
        ]
    }
}

/// Percentiles of every metric, ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub ttft: Percentiles,
    pub itl: Percentiles,
    pub tpot: Percentiles,
    pub e2e: Percentiles,
    pub queue_wait: Percentiles,
    pub prefill: Percentiles,
    pub decode: Percentiles,
}

/// Requests by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Requests issued (due), sent or not.
    pub scheduled: u64,
    /// Requests actually sent to the target.
    pub sent: u64,
    /// Requests that completed.
    pub completed: u64,
    /// Requests that failed, dropped ones included.
    pub failed: u64,
    /// Requests dropped at the in-flight cap (never sent).
    pub dropped: u64,
    /// Failed requests by [`ErrorKind::label`].
    pub errors: BTreeMap<String, u64>,
    /// Completed requests that met the SLO (0 without one).
    pub good: u64,
}

/// Rates over the run's wall time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Throughput {
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Output tokens of completed requests per second.
    pub output_tokens_per_s: f64,
    /// Requests per second that met the SLO (`None` without an SLO).
    pub goodput_per_s: Option<f64>,
    /// Share of scheduled requests that met the SLO (`None` without an SLO).
    pub slo_attainment: Option<f64>,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct PoolResult {
    /// [`super::Target::describe`] of the target.
    pub target: String,
    /// The settings it ran with.
    pub config: PoolConfig,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// From the start until the last request ended, s.
    pub wall_s: f64,
    /// Requests by outcome.
    pub counts: Counts,
    /// Output tokens of completed requests.
    pub output_tokens: u64,
    /// Prompt tokens of completed requests, as far as the target reported them.
    pub prompt_tokens: u64,
    /// Rates.
    pub throughput: Throughput,
    /// Percentiles, ms.
    pub summary: Summary,
    /// The histograms behind `summary`, µs.
    pub histograms: Histograms,
    /// First few error messages, by kind (at most [`MAX_ERROR_EXAMPLES`] each).
    pub error_examples: BTreeMap<String, Vec<String>>,
    /// Every request, if `config.keep_records`.
    pub records: Vec<RequestRecord>,
}

/// Error messages kept per kind.
pub const MAX_ERROR_EXAMPLES: usize = 3;

/// Folds records into histograms and counts as they arrive.
#[derive(Debug)]
pub struct Aggregator {
    slo: Option<Slo>,
    keep_records: bool,
    compact_records: bool,
    /// Histograms so far.
    pub histograms: Histograms,
    /// Counts so far.
    pub counts: Counts,
    /// Output tokens of completed requests so far.
    pub output_tokens: u64,
    prompt_tokens: u64,
    error_examples: BTreeMap<String, Vec<String>>,
    records: Vec<RequestRecord>,
    /// Latest end seen, µs since the start.
    pub last_end_us: u64,
}

impl Aggregator {
    /// An empty aggregator for a run under `config`.
    pub fn new(config: &PoolConfig) -> Aggregator {
        Aggregator {
            slo: config.slo.clone(),
            keep_records: config.keep_records,
            compact_records: config.compact_records,
            histograms: Histograms::default(),
            counts: Counts::default(),
            output_tokens: 0,
            prompt_tokens: 0,
            error_examples: BTreeMap::new(),
            records: Vec::new(),
            last_end_us: 0,
        }
    }

    /// Adds one finished request.
    pub fn add(&mut self, record: RequestRecord) {
        let h = &mut self.histograms;
        let c = &mut self.counts;
        c.scheduled += 1;
        self.last_end_us = self.last_end_us.max(record.end_us);
        if let Some(wait) = record.queue_wait_us() {
            c.sent += 1;
            record_us(&mut h.queue_wait, wait);
        }
        match &record.error {
            None => {
                c.completed += 1;
                self.output_tokens += record.tokens;
                self.prompt_tokens += record.prompt_tokens.unwrap_or(0);
                if let Some(v) = record.ttft_us() {
                    record_us(&mut h.ttft, v);
                }
                record_us(&mut h.e2e, record.e2e_us());
                if let Some(v) = record.prefill_us() {
                    record_us(&mut h.prefill, v);
                }
                if let Some(v) = record.decode_us() {
                    record_us(&mut h.decode, v);
                }
                if let Some(v) = record.tpot_us() {
                    record_us(&mut h.tpot, v.round() as u64);
                }
                for gap in record.itl_gaps_us() {
                    record_us(&mut h.itl, gap);
                }
                if self.slo.as_ref().is_some_and(|slo| slo.met_by(&record)) {
                    c.good += 1;
                }
            }
            Some(error) => {
                c.failed += 1;
                if error.kind == ErrorKind::Dropped {
                    c.dropped += 1;
                }
                let label = error.kind.label();
                *c.errors.entry(label.clone()).or_insert(0) += 1;
                let examples = self.error_examples.entry(label).or_default();
                if examples.len() < MAX_ERROR_EXAMPLES {
                    examples.push(error.message.clone());
                }
            }
        }
        if self.keep_records {
            let mut record = record;
            if self.compact_records {
                record.compact();
            }
            self.records.push(record);
        }
    }

    /// The result, for a run of `wall_s` seconds.
    pub fn finish(
        mut self,
        target: String,
        config: PoolConfig,
        started_unix_s: f64,
        wall_s: f64,
    ) -> PoolResult {
        self.records.sort_by_key(|r| r.id);
        let per_s = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
        let has_slo = self.slo.is_some();
        let throughput = Throughput {
            requests_per_s: per_s(self.counts.completed as f64),
            output_tokens_per_s: per_s(self.output_tokens as f64),
            goodput_per_s: has_slo.then(|| per_s(self.counts.good as f64)),
            slo_attainment: has_slo.then(|| {
                if self.counts.scheduled == 0 {
                    0.0
                } else {
                    self.counts.good as f64 / self.counts.scheduled as f64
                }
            }),
        };
        let h = &self.histograms;
        let summary = Summary {
            ttft: Percentiles::of(&h.ttft),
            itl: Percentiles::of(&h.itl),
            tpot: Percentiles::of(&h.tpot),
            e2e: Percentiles::of(&h.e2e),
            queue_wait: Percentiles::of(&h.queue_wait),
            prefill: Percentiles::of(&h.prefill),
            decode: Percentiles::of(&h.decode),
        };
        PoolResult {
            target,
            config,
            started_unix_s,
            wall_s,
            counts: self.counts,
            output_tokens: self.output_tokens,
            prompt_tokens: self.prompt_tokens,
            throughput,
            summary,
            histograms: self.histograms,
            error_examples: self.error_examples,
            records: self.records,
        }
    }
}

impl PoolResult {
    /// A plain-text report: counts, rates and the percentile table (ms).
    pub fn table(&self) -> String {
        let c = &self.counts;
        let t = &self.throughput;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} requests in {:.2} s: {} sent, {} completed, {} failed ({} dropped)",
            c.scheduled, self.wall_s, c.sent, c.completed, c.failed, c.dropped
        );
        if !c.errors.is_empty() {
            let errors: Vec<String> = c.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "errors: {}", errors.join(", "));
        }
        let _ = write!(
            out,
            "{:.2} req/s, {:.1} output tok/s",
            t.requests_per_s, t.output_tokens_per_s
        );
        if let (Some(goodput), Some(attainment)) = (t.goodput_per_s, t.slo_attainment) {
            let _ = write!(
                out,
                ", goodput {goodput:.2} req/s ({:.1} % meet the SLO)",
                attainment * 100.0
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<11}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "ms", "n", "mean", "min", "p50", "p90", "p95", "p99", "p99.9", "max"
        );
        let s = &self.summary;
        for (name, p) in [
            ("ttft", &s.ttft),
            ("itl", &s.itl),
            ("tpot", &s.tpot),
            ("e2e", &s.e2e),
            ("queue_wait", &s.queue_wait),
            ("prefill", &s.prefill),
            ("decode", &s.decode),
        ] {
            let _ = writeln!(
                out,
                "{:<11}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}",
                name, p.count, p.mean, p.min, p.p50, p.p90, p.p95, p.p99, p.p999, p.max
            );
        }
        out
    }
}
