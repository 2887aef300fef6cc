//! Comparing two runs metric by metric, with a verdict that respects measurement noise.
//!
//! For each metric present in both runs the verdict is `improved` / `regressed` only when the
//! change is both statistically significant under the best rule the data allows and at least a
//! minimum relative size; otherwise `no significant change`. Rules, best first:
//! 1. both runs have spread (≥ 2 samples of the name, a single value tagged `sd` and `n`, or a
//!    histogram's mean): Welch's t-test, p < α;
//! 2. only one run has spread: |Δ| > 2·sd·√(1/nA + 1/nB) with that run's sd for both;
//! 3. single samples: |Δ| ≥ a larger threshold (noise unknown); histogram percentiles use this too.
//!
//! Which way is better comes from the unit (`tok/s` up is good; `ms`, `MB` down is good), else from
//! the metric name (`tps`, `bandwidth` up; `latency`, `ttft`, `vram`, `errors` down). When neither
//! tells, a significant change is reported as `changed`.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::histogram::HistogramSummary;
use super::run::{Measurement, RunId};
use super::stats::{welch_t_test, Summary};
use super::Store;
use crate::Result;

/// Thresholds of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Significance level of Welch's t-test.
    pub alpha: f64,
    /// Smallest relative change (fraction, 0.02 = 2 %) ever reported as a change.
    pub min_change: f64,
    /// Relative change (fraction) needed when no spread is known (single samples, percentiles).
    pub single_sample_change: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            min_change: 0.02,
            single_sample_change: 0.05,
        }
    }
}

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is better (throughput, bandwidth).
    HigherIsBetter,
    /// Less is better (latency, memory, errors).
    LowerIsBetter,
    /// Not known from the unit or the name.
    Unknown,
}

/// The outcome for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A significant change in the good direction.
    Improved,
    /// A significant change in the bad direction.
    Regressed,
    /// Within noise or below the minimum relative change.
    NoSignificantChange,
    /// A significant change of a metric whose good direction is unknown.
    Changed,
    /// The runs recorded the metric in different units.
    Incomparable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::Changed => "changed",
            Verdict::Incomparable => "incomparable (units differ)",
        })
    }
}

/// One metric compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    /// The metric (`tg_tps`, or `ttft_ms mean` / `ttft_ms p99` for histograms).
    pub metric: String,
    /// Its unit (A's when they differ).
    pub unit: String,
    /// Run A's value(s).
    pub a: Summary,
    /// Run B's value(s).
    pub b: Summary,
    /// (B − A) / |A| in percent; `None` when A is 0.
    pub change_pct: Option<f64>,
    /// Which way is better.
    pub direction: Direction,
    /// The outcome.
    pub verdict: Verdict,
    /// The rule that decided, with its numbers.
    pub rule: String,
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The baseline run.
    pub a: RunId,
    /// The run compared with it.
    pub b: RunId,
    /// Thresholds used.
    pub options: CompareOptions,
    /// Metrics in both runs.
    pub rows: Vec<CompareRow>,
    /// Metrics only A recorded.
    pub only_in_a: Vec<String>,
    /// Metrics only B recorded.
    pub only_in_b: Vec<String>,
}

/// Guesses which way `name` (in `unit`) is better.
pub fn direction(name: &str, unit: &str) -> Direction {
    const HIGHER_UNITS: &[&str] = &["tps", "flops", "gflops", "tflops", "hz", "x", "speedup"];
    const LOWER_UNITS: &[&str] = &[
        "ns", "us", "µs", "ms", "s", "sec", "seconds", "min", "h", "b", "bytes", "kb", "kib", "mb",
        "mib", "gb", "gib", "ppl", "nats", "bits",
    ];
    const HIGHER_WORDS: &[&str] = &[
        "tps",
        "throughput",
        "goodput",
        "bandwidth",
        "bw",
        "speedup",
        "efficiency",
        "rps",
        "qps",
        "flops",
        "tflops",
        "gflops",
        "accuracy",
        "score",
        "hit",
        "hits",
    ];
    const LOWER_WORDS: &[&str] = &[
        "latency",
        "ttft",
        "itl",
        "tpot",
        "e2e",
        "ms",
        "us",
        "ns",
        "ppl",
        "perplexity",
        "kld",
        "kl",
        "error",
        "errors",
        "err",
        "fail",
        "failed",
        "failures",
        "lost",
        "dropped",
        "drops",
        "drift",
        "slope",
        "leak",
        "vram",
        "rss",
        "mem",
        "memory",
        "mb",
        "mib",
        "gb",
        "gib",
        "size",
        "time",
        "duration",
        "rmse",
        "mse",
        "crashes",
        "timeouts",
    ];
    let u = unit.trim().to_lowercase();
    if u.ends_with("/s") || u.ends_with("/sec") || HIGHER_UNITS.contains(&u.as_str()) {
        return Direction::HigherIsBetter;
    }
    if LOWER_UNITS.contains(&u.as_str()) {
        return Direction::LowerIsBetter;
    }
    let n = name.to_lowercase();
    if n.contains("per_s") || n.contains("per_sec") || n.contains("/s") {
        return Direction::HigherIsBetter;
    }
    for word in n.split(|c: char| !c.is_alphanumeric()) {
        if HIGHER_WORDS.contains(&word) {
            return Direction::HigherIsBetter;
        }
        if LOWER_WORDS.contains(&word) {
            return Direction::LowerIsBetter;
        }
    }
    Direction::Unknown
}

