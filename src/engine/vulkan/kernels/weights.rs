//! Weight matrices on the device: raw GGUF blocks, uploaded once, dequantized by the shaders.
//!
//! Invariants: a matrix of `nrows` rows of `ncols` elements of type `ty` is stored row-major as
//! the file stores it, split into pieces of whole rows so that each piece's binding (its bytes
//! plus 16 bytes of padding that unaligned shader loads may touch) fits the device's
//! `maxStorageBufferRange`. Each piece is its own allocation. Fused matrices (q|k|v, gate|up) are
//! several tensors of one type stacked by rows.
//!
//! On request a matrix also keeps a second copy in 16-row tile order ([`tile16`]): the order
//! in which matmul_q8.comp's lanes read K-quant blocks, so that each of its weight loads reads
//! whole 512-byte runs instead of 32 bytes from each of 8 rows. The row-major copy stays: every
//! other kernel reads it, and swapping a tensor reads it back.

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
    /// The same rows in 16-row tile order ([`tile16`]; its last tile padded with zero rows),
    /// where the batched tile products (matmul_q8) read them; uploaded on request
    /// ([`WeightMatrix::upload_with_tile_order`]).
    pub tile_order: Option<BufRange>,
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

/// Superblock bytes of the formats [`tile16`] reorders.
pub fn tile16_superblock(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::Q2K => Some(84),
        GgmlType::Q3K => Some(110),
        GgmlType::Q4K => Some(144),
        GgmlType::Q5K => Some(176),
        GgmlType::Q6K => Some(210),
        _ => None,
    }
}

/// Where byte `b` of row `rr`'s superblock lies in its 16-row chunk (rows 0 .. 15 of one
/// superblock column, `16 * sbb` bytes), in the order matmul_q8.comp's lanes read: lane L = 4g +
/// t of a warp holds rows g and g + 8 (hi = rr / 8) at quant bytes 8t .. 8t + 7 of each 32-byte
/// run, so each 16 bytes a lane loads lie at L * 16 of a 512-byte unit that one warp load
/// reads whole. Per format:
/// - Q4_K: the 16-byte headers row by row (256 bytes), then 4 units: unit 2 hi + p / 2 holds
///   sub-block pairs p of rows g + 8 hi, pair p % 2 in the lane's second 8 bytes.
/// - Q5_K: headers; one unit of qh (row g's 8 bytes, then row g + 8's); the 4 qs units as Q4_K.
/// - Q6_K: 4 ql units (unit 2 hi + n holds ql[64n + 32h + 8t ..] at 8h), 2 qh units (unit hi
///   holds qh[32n + 8t ..] at 8n), the 16 scale bytes row by row, the f16 d row by row.
/// - Q3_K: one hmask unit (row g's 8 bytes, then row g + 8's), 2 qs units (unit hi holds
///   qs[32n + 8t ..] at 8n), the 12 scale bytes row by row, the f16 d row by row.
/// - Q2_K: 2 qs units (unit hi holds qs[32n + 8t ..] at 8n), the 16 scale bytes row by row,
///   the f16 pair (d, dmin) row by row.
///
/// `None` for formats without a tile order.
pub fn tile16_pos(ty: GgmlType, rr: usize, b: usize) -> Option<usize> {
    let (g, hi) = (rr % 8, rr / 8);
    let lane = |t: usize| 16 * (4 * g + t);
    Some(match ty {
        GgmlType::Q4K | GgmlType::Q5K => {
            let qs = if ty == GgmlType::Q4K { 16 } else { 48 };
            if b < 16 {
                rr * 16 + b
            } else if b < qs {
                let q = b - 16;
                256 + lane(q / 8) + 8 * hi + q % 8
            } else {
                let q = b - qs;
                let (p, t, i) = (q / 32, q % 32 / 8, q % 8);
                let base = if ty == GgmlType::Q4K { 256 } else { 768 };
                base + (2 * hi + p / 2) * 512 + lane(t) + 8 * (p % 2) + i
            }
        }
        GgmlType::Q2K => {
            if b < 16 {
                1024 + rr * 16 + b
            } else if b < 80 {
                let q = b - 16;
                let (n, t, i) = (q / 32, q % 32 / 8, q % 8);
                hi * 512 + lane(t) + 8 * n + i
            } else {
                1280 + rr * 4 + (b - 80)
            }
        }
        GgmlType::Q3K => {
            if b < 32 {
                lane(b / 8) + 8 * hi + b % 8
            } else if b < 96 {
                let q = b - 32;
                let (n, t, i) = (q / 32, q % 32 / 8, q % 8);
                512 + hi * 512 + lane(t) + 8 * n + i
            } else if b < 108 {
                1536 + rr * 12 + (b - 96)
            } else {
                1728 + rr * 2 + (b - 108)
            }
        }
        GgmlType::Q6K => {
            if b < 128 {
                let (n, h, t, i) = (b / 64, b % 64 / 32, b % 32 / 8, b % 8);
                (2 * hi + n) * 512 + lane(t) + 8 * h + i
            } else if b < 192 {
                let q = b - 128;
                let (n, t, i) = (q / 32, q % 32 / 8, q % 8);
                2048 + hi * 512 + lane(t) + 8 * n + i
            } else if b < 208 {
                3072 + rr * 16 + (b - 192)
            } else {
                3328 + rr * 2 + (b - 208)
            }
        }
        _ => return None,
    })
}

