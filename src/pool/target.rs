//! The [`Target`] trait: something that takes one [`Request`] and streams back what happened.
//!
//! Contract of the event stream a target returns:
//! - it is lazy: nothing is sent before it is first polled, and dropping it abandons the request
//!   (closes the connection, frees the engine slot);
//! - at most one [`Event::Accepted`], before any [`Event::Tokens`];
//! - it ends after exactly one terminal item: [`Event::Done`] or an `Err(RequestError)`; a stream
//!   that ends without one is treated by the pool as a protocol error;
//! - every event carries the [`Instant`] it was observed at, taken as close to the arrival of the
//!   bytes (or the engine's emission) as the target can, so consumers never time events themselves.

use std::fmt;
use std::pin::Pin;
use std::time::Instant;

use futures_util::Stream;

use super::request::Request;

/// One observation of a request in flight.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The target accepted the request: for HTTP, a success status line and headers arrived; for
    /// the in-process engine, the request was admitted into a batch.
    Accepted { at: Instant },
    /// Generated output arrived: `count` tokens (≥ 1) whose text is `text`.
    Tokens {
        at: Instant,
        count: u32,
        text: String,
    },
    /// The request finished normally; `usage` is the target's own token accounting if it gave one.
    Done { at: Instant, usage: Option<Usage> },
}

/// Token counts the target reported for a whole request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

/// Why a request failed; the key errors are counted under (see [`ErrorKind::label`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The target answered with a non-success HTTP status.
    Http(u16),
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The request did not finish within its timeout.
    Timeout,
    /// The response broke the protocol: malformed SSE or JSON, a stream cut off before its end.
    Protocol,
    /// The target reported an error inside an otherwise well-formed response.
    Server,
    /// The open-loop sender never sent it: the in-flight cap was reached.
    Dropped,
    /// The run was cancelled while the request was in flight.
    Cancelled,
    /// The request cannot be expressed for this target (e.g. chat messages to `/v1/completions`).
    Invalid,
    /// A bug: the target panicked or broke its stream contract in a way not covered above.
    Internal,
    /// Any other transport failure.
    Other,
}

impl ErrorKind {
    /// A short stable name: `http_500`, `connect`, `timeout`, `protocol`, `server`, `dropped`,
    /// `cancelled`, `invalid`, `internal`, `other`.
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Http(status) => format!("http_{status}"),
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::Server => "server".into(),
            ErrorKind::Dropped => "dropped".into(),
            ErrorKind::Cancelled => "cancelled".into(),
            ErrorKind::Invalid => "invalid".into(),
            ErrorKind::Internal => "internal".into(),
            ErrorKind::Other => "other".into(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// A failed request: its kind and a human-readable message (for HTTP errors, the status and an
/// excerpt of the body).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestError {
    /// What went wrong, for counting.
    pub kind: ErrorKind,
    /// Details, for people.
    pub message: String,
}

impl RequestError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RequestError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The stream of a request's events; see the module header for its contract.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, RequestError>> + Send>>;

/// Anything the pool can load: an OpenAI-compatible HTTP server, the in-process engine.
pub trait Target: Send + Sync {
    /// Short description for reports ("openai-http http://127.0.0.1:8080/v1/completions model=x").
    fn describe(&self) -> String;

    /// Starts `request` and returns its event stream. The stream is lazy (nothing happens before
    /// the first poll); the pool stamps the send time just before that first poll.
    fn send(&self, request: Request) -> EventStream;
}
