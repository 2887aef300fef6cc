//! Decode products on Q8 activations with integer dot products (shaders quantize_q8.comp and
//! matvec_q8.comp, format pieces in piece_q8.glsl): x is first quantized per 32-element block to
//! signed bytes and a scale (ggml's Q8_1 rounding), then each product multiplies the weights'
//! integer values by those bytes four at a time (OpSDot) and scales the int32 sums in f32. This
//! is how llama.cpp's CUDA and Vulkan backends decode (mmvq, mul_mat_vecq): x costs one byte an
//! element instead of four, and one instruction does four multiply-adds.
//!
//! Invariants: the activation scratch holds, for `n` vectors of `ncols`, the quants of vector c
//! at word `c * nblocks * 8` and its (d, d·Σq) pairs from vec2 index `ds_base(nblocks, n)`
//! ([`q8_bytes`] bytes in all); a product reads the scratch its quantize wrote for the same
//! `ncols` and `n`. A row's sum does not depend on `n`, so batched results equal single ones.
//! Numerics differ from matvec.comp's f32 products by x's rounding to 8 bits (relative error
//! about 2^-8 per element, averaging out over a row).

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::caps::DeviceCaps;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::super::shaders;
use super::matvec::{self, Act, MatvecTuning, Output};
use super::{linear_groups, push_bytes, subgroup_wg, u32_of, WeightMatrix};
use crate::quant::GgmlType;

/// The optional shader extension the product needs (build.rs's `EXT_INTDOT_SPV`).
const INTDOT_EXT: &str = "intdot_spv";

/// Push constants of quantize_q8.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct QuantizeQ8Push {
    pub ncols: u32,
    pub nblocks: u32,
    pub batch: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub ds_base: u32,
}

/// Push constants of matvec_q8.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatvecQ8Push {
    pub ncols: u32,
    pub nrows: u32,
    pub row_bytes: u32,
    pub batch: u32,
    pub nblocks: u32,
    pub ds_base: u32,
    pub y_off: u32,
    pub y_stride: u32,
    pub flags: u32,
    pub glu_off: u32,
    pub oq_nblocks: u32,
    pub oq_ds_base: u32,
}

/// 32-element activation blocks of a vector of `ncols`.
fn nblocks(ncols: usize) -> usize {
    ncols.div_ceil(32)
}

/// The vec2 index of the first (d, s) pair: after `n` vectors' quants (8 words a block).
fn ds_base(nblocks: usize, n: usize) -> usize {
    n * nblocks * 4
}

/// Bytes of activation scratch `n` quantized vectors of `ncols` take.
pub fn q8_bytes(ncols: usize, n: usize) -> u64 {
    (n * nblocks(ncols) * 40) as u64
}

/// The push constants (blocks per vector, index of the first (d, s) pair) of Q8 scratch `r`
/// holding `n` vectors of `ncols`, once `r` is checked to be large enough (`kernel` names the
/// caller in the error). Every kernel that writes or reads Q8 activations takes them from here.
pub fn q8_layout(
    kernel: &'static str,
    r: BufRange,
    ncols: usize,
    n: usize,
) -> VkResult<(u32, u32)> {
    if r.size < q8_bytes(ncols, n) {
        return Err(VulkanError::invalid(
            kernel,
            format!(
                "{} bytes of Q8 activations for {n} vectors of {ncols}",
                r.size
            ),
        ));
    }
    let nb = nblocks(ncols);
    Ok((u32_of("nblocks", nb)?, u32_of("ds_base", ds_base(nb, n))?))
}

/// True unless `RAWRXD_INTDOT=0` (tuning and comparison runs: every decode product then runs in
/// f32 on matvec.comp).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !std::env::var("RAWRXD_INTDOT").is_ok_and(|v| v.trim() == "0"))
}

/// Whether an engine's GLU product of `n` vectors writes its output's Q8 form itself
/// ([`matvec_q8_glu_into`]: one dispatch fewer per layer; the workgroup completing each 32-row
/// block quantizes it) instead of leaving it to a quantize pass: for one vector, where
/// [`glu_q8_fits`]. `RAWRXD_GLU_Q8=0` turns it off, `=all` on for batches too (comparison
/// runs). Measured on an H100 (7B Q4_K_M, docs/BENCHMARKS.md): one vector 285-289 -> 292-299
/// t/s; batches lost (B = 12: 993 -> 972 tok/s), so they keep the quantize pass.
pub fn glu_q8_pays(caps: &DeviceCaps, n: usize) -> bool {
    static MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mode = MODE.get_or_init(|| std::env::var("RAWRXD_GLU_Q8").unwrap_or_default());
    let on = match mode.trim() {
        "0" => false,
        "all" => true,
        _ => n == 1,
    };
    on && glu_q8_fits(caps, n)
}

