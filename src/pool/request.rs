//! What the pool sends: [`Request`], and where requests come from: [`RequestSource`].
//!
//! A source is asked for request `i` (0, 1, 2, … in send order across all virtual users) exactly
//! once per request the pool issues; the pool overwrites the returned request's `id` with `i`, so
//! ids are unique within a run. A JSONL source cycles through its lines.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One chat message (`{"role": "user", "content": "…"}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// "system", "user", "assistant", …
    pub role: String,
    /// The message text.
    pub content: String,
}

/// The input of a request: plain text (for `/v1/completions`) or chat messages (for
/// `/v1/chat/completions`; a text prompt is sent there as one user message).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Prompt {
    /// A plain prompt.
    Text(String),
    /// A conversation.
    Chat(Vec<ChatMessage>),
}

/// One generation request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request {
    /// Index of the request within its run (set by the pool).
    pub id: u64,
    /// What to complete.
    pub prompt: Prompt,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the target's default.
    pub temperature: Option<f32>,
    /// Nucleus sampling; `None` leaves the target's default.
    pub top_p: Option<f32>,
    /// Sampling seed; `None` leaves the target's default.
    pub seed: Option<u64>,
    /// Stream the answer. The pool only measures streamed requests, so this is always true.
    pub stream: bool,
    /// Extra top-level fields merged into the target's request body (`ignore_eos`, `min_tokens`,
    /// …; they may override any field but `stream`); targets that are not HTTP may ignore them.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Request {
    /// A streamed text request with the target's default sampling.
    pub fn text(prompt: impl Into<String>, max_tokens: u32) -> Request {
        Request {
            id: 0,
            prompt: Prompt::Text(prompt.into()),
            max_tokens,
            temperature: None,
            top_p: None,
            seed: None,
            stream: true,
            extra: serde_json::Map::new(),
        }
    }

    /// A streamed chat request with the target's default sampling.
    pub fn chat(messages: Vec<ChatMessage>, max_tokens: u32) -> Request {
        Request {
            prompt: Prompt::Chat(messages),
            ..Request::text("", max_tokens)
        }
    }
}

/// One line of a JSONL request file. Exactly one of `prompt` and `messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    max_tokens: u32,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// A closure producing request `i`; errors stop the run (the Lua host wraps a Lua function so).
pub type RequestFn = Box<dyn FnMut(u64) -> Result<Request> + Send>;

/// Where a run's requests come from.
pub enum RequestSource {
    /// Request `i` is whatever the function returns for `i`.
    Fn(RequestFn),
    /// Request `i` is entry `i % len` of a list (e.g. read from a JSONL file).
    List {
        /// The requests, never empty.
        requests: Vec<Request>,
        /// Where they came from, for messages.
        origin: String,
    },
}

impl RequestSource {
    /// A source calling `f(i)` for request `i`.
    pub fn from_fn(f: impl FnMut(u64) -> Result<Request> + Send + 'static) -> RequestSource {
        RequestSource::Fn(Box::new(f))
    }

    /// A source cycling through `requests` (which must not be empty).
    pub fn from_list(requests: Vec<Request>) -> Result<RequestSource> {
        if requests.is_empty() {
            return Err(Error::Invalid("request list is empty".into()));
        }
        Ok(RequestSource::List {
            requests,
            origin: "list".into(),
        })
    }

    /// Reads a JSONL file: one JSON object per line with `prompt` (string) or `messages` (array of
    /// `{role, content}`), `max_tokens`, and optionally `temperature`, `top_p`, `seed` and `extra`
    /// (an object merged into the HTTP body). Blank lines and lines starting with `#` are skipped.
    /// Errors name `file:line`.
    pub fn jsonl(path: impl AsRef<Path>) -> Result<RequestSource> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let requests = parse_jsonl(&text, path)?;
        Ok(RequestSource::List {
            requests,
            origin: path.display().to_string(),
        })
    }

    /// Request `i`, its `id` set to `i`.
    pub fn next(&mut self, i: u64) -> Result<Request> {
        let mut request = match self {
            RequestSource::Fn(f) => f(i)?,
            RequestSource::List { requests, .. } => {
                requests[(i % requests.len() as u64) as usize].clone()
            }
        };
        request.id = i;
        request.stream = true;
        Ok(request)
    }
}

