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
//! body is drained (bounded by [`DRAIN_GRACE`]) so the connection can be reused. A body that
//! ends without `[DONE]` is complete if some choice had a `finish_reason`, else a protocol error.
//!
//! Submodules: `wire` (request bodies, chunk payloads), `stream` (the response as events).

mod stream;
mod wire;

use std::time::Duration;

use super::request::Request;
use super::target::{EventStream, RequestError, Target};
use crate::{Error, Result};
use stream::{error_chain, event_stream};
pub use wire::request_body;

pub use stream::DRAIN_GRACE;

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
        event_stream(builder, self.config.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::target::ErrorKind;

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
