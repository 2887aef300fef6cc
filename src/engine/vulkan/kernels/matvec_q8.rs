//! Decode products on Q8 activations with integer dot products (shaders quantize_q8.comp and
//! matvec_q8.comp, format pieces in piece_q8.glsl): x is first quantized per 32-element block to
//! signed bytes and a scale (ggml's Q8_1 rounding), then each product multiplies the weights'
//! integer values by those bytes four at a time (OpSDot) and scales the int32 sums in f32. This
//! is how llama.cpp's CUDA and Vulkan backends decode (mmvq, mul_mat_vecq): x costs one byte an
//! element instead of four, and one instruction does four multiply-adds.
//!
//! Invariants: the activation scratch holds, for `n` vectors of `ncols`, the quants of vector c
//! from word `c * nblocks * 8` in a [`Q8Order`] and its (d, d·Σq) pairs, in block order, from
//! vec2 index `ds_base(nblocks, n)` ([`q8_bytes`] bytes in all); a product reads the scratch its
//! producer wrote for the same `ncols` and `n` in the order of the product's weight format
//! ([`Q8Order::for_weights`]). A row's sum does not depend on `n` or the order, so batched
//! results equal single ones.
//! Numerics differ from matvec.comp's f32 products by x's rounding to 8 bits (relative error
//! about 2^-8 per element, averaging out over a row). A product given its input before an RMS
//! norm ([`matvec_q8_normed`], one vector) computes that Q8 form itself, equal bit for bit to what
//! the rmsnorm_q8 pass writes.

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::caps::DeviceCaps;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::super::shaders;
use super::matvec::{self, Act, MatvecTuning, Output};
use super::norm;
use super::weights::WeightPiece;
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
    /// NORM_IN: where the vector starts in the residual binding, and the norm's epsilon.
    pub x_off: u32,
    pub eps: f32,
}

/// Where a vector's quant words lie (q8_block.glsl's `q8_word_pos`, which this mirrors). A
/// batched product reads the order of its weight format ([`Q8Order::for_product`]):
/// matvec_q8.comp's lanes take a row's pieces in memory order, and in that format's order every
/// 16-byte activation load of a subgroup covers 4 whole 128-byte lines (in block order, halves
/// of 8, or for Q2_K and Q3_K quarters of 16). On an H100 (7B Q4_K_M) the 16-vector GLU went
/// from 171 to 137 µs, 16-sequence decode from 1060 to 1240 tok/s. The orders permute the
/// 32-element blocks (or, for [`Q8Order::Halves`], their halves) within chunks of 8 blocks (16
/// for [`Q8Order::KQuads`]); a vector's last, partial chunk stays in block order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Q8Order {
    /// Block order: Q8_0, whose pieces are consecutive half blocks.
    Blocks = 0,
    /// Q4_K and Q5_K: blocks 0 2 4 6 1 3 5 7 of each 8 (a piece reads blocks 2h and 2h + 1).
    KPairs = 1,
    /// Q6_K: blocks 0 1 4 5 2 3 6 7 (a piece reads blocks 4n + h and 4n + h + 2).
    Q6K = 2,
    /// Q4_0, Q4_1, Q5_0, Q5_1: words 0-3 of 8 blocks, then their words 4-7 (a piece is a block,
    /// its two groups the block's halves).
    Halves = 3,
    /// Q2_K and Q3_K: of each two superblocks (16 blocks), blocks j and 4 + j of the first, then
    /// of the second, for j = 0 .. 3 (a piece reads block j of each half of a superblock).
    KQuads = 4,
}

impl Q8Order {
    /// Every order.
    pub const ALL: [Q8Order; 5] = [
        Q8Order::Blocks,
        Q8Order::KPairs,
        Q8Order::Q6K,
        Q8Order::Halves,
        Q8Order::KQuads,
    ];

    /// The order matvec_q8.comp reads for `n` vectors times weights of `ty`: the format's own
    /// ([`Self::for_weights`]) for batches; block order for one vector, whose loads gain little
    /// from it (on an H100, 7B Q4_K_M decode went 299 -> 296 t/s, Q3_K_M 284 -> 273, from the
    /// quantize passes mixed formats then need), so norms and the attention write one order
    /// for every product after them.
    pub fn for_product(ty: GgmlType, n: usize) -> Self {
        if n > 1 {
            Self::for_weights(ty)
        } else {
            Q8Order::Blocks
        }
    }

