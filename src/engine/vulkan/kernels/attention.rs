//! Attention over the f16 KV cache. Decode: split over the cache length (attn.comp), several
//! splits to fill the device, merged by the last split of each head in the same dispatch (a
//! zeroed u32 counter per row and head, left zeroed after every dispatch); decode steps also
//! rotate q and the new key there and store the new key and value (see [`DecodeRope`]). Prefill
//! of one sequence's chunk: tiled like flash attention (attn_prefill.comp), each block of keys
//! and values read once for 16 query rows, or on tensor cores for 64 (attn_prefill_cm.comp, see
//! [`prefill_on_tensor_cores`]), for head_dim <= [`PREFILL_MAX_HEAD_DIM`]; larger heads take
//! the split kernel with one split. Rows steps (several sequences, several rows of one)
//! take the split kernel after rope_kv.

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::matvec::Act;
use super::matvec_q8::{self, Q8Order};
use super::rope::RopeMode;
use super::{env_in, push_bytes, u32_of, wg_at_least};

/// Push constants of attn.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AttnPush {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_ctx: u32,
    pub n_split: u32,
    pub q_off: u32,
    pub q_stride: u32,
    pub scale: f32,
    pub k_off: u32,
    pub k_stride: u32,
    pub v_off: u32,
    pub v_stride: u32,
    pub n_rot: u32,
    pub mode: u32,
    pub out_off: u32,
    pub out_stride: u32,
    pub nblocks: u32,
    pub ds_base: u32,
    pub split_chunk: u32,
}

/// RoPE and the cache write done by the decode attention itself (one dispatch fewer per layer
/// than [`super::rope::rope_kv`] then [`attention_into`] without it): `q` passed to
/// [`attention_into`] is then unrotated, `k` and `v` are the rows' new keys and values in the
/// same bound range, and every row must be one sequence's single new token in its own slot (a
/// decode step). Results, cache contents included, are those of rope_kv then attention, bit for
/// bit.
#[derive(Clone, Copy, Debug)]
pub struct DecodeRope {
    pub n_rot: usize,
    pub mode: RopeMode,
    pub k: Act,
    pub v: Act,
    /// `rope::angle_table`'s (cos, sin) pairs.
    pub angles: BufRange,
}

/// Push constants of attn_prefill.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AttnPrefillPush {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_ctx: u32,
    pub ntok: u32,
    pub q_off: u32,
    pub q_stride: u32,
    pub scale: f32,
    pub out_off: u32,
    pub out_stride: u32,
}

/// Largest head the tiled prefill kernel takes (its shared-memory tiles are sized for it).
pub const PREFILL_MAX_HEAD_DIM: usize = 128;

/// Query rows per workgroup of the tiled prefill kernel (its TQ).
const PREFILL_ROWS: usize = 16;

/// Query rows per workgroup of the tensor-core prefill kernel (attn_prefill_cm.comp's TQ).
const PREFILL_CM_ROWS: usize = 64;

/// The tensor-core prefill kernel's variant name (build.rs: `attn_prefill_cm` with the
/// `coopmat_nv` extension).
const PREFILL_CM_VARIANT: &str = "attn_prefill_cm_coopmat_nv";

/// True when prefill attention of shape `s` runs on tensor cores (attn_prefill_cm.comp): the
/// device has the NV 16x16x16 f16 cooperative matrix on 32-lane subgroups, the build has the
/// kernel, head_dim is a multiple of 16 up to [`PREFILL_MAX_HEAD_DIM`], and neither
/// `RAWRXD_ATTN_TC` nor `RAWRXD_COOPMAT` (every f16 tensor-core path) is `0`.
pub fn prefill_on_tensor_cores(gpu: &Gpu, s: &AttnShape) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !super::env_off("RAWRXD_ATTN_TC"))
        && super::matvec::coopmat_min_batch().is_some()
        && gpu.caps().nv_coopmat_f16_16x16()
        && super::super::shaders::find(PREFILL_CM_VARIANT).is_some()
        && s.head_dim % 16 == 0
        && s.head_dim <= PREFILL_MAX_HEAD_DIM
}

