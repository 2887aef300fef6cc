//! A llama-family model's weights on the device, uploaded once as raw GGUF blocks.
//!
//! Fusion decided at upload time: q|k|v stacked into one matrix when the three share a type (else
//! q|k when those two do: Q4_K_M's layers with a Q6_K `attn_v`), and gate|up stacked when they
//! share a type (the decode step then runs one GLU matvec). Norm weights and biases become f32
//! vectors.

use super::buffer::GpuBuffer;
use super::context::Gpu;
use super::kernels::WeightMatrix;
use super::memory::MemoryClass;
use crate::model::{LlamaHParams, LlamaWeights, TensorRef};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// The attention input projections.
pub enum Qkv {
    /// One matrix of n_q + 2 n_kv rows.
    Fused(WeightMatrix),
    /// q|k in one matrix of n_q + n_kv rows, v apart (v's type differs from theirs).
    QkFused { qk: WeightMatrix, v: WeightMatrix },
    /// Three matrices (q's and k's types differ).
    Split {
        q: WeightMatrix,
        k: WeightMatrix,
        v: WeightMatrix,
    },
}

impl Qkv {
    /// Its matrices in the order the forward pass multiplies by them.
    pub fn matrices(&self) -> Vec<&WeightMatrix> {
        match self {
            Qkv::Fused(w) => vec![w],
            Qkv::QkFused { qk, v } => vec![qk, v],
            Qkv::Split { q, k, v } => vec![q, k, v],
        }
    }
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

impl GateUp {
    /// Its matrices in the order the forward pass multiplies by them.
    pub fn matrices(&self) -> Vec<&WeightMatrix> {
        match self {
            GateUp::Fused(w) => vec![w],
            GateUp::Split { gate, up } => vec![gate, up],
        }
    }
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
    /// Bytes of weights on the device (the tile-ordered copies not counted).
    pub bytes: u64,
    /// Whether the matrices the batched tile products read also keep a copy in tile order
    /// (`WeightPiece::tile_order`); matrices swapped in later get one too.
    pub tile_order: bool,
}

impl DeviceModel {
    /// Every matrix the forward pass multiplies activations by (the output projection, or the
    /// tied embeddings, included).
    pub fn products(&self) -> Vec<&WeightMatrix> {
        let mut out = Vec::new();
        for l in &self.layers {
            out.extend(l.qkv.matrices());
            out.push(&l.wo);
            out.extend(l.gate_up.matrices());
            out.push(&l.down);
        }
        out.push(self.output.as_ref().unwrap_or(&self.token_embd));
        out
    }
}

/// Whole rows of one weight tensor on the host: what the device matrices are built from, at load
/// (from the file) and when a tensor is swapped (parts read back from the device).
#[derive(Clone, Copy)]
struct Rows<'a> {
    name: &'a str,
    ty: GgmlType,
    ncols: usize,
    bytes: &'a [u8],
}

