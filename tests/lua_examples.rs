//! Runs every example under examples/lua through the `rawrxd` binary with small settings on the
//! CPU backend, and checks what each prints. A new example without an entry here fails the test.
//!
//! Needs the test model (see tests/lua_api.rs).

use std::path::Path;
use std::process::Command;

mod common;
use common::test_model;

/// (example, arguments, text its output must contain). The binary is run with `$RAWRXD_LUA_PATH`
/// pointing at this tree's lib-lua, whatever tree the binary was built from.
const CASES: &[(&str, &[&str], &str)] = &[
    ("model.lua", &[], "layers 30, width 576, heads 9/3"),
    ("documents.lua", &[], "variants.csv"),
    ("engine.lua", &["--backend", "cpu", "--n", "4"], "Paris"),
    (
        "bench.lua",
        &[
            "--backend",
            "cpu",
            "--variant",
            "q8_0",
            "--prompt",
            "8",
            "--gen",
            "4",
            "--repeats",
            "2",
        ],
        "pp8: ",
    ),
    (
        "quality.lua",
        &[
            "--backend",
            "cpu",
            "--variant",
            "q8_0",
            "--ctx",
            "32",
            "--chunks",
            "1",
        ],
        "Q8_0: PPL ",
    ),
    ("quant.lua", &[], "schemes/hybrid_example.lua on "),
    ("probe.lua", &["--backend", "cpu"], "engine: weights "),
    ("results.lua", &[], "tg_tps"),
    ("alerts.lua", &[], "vram-leak    firing    VRAM grows "),
    (
        "soak.lua",
        &["--backend", "cpu"],
        " requests ok, 0 failed, ",
    ),
    ("faults.lua", &["--backend", "cpu"], "12 sent: "),
    ("report.lua", &[], "| Q4_K_M | 41.12 | 0.476 | 41.76 |"),
    (
        "hot_scheme.lua",
        &["--backend", "cpu", "--rounds", "1", "--pause", "0"],
        "round 1, generation 0: tg ",
    ),
    (
        "synth.lua",
        &[
            "--backend",
            "cpu",
            "--shape",
            "n_embd=256,n_layer=2,n_head=4,n_ff=512,n_vocab=1000",
            "--prompt",
            "8",
            "--gen",
            "4",
            "--repeats",
            "1",
        ],
        "2 layers, width 256",
    ),
];

#[test]
fn every_lua_example_runs() {
    let Some(model) = test_model() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut on_disk: Vec<String> = std::fs::read_dir(root.join("examples/lua"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every example needs a case here");

    let tmp = tempfile::tempdir().unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rawrxd-examples-cache");
    let mut failures = Vec::new();
    for (name, args, expect) in CASES {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rawrxd"));
        c.current_dir(root)
            .arg(format!("examples/lua/{name}"))
            .args(*args)
            .env("RAWRXD_MODEL", &model)
            .env("RAWRXD_LUA_PATH", root.join("lib-lua"))
            .env("RAWRXD_CACHE", &cache)
            .env("RAWRXD_RESULTS", tmp.path().join("results.sqlite"))
            .env("RUST_LOG", "warn");
        if *name == "results.lua" {
            c.args(["--db", &tmp.path().join("example.sqlite").to_string_lossy()]);
        }
        if *name == "documents.lua" {
            c.args(["--out", &tmp.path().join("docs").to_string_lossy()]);
        }
        if *name == "report.lua" {
            c.args(["--out", &tmp.path().join("curve").to_string_lossy()]);
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(expect) {
            failures.push(format!(
                "{name}: {}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
