//! Element-wise ops (eltwise.comp) and argmax (argmax.comp).

use bytemuck::{Pod, Zeroable};

use super::super::buffer::BufRange;
use super::super::command::{Binding, Recorder};
use super::super::context::Gpu;
use super::super::error::VkResult;
use super::super::pipeline::{DescriptorCache, KernelSpec};
use super::matvec::Act;
use super::{push_bytes, u32_of, wg_at_least};

/// An element-wise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EltOp {
    /// a + b.
    Add = 0,
    /// a * b.
    Mul = 1,
    /// silu(a) * b.
    SwiGlu = 2,
    /// a.
    Copy = 3,
}

/// Push constants of eltwise.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct EltwisePush {
    pub n: u32,
    pub op: u32,
    pub a_off: u32,
    pub a_stride: u32,
    pub b_off: u32,
    pub b_stride: u32,
    pub y_off: u32,
    pub y_stride: u32,
}

/// Push constants of argmax.comp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ArgmaxPush {
    pub n: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub out_off: u32,
}

/// Records y[r][i] = op(a[r][i], b[r][i]) for `rows` rows of `n` elements.
#[allow(clippy::too_many_arguments)]
pub fn eltwise(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    op: EltOp,
    a: Act,
    b: Act,
    y: Act,
    n: usize,
    rows: usize,
) -> VkResult<()> {
    let wg = wg_at_least(gpu.caps(), 128);
    let kernel = gpu.kernel(&KernelSpec {
        variant: "eltwise".into(),
        bindings: 3,
        push_size: std::mem::size_of::<EltwisePush>() as u32,
        spec: vec![wg],
        local_size: wg,
        subgroup_sized: false,
    })?;
    let push = EltwisePush {
        n: u32_of("n", n)?,
        op: op as u32,
        a_off: u32_of("a_off", a.off)?,
        a_stride: u32_of("a_stride", a.stride)?,
        b_off: u32_of("b_off", b.off)?,
        b_stride: u32_of("b_stride", b.stride)?,
        y_off: u32_of("y_off", y.off)?,
        y_stride: u32_of("y_stride", y.stride)?,
    };
    rec.dispatch(
        descs,
        &kernel,
        &[
            Binding::read(a.range),
            Binding::read(b.range),
            Binding::write(y.range),
        ],
        push_bytes(&push),
        [u32_of("n", n)?.div_ceil(wg), u32_of("rows", rows)?, 1],
        "eltwise",
        (rows * n * 12) as u64,
    )
}

/// Records out[out_off + r] = argmax of row r of x, for `rows` rows of `n` elements.
#[allow(clippy::too_many_arguments)]
pub fn argmax(
    gpu: &Gpu,
    rec: &mut Recorder,
    descs: &mut DescriptorCache,
    x: Act,
    out: BufRange,
    out_off: usize,
    n: usize,
    rows: usize,
) -> VkResult<()> {
    let wg = wg_at_least(gpu.caps(), 256);
    let kernel = gpu.kernel(&KernelSpec {
        variant: "argmax".into(),
        bindings: 2,
        push_size: std::mem::size_of::<ArgmaxPush>() as u32,
        spec: vec![wg],
        local_size: wg,
        subgroup_sized: true,
    })?;
    let push = ArgmaxPush {
        n: u32_of("n", n)?,
        x_off: u32_of("x_off", x.off)?,
        x_stride: u32_of("x_stride", x.stride)?,
        out_off: u32_of("out_off", out_off)?,
    };
    rec.dispatch(
        descs,
        &kernel,
        &[Binding::read(x.range), Binding::write(out)],
        push_bytes(&push),
        [u32_of("rows", rows)?, 1, 1],
        "argmax",
        (rows * n * 4) as u64,
    )
}
