//! Model architecture knowledge: hyper-parameters, tensor roles, the llama-family weight map, the
//! tokenizer and the sampler.

pub mod chat;
pub mod detokenize;
mod hparams;
mod role;
mod sampler;
pub mod synth;
pub mod tokenizer;
mod weights;

pub use hparams::{LlamaHParams, RopeMode};
pub use role::TensorRole;
pub use sampler::{argmax, Candidate, Sampler, SamplerParams};
pub use weights::{LayerWeights, LlamaWeights, TensorRef};
