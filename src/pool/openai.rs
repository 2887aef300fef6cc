//! [`OpenAiHttpTarget`]: any OpenAI-compatible server (vLLM, llama-server, `rawrxd serve`, …)
//! over HTTP with streaming (`/v1/completions` or `/v1/chat/completions`, server-sent events).
//!
//! Token counting: every SSE chunk whose text (`choices[].text`, or `choices[].delta.content` /
//! `reasoning_content` for chat) is non-empty counts as one token and is one inter-token gap, as
//! vLLM's `benchmark_serving` counts. When the server reports `usage.completion_tokens` (asked for
//! with `stream_options.include_usage`), that number is the request's token total (used for
//! TPOT and tokens/s); the gaps stay per chunk.
//!
//! Timing: an event's `Instant` is taken when the bytes that completed it came off the socket, so
//! events parsed from one network read share it. A stream ends at `data: [DONE]`; the rest of the
//! body is drained (bounded by [`DRAIN_GRACE`]) so the connection can be reused. A body that ends
//! without `[DONE]` is complete if some choice had a `finish_reason`, else a protocol error.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use super::request::{Prompt, Request};
use super::sse::{SseEvent, SseParser};
use super::target::{ErrorKind, Event, EventStream, RequestError, Target, Usage};
use crate::{Error, Result};

/// How long to keep reading after `data: [DONE]` for the end of the body.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Bytes of an error response's body kept in the error message.
const ERROR_BODY_EXCERPT: usize = 300;

/// Which OpenAI API to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/completions` with a text prompt.
    Completions,
    /// `POST /v1/chat/completions` with messages (a text prompt becomes one user message).
    Chat,
}

impl Endpoint {
    /// The path below the server root.
    pub fn path(&self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

/// Settings of an [`OpenAiHttpTarget`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpenAiHttpConfig {
    /// Server root, e.g. `http://127.0.0.1:8080` (a trailing `/v1` or `/` is accepted).
    pub base_url: String,
    /// Which API to call.
    pub endpoint: Endpoint,
    /// The `model` field of every request.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Limit on a whole request (connect, headers and the full stream); `None` for no limit.
    pub timeout: Option<Duration>,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Ask for a final usage chunk (`stream_options.include_usage`); turn off for servers that
    /// reject the field.
    pub include_usage: bool,
}

impl OpenAiHttpConfig {
    /// Settings for `base_url`, `endpoint` and `model` with a 10 s connect timeout, no total
    /// timeout (the pool's per-request timeout applies) and usage reporting on.
    pub fn new(base_url: impl Into<String>, endpoint: Endpoint, model: impl Into<String>) -> Self {
        OpenAiHttpConfig {
            base_url: base_url.into(),
            endpoint,
            model: model.into(),
            api_key: None,
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            include_usage: true,
        }
    }
}

/// An OpenAI-compatible streaming HTTP endpoint; see the module header.
#[derive(Clone, Debug)]
pub struct OpenAiHttpTarget {
    config: OpenAiHttpConfig,
    url: String,
    client: reqwest::Client,
}

impl OpenAiHttpTarget {
    /// Builds the HTTP client. Fails on a base URL that is not `http://` or `https://`.
    pub fn new(config: OpenAiHttpConfig) -> Result<OpenAiHttpTarget> {
        let root = config.base_url.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root);
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "base URL '{}': expected http:// or https://",
                config.base_url
            )));
        }
        let url = format!("{root}{}", config.endpoint.path());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(timeout) = config.timeout {
            builder = builder.timeout(timeout);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(OpenAiHttpTarget {
            config,
            url,
            client,
        })
    }

    /// The full URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON body for `request`.
    pub fn body(&self, request: &Request) -> std::result::Result<serde_json::Value, RequestError> {
        request_body(&self.config, request)
    }
}

