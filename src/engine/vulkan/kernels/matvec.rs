//! Weight-matrix kernels: matrix-vector (decode), matrix-matrix (prefill) and row lookup
//! (embeddings), for every weight format. Shaders: matvec.comp, matmul.comp, get_rows.comp, and
//! on devices with VK_NV_cooperative_matrix matmul_coopmat.comp and dequant_f16.comp (tensor
//! cores; [`route`] says which kernel a product takes).
//!
//! Invariants: x and y ranges hold f32; a dispatch per weight piece, each writing its own rows;
//! `y` rows are `nrows` wide (or, with GLU, `nrows / 2`: gate rows then up rows). matvec.comp and
//! matmul.comp compute in f32; the tensor-core kernels round both operands to f16 and sum in f32.

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::caps::{DeviceCaps, DeviceKind};
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::super::shaders;
use super::{linear_groups, push_bytes, subgroup_wg, u32_of, WeightMatrix, SUBGROUPS_PER_WG};
use crate::quant::GgmlType;

/// Most vectors one matvec dispatch multiplies (the shader's MAX_BATCH).
pub const MATVEC_MAX_BATCH: usize = 16;

/// Push constants of matvec.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatvecPush {
    pub ncols: u32,
    pub nrows: u32,
    pub row_bytes: u32,
    pub batch: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub y_off: u32,
    pub y_stride: u32,
    pub flags: u32,
    pub glu_off: u32,
}

/// Push constants of matmul.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulPush {
    pub ncols: u32,
    pub nrows: u32,
    pub row_bytes: u32,
    pub ntok: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub y_off: u32,
    pub y_stride: u32,
    pub flags: u32,
}

/// Push constants of dequant_f16.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DequantF16Push {
    pub ncols: u32,
    pub nrows: u32,
    pub row_bytes: u32,
    pub ld: u32,
}

/// Push constants of get_rows.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GetRowsPush {
    pub ncols: u32,
    pub row_bytes: u32,
    pub row_start: u32,
    pub nrows: u32,
    pub ids_off: u32,
    pub y_off: u32,
    pub y_stride: u32,
}

/// How a product's output combines with what `y` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// y = W x.
    Store,
    /// y += W x (residual connections).
    Accumulate,
    /// y = silu(W_gate x) * (W_up x), W = gate rows then up rows (one piece).
    Glu,
}

/// Activations: `n` vectors in `range`, vector i at element `off + i * stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act {
    /// The bound range (f32).
    pub range: BufRange,
    /// First element.
    pub off: usize,
    /// Elements between consecutive vectors.
    pub stride: usize,
}

impl Act {
    /// Vectors packed back to back in `range`, each `stride` wide.
    pub fn packed(range: BufRange, stride: usize) -> Self {
        Act {
            range,
            off: 0,
            stride,
        }
    }
}

/// Workgroup shape of matvec.comp: subgroups per workgroup and rows each subgroup handles per
/// pass (rows of one pass share every load of x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatvecTuning {
    /// Subgroups per workgroup.
    pub subgroups: u32,
    /// Rows per subgroup pass (1..=4).
    pub rows_per_subgroup: u32,
    /// Pieces (see shaders/piece.glsl) each lane handles per loop iteration (1..=8).
    pub unroll: u32,
}

impl MatvecTuning {
    /// The shape for `caps` and a batch of `batch` vectors, overridable with
    /// `RAWRXD_MATVEC_TUNING=subgroups,rows,unroll` (one vector) and
    /// `RAWRXD_MATVEC_TUNING_BATCH=…` (several), for tuning runs. A shape changes which rows a
    /// subgroup takes, never how a row is summed, so results do not depend on it.
    pub fn for_device(caps: &DeviceCaps, batch: usize) -> Self {
        // Measured on an H100 (synthetic Llama-2-7B decode, scripts/tune_matvec.sh, see
        // docs/BENCHMARKS.md): 8 subgroups x 1 row x 2 pieces beat 8x2x2, 4x2x2, 8x2x4, 8x4x1 and
        // 4x1x4 for every format with one vector. With several vectors each load of x feeds
        // every row of the pass, and two rows per pass with one piece per iteration win
        // (batched decode, 4..16 sequences: 8x2x1 ≈ 4x2x1 ≈ 2x2x1 > 8x2x2 > 8x3x1 > 8x4x2 >
        // 8x1x1; a lane's smaller stride keeps the x the workgroup touches at once in L1).
        // CPU implementations compile every unrolled row, so they get one row per pass.
        let default = if caps.kind == DeviceKind::Cpu {
            MatvecTuning {
                subgroups: SUBGROUPS_PER_WG,
                rows_per_subgroup: 1,
                unroll: 1,
            }
        } else {
            MatvecTuning {
                subgroups: 8,
                rows_per_subgroup: if batch > 1 { 2 } else { 1 },
                unroll: if batch > 1 { 1 } else { 2 },
            }
        };
        default.overridden(batch)
    }