    /// The order that makes a subgroup's activation loads whole 128-byte lines for weights of
    /// `ty`.
    pub fn for_weights(ty: GgmlType) -> Self {
        match ty {
            GgmlType::Q4K | GgmlType::Q5K => Q8Order::KPairs,
            GgmlType::Q6K => Q8Order::Q6K,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => Q8Order::Halves,
            GgmlType::Q2K | GgmlType::Q3K => Q8Order::KQuads,
            _ => Q8Order::Blocks,
        }
    }

    /// The blocks of the chunks this order permutes within (1: none).
    pub fn chunk_blocks(self) -> usize {
        match self {
            Q8Order::Blocks => 1,
            Q8Order::KQuads => 16,
            Q8Order::KPairs | Q8Order::Q6K | Q8Order::Halves => 8,
        }
    }

    /// The word (of a vector's `nblocks * 8`) that holds word `wd` (< 8) of block `blk`.
    pub fn word_pos(self, nblocks: usize, blk: usize, wd: usize) -> usize {
        let chunk = self.chunk_blocks();
        if self == Q8Order::Blocks || blk >= nblocks / chunk * chunk {
            return blk * 8 + wd;
        }
        let base = blk / chunk * chunk;
        let k = blk % chunk;
        let pos = match self {
            Q8Order::KPairs => (k >> 1) | ((k & 1) << 2),
            Q8Order::Q6K => (k & 1) | (((k >> 2) & 1) << 1) | (((k >> 1) & 1) << 2),
            Q8Order::KQuads => ((k & 3) << 2) | ((k >> 3) << 1) | ((k & 7) >> 2),
            Q8Order::Halves => return base * 8 + (wd >> 2) * 32 + k * 4 + (wd & 3),
            Q8Order::Blocks => k,
        };
        (base + pos) * 8 + wd
    }
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
    *ON.get_or_init(|| !super::env_off("RAWRXD_INTDOT"))
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

/// Whether a product of `n` vectors of `ty` stages its activations in shared memory (see
/// [`stage_blocks`]): Q8_0 batches of 8 or more vectors, K-quant batches of 16.
/// `RAWRXD_Q8_STAGE=0` turns it off, `=all` on for every batch (comparison runs). Measured on an
/// H100 (7B, tok/s at B = 4 / 12 / 16, `bench --batch 4,12,16 -p 16 -n 32`, unstaged → staged,
/// same binary):
/// - Q8_0: 620 / 858 / 954 → 518 / 1191 / 1259 (two runs alike): a Q8_0 piece is half a block,
///   so its activation loads per weight byte are the most of any format;
/// - Q4_K_M: 834 / 1270 / 1172 → 774 / 1262 / 1243, and at B = 16 in three more runs
///   1165 → 1194, 1145 → 1169, 1182 → 1222;
/// - Q4_0: 905 / 1343 / 1346 → 807 / 1245 / 1364, and 1417 → 1342 at B = 16: never.
///
/// The stage costs registers (64 → 76 for the 12-vector Q4_K GLU) and two barriers a pass, and
/// pays only where many vectors share each load.
fn stage_pays(ty: GgmlType, n: usize) -> bool {
    static MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mode = MODE.get_or_init(|| std::env::var("RAWRXD_Q8_STAGE").unwrap_or_default());
    match mode.trim() {
        "0" => false,
        "all" => n > 1,
        _ => (ty == GgmlType::Q8_0 && n >= 8) || (ty.is_k_quant() && n >= 16),
    }
}

/// Activation blocks (of 32 elements) one subgroup pass of matvec_q8.comp covers per vector:
/// `subgroup * unroll` pieces of `ty` (piece_q8.glsl's Q8_QK / Q8_LPB elements each).
fn pass_blocks(ty: GgmlType, subgroup: u32, unroll: u32) -> u32 {
    let pieces = subgroup * unroll;
    match ty {
        GgmlType::Q8_0 => pieces / 2,
        GgmlType::Q2K | GgmlType::Q3K => pieces * 2,
        _ => pieces,
    }
}

/// matvec_q8.comp's STAGE for `n` vectors of `ty`: the blocks per vector each workgroup copies
/// into shared memory per pass, so that its subgroups (rows) read the activations from there
/// instead of each loading them from memory; 0 (no stage) where it does not pay
/// ([`stage_pays`]) or would not fit the device's shared memory.
fn stage_blocks(caps: &DeviceCaps, ty: GgmlType, n: usize, unroll: u32, q8_out: bool) -> u32 {
    let sg = caps.subgroup.size.max(1);
    let blocks = pass_blocks(ty, sg, unroll);
    // Quants (32 bytes) and the (d, s) pair (8) per block and vector, next to the shader's
    // other shared arrays (the Q8 output's, 8 KiB and 260 bytes).
    let bytes = blocks as u64 * n as u64 * 40 + if q8_out { 8 * 1024 + 260 } else { 4 };
    let fits = bytes <= u64::from(caps.limits.max_compute_shared_memory_size);
    // Passes must start on whole blocks and whole chunks of the word order.
    let chunk = Q8Order::for_product(ty, n).chunk_blocks() as u32;
    let whole = sg * unroll % 8 == 0 && blocks % chunk == 0;
    if stage_pays(ty, n) && fits && whole {
        blocks
    } else {
        0
    }
}

/// Records the Q8 form of `n` vectors of `ncols` elements of `x` into `out` (quantize_q8.comp),
/// its words in `order`.
#[allow(clippy::too_many_arguments)]
pub fn quantize_q8(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    ncols: usize,
    n: usize,
    out: BufRange,
    order: Q8Order,
) -> VkResult<()> {
    let (nblocks, ds_base) = q8_layout("quantize_q8", out, ncols, n)?;
    let variant = shaders::find("quantize_q8")
        .ok_or_else(|| VulkanError::MissingShader("quantize_q8".into()))?;
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: 2,
        push_size: std::mem::size_of::<QuantizeQ8Push>() as u32,
        // Id 0 is unused (the workgroup size is fixed).
        spec: vec![64, order as u32],
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
/// layout [`quantize_q8`] writes for `n` vectors of `w.nrows / 2`, in `q8_order`, the order of
/// the product that reads it; must not overlap `xq`), so the
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
    q8_order: Q8Order,
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
        Some(Q8Out {
            range: q8_out,
            order: q8_order,
            counters,
        }),
    )
}

