//! [`FakeServer`]: an OpenAI-compatible streaming server on a loopback port, for tests, examples
//! and dry runs of plans. It generates no text: it streams `max_tokens` tokens (" tok0",
//! " tok1", …) with a configurable time to first token, per-token delay and jitter, injected HTTP
//! 500s, a capacity (streams served at once; the rest queue, like a server's batch slots), a
//! one-time stall of the whole server, fragmented SSE frames and truncated streams.
//!
//! Wire format, as vLLM sends it: an SSE comment first; `/v1/completions` chunks carry
//! `choices[0].text`, the last one with `finish_reason: "length"`; `/v1/chat/completions` starts
//! with an empty assistant `delta`, then `delta.content` chunks, then an empty `delta` with the
//! finish reason; a usage chunk (`choices: []`) if `stream_options.include_usage`; `data: [DONE]`.
//!
//! Stall: the server freezes once, from `after` past its first request for `length`: no token
//! (first or later) of any stream is sent inside that window; they resume at its end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::openai::Endpoint;

/// A one-time freeze of the whole server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stall {
    /// When it starts, after the server's first request.
    pub after: Duration,
    /// How long it lasts.
    pub length: Duration,
}

/// Behaviour of a [`FakeServer`].
#[derive(Clone, Debug, PartialEq)]
pub struct FakeConfig {
    /// Delay from request to first token (after waiting for capacity).
    pub ttft: Duration,
    /// Delay between tokens.
    pub token_delay: Duration,
    /// Each delay is scaled by a seeded uniform factor in `1 ± jitter` (0..1).
    pub jitter: f64,
    /// Cap on tokens per request (the request's `max_tokens` otherwise; 16 if it has none).
    pub max_tokens: Option<u32>,
    /// Probability (0..=1) that a request is answered with HTTP 500.
    pub error_rate: f64,
    /// Seed of the jitter and error draws.
    pub seed: u64,
    /// A one-time stall, if any.
    pub stall: Option<Stall>,
    /// Streams generated at once; others wait (their wait shows in TTFT). `None`: unlimited.
    pub capacity: Option<usize>,
    /// Send every SSE frame split into 5-byte body chunks.
    pub fragment: bool,
    /// End the body after this many tokens, without finish reason or `[DONE]`.
    pub truncate_after: Option<u32>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            ttft: Duration::from_millis(5),
            token_delay: Duration::from_millis(2),
            jitter: 0.0,
            max_tokens: None,
            error_rate: 0.0,
            seed: 0,
            stall: None,
            capacity: None,
            fragment: false,
            truncate_after: None,
        }
    }
}

/// What the server saw and did.
#[derive(Debug, Default)]
pub struct FakeStats {
    /// Requests received on either endpoint.
    pub requests: AtomicU64,
    /// Requests answered with an injected HTTP 500.
    pub errors: AtomicU64,
    /// Streams sent to their end (`[DONE]` or the truncation point).
    pub completed: AtomicU64,
    /// Streams abandoned because the client went away.
    pub disconnected: AtomicU64,
}

struct Shared {
    config: FakeConfig,
    stats: Arc<FakeStats>,
    rng: Mutex<StdRng>,
    first_request: OnceLock<Instant>,
    slots: Option<Arc<Semaphore>>,
    next_id: AtomicU64,
}

impl Shared {
    /// Waits out the stall window if `now` is inside it.
    async fn stall_point(&self) {
        let (Some(stall), Some(&first)) = (self.config.stall, self.first_request.get()) else {
            return;
        };
        let (begin, end) = (first + stall.after, first + stall.after + stall.length);
        let now = Instant::now();
        if now >= begin && now < end {
            tokio::time::sleep_until(end.into()).await;
        }
    }