/// A metric's values in one run and whether their spread is known.
struct Sample {
    unit: String,
    summary: Summary,
    /// `true` when `summary.sd` is an estimate of noise (n ≥ 2), not a placeholder 0.
    has_spread: bool,
}

/// Groups a run's measurements by name, in first-recorded order.
fn samples(ms: &[Measurement]) -> (Vec<String>, HashMap<String, Sample>) {
    let mut order = Vec::new();
    let mut groups: HashMap<String, (String, Vec<&Measurement>)> = HashMap::new();
    for m in ms {
        groups
            .entry(m.name.clone())
            .or_insert_with(|| {
                order.push(m.name.clone());
                (m.unit.clone(), Vec::new())
            })
            .1
            .push(m);
    }
    let mut out = HashMap::new();
    for (name, (unit, group)) in groups {
        let values: Vec<f64> = group.iter().map(|m| m.value).collect();
        let Some(mut summary) = Summary::of(&values) else {
            continue;
        };
        let mut has_spread = group.len() > 1;
        if group.len() == 1 {
            let tag = |k: &str| group[0].tags.get(k).and_then(Value::as_f64);
            if let (Some(sd), Some(n)) = (tag("sd"), tag("n")) {
                if sd.is_finite() && sd >= 0.0 && n >= 2.0 {
                    summary = Summary {
                        n: n as u64,
                        mean: summary.mean,
                        sd,
                    };
                    has_spread = true;
                }
            }
        }
        out.insert(
            name,
            Sample {
                unit,
                summary,
                has_spread,
            },
        );
    }
    (order, out)
}

/// Decides one metric.
fn decide(metric: String, unit: String, a: &Sample, b: &Sample, o: &CompareOptions) -> CompareRow {
    let (sa, sb) = (a.summary, b.summary);
    let diff = sb.mean - sa.mean;
    let rel = if sa.mean != 0.0 {
        Some(diff / sa.mean.abs())
    } else if diff == 0.0 {
        Some(0.0)
    } else {
        None
    };
    let direction = direction(&metric, &unit);
    let mut row = CompareRow {
        metric,
        unit,
        a: sa,
        b: sb,
        change_pct: rel.map(|r| r * 100.0),
        direction,
        verdict: Verdict::NoSignificantChange,
        rule: String::new(),
    };
    if a.unit != b.unit {
        row.verdict = Verdict::Incomparable;
        row.rule = format!("units differ: '{}' vs '{}'", a.unit, b.unit);
        return row;
    }
    let big_enough = |threshold: f64| rel.is_none_or(|r| r.abs() >= threshold);
    let min_pct = o.min_change * 100.0;
    let significant = if a.has_spread && b.has_spread {
        let w = welch_t_test(&sa, &sb);
        let p = w.map_or(1.0, |w| w.p);
        row.rule = format!("Welch t-test p={p:.3} (α={}), |Δ| ≥ {min_pct}%", o.alpha);
        p < o.alpha && big_enough(o.min_change)
    } else if a.has_spread || b.has_spread {
        let (sd, which) = if a.has_spread {
            (sa.sd, "A")
        } else {
            (sb.sd, "B")
        };
        let bound = 2.0 * sd * (1.0 / sa.n as f64 + 1.0 / sb.n as f64).sqrt();
        row.rule =
            format!("|Δ| > 2·sd·√(1/nA+1/nB) = {bound:.4} (sd of {which} only), |Δ| ≥ {min_pct}%");
        diff.abs() > bound && big_enough(o.min_change)
    } else {
        let pct = o.single_sample_change.max(o.min_change) * 100.0;
        row.rule = format!("no spread known: |Δ| ≥ {pct}%");
        big_enough(o.single_sample_change.max(o.min_change)) && diff != 0.0
    };
    row.verdict = match (significant, direction) {
        (false, _) => Verdict::NoSignificantChange,
        (true, Direction::Unknown) => Verdict::Changed,
        (true, Direction::HigherIsBetter) if diff > 0.0 => Verdict::Improved,
        (true, Direction::LowerIsBetter) if diff < 0.0 => Verdict::Improved,
        (true, _) => Verdict::Regressed,
    };
    row
}

