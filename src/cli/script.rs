//! `rawrxd SCRIPT.lua [ARGS…]`: run a test-plan script in the Lua host.
//!
//! Script errors print as `rawrxd: file:line: message` and exit with 1; the script's integer
//! return value is the exit code otherwise. `RUST_LOG` controls logging (default `info`;
//! `RUST_LOG=lua=debug` also prints the Lua traceback of a failing script).

use std::io::Write;
use std::path::Path;

use rawrxd::lua::Host;

/// Initializes logging for scripts unless something else already did: `[LEVEL] message` for
/// script log lines, `[LEVEL target] message` for the host's own.
fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, rec| {
            if rec.target() == "lua" {
                writeln!(buf, "[{}] {}", rec.level(), rec.args())
            } else {
                writeln!(buf, "[{} {}] {}", rec.level(), rec.target(), rec.args())
            }
        })
        .try_init();
}

/// Runs the script at `path` with `args`; returns the process exit code. Errors that are not the
/// script's own (the file cannot be read, the host cannot start) come back as `Err`.
pub fn run_script(path: &Path, args: &[String]) -> anyhow::Result<i32> {
    init_logging();
    let host = Host::new(path, args)?;
    match host.run() {
        Ok(code) => Ok(code),
        Err(rawrxd::Error::Script(msg)) => {
            eprintln!("rawrxd: {msg}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
