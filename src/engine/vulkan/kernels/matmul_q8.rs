//! Batched decode products on integer tensor-core tiles (shader matmul_q8.comp): the same Q8
//! activations as [`matvec_q8`](super::matvec_q8), but each block's integer sums for 16 rows and
//! 8 vectors come from one 16x8x32 signed 8-bit tile product (GL_NV_integer_cooperative_matrix)
//! instead of 8 four-way dot products per row, vector and group. This is the shape of
//! llama.cpp's CUDA `mmq` kernels.
//!
//! Each lane builds its parts of the tiles in registers from memory (no shared-memory stage), in
//! the fragment layout [`assumed_layout`]; a device whose layout differs ([`layout_matches`],
//! one probe dispatch) keeps matvec_q8. Every quantized format has lane fragments (Q2_K with a
//! second tile product for its 16-element mins). Where a K-quant matrix (Q2_K to Q6_K) keeps a
//! copy in tile order ([`WeightPiece::tile_order`]) the products read that: each warp load then
//! reads whole 512-byte runs (on an H100, 7B Q4_K_M: +5–10 % at 12–16 sequences,
//! docs/BENCHMARKS.md).
//!
//! [`WeightPiece::tile_order`]: super::weights::WeightPiece::tile_order
//!
//! Invariants: the input is what [`quantize_q8`](super::matvec_q8::quantize_q8) writes for `n`
//! vectors in `Q8Order::for_product(ty, n)`; 1 <= `n` <= 16. A workgroup owns 16 output rows
//! and splits the columns between its warps ([`warps`], which depends on the columns only); the
//! warps' sums are added in warp order, so results are deterministic, but they are not bit-equal
//! to matvec_q8's (different f32 summation order): engines take this path only when asked
//! (`RAWRXD_MMQ`) and with tensor cores on (`VulkanEngineOptions::coopmat`), as they do for the
//! f16 tensor-core matmul. A vector's results do not depend on the other vectors or on `n` (its
//! block sums are exact integers, scaled and added in an order fixed by the row): with the tiles
//! from one vector on ([`min_batch`] 1) batches equal each sequence alone bit for bit.
//! [`Tiles::Emulated`] runs the same shader with the tile products computed lane by lane in the
//! same layout (devices without the extension: tests).

use super::super::buffer::BufRange;
use super::super::caps::DeviceCaps;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::memory::MemoryClass;
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::super::shaders;
use super::matvec::{self, Act, Output};
use super::matvec_q8::{q8_dispatches, q8_layout, MatvecQ8Push, Q8Dispatch, Q8Order};
use super::{env_in, linear_groups, push_bytes, WeightMatrix};
use crate::quant::GgmlType;
use bytemuck::Zeroable;

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
/// batches then equal each sequence alone bit for bit), `1` the tensor cores where the device
/// has them (on an H100, 7B Q4_K_M, with the tile order: +36–40 % at 12 sequences, +78 % at
/// 16, see docs/BENCHMARKS.md), `emu` the emulated tiles on any device with integer dot
/// products (slow; for checking the path's numerics on devices without the tiles).
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

/// The smallest batch that takes the tiles: `RAWRXD_MMQ_MIN_BATCH` (1 ..= 16, default 6: on an
/// H100, 7B Q4_K_M, with the tile order the tiles win from 6 vectors (1133–1137 against
/// 963–976 tok/s; 8 vectors 1491–1514 against 1108–1123) and lose at 4 (769–775 against 820);
/// docs/BENCHMARKS.md). Decode steps run in buckets (`DECODE_BUCKETS`), so 5 sequences take
/// the 6-vector tiles too. 1 puts every product on the tiles, one sequence's too: batches then
/// equal each sequence alone bit for bit, and one sequence decodes at the tiles' speed (on the
/// H100 212 against matvec_q8's 301 t/s: a tile product takes as long for one vector as for
/// twelve).
pub fn min_batch() -> usize {
    static MIN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| env_in("RAWRXD_MMQ_MIN_BATCH", 1..=MAX_BATCH, 6))
}

