//! An HTTP response as the [`EventStream`] of the target contract: status and content type
//! checked, SSE parsed incrementally, chunks turned into events stamped on arrival, `[DONE]`
//! ending the stream after the body is drained.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use super::wire::interpret;
use super::Endpoint;
use crate::pool::sse::{SseEvent, SseParser};
use crate::pool::target::{ErrorKind, Event, EventStream, RequestError, Usage};

/// How long to keep reading after `data: [DONE]` for the end of the body.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Bytes of an error response's body kept in the error message.
const ERROR_BODY_EXCERPT: usize = 300;

/// A reqwest error with its sources, classified.
fn transport_error(e: &reqwest::Error) -> RequestError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Other
    };
    RequestError::new(kind, error_chain(e))
}

/// `e: source: source…`, without repeating a source its parent already quoted.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// The first bytes of a body, as one line of text.
pub(super) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_EXCERPT)]);
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if bytes.len() > ERROR_BODY_EXCERPT {
        line.push('…');
    }
    line
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// The state of one request's event stream.
enum State {
    /// Not sent yet.
    Start(Box<reqwest::RequestBuilder>, Endpoint),
    /// Reading the body.
    Body(Box<BodyState>),
    /// A terminal item was yielded.
    Finished,
}

struct BodyState {
    endpoint: Endpoint,
    bytes: ByteStream,
    parser: SseParser,
    sse: Vec<SseEvent>,
    pending: VecDeque<std::result::Result<Event, RequestError>>,
    finished: bool,
    usage: Option<Usage>,
    /// Set at `[DONE]`: its arrival time; the body is being drained.
    done_at: Option<Instant>,
}

impl BodyState {
    /// Turns the parsed SSE events into pending items; stops at `[DONE]` or an error.
    fn absorb(&mut self, at: Instant) {
        for event in self.sse.drain(..) {
            if self.done_at.is_some() || self.pending.back().is_some_and(|e| e.is_err()) {
                break;
            }
            if event.data == "[DONE]" {
                self.done_at = Some(at);
                continue;
            }
            match interpret(&event.data, self.endpoint) {
                Ok(chunk) => {
                    if !chunk.text.is_empty() {
                        self.pending.push_back(Ok(Event::Tokens {
                            at,
                            count: 1,
                            text: chunk.text,
                        }));
                    }
                    self.finished |= chunk.finished;
                    if chunk.usage.is_some() {
                        self.usage = chunk.usage;
                    }
                }
                Err(e) => self.pending.push_back(Err(e)),
            }
        }
    }

    /// The next item, reading the body as needed; `None` when a terminal item was yielded.
    async fn next_item(&mut self) -> std::result::Result<Event, RequestError> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return item;
            }
            if let Some(done_at) = self.done_at {
                // Drain the rest of the body so the connection is reusable, within a grace.
                let drain = async { while let Some(Ok(_)) = self.bytes.next().await {} };
                let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;
                return Ok(Event::Done {
                    at: done_at,
                    usage: self.usage,
                });
            }
            match self.bytes.next().await {
                Some(Ok(bytes)) => {
                    let at = Instant::now();
                    self.parser.feed(&bytes, &mut self.sse);
                    self.absorb(at);
                }
                Some(Err(e)) => return Err(transport_error(&e)),
                None => {
                    let at = Instant::now();
                    self.parser.finish(&mut self.sse);
                    self.absorb(at);
                    if self.pending.is_empty() && self.done_at.is_none() {
                        return if self.finished {
                            Ok(Event::Done {
                                at,
                                usage: self.usage,
                            })
                        } else {
                            Err(RequestError::new(
                                ErrorKind::Protocol,
                                "stream ended before `data: [DONE]` or a finish_reason",
                            ))
                        };
                    }
                }
            }
        }
    }
}

/// Sends the request; yields `Accepted` and the body state, or the error.
async fn start(
    builder: reqwest::RequestBuilder,
    endpoint: Endpoint,
) -> std::result::Result<(Event, BodyState), RequestError> {
    let mut response = builder.send().await.map_err(|e| transport_error(&e))?;
    let at = Instant::now();
    let status = response.status();
    if !status.is_success() {
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_EXCERPT + 1 {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        return Err(RequestError::new(
            ErrorKind::Http(status.as_u16()),
            format!("HTTP {status}: {}", excerpt(&body)),
        ));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        return Err(RequestError::new(
            ErrorKind::Protocol,
            format!("expected a text/event-stream response, got '{content_type}'"),
        ));
    }
    let bytes = response.bytes_stream().map(|r| r.map(|b| b.to_vec()));
    Ok((
        Event::Accepted { at },
        BodyState {
            endpoint,
            bytes: Box::pin(bytes),
            parser: SseParser::new(),
            sse: Vec::new(),
            pending: VecDeque::new(),
            finished: false,
            usage: None,
            done_at: None,
        },
    ))
}

/// The events of sending `builder`'s request (lazy: nothing is sent before the first poll).
pub(super) fn event_stream(builder: reqwest::RequestBuilder, endpoint: Endpoint) -> EventStream {
    let state = State::Start(Box::new(builder), endpoint);
    Box::pin(futures_util::stream::unfold(state, |state| async move {
        match state {
            State::Start(builder, endpoint) => match start(*builder, endpoint).await {
                Ok((accepted, body)) => Some((Ok(accepted), State::Body(Box::new(body)))),
                Err(e) => Some((Err(e), State::Finished)),
            },
            State::Body(mut body) => {
                let item = body.next_item().await;
                let terminal = matches!(item, Err(_) | Ok(Event::Done { .. }));
                Some((
                    item,
                    if terminal {
                        State::Finished
                    } else {
                        State::Body(body)
                    },
                ))
            }
            State::Finished => None,
        }
    }))
}
