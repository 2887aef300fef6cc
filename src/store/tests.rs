//! Unit tests of the store against real SQLite files in temporary directories.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::*;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("nested/dir/results.sqlite")).unwrap();
    (dir, store)
}

fn tags(v: Value) -> Tags {
    match v {
        Value::Object(m) => m,
        _ => Tags::new(),
    }
}

fn record_all(store: &Store, run: RunId, name: &str, unit: &str, values: &[f64]) {
    for &v in values {
        store.record(run, name, v, unit, &Tags::new()).unwrap();
    }
}

#[test]
fn open_creates_parents_wal_and_current_schema() {
    let (dir, store) = temp_store();
    assert!(dir.path().join("nested/dir/results.sqlite").exists());
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(store);
    // Reopening an up-to-date file applies nothing and keeps one version row.
    let store = Store::open(dir.path().join("nested/dir/results.sqlite")).unwrap();
    let rows: i64 = store
        .conn
        .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn newer_schema_is_refused() {
    let (dir, store) = temp_store();
    store
        .conn
        .execute(
            "UPDATE schema_version SET version = ?1",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
    drop(store);
    let err = Store::open(dir.path().join("nested/dir/results.sqlite"))
        .err()
        .expect("a newer schema must be refused");
    assert!(
        err.to_string().contains("newer than this rawrxd supports"),
        "{err}"
    );
}

#[test]
fn run_round_trip_keeps_provenance_and_rows() {
    let (_dir, store) = temp_store();
    let mut info = RunInfo::new("phase1", "q4_k_m");
    info.device = Some("llvmpipe".into());
    info.variant = Some("Q4_K_M".into());
    info.model_sha256 = Some("ab".repeat(32));
    info.params = json!({"prompt": 512, "gen": 128});
    info.config_generation = 3;
    let run = store.begin_run(info).unwrap();
    store
        .record(run, "tg_tps", 42.5, "tok/s", &tags(json!({"repeat": 1})))
        .unwrap();
    store.set_config_generation(4);
    store
        .record(run, "vram_mb", 812.0, "MB", &Tags::new())
        .unwrap();
    store.record_series(run, "vram_mb", 1000.0, 810.0).unwrap();
    store.record_series(run, "vram_mb", 1001.0, 812.0).unwrap();
    store
        .record_event(run, "reload", &json!({"file": "alerts.lua"}))
        .unwrap();

    let r = store.run(run).unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!((r.phase.as_str(), r.name.as_str()), ("phase1", "q4_k_m"));
    assert_eq!(r.params, json!({"prompt": 512, "gen": 128}));
    assert_eq!(r.config_generation, 3);
    assert_eq!(r.pid, i64::from(std::process::id()));
    assert_eq!(r.rawrxd_version, env!("CARGO_PKG_VERSION"));
    assert!(!r.git_commit.is_empty());

    store.end_run(run, RunStatus::Ok, None).unwrap();
    let r = store.run(run).unwrap();
    assert_eq!(r.status, RunStatus::Ok);
    assert!(r.ended_at.unwrap() >= r.started_at);

    let ms = store.measurements(run).unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(
        (ms[0].name.as_str(), ms[0].value, ms[0].unit.as_str()),
        ("tg_tps", 42.5, "tok/s")
    );
    assert_eq!(ms[0].tags.get("repeat"), Some(&json!(1)));
    assert_eq!(ms[0].config_generation, 3);
    assert_eq!(ms[1].config_generation, 4);
    let pts = store.series(run, "vram_mb").unwrap();
    assert_eq!(
        pts.iter().map(|p| p.value).collect::<Vec<_>>(),
        [810.0, 812.0]
    );
    let ev = store.events(run).unwrap();
    assert_eq!(ev[0].payload, json!({"file": "alerts.lua"}));
}

#[test]
fn bad_values_and_unknown_runs_are_errors() {
    let (_dir, store) = temp_store();
    let run = store.begin_run(RunInfo::new("t", "t")).unwrap();
    let err = store
        .record(run, "x", f64::NAN, "", &Tags::new())
        .unwrap_err();
    assert!(err.to_string().contains("'x'"), "{err}");
    let err = store
        .record(RunId(9999), "x", 1.0, "", &Tags::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::NoSuchRun(9999))),
        "{err}"
    );
    assert!(matches!(
        store.run(RunId(9999)),
        Err(Error::Store(StoreError::NoSuchRun(9999)))
    ));
    assert!(store.end_run(run, RunStatus::Running, None).is_err());
    assert!(store.end_run(RunId(9999), RunStatus::Ok, None).is_err());
}