/// `rows` (whole rows of `row_bytes` bytes of `ty`) in 16-row tile order: tile T (rows 16T ..
/// 16T + 15, zero rows past the end) at 16 T row_bytes, its superblock column s at 16 s sbb,
/// bytes by [`tile16_pos`]; `None` for formats without a tile order. Copies runs of
/// consecutive bytes (8, 12 or 16 in these orders, the f16 d's 2), not bytes one by one.
pub fn tile16(ty: GgmlType, row_bytes: usize, rows: &[u8]) -> Option<Vec<u8>> {
    let sbb = tile16_superblock(ty)?;
    // Per row of a tile: (source offset, destination offset, length) of each run.
    let mut runs: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); 16];
    for (rr, r) in runs.iter_mut().enumerate() {
        for b in 0..sbb {
            let pos = tile16_pos(ty, rr, b)?;
            match r.last_mut() {
                Some((src, dst, len)) if *src + *len == b && *dst + *len == pos => *len += 1,
                _ => r.push((b, pos, 1)),
            }
        }
    }
    let nrows = rows.len() / row_bytes;
    let mut out = vec![0u8; nrows.div_ceil(16) * 16 * row_bytes];
    for (row, src) in rows.chunks_exact(row_bytes).enumerate() {
        let (tile, rr) = (row / 16, row % 16);
        for (s, sb) in src.chunks_exact(sbb).enumerate() {
            let base = tile * 16 * row_bytes + s * 16 * sbb;
            for &(from, to, len) in &runs[rr] {
                out[base + to..base + to + len].copy_from_slice(&sb[from..from + len]);
            }
        }
    }
    Some(out)
}

impl WeightMatrix {
    /// Uploads `parts` (each whole rows of `ncols` elements of `ty`, raw GGUF bytes) stacked by
    /// rows.
    pub fn upload(gpu: &Gpu, ty: GgmlType, ncols: usize, parts: &[&[u8]]) -> VkResult<Self> {
        Self::upload_with_tile_order(gpu, ty, ncols, parts, false)
    }

