//! Open-loop arrival schedules: when each request is due, as offsets from the run's start.
//!
//! Every process is a time change of a unit-rate process: arrival `i` is due at `Λ⁻¹(sᵢ)`, where
//! `Λ(t) = ∫₀ᵗ rate` is the expected number of arrivals by `t`, and `sᵢ = i` (evenly spaced;
//! the first at 0) or the partial sums of unit exponentials (Poisson; seeded, so a schedule is
//! reproducible). For a linear ramp from `r₀` to `r₁` over `T`, `Λ(t) = r₀t + (r₁ − r₀)t²/2T`.
//! A schedule with a duration ends before it; one without runs until the caller stops asking.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::{Error, Result};

/// How open-loop requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrivals {
    /// Evenly spaced at `rate` requests/s.
    Constant { rate: f64 },
    /// A Poisson process of `rate` requests/s (exponential gaps), seeded.
    Poisson { rate: f64, seed: u64 },
    /// Rate rising (or falling) linearly from `from` to `to` requests/s over the run's duration;
    /// Poisson if `seed` is set, evenly spaced in expectation otherwise.
    Ramp {
        from: f64,
        to: f64,
        seed: Option<u64>,
    },
}

impl Arrivals {
    /// The average rate over a run of `duration` (requests/s).
    pub fn mean_rate(&self) -> f64 {
        match *self {
            Arrivals::Constant { rate } | Arrivals::Poisson { rate, .. } => rate,
            Arrivals::Ramp { from, to, .. } => (from + to) / 2.0,
        }
    }

    /// The same process at `rate` (a ramp keeps its shape, scaled to that mean).
    pub fn with_rate(&self, rate: f64) -> Arrivals {
        match *self {
            Arrivals::Constant { .. } => Arrivals::Constant { rate },
            Arrivals::Poisson { seed, .. } => Arrivals::Poisson { rate, seed },
            Arrivals::Ramp { from, to, seed } => {
                let scale = rate / self.mean_rate();
                Arrivals::Ramp {
                    from: from * scale,
                    to: to * scale,
                    seed,
                }
            }
        }
    }

    /// The schedule over `duration` (required for a ramp). Fails on rates that are not finite
    /// and positive (a ramp may start or end at 0, not both).
    pub fn schedule(&self, duration: Option<Duration>) -> Result<Schedule> {
        let bad = |what: String| Err(Error::Invalid(format!("arrivals: {what}")));
        let valid = |r: f64| r.is_finite() && r >= 0.0;
        let (r0, r1, seed) = match *self {
            Arrivals::Constant { rate } => (rate, rate, None),
            Arrivals::Poisson { rate, seed } => (rate, rate, Some(seed)),
            Arrivals::Ramp { from, to, seed } => {
                if duration.is_none() {
                    return bad("a ramp needs a duration".into());
                }
                (from, to, seed)
            }
        };
        if !valid(r0) || !valid(r1) || (r0 == 0.0 && r1 == 0.0) {
            return bad(format!("rate must be finite and positive, got {r0} → {r1}"));
        }
        if r0 != r1 && (r0 == 0.0 || r1 == 0.0) && duration.is_some_and(|d| d.is_zero()) {
            return bad("a ramp needs a non-zero duration".into());
        }
        let horizon = duration.map(|d| d.as_secs_f64());
        Ok(Schedule {
            r0,
            slope: match horizon {
                Some(t) if t > 0.0 => (r1 - r0) / t,
                _ => 0.0,
            },
            horizon,
            rng: seed.map(StdRng::seed_from_u64),
            s: 0.0,
            index: 0,
        })
    }
}

/// Due times of successive arrivals (an iterator of offsets from the start).
#[derive(Debug)]
pub struct Schedule {
    r0: f64,
    /// Rate change per second.
    slope: f64,
    horizon: Option<f64>,
    rng: Option<StdRng>,
    /// Unit-rate time of the next arrival.
    s: f64,
    index: u64,
}

