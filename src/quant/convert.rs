//! Whole-file conversion: read a GGUF, bring every tensor to its planned type, stream a new GGUF.
//!
//! Invariants: one tensor at a time is held in memory (its output bytes plus one slab of f32
//! rows), so a file of any size converts in bounded memory; the data of a tensor whose type does
//! not change is copied byte for byte; a converted tensor is dequantized to f32 and quantized with
//! ggml's reference quantizers, rows in parallel on the current rayon pool, which is exactly what
//! llama-quantize does without an importance matrix — so the output bytes equal its output. All
//! metadata is kept; `general.file_type` and `general.quantization_version` are (re)set last, as
//! llama-quantize sets them, and split keys are dropped.

use std::path::Path;
use std::time::Instant;

use super::{dequantize_rows, quantize_rows, GgmlType};
use crate::gguf::{GgufFile, GgufWriter, MetaValue, TensorInfo, TensorPlan};
use crate::{Error, Result};

/// ggml's `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// f32 elements converted per slab (32 MiB): bounds memory for huge tensors.
const SLAB_ELEMS: usize = 8 << 20;

/// How to convert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Allow converting tensors that are already quantized (their error compounds).
    pub allow_requantize: bool,
    /// `general.file_type` of the output (a `LLAMA_FTYPE_*` id, see [`super::Mix::file_type`]).
    pub file_type: u32,
}

/// What happened to one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorReport {
    /// 0-based position in the file.
    pub index: usize,
    pub name: String,
    pub dims: Vec<u64>,
    /// Source type.
    pub from: GgmlType,
    /// Output type.
    pub to: GgmlType,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Totals of a conversion.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertSummary {
    pub n_tensors: usize,
    /// Tensor data bytes before and after.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Whole-file sizes before and after.
    pub file_size_in: u64,
    pub file_size_out: u64,
    pub seconds: f64,
}

/// The metadata of a converted file: `meta` without split keys, with `general.quantization_version`
/// and `general.file_type` set (removed and appended, as ggml's `gguf_set_val_u32` does).
pub fn output_metadata(meta: &[(String, MetaValue)], file_type: u32) -> Vec<(String, MetaValue)> {
    const DROP: [&str; 5] = [
        "split.no",
        "split.count",
        "split.tensors.count",
        "general.quantization_version",
        "general.file_type",
    ];
    let mut out: Vec<(String, MetaValue)> = meta
        .iter()
        .filter(|(k, _)| !DROP.contains(&k.as_str()))
        .cloned()
        .collect();
    out.push((
        "general.quantization_version".into(),
        MetaValue::U32(QUANTIZATION_VERSION),
    ));
    out.push(("general.file_type".into(), MetaValue::U32(file_type)));
    out
}

/// Converts one tensor's `data` (type `from`, rows of `n_per_row`) to `to`, slab by slab.
pub fn convert_tensor(
    from: GgmlType,
    data: &[u8],
    to: GgmlType,
    n_per_row: usize,
) -> Result<Vec<u8>> {
    convert_in_slabs(from, data, to, n_per_row, SLAB_ELEMS)
}

fn convert_in_slabs(
    from: GgmlType,
    data: &[u8],
    to: GgmlType,
    n_per_row: usize,
    slab_elems: usize,
) -> Result<Vec<u8>> {
    if from == to {
        return Ok(data.to_vec());
    }
    let bad = |ty: GgmlType| Error::Type {
        ty,
        msg: format!("rows of {n_per_row} elements are not a whole number of blocks"),
    };
    let row_in = from.row_bytes(n_per_row).ok_or_else(|| bad(from))?;
    let row_out = to.row_bytes(n_per_row).ok_or_else(|| bad(to))?;
    if row_in == 0 || data.len() % row_in != 0 {
        return Err(Error::Type {
            ty: from,
            msg: format!(
                "{} bytes is not a whole number of {row_in}-byte rows",
                data.len()
            ),
        });
    }
    let n_rows = data.len() / row_in;
    let rows_per_slab = (slab_elems / n_per_row).max(1);
    let mut out = Vec::with_capacity(n_rows * row_out);
    for slab in data.chunks(rows_per_slab * row_in) {
        let f = dequantize_rows(from, slab, n_per_row)?;
        out.extend_from_slice(&quantize_rows(to, &f, n_per_row)?);
    }
    Ok(out)
}

