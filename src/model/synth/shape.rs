//! Shapes of synthetic llama models: the named presets and `key=value` lists.
//!
//! Invariant: a [`SynthShape`] that parsed is loadable by llama.cpp's llama graph: every size is
//! positive, `n_embd` divides into `n_head` heads of even size, `n_head` into `n_head_kv` groups,
//! and the vocabulary can hold the built-in tokenizer's byte tokens.

use crate::gguf::TensorInfo;
use crate::model::{LlamaHParams, RopeMode};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Smallest vocabulary the built-in tokenizer fits in: 2 special tokens and 256 byte tokens.
pub const MIN_VOCAB: usize = 258;

/// The shape of a synthetic llama-architecture model.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthShape {
    /// What the shape was called (`llama-7b`, or the spec it was parsed from).
    pub label: String,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    /// Training context length written to the file.
    pub n_ctx: usize,
    /// Whether the output projection reuses `token_embd` (no `output.weight`).
    pub tied: bool,
    pub rope_freq_base: f32,
    pub rms_norm_eps: f32,
}

/// The presets `--shape` knows by name.
pub const NAMED_SHAPES: [&str; 4] = ["llama-7b", "llama-3b", "llama-1b", "smollm-135m"];

impl SynthShape {
    /// A named preset: `llama-7b` (Llama-2-7B), `llama-3b` (an OpenLLaMA-3B-like shape with
    /// 256-multiple widths), `llama-1b` (TinyLlama-1.1B), `smollm-135m` (SmolLM2-135M).
    pub fn named(name: &str) -> Option<SynthShape> {
        let s = |n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx| SynthShape {
            label: name.to_string(),
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_vocab,
            n_ctx,
            tied: false,
            rope_freq_base: 10000.0,
            rms_norm_eps: 1e-5,
        };
        Some(match name {
            "llama-7b" => s(4096, 32, 32, 32, 11008, 32000, 4096),
            "llama-3b" => s(3072, 26, 24, 24, 8192, 32000, 2048),
            "llama-1b" => s(2048, 22, 32, 4, 5632, 32000, 2048),
            "smollm-135m" => SynthShape {
                tied: true,
                rope_freq_base: 100000.0,
                ..s(576, 30, 9, 3, 1536, 49152, 8192)
            },
            _ => return None,
        })
    }

