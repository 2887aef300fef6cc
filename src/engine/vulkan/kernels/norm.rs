//! RMSNorm fused with the norm-weight multiply (rmsnorm.comp), optionally also writing its output
//! as Q8 activations for the next product (the rmsnorm_q8 variant, see `matvec_q8`).

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::{VkResult, VulkanError};
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::matvec::Act;
use super::matvec_q8::{self, Q8Order};
use super::{push_bytes, u32_of, wg_at_least};

/// Push constants of rmsnorm.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RmsNormPush {
    pub n: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub y_off: u32,
    pub y_stride: u32,
    pub eps: f32,
    pub nblocks: u32,
    pub ds_base: u32,
}

/// Records y[t] = rms_norm(x[t]) * w for `rows` rows of `n` elements; `w` holds n f32.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    w: BufRange,
    y: Act,
    n: usize,
    rows: usize,
    eps: f32,
) -> VkResult<()> {
    rms_norm_into(gpu, rec, descs, x, w, y, n, rows, eps, None)
}

/// rmsnorm.comp's workgroup for rows of `n`: up to 1024 invocations, one pass over a 4096-wide
/// row, one block per 8 of them for Q8 (a multiple of 8 either way: whole subgroups of a
/// power-of-two size, rounded down to 8; 0 where workgroups are under 8 invocations). Its sum
/// of squares is reduced in this workgroup's order, which matvec_q8's NORM_IN prologue
/// reproduces.
pub fn rms_norm_wg(gpu: &Gpu, n: usize) -> u32 {
    let wg = wg_at_least(gpu.caps(), 1024.min(n as u32).next_multiple_of(8).max(8));
    wg / 8 * 8
}

/// As [`rms_norm`], also writing y as Q8 activations into `xq` (the layout
/// `matvec_q8::quantize_q8` writes for `rows` vectors of `n`, in the given word order), when
/// given.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_into(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    w: BufRange,
    y: Act,
    n: usize,
    rows: usize,
    eps: f32,
    xq: Option<(BufRange, Q8Order)>,
) -> VkResult<()> {
    let (nblocks, ds_base) = match xq {
        Some((r, _)) => matvec_q8::q8_layout("rmsnorm_q8", r, n, rows)?,
        None => (0, 0),
    };
    let wg = rms_norm_wg(gpu, n);
    if wg == 0 {
        return Err(VulkanError::invalid(
            "rmsnorm",
            "workgroups under 8 invocations",
        ));
    }
    let kernel = gpu.kernel(&KernelSpec {
        variant: if xq.is_some() {
            "rmsnorm_q8"
        } else {
            "rmsnorm"
        }
        .into(),
        bindings: if xq.is_some() { 4 } else { 3 },
        push_size: std::mem::size_of::<RmsNormPush>() as u32,
        spec: vec![wg, xq.map_or(0, |(_, o)| o as u32)],
        local_size: wg,
        subgroup_sized: true,
    })?;
    let push = RmsNormPush {
        n: u32_of("n", n)?,
        x_off: u32_of("x_off", x.off)?,
        x_stride: u32_of("x_stride", x.stride)?,
        y_off: u32_of("y_off", y.off)?,
        y_stride: u32_of("y_stride", y.stride)?,
        eps,
        nblocks,
        ds_base,
    };
    let mut bindings = vec![
        Binding::read(x.range),
        Binding::read(w),
        Binding::write(y.range),
    ];
    bindings.extend(xq.map(|(r, _)| Binding::write(r)));
    rec.dispatch(
        descs,
        &kernel,
        &bindings,
        push_bytes(&push),
        [u32_of("rows", rows)?, 1, 1],
        "rmsnorm",
        (rows * n * 8 + n * 4) as u64,
    )
}