    /// As [`upload`](Self::upload), and with `tile_order` also a copy of the rows in 16-row
    /// tile order ([`WeightPiece::tile_order`]) where the format has one
    /// ([`tile16_superblock`]). The copy takes as much device memory again.
    pub fn upload_with_tile_order(
        gpu: &Gpu,
        ty: GgmlType,
        ncols: usize,
        parts: &[&[u8]],
        tile_order: bool,
    ) -> VkResult<Self> {
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
                tile_order: None,
                row_start: row,
                nrows: n,
            });
            buffers.push(buf);
            row += n;
        }
        // Each piece in its own tiles (the products count rows from a piece's first).
        if tile_order && tile16_superblock(ty).is_some() {
            let all: Vec<u8> = parts.concat();
            for p in &mut pieces {
                let src = &all[p.row_start * row_bytes..(p.row_start + p.nrows) * row_bytes];
                let Some(t) = tile16(ty, row_bytes, src) else {
                    break;
                };
                let buf = GpuBuffer::new(
                    gpu,
                    (t.len() as u64 + PAD).div_ceil(4) * 4,
                    MemoryClass::Device,
                )?;
                gpu.upload(&buf, 0, &t)?;
                p.tile_order = Some(buf.range());
                buffers.push(buf);
            }
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

    /// Bytes of weight data (without padding; the tile-ordered copy not counted).
    pub fn bytes(&self) -> u64 {
        (self.nrows * self.row_bytes) as u64
    }

    /// Whether every piece also has its rows in tile order.
    pub fn has_tile_order(&self) -> bool {
        self.pieces.iter().all(|p| p.tile_order.is_some())
    }

    /// Bytes of the tile-ordered copy (0 without one).
    pub fn tile_order_bytes(&self) -> u64 {
        self.pieces
            .iter()
            .filter(|p| p.tile_order.is_some())
            .map(|p| (p.nrows.div_ceil(16) * 16 * self.row_bytes) as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{tile16, tile16_pos, tile16_superblock};
    use crate::quant::GgmlType;

    /// The formats with a tile order.
    const TILED: [GgmlType; 5] = [
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
    ];

    /// Each format's tile order is a permutation of a 16-row chunk.
    #[test]
    fn tile16_pos_permutes_a_chunk() {
        for ty in TILED {
            let sbb = tile16_superblock(ty).unwrap();
            let mut seen = vec![false; 16 * sbb];
            for rr in 0..16 {
                for b in 0..sbb {
                    let p = tile16_pos(ty, rr, b).unwrap();
                    assert!(p < seen.len() && !seen[p], "{ty} row {rr} byte {b} -> {p}");
                    seen[p] = true;
                }
            }
        }
        assert_eq!(tile16_pos(GgmlType::Q8_0, 0, 0), None);
    }

    /// tile16 puts byte b of row r's superblock s where the layout says (the byte by byte
    /// placement as the oracle for its run copies), pads the last tile with zero rows, and
    /// declines formats without an order.
    #[test]
    fn tile16_places_every_byte() {
        for ty in TILED {
            let sbb = tile16_superblock(ty).unwrap();
            let (nrows, nsb) = (21, 3);
            let row_bytes = nsb * sbb;
            // Distinct-ish values: byte i of the matrix is a hash of i, never 0.
            let rows: Vec<u8> = (0..nrows * row_bytes)
                .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8 | 1)
                .collect();
            let out = tile16(ty, row_bytes, &rows).unwrap();
            assert_eq!(out.len(), 32 * row_bytes);
            let mut want = vec![0u8; out.len()];
            for r in 0..nrows {
                for s in 0..nsb {
                    for b in 0..sbb {
                        let at = (r / 16) * 16 * row_bytes
                            + s * 16 * sbb
                            + tile16_pos(ty, r % 16, b).unwrap();
                        want[at] = rows[r * row_bytes + s * sbb + b];
                    }
                }
            }
            assert_eq!(out, want, "{ty}");
            assert!(out[..16 * row_bytes].iter().all(|&v| v != 0));
        }
        assert_eq!(tile16(GgmlType::Q8_0, 34, &[0u8; 68]), None);
    }
}
