//! RoPE fused with the KV-cache write (rope_kv.comp), and the host-side angle table.
//!
//! Invariants: the angle table holds (cos, sin) of pos * theta_i for pos < n_ctx and
//! i < n_rot / 2, theta_i = base^(-2i / n_rot) (llama.cpp's rope with no scaling), computed in f64.
//! Caches are [slot][n_head_kv][n_ctx][head_dim] f16 for one layer.

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::matvec::Act;
use super::{push_bytes, u32_of, wg_at_least};

/// Which elements RoPE pairs (ggml's rope modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// (x[2i], x[2i+1]): llama.cpp's mode 0, used for the llama architecture.
    Normal,
    /// (x[i], x[i + n_rot/2]): GPT-NeoX style, mode 2 (qwen2, ...).
    Neox,
}

impl RopeMode {
    /// ggml's mode number, as the shaders (rope.glsl) take it.
    pub fn ggml_mode(self) -> u32 {
        match self {
            RopeMode::Normal => 0,
            RopeMode::Neox => 2,
        }
    }
}

/// Push constants of rope_kv.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RopeKvPush {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_rot: u32,
    pub mode: u32,
    pub n_ctx: u32,
    pub q_off: u32,
    pub q_stride: u32,
    pub k_off: u32,
    pub k_stride: u32,
    pub v_off: u32,
    pub v_stride: u32,
    pub qdst_off: u32,
    pub qdst_stride: u32,
}

/// The angle table as f32 (cos, sin) pairs, [n_ctx][n_rot/2].
pub fn angle_table(n_ctx: usize, n_rot: usize, base: f64) -> Vec<f32> {
    let half = n_rot / 2;
    let mut t = Vec::with_capacity(n_ctx * half * 2);
    for p in 0..n_ctx {
        for i in 0..half {
            let theta = p as f64 * base.powf(-2.0 * i as f64 / n_rot as f64);
            t.push(theta.cos() as f32);
            t.push(theta.sin() as f32);
        }
    }
    t
}

/// Shapes of one rope_kv dispatch.
#[derive(Clone, Copy, Debug)]
pub struct RopeShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_rot: usize,
    pub mode: RopeMode,
    pub n_ctx: usize,
}

/// Records: rotate q (into `qdst`) and k of `n` token rows, store k and v into the caches. `rows`
/// holds a (position, slot) pair of u32 per row: where in which slot row t is stored.
#[allow(clippy::too_many_arguments)]
pub fn rope_kv(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    s: RopeShape,
    q: Act,
    k: Act,
    v: Act,
    qdst: Act,
    k_cache: BufRange,
    v_cache: BufRange,
    angles: BufRange,
    rows: BufRange,
    n: usize,
) -> VkResult<()> {
    if s.head_dim % 2 != 0 || s.n_rot % 2 != 0 || s.n_rot > s.head_dim || s.n_head_kv == 0 {
        return Err(VulkanError::invalid("rope", format!("{s:?}")));
    }
    if q.range.buffer != k.range.buffer || q.range != k.range || k.range != v.range {
        return Err(VulkanError::invalid(
            "rope",
            "q, k and v must be parts of one bound range",
        ));
    }
    let wg = wg_at_least(gpu.caps(), (s.head_dim as u32 / 2).min(64));
    let kernel = gpu.kernel(&KernelSpec {
        variant: "rope_kv".into(),
        bindings: 6,
        push_size: std::mem::size_of::<RopeKvPush>() as u32,
        spec: vec![wg],
        local_size: wg,
        subgroup_sized: false,
    })?;
    let push = RopeKvPush {
        n_head: u32_of("n_head", s.n_head)?,
        n_head_kv: u32_of("n_head_kv", s.n_head_kv)?,
        head_dim: u32_of("head_dim", s.head_dim)?,
        n_rot: u32_of("n_rot", s.n_rot)?,
        mode: s.mode.ggml_mode(),
        n_ctx: u32_of("n_ctx", s.n_ctx)?,
        q_off: u32_of("q_off", q.off)?,
        q_stride: u32_of("q_stride", q.stride)?,
        k_off: u32_of("k_off", k.off)?,
        k_stride: u32_of("k_stride", k.stride)?,
        v_off: u32_of("v_off", v.off)?,
        v_stride: u32_of("v_stride", v.stride)?,
        qdst_off: u32_of("qdst_off", qdst.off)?,
        qdst_stride: u32_of("qdst_stride", qdst.stride)?,
    };
    let groups = [
        (s.head_dim as u32 / 2).div_ceil(wg),
        u32_of("heads", s.n_head + s.n_head_kv)?,
        u32_of("tokens", n)?,
    ];
    rec.dispatch(
        descs,
        &kernel,
        &[
            Binding::read(q.range),
            Binding::write(qdst.range),
            Binding::write(k_cache),
            Binding::write(v_cache),
            Binding::read(angles),
            Binding::read(rows),
        ],
        push_bytes(&push),
        groups,
        "rope_kv",
        (n * (s.n_head * 8 + s.n_head_kv * 12) * s.head_dim) as u64,
    )
}