/// The JSON body of `request` under `config`.
fn request_body(
    config: &OpenAiHttpConfig,
    request: &Request,
) -> std::result::Result<serde_json::Value, RequestError> {
    use serde_json::{json, Value};
    let mut body = serde_json::Map::new();
    body.insert("model".into(), json!(config.model));
    match (&request.prompt, config.endpoint) {
        (Prompt::Text(text), Endpoint::Completions) => {
            body.insert("prompt".into(), json!(text));
        }
        (Prompt::Text(text), Endpoint::Chat) => {
            body.insert(
                "messages".into(),
                json!([{ "role": "user", "content": text }]),
            );
        }
        (Prompt::Chat(messages), Endpoint::Chat) => {
            body.insert("messages".into(), json!(messages));
        }
        (Prompt::Chat(_), Endpoint::Completions) => {
            return Err(RequestError::new(
                ErrorKind::Invalid,
                "chat messages cannot be sent to /v1/completions",
            ))
        }
    }
    body.insert("max_tokens".into(), json!(request.max_tokens));
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(seed) = request.seed {
        body.insert("seed".into(), json!(seed));
    }
    for (key, value) in &request.extra {
        body.insert(key.clone(), value.clone());
    }
    // The pool measures streams only: extras cannot turn streaming off.
    body.insert("stream".into(), Value::Bool(true));
    if config.include_usage {
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(Value::Object(body))
}

/// What one `data:` payload said.
#[derive(Debug, Default, PartialEq)]
struct Chunk {
    text: String,
    finished: bool,
    usage: Option<Usage>,
}

/// Interprets one SSE data payload (not `[DONE]`).
fn interpret(data: &str, endpoint: Endpoint) -> std::result::Result<Chunk, RequestError> {
    let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
        RequestError::new(
            ErrorKind::Protocol,
            format!("bad JSON in SSE data ({e}): {}", excerpt(data.as_bytes())),
        )
    })?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string());
        return Err(RequestError::new(ErrorKind::Server, message));
    }
    let mut chunk = Chunk::default();
    if let Some(choices) = value.get("choices").and_then(|c| c.as_array()) {
        for choice in choices {
            let parts: &[&str] = match endpoint {
                Endpoint::Completions => &["text"],
                Endpoint::Chat => &["content", "reasoning_content", "reasoning"],
            };
            let holder = match endpoint {
                Endpoint::Completions => Some(choice),
                Endpoint::Chat => choice.get("delta"),
            };
            if let Some(holder) = holder {
                for part in parts {
                    if let Some(text) = holder.get(*part).and_then(|t| t.as_str()) {
                        chunk.text.push_str(text);
                    }
                }
            }
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                chunk.finished = true;
            }
        }
    }
    if let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
        let field = |name: &str| usage.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
        chunk.usage = Some(Usage {
            prompt_tokens: field("prompt_tokens"),
            completion_tokens: field("completion_tokens"),
        });
    }
    Ok(chunk)
}

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
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
fn excerpt(bytes: &[u8]) -> String {
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

impl Target for OpenAiHttpTarget {
    fn describe(&self) -> String {
        format!("openai-http {} model={}", self.url, self.config.model)
    }

    fn send(&self, request: Request) -> EventStream {
        let body = match request_body(&self.config, &request) {
            Ok(body) => body,
            Err(e) => return Box::pin(futures_util::stream::iter([Err(e)])),
        };
        let mut builder = self
            .client
            .post(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&body);
        if let Some(key) = &self.config.api_key {
            builder = builder.bearer_auth(key);
        }
        let state = State::Start(Box::new(builder), self.config.endpoint);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_chunks() {
        let c = interpret(
            r#"{"id":"x","choices":[{"index":0,"text":" hi","finish_reason":null}],"usage":null}"#,
            Endpoint::Completions,
        )
        .unwrap();
        assert_eq!((c.text.as_str(), c.finished, c.usage), (" hi", false, None));
        let c = interpret(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}"#,
            Endpoint::Completions,
        )
        .unwrap();
        assert_eq!(c.usage.unwrap().completion_tokens, 9);
        assert!(c.text.is_empty());
    }

    #[test]
    fn chat_chunks() {
        let role = interpret(
            r#"{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            Endpoint::Chat,
        )
        .unwrap();
        assert!(role.text.is_empty());
        let last = interpret(
            r#"{"choices":[{"delta":{"content":"!"},"finish_reason":"stop"}]}"#,
            Endpoint::Chat,
        )
        .unwrap();
        assert_eq!((last.text.as_str(), last.finished), ("!", true));
        let reasoning = interpret(
            r#"{"choices":[{"delta":{"reasoning_content":"hm","content":null}}]}"#,
            Endpoint::Chat,
        )
        .unwrap();
        assert_eq!(reasoning.text, "hm");
    }

    #[test]
    fn error_payloads_and_bad_json() {
        let e = interpret(
            r#"{"error":{"message":"overloaded","code":503}}"#,
            Endpoint::Chat,
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Server, "overloaded")
        );
        let e = interpret("{not json", Endpoint::Chat).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
    }

    #[test]
    fn bodies() {
        let mut config = OpenAiHttpConfig::new("http://h:1/v1/", Endpoint::Chat, "m");
        let target = OpenAiHttpTarget::new(config.clone()).unwrap();
        assert_eq!(target.url(), "http://h:1/v1/chat/completions");
        let mut request = Request::text("hello", 5);
        request.seed = Some(3);
        request
            .extra
            .insert("ignore_eos".into(), serde_json::Value::Bool(true));
        request
            .extra
            .insert("stream".into(), serde_json::Value::Bool(false));
        let body = target.body(&request).unwrap();
        assert_eq!(body["messages"][0]["content"], "hello");
        assert_eq!(body["max_tokens"], 5);
        assert_eq!(body["seed"], 3);
        assert_eq!(body["stream"], true);
        assert_eq!(body["ignore_eos"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert!(body.get("temperature").is_none());

        config.endpoint = Endpoint::Completions;
        config.include_usage = false;
        let target = OpenAiHttpTarget::new(config.clone()).unwrap();
        assert_eq!(target.url(), "http://h:1/v1/completions");
        let body = target.body(&request).unwrap();
        assert_eq!(body["prompt"], "hello");
        assert!(body.get("stream_options").is_none());
        let chat = Request::chat(vec![], 1);
        assert_eq!(target.body(&chat).unwrap_err().kind, ErrorKind::Invalid);

        config.base_url = "localhost:8080".into();
        assert!(OpenAiHttpTarget::new(config).is_err());
    }
}
