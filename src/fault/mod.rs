//! Fault injection with request-loss accounting (Phase 2: "under injected faults, how many
//! requests are lost and how fast does it recover?").
//!
//! A [`FaultPlan`] says which faults hit which requests (at request i, every n-th, with
//! probability p from a seed, at time t). A [`FaultTarget`] wraps the pool's target and injects
//! them: inside the in-process engine through a [`ManagedEngine`] built on a [`FaultyEngine`]
//! (device loss → teardown and rebuild from the model file; refused KV/engine allocations; a
//! stalled step caught by the step timeout), and on the client side (cancel mid-stream,
//! malformed requests, slow readers). A [`RetryPolicy`] retries transient failures; a
//! [`DeviceLossPolicy`] rebuilds the engine or gives up. [`run_with_faults`] runs the pool and
//! returns a [`FaultReport`]: one [`Outcome`] per request (ok, retried_ok, failed, cancelled,
//! with a reason), request loss %, recovery time per device loss, and latency percentiles with
//! and without the failures.
//!
//! Module map: `plan` (what and when), `policy` (retry, device loss), `malformed` (the bad
//! requests), `engine` (the faulty engine and its switch), `service` (the rebuildable engine),
//! `target` (injection and retries), `report` (accounting), `run` (pool run + accounting).

pub mod engine;
pub mod malformed;
pub mod plan;
pub mod policy;
pub mod report;
pub mod run;
pub mod service;
pub mod target;

pub use engine::{FaultSwitch, FaultyEngine};
pub use malformed::Malformed;
pub use plan::{AllocStage, FaultKind, FaultPlan, FaultSpec, Trigger, DEFAULT_STEP_TIMEOUT};
pub use policy::{retryable, DeviceLossPolicy, RetryPolicy};
pub use report::{FaultReport, Outcome, OutcomeCounts, RequestOutcome};
pub use run::run_with_faults;
pub use service::{DeviceLoss, EngineSpec, EngineState, Generation, ManagedEngine};
pub use target::{FaultEvent, FaultTarget, Journal};
