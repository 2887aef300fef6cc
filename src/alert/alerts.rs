//! Alerts with somewhere to go: an [`Evaluator`] whose transitions are stored as `alert` events
//! and whose notifications go to webhooks through a [`Dispatcher`].
//!
//! Invariant: [`Alerts::observe`] does the evaluation, one SQLite insert per transition and a
//! queue push per notification — never network I/O — so a slow or dead webhook cannot stall the
//! sampling loop that calls it. Every stored transition carries the configuration generation it
//! was evaluated under ([`Alerts::set_generation`]), so a verdict can be traced to the rules and
//! thresholds in force at the time.

use std::sync::Arc;
use std::time::Duration;

use super::{Evaluator, Rule, Sample, Transition, TransitionKind};
use crate::store::{RunId, Store};
use crate::webhook::{
    DeliveryPolicy, DeliveryStats, Dispatcher, Notification, NotifyState, StoreTarget, Webhook,
};
use crate::Result;

/// Where transitions are recorded: a store and the run they belong to.
pub type Sink<'a> = Option<(&'a Store, RunId)>;

/// Rules, their state, and the webhooks they notify.
pub struct Alerts {
    evaluator: Evaluator,
    webhooks: Vec<Arc<Webhook>>,
    dispatcher: Option<Dispatcher>,
    /// The configuration generation stored with each transition.
    generation: u64,
}

impl Alerts {
    /// Alerts over `rules` (global notification interval `min_interval_s`), notifying `webhooks`
    /// under `policy`. No webhooks: transitions are only returned and stored.
    pub fn new(
        rules: Vec<Rule>,
        min_interval_s: f64,
        webhooks: Vec<Webhook>,
        policy: DeliveryPolicy,
    ) -> Result<Alerts> {
        let evaluator = Evaluator::new(rules, min_interval_s)?;
        let dispatcher = if webhooks.is_empty() {
            None
        } else {
            Some(Dispatcher::new(policy)?)
        };
        Ok(Alerts {
            evaluator,
            webhooks: webhooks.into_iter().map(Arc::new).collect(),
            dispatcher,
            generation: 0,
        })
    }

    /// Sets the configuration generation (the script host's reload count) that later
    /// transitions are stored with.
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// The evaluator (rules and states).
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// The webhooks notified.
    pub fn webhooks(&self) -> &[Arc<Webhook>] {
        &self.webhooks
    }

    /// Feeds a sample: evaluates, records every transition in `sink`, queues notifications.
    /// The transitions are applied even when recording fails (the error is returned after all
    /// notifications are queued).
    pub fn observe(&mut self, sample: &Sample, sink: Sink<'_>) -> Result<Vec<Transition>> {
        let t = self.evaluator.observe(sample)?;
        self.dispatch(&t, sink)?;
        Ok(t)
    }

    /// Replaces the rules (see [`Evaluator::set_rules`]); transitions of removed rules are
    /// recorded and notified like any other.
    pub fn set_rules(&mut self, rules: Vec<Rule>, sink: Sink<'_>) -> Result<Vec<Transition>> {
        let t = self.evaluator.set_rules(rules)?;
        self.dispatch(&t, sink)?;
        Ok(t)
    }

    fn dispatch(&self, transitions: &[Transition], sink: Sink<'_>) -> Result<()> {
        let mut first_err = None;
        for t in transitions {
            if let Some((store, run)) = sink {
                let mut event = t.to_json();
                event["generation"] = serde_json::json!(self.generation);
                if let Err(e) = store.record_event(run, "alert", &event) {
                    first_err.get_or_insert(e);
                }
            }
            ::log::log!(
                target: "rawrxd::alert",
                match t.kind {
                    TransitionKind::Firing | TransitionKind::Announced => ::log::Level::Warn,
                    _ => ::log::Level::Info,
                },
                "{} {}: {}{}",
                t.rule,
                t.kind.name(),
                t.message,
                t.suppressed
                    .as_deref()
                    .map(|s| format!(" (not notified: {s})"))
                    .unwrap_or_default()
            );
            if !t.notify {
                continue;
            }
            let Some(d) = &self.dispatcher else { continue };
            let note = Notification {
                alert: Some(t.rule.clone()),
                state: match t.kind {
                    TransitionKind::Resolved | TransitionKind::Cancelled => NotifyState::Resolved,
                    _ => NotifyState::Firing,
                },
                severity: t.severity.clone(),
                value: t.value,
                message: t.message.clone(),
                run_id: sink.map(|s| s.1 .0),
                ts: t.ts,
            };
            let target = sink.map(|(s, run)| StoreTarget {
                path: s.path().to_path_buf(),
                run,
            });
            for w in &self.webhooks {
                d.send(w, note.clone(), target.clone());
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Waits up to `timeout` for queued notifications; `true` when none is left.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.dispatcher.as_ref().is_none_or(|d| d.flush(timeout))
    }

    /// Delivery counters (all zero without webhooks).
    pub fn stats(&self) -> DeliveryStats {
        self.dispatcher
            .as_ref()
            .map(Dispatcher::stats)
            .unwrap_or_default()
    }

    /// The dispatcher, when there are webhooks.
    pub fn dispatcher(&self) -> Option<&Dispatcher> {
        self.dispatcher.as_ref()
    }
}
