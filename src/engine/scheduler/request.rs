//! What flows into and out of the scheduler: [`GenRequest`], the [`GenEvent`]s of its stream,
//! and the errors of submission ([`SubmitError`]) and of a request in flight ([`GenError`]).
//!
//! A request's event stream is: at most one `Admitted`, then `Token`s, then exactly one terminal
//! event, `Done` or `Failed`. Dropping the [`RequestHandle`] cancels the request: the scheduler
//! notices at its next step boundary and frees the slot.

use std::fmt;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::model::SamplerParams;

/// One generation request, in tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct GenRequest {
    /// The prompt (at least one token, at most the engine's context).
    pub prompt: Vec<u32>,
    /// Upper bound on generated tokens (at least 1).
    pub max_tokens: usize,
    /// Sampling settings and seed.
    pub sampling: SamplerParams,
    /// Keep generating past end-of-generation tokens (they are then emitted like any token).
    pub ignore_eos: bool,
    /// Limit from submission to the end; `None` uses the scheduler's default.
    pub timeout: Option<Duration>,
}

impl GenRequest {
    /// A greedy request for `max_tokens` tokens after `prompt`.
    pub fn greedy(prompt: Vec<u32>, max_tokens: usize) -> GenRequest {
        GenRequest {
            prompt,
            max_tokens,
            sampling: SamplerParams::greedy(),
            ignore_eos: false,
            timeout: None,
        }
    }
}

/// Why a request finished normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-generation token (not emitted).
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// The sequence filled its KV cache slot.
    ContextFull,
}

impl FinishReason {
    /// The OpenAI `finish_reason` ("stop" or "length").
    pub fn openai(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length | FinishReason::ContextFull => "length",
        }
    }
}

/// Timings and counts of a finished request.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct RequestStats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens emitted (an end-of-generation token that stopped the request is not counted).
    pub generated_tokens: usize,
    /// Submission → admission into a slot.
    pub queue_wait: Duration,
    /// Admission → first token (the whole prompt's prefill, in chunks).
    pub prefill: Duration,
    /// First → last token.
    pub decode: Duration,
}

/// Why a request in flight failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GenErrorKind {
    /// It did not finish within its timeout.
    Timeout,
    /// The engine failed on a step the request was part of.
    Engine,
    /// The scheduler shut down before it finished.
    Shutdown,
}

impl GenErrorKind {
    /// A short stable name: `timeout`, `engine`, `shutdown`.
    pub fn label(&self) -> &'static str {
        match self {
            GenErrorKind::Timeout => "timeout",
            GenErrorKind::Engine => "engine",
            GenErrorKind::Shutdown => "shutdown",
        }
    }
}

/// A failed request: why, and details for people.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GenError {
    pub kind: GenErrorKind,
    pub message: String,
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.message)
    }
}

/// One observation of a request, stamped when the scheduler made it.
#[derive(Clone, Debug, PartialEq)]
pub enum GenEvent {
    /// The request got KV cache slot `slot`; its prefill starts.
    Admitted { at: Instant, slot: usize },
    /// Token `id` was sampled.
    Token { at: Instant, id: u32 },
    /// The request finished normally.
    Done {
        at: Instant,
        finish: FinishReason,
        stats: RequestStats,
    },
    /// The request failed.
    Failed { at: Instant, error: GenError },
}

/// Why a request was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The waiting queue holds `capacity` requests already.
    QueueFull { capacity: usize },
    /// The request cannot run (empty prompt, longer than the context, bad sampling settings).
    Invalid(String),
    /// The scheduler is shutting down or its engine died.
    ShutDown,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::QueueFull { capacity } => {
                write!(f, "the request queue is full ({capacity} waiting)")
            }
            SubmitError::Invalid(m) => write!(f, "invalid request: {m}"),
            SubmitError::ShutDown => f.write_str("the scheduler is shut down"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// A submitted request's event stream; dropping it cancels the request.
#[derive(Debug)]
pub struct RequestHandle {
    /// The scheduler's id of the request (in submission order).
    pub id: u64,
    pub(super) events: UnboundedReceiver<GenEvent>,
}

impl RequestHandle {
    /// The next event, or `None` after the terminal one.
    pub async fn next(&mut self) -> Option<GenEvent> {
        self.events.recv().await
    }

    /// The next event, blocking the thread (not inside an async runtime).
    pub fn blocking_next(&mut self) -> Option<GenEvent> {
        self.events.blocking_recv()
    }

    /// The next event if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<GenEvent> {
        self.events.try_recv().ok()
    }

    /// Cancels the request as dropping the handle does (the scheduler frees its slot at its
    /// next step); events already sent can still be read.
    pub fn cancel(&mut self) {
        self.events.close();
    }
}
