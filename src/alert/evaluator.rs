//! The alert state machine: samples in, transitions out.
//!
//! Invariants:
//! - Time is the samples' own `ts` (seconds since the epoch); nothing here reads a clock, so a
//!   test replays hours of samples instantly. Samples must not go back in time.
//! - Per rule: `inactive → pending → firing → inactive` (`pending` is skipped when `for_s` is 0; a
//!   pending alert whose condition clears is `cancelled`; a firing one that clears is
//!   `resolved`). A sample that lacks the data a rule needs changes nothing for that rule.
//! - De-duplication: a firing alert is announced once, not per sample. Rate limits (per rule
//!   `min_interval_s`, and the evaluator's global one) apply to firing announcements; a
//!   suppressed announcement is made at the first later sample where the limits allow it, while
//!   the alert still fires (an `announced` transition). A `resolved` is notified exactly when its
//!   firing was announced, so every announced alert is also announced as resolved.
//! - Series keep only the samples the longest rule window needs.

use std::collections::{HashMap, VecDeque};

use super::stats::{aggregate, slope_per_s};
use super::{AlertState, Condition, Rule, RuleStatus, Sample, Transition, TransitionKind};
use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
struct RuleState {
    state: Option<AlertState>,
    since: f64,
    value: Option<f64>,
    announced: bool,
    last_notified: Option<f64>,
    /// No-progress rules: the counter's last value and when it last increased.
    counter: Option<(f64, f64)>,
}

impl RuleState {
    fn state(&self) -> AlertState {
        self.state.unwrap_or(AlertState::Inactive)
    }
}

/// A rule's verdict at one sample.
struct Reading {
    active: bool,
    value: Option<f64>,
    /// When the condition started holding, if the rule knows better than "now".
    since: Option<f64>,
}

/// Evaluates a set of rules over a stream of samples.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    rules: Vec<Rule>,
    states: Vec<RuleState>,
    series: HashMap<String, VecDeque<(f64, f64)>>,
    first_ts: Option<f64>,
    last_ts: Option<f64>,
    min_interval_s: f64,
    last_notify: Option<f64>,
}

fn check_rules(rules: &[Rule]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        r.validate()?;
        if !seen.insert(r.name.as_str()) {
            return Err(Error::Invalid(format!(
                "rule '{}' is defined twice",
                r.name
            )));
        }
    }
    Ok(())
}