/// Whether engines taking the tiles also keep the K-quant matrices in the tiles' load order
/// (`WeightPiece::tile_order`), from `RAWRXD_MMQ_TILE_ORDER`: on unless `0` (which saves the
/// copy's device memory for ~5–10 % of the tiles' speed on an H100, docs/BENCHMARKS.md).
pub fn engine_tile_order() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !super::env_off("RAWRXD_MMQ_TILE_ORDER"))
}

/// Whether the device and this build have `tiles` for weights of `ty`.
pub fn available(gpu: &Gpu, tiles: Tiles, ty: GgmlType) -> bool {
    match tiles {
        Tiles::Tensor => has_tensor_tiles(gpu, ty),
        Tiles::Emulated => has_emulated(gpu, ty),
    }
}

/// Whether an engine asking for `tiles` from `min` vectors on (its [`min_batch`]) runs its
/// product of `n` vectors of `ty` on them: they are [`available`], and `n` is within `min`
/// (at least 1) ..= 16.
pub fn takes(gpu: &Gpu, tiles: Tiles, ty: GgmlType, n: usize, min: usize) -> bool {
    n >= min.max(1) && n <= MAX_BATCH && available(gpu, tiles, ty)
}

/// True when `gpu` can run products of `ty` on integer tensor-core tiles: the device has the
/// tile shape and integer dot products, this build compiled the variant (every quantized
/// format), and the tiles' layout is the one the shader assumes
/// ([`layout_matches`]).
pub fn has_tensor_tiles(gpu: &Gpu, ty: GgmlType) -> bool {
    let caps = gpu.caps();
    caps.nv_coopmat_s8_16x8x32()
        && caps.integer_dot_product.is_some()
        && caps.api_version_raw >= ash::vk::API_VERSION_1_3
        && Tiles::Tensor.variant(ty).is_some()
        && layout_matches(gpu)
}

/// True when this build has the emulated variant for `ty` and the device the integer dot
/// products it needs.
pub fn has_emulated(gpu: &Gpu, ty: GgmlType) -> bool {
    let caps = gpu.caps();
    caps.integer_dot_product.is_some()
        && caps.api_version_raw >= ash::vk::API_VERSION_1_3
        && Tiles::Emulated.variant(ty).is_some()
}

/// Most warps per workgroup: `RAWRXD_MMQ_WARPS` (1 ..= 16, default 8; tuning runs).
fn max_warps() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| env_in("RAWRXD_MMQ_WARPS", 1..=16, 8) as u64)
}

/// Pairs of blocks whose weight loads a warp issues before it decodes any: `RAWRXD_MMQ_PG` (1,
/// 2 or 4; 3 counts as 2; default 2), so that several loads are in flight per warp (on an H100,
/// 7B Q4_K_M, 16 vectors: 1 1886 / 1903, 2 1990 / 2025, 4 1820 / 2007 tok/s; docs/BENCHMARKS.md).
fn pair_group() -> u32 {
    static PG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PG.get_or_init(|| match env_in("RAWRXD_MMQ_PG", 1..=4, 2) {
        3 => 2,
        n => n as u32,
    })
}

/// Columns of one warp step (the shader's SB blocks of 32).
const STEP_COLS: usize = 8 * 32;

/// Warps per workgroup (the K split): at most [`max_warps`], one per step of the row, and what
/// the device allows: its invocations, and its shared memory for the shader's per-warp arrays
/// (the final sums of `mats` 16x16 tiles, and the emulation's fragments).
fn warps(caps: &DeviceCaps, ncols: usize, mats: u32, emulated: bool) -> u32 {
    let steps = ncols.div_ceil(STEP_COLS) as u64;
    let by_invocations = u64::from(caps.limits.max_workgroup_invocations / 32).max(1);
    let per_warp = u64::from(mats) * 16 * 16 * 4 + if emulated { 32 * 24 } else { 0 };
    let by_shared = (u64::from(caps.limits.max_compute_shared_memory_size) / per_warp).max(1);
    max_warps()
        .min(steps.max(1))
        .min(by_invocations)
        .min(by_shared) as u32
}

