//! SLO search: the highest concurrency (closed loop) or arrival rate (open loop) at which a
//! target still meets an SLO.
//!
//! A level *meets* the goal when the share of its scheduled requests that meet the per-request
//! [`Slo`] (errors and drops are misses) is at least `min_attainment`. The search doubles from
//! `start` while levels meet, then bisects between the highest level that met and the lowest that
//! did not, until they are adjacent (concurrency) or within `rel_tolerance` (rate), or
//! `max_trials` runs were spent. It assumes attainment falls as load rises; noise can make a
//! bisection step wrong, so keep trials long enough to hold a few hundred requests.

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::config::{Load, PoolConfig};
use super::metrics::PoolResult;
use super::record::Slo;
use super::request::RequestSource;
use super::runner::run;
use super::target::Target;
use crate::{Error, Result};

/// What a level must achieve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloGoal {
    /// The per-request objectives.
    pub slo: Slo,
    /// Share of requests (0..=1) that must meet them, e.g. 0.99.
    pub min_attainment: f64,
}

/// Bounds of a search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchConfig {
    /// First level tried (users or requests/s).
    pub start: f64,
    /// Highest level tried.
    pub max: f64,
    /// Runs at most.
    pub max_trials: u32,
    /// Rate searches stop when the bracket is narrower than this share of its top.
    pub rel_tolerance: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            start: 1.0,
            max: 1024.0,
            max_trials: 10,
            rel_tolerance: 0.05,
        }
    }
}

/// The doubling-then-bisection state machine, independent of how a level is tried.
#[derive(Clone, Debug)]
pub struct LevelSearch {
    config: SearchConfig,
    integer: bool,
    /// Highest level that met the goal.
    lo: Option<f64>,
    /// Lowest level that did not.
    hi: Option<f64>,
    trials: u32,
    next: Option<f64>,
}

impl LevelSearch {
    /// A search over integers (concurrency) or reals (rates).
    pub fn new(config: SearchConfig, integer: bool) -> Result<LevelSearch> {
        let start = if integer {
            config.start.round()
        } else {
            config.start
        };
        let valid = start > 0.0
            && start.is_finite()
            && config.max >= start
            && config.max_trials >= 1
            && config.rel_tolerance > 0.0
            && config.rel_tolerance < 1.0;
        if !valid {
            return Err(Error::Invalid(format!(
                "SLO search: need 0 < start ≤ max, max_trials ≥ 1 and 0 < rel_tolerance < 1, got {config:?}"
            )));
        }
        Ok(LevelSearch {
            config,
            integer,
            lo: None,
            hi: None,
            trials: 0,
            next: Some(start),
        })
    }

    /// The level to try next, or `None` when the search is over.
    pub fn next_level(&self) -> Option<f64> {
        self.next
    }

    /// The highest level that met the goal so far.
    pub fn best(&self) -> Option<f64> {
        self.lo
    }

    /// Records the outcome of trying `level`.
    pub fn record(&mut self, level: f64, meets: bool) {
        self.trials += 1;
        if meets {
            self.lo = Some(self.lo.map_or(level, |lo| lo.max(level)));
        } else {
            self.hi = Some(self.hi.map_or(level, |hi| hi.min(level)));
        }
        self.next = if self.trials >= self.config.max_trials {
            None
        } else {
            match self.hi {
                None if level >= self.config.max => None,
                None => Some((level * 2.0).min(self.config.max)),
                Some(hi) => {
                    let lo = self.lo.unwrap_or(0.0);
                    if self.integer {
                        (hi - lo > 1.0).then(|| ((lo + hi) / 2.0).floor())
                    } else {
                        (hi - lo > self.config.rel_tolerance * hi).then(|| (lo + hi) / 2.0)
                    }
                }
            }
        };
    }
}

/// One level tried.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Users or requests/s.
    pub level: f64,
    /// Share of requests that met the SLO.
    pub attainment: f64,
    /// Whether `attainment` reached the goal.
    pub meets: bool,
    /// The run.
    pub result: PoolResult,
}

