//! Command-line surface: one module per command, each with an `Args` struct and a `run` function.

mod info;
mod quantize;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rawrxd — a scriptable benchmark runtime for quantized LLM inference on GPUs.
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
    /// Convert a GGUF model to a standard mix (Q4_K_M, Q8_0, ...) or a Lua hybrid scheme.
    Quantize(quantize::QuantizeArgs),
    /// Write a llama.cpp-loadable model of any shape with seeded random weights.
    Synth(synth::SynthArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(a) => info::run(&a)?,
        Command::Quantize(a) => quantize::run(&a)?,
        Command::Synth(a) => synth::run(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}
