//! Tests of the Lua host: error locations, arguments, `require`, results, hot reload.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::store::{RunFilter, RunStatus, Store};
use crate::Error;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A script in a fresh directory; returns (dir, script path).
fn script(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.lua");
    write(&path, text);
    (dir, path)
}

fn run_err(text: &str) -> (PathBuf, String) {
    let (_dir, path) = script(text);
    let host = Host::new(&path, &[]).unwrap();
    match host.run() {
        Err(Error::Script(msg)) => (path, msg),
        other => panic!("expected a script error, got {other:?}"),
    }
}

#[test]
fn lua_errors_name_file_and_line() {
    let (path, msg) = run_err("local x = 1\n\nerror('boom')\n");
    assert_eq!(msg, format!("{}:3: boom", path.display()));
    let (path, msg) = run_err("local t = nil\nlocal y = t.field\n");
    assert!(
        msg.starts_with(&format!("{}:2: attempt to index", path.display())),
        "{msg}"
    );
    let (path, msg) = run_err("local x = = 2\n");
    assert!(msg.starts_with(&format!("{}:1:", path.display())), "{msg}");
}

#[test]
fn rust_api_errors_name_the_calling_line() {
    let (path, msg) = run_err("local rx = require 'rawrxd'\n\nrx.time.sleep(-1)\n");
    assert_eq!(
        msg,
        format!(
            "{}:3: rawrxd.time.sleep: expected a non-negative number of seconds, got -1",
            path.display()
        )
    );
    // A conversion failure raised by mlua itself also gets the script location.
    let (path, msg) = run_err("local rx = require 'rawrxd'\nrx.time.sleep({})\n");
    assert!(
        msg.starts_with(&format!("{}:2: bad argument", path.display())),
        "{msg}"
    );
    assert!(!msg.contains("stack traceback"), "{msg}");
}

#[test]
fn errors_in_required_modules_name_the_module_file() {
    let (dir, path) = script("require 'helper'\n");
    write(
        &dir.path().join("helper.lua"),
        "local a = 1\nerror('inside helper')\n",
    );
    let host = Host::new(&path, &[]).unwrap();
    let Err(Error::Script(msg)) = host.run() else {
        panic!("expected an error");
    };
    assert!(msg.ends_with("helper.lua:2: inside helper"), "{msg}");
}