/// Whether a GLU product of `n` vectors can write its Q8 output by 32-row blocks:
/// `MatvecTuning::for_q8`'s rows per workgroup divide 32 and its workgroup size is a multiple of
/// 32 (a block's elements then lie in consecutive invocations).
pub fn glu_q8_fits(caps: &DeviceCaps, n: usize) -> bool {
    let t = MatvecTuning::for_q8(caps, n);
    let wg = subgroup_wg(caps, t.subgroups);
    let rows = (wg / caps.subgroup.size.max(1)) * t.rows_per_subgroup;
    rows > 0 && 32 % rows == 0 && wg % 32 == 0
}

/// True when `gpu` runs [`matvec_q8`] for weights of `ty`: the device has integer dot products
/// (Vulkan 1.3's shaderIntegerDotProduct, enabled by `Device::new`), this build compiled the
/// variant (quantized formats), and it is not turned off.
pub fn has_matvec_q8(gpu: &Gpu, ty: GgmlType) -> bool {
    let caps = gpu.caps();
    enabled()
        && caps.integer_dot_product.is_some()
        && caps.api_version_raw >= ash::vk::API_VERSION_1_3
        && shaders::for_format_ext("matvec_q8", ty, "", INTDOT_EXT).is_some()
}

/// Records the Q8 form of `n` vectors of `ncols` elements of `x` into `out` (quantize_q8.comp).
pub fn quantize_q8(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    ncols: usize,
    n: usize,
    out: BufRange,
) -> VkResult<()> {
    let (nblocks, ds_base) = q8_layout("quantize_q8", out, ncols, n)?;
    let variant = shaders::find("quantize_q8")
        .ok_or_else(|| VulkanError::MissingShader("quantize_q8".into()))?;
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 2,
        push_size: std::mem::size_of::<QuantizeQ8Push>() as u32,
        spec: vec![],
        local_size: 64,
        subgroup_sized: false,
    })?;
    let push = QuantizeQ8Push {
        ncols: u32_of("ncols", ncols)?,
        nblocks,
        batch: u32_of("batch", n)?,
        x_off: u32_of("x_off", x.off)?,
        x_stride: u32_of("x_stride", x.stride)?,
        ds_base,
    };
    rec.dispatch(
        descs,
        &kernel,
        &[Binding::read(x.range), Binding::write(out)],
        push_bytes(&push),
        [nblocks.div_ceil(64), u32_of("batch", n)?, 1],
        "quantize_q8",
        (n * ncols * 4) as u64 + q8_bytes(ncols, n),
    )
}

/// Records y = W x (per `out`) for the `n` vectors [`quantize_q8`] wrote into `xq` (`n` <=
/// MATVEC_MAX_BATCH), with the workgroup shape of `MatvecTuning::for_q8`.
#[allow(clippy::too_many_arguments)]
pub fn matvec_q8(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    xq: BufRange,
    y: Act,
    n: usize,
    out: Output,
) -> VkResult<()> {
    let tuning = MatvecTuning::for_q8(gpu.caps(), n);
    matvec_q8_tuned(gpu, rec, descs, w, xq, y, n, out, tuning, None)
}

/// As [`matvec_q8`] for `Output::Glu`, also writing y as Q8 activations into `q8_out` (the
/// layout [`quantize_q8`] writes for `n` vectors of `w.nrows / 2`; must not overlap `xq`), so the
/// next product needs no quantize pass: each workgroup counts itself done on the counter of its
/// 32-row output block (`counters`: u32, one per block, zeroed before first use and left zeroed
/// by every dispatch) and the one completing a block quantizes it.
#[allow(clippy::too_many_arguments)]
pub fn matvec_q8_glu_into(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    xq: BufRange,
    y: Act,
    n: usize,
    q8_out: BufRange,
    counters: BufRange,
) -> VkResult<()> {
    let tuning = MatvecTuning::for_q8(gpu.caps(), n);
    matvec_q8_tuned(
        gpu,
        rec,
        descs,
        w,
        xq,
        y,
        n,
        Output::Glu,
        tuning,
        Some((q8_out, counters)),
    )
}