/// Checks a conversion plan before anything is written.
fn check_plan(input: &GgufFile, types: &[GgmlType], opts: &ConvertOptions) -> Result<()> {
    let tensors = input.tensors();
    if types.len() != tensors.len() {
        return Err(Error::Invalid(format!(
            "{}: {} types planned for {} tensors",
            input.path().display(),
            types.len(),
            tensors.len()
        )));
    }
    let mut requantized = Vec::new();
    for (t, &to) in tensors.iter().zip(types) {
        if matches!(to, GgmlType::Q8_1 | GgmlType::Q8K) {
            return Err(Error::Type {
                ty: to,
                msg: format!("cannot store model weights (tensor '{}')", t.name),
            });
        }
        if to.row_bytes(t.row_len()).is_none() {
            return Err(Error::Shape {
                name: t.name.clone(),
                msg: format!(
                    "rows of {} elements do not fit {to}'s {}-element blocks",
                    t.row_len(),
                    to.block_size()
                ),
            });
        }
        if t.ty != to && !t.ty.is_float() {
            requantized.push(t);
        }
    }
    if let Some(first) = requantized.first() {
        if !opts.allow_requantize {
            return Err(Error::Invalid(format!(
                "{}: tensor '{}' is already quantized ({}); requantizing is disabled, pass \
                 --allow-requantize to do it anyway (quality suffers: errors compound)",
                input.path().display(),
                first.name,
                first.ty
            )));
        }
        log::warn!(
            "{}: requantizing {} already-quantized tensors (e.g. '{}', {}): quality will be worse \
             than quantizing from F16/F32",
            input.path().display(),
            requantized.len(),
            first.name,
            first.ty
        );
    }
    Ok(())
}

/// Converts `input` into `out`, giving tensor `i` the type `types[i]`, calling `on_tensor` after
/// each tensor is written. Runs on the current rayon pool.
pub fn quantize_file(
    input: &GgufFile,
    out: &Path,
    types: &[GgmlType],
    opts: &ConvertOptions,
    mut on_tensor: impl FnMut(&TensorReport),
) -> Result<ConvertSummary> {
    let start = Instant::now();
    check_plan(input, types, opts)?;
    let plan: Vec<TensorPlan> = input
        .tensors()
        .iter()
        .zip(types)
        .map(|(t, &ty)| TensorPlan {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty,
        })
        .collect();
    let meta = output_metadata(input.metadata(), opts.file_type);
    let mut w = GgufWriter::create(out, &meta, plan)?;
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    for (index, (t, &to)) in input.tensors().iter().zip(types).enumerate() {
        let data = input.tensor_data(t);
        let converted = convert_tensor(t.ty, data, to, t.row_len()).map_err(|e| in_tensor(t, e))?;
        w.write_tensor(&t.name, &converted)?;
        bytes_in += t.n_bytes;
        bytes_out += converted.len() as u64;
        on_tensor(&TensorReport {
            index,
            name: t.name.clone(),
            dims: t.dims.clone(),
            from: t.ty,
            to,
            bytes_in: t.n_bytes,
            bytes_out: converted.len() as u64,
        });
    }
    w.finish()?;
    let file_size_out = std::fs::metadata(out).map_err(|e| Error::io(out, e))?.len();
    Ok(ConvertSummary {
        n_tensors: input.tensors().len(),
        bytes_in,
        bytes_out,
        file_size_in: input.file_size(),
        file_size_out,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Puts the tensor's name on a conversion error.
fn in_tensor(t: &TensorInfo, e: Error) -> Error {
    match e {
        Error::Type { ty, msg } => Error::Shape {
            name: t.name.clone(),
            msg: format!("{ty}: {msg}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_in_slabs_equals_dequantize_then_quantize() {
        let n_per_row = 512;
        let src: Vec<f32> = (0..7 * n_per_row)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let f16 = quantize_rows(GgmlType::F16, &src, n_per_row).unwrap();
        let f = dequantize_rows(GgmlType::F16, &f16, n_per_row).unwrap();
        let want = quantize_rows(GgmlType::Q4K, &f, n_per_row).unwrap();
        for slab in [1, 2 * n_per_row, 3 * n_per_row + 5, 1 << 20] {
            let got = convert_in_slabs(GgmlType::F16, &f16, GgmlType::Q4K, n_per_row, slab);
            assert_eq!(got.unwrap(), want, "slab {slab}");
        }
        assert!(convert_tensor(GgmlType::F16, &f16[..10], GgmlType::Q4K, n_per_row).is_err());
        assert_eq!(
            convert_tensor(GgmlType::F16, &f16, GgmlType::F16, n_per_row).unwrap(),
            f16
        );
    }

    #[test]
    fn metadata_keys_are_replaced_and_appended() {
        let meta = vec![
            ("general.file_type".to_string(), MetaValue::U32(3)),
            ("general.name".to_string(), MetaValue::String("x".into())),
            ("split.count".to_string(), MetaValue::U16(2)),
        ];
        let out = output_metadata(&meta, 15);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "general.name",
                "general.quantization_version",
                "general.file_type"
            ]
        );
        assert_eq!(out[2].1, MetaValue::U32(15));
    }
}