    /// The shape of matvec_q8.comp (decode on Q8 activations) for `caps` and `batch` vectors,
    /// overridable as [`Self::for_device`]. Measured on an H100 (synthetic Llama-2-7B Q4_K_M, see
    /// docs/BENCHMARKS.md): 8 subgroups x 1 row x 1 piece is best at one vector (within 1 % of
    /// 8x1x2, 16x1x2 and 4x1x2) and at twelve (1010 tok/s against 918 for 8x1x2 and 827 for
    /// 8x2x1): with x a quarter of the bytes, sharing its loads between rows no longer pays.
    pub fn for_q8(caps: &DeviceCaps, batch: usize) -> Self {
        MatvecTuning {
            subgroups: if caps.kind == DeviceKind::Cpu {
                SUBGROUPS_PER_WG
            } else {
                8
            },
            rows_per_subgroup: 1,
            unroll: 1,
        }
        .overridden(batch)
    }

    /// `self`, or the shape `RAWRXD_MATVEC_TUNING=subgroups,rows,unroll` (one vector) or
    /// `RAWRXD_MATVEC_TUNING_BATCH` (several) names.
    fn overridden(self, batch: usize) -> Self {
        let default = self;
        let var = if batch > 1 {
            "RAWRXD_MATVEC_TUNING_BATCH"
        } else {
            "RAWRXD_MATVEC_TUNING"
        };
        let Ok(s) = std::env::var(var) else {
            return default;
        };
        let v: Vec<u32> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match v.as_slice() {
            [sg, nr, un]
                if (1..=16).contains(sg) && (1..=4).contains(nr) && (1..=8).contains(un) =>
            {
                MatvecTuning {
                    subgroups: *sg,
                    rows_per_subgroup: *nr,
                    unroll: *un,
                }
            }
            _ => default,
        }
    }
}

/// Records y = W x (per `out`) for `n` vectors with matvec.comp (n <= MATVEC_MAX_BATCH).
#[allow(clippy::too_many_arguments)]
pub fn matvec(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    let tuning = MatvecTuning::for_device(gpu.caps(), n);
    matvec_tuned(gpu, rec, descs, w, x, y, n, out, tuning)
}

/// Checks a decode product of `n` vectors (1..=[`MATVEC_MAX_BATCH`]) for `kernel` and returns
/// its output rows per vector and, for `Output::Glu`, the byte offset of the up rows after the
/// gate rows (which must be one piece).
pub(super) fn decode_rows(
    kernel: &'static str,
    w: &WeightMatrix,
    n: usize,
    out: Output,
) -> VkResult<(usize, usize)> {
    if n == 0 || n > MATVEC_MAX_BATCH {
        return Err(VulkanError::invalid(
            kernel,
            format!("batch {n} (1..={MATVEC_MAX_BATCH})"),
        ));
    }
    match out {
        Output::Glu if w.pieces.len() != 1 || w.nrows % 2 != 0 => Err(VulkanError::invalid(
            kernel,
            "GLU needs gate|up rows in a single piece",
        )),
        Output::Glu => Ok((w.nrows / 2, (w.nrows / 2) * w.row_bytes)),
        _ => Ok((w.nrows, 0)),
    }
}

