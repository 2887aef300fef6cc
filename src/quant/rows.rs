//! Whole-tensor quantization and dequantization, rows in parallel on rayon's pool.
//!
//! Invariants: a tensor is `n_rows` rows of `n_per_row` elements, row-major; rows are split into
//! tasks of whole rows (blocks never straddle rows), so the result equals the serial one byte for
//! byte.

use rayon::prelude::*;

use super::{dequantize, quantize, GgmlType};
use crate::{Error, Result};

/// Elements per rayon task: large enough that scheduling costs nothing next to the work.
const ELEMS_PER_TASK: usize = 1 << 16;

/// Checks the tensor shape and returns `(n_rows, row_bytes, rows_per_task)`.
fn geometry(ty: GgmlType, n_elems: usize, n_per_row: usize) -> Result<(usize, usize, usize)> {
    let err = |msg: String| Err(Error::Type { ty, msg });
    if n_per_row == 0 {
        return err("rows of 0 elements".into());
    }
    if n_elems % n_per_row != 0 {
        return err(format!(
            "{n_elems} elements is not a whole number of {n_per_row}-element rows"
        ));
    }
    let Some(row_bytes) = ty.row_bytes(n_per_row) else {
        return err(format!(
            "row length {n_per_row} is not a whole number of {}-element blocks",
            ty.block_size()
        ));
    };
    let rows_per_task = (ELEMS_PER_TASK / n_per_row).max(1);
    Ok((n_elems / n_per_row, row_bytes, rows_per_task))
}

/// Quantizes a whole `[n_rows x n_per_row]` tensor (`src.len() = n_rows * n_per_row`) with
/// [`quantize`], rows in parallel. Returns the `n_rows * ty.row_bytes(n_per_row)` bytes.
pub fn quantize_rows(ty: GgmlType, src: &[f32], n_per_row: usize) -> Result<Vec<u8>> {
    let (n_rows, row_bytes, rows_per_task) = geometry(ty, src.len(), n_per_row)?;
    let mut out = vec![0u8; n_rows * row_bytes];
    out.par_chunks_mut(row_bytes * rows_per_task)
        .zip(src.par_chunks(n_per_row * rows_per_task))
        .try_for_each(|(dst, src)| quantize(ty, src, dst))?;
    Ok(out)
}

/// Dequantizes a whole tensor of `n_per_row`-element rows with [`dequantize`], rows in parallel.
/// `src` must be a whole number of rows.
pub fn dequantize_rows(ty: GgmlType, src: &[u8], n_per_row: usize) -> Result<Vec<f32>> {
    let (_, row_bytes, rows_per_task) = geometry(ty, 0, n_per_row)?;
    if src.len() % row_bytes != 0 {
        return Err(Error::Type {
            ty,
            msg: format!(
                "{} bytes is not a whole number of {row_bytes}-byte rows of {n_per_row} elements",
                src.len()
            ),
        });
    }
    let mut out = vec![0f32; src.len() / row_bytes * n_per_row];
    out.par_chunks_mut(n_per_row * rows_per_task)
        .zip(src.par_chunks(row_bytes * rows_per_task))
        .try_for_each(|(dst, src)| dequantize(ty, src, dst))?;
    Ok(out)
}
