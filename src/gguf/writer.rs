//! The GGUF writer: the header is written up front from a plan, tensor data is streamed after it.
//!
//! Invariant: tensors are written in plan order, each exactly `row_bytes × rows` long, each padded
//! to the alignment, so a file is valid as soon as `finish` returns (and never claims data it does
//! not hold: until then it is written to `<path>.partial` and renamed at the end).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{GgufError, MetaValue, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::quant::GgmlType;

/// A tensor to be written: name, ggml-order dimensions, type.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorPlan {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorPlan {
    /// Bytes of this tensor's data, or `None` if the row length is not a whole number of blocks.
    pub fn n_bytes(&self) -> Option<u64> {
        let rows: u64 = self.dims[1..].iter().product();
        self.ty
            .row_bytes(self.dims[0] as usize)
            .map(|r| r as u64 * rows)
    }
}

/// Streams a GGUF v3 file to disk.
pub struct GgufWriter {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
    plan: Vec<(TensorPlan, u64)>,
    next: usize,
    alignment: u64,
    pos: u64,
}

impl GgufWriter {
    /// Writes the header for `metadata` and `tensors` to `<path>.partial`; data follows through
    /// [`GgufWriter::write_tensor`] in the same order.
    pub fn create(
        path: impl AsRef<Path>,
        metadata: &[(String, MetaValue)],
        tensors: Vec<TensorPlan>,
    ) -> Result<GgufWriter, GgufError> {
        let path = path.as_ref().to_path_buf();
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let werr = |msg: String| GgufError::Write {
            path: path.clone(),
            msg,
        };
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, MetaValue::U32(a))) if *a > 0 && a.is_power_of_two() => *a as u64,
            Some((_, v)) => return Err(werr(format!("bad general.alignment {v:?}"))),
        };

        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            put_string(&mut header, k);
            header.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut header, v).map_err(|m| werr(format!("metadata '{k}': {m}")))?;
        }
        let mut plan = Vec::with_capacity(tensors.len());
        let mut offset = 0u64;
        for t in tensors {
            if t.dims.is_empty() || t.dims.len() > super::MAX_DIMS {
                return Err(werr(format!("tensor '{}': bad dims {:?}", t.name, t.dims)));
            }
            let n = t.n_bytes().ok_or_else(|| {
                werr(format!(
                    "tensor '{}': row length {} is not a multiple of {}'s block size",
                    t.name, t.dims[0], t.ty
                ))
            })?;
            put_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            plan.push((t, offset));
            offset = (offset + n).next_multiple_of(alignment);
        }
        let padded = (header.len() as u64).next_multiple_of(alignment);
        header.resize(padded as usize, 0);

        let file =
            File::create(&partial).map_err(|e| werr(format!("{}: {e}", partial.display())))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header)
            .map_err(|e| werr(format!("{}: {e}", partial.display())))?;
        Ok(GgufWriter {
            path,
            partial,
            out,
            plan,
            next: 0,
            alignment,
            pos: 0,
        })
    }

    /// Name of the tensor expected next, if any.
    pub fn next_tensor(&self) -> Option<&TensorPlan> {
        self.plan.get(self.next).map(|(t, _)| t)
    }

    /// Writes the data of the next planned tensor, which must be named `name` and be exactly its size.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<(), GgufError> {
        let werr = |msg: String| GgufError::Write {
            path: self.path.clone(),
            msg,
        };
        let (t, offset) = self.plan.get(self.next).ok_or_else(|| {
            werr(format!(
                "tensor '{name}' written but all planned tensors are done"
            ))
        })?;
        if t.name != name {
            return Err(werr(format!(
                "expected tensor '{}' next, got '{name}'",
                t.name
            )));
        }
        let n = t.n_bytes().unwrap_or(0);
        if data.len() as u64 != n {
            return Err(werr(format!(
                "tensor '{name}': {} bytes given, {n} planned",
                data.len()
            )));
        }
        let pad = offset - self.pos;
        let io = |e: std::io::Error| GgufError::Write {
            path: self.path.clone(),
            msg: format!("{}: {e}", self.partial.display()),
        };
        self.out.write_all(&vec![0u8; pad as usize]).map_err(io)?;
        self.out.write_all(data).map_err(io)?;
        self.pos = offset + n;
        self.next += 1;
        Ok(())
    }

    /// Checks that every tensor was written, pads the end, flushes and renames into place.
    pub fn finish(mut self) -> Result<(), GgufError> {
        let werr = |msg: String| GgufError::Write {
            path: self.path.clone(),
            msg,
        };
        if self.next != self.plan.len() {
            return Err(werr(format!(
                "only {} of {} tensors were written",
                self.next,
                self.plan.len()
            )));
        }
        let end = self.pos.next_multiple_of(self.alignment);
        let pad = vec![0u8; (end - self.pos) as usize];
        self.out
            .write_all(&pad)
            .and_then(|_| self.out.flush())
            .map_err(|e| werr(e.to_string()))?;
        let file = self.out.into_inner().map_err(|e| werr(e.to_string()))?;
        file.sync_all().map_err(|e| werr(e.to_string()))?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| werr(e.to_string()))?;
        Ok(())
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) -> Result<(), String> {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(b) => out.push(*b as u8),
        MetaValue::String(s) => put_string(out, s),
        MetaValue::Array(elem, items) => {
            out.extend_from_slice(&(*elem as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                if it.value_type() != *elem {
                    return Err(format!("array of {elem:?} holds a {:?}", it.value_type()));
                }
                put_value(out, it)?;
            }
        }
    }
    Ok(())
}
