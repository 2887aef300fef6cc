//! rawrxd: a scriptable benchmark runtime for quantized LLM inference.
//!
//! The library holds everything; `main.rs` is a thin command-line edge. Module map:
//! `gguf` (file format), `quant` (tensor formats and quantization schemes), `model`
//! (hyper-parameters, tensor roles, weights, tokenizer), `engine` (the `Engine` trait, CPU
//! reference, Vulkan), `report` (plots, terminal charts and tables for the generated documents).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod engine;
pub mod error;
pub mod gguf;
pub mod model;
pub mod quant;
pub mod report;

pub use error::{Error, Result};