/// As [`matvec`] with an explicit workgroup shape (tuning runs and tests).
#[allow(clippy::too_many_arguments)]
pub fn matvec_tuned(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
    tuning: MatvecTuning,
) -> VkResult<()> {
    let (out_rows, glu_off) = decode_rows("matvec", w, n, out)?;
    let caps = gpu.caps();
    let variant = shaders::for_format("matvec", w.ty, "")
        .ok_or_else(|| VulkanError::MissingShader(format!("matvec_{}", w.ty)))?;
    let wg = subgroup_wg(caps, tuning.subgroups);
    let rows_per_wg = (wg / caps.subgroup.size.max(1)) * tuning.rows_per_subgroup;
    let x_vec4 = x.off % 4 == 0 && (x.stride % 4 == 0 || n == 1);
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 3,
        push_size: std::mem::size_of::<MatvecPush>() as u32,
        spec: vec![
            wg,
            rows_per_wg,
            tuning.rows_per_subgroup,
            n as u32,
            u32::from(out == Output::Glu),
            u32::from(x_vec4),
            tuning.unroll,
        ],
        local_size: wg,
        subgroup_sized: true,
    })?;
    let flags = u32::from(out == Output::Accumulate);
    for piece in &w.pieces {
        let rows = if out == Output::Glu {
            out_rows
        } else {
            piece.nrows
        };
        let push = MatvecPush {
            ncols: u32_of("ncols", w.ncols)?,
            nrows: u32_of("nrows", rows)?,
            row_bytes: u32_of("row_bytes", w.row_bytes)?,
            batch: n as u32,
            x_off: u32_of("x_off", x.off)?,
            x_stride: u32_of("x_stride", x.stride)?,
            y_off: u32_of("y_off", y.off + piece.row_start)?,
            y_stride: u32_of("y_stride", y.stride)?,
            flags,
            glu_off: u32_of("glu_off", glu_off)?,
        };
        let groups = linear_groups(caps, (rows as u32).div_ceil(rows_per_wg));
        let bytes = (piece.nrows * w.row_bytes + n * (w.ncols + rows) * 4) as u64;
        rec.dispatch(
            descs,
            &kernel,
            &[
                Binding::read(piece.range),
                Binding::read(x.range),
                Binding::write(y.range),
            ],
            push_bytes(&push),
            groups,
            "matvec",
            bytes,
        )?;
    }
    Ok(())
}

/// Records Y = W X for `n` token vectors with the tiled matmul.comp (`Glu` is not supported here).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    // Large tiles when there are enough rows and tokens to fill them.
    let (shape, bm, bn) = if n >= 64 && w.nrows >= 64 {
        ("l", 64u32, 64u32)
    } else {
        ("s", 32, 32)
    };
    let variant = shaders::for_format("matmul", w.ty, shape)
        .ok_or_else(|| VulkanError::MissingShader(format!("matmul_{}_{shape}", w.ty)))?;
    let tile = Tile {
        variant: variant.name,
        label: "matmul",
        bm,
        bn,
        wg: bm * bn / 16,
    };
    record_tiled(gpu, rec, descs, &tile, w, &mut raw_pieces(w), x, y, n, out)
}

/// The optional extension the tensor-core variants need (build.rs's `EXT_COOPMAT_NV`).
const COOPMAT_EXT: &str = "coopmat_nv";

/// Records Y = W X for `n` token vectors with matmul_coopmat.comp, tile shape `shape` ("w": 128
/// rows x 64 tokens, "d": 32 x 16). Needs [`has_coopmat`]; `Glu` is not supported.
#[allow(clippy::too_many_arguments)]
pub fn matmul_coopmat(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
    shape: &str,
) -> VkResult<()> {
    let variant =
        shaders::for_format_ext("matmul_coopmat", w.ty, shape, COOPMAT_EXT).ok_or_else(|| {
            VulkanError::MissingShader(format!("matmul_coopmat_{}_{shape}_{COOPMAT_EXT}", w.ty))
        })?;
    let tile = coopmat_tile(gpu, shape, variant.name)?;
    record_tiled(gpu, rec, descs, &tile, w, &mut raw_pieces(w), x, y, n, out)
}

/// The tile of matmul_coopmat.comp's `shape` for `variant`, once the device is known to run it.
fn coopmat_tile(gpu: &Gpu, shape: &str, variant: &'static str) -> VkResult<Tile> {
    let (bm, bn, wg) = match shape {
        "w" => (128, 64, 256),
        "d" => (32, 16, 64),
        "s" => (128, 64, 128),
        _ => {
            return Err(VulkanError::invalid(
                "matmul_coopmat",
                format!("shape {shape:?}"),
            ))
        }
    };
    if !gpu.caps().nv_coopmat_f16_16x16() {
        return Err(VulkanError::invalid(
            "matmul_coopmat",
            "the device has no 16x16x16 f16 NV cooperative matrix on 32-lane subgroups",
        ));
    }
    Ok(Tile {
        variant,
        label: "matmul_coopmat",
        bm,
        bn,
        wg,
    })
}

/// Row length (elements) of a staged f16 copy of `w`: `ncols` rounded up to 128, so every step of
/// the staged matmul reads whole 16-byte runs and its padding is zero.
pub fn staged_ld(w: &WeightMatrix) -> usize {
    w.ncols.next_multiple_of(128)
}

