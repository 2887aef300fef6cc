//! The OpenAI wire format, server side: request bodies of `/v1/completions` and
//! `/v1/chat/completions` parsed into a [`TextRequest`], and the JSON of responses and stream
//! chunks.
//!
//! Accepted fields: `prompt` (a string or a list of one string) or `messages` (`{role, content}`
//! with string content or a list of `{type: "text", text}` parts); `max_tokens` (chat also
//! `max_completion_tokens`; default 16 for completions as OpenAI, unbounded for chat),
//! `temperature`, `top_p`, `top_k`, `min_p`, `repeat_penalty` (or `repetition_penalty`),
//! `seed`, `ignore_eos`, `stream`, `stream_options.include_usage`, `n` (only 1), `stop` (a
//! string or a list of up to [`MAX_STOPS`] non-empty strings: the answer ends before the first
//! of them, `finish_reason` "stop"; see [`super::stop`]); other fields (`model`, `user`,
//! `logprobs: null`, …) are ignored. Errors name the field.
//!
//! Streams follow vLLM's chunk shapes: completions chunks carry `choices[0].text`; chat starts
//! with an assistant-role delta, then `delta.content` chunks; the last chunk has an empty text or
//! delta and the `finish_reason`; a usage chunk (`choices: []`) when asked for; `data: [DONE]`.

use serde_json::{json, Map, Value};

use crate::engine::service::{TextPrompt, TextRequest};
use crate::pool::Endpoint;

/// A parsed generation request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRequest {
    /// What to generate.
    pub text: TextRequest,
    /// Stream the answer as server-sent events.
    pub stream: bool,
    /// Send a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// Stop sequences (none: the answer ends at EOS or `max_tokens`).
    pub stop: Vec<String>,
}

/// Most stop sequences one request may carry.
pub const MAX_STOPS: usize = 16;

/// The `stop` field: absent, null, a string or a list of strings, each non-empty.
fn stop_strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    let list = match v {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| field_error(&format!("stop[{i}]"), "a string", s))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(field_error("stop", "a string or a list of strings", other)),
    };
    if list.len() > MAX_STOPS {
        return Err(format!(
            "field 'stop': at most {MAX_STOPS} stop sequences, got {}",
            list.len()
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err("field 'stop': stop sequences must not be empty".into());
    }
    Ok(list)
}

fn field_error(name: &str, want: &str, got: &Value) -> String {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("field '{name}': expected {want}, got {kind}")
}

/// Typed getters over the body, each `Ok(None)` for an absent or null field.
struct Body<'a>(&'a Map<String, Value>);

impl Body<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn f32(&self, name: &str) -> Result<Option<f32>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|x| Some(x as f32))
                .ok_or_else(|| field_error(name, "a number", v)),
        }
    }

    fn u64(&self, name: &str) -> Result<Option<u64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| field_error(name, "a non-negative integer", v)),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| field_error(name, "true or false", v)),
        }
    }
}

/// The text of a chat message's `content`: a string, or the concatenated text parts.
fn content_text(v: &Value, at: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    _ => {
                        return Err(format!(
                            "{at}.content[{i}]: only {{\"type\": \"text\", \"text\": …}} parts \
                             are supported"
                        ))
                    }
                }
            }
            Ok(out)
        }
        other => Err(field_error(
            &format!("{at}.content"),
            "a string or a list of text parts",
            other,
        )),
    }
}

