//! Micro-benchmark of the Vulkan weight kernels at Llama-2-7B sizes: for every weight format, the
//! decode matrix-vector product (one 4096-wide token through an 11008 x 4096 matrix) and the
//! prefill matrix-matrix product (512 tokens), timed with GPU timestamps.
//!
//!     cargo run --release --example vulkan_kernel_bench [-- ROWS COLS TOKENS REPEATS]
//!
//! Weights are random blocks with finite scales (speed does not depend on the values).

use rawrxd::engine::vulkan::kernels::matvec::{self, Act, Output};
use rawrxd::engine::vulkan::kernels::WeightMatrix;
use rawrxd::engine::vulkan::shaders::WEIGHT_FORMATS;
use rawrxd::engine::vulkan::{DescriptorCache, Gpu, GpuOptions, MemoryClass, Recorder};
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

fn random_weights(ty: GgmlType, ncols: usize, nrows: usize, seed: u64) -> Vec<u8> {
    let nblocks = ncols / ty.block_size() * nrows;
    let mut s = seed | 1;
    let mut bytes: Vec<u8> = (0..nblocks * ty.type_size())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect();
    let small = half::f16::from_f32(0.01).to_le_bytes();
    if ty.is_float() {
        // Keep float weights finite: small values everywhere.
        let one = match ty {
            GgmlType::F32 => 0.01f32.to_le_bytes().to_vec(),
            GgmlType::F16 => small.to_vec(),
            _ => half::bf16::from_f32(0.01).to_le_bytes().to_vec(),
        };
        for c in bytes.chunks_mut(one.len()) {
            c.copy_from_slice(&one);
        }
    }
    for b in 0..nblocks {
        for &off in scale_fields(ty) {
            bytes[b * ty.type_size() + off..][..2].copy_from_slice(&small);
        }
    }
    bytes
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nrows = args.first().copied().unwrap_or(11008);
    let ncols = args.get(1).copied().unwrap_or(4096);
    let ntok = args.get(2).copied().unwrap_or(512);
    let repeats = args.get(3).copied().unwrap_or(20);
    let gpu = Gpu::new(&GpuOptions::from_env())?;
    println!(
        "device: {} ({}), subgroup {}",
        gpu.caps().name,
        gpu.caps().driver_info,
        gpu.caps().subgroup.size
    );
    println!("matrix {nrows} x {ncols}, prefill {ntok} tokens, {repeats} repeats");
    println!(
        "{:<6} {:>9} {:>11} {:>9} {:>12} {:>10}",
        "type", "MB", "matvec µs", "GB/s", "matmul ms", "TFLOP/s"
    );
    let x = gpu.buffer((ntok * ncols * 4) as u64, MemoryClass::Device)?;
    let y = gpu.buffer((ntok * nrows * 4) as u64, MemoryClass::Device)?;
    let mut rec = Recorder::new(&gpu, true)?;
    rec.begin()?;
    rec.fill(x.range(), 0x3c23d70a)?; // 0.01f32
    rec.submit_wait()?;
    for ty in WEIGHT_FORMATS {
        if ncols % ty.block_size() != 0 {
            continue;
        }
        let bytes = random_weights(ty, ncols, nrows, 7);
        let w = WeightMatrix::upload(&gpu, ty, ncols, &[&bytes])?;
        let mut descs = DescriptorCache::new(&gpu);
        let xa = Act::packed(x.range(), ncols);
        let ya = Act::packed(y.range(), nrows);
        rec.begin()?;
        for _ in 0..repeats {
            matvec::matvec(&gpu, &mut rec, &mut descs, &w, xa, ya, 1, Output::Store)?;
        }
        rec.submit_wait()?;
        let mv = rec.profile()?.unwrap_or_default();
        rec.begin()?;
        for _ in 0..repeats.div_ceil(4) {
            matvec::matmul(&gpu, &mut rec, &mut descs, &w, xa, ya, ntok, Output::Store)?;
        }
        rec.submit_wait()?;
        let mm = rec.profile()?.unwrap_or_default();
        let mvk = mv.kernels.get("matvec").copied().unwrap_or_default();
        let mmk = mm.kernels.get("matmul").copied().unwrap_or_default();
        let flops = 2.0 * nrows as f64 * ncols as f64 * ntok as f64;
        println!(
            "{:<6} {:>9.1} {:>11.1} {:>9.1} {:>12.3} {:>10.2}",
            ty.ggml_name(),
            w.bytes() as f64 / 1e6,
            mvk.mean_us(),
            w.bytes() as f64 / (mvk.mean_us() * 1e3),
            mmk.mean_us() / 1e3,
            flops / (mmk.mean_us() * 1e6)
        );
    }
    Ok(())
}
