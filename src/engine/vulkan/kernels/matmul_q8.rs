//! Batched decode products on integer tensor-core tiles (shader matmul_q8.comp): the same Q8
//! activations and weight pieces as [`matvec_q8`](super::matvec_q8), but each block's integer
//! sums for 16 rows and 8 vectors come from one 16x8x32 signed 8-bit tile product
//! (GL_NV_integer_cooperative_matrix) instead of 8 four-way dot products per row, vector and
//! group. This is the shape of llama.cpp's CUDA `mmq` kernels.
//!
//! Invariants: the input is what [`quantize_q8`](super::matvec_q8::quantize_q8) writes for `n`
//! vectors in `Q8Order::for_product(ty, n)`; 2 <= `n` <= 16. A workgroup owns 16 output rows
//! and splits the columns between its warps ([`warps`]); the warps' sums are added in warp order,
//! so results are deterministic, but they are not bit-equal to the one-vector product (different
//! f32 summation order): engines take this path only with tensor cores on
//! (`VulkanEngineOptions::coopmat`), as they do for the f16 tensor-core matmul.
//! [`Tiles::Emulated`] runs the same shader with the tile products computed lane by lane
//! (devices without the extension: tests).

use super::super::buffer::BufRange;
use super::super::caps::DeviceCaps;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::super::shaders;
use super::matvec::{self, Act, Output};
use super::matvec_q8::{q8_dispatches, q8_layout, MatvecQ8Push, Q8Dispatch, Q8Order};
use super::{env_in, linear_groups, push_bytes, WeightMatrix};
use crate::quant::GgmlType;

/// The shader extension of the tensor-core build (build.rs's `EXT_COOPMAT_NV_I8`).
const MMA_EXT: &str = "coopmat_nv_i8";
/// The emulated build: integer dot products only (build.rs's `EXT_INTDOT_SPV`), shape "emu".
const EMU_EXT: &str = "intdot_spv";

/// Most vectors one product takes (two 8-vector tiles).
pub const MAX_BATCH: usize = 16;

/// How the tile products run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiles {
    /// On the tensor cores (needs [`DeviceCaps::nv_coopmat_s8_16x8x32`]).
    Tensor,
    /// Lane by lane from the same shared-memory tiles (any device with integer dot products).
    Emulated,
}

impl Tiles {
    fn variant(self, ty: GgmlType) -> Option<&'static shaders::ShaderVariant> {
        match self {
            Tiles::Tensor => shaders::for_format_ext("matmul_q8", ty, "", MMA_EXT),
            Tiles::Emulated => shaders::for_format_ext("matmul_q8", ty, "emu", EMU_EXT),
        }
    }
}

/// Which tiles engines use for batches, from `RAWRXD_MMQ`: unset or `0` none (the default:
/// on an H100 these tiles are still slower than matvec_q8, see docs/BENCHMARKS.md), `1` the
/// tensor cores where the device has them, `emu` the emulated tiles on any device with integer
/// dot products (slow; for checking the path's numerics on devices without the tiles).
pub fn engine_tiles() -> Option<Tiles> {
    static MODE: std::sync::OnceLock<Option<Tiles>> = std::sync::OnceLock::new();
    *MODE.get_or_init(
        || match std::env::var("RAWRXD_MMQ").as_deref().map(str::trim) {
            Ok("1") => Some(Tiles::Tensor),
            Ok("emu") => Some(Tiles::Emulated),
            _ => None,
        },
    )
}

/// The smallest batch that takes the tiles: `RAWRXD_MMQ_MIN_BATCH` (2 ..= 16, default 2).
fn min_batch() -> usize {
    static MIN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| env_in("RAWRXD_MMQ_MIN_BATCH", 2..=MAX_BATCH, 2))
}

/// Whether the device and this build have `tiles` for weights of `ty`.
pub fn available(gpu: &Gpu, tiles: Tiles, ty: GgmlType) -> bool {
    match tiles {
        Tiles::Tensor => has_tensor_tiles(gpu, ty),
        Tiles::Emulated => has_emulated(gpu, ty),
    }
}