#[test]
fn list_filters_by_phase_name_status_and_limit() {
    let (_dir, store) = temp_store();
    let a = store.begin_run(RunInfo::new("phase1", "q4")).unwrap();
    let b = store.begin_run(RunInfo::new("phase1", "q8")).unwrap();
    let c = store.begin_run(RunInfo::new("soak", "q4")).unwrap();
    store.end_run(a, RunStatus::Ok, None).unwrap();
    store.end_run(b, RunStatus::Failed, Some("boom")).unwrap();
    let ids = |f: RunFilter| -> Vec<RunId> {
        store.list_runs(&f).unwrap().iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(RunFilter::default()), [c, b, a]);
    let phase1 = RunFilter {
        phase: Some("phase1".into()),
        ..Default::default()
    };
    assert_eq!(ids(phase1), [b, a]);
    let q4 = RunFilter {
        name: Some("q4".into()),
        ..Default::default()
    };
    assert_eq!(ids(q4), [c, a]);
    let failed = RunFilter {
        status: Some(RunStatus::Failed),
        ..Default::default()
    };
    assert_eq!(ids(failed), [b]);
    assert_eq!(store.run(b).unwrap().error.as_deref(), Some("boom"));
    let limited = RunFilter {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(limited), [c]);
}

fn latency_histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for v in values {
        h.record(v).unwrap();
    }
    h
}

#[test]
fn histogram_round_trip_keeps_every_percentile() {
    let (_dir, store) = temp_store();
    let run = store.begin_run(RunInfo::new("bench", "h")).unwrap();
    // A skewed latency-like distribution in microseconds.
    let h = latency_histogram((1..=20_000u64).map(|i| 800 + (i * i) % 97_003));
    store.record_histogram(run, "itl_us", "us", &h).unwrap();
    let back = store.histogram(run, "itl_us").unwrap().unwrap();
    assert_eq!(back.len(), h.len());
    for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q={q}");
    }
    assert_eq!((back.min(), back.max()), (h.min(), h.max()));
    assert_eq!(
        store.histogram_names(run).unwrap(),
        [("itl_us".to_string(), "us".to_string())]
    );
    assert!(store.histogram(run, "missing").unwrap().is_none());
}

#[test]
fn histograms_merge_within_and_across_runs() {
    let (_dir, store) = temp_store();
    let r1 = store.begin_run(RunInfo::new("soak", "a")).unwrap();
    let r2 = store.begin_run(RunInfo::new("soak", "b")).unwrap();
    let part1: Vec<u64> = (1..5_000).map(|i| 1_000 + i % 700).collect();
    let part2: Vec<u64> = (1..3_000).map(|i| 5_000 + i * 3).collect();
    let part3: Vec<u64> = (1..2_000).map(|i| 20 + i).collect();
    store
        .record_histogram(r1, "ttft_us", "us", &latency_histogram(part1.clone()))
        .unwrap();
    store
        .record_histogram(r1, "ttft_us", "us", &latency_histogram(part2.clone()))
        .unwrap();
    store
        .record_histogram(r2, "ttft_us", "us", &latency_histogram(part3.clone()))
        .unwrap();

    // Oracle: one histogram fed every value directly.
    let within = latency_histogram(part1.iter().chain(&part2).copied());
    let got = store.histogram(r1, "ttft_us").unwrap().unwrap();
    let all = latency_histogram(part1.iter().chain(&part2).chain(&part3).copied());
    let merged = store
        .merged_histogram(&[r1, r2], "ttft_us")
        .unwrap()
        .unwrap();
    for q in [0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(
            got.value_at_quantile(q),
            within.value_at_quantile(q),
            "q={q}"
        );
        assert_eq!(
            merged.value_at_quantile(q),
            all.value_at_quantile(q),
            "q={q}"
        );
    }
    assert_eq!(merged.len(), all.len());
}

