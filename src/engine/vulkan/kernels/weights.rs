//! Weight matrices on the device: raw GGUF blocks, uploaded once, dequantized by the shaders.
//!
//! Invariants: a matrix of `nrows` rows of `ncols` elements of type `ty` is stored row-major as
//! the file stores it, split into pieces of whole rows so that each piece's binding (its bytes
//! plus 16 bytes of padding that unaligned shader loads may touch) fits the device's
//! `maxStorageBufferRange`. Each piece is its own allocation. Fused matrices (q|k|v, gate|up) are
//! several tensors of one type stacked by rows.

use super::super::buffer::{BufRange, GpuBuffer};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::memory::MemoryClass;
use crate::quant::GgmlType;

/// Bytes after each piece that shaders may read (one word past a 2-aligned 16-byte load).
pub const PAD: u64 = 16;

/// Rows `row_start .. row_start + nrows` of a matrix, bound as one range.
pub struct WeightPiece {
    /// The bound range (rows plus padding).
    pub range: BufRange,
    /// First row.
    pub row_start: usize,
    /// Number of rows.
    pub nrows: usize,
}

/// A weight matrix on the device.
pub struct WeightMatrix {
    /// Element type.
    pub ty: GgmlType,
    /// Elements per row (ggml ne0).
    pub ncols: usize,
    /// Rows (ggml ne1).
    pub nrows: usize,
    /// Bytes per row.
    pub row_bytes: usize,
    /// Pieces covering all rows in order.
    pub pieces: Vec<WeightPiece>,
    _buffers: Vec<GpuBuffer>,
}

impl WeightMatrix {
    /// Uploads `parts` (each whole rows of `ncols` elements of `ty`, raw GGUF bytes) stacked by rows.
    pub fn upload(gpu: &Gpu, ty: GgmlType, ncols: usize, parts: &[&[u8]]) -> VkResult<Self> {
        let row_bytes = ty.row_bytes(ncols).ok_or_else(|| {
            VulkanError::invalid(
                "weights",
                format!("{ncols} columns is not whole {ty} blocks"),
            )
        })?;
        if !super::super::shaders::WEIGHT_FORMATS.contains(&ty) {
            return Err(VulkanError::unsupported(format!("weights of type {ty}")));
        }
        for p in parts {
            if p.len() % row_bytes != 0 {
                return Err(VulkanError::invalid(
                    "weights",
                    format!("{} bytes is not whole rows of {row_bytes} bytes", p.len()),
                ));
            }
        }
        let nrows: usize = parts.iter().map(|p| p.len() / row_bytes).sum();
        let max_range = gpu.caps().limits.max_storage_buffer_range;
        let max_rows = ((max_range.saturating_sub(PAD + 256)) / row_bytes as u64) as usize;
        if max_rows == 0 {
            return Err(VulkanError::unsupported(format!(
                "a row of {row_bytes} bytes (binding limit {max_range})"
            )));
        }
        let mut pieces = Vec::new();
        let mut buffers = Vec::new();
        let mut row = 0usize;
        // Iterate over (part, row-in-part) to fill pieces of up to max_rows rows.
        let mut part_i = 0usize;
        let mut part_row = 0usize;
        while row < nrows {
            let n = max_rows.min(nrows - row);
            let padded = ((n * row_bytes) as u64 + PAD).div_ceil(4) * 4;
            let buf = GpuBuffer::new(gpu, padded, MemoryClass::Device)?;
            let mut written = 0usize;
            while written < n {
                let part = parts[part_i];
                let part_rows = part.len() / row_bytes;
                let take = (part_rows - part_row).min(n - written);
                let src = &part[part_row * row_bytes..(part_row + take) * row_bytes];
                gpu.upload(&buf, (written * row_bytes) as u64, src)?;
                written += take;
                part_row += take;
                if part_row == part_rows {
                    part_i += 1;
                    part_row = 0;
                }
            }
            pieces.push(WeightPiece {
                range: buf.range(),
                row_start: row,
                nrows: n,
            });
            buffers.push(buf);
            row += n;
        }
        Ok(WeightMatrix {
            ty,
            ncols,
            nrows,
            row_bytes,
            pieces,
            _buffers: buffers,
        })
    }

    /// Reads rows `start .. start + n` back from the device (raw blocks, as uploaded).
    pub fn download_rows(&self, gpu: &Gpu, start: usize, n: usize) -> VkResult<Vec<u8>> {
        if start + n > self.nrows {
            return Err(VulkanError::invalid(
                "weights",
                format!("rows {start}..{} of a {}-row matrix", start + n, self.nrows),
            ));
        }
        let mut out = vec![0u8; n * self.row_bytes];
        for p in &self.pieces {
            let lo = start.max(p.row_start);
            let hi = (start + n).min(p.row_start + p.nrows);
            if lo >= hi {
                continue;
            }
            let range = BufRange {
                buffer: p.range.buffer,
                offset: p.range.offset + ((lo - p.row_start) * self.row_bytes) as u64,
                size: ((hi - lo) * self.row_bytes) as u64,
            };
            let dst = &mut out[(lo - start) * self.row_bytes..(hi - start) * self.row_bytes];
            gpu.download_range(range, dst)?;
        }
        Ok(out)
    }

    /// Bytes of weight data (without padding).
    pub fn bytes(&self) -> u64 {
        (self.nrows * self.row_bytes) as u64
    }
}
