//! The SPIR-V variants build.rs compiled from shaders/ and embedded in the binary.
//!
//! Invariant: the table is generated from build.rs's single variant table; names are
//! `kernel[_format][_shape][_ext]` (e.g. `matvec_q4_k`, `matmul_q8_0_l`).

use crate::quant::GgmlType;

/// One compiled shader variant.
#[derive(Debug)]
pub struct ShaderVariant {
    /// Unique name.
    pub name: &'static str,
    /// Source kernel (file stem in shaders/).
    pub kernel: &'static str,
    /// Weight format it dequantizes, for per-format kernels.
    pub format: Option<GgmlType>,
    /// Compile-time workgroup shape ("" when sized by specialization constants).
    pub shape: &'static str,
    /// Optional extension it needs.
    pub ext: Option<&'static str>,
    /// SPIR-V bytes (not necessarily 4-aligned in memory; copied into words when used).
    pub spirv: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// The variant called `name`.
pub fn find(name: &str) -> Option<&'static ShaderVariant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// The variant of `kernel` for weight format `ty` with `shape` and no optional extension.
pub fn for_format(kernel: &str, ty: GgmlType, shape: &str) -> Option<&'static ShaderVariant> {
    VARIANTS
        .iter()
        .find(|v| v.kernel == kernel && v.format == Some(ty) && v.shape == shape && v.ext.is_none())
}

/// The variant of `kernel` for weight format `ty` with `shape` that needs extension `ext`.
pub fn for_format_ext(
    kernel: &str,
    ty: GgmlType,
    shape: &str,
    ext: &str,
) -> Option<&'static ShaderVariant> {
    VARIANTS.iter().find(|v| {
        v.kernel == kernel && v.format == Some(ty) && v.shape == shape && v.ext == Some(ext)
    })
}

/// Weight formats the kernels dequantize.
pub const WEIGHT_FORMATS: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_format_has_its_kernels() {
        for ty in WEIGHT_FORMATS {
            for (kernel, shape) in [
                ("matvec", ""),
                ("get_rows", ""),
                ("matmul", "l"),
                ("matmul", "s"),
            ] {
                let v = for_format(kernel, ty, shape)
                    .unwrap_or_else(|| panic!("{kernel} {ty} {shape} missing"));
                assert_eq!(v.spirv.len() % 4, 0);
                assert_eq!(
                    &v.spirv[..4],
                    &0x0723_0203u32.to_le_bytes(),
                    "{} is not SPIR-V",
                    v.name
                );
            }
        }
        for k in [
            "rmsnorm",
            "rope_kv",
            "attn",
            "attn_prefill",
            "eltwise",
            "argmax",
        ] {
            assert!(find(k).is_some(), "{k} missing");
        }
    }
}