#[test]
fn file_hash_is_sha256_and_cached_by_size_and_mtime() {
    let (dir, store) = temp_store();
    let f = dir.path().join("model.bin");
    std::fs::write(&f, b"abc").unwrap();
    // FIPS 180-2 test vector for "abc".
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(store.file_sha256(&f).unwrap(), abc);
    // A cached entry for the same (path, size, mtime) is used as is ...
    store
        .conn
        .execute("UPDATE file_hashes SET sha256 = 'cached'", [])
        .unwrap();
    assert_eq!(store.file_sha256(&f).unwrap(), "cached");
    // ... and a changed file is hashed again (FIPS 180-2 vector for the empty string).
    std::fs::write(&f, b"").unwrap();
    assert_eq!(
        store.file_sha256(&f).unwrap(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // begin_run hashes the model when only the path is given.
    let mut info = RunInfo::new("t", "t");
    info.model_path = Some(f.clone());
    let run = store.begin_run(info).unwrap();
    assert_eq!(
        store.run(run).unwrap().model_sha256.as_deref(),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert!(store.file_sha256(&dir.path().join("absent")).is_err());
}

#[test]
fn runs_of_dead_processes_read_as_interrupted() {
    let (dir, store) = temp_store();
    let run = store.begin_run(RunInfo::new("soak", "x")).unwrap();
    store
        .record(run, "tg_tps", 1.0, "tok/s", &Tags::new())
        .unwrap();
    let foreign = store.begin_run(RunInfo::new("soak", "elsewhere")).unwrap();
    // Pretend the run belongs to a process that has exited (a reaped child's pid), and another
    // run to a process on another host, which cannot be judged.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    store
        .conn
        .execute(
            "UPDATE runs SET pid = ?1, pid_start = NULL WHERE id = ?2",
            rusqlite::params![dead_pid, run.0],
        )
        .unwrap();
    store
        .conn
        .execute(
            "UPDATE runs SET host = 'some-other-host' WHERE id = ?1",
            [foreign.0],
        )
        .unwrap();
    drop(store);
    let store = Store::open(dir.path().join("nested/dir/results.sqlite")).unwrap();
    let r = store.run(run).unwrap();
    assert_eq!(r.status, RunStatus::Interrupted);
    assert!(r.error.unwrap().contains(&dead_pid.to_string()));
    let last_ts = store.measurements(run).unwrap()[0].ts;
    assert_eq!(r.ended_at, Some(last_ts));
    assert_eq!(store.run(foreign).unwrap().status, RunStatus::Running);
}

/// Two runs for export and compare tests.
fn two_runs(store: &Store) -> (RunId, RunId) {
    let a = store.begin_run(RunInfo::new("phase1", "base")).unwrap();
    let b = store.begin_run(RunInfo::new("phase1", "new")).unwrap();
    (a, b)
}

#[test]
fn exports_parse_back() {
    let (_dir, store) = temp_store();
    let (a, b) = two_runs(&store);
    record_all(&store, a, "tg_tps", "tok/s", &[10.0, 11.0, 12.0]);
    store
        .record(a, "note, \"quoted\"", 1.0, "", &tags(json!({"k": "v,w"})))
        .unwrap();
    record_all(&store, b, "vram_mb", "MB", &[500.0]);
    store
        .record_histogram(a, "ttft_us", "us", &latency_histogram(1..=1000))
        .unwrap();
    store.record_series(a, "vram_mb", 1.0, 2.0).unwrap();
    store
        .record_event(a, "alert", &json!({"rule": "x|y"}))
        .unwrap();
    store.end_run(a, RunStatus::Ok, None).unwrap();

    let doc: Value = serde_json::from_str(&export(&store, &[a, b], ExportFormat::Json).unwrap())
        .expect("JSON export parses");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run"]["id"], json!(a.0));
    assert_eq!(runs[0]["run"]["status"], json!("ok"));
    assert_eq!(runs[0]["measurements"].as_array().unwrap().len(), 4);
    assert_eq!(runs[0]["histograms"][0]["count"], json!(1000));
    assert_eq!(runs[0]["histograms"][0]["p50"], json!(500));
    assert_eq!(runs[0]["histograms"][0]["max"], json!(1000));
    assert_eq!(runs[0]["series"][0]["points"], json!(1));
    assert_eq!(runs[1]["measurements"][0]["value"], json!(500.0));

    let csv = export(&store, &[a, b], ExportFormat::Csv).unwrap();
    let rows = parse_csv(&csv);
    // header + 4 + 1 measurements + 8 histogram statistics.
    assert_eq!(rows.len(), 1 + 5 + 8);
    assert_eq!(rows[0].join(","), export::CSV_HEADER);
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r[4] == "note, \"quoted\"" && r[10] == r#"{"k":"v,w"}"#));
    let p99 = rows
        .iter()
        .find(|r| r[4] == "ttft_us" && r[5] == "p99")
        .unwrap();
    assert_eq!(p99[6], "990");

    let md = export(&store, &[a, b], ExportFormat::Markdown).unwrap();
    let table_rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    // Every table row has the same number of unescaped cell separators as its header.
    let cells = |l: &str| l.replace("\\|", "").matches('|').count();
    assert!(md.contains(&format!("## Run {a}: phase1 / base (ok)")));
    let tg = table_rows
        .iter()
        .find(|l| l.starts_with("| tg_tps "))
        .unwrap();
    assert_eq!(*tg, "| tg_tps | 11 | 1 | 3 | tok/s | 0 |");
    assert_eq!(cells(tg), 7);
    let hist = table_rows
        .iter()
        .find(|l| l.starts_with("| ttft_us "))
        .unwrap();
    assert_eq!(cells(hist), 11);
    assert!(table_rows.iter().any(|l| l.contains("x\\|y")));
}

/// RFC 4180 reader for the test (quoted fields, doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

fn verdict_of(c: &Comparison, metric: &str) -> Verdict {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no row {metric}: {c:?}"))
        .verdict
}

#[test]
fn compare_verdicts_on_known_data() {
    let (_dir, store) = temp_store();
    let (a, b) = two_runs(&store);
    // Clear throughput gain, tight noise: improved (Welch).
    record_all(
        &store,
        a,
        "tg_tps",
        "tok/s",
        &[100.0, 101.0, 99.0, 100.5, 99.5],
    );
    record_all(
        &store,
        b,
        "tg_tps",
        "tok/s",
        &[110.0, 111.0, 109.0, 110.5, 109.5],
    );
    // Latency up: regressed.
    record_all(&store, a, "ttft", "ms", &[50.0, 51.0, 49.0, 50.0]);
    record_all(&store, b, "ttft", "ms", &[60.0, 61.0, 59.0, 60.0]);
    // Same mean shift as above but buried in noise: no significant change.
    record_all(
        &store,
        a,
        "pp_tps",
        "tok/s",
        &[100.0, 130.0, 70.0, 115.0, 85.0],
    );
    record_all(
        &store,
        b,
        "pp_tps",
        "tok/s",
        &[104.0, 135.0, 72.0, 118.0, 90.0],
    );
    // Significant by Welch (tiny noise) but only +1 %: below the 2 % floor.
    record_all(&store, a, "bandwidth_gbs", "GB/s", &[1000.0, 1000.1, 999.9]);
    record_all(
        &store,
        b,
        "bandwidth_gbs",
        "GB/s",
        &[1010.0, 1010.1, 1009.9],
    );
    // Single samples: 3 % is within the 5 % single-sample threshold, 20 % less VRAM is not.
    record_all(&store, a, "ppl", "", &[10.0]);
    record_all(&store, b, "ppl", "", &[10.3]);
    record_all(&store, a, "vram", "MB", &[1000.0]);
    record_all(&store, b, "vram", "MB", &[800.0]);
    // Direction unknown.
    record_all(&store, a, "widgets", "", &[1.0]);
    record_all(&store, b, "widgets", "", &[2.0]);
    // Units differ.
    record_all(&store, a, "itl", "ms", &[1.0]);
    record_all(&store, b, "itl", "us", &[1000.0]);
    // A mean with stated sd and n: -15 ± 1 (n=10) vs 20 ± 1 (n=10) → Welch applies, improved.
    store
        .record(a, "e2e", 20.0, "s", &tags(json!({"sd": 1.0, "n": 10})))
        .unwrap();
    store
        .record(b, "e2e", 17.0, "s", &tags(json!({"sd": 1.0, "n": 10})))
        .unwrap();
    record_all(&store, a, "only_a", "", &[1.0]);
    record_all(&store, b, "only_b", "", &[1.0]);

    let c = compare(&store, a, b, &CompareOptions::default()).unwrap();
    assert_eq!(verdict_of(&c, "tg_tps"), Verdict::Improved);
    assert_eq!(verdict_of(&c, "ttft"), Verdict::Regressed);
    assert_eq!(verdict_of(&c, "pp_tps"), Verdict::NoSignificantChange);
    assert_eq!(
        verdict_of(&c, "bandwidth_gbs"),
        Verdict::NoSignificantChange
    );
    assert_eq!(verdict_of(&c, "ppl"), Verdict::NoSignificantChange);
    assert_eq!(verdict_of(&c, "vram"), Verdict::Improved);
    assert_eq!(verdict_of(&c, "widgets"), Verdict::Changed);
    assert_eq!(verdict_of(&c, "itl"), Verdict::Incomparable);
    assert_eq!(verdict_of(&c, "e2e"), Verdict::Improved);
    assert_eq!(c.only_in_a, ["only_a"]);
    assert_eq!(c.only_in_b, ["only_b"]);

    let tg = c.rows.iter().find(|r| r.metric == "tg_tps").unwrap();
    assert!((tg.change_pct.unwrap() - 10.0).abs() < 1e-9);
    assert!(tg.rule.starts_with("Welch"), "{}", tg.rule);
    assert!(c
        .rows
        .iter()
        .find(|r| r.metric == "ppl")
        .unwrap()
        .rule
        .starts_with("no spread"));
    assert!(c
        .rows
        .iter()
        .find(|r| r.metric == "e2e")
        .unwrap()
        .rule
        .starts_with("Welch"));
    // With the floor lowered to 0.5 %, the 1 % bandwidth gain is reported.
    let loose = CompareOptions {
        min_change: 0.005,
        ..CompareOptions::default()
    };
    let c2 = compare(&store, a, b, &loose).unwrap();
    assert_eq!(verdict_of(&c2, "bandwidth_gbs"), Verdict::Improved);

    let md = c.to_markdown();
    assert!(md.contains("| tg_tps | tok/s |"), "{md}");
    assert!(md.contains("regressed"));
}

#[test]
fn compare_one_sided_spread_and_histograms() {
    let (_dir, store) = temp_store();
    let (a, b) = two_runs(&store);
    // A has spread (sd 1, n 4), B a single sample 4 sd away: 2·1·√(1/4+1) = 2.24 < 5.
    record_all(&store, a, "tg_tps", "tok/s", &[99.0, 101.0, 99.0, 101.0]);
    record_all(&store, b, "tg_tps", "tok/s", &[95.0]);
    // Latency histograms: B's values are all 30 % higher.
    store
        .record_histogram(
            a,
            "itl_us",
            "us",
            &latency_histogram((0..5000).map(|i| 1000 + i % 200)),
        )
        .unwrap();
    store
        .record_histogram(
            b,
            "itl_us",
            "us",
            &latency_histogram((0..5000).map(|i| 1300 + i % 260)),
        )
        .unwrap();
    let c = compare(&store, a, b, &CompareOptions::default()).unwrap();
    let tg = c.rows.iter().find(|r| r.metric == "tg_tps").unwrap();
    assert_eq!(tg.verdict, Verdict::Regressed);
    assert!(tg.rule.contains("sd of A only"), "{}", tg.rule);
    assert_eq!(verdict_of(&c, "itl_us mean"), Verdict::Regressed);
    assert_eq!(verdict_of(&c, "itl_us p99"), Verdict::Regressed);
}

#[test]
fn direction_from_unit_then_name() {
    use compare::direction;
    assert_eq!(direction("tg", "tok/s"), Direction::HigherIsBetter);
    assert_eq!(direction("anything", "GB/s"), Direction::HigherIsBetter);
    assert_eq!(direction("ttft", "ms"), Direction::LowerIsBetter);
    assert_eq!(direction("vram", "MiB"), Direction::LowerIsBetter);
    assert_eq!(direction("tg_tps", ""), Direction::HigherIsBetter);
    assert_eq!(direction("bandwidth_share", "%"), Direction::HigherIsBetter);
    assert_eq!(direction("error_rate", "%"), Direction::LowerIsBetter);
    assert_eq!(direction("tokens_per_s", ""), Direction::HigherIsBetter);
    assert_eq!(direction("widgets", ""), Direction::Unknown);
}
