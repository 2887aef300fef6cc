//! Command-line surface: one module per command, each with an `Args` struct and a `run` function.

mod bench;
mod devices;
mod engine_args;
mod generate;
mod info;
mod perplexity;
mod quantize;
mod report;
pub mod results;
pub mod script;
mod serve;
mod synth;
mod tokenize;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rawrxd — a scriptable benchmark runtime for quantized LLM inference on GPUs.
///
/// Run a test plan with `rawrxd SCRIPT.lua [ARGS...]`.
#[derive(Debug, Parser)]
#[command(name = "rawrxd", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a GGUF model's architecture, hyper-parameters, tokenizer and tensor table.
    Info(info::InfoArgs),
    /// Inspect, export and compare stored results.
    Results(results::ResultsArgs),
    /// Print the token ids of a text, like llama.cpp's llama-tokenize.
    Tokenize(tokenize::TokenizeArgs),
    /// Write the Phase 3 documents (summary, variants, SLA, trade-offs, regression) from the store.
    Report(report::ReportArgs),
    /// Serve a model over an OpenAI-compatible HTTP API with Prometheus metrics.
    Serve(serve::ServeArgs),
    /// Run a Lua script: `rawrxd SCRIPT.lua [ARGS...]`.
    #[command(external_subcommand)]
    Script(Vec<String>),
    /// Complete a prompt: stream the text, then report prefill and decode speed.
    Generate(generate::GenerateArgs),
    /// Measure perplexity over a text file (llama-perplexity's method), or KL divergence.
    Perplexity(perplexity::PerplexityArgs),
    /// Measure prefill and decode throughput, like llama-bench.
    Bench(bench::BenchArgs),
    /// List Vulkan devices and the capabilities rawrxd reads from them.
    Devices(devices::DevicesArgs),
    /// Convert a GGUF model to a standard mix (Q4_K_M, Q8_0, ...) or a Lua hybrid scheme.
    Quantize(quantize::QuantizeArgs),
    /// Write a llama.cpp-loadable model of any shape with seeded random weights.
    Synth(synth::SynthArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(a) => info::run(&a)?,
        Command::Results(a) => results::run(&a)?,
        Command::Tokenize(a) => tokenize::run(&a)?,
        Command::Serve(a) => serve::run(&a)?,
        Command::Report(a) => {
            let code = report::run(&a)?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Command::Script(argv) => {
            let Some((script, args)) = argv.split_first() else {
                anyhow::bail!("no command given");
            };
            if !(Path::new(script).is_file() || script.ends_with(".lua")) {
                anyhow::bail!("unknown command '{script}' (and no script file by that name)");
            }
            let code = script::run_script(Path::new(script), args)?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Command::Devices(a) => devices::run(&a)?,
        Command::Bench(a) => bench::run(&a)?,
        Command::Generate(a) => generate::run(&a)?,
        Command::Perplexity(a) => perplexity::run(&a)?,
        Command::Quantize(a) => quantize::run(&a)?,
        Command::Synth(a) => synth::run(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}
