//! `rawrxd generate` and `rawrxd perplexity` end to end on the SmolLM2 test model, against
//! llama.cpp's outputs (tests/fixtures/llama_cpp).

mod common;

use std::process::Command;

fn rawrxd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn generate_greedy_streams_llama_cpp_text() {
    let Some(model) = common::test_model() else {
        return;
    };
    let m = model.to_str().unwrap();
    let out = rawrxd(&[
        "generate",
        "-m",
        m,
        "-p",
        "The capital of France is",
        "-n",
        "32",
        "--temp",
        "0",
        "--backend",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // llama-completion with the F32-dequantized model and an f32 KV cache (greedy fixture).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        " Paris.\n\nThe answer is: 2018-01-22 12:12:53.\n"
    );
    assert!(
        stderr.contains("tokens/s") && stderr.contains("stop: eog"),
        "{stderr}"
    );

    let out = rawrxd(&[
        "generate",
        "-m",
        m,
        "-p",
        "The capital of France is",
        "-n",
        "4",
        "--temp",
        "0",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["prompt_tokens"],
        serde_json::json!([504, 3575, 282, 4649, 314])
    );
    assert_eq!(j["tokens"], serde_json::json!([7042, 30, 198, 198]));
    assert_eq!(j["text"], " Paris.\n\n");
    assert_eq!(j["stop"], "max_tokens");
    assert_eq!(
        (j["n_generated"].as_u64(), j["n_decoded"].as_u64()),
        (Some(4), Some(3))
    );
    assert!(j["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn perplexity_prints_llama_perplexity_value() {
    let Some(model) = common::test_model() else {
        return;
    };
    let out = rawrxd(&[
        "perplexity",
        "-m",
        model.to_str().unwrap(),
        "-f",
        "data/eval.txt",
        "-c",
        "128",
        "--chunks",
        "2",
        "--backend",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // llama-perplexity's running value after two chunks on the F32-dequantized model with an
    // f32 KV cache (perplexity fixture, `f32_model`): [2]35.9816.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("PPL = 35.981"), "{stdout}");
    assert!(stderr.contains("[1]26.0631,[2]35.9816,"), "{stderr}");
}

#[test]
fn bad_backend_and_missing_model_are_clear_errors() {
    let Some(model) = common::test_model() else {
        return;
    };
    let out = rawrxd(&[
        "generate",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "Hi",
        "-n",
        "1",
        "--backend",
        "tpu",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown backend 'tpu'"), "{stderr}");
    let out = rawrxd(&["generate", "-m", "no/such/model.gguf", "-p", "Hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/model.gguf"));
}
