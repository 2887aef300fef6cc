//! Synthetic llama models: a llama.cpp-loadable GGUF of any shape with seeded random weights,
//! quantized on the fly to a mix or scheme and streamed to disk tensor by tensor.
//!
//! Invariants: the file holds exactly the tensors [`SynthShape::tensors`] lists, in that order,
//! with the types the caller planned (normally [`crate::quant::mix::mix_types`] of a mix, so the
//! file has the size llama-quantize would give a real model of that shape); metadata are what
//! llama.cpp's llama loader needs plus `general.quantization_version` and `general.file_type`
//! last, where llama-quantize puts them. Only one tensor's output bytes (plus one task of f32 rows
//! per thread) are in memory at a time.

mod shape;
mod vocab;
mod weights;

use std::path::Path;
use std::time::Instant;

pub use shape::{SynthShape, MIN_VOCAB, NAMED_SHAPES};
pub use vocab::{builtin_vocab, donor_vocab};
pub use weights::{generate, synthesize_tensor, Fill, WEIGHT_STD};

use crate::gguf::{GgufWriter, MetaValue, TensorPlan};
use crate::quant::convert::{TensorReport, QUANTIZATION_VERSION};
use crate::quant::mix::n_dims;
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Totals of a synthesis.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSummary {
    pub n_tensors: usize,
    pub n_params: u64,
    /// Tensor data bytes.
    pub bytes: u64,
    pub file_size: u64,
    pub seconds: f64,
}

/// The metadata of a synthetic model: architecture and hyper-parameters, the tokenizer keys in
/// `vocab`, then the quantization version and `file_type`.
pub fn synth_metadata(
    shape: &SynthShape,
    seed: u64,
    file_type: u32,
    vocab: Vec<(String, MetaValue)>,
) -> Vec<(String, MetaValue)> {
    let s = |v: &str| MetaValue::String(v.to_string());
    let u = |v: usize| MetaValue::U32(v as u32);
    let mut m = vec![
        ("general.architecture".to_string(), s("llama")),
        ("general.type".into(), s("model")),
        (
            "general.name".into(),
            s(&format!("rawrxd synthetic {} seed {seed}", shape.label)),
        ),
        ("llama.block_count".into(), u(shape.n_layer)),
        ("llama.context_length".into(), u(shape.n_ctx)),
        ("llama.embedding_length".into(), u(shape.n_embd)),
        ("llama.feed_forward_length".into(), u(shape.n_ff)),
        ("llama.attention.head_count".into(), u(shape.n_head)),
        ("llama.attention.head_count_kv".into(), u(shape.n_head_kv)),
        (
            "llama.rope.freq_base".into(),
            MetaValue::F32(shape.rope_freq_base),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            MetaValue::F32(shape.rms_norm_eps),
        ),
        ("llama.vocab_size".into(), u(shape.n_vocab)),
        ("llama.rope.dimension_count".into(), u(shape.head_dim())),
    ];
    m.extend(vocab);
    m.push((
        "general.quantization_version".into(),
        MetaValue::U32(QUANTIZATION_VERSION),
    ));
    m.push(("general.file_type".into(), MetaValue::U32(file_type)));
    m
}

/// Writes a synthetic model of `shape` to `out`, tensor `i` of [`SynthShape::tensors`] in type
/// `types[i]`, with tokenizer metadata `vocab` (from [`builtin_vocab`] or [`donor_vocab`]).
/// Calls `on_tensor` after each tensor. Runs on the current rayon pool.
pub fn write_synthetic(
    out: &Path,
    shape: &SynthShape,
    types: &[GgmlType],
    file_type: u32,
    vocab: Vec<(String, MetaValue)>,
    seed: u64,
    mut on_tensor: impl FnMut(&TensorReport),
) -> Result<SynthSummary> {
    let start = Instant::now();
    let tensors = shape.tensors();
    if types.len() != tensors.len() {
        return Err(Error::Invalid(format!(
            "{} types planned for the {} tensors of shape {}",
            types.len(),
            tensors.len(),
            shape.label
        )));
    }
    let plan: Vec<TensorPlan> = tensors
        .iter()
        .zip(types)
        .map(|(t, &ty)| TensorPlan {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty,
        })
        .collect();
    let meta = synth_metadata(shape, seed, file_type, vocab);
    let mut w = GgufWriter::create(out, &meta, plan)?;
    let mut bytes = 0u64;
    for (index, (t, &ty)) in tensors.iter().zip(types).enumerate() {
        let fill = Fill::for_tensor(&t.name, n_dims(&t.dims));
        let data = synthesize_tensor(seed, &t.name, fill, t.row_len(), t.n_rows(), ty)?;
        w.write_tensor(&t.name, &data)?;
        bytes += data.len() as u64;
        on_tensor(&TensorReport {
            index,
            name: t.name.clone(),
            dims: t.dims.clone(),
            from: GgmlType::F32,
            to: ty,
            bytes_in: t.n_bytes,
            bytes_out: data.len() as u64,
        });
    }
    w.finish()?;
    let file_size = std::fs::metadata(out).map_err(|e| Error::io(out, e))?.len();
    Ok(SynthSummary {
        n_tensors: tensors.len(),
        n_params: shape.n_params(),
        bytes,
        file_size,
        seconds: start.elapsed().as_secs_f64(),
    })
}