/// Where a GLU product also writes its output as Q8 activations ([`matvec_q8_glu_into`]).
#[derive(Clone, Copy, Debug)]
pub struct Q8Out {
    /// The Q8 scratch written.
    pub range: BufRange,
    /// Its word order (that of the product reading it).
    pub order: Q8Order,
    /// Block counters: u32, one per 32-row block, zeroed (and left zeroed).
    pub counters: BufRange,
}

/// One vector's product input given before its RMS norm ([`matvec_q8_normed`]): the residual
/// `x` (vector 0 at `x.off`), the norm weight `w` (`ncols` f32) and epsilon.
#[derive(Clone, Copy, Debug)]
pub struct NormIn {
    pub x: Act,
    pub w: BufRange,
    pub eps: f32,
}

/// About how many workgroups a [`matvec_q8_normed`] product launches (two per SM of an H100 or
/// H200).
const NORM_IN_GROUPS: u32 = 264;

/// The widest vector [`matvec_q8_normed`] takes (matvec_q8.comp's `NORM_MAX_BLOCKS` blocks).
pub const NORM_IN_MAX_COLS: usize = 128 * 32;

/// Whether engines compute one vector's norm inside its products ([`matvec_q8_normed`]) by
/// default: only with `RAWRXD_NORM_IN=1`. On an H200 (7B Q4_K_M, tg128) it measured 297 t/s
/// against 320-327 with the norm pass (docs/BENCHMARKS.md, "What the norms and the attention
/// cost a decode token").
pub fn norm_in_default() -> bool {
    std::env::var("RAWRXD_NORM_IN").is_ok_and(|v| v.trim() == "1")
}

