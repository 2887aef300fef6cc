//! Which arithmetic the CPU engine runs: its own f32 reference, or a reproduction of llama.cpp's
//! CPU backend roundings (for comparing perplexities with llama-perplexity digit for digit).
//!
//! `Ggml` applies, on top of the f32 graph, exactly the roundings ggml-cpu makes on x86-64 with
//! its default settings (f16 KV cache, flash attention on):
//! - before every matrix product the activations are rounded to the weight type's
//!   `vec_dot_type` ([`crate::quant::activation`]: Q8_0, Q8_1, Q8_K, F16 or BF16);
//! - keys and values are stored in the cache rounded to f16;
//! - attention follows `ggml_compute_forward_flash_attn_ext_f16`: batches of 64 or more query
//!   rows take its tiled path (f32 queries and softmax over the f16-rounded cache: the reference
//!   attention), smaller ones its one-row path (queries rounded to f16, values accumulated online
//!   in an f16 accumulator, [`super::attention::attention_f16_online`]).
//!
//! Summation order is not reproduced (ggml's SIMD blocking differs); the result agrees with
//! llama.cpp to well under a percent of perplexity rather than bit for bit.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The CPU engine's arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Numerics {
    /// f32 everywhere, f32 KV cache: the reference and oracle for every other backend.
    #[default]
    F32,
    /// llama.cpp's CPU backend roundings (see the module docs).
    Ggml,
}

impl Numerics {
    /// The name the command line and JSON use: `f32` or `ggml`.
    pub fn name(self) -> &'static str {
        match self {
            Numerics::F32 => "f32",
            Numerics::Ggml => "ggml",
        }
    }
}

impl fmt::Display for Numerics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Numerics {
    type Err = Error;
    fn from_str(s: &str) -> Result<Numerics> {
        match s {
            "f32" => Ok(Numerics::F32),
            "ggml" => Ok(Numerics::Ggml),
            _ => Err(Error::Invalid(format!(
                "unknown numerics '{s}' (expected f32 or ggml)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [Numerics::F32, Numerics::Ggml] {
            assert_eq!(n.name().parse::<Numerics>().unwrap(), n);
        }
        assert_eq!(Numerics::default(), Numerics::F32);
        assert!("f16".parse::<Numerics>().is_err());
    }
}
