//! Command-line surface: one module per command, each with an `Args` struct and a `run` function.

mod devices;
mod info;

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
    /// List Vulkan devices and the capabilities rawrxd reads from them.
    Devices(devices::DevicesArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(a) => info::run(&a)?,
        Command::Devices(a) => devices::run(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}
