//! `rawrxd.pool` against the loopback fake OpenAI server (no model needed): results come back
//! and are stored, the request function is called once per request, options are checked.

use std::path::PathBuf;

use crate::lua::Host;
use crate::pool::fake::{FakeConfig, FakeServer};
use crate::store::{RunFilter, Store};
use crate::Error;

/// A fake server on its own runtime (kept alive with the server).
fn fake() -> (tokio::runtime::Runtime, FakeServer) {
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

/// Runs `text` as a script; returns the host's exit code or the script error.
fn run(text: &str) -> (tempfile::TempDir, PathBuf, Result<i32, String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.lua");
    std::fs::write(&path, text).unwrap();
    let host = Host::new(&path, &[]).unwrap();
    let out = host.run().map_err(|e| match e {
        Error::Script(m) => m,
        other => other.to_string(),
    });
    (dir, path, out)
}

#[test]
fn a_closed_loop_against_http_returns_and_stores_its_result() {
    let (_rt, server) = fake();
    let script = format!(
        r#"
        local rx = require "rawrxd"
        rx.results.open(DB)
        rx.results.begin_run {{ phase = "test", name = "pool" }}
        local seen = {{}}
        local r = rx.pool.run {{
          target = "{url}", concurrency = 2, requests = 6, max_tokens = 3,
          request = function(i) seen[#seen + 1] = i; return {{ prompt = "p" .. i }} end,
          slo = {{ ttft_ms = 10000 }}, name = "t", tags = {{ level = "x" }},
        }}
        table.sort(seen)
        assert(table.concat(seen, ",") == "1,2,3,4,5,6", table.concat(seen, ","))
        assert(r.counts.completed == 6 and r.counts.failed == 0, r.table)
        assert(r.output_tokens == 18, r.output_tokens)
        assert(r.itl.count == 12 and r.ttft.count == 6, r.itl.count)
        assert(r.goodput_per_s > 0 and r.slo_attainment == 1)
        assert(r.stored == true and r.level == 2)
        assert(r.ttft.p50 >= 5, "the fake's TTFT is 5 ms: " .. r.ttft.p50)
        rx.results.end_run()
        return 0
        "#,
        url = server.base_url()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let script = script.replace("DB", &format!("{:?}", db.to_string_lossy()));
    let (_d, _p, out) = run(&script);
    assert_eq!(out, Ok(0));
    assert_eq!(
        server
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );

    let store = Store::open(&db).unwrap();
    let run = store.list_runs(&RunFilter::default()).unwrap()[0].id;
    let ms = store.measurements(run).unwrap();
    let p50 = ms
        .iter()
        .find(|m| m.name == "t.ttft_p50")
        .expect("t.ttft_p50");
    assert_eq!(p50.unit, "ms");
    assert_eq!(p50.tags["level"], "x");
    assert_eq!(p50.tags["concurrency"], 2);
    assert!(p50.tags["target"].as_str().unwrap().contains("openai-http"));
    let completed = ms.iter().find(|m| m.name == "t.completed").unwrap();
    assert_eq!(completed.value, 6.0);
    let itl = store
        .histogram(run, "t.itl{concurrency=2,level=x}")
        .unwrap()
        .expect("the ITL histogram");
    assert_eq!(itl.len(), 12);
}

#[test]
fn an_open_loop_runs_from_a_fixed_prompt_without_a_results_run() {
    let (_rt, server) = fake();
    let script = format!(
        r#"
        local rx = require "rawrxd"
        local r = rx.pool.run {{
          target = "{url}", endpoint = "chat", arrival = {{ kind = "constant", rate = 100 }},
          requests = 5, prompt = "hello", max_tokens = 2,
        }}
        assert(r.counts.scheduled == 5 and r.counts.completed == 5, r.table)
        assert(r.stored == false)
        return 0
        "#,
        url = server.base_url()
    );
    let (_d, _p, out) = run(&script);
    assert_eq!(out, Ok(0));
}

#[test]
fn bad_options_are_errors_that_name_the_field() {
    let cases = [
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, requests = 1, prompt = "x", speed = 3 }"#,
            "unknown field 'speed'",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", requests = 1, prompt = "x" }"#,
            "'concurrency'",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, arrival = { rate = 1 }, requests = 1, prompt = "x" }"#,
            "exactly one of 'concurrency'",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, requests = 1 }"#,
            "'request'",
        ),
        (
            r#"rx.pool.run { concurrency = 1, requests = 1, prompt = "x" }"#,
            "'target' is required",
        ),
        (
            r#"rx.pool.run { target = "ftp://x", concurrency = 1, requests = 1, prompt = "x" }"#,
            "http(s)://",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", arrival = { kind = "burst", rate = 1 }, requests = 1, prompt = "x" }"#,
            "arrival.kind 'burst'",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, prompt = "x" }"#,
            "duration",
        ),
        (
            r#"rx.pool.run { target = "engine", concurrency = 1, requests = 1, prompt = "x" }"#,
            "'model'",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, requests = 1, request = function(i) return 5 end }"#,
            "request 1: the request function returned integer, expected a table",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, requests = 1, request = function(i) return { prompt = "a", colour = 1 } end }"#,
            "colour",
        ),
        (
            r#"rx.pool.run { target = "http://127.0.0.1:1", concurrency = 1, requests = 1, request = function(i) error("no prompt for " .. i) end }"#,
            "no prompt for 1",
        ),
    ];
    for (line, want) in cases {
        let (_d, path, out) = run(&format!("local rx = require 'rawrxd'\n{line}\n"));
        let msg = out.expect_err(line);
        assert!(msg.contains(want), "{line}\n  gave: {msg}");
        assert!(
            msg.contains(&format!("{}:", path.display())),
            "no location: {msg}"
        );
    }
}