/// Bytes of the f16 weight rows in a staging scratch for `w`: its largest piece, rounded up to
/// 256 bytes (where the f16 activations start: every device's storage-offset alignment divides
/// 256).
fn staged_w_bytes(w: &WeightMatrix) -> u64 {
    let rows = w.pieces.iter().map(|p| p.nrows).max().unwrap_or(0);
    ((rows * staged_ld(w) * 2) as u64).next_multiple_of(256)
}

/// Bytes of scratch [`matmul_coopmat_staged`] needs for `w` and up to `max_tok` token vectors:
/// its largest piece as f16 rows, then the activations as f16 rows.
pub fn staged_bytes(w: &WeightMatrix, max_tok: usize) -> u64 {
    staged_w_bytes(w) + (max_tok * staged_ld(w) * 2) as u64
}

/// Push constants of f16_rows.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct F16RowsPush {
    pub ncols: u32,
    pub nrows: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub ld: u32,
}

/// Records X16 = f16 rows of `n` vectors of `x` (`ncols` each, zero to `ld`, a multiple of 8)
/// into `out` with f16_rows.comp.
#[allow(clippy::too_many_arguments)]
pub fn f16_rows(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    ncols: usize,
    n: usize,
    ld: usize,
    out: BufRange,
) -> VkResult<()> {
    if ld % 8 != 0 || ld < ncols || out.size < (n * ld * 2) as u64 {
        return Err(VulkanError::invalid(
            "f16_rows",
            format!(
                "{} bytes for {n} rows of {ld} f16 ({ncols} columns; ld must be a multiple of 8)",
                out.size
            ),
        ));
    }
    let v = shaders::find("f16_rows")
        .ok_or_else(|| VulkanError::MissingShader("f16_rows".to_string()))?;
    let kernel = gpu.kernel(&KernelSpec {
        variant: v.name.to_string(),
        bindings: 2,
        push_size: std::mem::size_of::<F16RowsPush>() as u32,
        spec: vec![],
        local_size: 64,
        subgroup_sized: false,
    })?;
    let push = F16RowsPush {
        ncols: u32_of("ncols", ncols)?,
        nrows: u32_of("nrows", n)?,
        x_off: u32_of("x_off", x.off)?,
        x_stride: u32_of("x_stride", x.stride)?,
        ld: u32_of("ld", ld)?,
    };
    let chunks = (ld / 8).div_ceil(64);
    rec.dispatch(
        descs,
        &kernel,
        &[Binding::read(x.range), Binding::write(out)],
        push_bytes(&push),
        linear_groups(gpu.caps(), u32_of("groups", n * chunks)?),
        "f16_rows",
        (n * (ncols * 4 + ld * 2)) as u64,
    )
}

/// Records W16 = f16(piece `piece` of W) into `out` with dequant_f16.comp: the piece's rows, each
/// [`staged_ld`]`(w)` elements long, zero past `ncols`.
pub fn dequant_f16(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    piece: usize,
    out: BufRange,
) -> VkResult<()> {
    let p = w
        .pieces
        .get(piece)
        .ok_or_else(|| VulkanError::invalid("dequant_f16", format!("no piece {piece}")))?;
    let ld = staged_ld(w);
    if out.size < (p.nrows * ld * 2) as u64 {
        return Err(VulkanError::invalid(
            "dequant_f16",
            format!("{} bytes for {} rows of {ld} f16", out.size, p.nrows),
        ));
    }
    let (wg, upt) = dequant_f16_shape();
    let dq = shaders::for_format("dequant_f16", w.ty, "")
        .ok_or_else(|| VulkanError::MissingShader(format!("dequant_f16_{}", w.ty)))?;
    let kernel = gpu.kernel(&KernelSpec {
        variant: dq.name.to_string(),
        bindings: 2,
        push_size: std::mem::size_of::<DequantF16Push>() as u32,
        spec: vec![wg, upt],
        local_size: wg,
        subgroup_sized: false,
    })?;
    let push = DequantF16Push {
        ncols: u32_of("ncols", w.ncols)?,
        nrows: u32_of("nrows", p.nrows)?,
        row_bytes: u32_of("row_bytes", w.row_bytes)?,
        ld: u32_of("ld", ld)?,
    };
    let chunks = (ld / 32).div_ceil((wg * upt) as usize);
    rec.dispatch(
        descs,
        &kernel,
        &[Binding::read(p.range), Binding::write(out)],
        push_bytes(&push),
        linear_groups(gpu.caps(), u32_of("groups", p.nrows * chunks)?),
        "dequant_f16",
        (p.nrows * (w.row_bytes + ld * 2)) as u64,
    )
}

