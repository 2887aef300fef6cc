//! `rawrxd bench`: prefill and decode throughput in the manner of llama-bench — pp and tg tokens/s
//! (mean ± sd over repetitions), ms/token percentiles, memory, effective bandwidth and its share
//! of the device's peak. A table for people, `--json` for machines.
//!
//! With `--batch B1,B2,..` it measures like llama-batched-bench instead: B sequences of `-p`
//! prompt tokens each, then `-n` decode steps advancing all B together (aggregate tokens/s and
//! the step's milliseconds, the inter-token latency each sequence sees).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use rawrxd::engine::batch::load_batch_engine_with;
use rawrxd::engine::batched_bench::{self, BatchedBenchConfig, BatchedRow};
use rawrxd::engine::bench::{self, BenchConfig, BenchResult};
use rawrxd::engine::{load_engine_with, Backend, LoadOptions};
use rawrxd::gguf::GgufFile;

/// Arguments of `rawrxd bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The GGUF model.
    #[arg(short, long)]
    pub model: PathBuf,
    /// Prompt tokens of the pp test (0 skips it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: usize,
    /// Generated tokens of the tg test (0 skips it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: usize,
    /// Measured repetitions of each test.
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repetitions: usize,
    /// Unmeasured warm-up repetitions.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Backend: vulkan, cpu or auto.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Vulkan device: index or name substring (see `rawrxd devices`).
    #[arg(long)]
    pub device: Option<String>,
    /// CPU threads.
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Print a per-kernel GPU timestamp profile after the runs (Vulkan).
    #[arg(long)]
    pub profile: bool,
    /// Seed of the random token ids.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Batched decoding (like llama-batched-bench): comma-separated batch sizes, e.g. 1,4,16.
    #[arg(long)]
    pub batch: Option<String>,
}

/// Runs the benchmark and prints its table (or JSON).
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(list) = &args.batch {
        return run_batched(args, list);
    }
    let backend: Backend = args.backend.parse()?;
    let file = Arc::new(GgufFile::open(&args.model)?);
    let n_ctx = args.n_prompt.max(args.n_gen).max(16);
    let opts = LoadOptions {
        n_ctx,
        threads: args.threads,
        device: args.device.clone(),
        profile: args.profile,
        ..LoadOptions::default()
    };
    let mut engine = load_engine_with(backend, file.clone(), &opts)?;
    let cfg = BenchConfig {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        repeats: args.repetitions.max(1),
        warmup: args.warmup,
        seed: args.seed,
    };
    let quiet = args.json;
    let result = bench::run(engine.as_mut(), &cfg, |test, i, n| {
        if !quiet {
            eprint!("\r{test} {i}/{n}   ");
        }
    })?;
    if !quiet {
        eprintln!();
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut j = serde_json::to_value(&result)?;
        j["model"] = serde_json::json!(args.model);
        j["model_size"] = serde_json::json!(file.tensor_bytes());
        j["n_params"] = serde_json::json!(file.n_params());
        j["bandwidth_share"] = serde_json::json!(result.bandwidth_share());
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }
    print_table(&mut out, args, &file, &result)?;
    if let Some(profile) = engine.take_profile_report() {
        writeln!(
            out,
            "\nper-kernel profile (GPU timestamps, all runs above):\n{profile}"
        )?;
    }
    Ok(())
}

fn print_table(
    out: &mut impl Write,
    args: &BenchArgs,
    file: &GgufFile,
    r: &BenchResult,
) -> anyhow::Result<()> {
    let name = args
        .model
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    writeln!(
        out,
        "model: {name} ({:.2} GiB, {:.2} B params)  backend: {}  device: {}  prompt matmul: {}  decode: {}",
        file.tensor_bytes() as f64 / (1u64 << 30) as f64,
        file.n_params() as f64 / 1e9,
        r.backend,
        r.device,
        r.prompt_matmul,
        r.decode_matvec
    )?;
    writeln!(
        out,
        "| {:>8} | {:>18} | {:>10} | {:>10} | {:>10} | {:>11} | {:>12} |",
        "test", "t/s", "ms p50", "ms p95", "ms p99", "GB/s", "% of peak"
    )?;
    writeln!(
        out,
        "|{:-<10}|{:-<20}|{:-<12}|{:-<12}|{:-<12}|{:-<13}|{:-<14}|",
        "", "", "", "", "", "", ""
    )?;
    if let Some(pp) = &r.pp_tps {
        writeln!(
            out,
            "| {:>8} | {:>18} | {:>10} | {:>10} | {:>10} | {:>11} | {:>12} |",
            format!("pp{}", r.config.n_prompt),
            format!("{:.2} ± {:.2}", pp.mean, pp.sd),
            "",
            "",
            "",
            "",
            ""
        )?;
    }
    if let Some(tg) = &r.tg_tps {
        let ms = r.tg_ms.clone().unwrap_or_default();
        let gbs = r
            .effective_bandwidth
            .map_or("-".to_string(), |b| format!("{:.1}", b / 1e9));
        let share = r
            .bandwidth_share()
            .map_or("-".to_string(), |s| format!("{:.1} %", s * 100.0));
        writeln!(
            out,
            "| {:>8} | {:>18} | {:>10.3} | {:>10.3} | {:>10.3} | {:>11} | {:>12} |",
            format!("tg{}", r.config.n_gen),
            format!("{:.2} ± {:.2}", tg.mean, tg.sd),
            ms.p50,
            ms.p95,
            ms.p99,
            gbs,
            share
        )?;
    }
    let m = &r.memory;
    writeln!(
        out,
        "memory ({}): weights {:.1} MiB, KV cache {:.1} MiB, scratch {:.1} MiB, total {:.1} MiB; decode reads {:.1} MiB of weights per token{}",
        if m.on_device { "device" } else { "host" },
        m.weights as f64 / 1048576.0,
        m.kv_cache as f64 / 1048576.0,
        m.scratch as f64 / 1048576.0,
        m.total() as f64 / 1048576.0,
        r.decode_weight_bytes as f64 / 1048576.0,
        r.peak_bandwidth
            .map_or(String::new(), |p| format!("; peak bandwidth {:.0} GB/s", p / 1e9))
    )?;
    Ok(())
}

