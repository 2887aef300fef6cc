//! A llama-family model's weights on the device, uploaded once as raw GGUF blocks.
//!
//! Fusion decided at upload time: q|k|v stacked into one matrix when the three share a type, and
//! gate|up stacked when they share a type (the decode step then runs one GLU matvec). Norm weights
//! and biases become f32 vectors.

use super::buffer::GpuBuffer;
use super::context::Gpu;
use super::kernels::WeightMatrix;
use super::memory::MemoryClass;
use crate::model::{LlamaHParams, LlamaWeights, TensorRef};
use crate::{Error, Result};

/// The attention input projections.
pub enum Qkv {
    /// One matrix of n_q + 2 n_kv rows.
    Fused(WeightMatrix),
    /// Three matrices (types differ).
    Split {
        q: WeightMatrix,
        k: WeightMatrix,
        v: WeightMatrix,
    },
}

/// The feed-forward input projections.
pub enum GateUp {
    /// One matrix of 2 n_ff rows: gate rows, then up rows.
    Fused(WeightMatrix),
    /// Two matrices (types differ).
    Split {
        gate: WeightMatrix,
        up: WeightMatrix,
    },
}

/// One transformer block on the device.
pub struct DeviceLayer {
    pub attn_norm: GpuBuffer,
    pub qkv: Qkv,
    /// Q, K, V biases as one f32 vector (q | k | v), when the model has them.
    pub qkv_bias: Option<GpuBuffer>,
    pub wo: WeightMatrix,
    pub ffn_norm: GpuBuffer,
    pub gate_up: GateUp,
    pub down: WeightMatrix,
}

/// Every weight on the device.
pub struct DeviceModel {
    pub token_embd: WeightMatrix,
    pub output_norm: GpuBuffer,
    /// `None` when embeddings are tied (`token_embd` is the output projection).
    pub output: Option<WeightMatrix>,
    pub layers: Vec<DeviceLayer>,
    /// Bytes of weights on the device.
    pub bytes: u64,
}

fn matrix(gpu: &Gpu, t: &TensorRef<'_>) -> Result<WeightMatrix> {
    WeightMatrix::upload(gpu, t.info.ty, t.info.row_len(), &[t.data]).map_err(|e| tensor_err(t, e))
}

fn tensor_err(t: &TensorRef<'_>, e: super::VulkanError) -> Error {
    Error::Shape {
        name: t.info.name.clone(),
        msg: format!("uploading to the device: {e}"),
    }
}

/// The tensor's values as f32 (norm weights, biases).
fn f32_values(t: &TensorRef<'_>) -> Result<Vec<f32>> {
    let n = t.info.n_elements() as usize;
    let mut out = vec![0f32; n];
    crate::quant::dequantize(t.info.ty, t.data, &mut out)?;
    Ok(out)
}

fn vector(gpu: &Gpu, values: &[f32]) -> Result<GpuBuffer> {
    let b = gpu.buffer((values.len() * 4) as u64, MemoryClass::Device)?;
    gpu.upload(&b, 0, bytemuck::cast_slice(values))?;
    Ok(b)
}

impl DeviceModel {
    /// Uploads every weight of `w`.
    pub fn upload(gpu: &Gpu, hp: &LlamaHParams, w: &LlamaWeights<'_>) -> Result<Self> {
        let token_embd = matrix(gpu, &w.token_embd)?;
        let output_norm = vector(gpu, &f32_values(&w.output_norm)?)?;
        let output = if hp.tied_embeddings || std::ptr::eq(w.output.info, w.token_embd.info) {
            None
        } else {
            Some(matrix(gpu, &w.output)?)
        };
        let mut layers = Vec::with_capacity(w.layers.len());
        for l in &w.layers {
            let qkv = if l.wq.info.ty == l.wk.info.ty && l.wk.info.ty == l.wv.info.ty {
                Qkv::Fused(
                    WeightMatrix::upload(
                        gpu,
                        l.wq.info.ty,
                        l.wq.info.row_len(),
                        &[l.wq.data, l.wk.data, l.wv.data],
                    )
                    .map_err(|e| tensor_err(&l.wq, e))?,
                )
            } else {
                Qkv::Split {
                    q: matrix(gpu, &l.wq)?,
                    k: matrix(gpu, &l.wk)?,
                    v: matrix(gpu, &l.wv)?,
                }
            };
            let qkv_bias = match (&l.bq, &l.bk, &l.bv) {
                (None, None, None) => None,
                (Some(bq), Some(bk), Some(bv)) => {
                    let mut v = f32_values(bq)?;
                    v.extend(f32_values(bk)?);
                    v.extend(f32_values(bv)?);
                    Some(vector(gpu, &v)?)
                }
                _ => {
                    return Err(Error::Model(
                        "q/k/v biases must all be present or all absent".into(),
                    ))
                }
            };
            let gate_up = if l.ffn_gate.info.ty == l.ffn_up.info.ty {
                let m = WeightMatrix::upload(
                    gpu,
                    l.ffn_gate.info.ty,
                    l.ffn_gate.info.row_len(),
                    &[l.ffn_gate.data, l.ffn_up.data],
                )
                .map_err(|e| tensor_err(&l.ffn_gate, e))?;
                if m.pieces.len() == 1 {
                    GateUp::Fused(m)
                } else {
                    drop(m);
                    GateUp::Split {
                        gate: matrix(gpu, &l.ffn_gate)?,
                        up: matrix(gpu, &l.ffn_up)?,
                    }
                }
            } else {
                GateUp::Split {
                    gate: matrix(gpu, &l.ffn_gate)?,
                    up: matrix(gpu, &l.ffn_up)?,
                }
            };
            layers.push(DeviceLayer {
                attn_norm: vector(gpu, &f32_values(&l.attn_norm)?)?,
                qkv,
                qkv_bias,
                wo: matrix(gpu, &l.wo)?,
                ffn_norm: vector(gpu, &f32_values(&l.ffn_norm)?)?,
                gate_up,
                down: matrix(gpu, &l.ffn_down)?,
            });
        }
        let mut m = DeviceModel {
            token_embd,
            output_norm,
            output,
            layers,
            bytes: 0,
        };
        m.bytes = m.weight_bytes();
        Ok(m)
    }

    /// The output projection.
    pub fn output(&self) -> &WeightMatrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    fn weight_bytes(&self) -> u64 {
        let mut b = self.token_embd.bytes()
            + self.output_norm.size()
            + self.output.as_ref().map_or(0, |o| o.bytes());
        for l in &self.layers {
            b += l.attn_norm.size() + l.ffn_norm.size() + l.wo.bytes() + l.down.bytes();
            b += l.qkv_bias.as_ref().map_or(0, |x| x.size());
            b += match &l.qkv {
                Qkv::Fused(m) => m.bytes(),
                Qkv::Split { q, k, v } => q.bytes() + k.bytes() + v.bytes(),
            };
            b += match &l.gate_up {
                GateUp::Fused(m) => m.bytes(),
                GateUp::Split { gate, up } => gate.bytes() + up.bytes(),
            };
        }
        b
    }

    /// Bytes one decode step reads: every matrix once (one embedding row), norms.
    pub fn decode_bytes(&self) -> u64 {
        self.bytes - self.token_embd.bytes()
            + self.token_embd.row_bytes as u64
            + if self.output.is_none() {
                self.token_embd.bytes()
            } else {
                0
            }
    }
}