/// dequant_f16.comp's workgroup: lanes and 32-element units a lane; 256 x 2 by default (on an
/// H200, 7B Q4_K_M pp512: 15% less dequantization time than 64 x 1, the best of 8 shapes,
/// docs/BENCHMARKS.md). Tuning switch `RAWRXD_DQ_SHAPE=lanes,units` (lanes 32..256, units 1..4).
fn dequant_f16_shape() -> (u32, u32) {
    static SHAPE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *SHAPE.get_or_init(|| {
        std::env::var("RAWRXD_DQ_SHAPE")
            .ok()
            .and_then(|v| {
                let (a, b) = v.split_once(',')?;
                let (wg, upt) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                ([32, 64, 128, 256].contains(&wg) && (1..=4).contains(&upt)).then_some((wg, upt))
            })
            .unwrap_or((256, 2))
    })
}

/// Records Y = W X for `n` token vectors on tensor cores the staged way: the vectors are converted
/// to f16 rows in `scratch` once (f16_rows.comp), each piece of W is dequantized to f16 rows there
/// (dequant_f16.comp, coalesced, once), and a tensor-core kernel multiplies the two: `tile` names
/// it ("s": matmul_coopmat.comp's STAGED_F16 variant; "cm2_m", "cm2_s": matmul_cm2.comp's
/// tiles), or `None` takes [`staged_tile`]'s choice for `n` (matmul_cm2.comp where the device has
/// VK_NV_cooperative_matrix2). `scratch` must hold [`staged_bytes`]`(w, n)`; the recorder orders
/// the reuse of `scratch` between products. With `prestaged`, the weights are already there
/// ([`prestage`] recorded for `w` and this `scratch`, nothing written to its weight rows since)
/// and are not dequantized again. The results agree with [`matmul_coopmat`]'s: all round the same
/// dequantized weights and activations to f16 and sum in f32.
#[allow(clippy::too_many_arguments)]
pub fn matmul_coopmat_staged(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    scratch: BufRange,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
    prestaged: bool,
    tile: Option<&str>,
) -> VkResult<()> {
    if prestaged && w.pieces.len() != 1 {
        return Err(VulkanError::invalid(
            "matmul_coopmat",
            format!("prestaged weights of {} pieces (one only)", w.pieces.len()),
        ));
    }
    if scratch.size < staged_bytes(w, n) {
        return Err(VulkanError::invalid(
            "matmul_coopmat",
            format!(
                "staging scratch of {} bytes, {} needed",
                scratch.size,
                staged_bytes(w, n)
            ),
        ));
    }
    let tile = match tile {
        None => staged_tile(gpu, n)?,
        Some(name) => named_staged_tile(gpu, name)?,
    };
    let ld = staged_ld(w);
    // The activations as f16 rows once, after the weights' region; every piece reads them.
    let w_bytes = staged_w_bytes(w);
    let x16 = BufRange {
        offset: scratch.offset + w_bytes,
        size: scratch.size - w_bytes,
        ..scratch
    };
    f16_rows(gpu, rec, descs, x, w.ncols, n, ld, x16)?;
    let x = Act::packed(x16, ld);
    // Each piece is dequantized into the scratch just before its product reads it (unless
    // prestaged).
    let mut stage = |rec: &mut Recorder, descs: &mut DescriptorCache, i: usize| {
        let staged = staged_piece(w, i, scratch)?;
        if !prestaged {
            dequant_f16(gpu, rec, descs, w, i, staged)?;
        }
        Ok((staged, ld * 2))
    };
    record_tiled(gpu, rec, descs, &tile, w, &mut stage, x, y, n, out)
}

/// The staged product's kernel for `n` tokens: matmul_cm2.comp's workgroup-scope tile where the
/// device has VK_NV_cooperative_matrix2 (unless `RAWRXD_CM2=0`), else matmul_coopmat.comp's "s"
/// tile. Both read the same staged f16 rows.
///
/// A driver that offers the extension but fails to build the tile's pipeline is logged once and
/// not asked again in this process; the staged products then take matmul_coopmat's tile.
fn staged_tile(gpu: &Gpu, n: usize) -> VkResult<Tile> {
    static CM2_REJECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    use std::sync::atomic::Ordering::Relaxed;
    // A tile the device does not offer or this build lacks: matmul_coopmat's, silently.
    let cm2 = cm2_shape(n)
        .filter(|_| !CM2_REJECTED.load(Relaxed))
        .and_then(|shape| named_staged_tile(gpu, &format!("cm2_{shape}")).ok());
    let Some(tile) = cm2 else {
        return named_staged_tile(gpu, "s");
    };
    match gpu.kernel(&tile_spec(&tile)) {
        Ok(_) => Ok(tile),
        Err(e) => {
            if !CM2_REJECTED.swap(true, Relaxed) {
                log::warn!(
                    "{}: the matmul_cm2 pipeline failed ({e}); prompt products use \
                     matmul_coopmat instead (RAWRXD_CM2=0 does so from the start)",
                    gpu.caps().name
                );
            }
            named_staged_tile(gpu, "s")
        }
    }
}

