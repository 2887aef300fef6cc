//! What a notification says and how each webhook kind wants it: Slack `{"text": …}`, Discord
//! `{"content": …}` (at most 2000 characters, Discord's limit) and a generic JSON object with
//! every field.

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::{Error, Result};

/// Discord rejects messages longer than this many characters.
const DISCORD_MAX_CHARS: usize = 2000;
/// Slack truncates (and warns about) longer `text`; keep well below its 40 000.
const SLACK_MAX_CHARS: usize = 39_000;

/// The payload shape a webhook endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Slack incoming webhook: `{"text": "…"}`.
    Slack,
    /// Discord webhook: `{"content": "…"}`.
    Discord,
    /// Any JSON receiver: `{"alert", "state", "severity", "value", "message", "run_id", "ts"}`.
    Generic,
}

impl Format {
    /// The lower-case name (`slack`, `discord`, `generic`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Generic => "generic",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "slack" => Ok(Format::Slack),
            "discord" => Ok(Format::Discord),
            "generic" | "json" => Ok(Format::Generic),
            _ => Err(Error::Invalid(format!(
                "webhook kind '{s}': expected slack, discord or generic"
            ))),
        }
    }
}

/// Where an alert stands in a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyState {
    /// The alert started firing.
    Firing,
    /// The alert stopped firing.
    Resolved,
    /// Not an alert: an ad-hoc message.
    Info,
}

impl NotifyState {
    /// `firing`, `resolved` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            NotifyState::Firing => "firing",
            NotifyState::Resolved => "resolved",
            NotifyState::Info => "info",
        }
    }
}

/// One message to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The alert rule's name; `None` for an ad-hoc message.
    pub alert: Option<String>,
    /// Firing, resolved or info.
    pub state: NotifyState,
    /// `info`, `warning`, `critical` (free text).
    pub severity: String,
    /// The value that triggered the transition, when there is one.
    pub value: Option<f64>,
    /// Human-readable text.
    pub message: String,
    /// The results run the alert belongs to.
    pub run_id: Option<i64>,
    /// Seconds since the Unix epoch (the sample's time for alerts).
    pub ts: f64,
}

impl Notification {
    /// An ad-hoc message (`state = info`) at `ts`.
    pub fn text(message: impl Into<String>, run_id: Option<i64>, ts: f64) -> Notification {
        Notification {
            alert: None,
            state: NotifyState::Info,
            severity: "info".into(),
            value: None,
            message: message.into(),
            run_id,
            ts,
        }
    }

    /// The one-line chat text: `[FIRING] name (severity): message (value 63.2, run 12)`; an
    /// ad-hoc message is its text alone.
    pub fn chat_text(&self) -> String {
        let Some(alert) = &self.alert else {
            return self.message.clone();
        };
        let mut extra = Vec::new();
        if let Some(v) = self.value {
            extra.push(format!("value {}", short_number(v)));
        }
        if let Some(r) = self.run_id {
            extra.push(format!("run {r}"));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        format!(
            "[{}] {alert} ({}): {}{extra}",
            self.state.name().to_ascii_uppercase(),
            self.severity,
            self.message
        )
    }

    /// The JSON body for `format`.
    pub fn payload(&self, format: Format) -> Value {
        match format {
            Format::Slack => json!({ "text": truncate(&self.chat_text(), SLACK_MAX_CHARS) }),
            Format::Discord => json!({ "content": truncate(&self.chat_text(), DISCORD_MAX_CHARS) }),
            Format::Generic => json!({
                "alert": self.alert,
                "state": self.state.name(),
                "severity": self.severity,
                "value": self.value.filter(|v| v.is_finite()),
                "message": self.message,
                "run_id": self.run_id,
                "ts": self.ts,
            }),
        }
    }
}

/// A number with at most 4 significant decimals, no trailing zeros.
fn short_number(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `s` cut to at most `max` characters (ending in `…` when cut).
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing() -> Notification {
        Notification {
            alert: Some("vram-leak".into()),
            state: NotifyState::Firing,
            severity: "critical".into(),
            value: Some(63.25),
            message: "vram_own_mb slope 63.25 MB/h > 50".into(),
            run_id: Some(12),
            ts: 1_700_000_000.5,
        }
    }

    #[test]
    fn chat_text_names_state_rule_value_and_run() {
        assert_eq!(
            firing().chat_text(),
            "[FIRING] vram-leak (critical): vram_own_mb slope 63.25 MB/h > 50 (value 63.25, run 12)"
        );
        let adhoc = Notification::text("soak started", None, 1.0);
        assert_eq!(adhoc.chat_text(), "soak started");
    }

    #[test]
    fn discord_content_is_cut_to_2000_characters() {
        let mut n = Notification::text("é".repeat(5000), None, 0.0);
        n.severity = "info".into();
        let p = n.payload(Format::Discord);
        let content = p["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), 2000);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn generic_payload_has_every_field_and_null_for_non_finite_value() {
        let mut n = firing();
        let p = n.payload(Format::Generic);
        assert_eq!(p["alert"], "vram-leak");
        assert_eq!(p["state"], "firing");
        assert_eq!(p["value"], 63.25);
        assert_eq!(p["run_id"], 12);
        n.value = Some(f64::NAN);
        assert!(n.payload(Format::Generic)["value"].is_null());
    }

    #[test]
    fn kinds_parse_and_unknown_kind_is_an_error() {
        assert_eq!("Slack".parse::<Format>().unwrap(), Format::Slack);
        assert_eq!("json".parse::<Format>().unwrap(), Format::Generic);
        let e = "teams".parse::<Format>().unwrap_err().to_string();
        assert!(
            e.contains("'teams'") && e.contains("slack, discord or generic"),
            "{e}"
        );
    }
}
