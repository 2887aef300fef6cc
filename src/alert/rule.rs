//! What an alert rule is: a metric, a condition over its recent samples, how long the condition
//! must hold, and how it is announced.

use std::fmt;

use crate::{Error, Result};

/// Which side of the limit is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Bad when the value is greater than the limit.
    Above,
    /// Bad when the value is less than the limit.
    Below,
}

/// A comparison with a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cmp {
    /// The bad side.
    pub op: Op,
    /// The limit.
    pub limit: f64,
}

impl Cmp {
    /// Whether `value` is on the bad side (strictly).
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            Op::Above => value > self.limit,
            Op::Below => value < self.limit,
        }
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Above => ">",
            Op::Below => "<",
        };
        write!(f, "{op} {}", number(self.limit))
    }
}

/// How samples in a window are summarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Arithmetic mean.
    Mean,
    /// Largest value.
    Max,
    /// Smallest value.
    Min,
    /// 95th percentile, linear interpolation between closest ranks (numpy's default).
    P95,
}

impl Aggregate {
    /// `mean`, `max`, `min` or `p95`.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::P95 => "p95",
        }
    }

    /// Parses `mean`, `max`, `min`, `p95`.
    pub fn parse(s: &str) -> Result<Aggregate> {
        match s {
            "mean" | "avg" => Ok(Aggregate::Mean),
            "max" => Ok(Aggregate::Max),
            "min" => Ok(Aggregate::Min),
            "p95" => Ok(Aggregate::P95),
            _ => Err(Error::Invalid(format!(
                "aggregate '{s}': expected mean, max, min or p95"
            ))),
        }
    }
}

/// When a rule's condition holds, judged at each sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The metric's latest value compared with the limit.
    Threshold {
        /// The comparison.
        cmp: Cmp,
    },
    /// An aggregate of the metric over the last `window_s` seconds (samples with
    /// `ts ≥ now − window_s`) compared with the limit.
    Window {
        /// The summary.
        agg: Aggregate,
        /// Window length, seconds.
        window_s: f64,
        /// Fewer samples in the window: no verdict.
        min_samples: usize,
        /// A window whose samples span less than this: no verdict.
        min_span_s: f64,
        /// The comparison.
        cmp: Cmp,
    },
    /// The least-squares slope of the metric over the last `window_s` seconds, in units per
    /// hour, compared with the limit.
    Slope {
        /// Window length, seconds.
        window_s: f64,
        /// Fewer samples in the window: no verdict (at least 2).
        min_samples: usize,
        /// A window whose samples span less than this: no verdict.
        min_span_s: f64,
        /// The comparison (units per hour).
        cmp: Cmp,
    },
    /// A counter that has not increased: holds from the sample after its last increase, and
    /// the rule's `for_s` counts from that last increase (a decrease, a counter reset, counts as
    /// progress). The value is the seconds since the last increase.
    NoProgress,
    /// The increase of the metric over the increase of the sum of `over` within the last
    /// `window_s` seconds (an error rate from cumulative counters), compared with the limit. No
    /// verdict while the denominator did not increase.
    Ratio {
        /// Denominator counters (their increases are summed).
        over: Vec<String>,
        /// Window length, seconds.
        window_s: f64,
        /// The comparison.
        cmp: Cmp,
    },
}

