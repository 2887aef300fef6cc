//! Typed errors of GGUF parsing, each naming the file and the byte offset or item at fault.

use std::path::PathBuf;

/// A malformed or unreadable GGUF file. `path` is the file; `offset` the byte where the problem was
/// found.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error("{}: not a GGUF file (magic {found:02x?}, expected \"GGUF\")", path.display())]
    BadMagic { path: PathBuf, found: Vec<u8> },
    /// A version other than 2 or 3.
    #[error("{}: unsupported GGUF version {version} (rawrxd reads versions 2 and 3)", path.display())]
    BadVersion { path: PathBuf, version: u32 },
    /// The file ends before a field that must be there.
    #[error("{}: truncated at byte {offset}: {what} needs {needed} bytes, {available} remain", path.display())]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: String,
        needed: u64,
        available: u64,
    },
    /// A count or size in the header cannot be right for a file of this size.
    #[error("{}: at byte {offset}: {what} = {value} is impossible ({why})", path.display())]
    Absurd {
        path: PathBuf,
        offset: u64,
        what: String,
        value: u64,
        why: String,
    },
    /// A string that is not valid UTF-8.
    #[error("{}: at byte {offset}: {what} is not valid UTF-8", path.display())]
    InvalidUtf8 {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// An unknown metadata value type id.
    #[error("{}: at byte {offset}: metadata '{key}' has unknown value type {type_id}", path.display())]
    UnknownValueType {
        path: PathBuf,
        offset: u64,
        key: String,
        type_id: u32,
    },
    /// A tensor of a ggml type rawrxd does not implement.
    #[error("{}: tensor '{tensor}' has unknown or unsupported ggml type {type_id}", path.display())]
    UnknownTensorType {
        path: PathBuf,
        tensor: String,
        type_id: u32,
    },
    /// A tensor whose geometry or placement is wrong.
    #[error("{}: tensor '{tensor}': {msg}", path.display())]
    BadTensor {
        path: PathBuf,
        tensor: String,
        msg: String,
    },
    /// Two items share a name.
    #[error("{}: duplicate {what} '{name}'", path.display())]
    Duplicate {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    /// A metadata key has the wrong type or is missing.
    #[error("{}: metadata '{key}': {msg}", path.display())]
    Metadata {
        path: PathBuf,
        key: String,
        msg: String,
    },
    /// A writer-side problem (bad plan, I/O while writing).
    #[error("{}: writing GGUF: {msg}", path.display())]
    Write { path: PathBuf, msg: String },
}