impl<'a> Rows<'a> {
    fn of(t: &TensorRef<'a>) -> Rows<'a> {
        Rows {
            name: &t.info.name,
            ty: t.info.ty,
            ncols: t.info.row_len(),
            bytes: t.data,
        }
    }
}

/// One matrix of `parts` (all of the first part's type) stacked by rows; errors name the first.
/// `tile_order`: also a copy in tile order (`WeightMatrix::upload_with_tile_order`).
fn stack(gpu: &Gpu, parts: &[Rows<'_>], tile_order: bool) -> Result<WeightMatrix> {
    let slices: Vec<&[u8]> = parts.iter().map(|p| p.bytes).collect();
    WeightMatrix::upload_with_tile_order(gpu, parts[0].ty, parts[0].ncols, &slices, tile_order)
        .map_err(|e| Error::Shape {
            name: parts[0].name.to_string(),
            msg: format!("uploading to the device: {e}"),
        })
}

fn matrix(gpu: &Gpu, t: &TensorRef<'_>, tile_order: bool) -> Result<WeightMatrix> {
    stack(gpu, &[Rows::of(t)], tile_order)
}

/// q|k|v fused into one matrix when the three share a type, else q|k when those two do (and v
/// apart), else three matrices.
fn build_qkv(gpu: &Gpu, [q, k, v]: [Rows<'_>; 3], tile_order: bool) -> Result<Qkv> {
    Ok(if q.ty == k.ty && k.ty == v.ty {
        Qkv::Fused(stack(gpu, &[q, k, v], tile_order)?)
    } else if q.ty == k.ty {
        Qkv::QkFused {
            qk: stack(gpu, &[q, k], tile_order)?,
            v: stack(gpu, &[v], tile_order)?,
        }
    } else {
        Qkv::Split {
            q: stack(gpu, &[q], tile_order)?,
            k: stack(gpu, &[k], tile_order)?,
            v: stack(gpu, &[v], tile_order)?,
        }
    })
}

/// gate|up fused when they share a type and fit one binding (the GLU matvec needs a single
/// piece), else two matrices.
fn build_gate_up(gpu: &Gpu, [gate, up]: [Rows<'_>; 2], tile_order: bool) -> Result<GateUp> {
    if gate.ty == up.ty {
        let m = stack(gpu, &[gate, up], tile_order)?;
        if m.pieces.len() == 1 {
            return Ok(GateUp::Fused(m));
        }
    }
    Ok(GateUp::Split {
        gate: stack(gpu, &[gate], tile_order)?,
        up: stack(gpu, &[up], tile_order)?,
    })
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

/// One part of a fused matrix, read back from the device.
struct Part {
    ty: GgmlType,
    ncols: usize,
    nrows: usize,
    bytes: Vec<u8>,
}

impl Part {
    /// Rows `start .. start + n` of `m`.
    fn of(gpu: &Gpu, m: &WeightMatrix, start: usize, n: usize) -> super::error::VkResult<Part> {
        Ok(Part {
            ty: m.ty,
            ncols: m.ncols,
            nrows: n,
            bytes: m.download_rows(gpu, start, n)?,
        })
    }
}

/// `parts` with part `i` replaced by `new`; every part carries `new`'s name, so errors of the
/// rebuilt matrix name the swapped tensor.
fn swapped<'a>(parts: &'a [Part], i: usize, new: Rows<'a>) -> Vec<Rows<'a>> {
    parts
        .iter()
        .enumerate()
        .map(|(j, p)| {
            if j == i {
                new
            } else {
                Rows {
                    name: new.name,
                    ty: p.ty,
                    ncols: p.ncols,
                    bytes: &p.bytes,
                }
            }
        })
        .collect()
}

/// `bytes` must be `nrows` rows of `ncols` elements of `ty`.
fn check_shape(
    ncols: usize,
    nrows: usize,
    ty: GgmlType,
    bytes: &[u8],
) -> std::result::Result<(), String> {
    let rb = ty
        .row_bytes(ncols)
        .ok_or_else(|| format!("{ncols} columns is not whole {ty} blocks"))?;
    if bytes.len() != rb * nrows {
        return Err(format!(
            "{} bytes of {ty}, but {nrows} rows of {ncols} columns need {}",
            bytes.len(),
            rb * nrows
        ));
    }
    Ok(())
}

/// (layer, role) of `blk.N.ROLE.weight`.
fn parse_layer_name(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (n, role) = rest.split_once('.')?;
    Some((n.parse().ok()?, role))
}

fn qkv_parts(gpu: &Gpu, qkv: &Qkv, nq: usize) -> super::error::VkResult<Vec<Part>> {
    match qkv {
        Qkv::Split { q, k, v } => Ok(vec![
            Part::of(gpu, q, 0, q.nrows)?,
            Part::of(gpu, k, 0, k.nrows)?,
            Part::of(gpu, v, 0, v.nrows)?,
        ]),
        // q's n_embd_q rows, then k's.
        Qkv::QkFused { qk, v } => Ok(vec![
            Part::of(gpu, qk, 0, nq)?,
            Part::of(gpu, qk, nq, qk.nrows - nq)?,
            Part::of(gpu, v, 0, v.nrows)?,
        ]),
        // q's n_embd_q rows, then k and v sharing the rest.
        Qkv::Fused(m) => {
            let nkv = (m.nrows - nq) / 2;
            Ok(vec![
                Part::of(gpu, m, 0, nq)?,
                Part::of(gpu, m, nq, nkv)?,
                Part::of(gpu, m, nq + nkv, nkv)?,
            ])
        }
    }
}

fn gate_up_parts(gpu: &Gpu, gu: &GateUp) -> super::error::VkResult<Vec<Part>> {
    match gu {
        GateUp::Split { gate, up } => Ok(vec![
            Part::of(gpu, gate, 0, gate.nrows)?,
            Part::of(gpu, up, 0, up.nrows)?,
        ]),
        GateUp::Fused(m) => {
            let n = m.nrows / 2;
            Ok(vec![Part::of(gpu, m, 0, n)?, Part::of(gpu, m, n, n)?])
        }
    }
}

impl DeviceModel {
    /// Uploads every weight of `w`; with `tile_order`, the matrices of the layers and the
    /// (untied) output projection also in tile order, for the batched tile products.
    pub fn upload(
        gpu: &Gpu,
        hp: &LlamaHParams,
        w: &LlamaWeights<'_>,
        tile_order: bool,
    ) -> Result<Self> {
        let t = tile_order;
        let token_embd = matrix(gpu, &w.token_embd, false)?;
        let output_norm = vector(gpu, &f32_values(&w.output_norm)?)?;
        let output = if hp.tied_embeddings || std::ptr::eq(w.output.info, w.token_embd.info) {
            None
        } else {
            Some(matrix(gpu, &w.output, t)?)
        };
        let mut layers = Vec::with_capacity(w.layers.len());
        for l in &w.layers {
            let qkv = build_qkv(gpu, [Rows::of(&l.wq), Rows::of(&l.wk), Rows::of(&l.wv)], t)?;
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
            let gate_up = build_gate_up(gpu, [Rows::of(&l.ffn_gate), Rows::of(&l.ffn_up)], t)?;
            layers.push(DeviceLayer {
                attn_norm: vector(gpu, &f32_values(&l.attn_norm)?)?,
                qkv,
                qkv_bias,
                wo: matrix(gpu, &l.wo, t)?,
                ffn_norm: vector(gpu, &f32_values(&l.ffn_norm)?)?,
                gate_up,
                down: matrix(gpu, &l.ffn_down, t)?,
            });
        }
        let mut m = DeviceModel {
            token_embd,
            output_norm,
            output,
            layers,
            bytes: 0,
            tile_order,
        };
        m.bytes = m.weight_bytes();
        Ok(m)
    }

    /// Replaces the matrix `name` (`token_embd.weight`, `output.weight` or
    /// `blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight`) with `bytes` of
    /// type `ty`, same shape. Fused q|k|v, q|k and gate|up matrices are rebuilt from the other
    /// parts (read back from the device) and fused as far as the types then agree, as at upload.
    /// The caller must re-record anything that bound the old buffers.
    pub fn replace(
        &mut self,
        gpu: &Gpu,
        hp: &LlamaHParams,
        name: &str,
        ty: GgmlType,
        bytes: &[u8],
    ) -> Result<()> {
        let bad = |msg: String| Error::Shape {
            name: name.to_string(),
            msg,
        };
        let new = |ncols| Rows {
            name,
            ty,
            ncols,
            bytes,
        };
        // Every matrix but the embeddings (rows looked up, never multiplied in batches) in
        // tile order again where the model keeps it.
        let t = self.tile_order;
        let upload_like = |old: &WeightMatrix, tile_order: bool| -> Result<WeightMatrix> {
            check_shape(old.ncols, old.nrows, ty, bytes).map_err(bad)?;
            stack(gpu, &[new(old.ncols)], tile_order)
        };
        match name {
            "token_embd.weight" => self.token_embd = upload_like(&self.token_embd, false)?,
            "output.weight" => match &self.output {
                Some(o) => self.output = Some(upload_like(o, t)?),
                None => self.token_embd = upload_like(&self.token_embd, false)?,
            },
            _ => {
                let (layer, role) = parse_layer_name(name).ok_or_else(|| {
                    bad(
                        "not a matrix of the loaded model (norms and biases keep their type)"
                            .into(),
                    )
                })?;
                let n_layers = self.layers.len();
                let l = self
                    .layers
                    .get_mut(layer)
                    .ok_or_else(|| bad(format!("layer {layer} of a {n_layers}-layer model")))?;
                match role {
                    "attn_output" => l.wo = upload_like(&l.wo, t)?,
                    "ffn_down" => l.down = upload_like(&l.down, t)?,
                    "attn_q" | "attn_k" | "attn_v" => {
                        let parts = qkv_parts(gpu, &l.qkv, hp.n_embd_q())
                            .map_err(|e| bad(e.to_string()))?;
                        let i = ["attn_q", "attn_k", "attn_v"]
                            .iter()
                            .position(|r| *r == role)
                            .unwrap_or(0);
                        check_shape(parts[i].ncols, parts[i].nrows, ty, bytes).map_err(bad)?;
                        let r = swapped(&parts, i, new(parts[i].ncols));
                        l.qkv = build_qkv(gpu, [r[0], r[1], r[2]], t)?;
                    }
                    "ffn_gate" | "ffn_up" => {
                        let parts =
                            gate_up_parts(gpu, &l.gate_up).map_err(|e| bad(e.to_string()))?;
                        let i = usize::from(role == "ffn_up");
                        check_shape(parts[i].ncols, parts[i].nrows, ty, bytes).map_err(bad)?;
                        let r = swapped(&parts, i, new(parts[i].ncols));
                        l.gate_up = build_gate_up(gpu, [r[0], r[1]], t)?;
                    }
                    _ => {
                        return Err(bad(format!(
                            "'{role}' is not a matrix of the loaded model (norms and biases keep \
                             their type)"
                        )))
                    }
                }
            }
        }
        self.bytes = self.weight_bytes();
        Ok(())
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
            b += (l.qkv.matrices().into_iter())
                .chain(l.gate_up.matrices())
                .map(WeightMatrix::bytes)
                .sum::<u64>();
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
