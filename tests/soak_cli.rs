//! Soak runs end to end: `rawrxd scripts/phase2_soak.lua` against the pool's loopback
//! [`FakeServer`] (and once against the CPU engine with the test model), killed with SIGKILL,
//! resumed, and interrupted with SIGINT; and `rawrxd.soak.run` from Lua on the virtual clock.
//!
//! No timing is asserted: the tests wait for the `@checkpoint N` lines the script prints from its
//! `on_sample` callback (after the checkpoint is committed), then act.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use rawrxd::pool::fake::{FakeConfig, FakeServer};
use rawrxd::store::{RunId, RunStatus, Store};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/phase2_soak.lua");

/// A fake OpenAI server on its own runtime (kept alive with the returned runtime).
fn fake_server() -> (tokio::runtime::Runtime, FakeServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(FakeServer::start(FakeConfig::default()))
        .unwrap();
    (rt, server)
}

/// Starts the soak script against `url` with a small, fast configuration plus `extra` flags.
fn spawn_soak(url: &str, db: &Path, extra: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut args = vec![
        SCRIPT.to_string(),
        "--target".into(),
        url.into(),
        "--concurrency".into(),
        "2".into(),
        "--max-tokens".into(),
        "4".into(),
        "--probe-interval".into(),
        "0.05".into(),
        "--checkpoint".into(),
        "0.2".into(),
        "--warmup".into(),
        "0".into(),
        "--db".into(),
        db.to_string_lossy().into_owned(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rawrxd");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// Reads lines until `@checkpoint n`; returns the run id it names.
fn wait_checkpoint(out: &mut BufReader<ChildStdout>, n: u64) -> RunId {
    let mut line = String::new();
    loop {
        line.clear();
        let read = out.read_line(&mut line).unwrap();
        assert!(read > 0, "the soak ended before checkpoint {n}");
        // "@checkpoint K run ID elapsed E"
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["@checkpoint", k, "run", id, ..] = words.as_slice() {
            if k.parse::<u64>().unwrap() >= n {
                return RunId(id.parse().unwrap());
            }
        }
    }
}

/// Checkpoint indexes of `run`, from its `checkpoint` events, in order.
fn checkpoint_indexes(store: &Store, run: RunId) -> Vec<u64> {
    store
        .events(run)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "checkpoint")
        .map(|e| e.payload["index"].as_u64().unwrap())
        .collect()
}

/// Kills a soak with SIGKILL after its second checkpoint; returns the run and the checkpoints
/// it had announced.
fn soak_and_kill(url: &str, db: &Path) -> (RunId, u64) {
    let (mut child, mut out) = spawn_soak(url, db, &["--minutes", "10"]);
    let run = wait_checkpoint(&mut out, 2);
    // Child::kill is SIGKILL: no destructor, no end_run.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    (run, 2)
}

#[test]
fn sigkill_keeps_every_checkpoint_and_the_run_reads_interrupted() {
    let (_rt, server) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let (run, announced) = soak_and_kill(&server.base_url(), &db);

    let store = Store::open(&db).unwrap();
    let r = store.run(run).unwrap();
    assert_eq!(r.status, RunStatus::Interrupted, "{r:?}");
    assert_eq!(r.phase, "phase2-soak");
    let indexes = checkpoint_indexes(&store, run);
    assert!(indexes.len() as u64 >= announced, "{indexes:?}");
    assert_eq!(indexes, (1..=indexes.len() as u64).collect::<Vec<_>>());
    let m = store.measurements(run).unwrap();
    for i in 1..=announced {
        let tagged = |name: &str| {
            m.iter().any(|m| {
                m.name == name && m.tags.get("checkpoint").and_then(|c| c.as_u64()) == Some(i)
            })
        };
        assert!(tagged("requests_ok"), "checkpoint {i} measurements");
        assert!(tagged("leak_slope_mb_per_h"), "checkpoint {i} leak slope");
    }
    let names = store.series_names(run).unwrap();
    for name in [
        "rss_mb",
        "cpu_pct",
        "tokens_per_s",
        "requests_ok",
        "requests_failed",
        "elapsed_s",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "series {name} in {names:?}"
        );
    }
    // An HTTP target has no in-process engine to account for.
    assert!(!names.iter().any(|n| n == "vram_own_mb"));
    let ok = store.series(run, "requests_ok").unwrap();
    assert!(ok.last().unwrap().value > 0.0, "requests completed");
    assert!(store
        .histogram_names(run)
        .unwrap()
        .iter()
        .any(|(n, _)| n == "soak.ttft"));
}

#[test]
fn resume_continues_the_killed_run() {
    let (_rt, server) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let (run, _) = soak_and_kill(&server.base_url(), &db);
    let (before_elapsed, before_ok, before_checkpoints) = {
        let store = Store::open(&db).unwrap();
        let max = |name: &str| {
            store
                .series(run, name)
                .unwrap()
                .iter()
                .map(|p| p.value)
                .fold(0.0, f64::max)
        };
        (
            max("elapsed_s"),
            max("requests_ok"),
            checkpoint_indexes(&store, run).len() as u64,
        )
    };
    assert!(before_elapsed > 0.0 && before_elapsed < 6.0);

    // Resume run `run` for a total soak time of 6 s.
    let id = run.0.to_string();
    let (mut child, mut out) = spawn_soak(
        &server.base_url(),
        &db,
        &["--minutes", "0.1", "--resume", &id],
    );
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("soak run {run} ok (duration reached)")),
        "{text}"
    );
    assert!(text.contains("resumed"), "{text}");
    assert!(
        text.contains(&format!("@checkpoint {} run {run}", before_checkpoints + 1)),
        "checkpoint numbering continues: {text}"
    );

    let store = Store::open(&db).unwrap();
    assert_eq!(store.run(run).unwrap().status, RunStatus::Ok);
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 1);
    let segments: Vec<f64> = store
        .events(run)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "soak_segment")
        .map(|e| e.payload["elapsed_start_s"].as_f64().unwrap())
        .collect();
    assert_eq!(segments, vec![0.0, before_elapsed], "soak time carried on");
    let indexes = checkpoint_indexes(&store, run);
    assert_eq!(indexes, (1..=indexes.len() as u64).collect::<Vec<_>>());
    assert!(indexes.len() as u64 > before_checkpoints);
    // Series append: soak time and the cumulative request count only go up, across the restart.
    let elapsed = store.series(run, "elapsed_s").unwrap();
    let ok = store.series(run, "requests_ok").unwrap();
    assert_eq!(elapsed.len(), ok.len());
    for pair in elapsed.windows(2) {
        assert!(pair[1].value > pair[0].value, "{pair:?}");
    }
    for pair in ok.windows(2) {
        assert!(pair[1].value >= pair[0].value, "{pair:?}");
    }
    assert!(ok.last().unwrap().value > before_ok);
    let end = elapsed.last().unwrap().value;
    assert!(
        (6.0..7.0).contains(&end),
        "ends at the 6 s soak time: {end}"
    );
}