impl Schedule {
    /// `Λ⁻¹(s)` in seconds, or `None` if the rate never accumulates `s` arrivals.
    fn invert(&self, s: f64) -> Option<f64> {
        if s <= 0.0 {
            return Some(0.0);
        }
        // r0 t + slope t² / 2 = s  →  t = 2s / (r0 + sqrt(r0² + 2 slope s)), stable for slope → 0
        let disc = self.r0 * self.r0 + 2.0 * self.slope * s;
        if disc < 0.0 {
            return None;
        }
        let denom = self.r0 + disc.sqrt();
        (denom > 0.0).then(|| 2.0 * s / denom)
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let s = match &mut self.rng {
            None => self.index as f64,
            Some(rng) => {
                // 1 - u is in (0, 1], so the logarithm is finite.
                let u: f64 = rng.gen();
                self.s += -(1.0 - u).ln();
                self.s
            }
        };
        self.index += 1;
        let t = self.invert(s)?;
        if self.horizon.is_some_and(|h| t >= h) {
            return None;
        }
        Some(Duration::from_secs_f64(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_evenly_spaced() {
        let times: Vec<Duration> = Arrivals::Constant { rate: 4.0 }
            .schedule(Some(Duration::from_secs(1)))
            .unwrap()
            .collect();
        let ms: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
        assert_eq!(ms, vec![0, 250, 500, 750]);
    }

    #[test]
    fn poisson_mean_and_spread() {
        // 10 000 exponential gaps: the mean's standard error is 1 % of 1/rate, so a 4 % bound is
        // four standard errors; the coefficient of variation of exponential gaps is 1.
        let rate = 250.0;
        let times: Vec<f64> = Arrivals::Poisson { rate, seed: 42 }
            .schedule(None)
            .unwrap()
            .take(10_001)
            .map(|t| t.as_secs_f64())
            .collect();
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            (mean * rate - 1.0).abs() < 0.04,
            "mean gap {mean}, want {}",
            1.0 / rate
        );
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // same seed, same schedule; another seed, another one
        let again: Vec<Duration> = Arrivals::Poisson { rate, seed: 42 }
            .schedule(None)
            .unwrap()
            .take(5)
            .collect();
        let other: Vec<Duration> = Arrivals::Poisson { rate, seed: 43 }
            .schedule(None)
            .unwrap()
            .take(5)
            .collect();
        let first: Vec<Duration> = times[..5]
            .iter()
            .map(|&t| Duration::from_secs_f64(t))
            .collect();
        assert_eq!(again, first);
        assert_ne!(other, first);
    }

    #[test]
    fn ramp_counts_follow_the_integral() {
        // 0 → 200 req/s over 2 s: Λ(2) = 200 arrivals; in the first second Λ(1) = 50.
        let times: Vec<f64> = Arrivals::Ramp {
            from: 0.0,
            to: 200.0,
            seed: None,
        }
        .schedule(Some(Duration::from_secs(2)))
        .unwrap()
        .map(|t| t.as_secs_f64())
        .collect();
        assert_eq!(times.len(), 200);
        assert_eq!(times.iter().filter(|&&t| t < 1.0).count(), 50);
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        // falling ramp 100 → 0 over 1 s: Λ(1) = 50
        let falling = Arrivals::Ramp {
            from: 100.0,
            to: 0.0,
            seed: None,
        }
        .schedule(Some(Duration::from_secs(1)))
        .unwrap()
        .count();
        assert_eq!(falling, 50);
    }

    #[test]
    fn invalid_rates() {
        let d = Some(Duration::from_secs(1));
        assert!(Arrivals::Constant { rate: 0.0 }.schedule(d).is_err());
        assert!(Arrivals::Constant { rate: f64::NAN }.schedule(d).is_err());
        let ramp = Arrivals::Ramp {
            from: 1.0,
            to: 2.0,
            seed: None,
        };
        assert!(ramp.schedule(None).is_err());
        assert_eq!(ramp.with_rate(3.0).mean_rate(), 3.0);
    }
}
