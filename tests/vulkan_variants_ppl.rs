//! The Vulkan engine against the CPU engine on the real SmolLM2 model in three formats (F16, Q8_0,
//! Q4_K_M, made from the test model with `rawrxd quantize`): perplexity on data/eval.txt must agree
//! within 0.1 %, through the command line a user runs. The CPU engine is the oracle (it matches
//! llama.cpp's F32 perplexity to every printed digit, tests/perplexity.rs).
//!
//! Needs a Vulkan device (lavapipe in CI) and the test model; fails when either is missing unless
//! RAWRXD_ALLOW_MISSING_MODEL=1 (model only).

mod common;

use std::path::Path;
use std::process::Command;

fn rawrxd(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .args(args)
        .output()
        .expect("run rawrxd");
    assert!(
        out.status.success(),
        "rawrxd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn ppl(model: &Path, backend: &str) -> f64 {
    let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval.txt");
    let v = rawrxd(&[
        "perplexity",
        "-m",
        model.to_str().unwrap(),
        "-f",
        eval.to_str().unwrap(),
        "-c",
        "128",
        "--chunks",
        "2",
        "--backend",
        backend,
        "--json",
    ]);
    v["ppl"]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no ppl.value in {v}"))
}

#[test]
fn vulkan_perplexity_matches_cpu_for_f16_q8_0_and_q4_k_m() {
    let Some(src) = common::test_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for ty in ["F16", "Q8_0", "Q4_K_M"] {
        let dst = dir.path().join(format!("smollm2-{ty}.gguf"));
        let out = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
            .args(["quantize", "--allow-requantize"])
            .arg(&src)
            .arg(&dst)
            .arg(ty)
            .output()
            .expect("run rawrxd quantize");
        assert!(
            out.status.success(),
            "quantize {ty}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cpu = ppl(&dst, "cpu");
        let vk = ppl(&dst, "vulkan");
        let rel = (vk - cpu).abs() / cpu;
        eprintln!(
            "{ty}: PPL cpu {cpu:.4} vulkan {vk:.4} rel. diff {:.4} %",
            rel * 100.0
        );
        assert!(cpu.is_finite() && cpu > 1.0, "{ty}: cpu PPL {cpu}");
        assert!(
            rel < 1e-3,
            "{ty}: vulkan PPL {vk} vs cpu {cpu} ({:.3} %)",
            rel * 100.0
        );
    }
}