/// The staged product's kernel by name (see [`matmul_coopmat_staged`]); an error when this
/// build or device lacks it.
fn named_staged_tile(gpu: &Gpu, name: &str) -> VkResult<Tile> {
    let Some(shape) = name.strip_prefix("cm2_") else {
        let staged_name = format!("matmul_coopmat_{name}_{COOPMAT_EXT}");
        let mm = shaders::find(&staged_name).ok_or(VulkanError::MissingShader(staged_name))?;
        return coopmat_tile(gpu, name, mm.name);
    };
    let variant = format!("matmul_cm2_{shape}_coopmat2");
    let v = shaders::find(&variant).ok_or(VulkanError::MissingShader(variant))?;
    let (bm, bn, wg) = cm2_dims(shape);
    if !gpu.caps().nv_coopmat2(wg, bm.max(bn)) {
        return Err(VulkanError::invalid(
            "matmul_cm2",
            format!("the device has no VK_NV_cooperative_matrix2 for {wg}-lane {bm}x{bn} tiles"),
        ));
    }
    Ok(Tile {
        variant: v.name,
        label: "matmul_cm2",
        bm,
        bn,
        wg,
    })
}

/// Which matmul_cm2.comp tile takes `n` tokens, if any ([`named_staged_tile`] then checks that
/// the device offers it): none with `RAWRXD_CM2=0`; `RAWRXD_CM2_TILE` (m or s) picks one for
/// tuning runs; else "m" (128 rows x 128 tokens, 4 subgroups) from 65 tokens and "s" (64 x 64,
/// 2 subgroups) below.
fn cm2_shape(n: usize) -> Option<&'static str> {
    static CHOICE: std::sync::OnceLock<(bool, Option<&'static str>)> = std::sync::OnceLock::new();
    let (on, forced) = *CHOICE.get_or_init(|| {
        let forced = match std::env::var("RAWRXD_CM2_TILE").as_deref().map(str::trim) {
            Ok("m") => Some("m"),
            Ok("s") => Some("s"),
            _ => None,
        };
        (!super::env_off("RAWRXD_CM2"), forced)
    });
    on.then(|| forced.unwrap_or(if n > 64 { "m" } else { "s" }))
}

/// Rows, tokens and lanes of a matmul_cm2.comp tile (build.rs `CM2_SHAPES`).
fn cm2_dims(shape: &str) -> (u32, u32, u32) {
    match shape {
        "m" => (128, 128, 128),
        _ => (64, 64, 64),
    }
}

/// Records the dequantization of `w` (one piece) into the weight rows of `scratch`, ahead of its
/// [`matmul_coopmat_staged`] with `prestaged`: recorded while another product runs, it overlaps
/// that product instead of delaying its own. `scratch` must hold [`staged_bytes`]`(w, 0)`.
pub fn prestage(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    scratch: BufRange,
) -> VkResult<()> {
    if w.pieces.len() != 1 {
        return Err(VulkanError::invalid(
            "prestage",
            format!("weights of {} pieces (one only)", w.pieces.len()),
        ));
    }
    dequant_f16(gpu, rec, descs, w, 0, staged_piece(w, 0, scratch)?)
}

/// Where the f16 rows of piece `i` of `w` lie in a staging `scratch` (its start): what
/// [`dequant_f16`] writes and the staged product reads; an error when `scratch` is shorter.
fn staged_piece(w: &WeightMatrix, i: usize, scratch: BufRange) -> VkResult<BufRange> {
    let size = (w.pieces[i].nrows * staged_ld(w) * 2) as u64;
    if scratch.size < size {
        return Err(VulkanError::invalid(
            "matmul_coopmat",
            format!("staging scratch of {} bytes, {size} needed", scratch.size),
        ));
    }
    Ok(BufRange { size, ..scratch })
}

