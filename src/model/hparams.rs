//! Hyper-parameters of llama-family models, read from GGUF metadata under the architecture's prefix.

use crate::gguf::GgufFile;
use crate::{Error, Result};

/// How RoPE pairs dimensions, as llama.cpp's `llama_rope_type` does for each architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RopeMode {
    /// Rotate adjacent pairs `(x[2i], x[2i+1])` (llama, mistral: GGUF Q/K weights are permuted for it).
    Normal,
    /// Rotate `(x[i], x[i + n_rot/2])` (qwen2, gpt-neox).
    Neox,
}

/// Architectures whose graph rawrxd runs.
pub const SUPPORTED_ARCHS: &[&str] = &["llama", "qwen2"];

/// The numbers that fix a llama-family model's shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LlamaHParams {
    /// `general.architecture` ("llama", "qwen2").
    pub arch: String,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head dimension of queries and keys.
    pub head_dim: usize,
    pub n_ff: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    pub rms_norm_eps: f32,
    pub rope_freq_base: f32,
    /// Dimensions rotated by RoPE (usually `head_dim`).
    pub n_rot: usize,
    pub rope_mode: RopeMode,
    /// Whether the output projection reuses `token_embd`.
    pub tied_embeddings: bool,
}

impl LlamaHParams {
    /// Reads the hyper-parameters of `f`, checking them against the tensors that must exist.
    pub fn from_gguf(f: &GgufFile) -> Result<LlamaHParams> {
        let arch = f.architecture()?.to_string();
        if !SUPPORTED_ARCHS.contains(&arch.as_str()) {
            return Err(Error::Model(format!(
                "{}: architecture '{arch}' is not supported (supported: {})",
                f.path().display(),
                SUPPORTED_ARCHS.join(", ")
            )));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let n_embd = f.get_u64(&k("embedding_length"))? as usize;
        let n_layer = f.get_u64(&k("block_count"))? as usize;
        let n_ff = f.get_u64(&k("feed_forward_length"))? as usize;
        let n_head = f.get_u64(&k("attention.head_count"))? as usize;
        let n_head_kv = match f.get(&k("attention.head_count_kv")) {
            Some(_) => f.get_u64(&k("attention.head_count_kv"))? as usize,
            None => n_head,
        };
        let n_ctx_train = f.get_u64(&k("context_length"))? as usize;
        let rms_norm_eps = f.get_f32(&k("attention.layer_norm_rms_epsilon"))?;
        let rope_freq_base = match f.get(&k("rope.freq_base")) {
            Some(_) => f.get_f32(&k("rope.freq_base"))?,
            None => 10000.0,
        };
        let bad = |msg: String| Error::Model(format!("{}: {msg}", f.path().display()));
        if n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_ff == 0 {
            return Err(bad("a zero dimension in the hyper-parameters".into()));
        }
        if n_embd % n_head != 0 || n_head % n_head_kv != 0 {
            return Err(bad(format!(
                "n_embd {n_embd}, n_head {n_head}, n_head_kv {n_head_kv} do not divide"
            )));
        }
        let head_dim = match f.get(&k("attention.key_length")) {
            Some(_) => f.get_u64(&k("attention.key_length"))? as usize,
            None => n_embd / n_head,
        };
        let n_rot = match f.get(&k("rope.dimension_count")) {
            Some(_) => f.get_u64(&k("rope.dimension_count"))? as usize,
            None => head_dim,
        };
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(bad(format!(
                "rope.dimension_count {n_rot} with head_dim {head_dim}"
            )));
        }
        let embd = f
            .tensor("token_embd.weight")
            .ok_or_else(|| bad("missing tensor token_embd.weight".into()))?;
        if embd.dims.len() != 2 || embd.dims[0] as usize != n_embd {
            return Err(bad(format!(
                "token_embd.weight has shape {} but n_embd is {n_embd}",
                embd.shape_string()
            )));
        }
        let n_vocab = embd.dims[1] as usize;
        let tied_embeddings = f.tensor("output.weight").is_none();
        let rope_mode = if arch == "qwen2" {
            RopeMode::Neox
        } else {
            RopeMode::Normal
        };
        Ok(LlamaHParams {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_ctx_train,
            rms_norm_eps,
            rope_freq_base,
            n_rot,
            rope_mode,
            tied_embeddings,
        })
    }

    /// Width of the K and V projections (`n_head_kv × head_dim`).
    pub fn n_embd_kv(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Width of the Q projection (`n_head × head_dim`).
    pub fn n_embd_q(&self) -> usize {
        self.n_head * self.head_dim
    }
}
