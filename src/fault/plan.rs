//! [`FaultPlan`]: which faults to inject into a pool run, and when.
//!
//! A plan is a list of [`FaultSpec`]s, each a [`FaultKind`] and a [`Trigger`], and a seed.
//! Decisions are made per request index `i` (the pool's request id, 0-based, in send order) on the
//! request's *first* attempt only — a retry is never faulted again, so a retry policy can turn a
//! transient fault into a `retried_ok` outcome.
//!
//! Invariants:
//! - `AtRequest`, `Every` and `Probability` decisions are pure functions of (seed, spec index, i):
//!   the same plan and seed fault the same request indices in every run, whatever the
//!   concurrency or timing. `Probability` draws from a SplitMix64 hash of those three numbers.
//! - `AtTime(t)` fires once: on the first request whose first attempt starts at or after `t`
//!   since the run's start (which one that is depends on timing, by nature).
//! - Several specs may fire on one request; they are applied in plan order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::{Error, Result};

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// The device is lost: every engine step fails from now on until the engine is rebuilt
    /// (policy [`super::DeviceLossPolicy`]); requests in flight fail (and may be retried).
    DeviceLoss,
    /// An allocation is refused: the KV slot of the next new sequence (`Kv`, failing the step it
    /// is prefilled in), or the next `count` engine loads (`Load`, taking effect at the next
    /// rebuild after a device loss).
    AllocFailure {
        /// Which allocation.
        stage: AllocStage,
        /// Loads refused (for `Load`).
        count: u32,
    },
    /// The next step that prefills a new sequence stalls for `stall` (or until the request it
    /// was aimed at gives up); a stall longer than the step timeout times the request out.
    StepTimeout {
        /// How long the step stalls at most.
        #[serde(with = "crate::pool::config::duration_s")]
        stall: Duration,
    },
    /// The client cancels the request after receiving `after_tokens` tokens (0: right after it
    /// was accepted).
    Cancel { after_tokens: u32 },
    /// The request is replaced by a malformed one (empty prompt, negative or huge
    /// `max_tokens`, a prompt that is not text, a prompt longer than the context), cycling
    /// through [`super::Malformed::ALL`].
    Malformed,
    /// The client reads its stream slowly: it waits `delay` before taking each event.
    SlowClient {
        #[serde(with = "crate::pool::config::duration_s")]
        delay: Duration,
    },
}

impl FaultKind {
    /// A short stable name: `device_loss`, `alloc_failure`, `step_timeout`, `cancel`,
    /// `malformed`, `slow_client`.
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::DeviceLoss => "device_loss",
            FaultKind::AllocFailure { .. } => "alloc_failure",
            FaultKind::StepTimeout { .. } => "step_timeout",
            FaultKind::Cancel { .. } => "cancel",
            FaultKind::Malformed => "malformed",
            FaultKind::SlowClient { .. } => "slow_client",
        }
    }

    /// Whether the fault acts inside the engine (and so needs the in-process engine target).
    pub fn needs_engine(&self) -> bool {
        matches!(
            self,
            FaultKind::DeviceLoss | FaultKind::AllocFailure { .. } | FaultKind::StepTimeout { .. }
        )
    }
}

/// Which allocation an [`FaultKind::AllocFailure`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocStage {
    /// The KV cache slot of a new sequence.
    Kv,
    /// A whole engine load.
    Load,
}

/// When a fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// On request `i` (0-based) only.
    AtRequest(u64),
    /// On every `n`-th request: indices n−1, 2n−1, … (so `every = 10` of 50 fires 5 times).
    Every(u64),
    /// On each request with probability `p`, drawn from the plan's seed.
    Probability(f64),
    /// Once, on the first request started at or after this time since the run's start.
    #[serde(with = "crate::pool::config::duration_s")]
    AtTime(Duration),
}

/// One fault of a plan.
#[derive(Debug, Serialize)]
pub struct FaultSpec {
    /// What.
    pub kind: FaultKind,
    /// When.
    pub trigger: Trigger,
    #[serde(skip)]
    fired: AtomicBool,
}

impl Clone for FaultSpec {
    fn clone(&self) -> Self {
        FaultSpec::new(self.kind.clone(), self.trigger)
    }
}

impl FaultSpec {
    /// `kind` fired by `trigger`.
    pub fn new(kind: FaultKind, trigger: Trigger) -> FaultSpec {
        FaultSpec {
            kind,
            trigger,
            fired: AtomicBool::new(false),
        }
    }
}

/// The faults of a run; see the module header.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultPlan {
    /// The faults, applied in this order when several fire on one request.
    pub faults: Vec<FaultSpec>,
    /// Seed of the `Probability` draws.
    pub seed: u64,
    /// A running request (admitted into a slot) whose next event does not come within this
    /// long fails with `step_timeout`.
    #[serde(with = "crate::pool::config::duration_s")]
    pub step_timeout: Duration,
}