impl Evaluator {
    /// An evaluator of `rules` with a global minimum of `min_interval_s` seconds between firing
    /// notifications (0: none).
    pub fn new(rules: Vec<Rule>, min_interval_s: f64) -> Result<Evaluator> {
        check_rules(&rules)?;
        if !min_interval_s.is_finite() || min_interval_s < 0.0 {
            return Err(Error::Invalid(format!(
                "min_interval_s must be a non-negative number, got {min_interval_s}"
            )));
        }
        let states = vec![RuleState::default(); rules.len()];
        Ok(Evaluator {
            rules,
            states,
            min_interval_s,
            ..Evaluator::default()
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Replaces the rules. A rule keeping its name and metric keeps its state; a removed rule
    /// that was pending or firing is cancelled or resolved (returned, `message` saying so). On
    /// an invalid set nothing changes.
    pub fn set_rules(&mut self, rules: Vec<Rule>) -> Result<Vec<Transition>> {
        check_rules(&rules)?;
        let mut old: HashMap<String, (Rule, RuleState)> = self
            .rules
            .drain(..)
            .zip(self.states.drain(..))
            .map(|(r, s)| (r.name.clone(), (r, s)))
            .collect();
        let mut states = Vec::with_capacity(rules.len());
        for r in &rules {
            let st = match old.remove(&r.name) {
                Some((o, s)) if o.metric == r.metric => s,
                _ => RuleState::default(),
            };
            states.push(st);
        }
        self.rules = rules;
        self.states = states;
        let ts = self.last_ts.unwrap_or(0.0);
        let mut removed: Vec<(Rule, RuleState)> = old.into_values().collect();
        removed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let mut out = Vec::new();
        for (r, s) in removed {
            let (kind, notify) = match s.state() {
                AlertState::Inactive => continue,
                AlertState::Pending => (TransitionKind::Cancelled, false),
                AlertState::Firing => (TransitionKind::Resolved, s.announced && r.notify),
            };
            out.push(Transition {
                rule: r.name.clone(),
                metric: r.metric.clone(),
                kind,
                from: s.state(),
                to: AlertState::Inactive,
                ts,
                value: s.value,
                severity: r.severity.clone(),
                message: format!("rule '{}' was removed", r.name),
                notify,
                suppressed: (kind == TransitionKind::Resolved && !notify)
                    .then(|| "its firing was not announced".to_string()),
            });
        }
        Ok(out)
    }

    /// Feeds one sample; returns the transitions it caused, in rule order.
    pub fn observe(&mut self, sample: &Sample) -> Result<Vec<Transition>> {
        let now = sample.ts;
        if !now.is_finite() {
            return Err(Error::Invalid(format!(
                "sample ts {now} is not a finite number"
            )));
        }
        if let Some(last) = self.last_ts.filter(|&l| now < l) {
            return Err(Error::Invalid(format!(
                "sample ts {now} is before the previous sample's ts {last}"
            )));
        }
        self.last_ts = Some(now);
        let first = *self.first_ts.get_or_insert(now);
        let keep = self
            .rules
            .iter()
            .map(|r| r.condition.window_s())
            .fold(0.0, f64::max);
        for (k, &v) in &sample.values {
            if !v.is_finite() {
                continue;
            }
            let s = self.series.entry(k.clone()).or_default();
            s.push_back((now, v));
            while s.len() > 1 && s.front().is_some_and(|p| p.0 < now - keep) {
                s.pop_front();
            }
        }
        let mut out = Vec::new();
        for (rule, st) in self.rules.iter().zip(self.states.iter_mut()) {
            if matches!(rule.condition, Condition::NoProgress) {
                if let Some(&v) = sample.values.get(&rule.metric).filter(|v| v.is_finite()) {
                    st.counter = Some(match st.counter {
                        Some((last, since)) if v == last => (v, since),
                        // An increase is progress; so is a decrease (a counter reset).
                        _ => (v, now),
                    });
                }
            }
            if now - first < rule.warmup_s {
                continue;
            }
            let Some(r) = read(rule, st, &self.series, sample) else {
                continue;
            };
            st.value = r.value;
            step(
                rule,
                st,
                &r,
                now,
                self.min_interval_s,
                &mut self.last_notify,
                &mut out,
            );
        }
        Ok(out)
    }

    /// Every rule's standing, in rule order.
    pub fn states(&self) -> Vec<RuleStatus> {
        self.rules
            .iter()
            .zip(&self.states)
            .map(|(r, s)| RuleStatus {
                rule: r.name.clone(),
                state: s.state(),
                since: (s.state() != AlertState::Inactive).then_some(s.since),
                value: s.value,
                announced: s.announced,
                last_notified: s.last_notified,
            })
            .collect()
    }
}

/// The rule's verdict at this sample; `None` when the data to judge is missing.
fn read(
    rule: &Rule,
    st: &RuleState,
    series: &HashMap<String, VecDeque<(f64, f64)>>,
    sample: &Sample,
) -> Option<Reading> {
    let now = sample.ts;
    let window = |metric: &str, w: f64| -> Vec<(f64, f64)> {
        series
            .get(metric)
            .map(|s| s.iter().filter(|p| p.0 >= now - w).copied().collect())
            .unwrap_or_default()
    };
    let plain = |value: f64, holds: bool| Reading {
        active: holds,
        value: Some(value),
        since: None,
    };
    match &rule.condition {
        Condition::Threshold { cmp } => {
            let v = *sample.values.get(&rule.metric).filter(|v| v.is_finite())?;
            Some(plain(v, cmp.holds(v)))
        }
        Condition::Window {
            agg,
            window_s,
            min_samples,
            min_span_s,
            cmp,
        } => {
            let pts = window(&rule.metric, *window_s);
            if pts.len() < *min_samples || span(&pts) < *min_span_s {
                return None;
            }
            let v = aggregate(*agg, &pts)?;
            Some(plain(v, cmp.holds(v)))
        }
        Condition::Slope {
            window_s,
            min_samples,
            min_span_s,
            cmp,
        } => {
            let pts = window(&rule.metric, *window_s);
            if pts.len() < *min_samples || span(&pts) < *min_span_s {
                return None;
            }
            let v = slope_per_s(&pts)? * 3600.0;
            Some(plain(v, cmp.holds(v)))
        }
        Condition::NoProgress => {
            sample.values.get(&rule.metric).filter(|v| v.is_finite())?;
            let (_, since) = st.counter?;
            Some(Reading {
                active: since < now,
                value: Some(now - since),
                since: Some(since),
            })
        }
        Condition::Ratio {
            over,
            window_s,
            cmp,
            ..
        } => {
            let increase = |m: &str| -> Option<f64> {
                let pts = window(m, *window_s);
                Some(pts.last()?.1 - pts.first()?.1)
            };
            let num = increase(&rule.metric)?;
            let mut den = 0.0;
            for m in over {
                den += increase(m)?;
            }
            if den <= 0.0 {
                return None;
            }
            let v = num / den;
            Some(plain(v, cmp.holds(v)))
        }
    }
}

fn span(pts: &[(f64, f64)]) -> f64 {
    match (pts.first(), pts.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    }
}

/// Whether a firing notification may go out now, or why not.
fn may_notify(
    rule: &Rule,
    st: &RuleState,
    now: f64,
    global_s: f64,
    last: Option<f64>,
) -> Option<String> {
    if !rule.notify {
        return Some("notify = false".into());
    }
    if let Some(t) = st.last_notified.filter(|&t| now - t < rule.min_interval_s) {
        return Some(format!(
            "rule rate limit: notified {} s ago, min_interval_s = {}",
            super::rule::number(now - t),
            super::rule::number(rule.min_interval_s)
        ));
    }
    if let Some(t) = last.filter(|&t| now - t < global_s) {
        return Some(format!(
            "global rate limit: a notification went out {} s ago, min_interval_s = {}",
            super::rule::number(now - t),
            super::rule::number(global_s)
        ));
    }
    None
}

/// Advances one rule's state with its reading at `now`, appending transitions to `out`.
fn step(
    rule: &Rule,
    st: &mut RuleState,
    r: &Reading,
    now: f64,
    global_s: f64,
    last_notify: &mut Option<f64>,
    out: &mut Vec<Transition>,
) {
    let from = st.state();
    let mut push = |kind: TransitionKind, to: AlertState, notify: bool, why: Option<String>| {
        out.push(Transition {
            rule: rule.name.clone(),
            metric: rule.metric.clone(),
            kind,
            from,
            to,
            ts: now,
            value: r.value,
            severity: rule.severity.clone(),
            message: rule.describe(r.value),
            notify,
            suppressed: why,
        });
    };
    let mut announce = |st: &mut RuleState| -> Option<String> {
        let why = may_notify(rule, st, now, global_s, *last_notify);
        if why.is_none() {
            st.announced = true;
            st.last_notified = Some(now);
            *last_notify = Some(now);
        }
        why
    };
    match (from, r.active) {
        (AlertState::Inactive, true) | (AlertState::Pending, true) => {
            if from == AlertState::Inactive || r.since.is_some() {
                st.since = r.since.unwrap_or(now);
            }
            if now - st.since >= rule.for_s {
                st.state = Some(AlertState::Firing);
                st.announced = false;
                let why = announce(st);
                push(
                    TransitionKind::Firing,
                    AlertState::Firing,
                    why.is_none(),
                    why,
                );
            } else if from == AlertState::Inactive {
                st.state = Some(AlertState::Pending);
                push(TransitionKind::Pending, AlertState::Pending, false, None);
            }
        }
        (AlertState::Firing, true) => {
            if !st.announced && rule.notify && announce(st).is_none() {
                push(TransitionKind::Announced, AlertState::Firing, true, None);
            }
        }
        (AlertState::Pending, false) => {
            st.state = Some(AlertState::Inactive);
            push(TransitionKind::Cancelled, AlertState::Inactive, false, None);
        }
        (AlertState::Firing, false) => {
            st.state = Some(AlertState::Inactive);
            let notify = st.announced;
            st.announced = false;
            let why = (!notify).then(|| "its firing was not announced".to_string());
            push(TransitionKind::Resolved, AlertState::Inactive, notify, why);
        }
        (AlertState::Inactive, false) => {}
    }
}
