//! Compiles shaders/*.comp to SPIR-V with glslc and writes the variant table the Vulkan backend
//! embeds (`$OUT_DIR/shaders.rs`, one `include_bytes!` per variant).
//!
//! Every variant comes from the one table in `variant_table()`: kernel source x weight format x
//! workgroup shape x optional GLSL extension. Optional extensions are probed by compiling a tiny
//! shader; when the compiler rejects one (Debian bookworm's glslc, shaderc 2023.2, rejects
//! GL_KHR_cooperative_matrix and GL_EXT_integer_dot_product; it does compile the older
//! GL_NV_cooperative_matrix, which the tensor-core matmul and prompt attention use, and
//! GL_EXT_spirv_intrinsics, through which matvec_q8 emits integer dot products), variants that
//! need it are skipped with a cargo warning and the runtime falls back to the variants that
//! exist. `RAWRXD_GLSLC` names another glslc.
//!
//! Variants whose extension no Debian glslc knows (GL_NV_cooperative_matrix2: matmul_cm2.comp)
//! are compiled by the glslang crate instead (a build dependency that builds glslang from its
//! vendored source), so they exist on every machine; their extensions are marked `glslang` in
//! the table and they compile for Vulkan 1.3 (SPIR-V 1.6) without spirv-opt.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Weight formats: (suffix used in variant names, GLSL macro, `GgmlType` variant).
const FORMATS: &[(&str, &str, &str)] = &[
    ("f32", "FMT_F32", "F32"),
    ("f16", "FMT_F16", "F16"),
    ("bf16", "FMT_BF16", "BF16"),
    ("q4_0", "FMT_Q4_0", "Q4_0"),
    ("q4_1", "FMT_Q4_1", "Q4_1"),
    ("q5_0", "FMT_Q5_0", "Q5_0"),
    ("q5_1", "FMT_Q5_1", "Q5_1"),
    ("q8_0", "FMT_Q8_0", "Q8_0"),
    ("q2_k", "FMT_Q2_K", "Q2K"),
    ("q3_k", "FMT_Q3_K", "Q3K"),
    ("q4_k", "FMT_Q4_K", "Q4K"),
    ("q5_k", "FMT_Q5_K", "Q5K"),
    ("q6_k", "FMT_Q6_K", "Q6K"),
];

/// Suffixes of the float formats in [`FORMATS`].
const FLOAT_SUFFIXES: &[&str] = &["f32", "f16", "bf16"];

/// An optional GLSL extension: its name in variant names, and a shader that uses it (the probe).
struct Ext {
    name: &'static str,
    probe: &'static str,
    /// Compiled by the glslang crate (a build dependency, recent enough for the extension)
    /// instead of glslc.
    glslang: bool,
}

const EXT_INTDOT: Ext = Ext {
    name: "intdot",
    probe: "#version 450\n#extension GL_EXT_integer_dot_product : require\nlayout(local_size_x = 1) in;\n\
            layout(binding = 0) buffer B { int b[]; };\nvoid main() { b[0] = dotPacked4x8EXT(b[1], b[2]); }\n",
    glslang: false,
};

const EXT_COOPMAT: Ext = Ext {
    name: "coopmat",
    probe: "#version 450\n#extension GL_KHR_cooperative_matrix : require\n#extension GL_KHR_memory_scope_semantics : require\n\
            #extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\nlayout(local_size_x = 32) in;\n\
            void main() { coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a = coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>(0.0); }\n",
    glslang: false,
};

/// Integer dot products through GL_EXT_spirv_intrinsics (OpSDot emitted directly), which glslc
/// versions without GL_EXT_integer_dot_product still compile.
const EXT_INTDOT_SPV: Ext = Ext {
    name: "intdot_spv",
    probe: "#version 450\n#extension GL_EXT_spirv_intrinsics : require\nlayout(local_size_x = 1) in;\n\
            layout(binding = 0) buffer B { int b[]; };\n\
            spirv_instruction(extensions = [\"SPV_KHR_integer_dot_product\"], capabilities = [6019, 6018], id = 4450)\n\
            int sdot(int a, int c, spirv_literal int fmt);\nvoid main() { b[0] = sdot(b[1], b[2], 0); }\n",
    glslang: false,
};

