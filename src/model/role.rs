//! What a tensor is for, derived from its GGUF name (`blk.N.attn_q.weight` → layer N, role attn_q).

use std::fmt;
use std::str::FromStr;

/// The role of a weight tensor in a llama-family model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorRole {
    TokenEmbd,
    Output,
    OutputNorm,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    FfnNorm,
    FfnGate,
    FfnUp,
    FfnDown,
    /// Any other tensor (biases, rope factors, ...).
    Other,
}

impl TensorRole {
    /// Every named role, for listings and error messages.
    pub const NAMED: [TensorRole; 12] = [
        TensorRole::TokenEmbd,
        TensorRole::Output,
        TensorRole::OutputNorm,
        TensorRole::AttnNorm,
        TensorRole::AttnQ,
        TensorRole::AttnK,
        TensorRole::AttnV,
        TensorRole::AttnOutput,
        TensorRole::FfnNorm,
        TensorRole::FfnGate,
        TensorRole::FfnUp,
        TensorRole::FfnDown,
    ];

    /// The role and layer index (if any) of the tensor named `name`.
    pub fn of(name: &str) -> (TensorRole, Option<usize>) {
        let (layer, rest) = match name.strip_prefix("blk.") {
            Some(r) => match r.split_once('.') {
                Some((n, rest)) => (n.parse::<usize>().ok(), rest),
                None => (None, r),
            },
            None => (None, name),
        };
        let stem = rest.strip_suffix(".weight").unwrap_or("");
        let role = match stem {
            "token_embd" => TensorRole::TokenEmbd,
            "output" => TensorRole::Output,
            "output_norm" => TensorRole::OutputNorm,
            "attn_norm" => TensorRole::AttnNorm,
            "attn_q" => TensorRole::AttnQ,
            "attn_k" => TensorRole::AttnK,
            "attn_v" => TensorRole::AttnV,
            "attn_output" => TensorRole::AttnOutput,
            "ffn_norm" => TensorRole::FfnNorm,
            "ffn_gate" => TensorRole::FfnGate,
            "ffn_up" => TensorRole::FfnUp,
            "ffn_down" => TensorRole::FfnDown,
            _ => TensorRole::Other,
        };
        (role, layer)
    }

    /// The short name used in GGUF tensor names and in schemes ("attn_q").
    pub fn as_str(self) -> &'static str {
        match self {
            TensorRole::TokenEmbd => "token_embd",
            TensorRole::Output => "output",
            TensorRole::OutputNorm => "output_norm",
            TensorRole::AttnNorm => "attn_norm",
            TensorRole::AttnQ => "attn_q",
            TensorRole::AttnK => "attn_k",
            TensorRole::AttnV => "attn_v",
            TensorRole::AttnOutput => "attn_output",
            TensorRole::FfnNorm => "ffn_norm",
            TensorRole::FfnGate => "ffn_gate",
            TensorRole::FfnUp => "ffn_up",
            TensorRole::FfnDown => "ffn_down",
            TensorRole::Other => "other",
        }
    }
}

impl fmt::Display for TensorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TensorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMED
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role '{s}' (expected one of: {})",
                    Self::NAMED.map(|r| r.as_str()).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_layers_parse_from_names() {
        assert_eq!(
            TensorRole::of("blk.12.attn_q.weight"),
            (TensorRole::AttnQ, Some(12))
        );
        assert_eq!(
            TensorRole::of("token_embd.weight"),
            (TensorRole::TokenEmbd, None)
        );
        assert_eq!(
            TensorRole::of("blk.0.attn_q.bias"),
            (TensorRole::Other, Some(0))
        );
        assert_eq!("ffn_down".parse::<TensorRole>(), Ok(TensorRole::FfnDown));
        assert!("ffn".parse::<TensorRole>().is_err());
    }
}
