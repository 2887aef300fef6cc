//! rawrxd: a scriptable benchmark runtime for quantized LLM inference.
//!
//! The library holds everything; `main.rs` is a thin command-line edge. Module map:
//! `gguf` (file format), `quant` (tensor formats and quantization schemes), `model`
//! (hyper-parameters, tensor roles, weights, tokenizer), `engine` (the `Engine` trait, CPU
//! reference, Vulkan), `store` (the SQLite results store), `lua` (the scripting host), `pool`
//! (load generation: closed/open loops, HTTP target, latency metrics), `fault` (fault injection and
//! request-loss accounting), `report` (plots, terminal
//! charts and tables for the generated documents).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alert;
pub mod engine;
pub mod error;
pub mod fault;
pub mod gguf;
pub mod lua;
pub mod model;
pub mod pool;
pub mod quant;
pub mod report;
pub mod serve;
pub mod soak;
pub mod store;
pub mod webhook;

pub use error::{Error, Result};