/// The default step timeout.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// SplitMix64 of `x`.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform draw in [0, 1) from (seed, spec, i).
fn unit_draw(seed: u64, spec: usize, i: u64) -> f64 {
    let h = splitmix64(seed ^ splitmix64(spec as u64 ^ splitmix64(i)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultPlan {
    /// An empty plan with `seed` and the default step timeout.
    pub fn new(seed: u64) -> FaultPlan {
        FaultPlan {
            faults: Vec::new(),
            seed,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }

    /// Adds `kind` fired by `trigger`.
    pub fn with(mut self, kind: FaultKind, trigger: Trigger) -> FaultPlan {
        self.faults.push(FaultSpec::new(kind, trigger));
        self
    }

    /// Checks triggers and durations; the error names the fault by its 1-based position.
    pub fn validate(&self) -> Result<()> {
        let bad = |i: usize, f: &FaultSpec, msg: &str| {
            Err(Error::Invalid(format!(
                "fault {} ({}): {msg}",
                i + 1,
                f.kind.label()
            )))
        };
        if self.step_timeout.is_zero() {
            return Err(Error::Invalid(
                "faults: step_timeout must be positive".into(),
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            match f.trigger {
                Trigger::Every(0) => return bad(i, f, "'every' must be at least 1"),
                Trigger::Probability(p) if !(0.0..=1.0).contains(&p) => {
                    return bad(i, f, "'probability' must be in 0..=1")
                }
                _ => {}
            }
            match &f.kind {
                FaultKind::AllocFailure {
                    stage: AllocStage::Load,
                    count: 0,
                } => return bad(i, f, "'count' must be at least 1"),
                FaultKind::StepTimeout { stall } if stall.is_zero() => {
                    return bad(i, f, "'stall_ms' must be positive")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether any fault acts inside the engine.
    pub fn needs_engine(&self) -> bool {
        self.faults.iter().any(|f| f.kind.needs_engine())
    }

    /// The faults that fire on request `i`, whose first attempt starts `elapsed` after the run's
    /// start, in plan order.
    pub fn decide(&self, i: u64, elapsed: Duration) -> Vec<FaultKind> {
        let mut out = Vec::new();
        for (k, f) in self.faults.iter().enumerate() {
            let fires = match f.trigger {
                Trigger::AtRequest(at) => i == at,
                Trigger::Every(n) => n > 0 && (i + 1) % n == 0,
                Trigger::Probability(p) => unit_draw(self.seed, k, i) < p,
                Trigger::AtTime(t) => {
                    elapsed >= t
                        && f.fired
                            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                }
            };
            if fires {
                out.push(f.kind.clone());
            }
        }
        out
    }

    /// How many of requests `0..n` the count-based triggers (`AtRequest`, `Every`,
    /// `Probability`) of fault kind `label` fire on — the oracle tests compare outcomes with.
    pub fn expected(&self, label: &str, n: u64) -> u64 {
        let mut hits = 0;
        for i in 0..n {
            let fired = self.faults.iter().enumerate().any(|(k, f)| {
                f.kind.label() == label
                    && match f.trigger {
                        Trigger::AtRequest(at) => i == at,
                        Trigger::Every(e) => e > 0 && (i + 1) % e == 0,
                        Trigger::Probability(p) => unit_draw(self.seed, k, i) < p,
                        Trigger::AtTime(_) => false,
                    }
            });
            hits += fired as u64;
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_triggers_are_deterministic() {
        let plan = FaultPlan::new(7)
            .with(FaultKind::Malformed, Trigger::Every(10))
            .with(FaultKind::DeviceLoss, Trigger::AtRequest(20))
            .with(
                FaultKind::Cancel { after_tokens: 1 },
                Trigger::Probability(0.25),
            );
        let fired: Vec<Vec<&str>> = (0..50)
            .map(|i| {
                plan.decide(i, Duration::ZERO)
                    .iter()
                    .map(FaultKind::label)
                    .collect()
            })
            .collect();
        let malformed: Vec<usize> = (0..50)
            .filter(|&i| fired[i].contains(&"malformed"))
            .collect();
        assert_eq!(malformed, vec![9, 19, 29, 39, 49]);
        assert_eq!(fired[20], vec!["device_loss"]);
        assert_eq!(plan.expected("malformed", 50), 5);
        assert_eq!(plan.expected("device_loss", 50), 1);
        let cancels = fired.iter().filter(|f| f.contains(&"cancel")).count() as u64;
        assert_eq!(cancels, plan.expected("cancel", 50));
        // 50 draws at p = 0.25: far from none and from all.
        assert!((3..=25).contains(&cancels), "{cancels}");
        // The same seed gives the same draws; another seed other draws.
        let again = plan.clone();
        assert_eq!(again.expected("cancel", 50), cancels);
        let other = FaultPlan {
            seed: 8,
            ..plan.clone()
        };
        let differs = (0..50)
            .any(|i| plan.decide(i, Duration::ZERO).len() != other.decide(i, Duration::ZERO).len());
        assert!(differs);
    }

    #[test]
    fn probability_matches_its_rate() {
        let plan = FaultPlan::new(1).with(FaultKind::Malformed, Trigger::Probability(0.1));
        let n = plan.expected("malformed", 20_000);
        assert!((1800..=2200).contains(&n), "{n} of 20000 at p = 0.1");
    }

    #[test]
    fn at_time_fires_once() {
        let plan = FaultPlan::new(0).with(
            FaultKind::DeviceLoss,
            Trigger::AtTime(Duration::from_millis(100)),
        );
        assert!(plan.decide(0, Duration::from_millis(50)).is_empty());
        assert_eq!(plan.decide(1, Duration::from_millis(120)).len(), 1);
        assert!(plan.decide(2, Duration::from_millis(130)).is_empty());
    }

    #[test]
    fn validation_names_the_fault() {
        let plan = FaultPlan::new(0)
            .with(FaultKind::Malformed, Trigger::Every(3))
            .with(FaultKind::Malformed, Trigger::Every(0));
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("fault 2 (malformed)"), "{e}");
        let p = FaultPlan::new(0).with(FaultKind::Malformed, Trigger::Probability(1.5));
        assert!(p.validate().is_err());
    }
}
