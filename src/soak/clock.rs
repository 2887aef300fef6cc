//! The soak's clock: real time, or a virtual clock for tests that jumps to each probe tick at
//! once, so an hour of soak runs in well under a second.
//!
//! Invariants: `elapsed` never goes backwards; it starts at the soak's elapsed time so far (0, or
//! where a resumed soak left off); `unix_s(elapsed)` maps soak time to the timestamps stored with
//! series points, consistently within one process (segment). Under the virtual clock only the
//! *soak's* notion of time is virtual: probes, allocations and the load are real.

use std::time::{Duration, Instant, SystemTime};

/// Real or virtual soak time.
#[derive(Clone, Debug)]
pub enum SoakClock {
    /// Wall-clock time since `start`, plus `offset` (the elapsed time of earlier segments).
    Real {
        /// When this segment started.
        start: Instant,
        /// Elapsed soak time at `start`.
        offset: Duration,
        /// Unix time at `start`, seconds.
        unix_start: f64,
    },
    /// Time that moves only when the soak waits: each wait jumps to its deadline.
    Virtual {
        /// Elapsed soak time now.
        now: Duration,
        /// Elapsed soak time at this segment's start.
        offset: Duration,
        /// Unix time at this segment's start, seconds.
        unix_start: f64,
    },
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl SoakClock {
    /// A real clock starting at soak time `offset`.
    pub fn real(offset: Duration) -> SoakClock {
        SoakClock::Real {
            start: Instant::now(),
            offset,
            unix_start: unix_now(),
        }
    }

    /// A virtual clock starting at soak time `offset`.
    pub fn virtual_from(offset: Duration) -> SoakClock {
        SoakClock::Virtual {
            now: offset,
            offset,
            unix_start: unix_now(),
        }
    }

    /// Whether this is the virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self, SoakClock::Virtual { .. })
    }

    /// Soak time now.
    pub fn elapsed(&self) -> Duration {
        match self {
            SoakClock::Real { start, offset, .. } => *offset + start.elapsed(),
            SoakClock::Virtual { now, .. } => *now,
        }
    }

    /// Unix seconds of soak time `elapsed` (in this segment's time line).
    pub fn unix_s(&self, elapsed: Duration) -> f64 {
        match self {
            SoakClock::Real {
                offset, unix_start, ..
            }
            | SoakClock::Virtual {
                offset, unix_start, ..
            } => unix_start + elapsed.saturating_sub(*offset).as_secs_f64(),
        }
    }

    /// Waits until soak time `until` (real clock: sleeps; virtual: jumps there after yielding
    /// once to the runtime, so the load makes progress).
    pub async fn wait_until(&mut self, until: Duration) {
        match self {
            SoakClock::Real { start, offset, .. } => {
                let at = *start + until.saturating_sub(*offset);
                tokio::time::sleep_until(at.into()).await;
            }
            SoakClock::Virtual { now, .. } => {
                tokio::task::yield_now().await;
                *now = (*now).max(until);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_clock_jumps_and_maps_to_unix_time() {
        let mut c = SoakClock::virtual_from(Duration::from_secs(100));
        assert!(c.is_virtual());
        assert_eq!(c.elapsed(), Duration::from_secs(100));
        let t0 = c.unix_s(c.elapsed());
        c.wait_until(Duration::from_secs(3700)).await;
        assert_eq!(c.elapsed(), Duration::from_secs(3700));
        assert!((c.unix_s(c.elapsed()) - t0 - 3600.0).abs() < 1e-6);
        c.wait_until(Duration::from_secs(5)).await; // never backwards
        assert_eq!(c.elapsed(), Duration::from_secs(3700));
    }
}