const EXT_COOPMAT_NV: Ext = Ext {
    name: "coopmat_nv",
    probe: "#version 450\n#extension GL_NV_cooperative_matrix : require\n#extension GL_KHR_memory_scope_semantics : require\n\
            #extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\nlayout(local_size_x = 32) in;\n\
            shared float16_t s[256];\nvoid main() { fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a; coopMatLoadNV(a, s, 0, 16, false); }\n",
    glslang: false,
};

/// Integer tensor-core tiles (GL_NV_integer_cooperative_matrix), with integer dot products
/// through GL_EXT_spirv_intrinsics as in EXT_INTDOT_SPV.
const EXT_COOPMAT_NV_I8: Ext = Ext {
    name: "coopmat_nv_i8",
    probe: "#version 450\n#extension GL_NV_cooperative_matrix : require\n#extension GL_NV_integer_cooperative_matrix : require\n\
            #extension GL_KHR_memory_scope_semantics : require\n#extension GL_EXT_shader_explicit_arithmetic_types : require\n\
            #extension GL_EXT_spirv_intrinsics : require\nlayout(local_size_x = 32) in;\n\
            shared uvec4 s[64];\nlayout(binding = 0) buffer B { int b[]; };\n\
            spirv_instruction(extensions = [\"SPV_KHR_integer_dot_product\"], capabilities = [6019, 6018], id = 4450)\n\
            int sdot(int a, int c, spirv_literal int fmt);\n\
            void main() { icoopmatNV<8, gl_ScopeSubgroup, 16, 32> a; icoopmatNV<8, gl_ScopeSubgroup, 32, 8> c;\n\
            coopMatLoadNV(a, s, 0, 2, false); coopMatLoadNV(c, s, 32, 2, true);\n\
            icoopmatNV<32, gl_ScopeSubgroup, 16, 8> d = coopMatMulAddNV(a, c, icoopmatNV<32, gl_ScopeSubgroup, 16, 8>(0));\n\
            b[0] = d[0] + sdot(b[1], b[2], 0); }\n",
    glslang: false,
};

/// Workgroup-scope cooperative matrices with tensor addressing (GL_NV_cooperative_matrix2, on
/// GL_KHR_cooperative_matrix), which Debian bookworm's glslc predates: compiled by the glslang
/// crate instead.
const EXT_COOPMAT2: Ext = Ext {
    name: "coopmat2",
    probe: "#version 450\n#extension GL_KHR_cooperative_matrix : require\n#extension GL_NV_cooperative_matrix2 : require\n\
            #extension GL_KHR_memory_scope_semantics : require\n#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\n\
            layout(local_size_x = 256) in;\nlayout(binding = 0) buffer B { float16_t b[]; };\n\
            void main() { tensorLayoutNV<2> t = createTensorLayoutNV(2); t = setTensorLayoutDimensionNV(t, 128, 64);\n\
            coopmat<float16_t, gl_ScopeWorkgroup, 128, 64, gl_MatrixUseA> a; coopMatLoadTensorNV(a, b, 0, t); }\n",
    glslang: true,
};

/// A compile-time workgroup shape: its name in variant names and the macros that set it.
struct Shape {
    name: &'static str,
    defines: &'static [(&'static str, &'static str)],
}

/// One row of the variant table.
struct Row {
    /// Source file in shaders/, without `.comp`; also the kernel name.
    kernel: &'static str,
    /// Built once per weight format when true, once without a format otherwise.
    per_format: bool,
    /// Compile-time shapes; empty means one unnamed shape (sizes come from specialization constants).
    shapes: &'static [Shape],
    /// Extension the variant needs, if any; such variants are optional.
    ext: Option<&'static Ext>,
    /// Extra macros for this row.
    defines: &'static [(&'static str, &'static str)],
    /// With `per_format`: only the quantized formats (no F32, F16, BF16).
    quantized_only: bool,
    /// With `per_format`: formats (suffixes of [`FORMATS`]) the kernel has no form for.
    skip_formats: &'static [&'static str],
}

