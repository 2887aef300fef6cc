//! Alerting: rules evaluated over sampled metrics (a soak's VRAM, RSS, tokens/s, request
//! counters), with pending → firing → resolved states, de-duplication and rate limits, every
//! transition stored as an `alert` event and notified through [`crate::webhook`].
//!
//! Layout: [`rule`] (what a rule is), [`stats`] (window summaries and the least-squares slope),
//! [`transition`] (samples in, transitions out: the types), [`evaluator`] (the state machine; time
//! comes from the samples, never a clock), [`alerts`]
//! (evaluator + store + webhooks), [`rules_lua`] (rules written as Lua tables or files).

pub mod alerts;
pub mod evaluator;
pub mod rule;
pub mod rules_lua;
pub mod stats;
pub mod transition;

pub use alerts::{Alerts, Sink};
pub use evaluator::Evaluator;
pub use rule::{Aggregate, Cmp, Condition, Op, Rule};
pub use rules_lua::{load_rules, rules_from_source, rules_from_table};
pub use transition::{AlertState, RuleStatus, Sample, Transition, TransitionKind};

#[cfg(test)]
mod tests;
