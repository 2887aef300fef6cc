//! The `rawrxd` binary: parses the command line and hands off to `cli`.

mod cli;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

/// rawrxd: a scriptable benchmark runtime for quantized LLM inference.
///
/// Run a test plan with `rawrxd SCRIPT.lua [ARGS...]`.
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
    /// Run a Lua script: `rawrxd SCRIPT.lua [ARGS...]`.
    #[command(external_subcommand)]
    Script(Vec<String>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Results(args) => cli::results::run(args).map(|()| 0),
        Command::Script(argv) => match argv.split_first() {
            Some((script, args)) if Path::new(script).is_file() || script.ends_with(".lua") => {
                cli::script::run_script(Path::new(script), args)
            }
            Some((other, _)) => Err(anyhow::anyhow!(
                "unknown command '{other}' (and no script file by that name)"
            )),
            None => Err(anyhow::anyhow!("no command given")),
        },
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("rawrxd: {e:#}");
            ExitCode::from(2)
        }
    }
}
