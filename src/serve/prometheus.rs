//! `/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand.
//!
//! Why by hand: the format is a few lines per metric, the server has a dozen metrics, and the
//! `metrics`/`prometheus` crates bring a process-global registry (awkward with several servers in
//! one test process) and more dependencies than this needs.
//!
//! Invariants: every family has `# HELP` and `# TYPE` lines before its samples; label values are
//! escaped (`\\`, `\"`, `\n`); histogram buckets are cumulative, end with `le="+Inf"` equal to
//! `_count`, and come with `_sum` (seconds). Request counters exist for every endpoint × outcome
//! from the start (at 0), so rates work from the first scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::scheduler::MetricsSnapshot;
use crate::engine::HeapUsage;

/// Bucket bounds (seconds) of time-to-first-token and end-to-end latency.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Bucket bounds (seconds) of inter-token latency.
pub const ITL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Endpoints requests are counted under.
pub const ENDPOINTS: &[&str] = &["completions", "chat"];

/// How a request ended, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Completed.
    Ok,
    /// Refused as malformed (HTTP 400).
    Invalid,
    /// Refused for lack of room or during shutdown (HTTP 503).
    Rejected,
    /// Ran past its timeout.
    Timeout,
    /// The engine failed.
    Error,
    /// The client went away before the end.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Invalid,
        Outcome::Rejected,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Cancelled,
    ];

    /// The `outcome` label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Rejected => "rejected",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// A fixed-bucket histogram of seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one for values above the last bound.
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram with `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self.bounds.partition_point(|&b| b < s);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        family(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// What the HTTP layer measures.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(&'static str, Outcome), u64>>,
    /// Request received → first token written.
    pub ttft: Histogram,
    /// Gaps between consecutive tokens written.
    pub itl: Histogram,
    /// Request received → last byte of the answer.
    pub e2e: Histogram,
    /// Prompt tokens of completed requests.
    pub prompt_tokens: AtomicU64,
    /// Tokens generated for completed requests.
    pub completion_tokens: AtomicU64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let requests = ENDPOINTS
            .iter()
            .flat_map(|e| Outcome::ALL.iter().map(move |o| ((*e, *o), 0)))
            .collect();
        HttpMetrics {
            requests: Mutex::new(requests),
            ttft: Histogram::new(LATENCY_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2e: Histogram::new(LATENCY_BUCKETS),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
        }
    }
}

impl HttpMetrics {
    /// Counts one request to `endpoint` ending in `outcome`.
    pub fn count(&self, endpoint: &'static str, outcome: Outcome) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry((endpoint, outcome)).or_insert(0) += 1;
    }

    /// Requests counted so far under `endpoint` and `outcome`.
    pub fn requests(&self, endpoint: &str, outcome: Outcome) -> u64 {
        let r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .filter(|((e, o), _)| *e == endpoint && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }
}

/// Escapes a label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, help: &str, kind: &str, value: impl std::fmt::Display) {
    family(out, name, help, kind);
    let _ = writeln!(out, "{name} {value}");
}

/// The whole `/metrics` page for the HTTP metrics, the scheduler's counters, the device's memory
/// heaps and the model.
pub fn render(
    http: &HttpMetrics,
    s: &MetricsSnapshot,
    heaps: &[HeapUsage],
    model: &str,
    backend: &str,
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "rawrxd_model_info",
        "The model served and the backend running it (always 1).",
        "gauge",
    );
    let _ = writeln!(
        out,
        "rawrxd_model_info{{model=\"{}\",backend=\"{}\"}} 1",
        escape(model),
        escape(backend)
    );
    family(
        &mut out,
        "rawrxd_requests_total",
        "HTTP generation requests by endpoint and outcome.",
        "counter",
    );
    {
        let r = http.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((endpoint, outcome), n) in r.iter() {
            let _ = writeln!(
                out,
                "rawrxd_requests_total{{endpoint=\"{}\",outcome=\"{}\"}} {n}",
                escape(endpoint),
                outcome.label()
            );
        }
    }
    single(
        &mut out,
        "rawrxd_prompt_tokens_total",
        "Prompt tokens of completed HTTP requests.",
        "counter",
        http.prompt_tokens.load(Relaxed),
    );
    single(
        &mut out,
        "rawrxd_generation_tokens_total",
        "Tokens generated for completed HTTP requests.",
        "counter",
        http.completion_tokens.load(Relaxed),
    );
    http.ttft.write(
        &mut out,
        "rawrxd_time_to_first_token_seconds",
        "Request received to first token written, seconds.",
    );
    http.itl.write(
        &mut out,
        "rawrxd_inter_token_latency_seconds",
        "Gap between consecutive tokens written, seconds.",
    );
    http.e2e.write(
        &mut out,
        "rawrxd_e2e_request_latency_seconds",
        "Request received to end of answer, seconds.",
    );
    single(
        &mut out,
        "rawrxd_queue_depth",
        "Requests waiting for a KV cache slot.",
        "gauge",
        s.queue_depth,
    );
    single(
        &mut out,
        "rawrxd_running_sequences",
        "Sequences holding a KV cache slot.",
        "gauge",
        s.running,
    );
    single(
        &mut out,
        "rawrxd_slots",
        "KV cache slots (the largest batch).",
        "gauge",
        s.n_slots,
    );
    single(
        &mut out,
        "rawrxd_context_size",
        "KV cache positions per slot.",
        "gauge",
        s.n_ctx,
    );
    family(
        &mut out,
        "rawrxd_scheduler_requests_total",
        "Requests the scheduler finished, by outcome.",
        "counter",
    );
    let c = &s.completed;
    let f = &s.failed;
    for (outcome, n) in [
        ("stop", c.stop),
        ("length", c.length),
        ("context_full", c.context_full),
        ("timeout", f.timeout),
        ("engine_error", f.engine),
        ("shutdown", f.shutdown),
        ("cancelled", s.cancelled),
        ("rejected", s.rejected),
    ] {
        let _ = writeln!(
            out,
            "rawrxd_scheduler_requests_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    single(
        &mut out,
        "rawrxd_scheduler_steps_total",
        "Engine steps run.",
        "counter",
        s.steps,
    );
    single(
        &mut out,
        "rawrxd_scheduler_step_tokens_total",
        "Tokens fed to the engine over all steps (prefill and decode).",
        "counter",
        s.step_tokens,
    );
    single(
        &mut out,
        "rawrxd_scheduler_generated_tokens_total",
        "Tokens the scheduler emitted.",
        "counter",
        s.generated_tokens,
    );
    family(
        &mut out,
        "rawrxd_memory_bytes",
        "Memory the engine holds, by purpose; device=\"true\" is VRAM.",
        "gauge",
    );
    let m = &s.memory;
    for (kind, bytes) in [
        ("weights", m.weights),
        ("kv_cache", m.kv_cache),
        ("scratch", m.scratch),
    ] {
        let _ = writeln!(
            out,
            "rawrxd_memory_bytes{{kind=\"{kind}\",device=\"{}\"}} {bytes}",
            m.on_device
        );
    }
    if !heaps.is_empty() {
        family(
            &mut out,
            "rawrxd_device_memory_bytes",
            "Device memory heaps: size, and the driver's budget and usage for this process \
             where it reports them (VK_EXT_memory_budget).",
            "gauge",
        );
        for (i, h) in heaps.iter().enumerate() {
            let values = [
                ("size", Some(h.size)),
                ("budget", h.budget),
                ("usage", h.usage),
            ];
            for (kind, v) in values {
                if let Some(v) = v {
                    let _ = writeln!(
                        out,
                        "rawrxd_device_memory_bytes{{heap=\"{i}\",device_local=\"{}\",kind=\"{kind}\"}} {v}",
                        h.device_local
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::new(&[0.01, 0.1]);
        for ms in [5, 10, 50, 500] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        let want = "# HELP x help\n# TYPE x histogram\nx_bucket{le=\"0.01\"} 2\n\
                    x_bucket{le=\"0.1\"} 3\nx_bucket{le=\"+Inf\"} 4\nx_sum 0.565\nx_count 4\n";
        assert_eq!(out, want);
    }

    #[test]
    fn device_heaps_appear_only_where_reported() {
        let http = HttpMetrics::default();
        let s = MetricsSnapshot::default();
        assert!(!render(&http, &s, &[], "m", "cpu").contains("rawrxd_device_memory_bytes"));
        let heaps = [
            HeapUsage {
                size: 80,
                device_local: true,
                budget: Some(70),
                usage: Some(5),
            },
            HeapUsage {
                size: 64,
                device_local: false,
                budget: None,
                usage: None,
            },
        ];
        let text = render(&http, &s, &heaps, "m", "vulkan");
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("rawrxd_device_memory_bytes{"))
            .collect();
        assert_eq!(
            lines,
            [
                "rawrxd_device_memory_bytes{heap=\"0\",device_local=\"true\",kind=\"size\"} 80",
                "rawrxd_device_memory_bytes{heap=\"0\",device_local=\"true\",kind=\"budget\"} 70",
                "rawrxd_device_memory_bytes{heap=\"0\",device_local=\"true\",kind=\"usage\"} 5",
                "rawrxd_device_memory_bytes{heap=\"1\",device_local=\"false\",kind=\"size\"} 64",
            ]
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
