//! [`Malformed`]: the malformed requests a `malformed` fault sends instead of the real one.
//!
//! Each variant is a request a correct server must refuse with a clear error before generating
//! anything. They are built from the pool's request through its `extra` fields (merged into the
//! JSON body last), so the in-process engine and HTTP targets see the same bytes. Invalid UTF-8
//! cannot travel in the pool's requests (they are Rust strings, and the in-process target takes
//! parsed JSON), so `NotText` stands in for it: the prompt arrives as raw bytes (a list of
//! numbers) instead of text.

use serde_json::json;

use crate::pool::{Prompt, Request};

/// One kind of malformed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// An empty prompt (no tokens; for chat, an empty message list).
    EmptyPrompt,
    /// `max_tokens: -1`.
    NegativeMaxTokens,
    /// `max_tokens: 1e20` (beyond any integer the server takes).
    HugeMaxTokens,
    /// The prompt as raw bytes `[0xff, 0xfe, 0xfd]`, not text.
    NotText,
    /// A prompt of more tokens than the context holds.
    OverLong,
}

impl Malformed {
    /// Every variant, in the order a `malformed` fault cycles through them.
    pub const ALL: [Malformed; 5] = [
        Malformed::EmptyPrompt,
        Malformed::NegativeMaxTokens,
        Malformed::HugeMaxTokens,
        Malformed::NotText,
        Malformed::OverLong,
    ];

    /// The `n`-th variant of the cycle.
    pub fn nth(n: u64) -> Malformed {
        Malformed::ALL[(n % Malformed::ALL.len() as u64) as usize]
    }

    /// A short stable name.
    pub fn label(&self) -> &'static str {
        match self {
            Malformed::EmptyPrompt => "empty_prompt",
            Malformed::NegativeMaxTokens => "negative_max_tokens",
            Malformed::HugeMaxTokens => "huge_max_tokens",
            Malformed::NotText => "not_text",
            Malformed::OverLong => "over_long",
        }
    }

    /// `request` made malformed; `context_tokens` is the target's context (for `OverLong`).
    pub fn apply(&self, request: &Request, context_tokens: usize) -> Request {
        let mut r = request.clone();
        let extra = &mut r.extra;
        match self {
            Malformed::EmptyPrompt => {
                r.prompt = Prompt::Text(String::new());
                if matches!(request.prompt, Prompt::Chat(_)) {
                    extra.insert("messages".into(), json!([]));
                }
            }
            Malformed::NegativeMaxTokens => {
                extra.insert("max_tokens".into(), json!(-1));
            }
            Malformed::HugeMaxTokens => {
                extra.insert("max_tokens".into(), json!(1e20));
            }
            Malformed::NotText => {
                extra.insert("prompt".into(), json!([0xff, 0xfe, 0xfd]));
                extra.insert(
                    "messages".into(),
                    json!([{ "role": "user", "content": [0xff, 0xfe, 0xfd] }]),
                );
            }
            Malformed::OverLong => {
                // Every " hello" is at least one token.
                r.prompt = Prompt::Text(" hello".repeat(context_tokens + 16));
            }
        }
        r
    }
}