/// The element positions matmul_q8.comp assumes for the tensor-core tiles (PTX's
/// mma.m16n8k32 s8 layout), as its PROBE writes them. Per lane (g, t) = (lane / 4, lane % 4),
/// 32 values:
/// - 16 weight-tile elements as row * 32 + k: element 4R + byte is row g + 8 (R / 2), k 4t +
///   byte + 16 (R % 2) (what NVIDIA's driver 580 reads on an H100);
/// - 8 activation-tile elements as k * 8 + vector: k 4t + byte + 16R, vector g;
/// - 4 sum elements as row * 8 + vector: row g + 8 (i / 2), vector 2t + i % 2;
/// - 4 unused (zero).
pub fn assumed_layout() -> Vec<f32> {
    let mut out = vec![0f32; 32 * 32];
    for (lane, o) in out.chunks_exact_mut(32).enumerate() {
        let (g, t) = (lane / 4, lane % 4);
        for (i, v) in o[..16].iter_mut().enumerate() {
            let (r, by) = (i / 4, i % 4);
            *v = ((g + 8 * (r / 2)) * 32 + 4 * t + by + 16 * (r % 2)) as f32;
        }
        for (i, v) in o[16..24].iter_mut().enumerate() {
            let (r, by) = (i / 4, i % 4);
            *v = ((4 * t + by + 16 * r) * 8 + g) as f32;
        }
        for (i, v) in o[24..28].iter_mut().enumerate() {
            *v = ((g + 8 * (i / 2)) * 8 + 2 * t + i % 2) as f32;
        }
    }
    out
}

/// Whether the device's tensor-core tiles have the layout matmul_q8.comp builds its fragments
/// in ([`assumed_layout`]): one probe dispatch the first time a process asks for a kind of
/// device (the answer is kept per device model and driver: the pipeline-cache UUID, which
/// drivers derive from both). Where the layout differs, batches keep matvec_q8 and the log says
/// what the probe read.
pub fn layout_matches(gpu: &Gpu) -> bool {
    type Key = (u32, u32, u32, String);
    static MATCHES: std::sync::Mutex<Vec<(Key, bool)>> = std::sync::Mutex::new(Vec::new());
    let caps = gpu.caps();
    let same = |k: &Key| {
        (k.0, k.1, k.2) == (caps.vendor_id, caps.device_id, caps.driver_version)
            && k.3 == caps.pipeline_cache_uuid
    };
    // A poisoned lock only means another thread panicked while probing: probe again.
    let mut known = MATCHES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&(_, ok)) = known.iter().find(|(k, _)| same(k)) {
        return ok;
    }
    let ok = match probe_layout(gpu) {
        Ok(got) => {
            let want = assumed_layout();
            let ok = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            if !ok {
                log::warn!(
                    "integer tensor-core tiles on {}: the fragment layout differs from the one \
                     matmul_q8 assumes (lane 1 read {:?}, assumed {:?}); batches keep matvec_q8",
                    caps.name,
                    &got[32..64.min(got.len())],
                    &want[32..64]
                );
            }
            ok
        }
        Err(e) => {
            log::warn!(
                "integer tensor-core tiles on {}: the layout probe failed ({e}); batches keep \
                 matvec_q8",
                caps.name
            );
            false
        }
    };
    let key = (
        caps.vendor_id,
        caps.device_id,
        caps.driver_version,
        caps.pipeline_cache_uuid.clone(),
    );
    known.push((key, ok));
    ok
}

