//! Load generation (Phase 2): closed and open loops of streamed generation requests against a
//! [`Target`] — any OpenAI-compatible HTTP server ([`OpenAiHttpTarget`]) now, the in-process
//! engine later through the same trait — with per-request latency records, HdrHistogram
//! percentiles, goodput against an [`Slo`], an SLO search and a live progress line.
//!
//! Definitions (DESIGN.md, "Measuring"): TTFT send → first token; ITL every gap between
//! consecutive tokens of a request, pooled; TPOT per request (E2E − TTFT)/(tokens − 1); E2E send
//! → last token; goodput = completed requests/s meeting every SLO, errors counting as misses.
//! "Send" is the *scheduled* send time: in an open loop a late sender does not shorten latency
//! (no coordinated omission); the lateness itself is reported as queue wait.
//!
//! Module map: `request` (requests and sources), `target` (the trait and its events), `sse` and
//! `openai` (the HTTP target), `arrivals` (open-loop schedules), `config` (load shapes),
//! `runner` (running a load), `record` (per-request measurements, SLO check), `histogram` and
//! `metrics` (aggregation, results), `progress` (the live line), `search` (SLO search), `fake`
//! (a loopback OpenAI-compatible server for tests and examples).

pub mod arrivals;
pub mod config;
pub mod engine_target;
pub mod fake;
pub mod histogram;
pub mod metrics;
pub mod openai;
pub mod progress;
pub mod record;
pub mod request;
pub mod runner;
pub mod search;
pub mod sse;
pub mod target;

pub use arrivals::Arrivals;
pub use config::{Load, PoolConfig};
pub use engine_target::EngineTarget;
pub use metrics::{Counts, Histograms, PoolResult, Summary, Throughput};
pub use openai::{Endpoint, OpenAiHttpConfig, OpenAiHttpTarget};
pub use record::{RequestRecord, Slo, TokenChunk};
pub use request::{ChatMessage, Prompt, Request, RequestSource};
pub use runner::{run, run_observed, RecordObserver};
pub use search::{search_slo, SearchConfig, SearchOutcome, SloGoal};
pub use target::{ErrorKind, Event, EventStream, RequestError, Target, Usage};
pub use tokio_util::sync::CancellationToken;