/// The batch sizes of `--batch`.
fn batch_sizes(list: &str) -> anyhow::Result<Vec<usize>> {
    list.split(',')
        .map(|x| match x.trim().parse::<usize>() {
            Ok(b) if b > 0 => Ok(b),
            _ => {
                anyhow::bail!("--batch: expected positive integers separated by commas, got '{x}'")
            }
        })
        .collect()
}

/// `--batch`: the llama-batched-bench table for each batch size.
fn run_batched(args: &BenchArgs, list: &str) -> anyhow::Result<()> {
    let batches = batch_sizes(list)?;
    let backend: Backend = args.backend.parse()?;
    let file = Arc::new(GgufFile::open(&args.model)?);
    let warmup_steps = args.warmup.max(1) * 4;
    let cfg = BatchedBenchConfig {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen.max(1),
        batches: batches.clone(),
        warmup_steps,
        seed: args.seed,
    };
    let opts = LoadOptions {
        n_ctx: args.n_prompt.max(1) + warmup_steps + cfg.n_gen,
        threads: args.threads,
        device: args.device.clone(),
        profile: args.profile,
        ..LoadOptions::default()
    };
    let n_slots = batches.iter().copied().max().unwrap_or(1);
    let mut engine = load_batch_engine_with(backend, file.clone(), &opts, n_slots)?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "model: {}  backend: {}  device: {}  prompt matmul: {}  decode: {}",
            args.model.display(),
            engine.backend(),
            engine.device_name(),
            engine.prompt_matmul(),
            engine.decode_matvec()
        )?;
        writeln!(
            out,
            "| {:>5} | {:>5} | {:>3} | {:>6} | {:>8} | {:>9} | {:>8} | {:>9} | {:>9} | {:>9} |",
            "PP",
            "TG",
            "B",
            "N_KV",
            "T_PP s",
            "S_PP t/s",
            "T_TG s",
            "S_TG t/s",
            "step p50",
            "step p99"
        )?;
        writeln!(
            out,
            "|{:-<7}|{:-<7}|{:-<5}|{:-<8}|{:-<10}|{:-<11}|{:-<10}|{:-<11}|{:-<11}|{:-<11}|",
            "", "", "", "", "", "", "", "", "", ""
        )?;
    }
    let json = args.json;
    let rows = batched_bench::run(engine.as_mut(), &cfg, |r: &BatchedRow| {
        if !json {
            let _ = writeln!(
                out,
                "| {:>5} | {:>5} | {:>3} | {:>6} | {:>8.3} | {:>9.2} | {:>8.3} | {:>9.2} | {:>9.3} | {:>9.3} |",
                r.pp, r.tg, r.b, r.n_kv, r.t_pp, r.s_pp, r.t_tg, r.s_tg, r.step_ms_p50, r.step_ms_p99
            );
        }
    })?;
    if json {
        let j = serde_json::json!({
            "model": args.model,
            "backend": engine.backend(),
            "device": engine.device_name(),
            "prompt_matmul": engine.prompt_matmul(),
            "decode_matvec": engine.decode_matvec(),
            "config": cfg,
            "rows": rows,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else if let Some(profile) = engine.take_profile_report() {
        writeln!(
            out,
            "\nper-kernel profile (GPU timestamps, all batch sizes above):\n{profile}"
        )?;
    }
    Ok(())
}
