//! Recovery policies: [`RetryPolicy`] (per request) and [`DeviceLossPolicy`] (per engine).
//!
//! A request is retried only for a *transient* failure (see [`retryable`]): a device loss, a
//! refused allocation, a step timeout, a server-side refusal (queue full, shut down), a
//! connection failure. A malformed request, a client cancellation and a run cancellation are
//! final. Attempt `k` (k ≥ 2) starts `backoff × 2^(k−2)` after attempt `k−1` failed.

use std::time::Duration;

use serde::Serialize;

use crate::{Error, Result};

/// How often and how patiently a failed request is retried.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    #[serde(with = "crate::pool::config::duration_s")]
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Duration::ZERO,
        }
    }
}

impl RetryPolicy {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::Invalid(
                "retry: max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The wait before attempt `attempt` (2, 3, …).
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        self.backoff.saturating_mul(1 << doublings)
    }
}

/// What happens to the engine after a device loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceLossPolicy {
    /// Tear the engine down and load it again from the model file; requests wait for it.
    #[default]
    Reinit,
    /// Leave it dead: every later request fails.
    GiveUp,
}

impl std::str::FromStr for DeviceLossPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<DeviceLossPolicy> {
        match s {
            "reinit" => Ok(DeviceLossPolicy::Reinit),
            "give_up" => Ok(DeviceLossPolicy::GiveUp),
            _ => Err(Error::Invalid(format!(
                "on_device_loss '{s}' (expected reinit or give_up)"
            ))),
        }
    }
}

/// Whether a failure of `reason` (a [`super::Reason`] label) may be retried.
pub fn retryable(reason: &str) -> bool {
    matches!(
        reason,
        "device_lost" | "alloc_failure" | "step_timeout" | "timeout" | "server" | "connect"
    ) || reason.starts_with("http_5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let p = RetryPolicy {
            max_attempts: 4,
            backoff: Duration::from_millis(50),
        };
        assert_eq!(p.backoff_before(2), Duration::from_millis(50));
        assert_eq!(p.backoff_before(3), Duration::from_millis(100));
        assert_eq!(p.backoff_before(4), Duration::from_millis(200));
        assert!(RetryPolicy {
            max_attempts: 0,
            ..p
        }
        .validate()
        .is_err());
        assert!(retryable("device_lost") && retryable("http_503"));
        assert!(!retryable("malformed") && !retryable("cancelled") && !retryable("http_400"));
    }
}
