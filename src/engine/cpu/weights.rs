//! The CPU engine's view of the weights: matrices stay quantized in the file image and are
//! addressed by byte range; small vectors (norms, biases, RoPE factors) are dequantized to f32 at
//! load.
//!
//! Invariants: a [`Mat`]'s byte range lies inside the file image it was resolved from and holds
//! exactly `n_out` rows of `ty.row_bytes(n_in)` bytes (checked at load). A matrix replaced after
//! load ([`Mat::replace`], a hybrid scheme's hot swap) reads from its own overlay bytes instead,
//! which hold the same rows in the new type (checked when replaced).

use std::sync::Arc;

use crate::gguf::GgufFile;
use crate::model::{LlamaHParams, LlamaWeights, TensorRef};
use crate::quant::{self, GgmlType};
use crate::{Error, Result};

/// A projection matrix `[n_out rows × n_in]` stored in the mapped file.
#[derive(Clone, Debug)]
pub struct Mat {
    pub name: String,
    pub ty: GgmlType,
    pub n_in: usize,
    pub n_out: usize,
    start: usize,
    len: usize,
    /// Replacement data (type `ty`), consulted before the file image.
    overlay: Option<Arc<[u8]>>,
}

impl Mat {
    fn resolve(f: &GgufFile, t: TensorRef<'_>) -> Result<Mat> {
        let (n_in, n_out) = (t.info.row_len(), t.info.n_rows());
        let row = t.info.ty.row_bytes(n_in).ok_or_else(|| Error::Shape {
            name: t.info.name.clone(),
            msg: format!("rows of {n_in} are not whole {} blocks", t.info.ty),
        })?;
        if row * n_out != t.data.len() {
            return Err(Error::Shape {
                name: t.info.name.clone(),
                msg: format!("{} bytes for {n_out} rows of {row}", t.data.len()),
            });
        }
        Ok(Mat {
            name: t.info.name.clone(),
            ty: t.info.ty,
            n_in,
            n_out,
            start: (f.data_offset() + t.info.offset) as usize,
            len: t.data.len(),
            overlay: None,
        })
    }

    /// This matrix's bytes: its overlay if replaced, else its range of `image` (the whole file it
    /// was resolved from).
    pub fn data<'a>(&'a self, image: &'a [u8]) -> &'a [u8] {
        match &self.overlay {
            Some(b) => b,
            None => &image[self.start..self.start + self.len],
        }
    }

    /// Replaces the matrix's data with `bytes` of type `ty` (same rows and columns).
    pub fn replace(&mut self, ty: GgmlType, bytes: Arc<[u8]>) -> Result<()> {
        let row = ty.row_bytes(self.n_in).ok_or_else(|| Error::Shape {
            name: self.name.clone(),
            msg: format!("rows of {} are not whole {ty} blocks", self.n_in),
        })?;
        if row * self.n_out != bytes.len() {
            return Err(Error::Shape {
                name: self.name.clone(),
                msg: format!(
                    "{} bytes of {ty} for {} rows of {row}",
                    bytes.len(),
                    self.n_out
                ),
            });
        }
        self.ty = ty;
        self.len = bytes.len();
        self.overlay = Some(bytes);
        Ok(())
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.len / self.n_out
    }
}

/// Dequantizes a small tensor (a norm or bias vector) to f32.
fn vector(t: TensorRef<'_>) -> Result<Vec<f32>> {
    let mut v = vec![0f32; t.info.n_elements() as usize];
    quant::dequantize(t.info.ty, t.data, &mut v).map_err(|e| Error::Shape {
        name: t.info.name.clone(),
        msg: e.to_string(),
    })?;
    Ok(v)
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Mat,
    pub wk: Mat,
    pub wv: Mat,
    pub wo: Mat,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn_gate: Mat,
    pub ffn_up: Mat,
    pub ffn_down: Mat,
}

impl Weights {
    /// Every matrix, mutably (a tied output shares `token_embd`'s name and appears twice).
    pub fn mats_mut(&mut self) -> impl Iterator<Item = &mut Mat> {
        let layers = self.layers.iter_mut().flat_map(|l| {
            [
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.ffn_gate,
                &mut l.ffn_up,
                &mut l.ffn_down,
            ]
        });
        [&mut self.token_embd, &mut self.output]
            .into_iter()
            .chain(layers)
    }
}

/// Every weight the forward pass reads.
#[derive(Clone, Debug)]
pub struct Weights {
    pub token_embd: Mat,
    pub output_norm: Vec<f32>,
    pub output: Mat,
    pub layers: Vec<Layer>,
}

impl Weights {
    /// Resolves the weights of `f` for `hp`.
    pub fn resolve(f: &GgufFile, hp: &LlamaHParams) -> Result<Weights> {
        let w = LlamaWeights::from_gguf(f, hp)?;
        let m = |t| Mat::resolve(f, t);
        let ov = |t: Option<TensorRef<'_>>| t.map(vector).transpose();
        let layers = w
            .layers
            .iter()
            .map(|l| {
                Ok(Layer {
                    attn_norm: vector(l.attn_norm)?,
                    wq: m(l.wq)?,
                    wk: m(l.wk)?,
                    wv: m(l.wv)?,
                    wo: m(l.wo)?,
                    bq: ov(l.bq)?,
                    bk: ov(l.bk)?,
                    bv: ov(l.bv)?,
                    ffn_norm: vector(l.ffn_norm)?,
                    ffn_gate: m(l.ffn_gate)?,
                    ffn_up: m(l.ffn_up)?,
                    ffn_down: m(l.ffn_down)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Weights {
            token_embd: m(w.token_embd)?,
            output_norm: vector(w.output_norm)?,
            output: m(w.output)?,
            layers,
        })
    }
}