const MATMUL_SHAPES: &[Shape] = &[
    Shape {
        name: "l",
        defines: &[("BM", "64u"), ("BN", "64u")],
    },
    Shape {
        name: "s",
        defines: &[("BM", "32u"), ("BN", "32u")],
    },
];

/// Tensor-core matmul tiles: WM x WN subgroups, each TM x TN 16x16 output tiles, BK columns per
/// step. "w" (128 rows x 64 tokens) for prompts, "d" (32 x 16) for decode batches. Measured on an
/// H100 (synthetic Llama-2-7B Q4_K_M pp512, docs/BENCHMARKS.md): 128x64 beat 64x128, 64x64,
/// 128x128 and 256x64.
const COOPMAT_SHAPES: &[Shape] = &[
    Shape {
        name: "w",
        defines: &[
            ("WM", "4u"),
            ("WN", "2u"),
            ("TM", "2u"),
            ("TN", "2u"),
            ("BK", "64u"),
        ],
    },
    Shape {
        name: "d",
        defines: &[
            ("WM", "2u"),
            ("WN", "1u"),
            ("TM", "1u"),
            ("TN", "1u"),
            ("BK", "128u"),
        ],
    },
];

/// The staged tensor-core matmul's tile (weights and activations both f16 rows in memory): 128
/// rows x 64 tokens as 2 x 2 subgroups of 4 x 2 16x16 tiles, 64 columns a step. Measured on an
/// H200 (synthetic Llama-2-7B Q4_K_M pp512, docs/BENCHMARKS.md) against 15 other shapes, with
/// and without the f16 activations.
const STAGED_SHAPE: &[Shape] = &[Shape {
    name: "s",
    defines: &[
        ("WM", "2u"),
        ("WN", "2u"),
        ("TM", "4u"),
        ("TN", "2u"),
        ("BK", "64u"),
    ],
}];

/// Workgroup tiles of the NV_cooperative_matrix2 product (matmul_cm2.comp): BM rows x BN tokens,
/// BK columns a step, WG lanes. Measured on an H200 (synthetic Llama-2-7B Q4_K_M, pp512 and
/// pp64, docs/BENCHMARKS.md) against 17 other shapes: "m" for prompts, "s" for short chunks.
const CM2_SHAPES: &[Shape] = &[
    Shape {
        name: "m",
        defines: &[
            ("BM", "128u"),
            ("BN", "128u"),
            ("BK", "64u"),
            ("WG", "128u"),
        ],
    },
    Shape {
        name: "s",
        defines: &[("BM", "64u"), ("BN", "64u"), ("BK", "64u"), ("WG", "64u")],
    },
];

/// matvec_q8's NORM_IN form.
const NORM_IN_SHAPE: &[Shape] = &[Shape {
    name: "norm",
    defines: &[],
}];

