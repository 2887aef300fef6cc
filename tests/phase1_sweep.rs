//! scripts/phase1_sweep.lua end to end through the `rawrxd` binary, with small settings on the CPU
//! backend: the table, the rows in the store (one run per variant, provenance, a failed variant
//! stored as failed), the curve files; and a `kill -9` in the middle of a sweep, after which every
//! completed run is intact.
//!
//! Needs the test model (see tests/lua_api.rs).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rawrxd::store::{RunFilter, RunStatus, Store};

mod common;
use common::test_model;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The sweep command with CI-sized settings, writing into `dir`.
fn sweep(model: &Path, dir: &Path, backend: &str, variants: &str, hybrid: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rawrxd"));
    c.current_dir(root())
        .arg("scripts/phase1_sweep.lua")
        .args(["--model", &model.to_string_lossy()])
        .args([
            "--backend",
            backend,
            "--variants",
            variants,
            "--hybrid",
            hybrid,
        ])
        .args([
            "--prompt",
            "8",
            "--gen",
            "4",
            "--repeats",
            "2",
            "--warmup",
            "1",
        ])
        .args([
            "--ctx",
            "32",
            "--ppl-chunks",
            "1",
            "--threads",
            "2",
            "--quiet",
        ])
        .args(["--db", &dir.join("r.sqlite").to_string_lossy()])
        .args(["--out", &dir.join("phase1_curve").to_string_lossy()])
        .args([
            "--cache",
            &Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("rawrxd-phase1-cache")
                .to_string_lossy(),
        ])
        .env("RUST_LOG", "warn")
        .env("RAWRXD_LUA_PATH", root().join("lib-lua"));
    c
}

const BROKEN: &str = "-- K-quants do not fit SmolLM2's 576-wide rows without fallback\n\
                      return { default = \"q4_k\" }\n";