/// Rows for a histogram present in both runs: its mean (Welch, over the recorded values) and its
/// p50 / p95 / p99 (no spread known).
fn histogram_rows(
    a: &HistogramSummary,
    b: &HistogramSummary,
    o: &CompareOptions,
) -> Vec<CompareRow> {
    let mean = |h: &HistogramSummary| Sample {
        unit: h.unit.clone(),
        summary: Summary {
            n: h.count,
            mean: h.mean,
            sd: h.stdev,
        },
        has_spread: h.count > 1,
    };
    let mut rows = vec![decide(
        format!("{} mean", a.name),
        a.unit.clone(),
        &mean(a),
        &mean(b),
        o,
    )];
    for (label, va, vb) in [
        ("p50", a.p50, b.p50),
        ("p95", a.p95, b.p95),
        ("p99", a.p99, b.p99),
    ] {
        let point = |h: &HistogramSummary, v: u64| Sample {
            unit: h.unit.clone(),
            summary: Summary {
                n: 1,
                mean: v as f64,
                sd: 0.0,
            },
            has_spread: false,
        };
        rows.push(decide(
            format!("{} {label}", a.name),
            a.unit.clone(),
            &point(a, va),
            &point(b, vb),
            o,
        ));
    }
    rows
}

/// Compares run `b` against baseline `a`.
pub fn compare(store: &Store, a: RunId, b: RunId, options: &CompareOptions) -> Result<Comparison> {
    store.run(a)?;
    store.run(b)?;
    let (order_a, sa) = samples(&store.measurements(a)?);
    let (order_b, sb) = samples(&store.measurements(b)?);
    let mut rows = Vec::new();
    let mut only_in_a = Vec::new();
    for name in &order_a {
        match (sa.get(name), sb.get(name)) {
            (Some(x), Some(y)) => rows.push(decide(name.clone(), x.unit.clone(), x, y, options)),
            _ => only_in_a.push(name.clone()),
        }
    }
    let mut only_in_b: Vec<String> = order_b
        .iter()
        .filter(|n| !sa.contains_key(*n))
        .cloned()
        .collect();

    let hists_b = store.histogram_names(b)?;
    for (name, unit) in store.histogram_names(a)? {
        if !hists_b.iter().any(|(n, _)| *n == name) {
            only_in_a.push(format!("{name} (histogram)"));
            continue;
        }
        let (Some(ha), Some(hb)) = (store.histogram(a, &name)?, store.histogram(b, &name)?) else {
            continue;
        };
        let unit_b = hists_b
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        rows.extend(histogram_rows(
            &HistogramSummary::of(&name, &unit, &ha),
            &HistogramSummary::of(&name, &unit_b, &hb),
            options,
        ));
    }
    let hists_a = store.histogram_names(a)?;
    for (name, _) in hists_b {
        if !hists_a.iter().any(|(n, _)| *n == name) {
            only_in_b.push(format!("{name} (histogram)"));
        }
    }
    Ok(Comparison {
        a,
        b,
        options: *options,
        rows,
        only_in_a,
        only_in_b,
    })
}

impl Comparison {
    /// The comparison as a Markdown table, followed by the metrics only one run has.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "Run {} (A) vs run {} (B); α={}, minimum change {}%\n\n",
            self.a,
            self.b,
            self.options.alpha,
            self.options.min_change * 100.0
        );
        s += "| metric | unit | A | B | change % | verdict | rule |\n";
        s += "|---|---|---|---|---|---|---|\n";
        for r in &self.rows {
            let cell = |x: &Summary| {
                if x.n > 1 {
                    format!("{} ± {} (n={})", fmt_num(x.mean), fmt_num(x.sd), x.n)
                } else {
                    fmt_num(x.mean)
                }
            };
            let change = r
                .change_pct
                .map_or("n/a".to_string(), |c| format!("{c:+.2}"));
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                md_escape(&r.metric),
                md_escape(&r.unit),
                cell(&r.a),
                cell(&r.b),
                change,
                r.verdict,
                md_escape(&r.rule)
            );
        }
        if !self.only_in_a.is_empty() {
            s += &format!("\nOnly in A: {}\n", self.only_in_a.join(", "));
        }
        if !self.only_in_b.is_empty() {
            s += &format!("\nOnly in B: {}\n", self.only_in_b.join(", "));
        }
        s
    }
}

/// A number with up to 4 significant decimals, no trailing zeros.
pub(crate) fn fmt_num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let digits = if x.abs() >= 100.0 { 2 } else { 4 };
    let s = format!("{x:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes the characters that would break a Markdown table cell.
pub(crate) fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
