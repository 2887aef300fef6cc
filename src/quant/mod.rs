//! Tensor formats: block layouts, dequantization and quantization, bit-exact with ggml.

mod types;

pub use types::{GgmlType, QK_K};