#[test]
fn sigint_ends_the_soak_with_a_summary_and_an_interrupted_run() {
    let (_rt, server) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let (mut child, mut out) = spawn_soak(&server.base_url(), &db, &["--minutes", "10"]);
    let run = wait_checkpoint(&mut out, 1);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "the script returns 2 unless ok: {text}"
    );
    assert!(
        text.contains(&format!("soak run {run} interrupted (interrupted)")),
        "{text}"
    );
    assert!(text.contains("requests:"), "{text}");

    let store = Store::open(&db).unwrap();
    let r = store.run(run).unwrap();
    assert_eq!(r.status, RunStatus::Interrupted);
    assert_eq!(r.error, None, "ended by the soak, not reconciled");
    let end = store
        .events(run)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "soak_end")
        .expect("soak_end event");
    assert_eq!(end.payload["status"], "interrupted");
}

#[test]
fn engine_target_samples_the_engines_own_memory() {
    let Some(model) = common::test_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .args([SCRIPT, "--model"])
        .arg(&model)
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--concurrency",
            "1",
            "--max-tokens",
            "2",
            "--ctx",
            "64",
            "--minutes",
            "0.05",
            "--probe-interval",
            "0.5",
            "--warmup",
            "0",
            "--db",
        ])
        .arg(&db)
        .arg("--quiet")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(2), "{text}");
    let store = Store::open(&db).unwrap();
    let run = store.list_runs(&Default::default()).unwrap()[0].clone();
    assert_eq!(run.status, RunStatus::Ok);
    assert_eq!(run.model_path.as_deref(), Some(model.to_str().unwrap()));
    let own = store.series(run.id, "vram_own_mb").unwrap();
    // At most 6 samples in 3 s at 0.5 s (fewer if a tick was skipped on a loaded machine).
    assert!((3..=6).contains(&own.len()), "{} samples", own.len());
    // The engine's own accounting: weights and KV cache of the loaded model, constant here.
    assert!(own
        .iter()
        .all(|p| p.value > 10.0 && p.value == own[0].value));
    assert!(text.contains("vram_own"), "{text}");
    assert!(
        store
            .series(run.id, "requests_ok")
            .unwrap()
            .last()
            .unwrap()
            .value
            >= 1.0,
        "{text}"
    );
}

