//! Dispatch wrappers, one module per shader family. Each mirrors its shader's push constants 1:1
//! in a `#[repr(C)]` struct and chooses workgroup sizes from `DeviceCaps` (never a fixed
//! subgroup size). Offsets and strides in push constants count f32 elements relative to the
//! bound range.

pub mod attention;
pub mod eltwise;
pub mod matmul_q8;
pub mod matvec;
pub mod matvec_q8;
pub mod norm;
pub mod rope;
pub mod weights;

use super::caps::DeviceCaps;

pub use weights::WeightMatrix;

/// The integer in environment variable `name` when it parses and lies in `range` (tuning
/// knobs), else `default`.
pub fn env_in(name: &str, range: std::ops::RangeInclusive<usize>, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| range.contains(n))
        .unwrap_or(default)
}

/// True when environment variable `name` is `0`: a switch that turns a path on by default off.
pub fn env_off(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim() == "0")
}

/// Subgroups per workgroup for the "one subgroup per row" kernels.
pub const SUBGROUPS_PER_WG: u32 = 4;

/// The largest workgroup of whole subgroups the device runs with a required subgroup size.
fn max_wg(caps: &DeviceCaps) -> u32 {
    let sg = caps.subgroup.size.max(1);
    let by_invocations = caps.limits.max_workgroup_invocations / sg * sg;
    match caps.subgroup.max_workgroup_subgroups {
        0 => by_invocations,
        m => by_invocations.min(m * sg),
    }
}

/// A workgroup of `n` subgroups, capped by the device's limits.
pub fn subgroup_wg(caps: &DeviceCaps, n: u32) -> u32 {
    let sg = caps.subgroup.size.max(1);
    (sg * n).min(max_wg(caps)).max(sg)
}

/// A workgroup of at least `min` invocations, rounded up to whole subgroups (capped by the
/// device's limits).
pub fn wg_at_least(caps: &DeviceCaps, min: u32) -> u32 {
    let sg = caps.subgroup.size.max(1);
    (min.div_ceil(sg) * sg).min(max_wg(caps)).max(sg)
}

/// `n` workgroups laid out in x, wrapping into y past the device's x limit (shaders use
/// `linear_group()`; the extra groups of the last y row exit early).
pub fn linear_groups(caps: &DeviceCaps, n: u32) -> [u32; 3] {
    let max_x = caps.limits.max_workgroup_count[0].max(1);
    if n <= max_x {
        [n.max(1), 1, 1]
    } else {
        [max_x, n.div_ceil(max_x), 1]
    }
}

/// The bytes of a push-constant struct.
pub fn push_bytes<T: bytemuck::Pod>(p: &T) -> &[u8] {
    bytemuck::bytes_of(p)
}

/// Converts an element count or offset to the u32 a shader takes.
pub fn u32_of(what: &'static str, v: usize) -> super::error::VkResult<u32> {
    u32::try_from(v)
        .map_err(|_| super::VulkanError::invalid(what, format!("{v} does not fit in 32 bits")))
}
