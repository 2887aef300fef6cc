//! [`EngineTarget`]: the in-process engine as a pool [`Target`] — requests go straight to a
//! [`ModelService`]'s scheduler, no HTTP in between.
//!
//! A request is interpreted exactly as `rawrxd serve` would interpret it over HTTP: the pool's
//! request becomes the same JSON body [`OpenAiHttpTarget`](super::OpenAiHttpTarget) sends
//! ([`request_body`]), parsed by the server's own parser ([`parse_request`]). So one script gives
//! the same prompt tokens and sampling in process and over HTTP.
//!
//! Events: `Accepted` when the scheduler admits the request into a slot; one `Tokens` event per
//! sampled token (count 1, stamped on the scheduler thread; its text may be empty while a UTF-8
//! character is split across tokens); `Done` with the scheduler's token counts as usage. The
//! stream is lazy (submitted on first poll); dropping it cancels the request and frees its slot.
//!
//! Stop strings (`stop` in the request's extra fields) end the answer as over HTTP
//! ([`StopScan`]): the text before the first of them, then `Done` (usage: the tokens sampled so
//! far), and the request is cancelled in the scheduler. Text the check held back when the answer
//! ends otherwise goes out as one last chunk, as the server sends it.
//!
//! Counting differs from HTTP in one respect: a token whose text is empty (a control token
//! generated under `ignore_eos`, half of a split character) is a `Tokens` event here, while an
//! HTTP client sees no chunk for it; so in-process ITL counts every token, HTTP only the chunks.

use std::sync::Arc;

use futures_util::stream;

use super::openai::{request_body, Endpoint, OpenAiHttpConfig};
use super::request::Request;
use super::target::{ErrorKind, Event, EventStream, RequestError, Target, Usage};
use crate::engine::scheduler::{GenErrorKind, GenEvent, SubmitError};
use crate::engine::service::{ModelService, TextRequest};
use crate::model::detokenize::Detokenizer;
use crate::serve::stop::StopScan;
use crate::serve::wire::parse_request;

/// The in-process engine as a target; see the module header.
#[derive(Clone, Debug)]
pub struct EngineTarget {
    service: Arc<ModelService>,
    endpoint: Endpoint,
}

impl EngineTarget {
    /// Requests to `service`, shaped as for `endpoint` (chat requests get the chat template).
    pub fn new(service: Arc<ModelService>, endpoint: Endpoint) -> EngineTarget {
        EngineTarget { service, endpoint }
    }

    /// The service requests go to.
    pub fn service(&self) -> &Arc<ModelService> {
        &self.service
    }

    /// `request` as the server would understand it.
    pub fn text_request(&self, request: &Request) -> Result<TextRequest, RequestError> {
        self.parsed(request).map(|(text, _)| text)
    }

    /// The request as the server parses it: what to generate and the stop strings.
    fn parsed(&self, request: &Request) -> Result<(TextRequest, Vec<String>), RequestError> {
        let config = OpenAiHttpConfig::new("", self.endpoint, self.service.id());
        let body = request_body(&config, request)?;
        parse_request(self.endpoint, &body)
            .map(|r| (r.text, r.stop))
            .map_err(|m| RequestError::new(ErrorKind::Invalid, m))
    }
}

/// A submission refusal as the pool counts it.
fn submit_error(e: SubmitError) -> RequestError {
    let kind = match e {
        SubmitError::Invalid(_) => ErrorKind::Invalid,
        SubmitError::QueueFull { .. } | SubmitError::ShutDown => ErrorKind::Server,
    };
    RequestError::new(kind, e.to_string())
}

/// One request's stream state.
enum State {
    Start(Box<EngineTarget>, Box<Request>),
    Running(Box<Running>),
    /// The answer's text is all out (a stop string ended it, or its held-back tail went out):
    /// `Done` comes next.
    Stopped(Usage),
    Finished,
}

/// A request in the scheduler.
struct Running {
    handle: crate::engine::scheduler::RequestHandle,
    detok: Detokenizer,
    stop: StopScan,
    prompt_tokens: usize,
    generated: usize,
}

type Item = Result<Event, RequestError>;

/// Advances `state` to its next item.
async fn next_item(state: State) -> Option<(Item, State)> {
    let mut r = match state {
        State::Finished => return None,
        State::Stopped(usage) => {
            let done = Event::Done {
                at: std::time::Instant::now(),
                usage: Some(usage),
            };
            return Some((Ok(done), State::Finished));
        }
        State::Start(target, request) => {
            let submitted = target.parsed(&request).and_then(|(t, stop)| {
                let s = target.service.submit(&t).map_err(submit_error)?;
                Ok((s, stop))
            });
            match submitted {
                Ok((s, stop)) => Box::new(Running {
                    handle: s.handle,
                    detok: target.service.detokenizer(),
                    stop: StopScan::new(&stop),
                    prompt_tokens: s.prompt_tokens,
                    generated: 0,
                }),
                Err(e) => return Some((Err(e), State::Finished)),
            }
        }
        State::Running(r) => r,
    };
    let item = match r.handle.next().await {
        Some(GenEvent::Admitted { at, .. }) => Ok(Event::Accepted { at }),
        Some(GenEvent::Token { at, id }) => {
            r.generated += 1;
            let text = r.detok.push(id);
            let scanned = r.stop.push(&text);
            let tokens = Event::Tokens {
                at,
                count: 1,
                text: scanned.text,
            };
            if scanned.stopped {
                // Dropping the handle (with `r`) cancels the request in the scheduler.
                let usage = Usage {
                    prompt_tokens: r.prompt_tokens as u64,
                    completion_tokens: r.generated as u64,
                };
                return Some((Ok(tokens), State::Stopped(usage)));
            }
            Ok(tokens)
        }
        Some(GenEvent::Done { at, stats, .. }) => {
            let usage = Usage {
                prompt_tokens: r.prompt_tokens as u64,
                completion_tokens: stats.generated_tokens as u64,
            };
            // Text still held back (by the stop-string check, or a split character) goes out
            // as one more chunk, as over HTTP.
            let text = r.stop.end(&r.detok.finish()).text;
            if !text.is_empty() {
                let tokens = Event::Tokens { at, count: 1, text };
                return Some((Ok(tokens), State::Stopped(usage)));
            }
            return Some((
                Ok(Event::Done {
                    at,
                    usage: Some(usage),
                }),
                State::Finished,
            ));
        }
        Some(GenEvent::Failed { error, .. }) => {
            let kind = match error.kind {
                GenErrorKind::Timeout => ErrorKind::Timeout,
                GenErrorKind::Engine | GenErrorKind::Shutdown => ErrorKind::Server,
            };
            return Some((
                Err(RequestError::new(kind, error.to_string())),
                State::Finished,
            ));
        }
        None => {
            let e = RequestError::new(ErrorKind::Internal, "the scheduler stopped mid-request");
            return Some((Err(e), State::Finished));
        }
    };
    Some((item, State::Running(r)))
}

impl Target for EngineTarget {
    fn describe(&self) -> String {
        let s = self.service.scheduler();
        format!(
            "engine {} ({}, {} slots) {}",
            self.service.id(),
            s.device(),
            s.n_slots(),
            self.endpoint.path()
        )
    }

    fn send(&self, request: Request) -> EventStream {
        let start = State::Start(Box::new(self.clone()), Box::new(request));
        Box::pin(stream::unfold(start, next_item))
    }
}
