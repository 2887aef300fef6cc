//! The library's one error type.
//!
//! Every variant carries what a user needs to find the problem: the file, the tensor or key name,
//! the byte offset, the shape. Modules with a rich error vocabulary of their own (GGUF parsing,
//! Vulkan) keep a typed enum and convert into this one with `#[from]`.

use std::path::PathBuf;

use crate::quant::GgmlType;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside rawrxd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A GGUF file is malformed or could not be read.
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),

    /// A tensor's shape does not fit what the operation needs.
    #[error("tensor '{name}': {msg}")]
    Shape { name: String, msg: String },

    /// A tensor type cannot be used where it was asked for.
    #[error("type {ty}: {msg}")]
    Type { ty: GgmlType, msg: String },

    /// A model lacks a tensor or metadata key it needs, or holds an inconsistent value.
    #[error("model: {0}")]
    Model(String),

    /// The tokenizer could not be built or could not encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A quantization scheme failed to load or to resolve; `msg` starts with `file:line:` where
    /// Lua knows the line, with the file otherwise.
    #[error("{msg}")]
    Scheme { path: PathBuf, msg: String },

    /// The results store failed (SQLite, a damaged row, an unknown run).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),

    /// A Lua script failed; the message is `file:line: message`.
    #[error("{0}")]
    Script(String),

    /// The Vulkan backend failed.
    #[error("vulkan: {0}")]
    Vulkan(#[from] crate::engine::vulkan::VulkanError),

    /// A plot could not be drawn (data unfit for the chosen axes, a font that will not load).
    #[error("plot: {0}")]
    Plot(String),

    /// Invalid user input (a flag, a scheme rule, a sampling parameter).
    #[error("{0}")]
    Invalid(String),

    /// An allocation was refused (engine load, KV cache slot): real or injected by `fault`.
    #[error("out of memory: {0}")]
    OutOfMemory(String),

    /// The device was lost mid-work (real or injected by `fault`); the engine must be rebuilt.
    #[error("device lost: {0}")]
    DeviceLost(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
