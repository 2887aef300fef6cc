//! `rawrxd report`: the Phase 3 documents from the results store.
//!
//! One implementation: this command runs lib-lua's `docs/run.lua` in the Lua host — the same
//! templates `scripts/phase3_docs.lua` runs — with its flags passed through as script arguments,
//! so editing a template changes both without recompiling.

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `rawrxd report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Results database (default: $RAWRXD_RESULTS, else results/rawrxd.sqlite).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The runs to document, comma-separated ids (default: the newest run of each phase/name).
    #[arg(long, value_name = "IDS", conflicts_with = "latest")]
    pub runs: Option<String>,
    /// Document the newest run of each phase and name (the default).
    #[arg(long)]
    pub latest: bool,
    /// Baseline run(s) to compare with, comma-separated ids: each is compared with the selected
    /// run of the same phase and name (REGRESSION.md).
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<String>,
    /// A Lua file returning SLA targets and margins (default: lib-lua's docs/targets.lua).
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Directory the documents and plots are written to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The script arguments `docs/run.lua` reads.
fn script_args(a: &ReportArgs) -> Vec<String> {
    let mut v = Vec::new();
    let mut push = |k: &str, val: String| {
        v.push(format!("--{k}"));
        v.push(val);
    };
    if let Some(db) = &a.db {
        push("db", db.to_string_lossy().into_owned());
    }
    if let Some(r) = &a.runs {
        push("runs", r.clone());
    }
    if let Some(b) = &a.baseline {
        push("baseline", b.clone());
    }
    if let Some(t) = &a.targets {
        push("targets", t.to_string_lossy().into_owned());
    }
    push("out", a.out.to_string_lossy().into_owned());
    v
}

/// Runs the document templates; returns the script's exit code.
pub fn run(a: &ReportArgs) -> anyhow::Result<i32> {
    let script = rawrxd::lua::lib_lua_paths()
        .into_iter()
        .map(|d| PathBuf::from(d).join("docs").join("run.lua"))
        .find(|p| p.is_file())
        .context(
            "cannot find lib-lua/docs/run.lua (set RAWRXD_LUA_PATH to the lib-lua directory)",
        )?;
    super::script::run_script(&script, &script_args(a))
}