/// Whether an engine asking for `tiles` runs its product of `n` vectors of `ty` on them: they
/// are [`available`], and `n` is within [`min_batch`] ..= 16.
pub fn takes(gpu: &Gpu, tiles: Tiles, ty: GgmlType, n: usize) -> bool {
    available(gpu, tiles, ty) && n >= min_batch() && n <= MAX_BATCH
}

/// True when `gpu` can run products of `ty` on integer tensor-core tiles: the device has the
/// tile shape and integer dot products, and this build compiled the variant.
pub fn has_tensor_tiles(gpu: &Gpu, ty: GgmlType) -> bool {
    let caps = gpu.caps();
    caps.nv_coopmat_s8_16x8x32()
        && caps.integer_dot_product.is_some()
        && caps.api_version_raw >= ash::vk::API_VERSION_1_3
        && Tiles::Tensor.variant(ty).is_some()
}

/// True when this build has the emulated variant for `ty` and the device the integer dot
/// products it needs.
pub fn has_emulated(gpu: &Gpu, ty: GgmlType) -> bool {
    let caps = gpu.caps();
    caps.integer_dot_product.is_some()
        && caps.api_version_raw >= ash::vk::API_VERSION_1_3
        && Tiles::Emulated.variant(ty).is_some()
}

/// Formats whose scales cover 16 elements: each half block is its own tile product.
fn halves(ty: GgmlType) -> u64 {
    match ty {
        GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q6K => 2,
        _ => 1,
    }
}

/// Activation blocks per step (the shader's SB): `RAWRXD_MMQ_SB`, 4 (default) or 8 (tuning
/// runs).
fn step_blocks() -> u32 {
    static SB: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *SB.get_or_init(
        || match std::env::var("RAWRXD_MMQ_SB").as_deref().map(str::trim) {
            Ok("8") => 8,
            _ => 4,
        },
    )
}

/// Most warps per workgroup: `RAWRXD_MMQ_WARPS` (1 ..= 8, default 8; tuning runs).
fn max_warps() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| env_in("RAWRXD_MMQ_WARPS", 1..=8, 8) as u64)
}

/// Shared memory one warp of matmul_q8.comp uses for `n` vectors and steps of `sb` blocks (the
/// shader's per-warp arrays: int8 weight tiles, activation tile, scales and mins, activation
/// pairs, Q2_K's quant sums, partial sums).
fn warp_shared_bytes(ty: GgmlType, n: usize, glu: bool, sb: u64) -> u64 {
    let mats = if glu { 2 } else { 1 };
    let nv = n.div_ceil(8) as u64 * 8;
    let word_min = if ty == GgmlType::Q2K { nv * sb * 8 } else { 0 };
    mats * sb * 512
        + nv * sb * halves(ty) * 32
        + mats * sb * 256
        + nv * sb * 8
        + word_min
        + mats * 1024
}

/// Warps per workgroup (the K split): as many as fit the device's shared memory next to the
/// shader's fixed arrays, at most [`max_warps`] and at most one per step of the row.
fn warps(caps: &DeviceCaps, ty: GgmlType, n: usize, glu: bool, ncols: usize, sb: u32) -> u32 {
    let fixed = 512 + 16;
    let limit = u64::from(caps.limits.max_compute_shared_memory_size).saturating_sub(fixed);
    let fit = (limit / warp_shared_bytes(ty, n, glu, u64::from(sb))).max(1);
    let steps = ncols.div_ceil(32 * sb as usize) as u64;
    let by_invocations = u64::from(caps.limits.max_workgroup_invocations / 32).max(1);
    fit.min(max_warps()).min(steps.max(1)).min(by_invocations) as u32
}