/// As [`matvec_q8`] with an explicit workgroup shape (tuning runs and tests), and for the GLU
/// optionally the Q8 output and counters of [`matvec_q8_glu_into`].
#[allow(clippy::too_many_arguments)]
pub fn matvec_q8_tuned(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    xq: BufRange,
    y: Act,
    n: usize,
    out: Output,
    tuning: MatvecTuning,
    q8_out: Option<(BufRange, BufRange)>,
) -> VkResult<()> {
    let (out_rows, glu_off) = matvec::decode_rows("matvec_q8", w, n, out)?;
    let (nblocks, ds_base) = q8_layout("matvec_q8", xq, w.ncols, n)?;
    let caps = gpu.caps();
    let variant = shaders::for_format_ext("matvec_q8", w.ty, "", INTDOT_EXT)
        .ok_or_else(|| VulkanError::MissingShader(format!("matvec_q8_{}_{INTDOT_EXT}", w.ty)))?;
    let (nr, unroll) = (tuning.rows_per_subgroup, tuning.unroll);
    let wg = subgroup_wg(caps, tuning.subgroups);
    let rows_per_wg = (wg / caps.subgroup.size.max(1)) * nr;
    let (oq_nblocks, oq_ds_base) = match q8_out {
        Some(_)
            if out != Output::Glu || rows_per_wg == 0 || 32 % rows_per_wg != 0 || wg % 32 != 0 =>
        {
            return Err(VulkanError::invalid(
                "matvec_q8",
                format!(
                    "Q8 output needs GLU, rows per workgroup dividing 32 ({rows_per_wg}) and \
                     workgroups of a multiple of 32 ({wg})"
                ),
            ))
        }
        Some((r, _)) if r.overlaps(&xq) => {
            return Err(VulkanError::invalid(
                "matvec_q8",
                "the Q8 output overlaps the Q8 input",
            ))
        }
        Some((_, c)) if (c.size as usize) < out_rows.div_ceil(32) * 4 => {
            return Err(VulkanError::invalid(
                "matvec_q8",
                format!("{} bytes of counters for {out_rows} rows", c.size),
            ))
        }
        Some((r, _)) => q8_layout("matvec_q8", r, out_rows, n)?,
        None => (0, 0),
    };
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 5,
        push_size: std::mem::size_of::<MatvecQ8Push>() as u32,
        spec: vec![
            wg,
            rows_per_wg,
            nr,
            n as u32,
            u32::from(out == Output::Glu),
            unroll,
            u32::from(q8_out.is_some()),
        ],
        local_size: wg,
        subgroup_sized: true,
    })?;
    for piece in &w.pieces {
        let rows = if out == Output::Glu {
            out_rows
        } else {
            piece.nrows
        };
        let push = MatvecQ8Push {
            ncols: u32_of("ncols", w.ncols)?,
            nrows: u32_of("nrows", rows)?,
            row_bytes: u32_of("row_bytes", w.row_bytes)?,
            batch: n as u32,
            nblocks,
            ds_base,
            y_off: u32_of("y_off", y.off + piece.row_start)?,
            y_stride: u32_of("y_stride", y.stride)?,
            flags: u32::from(out == Output::Accumulate),
            glu_off: u32_of("glu_off", glu_off)?,
            oq_nblocks,
            oq_ds_base,
        };
        let groups = linear_groups(caps, (rows as u32).div_ceil(rows_per_wg));
        let bytes =
            piece.nrows as u64 * w.row_bytes as u64 + q8_bytes(w.ncols, n) + (n * rows * 4) as u64;
        // Without Q8 output bindings 3 and 4 are declared but never touched: y stands in.
        rec.dispatch(
            descs,
            &kernel,
            &[
                Binding::read(piece.range),
                Binding::read(xq),
                Binding::write(y.range),
                Binding::write(q8_out.map_or(y.range, |(r, _)| r)),
                Binding::write(q8_out.map_or(y.range, |(_, c)| c)),
            ],
            push_bytes(&push),
            groups,
            "matvec_q8",
            bytes,
        )?;
    }
    Ok(())
}