#[test]
fn lua_soak_on_the_virtual_clock_with_on_sample() {
    let (_rt, server) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let script = dir.path().join("soak.lua");
    std::fs::write(
        &script,
        r#"
local rx = require "rawrxd"
local url, db = ...
local seen = 0
local s = rx.soak.run {
  target = url, concurrency = 2, hours = 1, name = "virtual",
  request = function(i) return { prompt = "p" .. i, max_tokens = 2 } end,
  probe_interval_s = 60, checkpoint_s = 900, warmup_s = 300, db = db, progress = false,
  test_hooks = { virtual_clock = true },
  on_sample = function(sample)
    seen = seen + 1
    assert(rx.results.current() == sample.run_id, "the soak's run is current")
    rx.results.event("probe", { i = sample.index })
    assert(sample.elapsed_s == 60 * seen, "virtual minutes: " .. sample.elapsed_s)
    if sample.elapsed_s >= 1800 then return false end
  end,
}
assert(s.status == "ok" and s.reason == "stopped by on_sample", s.reason)
assert(s.samples == 30 and seen == 30, "samples " .. s.samples)
assert(s.checkpoints == 2, "checkpoints " .. s.checkpoints)
assert(s.leak.rss and s.leak.rss.n == 26, "rss fit after 5 min of warm-up")
assert(rx.results.current() == nil, "no run left current")
assert(s.table:find("soak run " .. s.run_id .. " ok"), s.table)
return 0
"#,
    )
    .unwrap();
    let host = rawrxd::lua::Host::new(
        &script,
        &[server.base_url(), db.to_string_lossy().into_owned()],
    )
    .unwrap();
    assert_eq!(host.run().unwrap(), 0);
    let store = Store::open(&db).unwrap();
    let run = store.list_runs(&Default::default()).unwrap()[0].clone();
    assert_eq!(run.status, RunStatus::Ok);
    let probes = store
        .events(run.id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "probe")
        .count();
    assert_eq!(probes, 30, "events from on_sample land in the soak's run");
}

#[test]
fn a_module_edited_during_a_soak_is_reloaded_at_a_sample() {
    let (_rt, server) = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.sqlite");
    let module = dir.path().join("limits.lua");
    std::fs::write(&module, "return { value = 1 }\n").unwrap();
    let script = dir.path().join("soak.lua");
    std::fs::write(
        &script,
        r#"
local rx = require "rawrxd"
local url, db, module = ...
assert(require("limits").value == 1)
local edited, seen_after = false, nil
local s = rx.soak.run {
  target = url, concurrency = 1, duration = 60, prompt = "p", max_tokens = 2,
  probe_interval_s = 0.05, checkpoint_s = 600, warmup_s = 0, db = db, progress = false,
  on_sample = function(sample)
    if not edited then
      -- Save as editors do: write a new file, rename it over the old one.
      local f = assert(io.open(module .. ".tmp", "w"))
      f:write("return { value = 2 }\n")
      f:close()
      assert(os.rename(module .. ".tmp", module))
      edited = true
    elseif rx.generation() > 0 then
      seen_after = package.loaded.limits.value
      return false
    end
  end,
}
assert(s.reason == "stopped by on_sample", "the watcher never delivered the edit: " .. s.reason)
assert(seen_after == 2, "reloaded module value " .. tostring(seen_after))
return 0
"#,
    )
    .unwrap();
    let host = rawrxd::lua::Host::with_debounce(
        &script,
        &[
            server.base_url(),
            db.to_string_lossy().into_owned(),
            module.to_string_lossy().into_owned(),
        ],
        std::time::Duration::from_millis(50),
    )
    .unwrap();
    assert_eq!(host.run().unwrap(), 0);
    let store = Store::open(&db).unwrap();
    let run = store.list_runs(&Default::default()).unwrap()[0].clone();
    let reloads: Vec<_> = store
        .events(run.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "reload")
        .collect();
    assert_eq!(reloads.len(), 1, "the reload is recorded in the soak's run");
    assert_eq!(reloads[0].payload["generation"], 1);
}
