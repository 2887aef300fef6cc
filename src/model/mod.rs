//! Models: architectures (llama family), hyper-parameters, tokenizer, sampler.

pub mod tokenizer;
