//! The llama-family weight map: every tensor the forward pass reads, found by name and shape-checked.
//!
//! Shapes are in ggml order (`dims[0]` = input width of a projection, `dims[1]` = output width), so a
//! projection `W` of shape `[n_in, n_out]` is `n_out` rows of `n_in` elements and `y = W x` is one dot
//! product per row.

use super::LlamaHParams;
use crate::gguf::{GgufFile, TensorInfo};
use crate::{Error, Result};

/// A tensor's description and its bytes in the mapped file.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

/// The weights of one transformer block.
#[derive(Clone, Debug)]
pub struct LayerWeights<'a> {
    pub attn_norm: TensorRef<'a>,
    pub wq: TensorRef<'a>,
    pub wk: TensorRef<'a>,
    pub wv: TensorRef<'a>,
    pub wo: TensorRef<'a>,
    /// Q/K/V biases (qwen2).
    pub bq: Option<TensorRef<'a>>,
    pub bk: Option<TensorRef<'a>>,
    pub bv: Option<TensorRef<'a>>,
    pub ffn_norm: TensorRef<'a>,
    pub ffn_gate: TensorRef<'a>,
    pub ffn_up: TensorRef<'a>,
    pub ffn_down: TensorRef<'a>,
}

/// Every weight of a llama-family model.
#[derive(Clone, Debug)]
pub struct LlamaWeights<'a> {
    pub token_embd: TensorRef<'a>,
    pub output_norm: TensorRef<'a>,
    /// The output projection; `token_embd` itself when embeddings are tied.
    pub output: TensorRef<'a>,
    pub layers: Vec<LayerWeights<'a>>,
}

impl<'a> LlamaWeights<'a> {
    /// Finds and shape-checks every tensor of `f` that `hp` implies.
    pub fn from_gguf(f: &'a GgufFile, hp: &LlamaHParams) -> Result<LlamaWeights<'a>> {
        let get = |name: &str, dims: &[usize]| -> Result<TensorRef<'a>> {
            let info = f.tensor(name).ok_or_else(|| {
                Error::Model(format!("{}: missing tensor '{name}'", f.path().display()))
            })?;
            let want: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
            if info.dims != want {
                return Err(Error::Shape {
                    name: name.to_string(),
                    msg: format!(
                        "shape {} in {}, expected {want:?} from the hyper-parameters",
                        info.shape_string(),
                        f.path().display()
                    ),
                });
            }
            Ok(TensorRef {
                info,
                data: f.tensor_data(info),
            })
        };
        let opt = |name: &str, dims: &[usize]| -> Result<Option<TensorRef<'a>>> {
            match f.tensor(name) {
                Some(_) => get(name, dims).map(Some),
                None => Ok(None),
            }
        };
        let (e, q, kv, ff) = (hp.n_embd, hp.n_embd_q(), hp.n_embd_kv(), hp.n_ff);
        let token_embd = get("token_embd.weight", &[e, hp.n_vocab])?;
        let output_norm = get("output_norm.weight", &[e])?;
        let output = opt("output.weight", &[e, hp.n_vocab])?.unwrap_or(token_embd);
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}");
            layers.push(LayerWeights {
                attn_norm: get(&n("attn_norm.weight"), &[e])?,
                wq: get(&n("attn_q.weight"), &[e, q])?,
                wk: get(&n("attn_k.weight"), &[e, kv])?,
                wv: get(&n("attn_v.weight"), &[e, kv])?,
                wo: get(&n("attn_output.weight"), &[q, e])?,
                bq: opt(&n("attn_q.bias"), &[q])?,
                bk: opt(&n("attn_k.bias"), &[kv])?,
                bv: opt(&n("attn_v.bias"), &[kv])?,
                ffn_norm: get(&n("ffn_norm.weight"), &[e])?,
                ffn_gate: get(&n("ffn_gate.weight"), &[e, ff])?,
                ffn_up: get(&n("ffn_up.weight"), &[e, ff])?,
                ffn_down: get(&n("ffn_down.weight"), &[ff, e])?,
            });
        }
        Ok(LlamaWeights {
            token_embd,
            output_norm,
            output,
            layers,
        })
    }

    /// Bytes one decode step must read: every weight once (the embedding table only one row).
    pub fn decode_bytes(&self) -> u64 {
        let layer: u64 = self
            .layers
            .iter()
            .map(|l| {
                [
                    l.attn_norm,
                    l.wq,
                    l.wk,
                    l.wv,
                    l.wo,
                    l.ffn_norm,
                    l.ffn_gate,
                    l.ffn_up,
                    l.ffn_down,
                ]
                .iter()
                .map(|t| t.info.n_bytes)
                .sum::<u64>()
                    + [l.bq, l.bk, l.bv]
                        .iter()
                        .flatten()
                        .map(|t| t.info.n_bytes)
                        .sum::<u64>()
            })
            .sum();
        let embd_row = self.token_embd.info.n_bytes / self.token_embd.info.n_rows() as u64;
        layer + self.output_norm.info.n_bytes + self.output.info.n_bytes + embd_row
    }
}