/// Shapes of an attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ctx: usize,
    /// Splits of the cache length (decode): the most a row takes.
    pub n_split: usize,
    /// Positions a split covers at least: a row of `n_kv` positions takes `ceil(n_kv /
    /// split_chunk)` splits, at most `n_split`, so its count (and its rounding) depends on its
    /// own length only, never on the other rows of the dispatch. 0: every row takes `n_split`.
    pub split_chunk: usize,
}

/// f32 elements of the partials buffer for `n` tokens.
pub fn partials_len(s: &AttnShape, n: usize) -> usize {
    n * s.n_head * s.n_split * (s.head_dim + 2)
}

/// u32 counters the split attention needs for `n` tokens (zeroed before first use).
pub fn counters_len(s: &AttnShape, n: usize) -> usize {
    n * s.n_head
}

/// The most splits `decode_splits` picks.
const MAX_SPLITS: usize = 64;

/// The most splits a decode row takes (`AttnShape::n_split`; shorter rows take fewer, see
/// [`decode_split_chunk`]): enough workgroups to fill the device for one sequence, chunks of >= 32
/// positions of the context; `RAWRXD_ATTN_SPLITS=k` (1..=64) sets it for tuning runs.
pub fn decode_splits(n_ctx: usize, n_head: usize) -> usize {
    let by_ctx = n_ctx.div_ceil(32).max(1);
    let want = 256usize.div_ceil(n_head.max(1)).max(1);
    env_in(
        "RAWRXD_ATTN_SPLITS",
        1..=MAX_SPLITS,
        want.min(by_ctx).min(MAX_SPLITS),
    )
}

/// Positions a decode split covers at least (`AttnShape::split_chunk`): 128, so that a batch of
/// sequences of a few hundred positions takes 1 to 4 splits each instead of `decode_splits`
/// (docs/BENCHMARKS.md, "Batched decode attention"), while long rows still take
/// `decode_splits`; `RAWRXD_ATTN_CHUNK=k` sets it for tuning runs (0: always every split).
pub fn decode_split_chunk() -> usize {
    env_in("RAWRXD_ATTN_CHUNK", 0..=1 << 20, 128)
}

/// The attention's smallest workgroup: 128 invocations (8 groups of 16-byte value loads for a
/// head of 128); `RAWRXD_ATTN_WG=n` (32..=1024) sets it for tuning runs (read once a process:
/// this runs for every recorded attention).
fn decode_wg() -> u32 {
    static WG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *WG.get_or_init(|| env_in("RAWRXD_ATTN_WG", 32..=1024, 128) as u32)
}

/// Refuses shapes a kernel cannot take: an odd or too large head, a head count that is not a
/// multiple of the KV heads, or `count` (splits, rows) of zero.
fn check_shape(
    kernel: &'static str,
    s: &AttnShape,
    max_head_dim: usize,
    count: usize,
) -> VkResult<()> {
    if s.head_dim % 2 != 0
        || s.head_dim > max_head_dim
        || s.n_head_kv == 0
        || s.n_head % s.n_head_kv != 0
        || count == 0
    {
        return Err(VulkanError::invalid(kernel, format!("{s:?} ({count})")));
    }
    Ok(())
}

