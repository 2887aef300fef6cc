//! The HTTP handlers: generation (streamed and whole), models, health, metrics.
//!
//! Timing (for `/metrics`): a request's clock starts when its handler runs; TTFT and ITL are
//! taken when a token's text is handed to the response body, E2E when the answer's last frame
//! is. A stream dropped before its end (the client went away) counts as `cancelled`, and dropping
//! it cancels the request in the scheduler. A stop sequence ([`StopScan`]) ends the answer with
//! `finish_reason` "stop" and cancels the request in the scheduler (which counts it there as
//! cancelled; the HTTP counters count it as answered).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::prometheus::{self, HttpMetrics, Outcome};
use super::stop::StopScan;
use super::wire::{error_body, parse_request, ResponseId};
use crate::engine::scheduler::{GenErrorKind, GenEvent, RequestHandle, SubmitError};
use crate::engine::service::ModelService;
use crate::model::detokenize::Detokenizer;
use crate::pool::Endpoint;

/// What every handler shares.
pub(super) struct AppState {
    pub service: Arc<ModelService>,
    pub metrics: Arc<HttpMetrics>,
    pub next_id: AtomicU64,
}

fn label(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Completions => "completions",
        Endpoint::Chat => "chat",
    }
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(error_body(message, kind, status.as_u16()))).into_response()
}

/// `POST /v1/completions` and `POST /v1/chat/completions`.
pub(super) async fn generate(state: Arc<AppState>, endpoint: Endpoint, body: Bytes) -> Response {
    let received = Instant::now();
    let name = label(endpoint);
    let m = &state.metrics;
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("the request body is not JSON: {e}"))
        .and_then(|v| parse_request(endpoint, &v));
    let request = match parsed {
        Ok(r) => r,
        Err(msg) => {
            m.count(name, Outcome::Invalid);
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &msg);
        }
    };
    let submitted = match state.service.submit(&request.text) {
        Ok(s) => s,
        Err(e) => {
            let (status, outcome, kind) = match e {
                SubmitError::Invalid(_) => (
                    StatusCode::BAD_REQUEST,
                    Outcome::Invalid,
                    "invalid_request_error",
                ),
                SubmitError::QueueFull { .. } | SubmitError::ShutDown => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Outcome::Rejected,
                    "overloaded_error",
                ),
            };
            m.count(name, outcome);
            return error_response(status, kind, &e.to_string());
        }
    };
    let id = ResponseId::new(
        endpoint,
        state.service.id(),
        state.next_id.fetch_add(1, Relaxed),
    );
    let answer = Answer {
        metrics: state.metrics.clone(),
        endpoint: name,
        handle: submitted.handle,
        detok: state.service.detokenizer(),
        stop: StopScan::new(&request.stop),
        prompt_tokens: submitted.prompt_tokens,
        generated: 0,
        received,
        last_token: None,
        outcome: None,
    };
    if request.stream {
        stream_response(answer, id, request.include_usage)
    } else {
        whole_response(answer, id).await
    }
}

/// One answer in progress; counts its outcome exactly once (`cancelled` if dropped early).
struct Answer {
    metrics: Arc<HttpMetrics>,
    endpoint: &'static str,
    handle: RequestHandle,
    detok: Detokenizer,
    stop: StopScan,
    prompt_tokens: usize,
    generated: usize,
    received: Instant,
    last_token: Option<Instant>,
    outcome: Option<Outcome>,
}

/// What the next scheduler event means for the answer.
enum Step {
    /// Text to send (possibly empty).
    Text(String),
    /// Finished with this OpenAI finish reason and the remaining text.
    Done(&'static str, String),
    /// Failed: status, error type, message.
    Failed(StatusCode, &'static str, String),
}

impl Answer {
    /// Waits for the next event that matters to the client.
    async fn step(&mut self) -> Step {
        loop {
            match self.handle.next().await {
                Some(GenEvent::Admitted { .. }) => continue,
                Some(GenEvent::Token { id, .. }) => {
                    let now = Instant::now();
                    match self.last_token {
                        None => self.metrics.ttft.observe(now - self.received),
                        Some(prev) => self.metrics.itl.observe(now - prev),
                    }
                    self.last_token = Some(now);
                    self.generated += 1;
                    let text = self.detok.push(id);
                    let scanned = self.stop.push(&text);
                    if scanned.stopped {
                        self.handle.cancel();
                        return Step::Done("stop", scanned.text);
                    }
                    return Step::Text(scanned.text);
                }
                Some(GenEvent::Done { finish, .. }) => {
                    let scanned = self.stop.end(&self.detok.finish());
                    let reason = if scanned.stopped {
                        "stop"
                    } else {
                        finish.openai()
                    };
                    return Step::Done(reason, scanned.text);
                }
                Some(GenEvent::Failed { error, .. }) => {
                    let (status, outcome, kind) = match error.kind {
                        GenErrorKind::Timeout => (
                            StatusCode::GATEWAY_TIMEOUT,
                            Outcome::Timeout,
                            "timeout_error",
                        ),
                        GenErrorKind::Engine => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            Outcome::Error,
                            "server_error",
                        ),
                        GenErrorKind::Shutdown => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Outcome::Error,
                            "server_error",
                        ),
                    };
                    self.end(outcome);
                    return Step::Failed(status, kind, error.to_string());
                }
                None => {
                    self.end(Outcome::Error);
                    return Step::Failed(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "the scheduler stopped mid-request".into(),
                    );
                }
            }
        }
    }

