//! What a run does: [`Load`] (closed or open loop), when it stops, per-request timeout, SLO.
//!
//! A run stops issuing requests at `duration` or after `max_requests`, whichever comes first
//! (at least one must be set), then waits for the requests in flight, each bounded by
//! `request_timeout`.

use std::time::Duration;

use serde::Serialize;

use super::arrivals::Arrivals;
use super::record::Slo;
use crate::{Error, Result};

/// The shape of the offered load.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Load {
    /// `users` virtual users, each looping: send, wait for the whole answer, think, repeat. The
    /// offered rate adapts to the target's speed, so a stall shows up as fewer requests rather
    /// than as latency (coordinated omission) — that is the point of comparing with an open loop.
    Closed {
        /// Concurrent virtual users.
        users: u32,
        /// Pause between a user's answer and its next request.
        #[serde(with = "duration_s")]
        think: Duration,
    },
    /// Requests arrive on a schedule, regardless of how the target keeps up; latency is
    /// measured from each request's scheduled time.
    Open {
        /// When requests are due.
        arrivals: Arrivals,
        /// Requests in flight at most; an arrival beyond it is dropped and counted as an error
        /// (so a dead target cannot make the run's memory grow without bound).
        max_in_flight: usize,
    },
}

impl Load {
    /// Concurrency (closed) or mean rate (open) — the level an SLO search varies.
    pub fn level(&self) -> f64 {
        match self {
            Load::Closed { users, .. } => *users as f64,
            Load::Open { arrivals, .. } => arrivals.mean_rate(),
        }
    }

    /// The same load at another level (users are rounded to the nearest integer ≥ 1).
    pub fn with_level(&self, level: f64) -> Load {
        match self {
            Load::Closed { think, .. } => Load::Closed {
                users: level.round().max(1.0) as u32,
                think: *think,
            },
            Load::Open {
                arrivals,
                max_in_flight,
            } => Load::Open {
                arrivals: arrivals.with_rate(level),
                max_in_flight: *max_in_flight,
            },
        }
    }
}

/// A run's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolConfig {
    /// The offered load.
    pub load: Load,
    /// Stop issuing requests after this long.
    #[serde(with = "option_duration_s")]
    pub duration: Option<Duration>,
    /// Stop after issuing this many requests.
    pub max_requests: Option<u64>,
    /// Limit on one request, from its send to its end; a request past it fails with `timeout`.
    #[serde(with = "duration_s")]
    pub request_timeout: Duration,
    /// Goodput is counted against this SLO when set.
    pub slo: Option<Slo>,
    /// Keep every [`super::RequestRecord`] in the result (memory grows with the run).
    pub keep_records: bool,
    /// Kept records are compacted ([`super::RequestRecord::compact`]): first and last token
    /// chunk only. Fault runs keep records this way to account every request.
    pub compact_records: bool,
    /// Draw a live progress line on stderr.
    pub progress: bool,
}

impl PoolConfig {
    /// `load` for `duration`, 60 s request timeout, no SLO, no records, no progress line.
    pub fn new(load: Load, duration: Duration) -> PoolConfig {
        PoolConfig {
            load,
            duration: Some(duration),
            max_requests: None,
            request_timeout: Duration::from_secs(60),
            slo: None,
            keep_records: false,
            compact_records: false,
            progress: false,
        }
    }

    /// Checks the settings; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::Invalid(format!("pool config: {msg}")));
        if self.duration.is_none() && self.max_requests.is_none() {
            return bad("set `duration` or `max_requests` (or both)");
        }
        if self.request_timeout.is_zero() {
            return bad("`request_timeout` must be positive");
        }
        match &self.load {
            Load::Closed { users: 0, .. } => return bad("closed loop needs at least one user"),
            Load::Open {
                max_in_flight: 0, ..
            } => return bad("`max_in_flight` must be at least 1"),
            Load::Open { arrivals, .. } => {
                arrivals.schedule(self.duration)?;
            }
            Load::Closed { .. } => {}
        }
        if let Some(slo) = &self.slo {
            if !(0.0..=100.0).contains(&slo.itl_percentile) {
                return bad("`slo.itl_percentile` must be in 0..=100");
            }
        }
        Ok(())
    }
}

/// Serde of a `Duration` as seconds (f64).
pub(crate) mod duration_s {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Serde of an `Option<Duration>` as seconds (f64) or null.
pub(crate) mod option_duration_s {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}
