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

    /// The OpExtension names a SPIR-V module declares.
    fn spirv_extensions(spirv: &[u8]) -> Vec<String> {
        let words: Vec<u32> = spirv
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut out = Vec::new();
        let mut i = 5;
        while i < words.len() {
            let (op, len) = (words[i] & 0xffff, (words[i] >> 16) as usize);
            if len == 0 {
                break;
            }
            if op == 10 {
                let bytes: Vec<u8> = words[i + 1..i + len]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .take_while(|&b| b != 0)
                    .collect();
                out.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            i += len;
        }
        out
    }

    /// The glslang crate's variants are built on every machine (they do not depend on the
    /// system glslc): matmul_cm2's two tiles, SPIR-V 1.6 with the workgroup-scope cooperative
    /// matrix and tensor addressing extensions.
    #[test]
    fn cm2_tiles_are_built_by_glslang() {
        for shape in ["m", "s"] {
            let name = format!("matmul_cm2_{shape}_coopmat2");
            let v = find(&name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(&v.spirv[..4], &0x0723_0203u32.to_le_bytes());
            assert_eq!(
                &v.spirv[4..8],
                &0x0001_0600u32.to_le_bytes(),
                "{name}: SPIR-V 1.6"
            );
            let exts = spirv_extensions(v.spirv);
            for want in [
                "SPV_KHR_cooperative_matrix",
                "SPV_NV_cooperative_matrix2",
                "SPV_NV_tensor_addressing",
            ] {
                assert!(
                    exts.iter().any(|e| e == want),
                    "{name}: {want} not in {exts:?}"
                );
            }
        }
        assert!(!SKIPPED.iter().any(|(n, _)| n.starts_with("matmul_cm2")));
    }
}