/// Runs matmul_q8.comp's PROBE on one warp and reads what it wrote.
fn probe_layout(gpu: &Gpu) -> VkResult<Vec<f32>> {
    let variant = Tiles::Tensor
        .variant(GgmlType::Q4K)
        .ok_or_else(|| VulkanError::MissingShader("matmul_q8_q4_k (tensor tiles)".into()))?;
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 3,
        push_size: std::mem::size_of::<MatvecQ8Push>() as u32,
        spec: vec![32, 1, 2, 0, 0, 1, 1, 0, 0],
        local_size: 32,
        subgroup_sized: true,
    })?;
    // 32 values a lane.
    let mut out = vec![0f32; 32 * 32];
    let buf = gpu.buffer(
        std::mem::size_of_val(out.as_slice()) as u64,
        MemoryClass::Readback,
    )?;
    let mut rec = Recorder::new(gpu, false)?;
    let mut descs = DescriptorCache::new(gpu);
    rec.begin()?;
    let push = MatvecQ8Push::zeroed();
    rec.dispatch(
        &mut descs,
        &kernel,
        &[
            Binding::read(buf.range()),
            Binding::read(buf.range()),
            Binding::write(buf.range()),
        ],
        push_bytes(&push),
        [1, 1, 1],
        "matmul_q8 probe",
        0,
    )?;
    rec.submit_wait()?;
    gpu.download(&buf, 0, bytemuck::cast_slice_mut(&mut out))?;
    Ok(out)
}

/// Records y = W x (per `out`) for the `n` vectors (1 ..= 16) [`quantize_q8`] wrote into `xq`
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
    if !(1..=MAX_BATCH).contains(&n) {
        return Err(VulkanError::invalid(
            "matmul_q8",
            format!("{n} vectors (takes 1 ..= {MAX_BATCH})"),
        ));
    }
    let (out_rows, glu_off) = matvec::decode_rows("matmul_q8", w, n, out)?;
    let (nblocks, ds_base) = q8_layout("matmul_q8", xq, w.ncols, n)?;
    let caps = gpu.caps();
    let variant = tiles.variant(w.ty).ok_or_else(|| {
        VulkanError::MissingShader(format!("matmul_q8_{} ({tiles:?} tiles)", w.ty))
    })?;
    let glu = out == Output::Glu;
    // The tile-ordered copy, where the GLU's up rows start a tile.
    let tiled = w.has_tile_order() && (!glu || (w.nrows / 2) % 16 == 0);
    let ks = warps(
        caps,
        w.ncols,
        if glu { 2 } else { 1 },
        tiles == Tiles::Emulated,
    );
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
            0,
            pair_group(),
            // Every row (and so the GLU's up rows) starts 16-byte aligned: K-quant rows always.
            u32::from(w.row_bytes % 16 == 0 || tiled),
            // Tile order: 16-byte loads only (every chunk starts at 16 tile rows' bytes).
            u32::from(tiled),
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
                Binding::read(match piece.tile_order {
                    Some(t) if tiled => t,
                    _ => piece.range,
                }),
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
    use super::assumed_layout;

    /// The assumed layout (which the emulated build computes in, and the probe must read on a
    /// device) covers each tile exactly once: every (row, k) of the 16x32 weight tile, every (k,
    /// vector) of the 32x8 activation tile and every (row, vector) of the 16x8 sum, each in one
    /// lane's element; and a lane's sum elements lie in its weight rows.
    #[test]
    fn assumed_layout_covers_each_tile_once() {
        let l = assumed_layout();
        let mut a = vec![0u32; 512];
        let mut b = vec![0u32; 256];
        let mut c = vec![0u32; 128];
        for lane in l.chunks_exact(32) {
            let rows: Vec<usize> = lane[..16].iter().map(|&v| v as usize / 32).collect();
            for &v in &lane[..16] {
                a[v as usize] += 1;
            }
            for &v in &lane[16..24] {
                b[v as usize] += 1;
            }
            for &v in &lane[24..28] {
                c[v as usize] += 1;
                assert!(rows.contains(&(v as usize / 8)));
            }
        }
        assert!(a.iter().chain(&b).chain(&c).all(|&n| n == 1));
    }
}