fn variant_table() -> Vec<Row> {
    vec![
        Row {
            kernel: "matvec",
            per_format: true,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "matmul",
            per_format: true,
            shapes: MATMUL_SHAPES,
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "get_rows",
            per_format: true,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "rmsnorm",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        // rmsnorm_q8: the norm also writes Q8 activations (for matvec_q8).
        Row {
            kernel: "rmsnorm",
            per_format: false,
            shapes: &[Shape {
                name: "q8",
                defines: &[("Q8_OUT", "1")],
            }],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "rope_kv",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "attn",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        // attn_q8: also writes Q8 activations (for matvec_q8).
        Row {
            kernel: "attn",
            per_format: false,
            shapes: &[Shape {
                name: "q8",
                defines: &[("Q8_OUT", "1")],
            }],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "attn_prefill",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        // The prefill attention on tensor cores.
        Row {
            kernel: "attn_prefill_cm",
            per_format: false,
            shapes: &[],
            ext: Some(&EXT_COOPMAT_NV),
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "eltwise",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "argmax",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "matmul_coopmat",
            per_format: true,
            shapes: COOPMAT_SHAPES,
            ext: Some(&EXT_COOPMAT_NV),
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        // The staged path: weights dequantized to f16 rows once (dequant_f16) and activations
        // converted to f16 rows (f16_rows), then multiplied.
        Row {
            kernel: "matmul_coopmat",
            per_format: false,
            shapes: STAGED_SHAPE,
            ext: Some(&EXT_COOPMAT_NV),
            defines: &[("STAGED_F16", "1")],
            quantized_only: false,
            skip_formats: &[],
        },
        // The same staged product on workgroup-scope cooperative matrices (NV_cooperative_matrix2).
        Row {
            kernel: "matmul_cm2",
            per_format: false,
            shapes: CM2_SHAPES,
            ext: Some(&EXT_COOPMAT2),
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "f16_rows",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        // Decode products on Q8 activations with integer dot products.
        Row {
            kernel: "matvec_q8",
            per_format: true,
            shapes: &[],
            ext: Some(&EXT_INTDOT_SPV),
            defines: &[],
            quantized_only: true,
            skip_formats: &[],
        },
        // The same for one vector given before its RMS norm (the norm computed by every
        // workgroup: no norm dispatch).
        Row {
            kernel: "matvec_q8",
            per_format: true,
            shapes: NORM_IN_SHAPE,
            ext: Some(&EXT_INTDOT_SPV),
            defines: &[("NORM_IN", "1")],
            quantized_only: true,
            skip_formats: &[],
        },
        // Batched decode products on Q8 activations with integer tensor-core tiles; the "emu"
        // build computes the same tiles lane by lane (tests on devices without them).
        Row {
            kernel: "matmul_q8",
            per_format: true,
            shapes: &[],
            ext: Some(&EXT_COOPMAT_NV_I8),
            defines: &[],
            quantized_only: true,
            skip_formats: &[],
        },
        Row {
            kernel: "matmul_q8",
            per_format: true,
            shapes: &[Shape {
                name: "emu",
                defines: &[("EMULATE_MMA", "1")],
            }],
            ext: Some(&EXT_INTDOT_SPV),
            defines: &[],
            quantized_only: true,
            skip_formats: &[],
        },
        Row {
            kernel: "quantize_q8",
            per_format: false,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
        Row {
            kernel: "dequant_f16",
            per_format: true,
            shapes: &[],
            ext: None,
            defines: &[],
            quantized_only: false,
            skip_formats: &[],
        },
    ]
}

/// One variant to compile.
struct Variant {
    name: String,
    kernel: &'static str,
    format: Option<&'static str>,
    shape: &'static str,
    ext: Option<&'static str>,
    /// Compiled by the glslang crate (its extension needs it), not glslc.
    glslang: bool,
    defines: Vec<(String, String)>,
}

fn expand(rows: &[Row]) -> Vec<Variant> {
    let mut out = Vec::new();
    for row in rows {
        let formats: Vec<Option<&(&str, &str, &str)>> = if row.per_format {
            FORMATS
                .iter()
                .filter(|f| !row.quantized_only || !FLOAT_SUFFIXES.contains(&f.0))
                .filter(|f| !row.skip_formats.contains(&f.0))
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        let no_shape = [Shape {
            name: "",
            defines: &[],
        }];
        let shapes: &[Shape] = if row.shapes.is_empty() {
            &no_shape
        } else {
            row.shapes
        };
        for fmt in &formats {
            for shape in shapes {
                let mut name = row.kernel.to_string();
                let mut defines: Vec<(String, String)> = Vec::new();
                if let Some((suffix, mac, _)) = fmt {
                    name.push('_');
                    name.push_str(suffix);
                    defines.push((mac.to_string(), "1".to_string()));
                }
                if !shape.name.is_empty() {
                    name.push('_');
                    name.push_str(shape.name);
                }
                if let Some(ext) = row.ext {
                    name.push('_');
                    name.push_str(ext.name);
                }
                defines.extend(
                    shape
                        .defines
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
                defines.extend(
                    row.defines
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
                out.push(Variant {
                    name,
                    kernel: row.kernel,
                    format: fmt.map(|f| f.2),
                    shape: shape.name,
                    ext: row.ext.map(|e| e.name),
                    glslang: row.ext.is_some_and(|e| e.glslang),
                    defines,
                });
            }
        }
    }
    out
}

fn glslc_path() -> PathBuf {
    env::var_os("RAWRXD_GLSLC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("glslc"))
}

fn glslc_args(src: &Path, out: &Path, include: &Path, defines: &[(String, String)]) -> Vec<String> {
    let mut args = vec![
        "-fshader-stage=compute".to_string(),
        "--target-env=vulkan1.2".to_string(),
        "-O".to_string(),
        format!("-I{}", include.display()),
    ];
    args.extend(defines.iter().map(|(k, v)| format!("-D{k}={v}")));
    args.push(src.display().to_string());
    args.push("-o".to_string());
    args.push(out.display().to_string());
    args
}

/// True when the extension's compiler (glslc, or the glslang crate) compiles its probe shader.
fn probe(glslc: &Path, ext: &Ext, out_dir: &Path) -> bool {
    let src = out_dir.join(format!("probe_{}.comp", ext.name));
    let spv = out_dir.join(format!("probe_{}.spv", ext.name));
    if fs::write(&src, ext.probe).is_err() {
        return false;
    }
    if ext.glslang {
        return glslang_compile(&src, &spv, &[]).is_ok();
    }
    Command::new(glslc)
        .args(glslc_args(&src, &spv, out_dir, &[]))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Compiles one compute shader with the glslang crate for Vulkan 1.3 (SPIR-V 1.6), with
/// `defines`; the source includes nothing (the crate's includer is not wired up). No SPIR-V
/// optimizer runs (the crate builds glslang without one); the driver's compiler optimizes.
fn glslang_compile(src: &Path, out: &Path, defines: &[(String, String)]) -> Result<(), String> {
    use glslang::{
        Compiler, CompilerOptions, ShaderInput, ShaderSource, ShaderStage, SourceLanguage,
        SpirvVersion, Target, VulkanVersion,
    };
    let text = fs::read_to_string(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let compiler = Compiler::acquire().ok_or("glslang failed to initialise")?;
    let source = ShaderSource::from(text);
    let options = CompilerOptions {
        source_language: SourceLanguage::GLSL,
        target: Target::Vulkan {
            version: VulkanVersion::Vulkan1_3,
            spirv_version: SpirvVersion::SPIRV1_6,
        },
        ..CompilerOptions::default()
    };
    let defs: Vec<(&str, Option<&str>)> = defines
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    let input = ShaderInput::new(
        &source,
        ShaderStage::Compute,
        &options,
        Some(&defs[..]),
        None,
    )
    .map_err(|e| e.to_string())?;
    let words = compiler
        .create_shader(input)
        .and_then(|s| s.compile())
        .map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let shader_dir = manifest.join("shaders");
    println!("cargo:rerun-if-env-changed=RAWRXD_GLSLC");
    println!("cargo:rerun-if-changed=shaders");
    if let Ok(entries) = fs::read_dir(&shader_dir) {
        for e in entries.flatten() {
            println!("cargo:rerun-if-changed={}", e.path().display());
        }
    }

    let glslc = glslc_path();
    match Command::new(&glslc).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "rawrxd needs glslc to compile its Vulkan shaders, and `{}` could not be run.\n\
             Install it (Debian/Ubuntu: `apt-get install glslc`; or the Vulkan SDK) or set RAWRXD_GLSLC \
             to the path of a glslc binary.",
            glslc.display()
        ),
    }

    let rows = variant_table();
    // Every optional extension is probed (the result is embedded, so `rawrxd devices` can say
    // what the shader compiler offered); variants needing a missing one are skipped.
    let mut ext_ok: Vec<(&str, bool)> = Vec::new();
    for ext in [
        &EXT_COOPMAT,
        &EXT_COOPMAT_NV,
        &EXT_COOPMAT_NV_I8,
        &EXT_COOPMAT2,
        &EXT_INTDOT,
        &EXT_INTDOT_SPV,
    ] {
        let ok = probe(&glslc, ext, &out_dir);
        let needed = rows
            .iter()
            .any(|r| r.ext.is_some_and(|e| e.name == ext.name));
        if !ok && needed {
            println!(
                "cargo:warning=glslc `{}` does not support the `{}` shader extension; its variants are \
                 skipped (set RAWRXD_GLSLC to a newer glslc to build them)",
                glslc.display(),
                ext.name
            );
        }
        ext_ok.push((ext.name, ok));
    }

    let variants = expand(&rows);
    let enabled: Vec<&Variant> = variants
        .iter()
        .filter(|v| {
            v.ext
                .is_none_or(|e| ext_ok.iter().any(|(n, ok)| *n == e && *ok))
        })
        .collect();

    // Compile in parallel: glslc is single-threaded and takes ~0.1 s per variant.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(8);
    let results: Vec<(usize, Result<(), String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let enabled = &enabled;
                let glslc = &glslc;
                let shader_dir = &shader_dir;
                let out_dir = &out_dir;
                s.spawn(move || {
                    let mut res = Vec::new();
                    for (i, v) in enabled.iter().enumerate().skip(t).step_by(threads) {
                        if v.glslang {
                            continue;
                        }
                        let src = shader_dir.join(format!("{}.comp", v.kernel));
                        let spv = out_dir.join(format!("{}.spv", v.name));
                        let r = match Command::new(glslc)
                            .args(glslc_args(&src, &spv, shader_dir, &v.defines))
                            .output()
                        {
                            Ok(o) if o.status.success() => Ok(()),
                            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
                            Err(e) => Err(e.to_string()),
                        };
                        res.push((i, r));
                    }
                    res
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("shader compile thread panicked"))
            .collect()
    });

    // The glslang crate's variants, one at a time (its process-wide state is not shared
    // across threads here).
    let results =
        results
            .into_iter()
            .chain(
                enabled
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.glslang)
                    .map(|(i, v)| {
                        let src = shader_dir.join(format!("{}.comp", v.kernel));
                        let spv = out_dir.join(format!("{}.spv", v.name));
                        (i, glslang_compile(&src, &spv, &v.defines))
                    }),
            );
    let mut ok = vec![false; enabled.len()];
    for (i, r) in results {
        match r {
            Ok(()) => ok[i] = true,
            Err(msg) if enabled[i].ext.is_some() => {
                println!(
                    "cargo:warning=optional shader variant {} failed to compile and is skipped: {}",
                    enabled[i].name,
                    msg.lines().next().unwrap_or("")
                );
            }
            Err(msg) => panic!("glslc failed on shader variant {}:\n{msg}", enabled[i].name),
        }
    }

    let mut table = String::new();
    table.push_str("// Generated by build.rs from its variant table. Do not edit.\n");
    table.push_str("pub static VARIANTS: &[ShaderVariant] = &[\n");
    for (v, _) in enabled.iter().zip(&ok).filter(|(_, ok)| **ok) {
        let fmt = v
            .format
            .map(|f| format!("Some(crate::quant::GgmlType::{f})"))
            .unwrap_or_else(|| "None".into());
        let ext = v
            .ext
            .map(|e| format!("Some({e:?})"))
            .unwrap_or_else(|| "None".into());
        writeln!(
            table,
            "    ShaderVariant {{ name: {:?}, kernel: {:?}, format: {fmt}, shape: {:?}, ext: {ext}, spirv: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{}.spv\")) }},",
            v.name, v.kernel, v.shape, v.name
        )
        .expect("writing to a String cannot fail");
    }
    table.push_str("];\n");
    table.push_str("/// Optional variants this build skipped: (name, needed extension).\n");
    table.push_str("pub static SKIPPED: &[(&str, &str)] = &[\n");
    for v in variants.iter().filter(|v| {
        !enabled
            .iter()
            .zip(&ok)
            .any(|(e, ok)| *ok && e.name == v.name)
    }) {
        writeln!(table, "    ({:?}, {:?}),", v.name, v.ext.unwrap_or(""))
            .expect("writing to a String cannot fail");
    }
    table.push_str("];\n");
    table
        .push_str("/// Optional shader extensions the build's compilers accepted (glslc; the glslang crate for those marked so in build.rs): (name, accepted).\n");
    table.push_str("pub static GLSLC_EXTENSIONS: &[(&str, bool)] = &[\n");
    for (n, ok) in &ext_ok {
        writeln!(table, "    ({n:?}, {ok}),").expect("writing to a String cannot fail");
    }
    table.push_str("];\n");
    fs::write(out_dir.join("shaders.rs"), table).expect("cannot write $OUT_DIR/shaders.rs");
}