    /// Parses `--shape`: a preset name, a `key=value,...` list (keys `n_embd`, `n_layer`,
    /// `n_head`, `n_head_kv`, `n_ff`, `n_vocab`, `n_ctx`, `tied`, `rope_base`), or a preset
    /// followed by overrides (`llama-1b,n_layer=2`). Without a preset, `n_embd`, `n_layer`,
    /// `n_head`, `n_ff` and `n_vocab` are required; `n_head_kv` defaults to `n_head`, `n_ctx` to
    /// 2048.
    pub fn parse(spec: &str) -> Result<SynthShape> {
        let bad = |msg: String| Error::Invalid(format!("--shape '{spec}': {msg}"));
        let mut items = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .peekable();
        let mut shape = match items.peek().and_then(|first| SynthShape::named(first)) {
            Some(s) => {
                items.next();
                s
            }
            None => SynthShape {
                label: spec.to_string(),
                n_embd: 0,
                n_layer: 0,
                n_head: 0,
                n_head_kv: 0,
                n_ff: 0,
                n_vocab: 0,
                n_ctx: 2048,
                tied: false,
                rope_freq_base: 10000.0,
                rms_norm_eps: 1e-5,
            },
        };
        shape.label = spec.to_string();
        let mut kv_given = false;
        for item in items {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                bad(format!(
                    "'{item}' is neither a preset ({}) nor key=value",
                    NAMED_SHAPES.join(", ")
                ))
            })?;
            let (k, v) = (k.trim(), v.trim());
            let num = || {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("{k}={v}: expected a whole number")))
            };
            match k {
                "n_embd" => shape.n_embd = num()?,
                "n_layer" => shape.n_layer = num()?,
                "n_head" => shape.n_head = num()?,
                "n_head_kv" => {
                    shape.n_head_kv = num()?;
                    kv_given = true;
                }
                "n_ff" => shape.n_ff = num()?,
                "n_vocab" => shape.n_vocab = num()?,
                "n_ctx" => shape.n_ctx = num()?,
                "tied" => {
                    shape.tied = match v {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => return Err(bad(format!("tied={v}: expected true or false"))),
                    }
                }
                "rope_base" => {
                    shape.rope_freq_base = v
                        .parse()
                        .map_err(|_| bad(format!("rope_base={v}: expected a number")))?
                }
                other => {
                    return Err(bad(format!(
                        "unknown key '{other}' (keys: n_embd, n_layer, n_head, n_head_kv, n_ff, \
                         n_vocab, n_ctx, tied, rope_base)"
                    )))
                }
            }
        }
        if shape.n_head_kv == 0 && !kv_given {
            shape.n_head_kv = shape.n_head;
        }
        shape.check().map_err(bad)?;
        Ok(shape)
    }

    fn check(&self) -> std::result::Result<(), String> {
        for (k, v) in [
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_head_kv", self.n_head_kv),
            ("n_ff", self.n_ff),
            ("n_vocab", self.n_vocab),
            ("n_ctx", self.n_ctx),
        ] {
            if v == 0 {
                return Err(format!("{k} must be given and positive"));
            }
        }
        if self.n_embd % self.n_head != 0 || (self.n_embd / self.n_head) % 2 != 0 {
            return Err(format!(
                "n_embd {} must split into n_head {} heads of even size",
                self.n_embd, self.n_head
            ));
        }
        if self.n_head % self.n_head_kv != 0 {
            return Err(format!(
                "n_head {} is not a multiple of n_head_kv {}",
                self.n_head, self.n_head_kv
            ));
        }
        if self.n_vocab < MIN_VOCAB {
            return Err(format!("n_vocab must be at least {MIN_VOCAB}"));
        }
        if self.n_embd % 32 != 0 || self.n_ff % 32 != 0 {
            return Err("n_embd and n_ff must be multiples of 32 (ggml's block size)".into());
        }
        Ok(())
    }

    /// Per-head size.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// The hyper-parameters llama.cpp will read from the file.
    pub fn hparams(&self) -> LlamaHParams {
        LlamaHParams {
            arch: "llama".into(),
            n_vocab: self.n_vocab,
            n_embd: self.n_embd,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim(),
            n_ff: self.n_ff,
            n_ctx_train: self.n_ctx,
            rms_norm_eps: self.rms_norm_eps,
            rope_freq_base: self.rope_freq_base,
            n_rot: self.head_dim(),
            rope_mode: RopeMode::Normal,
            tied_embeddings: self.tied,
        }
    }

    /// The model's tensors in file order (as llama.cpp's converter writes them), as F32 sources:
    /// names and ggml-order dimensions (`[row length, rows]`).
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let (e, kv, ff, v) = (
            self.n_embd as u64,
            (self.n_head_kv * self.head_dim()) as u64,
            self.n_ff as u64,
            self.n_vocab as u64,
        );
        let mut out: Vec<(String, Vec<u64>)> = vec![("token_embd.weight".into(), vec![e, v])];
        for l in 0..self.n_layer {
            let b = |s: &str| format!("blk.{l}.{s}.weight");
            out.extend([
                (b("attn_norm"), vec![e]),
                (b("attn_q"), vec![e, e]),
                (b("attn_k"), vec![e, kv]),
                (b("attn_v"), vec![e, kv]),
                (b("attn_output"), vec![e, e]),
                (b("ffn_norm"), vec![e]),
                (b("ffn_gate"), vec![e, ff]),
                (b("ffn_up"), vec![e, ff]),
                (b("ffn_down"), vec![ff, e]),
            ]);
        }
        out.push(("output_norm.weight".into(), vec![e]));
        if !self.tied {
            out.push(("output.weight".into(), vec![e, v]));
        }
        out.into_iter()
            .map(|(name, dims)| {
                let n: u64 = dims.iter().product();
                TensorInfo {
                    name,
                    dims,
                    ty: GgmlType::F32,
                    offset: 0,
                    n_bytes: n * 4,
                }
            })
            .collect()
    }

    /// Number of weights.
    pub fn n_params(&self) -> u64 {
        self.tensors().iter().map(|t| t.n_elements()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_parameter_counts() {
        // Llama-2-7B: 6.74 B parameters; TinyLlama: 1.10 B; SmolLM2-135M: 134.5 M
        let p = |n: &str| SynthShape::named(n).unwrap().n_params();
        assert_eq!(p("llama-7b"), 6_738_415_616);
        assert_eq!(p("llama-1b"), 1_100_048_384);
        assert_eq!(p("smollm-135m"), 134_515_008);
    }

    #[test]
    fn specs_parse_with_presets_overrides_and_defaults() {
        let s = SynthShape::parse("llama-1b,n_layer=2").unwrap();
        assert_eq!((s.n_layer, s.n_embd, s.n_head_kv), (2, 2048, 4));
        let s = SynthShape::parse("n_embd=256,n_layer=3,n_head=4,n_ff=512,n_vocab=1000").unwrap();
        assert_eq!((s.n_head_kv, s.n_ctx, s.tied), (4, 2048, false));
        assert_eq!(s.tensors().len(), 1 + 3 * 9 + 2);
        let s = SynthShape::parse(
            "n_embd=256,n_layer=1,n_head=4,n_head_kv=1,n_ff=512,n_vocab=300,tied=1",
        )
        .unwrap();
        assert!(s.tied && s.tensors().iter().all(|t| t.name != "output.weight"));
        assert_eq!(s.tensors()[3].dims, [256, 64]); // attn_k: one KV head of 64
    }

    #[test]
    fn bad_specs_are_errors() {
        for spec in [
            "llama-2b",
            "n_embd=256,n_layer=2,n_head=4,n_ff=512",
            "n_embd=256,n_layer=2,n_head=3,n_ff=512,n_vocab=1000",
            "n_embd=256,n_layer=2,n_head=4,n_head_kv=3,n_ff=512,n_vocab=1000",
            "llama-1b,n_vocab=100",
            "llama-1b,n_layers=2",
            "llama-1b,n_layer=x",
        ] {
            assert!(SynthShape::parse(spec).is_err(), "{spec}");
        }
    }
}
