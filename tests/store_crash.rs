//! A writer killed with SIGKILL loses nothing it had recorded, and its run reads back as
//! `interrupted`.
//!
//! The test binary plays both parts: run normally it is the parent; it re-invokes itself with
//! `RAWRXD_STORE_CRASH_CHILD=<db>` to become the writer, which records measurements, series points
//! and events in an endless loop and prints `@committed <i>` after each `record` returns. The parent
//! kills it after a fixed number of acknowledgements (no timing involved), reopens the database and
//! checks that every acknowledged row is there, unchanged, and that the run is interrupted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rawrxd::store::{RunFilter, RunInfo, RunStatus, Store, Tags};

const CHILD_ENV: &str = "RAWRXD_STORE_CRASH_CHILD";

/// Rows the parent waits to see acknowledged before killing the writer.
const ACKED_BEFORE_KILL: u64 = 300;

fn child(db: &str) -> ! {
    let store = Store::open(db).expect("child opens the store");
    let run = store
        .begin_run(RunInfo::new("crash-test", "writer"))
        .expect("child begins a run");
    println!("@run {run}");
    let mut tags = Tags::new();
    for i in 0u64.. {
        tags.insert("i".into(), i.into());
        store
            .record(run, "seq", i as f64, "count", &tags)
            .expect("record");
        store
            .record_series(run, "vram_mb", i as f64, 1000.0 + i as f64)
            .expect("series");
        println!("@committed {i}");
    }
    unreachable!()
}

#[test]
fn sigkill_loses_no_committed_row() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let mut writer = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_loses_no_committed_row",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = writer.stdout.take().unwrap();
    let mut last_acked = None;
    let mut run_id = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest's own "test … " may share the first line: look for the markers anywhere.
        if let Some((_, id)) = line.split_once("@run ") {
            run_id = Some(id.trim().parse::<i64>().unwrap());
        }
        if let Some((_, i)) = line.split_once("@committed ") {
            let i: u64 = i.trim().parse().unwrap();
            last_acked = Some(i);
            if i + 1 >= ACKED_BEFORE_KILL {
                break;
            }
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no rollback in the writer.
    writer.kill().expect("kill the writer");
    let status = writer.wait().unwrap();
    assert!(!status.success(), "the writer must have been killed");
    let last_acked = last_acked.expect("the writer acknowledged rows");
    let run_id = run_id.expect("the writer reported its run");

    let store = Store::open(&db).expect("reopen after the crash");
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id.0, run_id);
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert!(runs[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("exited without ending"));

    // Every acknowledged row is there, in order and intact; rows committed after the last line
    // the parent read may follow, but there is no gap and no torn row.
    let ms = store.measurements(runs[0].id).unwrap();
    assert!(
        ms.len() as u64 > last_acked,
        "{} rows, acked {last_acked}",
        ms.len()
    );
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m.name, "seq");
        assert_eq!(m.value, i as f64);
        assert_eq!(m.unit, "count");
        assert_eq!(m.tags.get("i").and_then(|v| v.as_u64()), Some(i as u64));
    }
    let pts = store.series(runs[0].id, "vram_mb").unwrap();
    assert!(pts.len() as u64 > last_acked);
    assert!(pts.len() == ms.len() || pts.len() + 1 == ms.len());
    for (i, p) in pts.iter().enumerate() {
        assert_eq!((p.ts, p.value), (i as f64, 1000.0 + i as f64));
    }
}