#[test]
fn args_exit_code_and_require() {
    let (dir, path) = script(
        r#"
        local rx = require "rawrxd"
        local util = require "util"
        assert(rx.args.hours == 48, "hours")
        assert(rx.args.verbose == true, "verbose")
        assert(rx.args.max_tokens == 7 and rx.args["max-tokens"] == 7, "max-tokens")
        assert(rx.args[1] == "model.gguf", "positional")
        assert(select(1, ...) == "model.gguf", "varargs")
        assert(#rx.argv == 6, "argv")
        assert(type(rx.time.now()) == "number" and rx.time.monotonic() >= 0)
        rx.log.info("hello", 1, true)
        return util.answer
        "#,
    );
    write(&dir.path().join("util.lua"), "return { answer = 42 }\n");
    let args: Vec<String> = [
        "model.gguf",
        "--hours",
        "48",
        "--max-tokens",
        "7",
        "--verbose",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let host = Host::new(&path, &args).unwrap();
    assert_eq!(host.run().unwrap(), 42);
    assert!(Host::new(dir.path().join("absent.lua"), &[]).is_err());
}

#[test]
fn results_from_lua_reach_the_store() {
    let (dir, path) = script(
        r#"
        local rx = require "rawrxd"
        rx.results.open(rx.args.db)
        local id = rx.results.begin_run { phase = "phase1", name = "q4", variant = "Q4_K_M",
                                          params = { prompt = 512 } }
        rx.results.record("tg_tps", 41.5, "tok/s", { repeat_ = 1 })
        rx.results.record("tg_tps", 42.5, "tok/s")
        rx.results.record_series("vram_mb", 800, 1000.0)
        rx.results.record_histogram("itl_us", "us", { 100, 200, 300, 400 })
        rx.results.event("note", { text = "hi" })
        assert(rx.results.current() == id)
        rx.results.end_run()
        local runs = rx.results.list { phase = "phase1" }
        assert(#runs == 1 and runs[1].status == "ok" and runs[1].variant == "Q4_K_M")
        local q = rx.results.query(id)
        assert(#q.measurements == 2 and q.histograms[1].count == 4)
        local csv = rx.results.export(id, "csv")
        assert(csv:find("tg_tps"))
        local id2 = rx.results.begin_run { phase = "phase1", name = "q8" }
        rx.results.record("tg_tps", 30, "tok/s")
        local c = rx.results.compare(id, id2)
        assert(c.rows[1].metric == "tg_tps" and c.markdown:find("tg_tps"))
        error("stop here")
        "#,
    );
    let db = dir.path().join("r.sqlite");
    let host = Host::new(&path, &["--db".into(), db.to_string_lossy().into_owned()]).unwrap();
    let Err(Error::Script(msg)) = host.run() else {
        panic!("expected the script's error");
    };
    assert!(msg.ends_with("plan.lua:23: stop here"), "{msg}");
    let store = Store::open(&db).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 2);
    // The run left open by the failing script is ended as failed with the error.
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap().contains("stop here"));
    assert_eq!(runs[1].status, RunStatus::Ok);
    assert_eq!(runs[1].params, serde_json::json!({"prompt": 512}));
    let ms = store.measurements(runs[1].id).unwrap();
    assert_eq!(ms.iter().map(|m| m.value).collect::<Vec<_>>(), [41.5, 42.5]);
    let h = store.histogram(runs[1].id, "itl_us").unwrap().unwrap();
    assert_eq!((h.len(), h.max()), (4, 400));
}

#[test]
fn begin_run_rejects_unknown_fields() {
    let (path, msg) = run_err("require('rawrxd').results.begin_run { phse = 'x' }\n");
    assert!(msg.starts_with(&format!("{}:1:", path.display())), "{msg}");
    assert!(msg.contains("unknown field 'phse'"), "{msg}");
}

/// A host whose script requires `cfg` and keeps what reloads deliver in globals.
fn reload_fixture() -> (tempfile::TempDir, PathBuf, Host) {
    let (dir, path) = script(
        r#"
        local rx = require "rawrxd"
        threshold = require("cfg").threshold
        rx.on_reload(function(info)
          threshold = require("cfg").threshold
          seen_generation = info.generation
          seen_module = info.modules[1]
        end)
        "#,
    );
    let cfg = dir.path().join("cfg.lua");
    write(&cfg, "return { threshold = 1 }\n");
    let host = Host::with_debounce(&path, &[], Duration::from_millis(20)).unwrap();
    assert_eq!(host.run().unwrap(), 0);
    (dir, cfg, host)
}

fn eval_i64(host: &Host, expr: &str) -> Option<i64> {
    host.lua().load(format!("return {expr}")).eval().unwrap()
}

#[test]
fn reload_success_bumps_generation_and_calls_back() {
    let (_dir, cfg, host) = reload_fixture();
    assert_eq!(host.generation(), 0);
    // Unchanged content is not a reload.
    assert_eq!(host.reload_now(&[&cfg]).unwrap(), None);
    write(&cfg, "return { threshold = 2 }\n");
    assert_eq!(host.reload_now(&[&cfg]).unwrap(), Some(1));
    assert_eq!(host.generation(), 1);
    assert_eq!(eval_i64(&host, "threshold"), Some(2));
    assert_eq!(eval_i64(&host, "seen_generation"), Some(1));
    assert_eq!(eval_i64(&host, "require('rawrxd').generation()"), Some(1));
    let module: String = host.lua().load("return seen_module").eval().unwrap();
    assert_eq!(module, "cfg");
}

#[test]
fn broken_edit_keeps_the_last_good_version_and_rearms() {
    let (_dir, cfg, host) = reload_fixture();
    // Syntax error.
    write(&cfg, "return { threshold = }\n");
    assert_eq!(host.reload_now(&[&cfg]).unwrap(), None);
    assert_eq!(host.generation(), 0);
    assert_eq!(eval_i64(&host, "require('cfg').threshold"), Some(1));
    let err = host.last_reload_error().unwrap();
    assert!(err.contains("cfg.lua:1:"), "{err}");
    // Runtime error after setting a global: the fresh environment keeps `_G` clean.
    write(
        &cfg,
        "leaked = true\nlocal t = nil\nreturn { threshold = t.x }\n",
    );
    assert_eq!(host.reload_now(&[&cfg]).unwrap(), None);
    assert!(host.last_reload_error().unwrap().contains("cfg.lua:3:"));
    let leaked: Option<bool> = host.lua().load("return leaked").eval().unwrap();
    assert_eq!(leaked, None);
    assert_eq!(eval_i64(&host, "threshold"), Some(1));
    // The next good edit is picked up.
    write(&cfg, "helper_global = 5\nreturn { threshold = 3 }\n");
    assert_eq!(host.reload_now(&[&cfg]).unwrap(), Some(1));
    assert_eq!(eval_i64(&host, "threshold"), Some(3));
    assert_eq!(eval_i64(&host, "helper_global"), Some(5));
    assert_eq!(host.last_reload_error(), None);
}

#[test]
fn main_script_edits_are_checked_not_rerun() {
    let (_dir, path) = script("runs = (runs or 0) + 1\n");
    let host = Host::new(&path, &[]).unwrap();
    host.run().unwrap();
    write(&path, "runs = (runs or 0) + 100\n");
    assert_eq!(host.reload_now(&[&path]).unwrap(), None);
    assert_eq!(eval_i64(&host, "runs"), Some(1));
    assert_eq!(host.generation(), 0);
    write(&path, "runs = = 1\n");
    assert_eq!(host.reload_now(&[&path]).unwrap(), None);
    assert!(host.last_reload_error().unwrap().contains("plan.lua:1:"));
}

#[test]
fn results_rows_carry_the_generation() {
    let (dir, path) = script(
        r#"
        local rx = require "rawrxd"
        rx.results.open(rx.args.db)
        rx.results.begin_run { phase = "soak" }
        rx.results.record("x", 1)
        cfg = require "cfg"
        "#,
    );
    write(&dir.path().join("cfg.lua"), "return 1\n");
    let db = dir.path().join("r.sqlite");
    let host = Host::new(&path, &["--db".into(), db.to_string_lossy().into_owned()]).unwrap();
    // Keep the run open across the reload: run the body without the host's end-of-script close.
    host.lua()
        .load(std::fs::read_to_string(&path).unwrap())
        .set_name("@plan.lua")
        .exec()
        .unwrap();
    write(&dir.path().join("cfg.lua"), "return 2\n");
    assert_eq!(
        host.reload_now(&[&dir.path().join("cfg.lua")]).unwrap(),
        Some(1)
    );
    host.lua()
        .load("require('rawrxd').results.record('x', 2)")
        .exec()
        .unwrap();
    let store = Store::open(&db).unwrap();
    let run = store.list_runs(&RunFilter::default()).unwrap()[0].id;
    let gens: Vec<i64> = store
        .measurements(run)
        .unwrap()
        .iter()
        .map(|m| m.config_generation)
        .collect();
    assert_eq!(gens, [0, 1]);
    let events = store.events(run).unwrap();
    assert_eq!(events[0].kind, "reload");
    assert_eq!(events[0].payload["generation"], serde_json::json!(1));
}

#[test]
fn watcher_sees_an_edit_at_a_safe_point() {
    let (_dir, cfg, host) = reload_fixture();
    // Save the way many editors do: write a new file, rename it over the old one.
    let tmp = cfg.with_extension("lua.tmp");
    write(&tmp, "return { threshold = 7 }\n");
    std::fs::rename(&tmp, &cfg).unwrap();
    // Not a timing assertion: wait (bounded) for the watcher to deliver, as a safe point would.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reloaded = None;
    while reloaded.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        reloaded = host.poll_reload().unwrap();
    }
    assert_eq!(reloaded, Some(1), "the watcher never reported the edit");
    assert_eq!(eval_i64(&host, "threshold"), Some(7));
}

#[test]
fn package_path_searches_script_dir_then_lib_lua_then_cwd() {
    let (dir, path) = script("return 0");
    let host = Host::new(&path, &[]).unwrap();
    let p: String = host.lua().load("return package.path").eval().unwrap();
    let parts: Vec<&str> = p.split(';').collect();
    assert_eq!(parts[0], format!("{}/?.lua", dir.path().display()));
    let lib = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lib-lua")
        .canonicalize()
        .unwrap();
    let lib_pos = parts
        .iter()
        .position(|x| *x == format!("{}/?.lua", lib.display()))
        .expect("lib-lua on package.path");
    assert!(lib_pos > 0);
    assert_eq!(parts[parts.len() - 2], "./?.lua");
}

#[test]
fn type_annotations_cover_the_module() {
    let (_dir, path) = script("return 0");
    let host = Host::new(&path, &[]).unwrap();
    let names: Vec<String> = host
        .lua()
        .load(
            r#"
            local rx = require "rawrxd"
            local out = {}
            for k, v in pairs(rx) do
              if type(v) == "table" and k ~= "args" and k ~= "argv" then
                for k2 in pairs(v) do out[#out + 1] = k .. "." .. k2 end
              else
                out[#out + 1] = k
              end
            end
            return out
            "#,
        )
        .eval()
        .unwrap();
    let meta_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lib-lua/types/rawrxd.lua");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    assert!(names.len() > 20, "{names:?}");
    for n in names {
        let documented = meta.contains(&format!("function rawrxd.{n}("))
            || meta.contains(&format!("---@field {n} "));
        assert!(
            documented,
            "rawrxd.{n} is missing from {}",
            meta_path.display()
        );
    }
}
