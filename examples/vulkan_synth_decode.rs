//! Decode and prefill speed of the Vulkan engine on a synthetic llama model with random weights
//! (speed does not depend on the values), by default the Llama-2-7B shape:
//!
//!     cargo run --release --example vulkan_synth_decode -- TYPE [N_LAYER] [PROMPT] [GEN]
//!
//! TYPE is the weight type of every matrix (q4_0, q4_K, q8_0, f16, ...); norms are f32 ones.
//! The model is written to $TMPDIR/rawrxd-synth-TYPE.gguf. Reports prefill and decode tokens/s,
//! the bytes one decode step reads and the resulting bandwidth, then a per-kernel profile of a
//! few decode steps (profiled dispatches are serialised, so that run is slower).
//! With RAWRXD_SYNTH_DUMP=FILE it also writes the logits of the prefill's last token and of one
//! decode step (f32 little-endian), to compare devices on the same synthetic model.

use std::time::Instant;

use rawrxd::engine::vulkan::{VulkanEngine, VulkanEngineOptions};
use rawrxd::engine::Engine;
use rawrxd::gguf::{GgufFile, GgufWriter, MetaValue, TensorPlan};
use rawrxd::model::{LlamaHParams, LlamaWeights};
use rawrxd::quant::GgmlType;

fn scale_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q2K => &[80, 82],
        GgmlType::Q3K => &[108],
        GgmlType::Q6K => &[208],
        _ => &[],
    }
}