/// Records attention of `n` query token rows over the caches into `out` ([n][n_head * head_dim]),
/// using `partials` and `counters` ([`counters_len`] u32, zeroed before the first call; every
/// call leaves them zeroed) as scratch. `rows` holds a (position, slot) pair of u32 per row: row
/// t attends to positions 0 ..= position of its slot ([slot][n_head_kv][n_ctx][head_dim] f16
/// caches). With `xq`, also writes `out` as Q8 activations there (the layout
/// `matvec_q8::quantize_q8` writes for `n` vectors of `n_head * head_dim`, in the given word
/// order); needs `head_dim` a
/// multiple of 32. With `rope`, `q` is unrotated and the kernel does the RoPE and cache write of
/// a decode step itself (see [`DecodeRope`]).
#[allow(clippy::too_many_arguments)]
pub fn attention_into(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    s: AttnShape,
    q: Act,
    k_cache: BufRange,
    v_cache: BufRange,
    partials: BufRange,
    counters: BufRange,
    rows: BufRange,
    out: Act,
    n: usize,
    xq: Option<(BufRange, Q8Order)>,
    rope: Option<DecodeRope>,
) -> VkResult<()> {
    check_shape("attention", &s, 256, s.n_split)?;
    let width = s.n_head * s.head_dim;
    let (nblocks, ds_base) = match xq {
        // Each head's outputs are whole Q8 blocks.
        Some(_) if s.head_dim % 32 != 0 => {
            return Err(VulkanError::invalid(
                "attn_q8",
                format!("head_dim {} is not a multiple of 32", s.head_dim),
            ))
        }
        Some((r, _)) => matvec_q8::q8_layout("attn_q8", r, width, n)?,
        None => (0, 0),
    };
    if (partials.size as usize) < partials_len(&s, n) * 4 {
        return Err(VulkanError::invalid(
            "attention",
            "partials buffer too small",
        ));
    }
    if (counters.size as usize) < counters_len(&s, n) * 4 {
        return Err(VulkanError::invalid(
            "attention",
            "counters buffer too small",
        ));
    }
    if let Some(r) = &rope {
        if r.n_rot % 2 != 0 || r.n_rot > s.head_dim || r.k.range != q.range || r.v.range != q.range
        {
            return Err(VulkanError::invalid(
                "attention",
                format!("rope {r:?}: n_rot even, <= head_dim, q, k and v in one range"),
            ));
        }
    }
    let caps = gpu.caps();
    let wg = wg_at_least(caps, (s.head_dim as u32 / 2).max(decode_wg()));
    if wg < s.head_dim as u32 / 2 || wg > 1024 {
        return Err(VulkanError::unsupported(format!(
            "attention with head_dim {} on this device",
            s.head_dim
        )));
    }
    let kernel = gpu.kernel(&KernelSpec {
        variant: if xq.is_some() { "attn_q8" } else { "attn" }.into(),
        bindings: if xq.is_some() { 9 } else { 8 },
        push_size: std::mem::size_of::<AttnPush>() as u32,
        spec: vec![
            wg,
            u32::from(rope.is_some()),
            xq.map_or(0, |(_, o)| o as u32),
        ],
        local_size: wg,
        subgroup_sized: true,
    })?;
    let (k, v) = rope.map_or((q, q), |r| (r.k, r.v));
    let push = AttnPush {
        n_head: u32_of("n_head", s.n_head)?,
        n_head_kv: u32_of("n_head_kv", s.n_head_kv)?,
        head_dim: u32_of("head_dim", s.head_dim)?,
        n_ctx: u32_of("n_ctx", s.n_ctx)?,
        n_split: u32_of("n_split", s.n_split)?,
        q_off: u32_of("q_off", q.off)?,
        q_stride: u32_of("q_stride", q.stride)?,
        scale: 1.0 / (s.head_dim as f32).sqrt(),
        k_off: u32_of("k_off", k.off)?,
        k_stride: u32_of("k_stride", k.stride)?,
        v_off: u32_of("v_off", v.off)?,
        v_stride: u32_of("v_stride", v.stride)?,
        n_rot: u32_of("n_rot", rope.map_or(0, |r| r.n_rot))?,
        mode: rope.map_or(0, |r| r.mode.ggml_mode()),
        out_off: u32_of("out_off", out.off)?,
        out_stride: u32_of("out_stride", out.stride)?,
        nblocks,
        ds_base,
        split_chunk: u32_of("split_chunk", s.split_chunk)?,
    };
    // Without RoPE the kernel only reads the caches; binding 7 (the angle table) is then never
    // read and takes `rows` as a stand-in.
    let cache = |r| {
        if rope.is_some() {
            Binding::write(r)
        } else {
            Binding::read(r)
        }
    };
    let mut bindings = vec![
        Binding::read(q.range),
        cache(k_cache),
        cache(v_cache),
        Binding::write(partials),
        Binding::read(rows),
        Binding::write(counters),
        Binding::write(out.range),
        Binding::read(rope.map_or(rows, |r| r.angles)),
    ];
    bindings.extend(xq.map(|(r, _)| Binding::write(r)));
    rec.dispatch(
        descs,
        &kernel,
        &bindings,
        push_bytes(&push),
        [
            u32_of("n_head", s.n_head)?,
            u32_of("n_split", s.n_split)?,
            u32_of("tokens", n)?,
        ],
        "attn",
        (k_cache.size + v_cache.size).min((n * s.n_ctx * s.n_head_kv * s.head_dim * 4) as u64)
            + (partials_len(&s, n) * 8 + n * s.n_head * s.head_dim * 4) as u64,
    )
}

