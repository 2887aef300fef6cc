//! GGUF v2/v3: a memory-mapped, zero-copy reader and a streaming writer.
//!
//! Invariants of a [`GgufFile`] once opened: every metadata key and tensor name is valid UTF-8 and
//! unique; every tensor has a known [`GgmlType`](crate::quant::GgmlType), 1–4 dimensions whose
//! product fits in `u64` and whose row length is a whole number of blocks; every tensor's bytes lie
//! inside the file, start at a multiple of `general.alignment` and overlap no other tensor. Nothing is
//! allocated in proportion to a count read from the file before that count has been checked against
//! the bytes that remain, so a hostile header cannot trigger a runaway allocation.

mod error;
mod reader;
mod value;
mod writer;

pub use error::GgufError;
pub use reader::{GgufFile, TensorInfo};
pub use value::{MetaValue, ValueType};
pub use writer::{GgufWriter, TensorPlan};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