/// A tiled matrix-product variant: its workgroup covers `bm` rows x `bn` tokens with `wg` lanes.
struct Tile {
    variant: &'static str,
    label: &'static str,
    bm: u32,
    bn: u32,
    wg: u32,
}

/// Where a tiled product reads piece `i` of its weights: records whatever prepares them and
/// returns their range and bytes per row.
type PieceWeights<'a> =
    dyn FnMut(&mut Recorder, &mut DescriptorCache, usize) -> VkResult<(BufRange, usize)> + 'a;

/// The weights as uploaded: each piece's own range, raw GGUF rows.
fn raw_pieces(
    w: &WeightMatrix,
) -> impl FnMut(&mut Recorder, &mut DescriptorCache, usize) -> VkResult<(BufRange, usize)> + '_ {
    |_, _, i| Ok((w.pieces[i].range, w.row_bytes))
}

/// The pipeline of a tiled product variant.
fn tile_spec(tile: &Tile) -> KernelSpec {
    KernelSpec {
        variant: tile.variant.to_string(),
        bindings: 3,
        push_size: std::mem::size_of::<MatmulPush>() as u32,
        spec: vec![],
        local_size: tile.wg,
        subgroup_sized: false,
    }
}

/// Records one dispatch of a tiled product (push constants [`MatmulPush`]) per weight piece,
/// reading the piece where `weights` says.
#[allow(clippy::too_many_arguments)]
fn record_tiled(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    tile: &Tile,
    w: &WeightMatrix,
    weights: &mut PieceWeights<'_>,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    if out == Output::Glu {
        return Err(VulkanError::invalid(
            tile.label,
            "GLU output is matvec-only",
        ));
    }
    let kernel = gpu.kernel(&tile_spec(tile))?;
    for (i, piece) in w.pieces.iter().enumerate() {
        let (range, row_bytes) = weights(rec, descs, i)?;
        let push = MatmulPush {
            ncols: u32_of("ncols", w.ncols)?,
            nrows: u32_of("nrows", piece.nrows)?,
            row_bytes: u32_of("row_bytes", row_bytes)?,
            ntok: u32_of("ntok", n)?,
            x_off: u32_of("x_off", x.off)?,
            x_stride: u32_of("x_stride", x.stride)?,
            y_off: u32_of("y_off", y.off + piece.row_start)?,
            y_stride: u32_of("y_stride", y.stride)?,
            flags: u32::from(out == Output::Accumulate),
        };
        let groups = [
            (piece.nrows as u32).div_ceil(tile.bm),
            (n as u32).div_ceil(tile.bn),
            1,
        ];
        let bytes = (piece.nrows * row_bytes + n * (w.ncols + piece.nrows) * 4) as u64;
        rec.dispatch(
            descs,
            &kernel,
            &[
                Binding::read(range),
                Binding::read(x.range),
                Binding::write(y.range),
            ],
            push_bytes(&push),
            groups,
            tile.label,
            bytes,
        )?;
    }
    Ok(())
}

/// The most vectors [`mul`] hands to matvec before it switches to the tiled matmul:
/// [`MATVEC_MAX_BATCH`], or `$RAWRXD_MATVEC_MAX_BATCH` (1..=16, for tuning runs).
pub fn matvec_batch_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        super::env_in(
            "RAWRXD_MATVEC_MAX_BATCH",
            1..=MATVEC_MAX_BATCH,
            MATVEC_MAX_BATCH,
        )
    })
}

/// The kernel that multiplies a batch of vectors by a weight matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// matvec.comp: decode, up to [`MATVEC_MAX_BATCH`] vectors.
    Matvec,
    /// matvec_q8.comp: decode on Q8 activations with integer dot products (see
    /// `matvec_q8`); needs activation scratch, so only an engine takes it.
    MatvecQ8,
    /// matmul.comp: tiled, f32 FMAs.
    Matmul,
    /// matmul_coopmat.comp on tensor cores, with its tile shape ("w" or "d").
    Coopmat(&'static str),
}

/// The fewest vectors that go to the tensor-core matmul when the device has it:
/// `$RAWRXD_COOPMAT_MIN_BATCH` (1..=4096, for tuning runs), else 17: prompts, not decode steps
/// (on an H100 the 32x16 decode tile lost to matvec.comp at every batch of 2..16, see
/// docs/BENCHMARKS.md). `RAWRXD_COOPMAT=0` turns the
/// tensor-core path off (every product then runs as on a device without it).
pub fn coopmat_min_batch() -> Option<usize> {
    static MIN: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| {
        if super::env_off("RAWRXD_COOPMAT") {
            return None;
        }
        Some(super::env_in("RAWRXD_COOPMAT_MIN_BATCH", 1..=4096, 17))
    })
}