/// The outcome of a search.
#[derive(Clone, Debug, Serialize)]
pub struct SearchOutcome {
    /// The highest level that met the goal, if any did.
    pub best: Option<f64>,
    /// Every run, in order.
    pub trials: Vec<Trial>,
}

/// Searches the level of `base.load` (users of a closed loop, rate of an open loop) for the
/// highest that meets `goal`; each trial is a run of `base` at that level with `goal.slo`.
/// Cancelling stops after the current trial's cancelled run.
pub async fn search_slo(
    target: Arc<dyn Target>,
    source: &mut RequestSource,
    base: &PoolConfig,
    goal: &SloGoal,
    search: &SearchConfig,
    cancel: CancellationToken,
) -> Result<SearchOutcome> {
    let integer = matches!(base.load, Load::Closed { .. });
    let mut state = LevelSearch::new(search.clone(), integer)?;
    let mut trials = Vec::new();
    while let Some(level) = state.next_level() {
        if cancel.is_cancelled() {
            break;
        }
        let mut config = base.clone();
        config.load = base.load.with_level(level);
        config.slo = Some(goal.slo.clone());
        let result = run(target.clone(), source, &config, cancel.clone()).await?;
        let attainment = result.throughput.slo_attainment.unwrap_or(0.0);
        let meets = attainment >= goal.min_attainment;
        state.record(level, meets);
        trials.push(Trial {
            level,
            attainment,
            meets,
            result,
        });
    }
    Ok(SearchOutcome {
        best: state.best(),
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against "meets iff level ≤ capacity", returning (best, levels tried).
    fn simulate(config: SearchConfig, integer: bool, capacity: f64) -> (Option<f64>, Vec<f64>) {
        let mut search = LevelSearch::new(config, integer).unwrap();
        let mut tried = Vec::new();
        while let Some(level) = search.next_level() {
            tried.push(level);
            search.record(level, level <= capacity);
        }
        (search.best(), tried)
    }

    #[test]
    fn concurrency_doubles_then_bisects() {
        let config = SearchConfig {
            max: 64.0,
            max_trials: 16,
            ..SearchConfig::default()
        };
        let (best, tried) = simulate(config.clone(), true, 11.0);
        assert_eq!(best, Some(11.0));
        assert_eq!(tried, vec![1.0, 2.0, 4.0, 8.0, 16.0, 12.0, 10.0, 11.0]);
        for capacity in 1..=64 {
            let (best, tried) = simulate(config.clone(), true, capacity as f64);
            assert_eq!(best, Some(capacity as f64), "capacity {capacity}");
            assert!(tried.len() <= 12);
        }
        assert_eq!(simulate(config.clone(), true, 0.0).0, None);
        assert_eq!(
            simulate(config, true, 1000.0),
            (Some(64.0), vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
        );
    }

    #[test]
    fn rate_bisects_to_tolerance_and_below_start() {
        let config = SearchConfig {
            start: 10.0,
            max: 10_000.0,
            max_trials: 30,
            rel_tolerance: 0.01,
        };
        let (best, _) = simulate(config.clone(), false, 137.0);
        let best = best.unwrap();
        assert!(best <= 137.0 && best > 137.0 * 0.99, "{best}");
        let (best, tried) = simulate(config, false, 3.0);
        assert!(tried[0] == 10.0 && best.unwrap() <= 3.0 && best.unwrap() > 2.9);
    }

    #[test]
    fn trial_budget_is_respected() {
        let config = SearchConfig {
            start: 1.0,
            max: 1e9,
            max_trials: 4,
            rel_tolerance: 0.01,
        };
        let (best, tried) = simulate(config, false, 1e6);
        assert_eq!(tried.len(), 4);
        assert_eq!(best, Some(8.0));
        assert!(LevelSearch::new(
            SearchConfig {
                start: 0.0,
                ..SearchConfig::default()
            },
            false
        )
        .is_err());
    }
}