/// True when [`matvec_q8_normed`] runs `w`'s product on `gpu`: its variant is built and the
/// vector fits the workgroup's copy.
pub fn has_norm_in(gpu: &Gpu, w: &WeightMatrix) -> bool {
    w.ncols <= NORM_IN_MAX_COLS
        // (Its blocks are quantized by groups of eight lanes of one subgroup.)
        && gpu.caps().subgroup.size >= 8
        && has_matvec_q8(gpu, w.ty)
        && shaders::for_format_ext("matvec_q8", w.ty, "norm", INTDOT_EXT).is_some()
}

/// Records y = W rms_norm(x) for one vector (per `out`; for the GLU optionally with `q8_out` as
/// [`matvec_q8_glu_into`]): every workgroup computes the norm's Q8 activations itself, rounded
/// exactly as the rmsnorm_q8 pass would write them, so the norm takes no dispatch of its own and
/// the results equal [`matvec_q8`] after that pass bit for bit. Needs [`has_norm_in`].
#[allow(clippy::too_many_arguments)]
pub fn matvec_q8_normed(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    norm: NormIn,
    y: Act,
    out: Output,
    q8_out: Option<Q8Out>,
) -> VkResult<()> {
    let tuning = MatvecTuning::for_q8(gpu.caps(), 1);
    record(
        gpu,
        rec,
        descs,
        w,
        None,
        y,
        1,
        out,
        tuning,
        q8_out,
        Some(norm),
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
    q8_out: Option<Q8Out>,
) -> VkResult<()> {
    record(
        gpu,
        rec,
        descs,
        w,
        Some(xq),
        y,
        n,
        out,
        tuning,
        q8_out,
        None,
    )
}

/// Records matvec_q8.comp: on the Q8 activations in `xq`, or (with `norm`, one vector, `xq`
/// none) on the norm the workgroups compute themselves.
#[allow(clippy::too_many_arguments)]
fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    w: &WeightMatrix,
    xq: Option<BufRange>,
    y: Act,
    n: usize,
    out: Output,
    tuning: MatvecTuning,
    q8_out: Option<Q8Out>,
    norm: Option<NormIn>,
) -> VkResult<()> {
    let (out_rows, glu_off) = matvec::decode_rows("matvec_q8", w, n, out)?;
    let (nblocks, ds_base, xq) = match (xq, norm) {
        (Some(xq), None) => {
            let (nb, base) = q8_layout("matvec_q8", xq, w.ncols, n)?;
            (nb, base, xq)
        }
        // The Q8 input binding is not read: y stands in.
        (None, Some(_)) if n == 1 && w.ncols <= NORM_IN_MAX_COLS => {
            (u32_of("nblocks", nblocks(w.ncols))?, 0, y.range)
        }
        _ => {
            return Err(VulkanError::invalid(
                "matvec_q8",
                format!(
                    "a normed input takes one vector of at most {NORM_IN_MAX_COLS} columns, \
                     and no Q8 activations"
                ),
            ))
        }
    };
    let caps = gpu.caps();
    let shape = if norm.is_some() { "norm" } else { "" };
    let variant =
        shaders::for_format_ext("matvec_q8", w.ty, shape, INTDOT_EXT).ok_or_else(|| {
            VulkanError::MissingShader(format!("matvec_q8_{}_{shape}_{INTDOT_EXT}", w.ty))
        })?;
    let (nr, unroll) = (tuning.rows_per_subgroup, tuning.unroll);
    let wg = subgroup_wg(caps, tuning.subgroups);
    let pass_rows = (wg / caps.subgroup.size.max(1)) * nr;
    // With the norm in the product every workgroup computes it, so there are few, large
    // workgroups (~NORM_IN_GROUPS, rows in whole passes; 32 rows with Q8 output, whose
    // workgroups must lie in one 32-row block) and the prologue is paid once or twice an SM.
    let rows_per_wg = match norm {
        Some(_) if q8_out.is_some() => 32.max(pass_rows),
        Some(_) => {
            let per = (out_rows as u32).div_ceil(NORM_IN_GROUPS);
            per.div_ceil(pass_rows.max(1)) * pass_rows
        }
        None => pass_rows,
    };
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
        Some(q) if q.range.overlaps(&xq) => {
            return Err(VulkanError::invalid(
                "matvec_q8",
                "the Q8 output overlaps the Q8 input",
            ))
        }
        Some(q) if (q.counters.size as usize) < out_rows.div_ceil(32) * 4 => {
            return Err(VulkanError::invalid(
                "matvec_q8",
                format!("{} bytes of counters for {out_rows} rows", q.counters.size),
            ))
        }
        Some(q) => q8_layout("matvec_q8", q.range, out_rows, n)?,
        None => (0, 0),
    };
    let stage = if norm.is_some() {
        0
    } else {
        stage_blocks(caps, w.ty, n, unroll, q8_out.is_some())
    };
    // The norm's workgroup only matters to NORM_IN variants; the others keep one pipeline
    // whatever the width.
    let norm_wg = norm.map_or(0, |_| norm::rms_norm_wg(gpu, w.ncols));
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.name.to_string(),
        bindings: if norm.is_some() { 7 } else { 5 },
        push_size: std::mem::size_of::<MatvecQ8Push>() as u32,
        spec: vec![
            wg,
            rows_per_wg,
            nr,
            n as u32,
            u32::from(out == Output::Glu),
            unroll,
            u32::from(q8_out.is_some()),
            q8_out.map_or(0, |q| q.order as u32),
            Q8Order::for_product(w.ty, n) as u32,
            stage,
            norm_wg,
        ],
        local_size: wg,
        subgroup_sized: true,
    })?;
    for d in q8_dispatches(
        w,
        y,
        n,
        out,
        (out_rows, glu_off),
        (nblocks, ds_base),
        (oq_nblocks, oq_ds_base),
    )? {
        let Q8Dispatch {
            piece,
            rows,
            mut push,
            bytes,
        } = d;
        let groups = linear_groups(caps, (rows as u32).div_ceil(rows_per_wg));
        // Without Q8 output bindings 3 and 4 are declared but never touched: y stands in.
        let mut bindings = vec![
            Binding::read(piece.range),
            Binding::read(xq),
            Binding::write(y.range),
            Binding::write(q8_out.map_or(y.range, |q| q.range)),
            Binding::write(q8_out.map_or(y.range, |q| q.counters)),
        ];
        if let Some(nm) = norm {
            push.x_off = u32_of("x_off", nm.x.off)?;
            push.eps = nm.eps;
            bindings.push(Binding::read(nm.x.range));
            bindings.push(Binding::read(nm.w));
        }
        rec.dispatch(
            descs,
            &kernel,
            &bindings,
            push_bytes(&push),
            groups,
            "matvec_q8",
            bytes,
        )?;
    }
    Ok(())
}