/// The tensor-core tile shape for `n` vectors: "w" (128 rows x 64 tokens) from 17, else "d"
/// (32 x 16).
fn coopmat_shape(n: usize) -> &'static str {
    if n > 16 {
        "w"
    } else {
        "d"
    }
}

/// True when `gpu` runs the tensor-core matmul for weights of `ty`: the device has the NV
/// cooperative-matrix shape it needs, this build compiled the variant, and it is not turned off.
pub fn has_coopmat(gpu: &Gpu, ty: GgmlType) -> bool {
    coopmat_min_batch().is_some()
        && gpu.caps().nv_coopmat_f16_16x16()
        && shaders::for_format_ext("matmul_coopmat", ty, "w", COOPMAT_EXT).is_some()
}

/// Which kernel [`mul`] uses for `n` vectors of weights of type `ty`.
pub fn route(gpu: &Gpu, ty: GgmlType, n: usize) -> Route {
    route_with(gpu, ty, n, true, false)
}

/// As [`route`], never taking the tensor-core path unless `coopmat` and never the Q8 decode
/// path unless `int_dot` (an engine's choices; [`route`] passes coopmat only).
pub fn route_with(gpu: &Gpu, ty: GgmlType, n: usize, coopmat: bool, int_dot: bool) -> Route {
    if coopmat && has_coopmat(gpu, ty) && coopmat_min_batch().is_some_and(|m| n >= m) {
        Route::Coopmat(coopmat_shape(n))
    } else if n <= matvec_batch_limit() {
        if int_dot && super::matvec_q8::has_matvec_q8(gpu, ty) {
            Route::MatvecQ8
        } else {
            Route::Matvec
        }
    } else {
        Route::Matmul
    }
}

/// Records Y = W X with the kernel [`route`] picks.
#[allow(clippy::too_many_arguments)]
pub fn mul(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    mul_via(route(gpu, w.ty, n), gpu, rec, descs, w, x, y, n, out)
}

/// Records Y = W X with the kernel `route` names.
#[allow(clippy::too_many_arguments)]
pub fn mul_via(
    route: Route,
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    x: Act,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    match route {
        Route::Matvec => matvec(gpu, rec, descs, w, x, y, n, out),
        Route::MatvecQ8 => Err(VulkanError::invalid(
            "mul_via",
            "the Q8 decode route needs activation scratch (see matvec_q8)",
        )),
        Route::Matmul => matmul(gpu, rec, descs, w, x, y, n, out),
        Route::Coopmat(shape) => matmul_coopmat(gpu, rec, descs, w, x, y, n, out, shape),
    }
}

/// Records y[t] = row ids[ids_off + t] of W (dequantized) for t < n. Ids must be < W's rows.
#[allow(clippy::too_many_arguments)]
pub fn get_rows(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    ids: BufRange,
    ids_off: usize,
    y: Act,
    n: usize,
) -> VkResult<()> {
    let caps = gpu.caps();
    let variant = shaders::for_format("get_rows", w.ty, "")
        .ok_or_else(|| VulkanError::MissingShader(format!("get_rows_{}", w.ty)))?;
    let wg = super::wg_at_least(caps, 64);
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 3,
        push_size: std::mem::size_of::<GetRowsPush>() as u32,
        spec: vec![wg],
        local_size: wg,
        subgroup_sized: false,
    })?;
    let units = w.ncols.div_ceil(32) as u32;
    for piece in &w.pieces {
        let push = GetRowsPush {
            ncols: u32_of("ncols", w.ncols)?,
            row_bytes: u32_of("row_bytes", w.row_bytes)?,
            row_start: u32_of("row_start", piece.row_start)?,
            nrows: u32_of("nrows", piece.nrows)?,
            ids_off: u32_of("ids_off", ids_off)?,
            y_off: u32_of("y_off", y.off)?,
            y_stride: u32_of("y_stride", y.stride)?,
        };
        rec.dispatch(
            descs,
            &kernel,
            &[
                Binding::read(piece.range),
                Binding::read(ids),
                Binding::write(y.range),
            ],
            push_bytes(&push),
            [units.div_ceil(wg), u32_of("tokens", n)?, 1],
            "get_rows",
            (n * (w.row_bytes + w.ncols * 4)) as u64,
        )?;
    }
    Ok(())
}
