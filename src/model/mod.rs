//! Model architecture knowledge: hyper-parameters, tensor roles and the llama-family weight map.

mod hparams;
mod role;
pub mod synth;
pub mod tokenizer;
mod weights;

pub use hparams::{LlamaHParams, RopeMode};
pub use role::TensorRole;
pub use weights::{LayerWeights, LlamaWeights, TensorRef};
