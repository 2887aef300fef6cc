//! `rawrxd results …`: list, show, export and compare stored runs.
//!
//! Output goes to stdout (or `-o FILE` for exports); a closed pipe (`rawrxd results list | head`)
//! ends the command quietly.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use rawrxd::store::{
    compare, export, iso8601, CompareOptions, ExportFormat, RunFilter, RunId, RunStatus, Store,
};

/// Arguments of `rawrxd results`.
#[derive(clap::Args, Debug)]
pub struct ResultsArgs {
    /// Results database (default: $RAWRXD_RESULTS, else results/rawrxd.sqlite).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: ResultsCommand,
}

/// The `rawrxd results` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ResultsCommand {
    /// List runs, newest first.
    List {
        /// Only runs of this phase.
        #[arg(long)]
        phase: Option<String>,
        /// Only runs with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only runs in this state: running, ok, failed, interrupted.
        #[arg(long, value_parser = parse_status)]
        status: Option<RunStatus>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run: provenance, measurements, histogram percentiles, series, events.
    Show {
        /// The run id.
        #[arg(value_parser = parse_run_id)]
        id: RunId,
    },
    /// Export runs as JSON, CSV or Markdown.
    Export {
        /// The run ids.
        #[arg(required = true, value_parser = parse_run_id)]
        ids: Vec<RunId>,
        /// Output format: json, csv or md.
        #[arg(long, default_value = "json", value_parser = parse_format)]
        format: ExportFormat,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Compare run B against baseline run A, metric by metric, with a noise-aware verdict.
    Compare {
        /// The baseline run.
        #[arg(value_parser = parse_run_id)]
        a: RunId,
        /// The run compared with it.
        #[arg(value_parser = parse_run_id)]
        b: RunId,
        /// Significance level of Welch's t-test.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Smallest relative change reported, in percent.
        #[arg(long, default_value_t = 2.0, value_name = "PERCENT")]
        min_change: f64,
        /// Relative change needed when no spread is known (single samples), in percent.
        #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
        single_sample_change: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_run_id(s: &str) -> Result<RunId, String> {
    s.parse().map_err(|e: rawrxd::Error| e.to_string())
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    s.parse().map_err(|e: rawrxd::Error| e.to_string())
}

fn parse_format(s: &str) -> Result<ExportFormat, String> {
    s.parse().map_err(|e: rawrxd::Error| e.to_string())
}

/// Runs `rawrxd results …`, printing to stdout.
pub fn run(args: &ResultsArgs) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run_to(args, &mut out) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Runs `rawrxd results …`, printing to `out`.
pub fn run_to(args: &ResultsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = args.db.clone().unwrap_or_else(Store::default_path);
    if !path.exists() {
        anyhow::bail!(
            "no results database at {} (set --db or ${})",
            path.display(),
            rawrxd::store::RESULTS_ENV
        );
    }
    let store = Store::open(&path)?;
    match &args.command {
        ResultsCommand::List {
            phase,
            name,
            status,
            limit,
        } => {
            let runs = store.list_runs(&RunFilter {
                phase: phase.clone(),
                name: name.clone(),
                status: *status,
                limit: Some(*limit),
            })?;
            writeln!(
                out,
                "{:>5}  {:<11}  {:<12}  {:<20}  {:<10}  {:<24}  {:>9}",
                "id", "status", "phase", "name", "variant", "started (UTC)", "duration"
            )?;
            for r in runs {
                let duration = r
                    .ended_at
                    .map(|e| format!("{:.1}s", e - r.started_at))
                    .unwrap_or_else(|| "—".into());
                writeln!(
                    out,
                    "{:>5}  {:<11}  {:<12}  {:<20}  {:<10}  {:<24}  {:>9}",
                    r.id,
                    r.status,
                    r.phase,
                    r.name,
                    r.variant.as_deref().unwrap_or("—"),
                    iso8601(r.started_at),
                    duration
                )?;
            }
        }
        ResultsCommand::Show { id } => {
            out.write_all(export(&store, &[*id], ExportFormat::Markdown)?.as_bytes())?;
        }
        ResultsCommand::Export {
            ids,
            format,
            output,
        } => {
            let text = export(&store, ids, *format)?;
            match output {
                Some(file) => {
                    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("creating {}", dir.display()))?;
                    }
                    std::fs::write(file, text)
                        .with_context(|| format!("writing {}", file.display()))?;
                }
                None => out.write_all(text.as_bytes())?,
            }
        }
        ResultsCommand::Compare {
            a,
            b,
            alpha,
            min_change,
            single_sample_change,
            json,
        } => {
            if !(*alpha > 0.0 && *alpha < 1.0) {
                anyhow::bail!("--alpha: expected a level between 0 and 1, got {alpha}");
            }
            if !(*min_change >= 0.0 && *single_sample_change >= 0.0) {
                anyhow::bail!("--min-change and --single-sample-change must be ≥ 0");
            }
            let options = CompareOptions {
                alpha: *alpha,
                min_change: min_change / 100.0,
                single_sample_change: single_sample_change / 100.0,
            };
            let c = compare(&store, *a, *b, &options)?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?;
            } else {
                out.write_all(c.to_markdown().as_bytes())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use rawrxd::store::{RunInfo, Tags};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        results: ResultsArgs,
    }

    fn run_cli(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(std::iter::once("results").chain(args.iter().copied()))?;
        let mut out = Vec::new();
        run_to(&cli.results, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn list_show_export_compare() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.sqlite");
        let store = Store::open(&db).unwrap();
        let a = store.begin_run(RunInfo::new("phase1", "base")).unwrap();
        let b = store.begin_run(RunInfo::new("phase1", "new")).unwrap();
        for (run, v) in [(a, 100.0), (a, 101.0), (b, 120.0), (b, 121.0)] {
            store
                .record(run, "tg_tps", v, "tok/s", &Tags::new())
                .unwrap();
        }
        store.end_run(a, RunStatus::Ok, None).unwrap();
        store.end_run(b, RunStatus::Failed, Some("oops")).unwrap();
        let db = db.to_str().unwrap();

        let list = run_cli(&["--db", db, "list"]).unwrap();
        assert_eq!(list.lines().count(), 3, "{list}");
        let failed = run_cli(&["list", "--db", db, "--status", "failed"]).unwrap();
        assert_eq!(failed.lines().count(), 2);
        assert!(failed.contains("new") && !failed.contains("base"));
        assert!(run_cli(&["--db", db, "list", "--status", "bogus"]).is_err());

        let show = run_cli(&["--db", db, "show", &a.to_string()]).unwrap();
        assert!(show.contains("| tg_tps | 100.5 |"), "{show}");

        let out = dir.path().join("out/export.csv");
        run_cli(&[
            "--db",
            db,
            "export",
            &a.to_string(),
            &b.to_string(),
            "--format",
            "csv",
            "-o",
            out.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 5);
        let json = run_cli(&["--db", db, "export", &a.to_string()]).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["runs"][0]["measurements"].as_array().unwrap().len(), 2);

        let cmp = run_cli(&["--db", db, "compare", &a.to_string(), &b.to_string()]).unwrap();
        assert!(cmp.contains("improved"), "{cmp}");
        let cmp = run_cli(&["--db", db, "compare", "1", "2", "--json"]).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&cmp).unwrap();
        assert_eq!(doc["rows"][0]["verdict"], "improved");

        assert!(run_cli(&["--db", db, "show", "99"]).is_err());
        let missing = dir.path().join("absent.sqlite");
        let err = run_cli(&["--db", missing.to_str().unwrap(), "list"]).unwrap_err();
        assert!(err.to_string().contains("no results database"), "{err}");
    }
}