    /// Counts the outcome (once).
    fn end(&mut self, outcome: Outcome) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(outcome);
        self.metrics.count(self.endpoint, outcome);
        if outcome == Outcome::Ok {
            let m = &self.metrics;
            m.e2e.observe(self.received.elapsed());
            m.prompt_tokens
                .fetch_add(self.prompt_tokens as u64, Relaxed);
            m.completion_tokens
                .fetch_add(self.generated as u64, Relaxed);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.end(Outcome::Cancelled);
    }
}

/// Collects the whole answer into one JSON response.
async fn whole_response(mut answer: Answer, id: ResponseId) -> Response {
    let mut text = String::new();
    loop {
        match answer.step().await {
            Step::Text(t) => text.push_str(&t),
            Step::Done(finish, rest) => {
                text.push_str(&rest);
                answer.end(Outcome::Ok);
                let body = id.response(&text, finish, answer.prompt_tokens, answer.generated);
                return (StatusCode::OK, Json(body)).into_response();
            }
            Step::Failed(status, kind, message) => {
                return error_response(status, kind, &message);
            }
        }
    }
}

/// The body of a streamed answer.
struct SseBody {
    answer: Answer,
    id: ResponseId,
    include_usage: bool,
    frames: VecDeque<String>,
    finished: bool,
}

fn frame(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// Streams the answer as server-sent events.
fn stream_response(answer: Answer, id: ResponseId, include_usage: bool) -> Response {
    let mut frames = VecDeque::new();
    if let Some(role) = id.role_chunk() {
        frames.push_back(frame(&role));
    }
    let body = SseBody {
        answer,
        id,
        include_usage,
        frames,
        finished: false,
    };
    let stream = futures_util::stream::unfold(body, |mut b| async move {
        loop {
            if let Some(f) = b.frames.pop_front() {
                return Some((Ok::<_, Infallible>(f), b));
            }
            if b.finished {
                return None;
            }
            match b.answer.step().await {
                Step::Text(t) if t.is_empty() => {}
                Step::Text(t) => b.frames.push_back(frame(&b.id.text_chunk(&t, None))),
                Step::Done(finish, rest) => {
                    if !rest.is_empty() {
                        b.frames.push_back(frame(&b.id.text_chunk(&rest, None)));
                    }
                    b.frames
                        .push_back(frame(&b.id.text_chunk("", Some(finish))));
                    if b.include_usage {
                        let u = b.id.usage_chunk(b.answer.prompt_tokens, b.answer.generated);
                        b.frames.push_back(frame(&u));
                    }
                    b.frames.push_back("data: [DONE]\n\n".into());
                    b.finished = true;
                    b.answer.end(Outcome::Ok);
                }
                Step::Failed(status, kind, message) => {
                    b.frames
                        .push_back(frame(&error_body(&message, kind, status.as_u16())));
                    b.frames.push_back("data: [DONE]\n\n".into());
                    b.finished = true;
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "response",
            )
        })
}

/// `GET /v1/models`.
pub(super) async fn models(State(state): State<Arc<AppState>>) -> Response {
    let s = &state.service;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Json(json!({
        "object": "list",
        "data": [{
            "id": s.id(), "object": "model", "created": created, "owned_by": "rawrxd",
            "max_model_len": s.scheduler().n_ctx(),
        }],
    }))
    .into_response()
}

/// `GET /health`: 200 while the scheduler serves, 503 once it stopped.
pub(super) async fn health(State(state): State<Arc<AppState>>) -> Response {
    let s = state.service.scheduler();
    let m = s.metrics();
    let body = json!({
        "status": if s.is_running() { "ok" } else { "unavailable" },
        "slots": m.n_slots, "running": m.running, "queue_depth": m.queue_depth,
    });
    let status = if s.is_running() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let s = state.service.scheduler();
    let text = prometheus::render(
        &state.metrics,
        &s.metrics(),
        &s.memory_heaps(),
        state.service.id(),
        s.device(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
