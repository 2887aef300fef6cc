//! The `rawrxd` binary: parses the command line and hands off to `cli`.

mod cli;

use clap::Parser;

/// rawrxd: a scriptable benchmark runtime for quantized LLM inference.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Inspect, export and compare stored results.
    Results(cli::results::ResultsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Results(args) => cli::results::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawrxd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