#[test]
fn sweep_stores_every_variant_prints_the_table_and_draws_the_curve() {
    let Some(model) = test_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.lua");
    std::fs::write(&broken, BROKEN).unwrap();
    let hybrid = format!("schemes/hybrid_example.lua,{}", broken.display());
    let out = sweep(&model, dir.path(), "cpu", "q8_0", &hybrid)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One variant failed: exit code 2, the others ran.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let table: Vec<&str> = stdout.lines().collect();
    let row = |name: &str| {
        table
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name} in:\n{stdout}"))
    };
    assert!(row("Q8_0").ends_with(" ok"), "{stdout}");
    assert!(row("hybrid_example").ends_with(" ok"), "{stdout}");
    assert!(row("broken").contains("failed: "), "{stdout}");
    assert!(table
        .iter()
        .any(|l| l.starts_with("variant ") && l.contains("tg t/s")));

    let store = Store::open(dir.path().join("r.sqlite")).unwrap();
    let mut runs = store.list_runs(&RunFilter::default()).unwrap();
    runs.reverse(); // oldest first
    let names: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.name.as_str(), r.status)).collect();
    assert_eq!(
        names,
        [
            ("Q8_0", RunStatus::Ok),
            ("hybrid_example", RunStatus::Ok),
            ("broken", RunStatus::Failed)
        ]
    );
    let sha = {
        let mut f = std::fs::File::open(&model).unwrap();
        rawrxd::store::sha256_hex(&mut f, &model).unwrap()
    };
    for r in &runs[..2] {
        assert_eq!(r.phase, "phase1");
        assert_eq!(r.model_path.as_deref(), model.to_str());
        assert_eq!(r.variant.as_deref(), Some(r.name.as_str()));
        assert!(
            r.device.as_deref().unwrap_or("").starts_with("cpu"),
            "{:?}",
            r.device
        );
        assert_eq!(r.model_sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(r.params["prompt"], 8);
        assert_eq!(r.params["backend"], "cpu");
        let ms = store.measurements(r.id).unwrap();
        let count = |n: &str| ms.iter().filter(|m| m.name == n).count();
        assert_eq!(count("tg_tps"), 2, "{}", r.name);
        assert_eq!(count("pp_tps"), 2, "{}", r.name);
        // Decode speeds say how their products ran (the CPU engine: f32).
        for m in ms.iter().filter(|m| m.name == "tg_tps") {
            assert_eq!(
                m.tags.get("decode_matvec").and_then(|v| v.as_str()),
                Some("f32"),
                "{:?}",
                m.tags
            );
        }
        // Prompt speeds say how their products ran (the CPU engine: f32).
        for m in ms.iter().filter(|m| m.name == "pp_tps") {
            assert_eq!(
                m.tags.get("prompt_matmul").and_then(|v| v.as_str()),
                Some("f32"),
                "{:?}",
                m.tags
            );
        }
        for n in [
            "ms_p50",
            "ms_p95",
            "ms_p99",
            "ppl",
            "kld",
            "same_top_pct",
            "bpw",
        ] {
            assert_eq!(count(n), 1, "{} {n}", r.name);
        }
        let h = store.histogram(r.id, "tg_token_latency").unwrap().unwrap();
        assert_eq!(h.len(), 8, "4 tokens × 2 repeats");
    }
    let err = runs[2].error.as_deref().unwrap();
    assert!(
        err.contains("broken.lua") && err.contains("fallback"),
        "{err}"
    );

    // The stored perplexity of Q8_0 is the library's perplexity of the file the sweep ran.
    let ms = store.measurements(runs[0].id).unwrap();
    let stored = ms.iter().find(|m| m.name == "ppl").unwrap().value;
    let cached =
        std::fs::read_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("rawrxd-phase1-cache"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.to_string_lossy().contains("-Q8_0-") && p.extension().is_some_and(|x| x == "gguf")
            })
            .unwrap();
    let f = std::sync::Arc::new(rawrxd::gguf::GgufFile::open(&cached).unwrap());
    let tok = rawrxd::model::tokenizer::Tokenizer::from_gguf(&f).unwrap();
    let text = std::fs::read_to_string(root().join("data/eval.txt")).unwrap();
    let tokens = tok.encode(&text, true, false).unwrap();
    let mut e = rawrxd::engine::CpuEngine::load(f, 32, Some(2)).unwrap();
    let p = rawrxd::engine::perplexity(
        &mut e,
        &tokens,
        &rawrxd::engine::PerplexityParams {
            n_ctx: 32,
            n_chunks: Some(1),
            bos: if tok.adds_bos() { tok.bos() } else { None },
        },
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(
        (stored - p.ppl.value).abs() <= 1e-9 * p.ppl.value,
        "stored {stored} vs {}",
        p.ppl.value
    );

    // The Markdown table and the curve.
    let md = std::fs::read_to_string(dir.path().join("phase1_curve.md")).unwrap();
    assert!(
        md.starts_with("**Phase 1") && md.contains("| Q8_0 |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(dir.path().join("phase1_curve.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Q8_0") && svg.contains("hybrid_example"));
    let png = std::fs::read(dir.path().join("phase1_curve.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn kill_during_a_sweep_keeps_completed_runs() {
    let Some(model) = test_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let mut child = sweep(&model, dir.path(), "cpu", "q8_0,q5_0,q4_0", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first variant is complete and the second has begun.
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        assert!(
            Instant::now() < deadline,
            "the sweep never got to its second variant"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended before it could be killed: {status}");
        }
        if db.is_file() {
            if let Ok(store) = Store::open(&db) {
                let runs = store.list_runs(&RunFilter::default()).unwrap();
                let ok = runs.iter().any(|r| r.status == RunStatus::Ok);
                let running = runs.iter().any(|r| r.status == RunStatus::Running);
                if ok && running {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));

    let store = Store::open(&db).unwrap();
    let mut runs = store.list_runs(&RunFilter::default()).unwrap();
    runs.reverse();
    assert_eq!(runs[0].name, "Q8_0");
    assert_eq!(runs[0].status, RunStatus::Ok);
    let ms = store.measurements(runs[0].id).unwrap();
    assert_eq!(ms.iter().filter(|m| m.name == "tg_tps").count(), 2);
    for n in ["ppl", "kld", "ms_p95", "vram_mib"] {
        assert!(ms.iter().any(|m| m.name == n), "{n} missing after the kill");
    }
    assert!(store
        .histogram(runs[0].id, "tg_token_latency")
        .unwrap()
        .is_some());
    // The run the kill cut short is marked interrupted, not left running.
    assert_eq!(runs[1].status, RunStatus::Interrupted);
    // Everything reads back through the exporters.
    let ids: Vec<_> = runs.iter().map(|r| r.id).collect();
    let json = rawrxd::store::export(&store, &ids, rawrxd::store::ExportFormat::Json).unwrap();
    assert!(json.contains("\"Q8_0\""));
}

#[test]
fn sweep_on_vulkan_lavapipe() {
    let Some(model) = test_model() else { return };
    if std::env::var_os("RAWRXD_SKIP_VULKAN").is_some_and(|v| v == "1") {
        eprintln!("RAWRXD_SKIP_VULKAN=1: Vulkan sweep skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = sweep(
        &model,
        dir.path(),
        "vulkan",
        "q8_0",
        "schemes/hybrid_example.lua",
    )
    .env("RAWRXD_VULKAN_VALIDATION", "2")
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no usable Vulkan device? (RAWRXD_SKIP_VULKAN=1 skips this test)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Validation errors are logged by the debug messenger at error level.
    assert!(
        !stderr.contains("[ERROR rawrxd::engine::vulkan"),
        "{stderr}"
    );
    assert!(stdout.contains("vulkan backend"), "{stdout}");
    let store = Store::open(dir.path().join("r.sqlite")).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r.status, RunStatus::Ok, "{}", r.name);
        let device = r.device.as_deref().unwrap_or("");
        assert!(!device.starts_with("cpu"), "ran on {device}");
        let ms = store.measurements(r.id).unwrap();
        for n in ["tg_tps", "ppl", "kld", "vram_mib"] {
            assert!(ms.iter().any(|m| m.name == n), "{} lacks {n}", r.name);
        }
        // Device memory as the engine accounts it: at least the weights of the file it ran.
        let vram = ms.iter().find(|m| m.name == "vram_mib").unwrap().value;
        let file = r.params["file"].as_str().unwrap();
        let weights = rawrxd::gguf::GgufFile::open(file).unwrap().tensor_bytes() as f64;
        assert!(
            vram * 1048576.0 >= 0.5 * weights,
            "{} MiB for {weights} bytes",
            vram
        );
    }
    assert!(dir.path().join("phase1_curve.svg").is_file());
    assert!(dir.path().join("phase1_curve.png").is_file());
}
