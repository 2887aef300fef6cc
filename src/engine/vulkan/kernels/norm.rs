//! RMSNorm fused with the norm-weight multiply (rmsnorm.comp).

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::VkResult;
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::matvec::Act;
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
    let wg = wg_at_least(gpu.caps(), 256.min(n as u32));
    let kernel = gpu.kernel(&KernelSpec {
        variant: "rmsnorm".into(),
        bindings: 3,
        push_size: std::mem::size_of::<RmsNormPush>() as u32,
        spec: vec![wg],
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
    };
    rec.dispatch(
        descs,
        &kernel,
        &[
            Binding::read(x.range),
            Binding::read(w),
            Binding::write(y.range),
        ],
        push_bytes(&push),
        [u32_of("rows", rows)?, 1, 1],
        "rmsnorm",
        (rows * n * 8 + n * 4) as u64,
    )
}
