//! The OpenAI wire format: request bodies for both endpoints, and what one SSE `data:` payload
//! says (text, finish, usage, error).

use super::Endpoint;
use super::OpenAiHttpConfig;
use crate::pool::request::{Prompt, Request};
use crate::pool::target::{ErrorKind, RequestError, Usage};

/// The JSON body of `request` under `config`.
pub fn request_body(
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
pub(super) struct Chunk {
    pub text: String,
    pub finished: bool,
    pub usage: Option<Usage>,
}

/// Interprets one SSE data payload (not `[DONE]`).
pub(super) fn interpret(
    data: &str,
    endpoint: Endpoint,
) -> std::result::Result<Chunk, RequestError> {
    let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
        RequestError::new(
            ErrorKind::Protocol,
            format!(
                "bad JSON in SSE data ({e}): {}",
                super::stream::excerpt(data.as_bytes())
            ),
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
}
