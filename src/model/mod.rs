//! Model architecture knowledge: hyper-parameters, tensor roles and the llama-family weight map.

pub mod chat;
pub mod detokenize;
mod hparams;
mod role;
mod sampler;
pub mod tokenizer;
mod weights;

pub use hparams::{LlamaHParams, RopeMode};
pub use role::TensorRole;
pub use sampler::{Candidate, Sampler, SamplerParams};
pub use weights::{LayerWeights, LlamaWeights, TensorRef};