/// One dispatch of a product on Q8 activations ([`matvec_q8_tuned`], and matmul_q8's): a
/// piece of the weights, the rows it writes (all of the output's for a GLU), its push constants
/// and the bytes it moves.
pub(super) struct Q8Dispatch<'a> {
    pub piece: &'a WeightPiece,
    pub rows: usize,
    pub push: MatvecQ8Push,
    pub bytes: u64,
}

/// The dispatches of `w` times the `n` vectors laid out as `(nblocks, ds_base)` into `y`, per
/// [`matvec::decode_rows`]'s `(out_rows, glu_off)`, with the Q8 output's layout `oq` (zeros
/// without one).
pub(super) fn q8_dispatches(
    w: &WeightMatrix,
    y: Act,
    n: usize,
    out: Output,
    (out_rows, glu_off): (usize, usize),
    (nblocks, ds_base): (u32, u32),
    (oq_nblocks, oq_ds_base): (u32, u32),
) -> VkResult<Vec<Q8Dispatch<'_>>> {
    w.pieces
        .iter()
        .map(|piece| {
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
                x_off: 0,
                eps: 0.0,
            };
            let bytes = piece.nrows as u64 * w.row_bytes as u64
                + q8_bytes(w.ncols, n)
                + (n * rows * 4) as u64;
            Ok(Q8Dispatch {
                piece,
                rows,
                push,
                bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{GgmlType, Q8Order};

    #[test]
    fn every_order_is_a_permutation_of_a_vectors_words() {
        for order in Q8Order::ALL {
            for nblocks in 1..=70 {
                let mut seen = vec![false; nblocks * 8];
                for blk in 0..nblocks {
                    for wd in 0..8 {
                        let p = order.word_pos(nblocks, blk, wd);
                        assert!(p < seen.len() && !seen[p], "{order:?} nblocks {nblocks}");
                        seen[p] = true;
                    }
                }
                // Quant words travel in fours (16-byte loads): each four stays together.
                for blk in 0..nblocks {
                    for wd in [0, 4] {
                        let p = order.word_pos(nblocks, blk, wd);
                        assert_eq!(p % 4, 0, "{order:?}");
                        for k in 1..4 {
                            assert_eq!(order.word_pos(nblocks, blk, wd + k), p + k, "{order:?}");
                        }
                    }
                }
            }
        }
    }

    /// The (block, first word) pairs of piece `p`'s groups, as piece_q8.glsl's `q8_piece`
    /// assigns them (pieces per 256 or 32 elements, groups of four words).
    fn piece_groups(ty: GgmlType, p: usize) -> Vec<(usize, usize)> {
        match ty {
            GgmlType::Q4K | GgmlType::Q5K => {
                let (blk, s) = (p / 8, p % 8);
                let (h, l) = (s >> 1, 16 * (s & 1));
                (0..2).map(|g| (8 * blk + 2 * h + g, l / 4)).collect()
            }
            GgmlType::Q6K => {
                let (blk, s) = (p / 8, p % 8);
                let (n, hi, l) = (s >> 2, (s >> 1) & 1, 16 * (s & 1));
                let b0 = 8 * blk + 4 * n + hi;
                vec![(b0, l / 4), (b0 + 2, l / 4)]
            }
            GgmlType::Q2K | GgmlType::Q3K => {
                let (blk, s) = (p / 4, p % 4);
                let (n, l) = (s >> 1, 16 * (s & 1));
                (0..4).map(|j| (8 * blk + 4 * n + j, l / 4)).collect()
            }
            GgmlType::Q8_0 => vec![(p / 2, 4 * (p % 2))],
            _ => vec![(p, 0), (p, 4)],
        }
    }

    /// 128-byte lines (32 words) one subgroup-wide 16-byte load touches: lanes 0 .. 32 take
    /// pieces `first` .. `first + 32`, each loading group `g` of its piece.
    fn lines_touched(
        ty: GgmlType,
        order: Q8Order,
        nblocks: usize,
        first: usize,
        g: usize,
    ) -> usize {
        let mut lines: Vec<usize> = (first..first + 32)
            .map(|p| {
                let (blk, wd) = piece_groups(ty, p)[g];
                order.word_pos(nblocks, blk, wd) / 32
            })
            .collect();
        lines.sort_unstable();
        lines.dedup();
        lines.len()
    }

    /// The point of the orders: in its format's order, each 16-byte activation load of a
    /// subgroup (32 lanes, 512 bytes) covers 4 whole lines; in block order the K-quants and the
    /// 4-bit and 5-bit block formats touch 8 half lines instead (Q8_0 is whole already).
    #[test]
    fn each_formats_order_makes_subgroup_loads_whole_lines() {
        let nblocks = 128; // a 4096-wide vector
        for ty in [
            GgmlType::Q2K,
            GgmlType::Q3K,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
        ] {
            let order = Q8Order::for_weights(ty);
            let groups = piece_groups(ty, 0).len();
            let pieces = match ty {
                GgmlType::Q8_0 => nblocks * 2,
                GgmlType::Q2K | GgmlType::Q3K => nblocks / 2,
                _ => nblocks,
            };
            for first in (0..pieces).step_by(32) {
                for g in 0..groups {
                    assert_eq!(
                        lines_touched(ty, order, nblocks, first, g),
                        4,
                        "{ty} {order:?}"
                    );
                    if order != Q8Order::Blocks {
                        let blocks = lines_touched(ty, Q8Order::Blocks, nblocks, first, g);
                        assert!(blocks >= 8, "{ty} in block order: {blocks} lines");
                    }
                }
            }
        }
    }
}
