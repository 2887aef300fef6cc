//! [`SoakConfig`]: what a soak does — the load it keeps, for how long, how often it probes and
//! checkpoints, and how its leak verdict is judged.

use std::time::Duration;

use serde::Serialize;

use super::regression::DEFAULT_THRESHOLD_MB_PER_H;
use crate::pool::Load;
use crate::{Error, Result};

/// Test-only switches; see [`super::leak_hook`] and [`super::clock`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TestHooks {
    /// Plant a leak of this many MiB per soak minute (real, touched allocations).
    pub leak_mb_per_min: Option<f64>,
    /// Run on the virtual clock: each probe tick jumps `probe_interval` ahead at once.
    pub virtual_clock: bool,
}

/// A soak's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoakConfig {
    /// The steady load (closed loop of N users or an arrival process).
    pub load: Load,
    /// Total soak time (a resumed soak counts the time already done).
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Time between samples (default 5 s).
    #[serde(serialize_with = "secs")]
    pub probe_interval: Duration,
    /// Time between checkpoints (default 1 h).
    #[serde(serialize_with = "secs")]
    pub checkpoint_interval: Duration,
    /// Samples this soon after a (re)start are left out of the leak fit (default 10 min).
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    /// Slope (MB/h) that counts as a leak (default 50 MB over 48 h).
    pub leak_threshold_mb_per_h: f64,
    /// Limit on one request.
    #[serde(serialize_with = "secs")]
    pub request_timeout: Duration,
    /// Draw the live status line on stderr.
    pub progress: bool,
    /// Test-only switches.
    pub test_hooks: TestHooks,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl SoakConfig {
    /// `load` for `duration` with the defaults above (60 s request timeout, no status line).
    pub fn new(load: Load, duration: Duration) -> SoakConfig {
        SoakConfig {
            load,
            duration,
            probe_interval: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(3600),
            warmup: Duration::from_secs(600),
            leak_threshold_mb_per_h: DEFAULT_THRESHOLD_MB_PER_H,
            request_timeout: Duration::from_secs(60),
            progress: false,
            test_hooks: TestHooks::default(),
        }
    }

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(format!("soak config: {m}")));
        if self.duration.is_zero() {
            return bad("`duration` must be positive");
        }
        if self.probe_interval.is_zero() {
            return bad("`probe_interval_s` must be positive");
        }
        if self.checkpoint_interval.is_zero() {
            return bad("`checkpoint_s` must be positive");
        }
        if self.request_timeout.is_zero() {
            return bad("`timeout` must be positive");
        }
        let t = self.leak_threshold_mb_per_h;
        if !(t.is_finite() && t > 0.0) {
            return bad("`leak_threshold_mb_per_h` must be a positive number");
        }
        if let Some(l) = self.test_hooks.leak_mb_per_min {
            if !(l.is_finite() && l >= 0.0) {
                return bad("`test_hooks.leak_mb_per_min` must be a number ≥ 0");
            }
        }
        let mut pool = crate::pool::PoolConfig::new(self.load.clone(), self.duration);
        pool.request_timeout = self.request_timeout;
        pool.validate()
    }
}
