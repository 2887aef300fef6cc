//! What became of a notification: the record stored as a `webhook` event, and the counters.

use serde::Serialize;
use serde_json::{json, Value};

use super::Notification;

/// The end of one notification's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Every try failed, or the endpoint rejected it (4xx other than 408/425/429).
    Failed,
    /// Never sent: the queue was full (or the dispatcher was shut down with it queued).
    Dropped,
}

impl Outcome {
    /// `delivered`, `failed` or `dropped`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// One notification's delivery record. Names the webhook by label only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// The webhook's label (never its URL).
    pub webhook: String,
    /// `slack`, `discord` or `generic`.
    pub format: String,
    /// The alert rule, `None` for ad-hoc messages.
    pub alert: Option<String>,
    /// `firing`, `resolved` or `info`.
    pub state: String,
    /// Delivered, failed or dropped.
    pub outcome: Outcome,
    /// The last HTTP status received, if any.
    pub status: Option<u16>,
    /// HTTP attempts made (0 when dropped).
    pub attempts: u32,
    /// Seconds from the first attempt to the outcome (backoff included).
    pub latency_s: f64,
    /// The last error (URL scrubbed), if it failed.
    pub error: Option<String>,
    /// The results run the notification belongs to.
    pub run_id: Option<i64>,
}

impl Delivery {
    /// A delivery that never started.
    pub(crate) fn dropped(webhook: &str, format: &str, note: &Notification, why: &str) -> Self {
        Delivery {
            webhook: webhook.to_string(),
            format: format.to_string(),
            alert: note.alert.clone(),
            state: note.state.name().to_string(),
            outcome: Outcome::Dropped,
            status: None,
            attempts: 0,
            latency_s: 0.0,
            error: Some(why.to_string()),
            run_id: note.run_id,
        }
    }

    /// The payload of the `webhook` event stored for it.
    pub fn to_json(&self) -> Value {
        json!({
            "webhook": self.webhook,
            "format": self.format,
            "alert": self.alert,
            "state": self.state,
            "outcome": self.outcome.name(),
            "status": self.status,
            "attempts": self.attempts,
            "latency_s": self.latency_s,
            "error": self.error,
        })
    }
}

/// Counters of a dispatcher since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStats {
    /// Notifications accepted by `send` (dropped ones included).
    pub queued: u64,
    /// Delivered (2xx).
    pub sent: u64,
    /// Failed after all tries or rejected.
    pub failed: u64,
    /// Dropped because the queue was full or the dispatcher shut down.
    pub dropped: u64,
    /// HTTP attempts beyond the first of each notification.
    pub retries: u64,
    /// Waiting in the queue now.
    pub pending: u64,
    /// Being delivered now.
    pub in_flight: u64,
}