    /// `base` scaled by a jitter factor.
    fn jittered(&self, rng: &mut StdRng, base: Duration) -> Duration {
        if self.config.jitter <= 0.0 {
            return base;
        }
        let factor = 1.0 + self.config.jitter * (2.0 * rng.gen::<f64>() - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    stats: Arc<FakeStats>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Starts a server on `127.0.0.1` at an ephemeral port (call inside a tokio runtime).
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(FakeStats::default());
        let shared = Arc::new(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            slots: config.capacity.map(|n| Arc::new(Semaphore::new(n.max(1)))),
            config,
            stats: stats.clone(),
            first_request: OnceLock::new(),
            next_id: AtomicU64::new(0),
        });
        let app = Router::new()
            .route(
                "/v1/completions",
                post(|state, body| handle(state, body, Endpoint::Completions)),
            )
            .route(
                "/v1/chat/completions",
                post(|state, body| handle(state, body, Endpoint::Chat)),
            )
            .route("/health", get(|| async { "ok" }))
            .with_state(shared);
        // Small SSE frames must not wait for Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeServer { addr, stats, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters of what the server did.
    pub fn stats(&self) -> &FakeStats {
        &self.stats
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let body =
        json!({ "error": { "message": message, "type": "fake_error", "code": status.as_u16() } });
    (status, Json(body)).into_response()
}

/// Words in the prompt or the messages' contents: the fake's "prompt tokens".
fn prompt_words(body: &Value) -> u64 {
    let count = |v: &Value| {
        v.as_str()
            .map_or(0, |s| s.split_whitespace().count() as u64)
    };
    let messages = body.get("messages").and_then(|m| m.as_array());
    count(body.get("prompt").unwrap_or(&Value::Null))
        + messages.map_or(0, |ms| ms.iter().map(|m| count(&m["content"])).sum())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Value>,
    endpoint: Endpoint,
) -> Response {
    let stats = &shared.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    shared.first_request.get_or_init(Instant::now);
    if body.get("stream") != Some(&Value::Bool(true)) {
        return error_response(StatusCode::BAD_REQUEST, "this fake only streams");
    }
    let config = &shared.config;
    let requested = body
        .get("max_tokens")
        .and_then(|v| v.as_u64())
        .unwrap_or(16) as u32;
    let n = config
        .max_tokens
        .map_or(requested, |cap| requested.min(cap));
    let include_usage = body["stream_options"]["include_usage"] == Value::Bool(true);
    let (fail, ttft, delays) = {
        let mut rng = shared.rng.lock().unwrap_or_else(|e| e.into_inner());
        let fail = config.error_rate > 0.0 && rng.gen::<f64>() < config.error_rate;
        let ttft = shared.jittered(&mut rng, config.ttft);
        let delays: Vec<Duration> = (0..n)
            .map(|_| shared.jittered(&mut rng, config.token_delay))
            .collect();
        (fail, ttft, delays)
    };
    if fail {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "injected failure");
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let model = body["model"].as_str().unwrap_or("fake").to_string();
    let prompt_tokens = prompt_words(&body);
    let (tx, rx) = mpsc::channel::<String>(4);
    let generator = shared.clone();
    tokio::spawn(async move {
        let shared = generator;
        let frame = |payload: Value| format!("data: {payload}\n\n");
        let text_chunk = |text: &str, finish: Option<&str>| match endpoint {
            Endpoint::Completions => json!({
                "id": format!("cmpl-fake-{id}"), "object": "text_completion", "model": model,
                "choices": [{ "index": 0, "text": text, "logprobs": null, "finish_reason": finish }],
            }),
            Endpoint::Chat => json!({
                "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk", "model": model,
                "choices": [{ "index": 0, "delta": { "content": text }, "finish_reason": finish }],
            }),
        };
        let send = |tx: &mpsc::Sender<String>, text: String| {
            let tx = tx.clone();
            let fragment = shared.config.fragment;
            async move {
                if fragment {
                    for piece in text.as_bytes().chunks(5) {
                        // Pieces may split a UTF-8 character; lossy is fine for ASCII frames.
                        let piece = String::from_utf8_lossy(piece).into_owned();
                        tx.send(piece).await.map_err(|_| ())?;
                    }
                    Ok(())
                } else {
                    tx.send(text).await.map_err(|_| ())
                }
            }
        };
        let result: Result<(), ()> = async {
            send(&tx, ": fake-openai\n\n".into()).await?;
            let _slot = match &shared.slots {
                Some(slots) => Some(slots.clone().acquire_owned().await.map_err(|_| ())?),
                None => None,
            };
            tokio::time::sleep(ttft).await;
            if endpoint == Endpoint::Chat {
                let role = json!({
                    "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk",
                    "choices": [{ "index": 0, "delta": { "role": "assistant", "content": "" },
                                  "finish_reason": null }],
                });
                send(&tx, frame(role)).await?;
            }
            for (i, delay) in delays.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(*delay).await;
                }
                shared.stall_point().await;
                if shared.config.truncate_after == Some(i as u32) {
                    return Ok(());
                }
                let last = i + 1 == delays.len() && endpoint == Endpoint::Completions;
                let chunk = text_chunk(&format!(" tok{i}"), last.then_some("length"));
                send(&tx, frame(chunk)).await?;
            }
            if endpoint == Endpoint::Chat {
                let end = json!({
                    "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk",
                    "choices": [{ "index": 0, "delta": {}, "finish_reason": "length" }],
                });
                send(&tx, frame(end)).await?;
            }
            if include_usage {
                let usage = json!({
                    "id": format!("fake-{id}"), "choices": [],
                    "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": n,
                               "total_tokens": prompt_tokens + n as u64 },
                });
                send(&tx, frame(usage)).await?;
            }
            send(&tx, "data: [DONE]\n\n".into()).await
        }
        .await;
        let counter = match result {
            Ok(()) => &shared.stats.completed,
            Err(()) => &shared.stats.disconnected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, std::convert::Infallible>(frame), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(axum::body::Body::from_stream(body))
        .unwrap_or_else(|_| error_response(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}