/// Records y = W x (per `out`) for the `n` vectors (2 ..= 16) [`quantize_q8`] wrote into `xq`
/// in `Q8Order::for_product(w.ty, n)`, on tensor-core tiles or emulated ones.
///
/// [`quantize_q8`]: super::matvec_q8::quantize_q8
#[allow(clippy::too_many_arguments)]
pub fn matmul_q8(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    xq: BufRange,
    y: Act,
    n: usize,
    out: Output,
    tiles: Tiles,
) -> VkResult<()> {
    if !(2..=MAX_BATCH).contains(&n) {
        return Err(VulkanError::invalid(
            "matmul_q8",
            format!("{n} vectors (takes 2 ..= {MAX_BATCH})"),
        ));
    }
    let (out_rows, glu_off) = matvec::decode_rows("matmul_q8", w, n, out)?;
    let (nblocks, ds_base) = q8_layout("matmul_q8", xq, w.ncols, n)?;
    let caps = gpu.caps();
    let variant = tiles.variant(w.ty).ok_or_else(|| {
        VulkanError::MissingShader(format!("matmul_q8_{} ({tiles:?} tiles)", w.ty))
    })?;
    let glu = out == Output::Glu;
    let sb = step_blocks();
    let ks = warps(caps, w.ty, n, glu, w.ncols, sb);
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 3,
        push_size: std::mem::size_of::<MatvecQ8Push>() as u32,
        spec: vec![
            ks * 32,
            ks,
            n as u32,
            u32::from(glu),
            Q8Order::for_product(w.ty, n) as u32,
            sb,
        ],
        local_size: ks * 32,
        // The tensor-core build's warps are subgroups of 32 (the capability check asks for that
        // size); the emulated one syncs the whole workgroup and runs with any subgroup size.
        subgroup_sized: tiles == Tiles::Tensor,
    })?;
    for d in q8_dispatches(
        w,
        y,
        n,
        out,
        (out_rows, glu_off),
        (nblocks, ds_base),
        (0, 0),
    )? {
        let Q8Dispatch {
            piece,
            rows,
            push,
            bytes,
        } = d;
        let groups = linear_groups(caps, (rows as u32).div_ceil(16));
        rec.dispatch(
            descs,
            &kernel,
            &[
                Binding::read(piece.range),
                Binding::read(xq),
                Binding::write(y.range),
            ],
            push_bytes(&push),
            groups,
            "matmul_q8",
            bytes,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{halves, warp_shared_bytes, GgmlType};

    /// The host's per-warp shared memory mirrors the shader's arrays for the largest cases
    /// (sizes written out from matmul_q8.comp's declarations).
    #[test]
    fn warp_shared_bytes_mirror_the_shaders_arrays() {
        // GLU, Q6_K, 16 vectors: as4 2x16x8 uvec4, xs4 16x(4x2x2) uvec4, fs+ms 2x(2x16x8)
        // floats, xds 16x4 vec2, red 2x16x16 floats.
        let want = 2 * 16 * 8 * 16 + 16 * 16 * 16 + 2 * 2 * 16 * 8 * 4 + 16 * 4 * 8 + 2 * 256 * 4;
        assert_eq!(warp_shared_bytes(GgmlType::Q6K, 16, true, 4), want);
        assert_eq!(halves(GgmlType::Q6K), 2);
        // Q4_K, 16 vectors, steps of 8 blocks: as4 16x16 uvec4, xs4 16x(8x2) uvec4, fs+ms
        // 2x(16x16) floats, xds 16x8 vec2, red 16x16 floats.
        let want = 16 * 16 * 16 + 16 * 16 * 16 + 2 * 16 * 16 * 4 + 16 * 8 * 8 + 256 * 4;
        assert_eq!(warp_shared_bytes(GgmlType::Q4K, 16, false, 8), want);
        // Q2_K adds its per-slice quant sums (16 vectors x 8 slices of f32).
        assert_eq!(
            warp_shared_bytes(GgmlType::Q2K, 16, false, 4)
                - warp_shared_bytes(GgmlType::Q6K, 16, false, 4),
            16 * 8 * 4
        );
    }
}