/// Parses the JSON body of a request to `endpoint`.
pub fn parse_request(endpoint: Endpoint, body: &Value) -> Result<ApiRequest, String> {
    let map = body
        .as_object()
        .ok_or_else(|| "the request body must be a JSON object".to_string())?;
    let b = Body(map);
    let prompt = match endpoint {
        Endpoint::Completions => match b.get("prompt") {
            Some(Value::String(s)) => TextPrompt::Text(s.clone()),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                TextPrompt::Text(a[0].as_str().unwrap_or_default().to_string())
            }
            Some(v) => return Err(field_error("prompt", "a string (or a list of one)", v)),
            None => return Err("field 'prompt' is required".into()),
        },
        Endpoint::Chat => {
            let messages = match b.get("messages") {
                Some(Value::Array(m)) if !m.is_empty() => m,
                Some(Value::Array(_)) => return Err("field 'messages' is empty".into()),
                Some(v) => return Err(field_error("messages", "a list of messages", v)),
                None => return Err("field 'messages' is required".into()),
            };
            let mut out = Vec::with_capacity(messages.len());
            for (i, m) in messages.iter().enumerate() {
                let at = format!("messages[{i}]");
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}.role: expected a string"))?;
                let content = content_text(m.get("content").unwrap_or(&Value::Null), &at)?;
                out.push((role.to_string(), content));
            }
            TextPrompt::Chat(out)
        }
    };
    if let Some(n) = b.u64("n")? {
        if n != 1 {
            return Err(format!("field 'n': only 1 choice is supported, got {n}"));
        }
    }
    let stop = stop_strings(b.get("stop"))?;
    let max_tokens = match (b.u64("max_tokens")?, endpoint) {
        (Some(n), _) => Some(n),
        (None, Endpoint::Chat) => b.u64("max_completion_tokens")?,
        (None, Endpoint::Completions) => Some(16),
    };
    let max_tokens = match max_tokens {
        Some(0) => return Err("field 'max_tokens': must be at least 1".into()),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => usize::MAX,
    };
    let repeat_penalty = match b.f32("repeat_penalty")? {
        Some(p) => Some(p),
        None => b.f32("repetition_penalty")?,
    };
    let text = TextRequest {
        prompt,
        max_tokens,
        temperature: b.f32("temperature")?,
        top_p: b.f32("top_p")?,
        top_k: b.u64("top_k")?.map(|k| k as usize),
        min_p: b.f32("min_p")?,
        repeat_penalty,
        seed: b.u64("seed")?,
        ignore_eos: b.bool("ignore_eos")?.unwrap_or(false),
        timeout: None,
    };
    let include_usage = match b.get("stream_options") {
        None => false,
        Some(Value::Object(o)) => Body(o).bool("include_usage")?.unwrap_or(false),
        Some(v) => return Err(field_error("stream_options", "an object", v)),
    };
    Ok(ApiRequest {
        text,
        stream: b.bool("stream")?.unwrap_or(false),
        include_usage,
        stop,
    })
}

/// Identity of one response, repeated in every chunk.
#[derive(Clone, Debug)]
pub struct ResponseId {
    /// `cmpl-…` or `chatcmpl-…`.
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The model id.
    pub model: String,
    pub endpoint: Endpoint,
}

impl ResponseId {
    /// The identity of response number `n` of `model` on `endpoint`, created now.
    pub fn new(endpoint: Endpoint, model: &str, n: u64) -> ResponseId {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let prefix = match endpoint {
            Endpoint::Completions => "cmpl",
            Endpoint::Chat => "chatcmpl",
        };
        ResponseId {
            id: format!("{prefix}-rawrxd-{n}"),
            created,
            model: model.to_string(),
            endpoint,
        }
    }

