//! Throughput of rawrxd's CPU quantization routines, per format.
//!
//! `cargo run --release --example quant_bench [n_rows] [n_per_row]` (default 256 x 4096): times
//! `quantize_rows` and `dequantize_rows` (all threads) and `vec_dot` over every row (one thread)
//! and prints MB/s of f32 data (4 bytes per element) for each.

use std::time::Instant;

use rawrxd::quant::{self, GgmlType};

fn main() -> rawrxd::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let n_rows = args.next().and_then(Result::ok).unwrap_or(256);
    let n_per_row = args.next().and_then(Result::ok).unwrap_or(4096);
    let n = n_rows * n_per_row;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let x: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let v = &x[..n_per_row];
    let mb = n as f64 * 4.0 / 1e6;
    println!(
        "{n_rows} x {n_per_row} f32 ({mb:.1} MB), {} threads",
        rayon::current_num_threads()
    );
    println!(
        "{:>6} {:>12} {:>12} {:>12}",
        "type", "quant MB/s", "dequant MB/s", "vec_dot MB/s"
    );
    for ty in GgmlType::ALL {
        if n_per_row % ty.block_size() != 0 {
            continue;
        }
        let t = Instant::now();
        let q = quant::quantize_rows(ty, &x, n_per_row)?;
        let tq = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let y = quant::dequantize_rows(ty, &q, n_per_row)?;
        let td = t.elapsed().as_secs_f64();
        let row_bytes = q.len() / n_rows;
        let t = Instant::now();
        let mut acc = 0f32;
        for row in q.chunks_exact(row_bytes) {
            acc += quant::vec_dot(ty, row, v)?;
        }
        let tv = t.elapsed().as_secs_f64();
        std::hint::black_box((acc, y));
        println!(
            "{:>6} {:>12.0} {:>12.0} {:>12.0}",
            ty.ggml_name(),
            mb / tq,
            mb / td,
            mb / tv
        );
    }
    Ok(())
}
