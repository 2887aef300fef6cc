//! What the evaluator takes and gives: samples, alert states, transitions and rule standings.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

/// Metric values at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub ts: f64,
    /// Metric name → value (non-finite values are ignored).
    pub values: BTreeMap<String, f64>,
}

impl Sample {
    /// An empty sample at `ts`.
    pub fn at(ts: f64) -> Sample {
        Sample {
            ts,
            values: BTreeMap::new(),
        }
    }

    /// The sample with `metric = value` added.
    pub fn with(mut self, metric: &str, value: f64) -> Sample {
        self.values.insert(metric.to_string(), value);
        self
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, not yet for `for_s`.
    Pending,
    /// The condition has held for `for_s`.
    Firing,
}

impl AlertState {
    /// `inactive`, `pending` or `firing`.
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// What happened to an alert at a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    /// Inactive → pending.
    Pending,
    /// Inactive or pending → firing.
    Firing,
    /// Firing → inactive.
    Resolved,
    /// Pending → inactive.
    Cancelled,
    /// Still firing; its rate-limited announcement goes out now.
    Announced,
}

impl TransitionKind {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            TransitionKind::Pending => "pending",
            TransitionKind::Firing => "firing",
            TransitionKind::Resolved => "resolved",
            TransitionKind::Cancelled => "cancelled",
            TransitionKind::Announced => "announced",
        }
    }
}

/// A change of an alert's state (or a late announcement).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The rule's name.
    pub rule: String,
    /// The rule's metric.
    pub metric: String,
    /// What happened.
    pub kind: TransitionKind,
    /// State before.
    pub from: AlertState,
    /// State after.
    pub to: AlertState,
    /// The sample's time.
    pub ts: f64,
    /// The rule's value at that sample (the aggregate, slope, ratio or stalled seconds).
    pub value: Option<f64>,
    /// The rule's severity.
    pub severity: String,
    /// The rule's message for this value.
    pub message: String,
    /// Whether a notification goes out for it.
    pub notify: bool,
    /// Why not, when a firing or resolved transition is not notified.
    pub suppressed: Option<String>,
}

impl Transition {
    /// The payload of the `alert` event stored for it.
    pub fn to_json(&self) -> Value {
        json!({
            "rule": self.rule,
            "metric": self.metric,
            "transition": self.kind.name(),
            "from": self.from.name(),
            "to": self.to.name(),
            "ts": self.ts,
            "value": self.value.filter(|v| v.is_finite()),
            "severity": self.severity,
            "message": self.message,
            "notified": self.notify,
            "suppressed": self.suppressed,
        })
    }
}

/// A rule's current standing, as `state()` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    /// The rule's name.
    pub rule: String,
    /// Its state.
    pub state: AlertState,
    /// When the condition started to hold (pending or firing).
    pub since: Option<f64>,
    /// The last value computed.
    pub value: Option<f64>,
    /// Whether the current firing has been announced.
    pub announced: bool,
    /// When it last notified a firing.
    pub last_notified: Option<f64>,
}