impl std::fmt::Debug for RequestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestSource::Fn(_) => f.write_str("RequestSource::Fn"),
            RequestSource::List { requests, origin } => {
                write!(
                    f,
                    "RequestSource::List({origin}, {} requests)",
                    requests.len()
                )
            }
        }
    }
}

/// Parses JSONL text read from `path` (used in messages only).
pub fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Request>> {
    let at = |line: usize, msg: String| Error::Invalid(format!("{}:{line}: {msg}", path.display()));
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed: RequestLine =
            serde_json::from_str(trimmed).map_err(|e| at(line_no, e.to_string()))?;
        let prompt = match (parsed.prompt, parsed.messages) {
            (Some(text), None) => Prompt::Text(text),
            (None, Some(messages)) if !messages.is_empty() => Prompt::Chat(messages),
            (None, Some(_)) => return Err(at(line_no, "`messages` is empty".into())),
            _ => {
                return Err(at(
                    line_no,
                    "exactly one of `prompt` and `messages` is required".into(),
                ))
            }
        };
        if parsed.max_tokens == 0 {
            return Err(at(line_no, "`max_tokens` must be at least 1".into()));
        }
        requests.push(Request {
            id: requests.len() as u64,
            prompt,
            max_tokens: parsed.max_tokens,
            temperature: parsed.temperature,
            top_p: parsed.top_p,
            seed: parsed.seed,
            stream: true,
            extra: parsed.extra,
        });
    }
    if requests.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no requests in file",
            path.display()
        )));
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_reads_text_and_chat_and_cycles() {
        let text = concat!(
            "{\"prompt\": \"hello\", \"max_tokens\": 8, \"temperature\": 0.5, \"seed\": 7}\n",
            "\n# a comment\n",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4, ",
            "\"extra\": {\"ignore_eos\": true}}\n",
        );
        let requests = parse_jsonl(text, Path::new("r.jsonl")).unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].prompt, Prompt::Text("hello".into()));
        assert_eq!(requests[0].temperature, Some(0.5));
        assert_eq!(requests[0].seed, Some(7));
        assert_eq!(requests[1].max_tokens, 4);
        assert_eq!(
            requests[1].extra["ignore_eos"],
            serde_json::Value::Bool(true)
        );
        let mut source = RequestSource::from_list(requests).unwrap();
        let r5 = source.next(5).unwrap();
        assert_eq!(r5.id, 5);
        assert_eq!(r5.max_tokens, 4);
    }

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let cases = [
            (
                "{\"prompt\": \"a\", \"max_tokens\": 1}\n{\"prompt\": 3}\n",
                "r.jsonl:2:",
            ),
            ("\n\n{\"max_tokens\": 1}\n", "r.jsonl:3:"),
            (
                "{\"prompt\": \"a\", \"max_tokens\": 1, \"tmperature\": 1}\n",
                "r.jsonl:1:",
            ),
            ("{\"prompt\": \"a\", \"max_tokens\": 0}\n", "r.jsonl:1:"),
            ("not json\n", "r.jsonl:1:"),
        ];
        for (text, want) in cases {
            let err = parse_jsonl(text, Path::new("r.jsonl"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{text:?}: got {err}");
        }
        let err = parse_jsonl("# only a comment\n", Path::new("r.jsonl")).unwrap_err();
        assert!(err.to_string().contains("no requests"));
    }

    #[test]
    fn fn_source_gets_index_and_id_is_forced() {
        let mut source = RequestSource::from_fn(|i| {
            let mut r = Request::text(format!("p{i}"), 1 + i as u32);
            r.id = 999;
            Ok(r)
        });
        let r = source.next(3).unwrap();
        assert_eq!((r.id, r.max_tokens), (3, 4));
        assert_eq!(r.prompt, Prompt::Text("p3".into()));
    }
}
