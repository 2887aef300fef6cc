//! GGUF v2/v3: a memory-mapped, zero-copy reader and a streaming writer.

/// A malformed or unreadable GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {msg}")]
    Malformed { path: String, msg: String },
}