/// Records causal attention of the `n` token rows of one prefill chunk (one sequence: every row
/// in the same slot, at increasing positions, as `rows` says) with a tiled kernel, writing `out`
/// ([n][n_head * head_dim]) directly: attn_prefill_cm.comp on tensor cores when `tensor_cores`
/// (the caller has checked [`prefill_on_tensor_cores`]), attn_prefill.comp otherwise.
/// `s.n_split` is ignored. Needs head_dim even and <= [`PREFILL_MAX_HEAD_DIM`].
#[allow(clippy::too_many_arguments)]
pub fn attention_prefill(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    s: AttnShape,
    q: Act,
    k_cache: BufRange,
    v_cache: BufRange,
    rows: BufRange,
    out: Act,
    n: usize,
    tensor_cores: bool,
) -> VkResult<()> {
    check_shape("attention_prefill", &s, PREFILL_MAX_HEAD_DIM, n)?;
    if tensor_cores && s.head_dim % 16 != 0 {
        return Err(VulkanError::invalid(
            "attention_prefill",
            format!(
                "head_dim {} on tensor cores (needs a multiple of 16)",
                s.head_dim
            ),
        ));
    }
    let (variant, tile_rows) = if tensor_cores {
        (PREFILL_CM_VARIANT, PREFILL_CM_ROWS)
    } else {
        ("attn_prefill", PREFILL_ROWS)
    };
    let kernel = gpu.kernel(&KernelSpec {
        variant: variant.into(),
        bindings: 5,
        push_size: std::mem::size_of::<AttnPrefillPush>() as u32,
        spec: vec![],
        local_size: 128,
        subgroup_sized: false,
    })?;
    let push = AttnPrefillPush {
        n_head: u32_of("n_head", s.n_head)?,
        n_head_kv: u32_of("n_head_kv", s.n_head_kv)?,
        head_dim: u32_of("head_dim", s.head_dim)?,
        n_ctx: u32_of("n_ctx", s.n_ctx)?,
        ntok: u32_of("tokens", n)?,
        q_off: u32_of("q_off", q.off)?,
        q_stride: u32_of("q_stride", q.stride)?,
        scale: 1.0 / (s.head_dim as f32).sqrt(),
        out_off: u32_of("out_off", out.off)?,
        out_stride: u32_of("out_stride", out.stride)?,
    };
    // Each tile reads the keys and values up to its last row once.
    let kv_bytes = (n.div_ceil(tile_rows) * n * s.n_head_kv * s.head_dim * 2) as u64;
    rec.dispatch(
        descs,
        &kernel,
        &[
            Binding::read(q.range),
            Binding::read(k_cache),
            Binding::read(v_cache),
            Binding::read(rows),
            Binding::write(out.range),
        ],
        push_bytes(&push),
        [push.n_head, u32_of("tiles", n.div_ceil(tile_rows))?, 1],
        "attn_prefill",
        kv_bytes.min(k_cache.size + v_cache.size) + (n * s.n_head * s.head_dim * 8) as u64,
    )
}