    fn object(&self, streamed: bool) -> &'static str {
        match (self.endpoint, streamed) {
            (Endpoint::Completions, _) => "text_completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Chat, false) => "chat.completion",
        }
    }

    /// The opening chunk of a chat stream (assistant role, empty content); `None` for
    /// completions.
    pub fn role_chunk(&self) -> Option<Value> {
        (self.endpoint == Endpoint::Chat).then(|| {
            json!({
                "id": self.id, "object": self.object(true), "created": self.created,
                "model": self.model,
                "choices": [{ "index": 0, "delta": { "role": "assistant", "content": "" },
                              "logprobs": null, "finish_reason": null }],
            })
        })
    }

    /// A chunk of generated `text`, with the finish reason on the last one.
    pub fn text_chunk(&self, text: &str, finish: Option<&str>) -> Value {
        let choice = match self.endpoint {
            Endpoint::Completions => {
                json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": finish })
            }
            Endpoint::Chat => {
                let delta = if text.is_empty() && finish.is_some() {
                    json!({})
                } else {
                    json!({ "content": text })
                };
                json!({ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish })
            }
        };
        json!({
            "id": self.id, "object": self.object(true), "created": self.created,
            "model": self.model, "choices": [choice],
        })
    }

    /// The usage chunk of a stream.
    pub fn usage_chunk(&self, prompt_tokens: usize, completion_tokens: usize) -> Value {
        json!({
            "id": self.id, "object": self.object(true), "created": self.created,
            "model": self.model, "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        })
    }

    /// A whole (non-streamed) response.
    pub fn response(
        &self,
        text: &str,
        finish: &str,
        prompt_tokens: usize,
        completion_tokens: usize,
    ) -> Value {
        let choice = match self.endpoint {
            Endpoint::Completions => {
                json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": finish })
            }
            Endpoint::Chat => json!({
                "index": 0, "message": { "role": "assistant", "content": text },
                "logprobs": null, "finish_reason": finish,
            }),
        };
        json!({
            "id": self.id, "object": self.object(false), "created": self.created,
            "model": self.model, "choices": [choice],
            "usage": usage(prompt_tokens, completion_tokens),
        })
    }
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, kind: &str, code: u16) -> Value {
    json!({ "error": { "message": message, "type": kind, "code": code } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_fields_and_defaults() {
        let r = parse_request(
            Endpoint::Completions,
            &json!({ "model": "m", "prompt": ["hi"], "temperature": 0, "seed": 5,
                     "stream": true, "stream_options": { "include_usage": true },
                     "ignore_eos": true, "top_k": 1, "repetition_penalty": 1.1 }),
        )
        .unwrap();
        assert_eq!(r.text.prompt, TextPrompt::Text("hi".into()));
        assert_eq!(r.text.max_tokens, 16);
        assert_eq!(r.text.temperature, Some(0.0));
        assert_eq!((r.text.seed, r.text.top_k), (Some(5), Some(1)));
        assert_eq!(r.text.repeat_penalty, Some(1.1));
        assert!(r.stream && r.include_usage && r.text.ignore_eos);
        assert!(r.stop.is_empty());
        let one = |stop: Value| {
            parse_request(
                Endpoint::Completions,
                &json!({ "prompt": "a", "stop": stop }),
            )
            .unwrap()
            .stop
        };
        assert_eq!(one(json!("\n")), vec!["\n".to_string()]);
        assert_eq!(
            one(json!(["a", "bc"])),
            vec!["a".to_string(), "bc".to_string()]
        );
        assert!(one(json!([])).is_empty());
        assert!(one(Value::Null).is_empty());
    }

    #[test]
    fn chat_messages_and_parts() {
        let r = parse_request(
            Endpoint::Chat,
            &json!({ "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "user", "content": [{ "type": "text", "text": "Hi" },
                                              { "type": "text", "text": "!" }] } ],
                "max_completion_tokens": 3 }),
        )
        .unwrap();
        assert_eq!(
            r.text.prompt,
            TextPrompt::Chat(vec![
                ("system".into(), "Be brief.".into()),
                ("user".into(), "Hi!".into())
            ])
        );
        assert_eq!(r.text.max_tokens, 3);
        assert!(!r.stream);
        let unbounded = parse_request(
            Endpoint::Chat,
            &json!({ "messages": [{ "role": "user", "content": "x" }] }),
        )
        .unwrap();
        assert_eq!(unbounded.text.max_tokens, usize::MAX);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (Endpoint::Completions, json!({}), "'prompt' is required"),
            (
                Endpoint::Completions,
                json!({ "prompt": 3 }),
                "field 'prompt'",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "max_tokens": 0 }),
                "max_tokens",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "seed": -1 }),
                "field 'seed'",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "n": 2 }),
                "field 'n'",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "stop": ["\n", 3] }),
                "stop[1]",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "stop": "" }),
                "must not be empty",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "stop": vec!["x"; MAX_STOPS + 1] }),
                "at most",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "stop": { "s": 1 } }),
                "field 'stop'",
            ),
            (
                Endpoint::Completions,
                json!({ "prompt": "a", "temperature": "hot" }),
                "temperature",
            ),
            (
                Endpoint::Chat,
                json!({ "messages": [] }),
                "'messages' is empty",
            ),
            (
                Endpoint::Chat,
                json!({ "messages": [{ "content": "x" }] }),
                "messages[0].role",
            ),
            (Endpoint::Chat, json!([1]), "JSON object"),
        ];
        for (endpoint, body, want) in cases {
            let e = parse_request(endpoint, &body).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn chunks_have_the_shapes_the_pool_reads() {
        let id = ResponseId::new(Endpoint::Chat, "m", 7);
        assert_eq!(id.id, "chatcmpl-rawrxd-7");
        assert_eq!(
            id.role_chunk().unwrap()["choices"][0]["delta"]["role"],
            "assistant"
        );
        let c = id.text_chunk("hi", None);
        assert_eq!(c["choices"][0]["delta"]["content"], "hi");
        let end = id.text_chunk("", Some("stop"));
        assert_eq!(end["choices"][0]["delta"], json!({}));
        assert_eq!(end["choices"][0]["finish_reason"], "stop");
        let cmpl = ResponseId::new(Endpoint::Completions, "m", 1);
        assert!(cmpl.role_chunk().is_none());
        assert_eq!(cmpl.text_chunk("x", None)["choices"][0]["text"], "x");
        let u = cmpl.usage_chunk(3, 4);
        assert_eq!(u["usage"]["total_tokens"], 7);
        let whole = id.response("hello", "length", 2, 1);
        assert_eq!(whole["object"], "chat.completion");
        assert_eq!(whole["choices"][0]["message"]["content"], "hello");
    }
}