fn tensor_bytes(t: &TensorPlan, seed: &mut u64) -> Vec<u8> {
    let n = t.n_bytes().expect("whole blocks") as usize;
    if t.ty == GgmlType::F32 {
        return std::iter::repeat_n(1.0f32.to_le_bytes(), n / 4)
            .flatten()
            .collect();
    }
    if t.ty.is_float() {
        let v = if t.ty == GgmlType::F16 {
            half::f16::from_f32(0.01).to_bits()
        } else {
            half::bf16::from_f32(0.01).to_bits()
        };
        return std::iter::repeat_n(v.to_le_bytes(), n / 2)
            .flatten()
            .collect();
    }
    let mut out = vec![0u8; n];
    for c in out.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
    let small = half::f16::from_f32(0.002).to_le_bytes();
    let ts = t.ty.type_size();
    for b in 0..n / ts {
        for &off in scale_fields(t.ty) {
            out[b * ts + off..][..2].copy_from_slice(&small);
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ty: GgmlType = args.first().map(String::as_str).unwrap_or("q4_0").parse()?;
    let n_layer: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let n_prompt: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(512);
    let n_gen: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(128);
    let (e, ff, n_head, vocab) = (4096u64, 11008u64, 32u32, 32000u64);
    let path = std::env::temp_dir().join(format!("rawrxd-synth-{}.gguf", ty.ggml_name()));

    let s = |v: &str| MetaValue::String(v.into());
    let meta = vec![
        ("general.architecture".to_string(), s("llama")),
        ("llama.embedding_length".into(), MetaValue::U32(e as u32)),
        ("llama.block_count".into(), MetaValue::U32(n_layer)),
        (
            "llama.feed_forward_length".into(),
            MetaValue::U32(ff as u32),
        ),
        ("llama.attention.head_count".into(), MetaValue::U32(n_head)),
        (
            "llama.attention.head_count_kv".into(),
            MetaValue::U32(n_head),
        ),
        ("llama.context_length".into(), MetaValue::U32(4096)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            MetaValue::F32(1e-5),
        ),
    ];
    let mut plan = vec![
        TensorPlan {
            name: "token_embd.weight".into(),
            dims: vec![e, vocab],
            ty,
        },
        TensorPlan {
            name: "output_norm.weight".into(),
            dims: vec![e],
            ty: GgmlType::F32,
        },
        TensorPlan {
            name: "output.weight".into(),
            dims: vec![e, vocab],
            ty,
        },
    ];
    for l in 0..n_layer {
        let p = |n: &str| format!("blk.{l}.{n}.weight");
        plan.push(TensorPlan {
            name: p("attn_norm"),
            dims: vec![e],
            ty: GgmlType::F32,
        });
        for n in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            plan.push(TensorPlan {
                name: p(n),
                dims: vec![e, e],
                ty,
            });
        }
        plan.push(TensorPlan {
            name: p("ffn_norm"),
            dims: vec![e],
            ty: GgmlType::F32,
        });
        plan.push(TensorPlan {
            name: p("ffn_gate"),
            dims: vec![e, ff],
            ty,
        });
        plan.push(TensorPlan {
            name: p("ffn_up"),
            dims: vec![e, ff],
            ty,
        });
        plan.push(TensorPlan {
            name: p("ffn_down"),
            dims: vec![ff, e],
            ty,
        });
    }
    let t0 = Instant::now();
    let mut w = GgufWriter::create(&path, &meta, plan.clone())?;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for t in &plan {
        w.write_tensor(&t.name, &tensor_bytes(t, &mut seed))?;
    }
    w.finish()?;
    let file = GgufFile::open(&path)?;
    let hp = LlamaHParams::from_gguf(&file)?;
    let weights = LlamaWeights::from_gguf(&file, &hp)?;
    println!(
        "model {} ({:.2} GB, written in {:.1} s)",
        path.display(),
        file.file_size() as f64 / 1e9,
        t0.elapsed().as_secs_f64()
    );

    let opts = VulkanEngineOptions {
        n_ctx: n_prompt + n_gen + 8,
        max_batch: 512,
        ..Default::default()
    };
    let t0 = Instant::now();
    let gpu = rawrxd::engine::vulkan::Gpu::new(&opts.gpu)?;
    let mut eng = VulkanEngine::with_gpu(gpu.clone(), &hp, &weights, &opts)?;
    println!(
        "device {}; loaded in {:.1} s; {:?}",
        eng.device_name(),
        t0.elapsed().as_secs_f64(),
        eng.memory()
    );
    let tokens: Vec<u32> = (0..n_prompt as u32)
        .map(|i| (i * 7919) % vocab as u32)
        .collect();
    for _ in 0..2 {
        // The second round is the measurement (the first compiles pipelines and warms up).
        eng.reset();
        let t = Instant::now();
        eng.forward(&tokens, 0, false)?;
        let pp = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for i in 0..n_gen {
            eng.forward(&[(i * 31) as u32 % vocab as u32], n_prompt + i, false)?;
        }
        let tg = t.elapsed().as_secs_f64();
        let bytes = eng.decode_weight_bytes() as f64;
        println!(
            "pp{n_prompt}: {:.1} tok/s   tg{n_gen}: {:.1} tok/s ({:.2} ms/token, {:.0} GB/s of weights{})",
            n_prompt as f64 / pp,
            n_gen as f64 / tg,
            tg * 1e3 / n_gen as f64,
            bytes * n_gen as f64 / tg / 1e9,
            eng.peak_bandwidth().map(|p| format!(", {:.0}% of peak", 100.0 * bytes * n_gen as f64 / tg / p)).unwrap_or_default()
        );
    }
    if let Some(dump) = std::env::var_os("RAWRXD_SYNTH_DUMP") {
        // Deterministic logits (prefill's last token, then one decode step) for comparing devices.
        eng.reset();
        let mut out = eng.forward(&tokens, 0, false)?;
        out.extend(eng.forward(&[5], n_prompt, false)?);
        std::fs::write(&dump, bytemuck::cast_slice(&out))?;
        println!(
            "wrote {} logits to {}",
            out.len(),
            std::path::Path::new(&dump).display()
        );
    }
    let (d, b) = eng.decode_step_stats();
    println!("decode step: {d} dispatches, {b} barriers");
    drop(eng);
    let popts = VulkanEngineOptions {
        profile: true,
        ..opts
    };
    let mut eng = VulkanEngine::with_gpu(gpu, &hp, &weights, &popts)?;
    let warm = tokens.len().min(64);
    eng.forward(&tokens[..warm], 0, false)?;
    eng.take_profile();
    for i in 0..8 {
        eng.forward(&[i as u32], warm + i, false)?;
    }
    if let Some(p) = eng.take_profile() {
        println!("profile of 8 decode steps (serialised):\n{p}");
    }
    std::fs::remove_file(&path).ok();
    Ok(())
}