impl Condition {
    /// `threshold`, `window`, `slope`, `no_progress` or `ratio`.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Threshold { .. } => "threshold",
            Condition::Window { .. } => "window",
            Condition::Slope { .. } => "slope",
            Condition::NoProgress => "no_progress",
            Condition::Ratio { .. } => "ratio",
        }
    }

    /// How far back samples are needed.
    pub fn window_s(&self) -> f64 {
        match self {
            Condition::Window { window_s, .. }
            | Condition::Slope { window_s, .. }
            | Condition::Ratio { window_s, .. } => *window_s,
            Condition::Threshold { .. } | Condition::NoProgress => 0.0,
        }
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name (the alert's identity in notifications and stored events).
    pub name: String,
    /// The sample field it watches.
    pub metric: String,
    /// The condition.
    pub condition: Condition,
    /// How long the condition must hold before the alert fires (0: at once). Between, the alert
    /// is pending.
    pub for_s: f64,
    /// Free text, conventionally `info`, `warning` or `critical`.
    pub severity: String,
    /// Message template; `{name}`, `{metric}`, `{value}` and `{limit}` are replaced. `None`: a
    /// generated description.
    pub message: Option<String>,
    /// Minimum seconds between two firing notifications of this rule (0: no limit).
    pub min_interval_s: f64,
    /// Seconds after the first sample before the rule is judged.
    pub warmup_s: f64,
    /// Whether transitions are notified (they are stored either way).
    pub notify: bool,
}

impl Rule {
    /// A rule with defaults: fires at once, severity `warning`, no rate limit, no warm-up.
    pub fn new(name: impl Into<String>, metric: impl Into<String>, condition: Condition) -> Rule {
        Rule {
            name: name.into(),
            metric: metric.into(),
            condition,
            for_s: 0.0,
            severity: "warning".into(),
            message: None,
            min_interval_s: 0.0,
            warmup_s: 0.0,
            notify: true,
        }
    }

    /// Checks the numbers (finite, non-negative durations, windows > 0, ≥ 2 samples for a
    /// slope, a `for_s` for no-progress rules).
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Invalid(format!("rule '{}': {msg}", self.name)));
        if self.name.is_empty() {
            return Err(Error::Invalid("rule: empty name".into()));
        }
        if self.metric.is_empty() {
            return bad("empty metric".into());
        }
        for (k, v) in [
            ("for_s", self.for_s),
            ("min_interval_s", self.min_interval_s),
            ("warmup_s", self.warmup_s),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{k} must be a non-negative number, got {v}"));
            }
        }
        let cmp = match &self.condition {
            Condition::Threshold { cmp } | Condition::Ratio { cmp, .. } => Some(cmp),
            Condition::Window { cmp, .. } | Condition::Slope { cmp, .. } => Some(cmp),
            Condition::NoProgress => None,
        };
        if let Some(c) = cmp {
            if !c.limit.is_finite() {
                return bad(format!("limit must be a finite number, got {}", c.limit));
            }
        }
        let w = self.condition.window_s();
        let windowed = !matches!(
            self.condition,
            Condition::Threshold { .. } | Condition::NoProgress
        );
        if windowed && !(w.is_finite() && w > 0.0) {
            return bad(format!("window_s must be a positive number, got {w}"));
        }
        match &self.condition {
            Condition::Slope {
                min_samples,
                min_span_s,
                ..
            }
            | Condition::Window {
                min_samples,
                min_span_s,
                ..
            } => {
                if matches!(self.condition, Condition::Slope { .. }) && *min_samples < 2 {
                    return bad(format!("a slope needs min_samples ≥ 2, got {min_samples}"));
                }
                if !min_span_s.is_finite() || *min_span_s < 0.0 || *min_span_s > w {
                    return bad(format!(
                        "min_span_s must be between 0 and window_s ({w}), got {min_span_s}"
                    ));
                }
            }
            Condition::NoProgress if self.for_s <= 0.0 => {
                return bad(
                    "a no_progress rule needs for_s > 0 (seconds without an increase)".into(),
                )
            }
            Condition::Ratio { over, .. } if over.is_empty() => {
                return bad("a ratio rule needs 'over' (the denominator counters)".into())
            }
            _ => {}
        }
        Ok(())
    }

    /// The notification text for the value `value`.
    pub fn describe(&self, value: Option<f64>) -> String {
        let v = value.map(number).unwrap_or_else(|| "?".into());
        if let Some(t) = &self.message {
            let limit = match &self.condition {
                Condition::Threshold { cmp }
                | Condition::Window { cmp, .. }
                | Condition::Slope { cmp, .. }
                | Condition::Ratio { cmp, .. } => number(cmp.limit),
                Condition::NoProgress => number(self.for_s),
            };
            return t
                .replace("{name}", &self.name)
                .replace("{metric}", &self.metric)
                .replace("{value}", &v)
                .replace("{limit}", &limit);
        }
        let m = &self.metric;
        let held = if self.for_s > 0.0 && !matches!(self.condition, Condition::NoProgress) {
            format!(" for {} s", number(self.for_s))
        } else {
            String::new()
        };
        match &self.condition {
            Condition::Threshold { cmp } => format!("{m} = {v} (limit {cmp}{held})"),
            Condition::Window {
                agg, window_s, cmp, ..
            } => format!(
                "{} of {m} over {} s = {v} (limit {cmp}{held})",
                agg.name(),
                number(*window_s)
            ),
            Condition::Slope { window_s, cmp, .. } => format!(
                "{m} slope over {} s = {v} per hour (limit {cmp}{held})",
                number(*window_s)
            ),
            Condition::NoProgress => format!(
                "{m} has not increased for {v} s (limit {} s)",
                number(self.for_s)
            ),
            Condition::Ratio {
                over,
                window_s,
                cmp,
                ..
            } => format!(
                "{m} / ({}) over {} s = {v} (limit {cmp}{held})",
                over.join(" + "),
                number(*window_s)
            ),
        }
    }
}

/// A number with at most 3 decimals, no trailing zeros.
pub(crate) fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
