//! The CPU engine's `ggml` numerics against llama-perplexity: each variant is rebuilt from the test
//! model with rawrxd's quantizer (its tensors hashed against the file llama.cpp measured), then
//! scored over data/eval.txt with `-c 128` (2 chunks in the default test, 4 in the full one) and
//! compared with the recorded llama-perplexity values
//! (tests/fixtures/llama_cpp/perplexity_variants_smollm2.json, README).
//!
//! Why some tolerances are wider than 0.5 %: with 8-bit activations, a rounding that flips one
//! quantum changes the next layer's inputs and flips others, so two implementations that round
//! identically but sum in a different order land a fraction of a percent apart on 252 scored
//! tokens. llama.cpp moves as far against itself when only its kernels change (`-ub 32`, also
//! recorded in the fixture). See docs/BENCHMARKS.md, "Quality against llama.cpp".
//!
//! Over a long text (100 chunks of Debian's license texts, 6,300 scored tokens; the ignored
//! `perplexity_on_long_text_within_half_a_percent_of_llama_cpp`) the ggml numerics meet issue #2's
//! 0.5 % bar (tests/fixtures/llama_cpp/perplexity_long_smollm2.json), with little margin: Q5_K_M is
//! +0.48 % off, where llama.cpp's own `-ub 32` run moves it by 0.71 %.

mod common;

use std::path::Path;

use rawrxd::engine::{perplexity, CpuEngine, Numerics, PerplexityParams};
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::model::LlamaHParams;
use rawrxd::quant::convert::{quantize_file, ConvertOptions};
use rawrxd::quant::mix::mix_types;
use rawrxd::quant::{Mix, MixModel};
use serde_json::Value;
use sha2::{Digest, Sha256};

const N_CTX: usize = 128;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama_cpp/perplexity_variants_smollm2.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// SHA-256 over every tensor's name then data, tensors in name order (as the fixture script).
fn tensor_hash(f: &GgufFile) -> String {
    let mut ts: Vec<_> = f.tensors().iter().collect();
    ts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for t in ts {
        h.update(t.name.as_bytes());
        h.update(f.tensor_data(t));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `rawrxd quantize SRC OUT <variant> --allow-requantize`, through the library.
fn make_variant(src: &GgufFile, variant: &str, out: &Path) -> GgufFile {
    let mix: Mix = variant.to_ascii_lowercase().parse().unwrap();
    let hp = LlamaHParams::from_gguf(src).unwrap();
    let types = mix_types(mix, &MixModel::from_file(src, &hp), src.tensors());
    let opts = ConvertOptions {
        allow_requantize: true,
        file_type: mix.file_type(),
    };
    quantize_file(src, out, &types, &opts, |_| {}).unwrap();
    GgufFile::open(out).unwrap()
}

/// data/eval.txt as llama-perplexity's `-f` reads it (minus one trailing newline).
fn eval_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval.txt");
    let mut text = std::fs::read_to_string(path).unwrap();
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

/// Perplexity of `f` over data/eval.txt (`-c 128`, `n_chunks` chunks) under `numerics`.
fn ppl(f: GgufFile, n_chunks: usize, numerics: Numerics) -> f64 {
    ppl_of(f, &eval_text(), n_chunks, numerics)
}

/// Perplexity of `f` over `text` (`-c 128`, `n_chunks` chunks) under `numerics`.
fn ppl_of(f: GgufFile, text: &str, n_chunks: usize, numerics: Numerics) -> f64 {
    let tok = Tokenizer::from_gguf(&f).unwrap();
    let tokens = tok.encode(text, true, false).unwrap();
    let bos = if tok.adds_bos() { tok.bos() } else { None };
    let mut eng = CpuEngine::load(f, N_CTX, None).unwrap();
    eng.set_numerics(numerics);
    let params = PerplexityParams {
        n_ctx: N_CTX,
        n_chunks: Some(n_chunks),
        bos,
    };
    perplexity(&mut eng, &tokens, &params, None, &mut |_, _| {})
        .unwrap()
        .ppl
        .value
}

/// Rebuilds each variant, checks it is the file llama.cpp scored, and asserts that rawrxd's ggml
/// numerics land within `tol` (relative) of llama-perplexity after `n_chunks` chunks (its running
/// value after chunk i is its estimate for `--chunks i`); returns (f32, ggml, llama) per variant.
fn check(variants: &[(&str, f64)], n_chunks: usize, with_f32: bool) -> Vec<(f64, f64, f64)> {
    let Some(model) = common::test_model() else {
        return Vec::new();
    };
    let fx = fixture();
    assert_eq!(fx["n_ctx"].as_u64(), Some(N_CTX as u64));
    let src = GgufFile::open(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for &(v, tol) in variants {
        let entry = &fx["variants"][v];
        let path = dir.path().join(format!("smol-{v}.gguf"));
        let f = make_variant(&src, v, &path);
        assert_eq!(
            tensor_hash(&f),
            entry["tensor_sha256"].as_str().unwrap(),
            "{v}: not the file llama-perplexity scored"
        );
        let llama = entry["default"]["chunk_ppl"][n_chunks - 1]
            .as_f64()
            .unwrap();
        let ggml = ppl(f, n_chunks, Numerics::Ggml);
        let f32 = if with_f32 {
            ppl(GgufFile::open(&path).unwrap(), n_chunks, Numerics::F32)
        } else {
            f64::NAN
        };
        eprintln!(
            "{v}: f32 {f32:.4}  ggml {ggml:.4}  llama-perplexity {llama:.4}  ({:+.2} %)",
            100.0 * (ggml - llama) / llama
        );
        assert!(
            ((ggml - llama) / llama).abs() <= tol,
            "{v}: rawrxd --numerics ggml {ggml:.4} vs llama-perplexity {llama:.4} (tolerance {:.1} %)",
            100.0 * tol
        );
        out.push((f32, ggml, llama));
    }
    out
}

#[test]
fn ggml_numerics_match_llama_perplexity_on_f16_and_q4_0() {
    check(&[("F16", 0.005), ("Q4_0", 0.005)], 2, false);
}

/// Every variant of the issue (about five minutes in a debug build on two cores).
#[test]
#[ignore = "slow: quantizes and scores eight variants"]
fn ggml_numerics_match_llama_perplexity_on_every_variant() {
    // Q5_K_M and Q2_K: 1.4 % and 1.0 % off at 4 chunks, inside llama.cpp's own spread
    // (its -ub 32 run moves Q4_K_M by 1.1 %); see the module docs.
    check(
        &[
            ("F16", 0.005),
            ("Q8_0", 0.005),
            ("Q6_K", 0.005),
            ("Q5_K_M", 0.015),
            ("Q4_K_M", 0.005),
            ("Q4_0", 0.005),
            ("Q3_K_M", 0.005),
            ("Q2_K", 0.015),
        ],
        4,
        true,
    );
}

/// `--numerics` on the command line: JSON names the numerics that ran, and the Vulkan backend is
/// refused with a message saying why.
#[test]
fn perplexity_cli_reports_numerics_and_refuses_ggml_on_vulkan() {
    let Some(model) = common::test_model() else {
        return;
    };
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval.txt");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rawrxd"))
            .arg("perplexity")
            .arg("-m")
            .arg(&model)
            .arg("-f")
            .arg(&text)
            .args(["-c", "128", "--chunks", "1", "-t", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--backend", "vulkan", "--numerics", "ggml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mode of the cpu backend"), "{err}");

    let out = run(&["--numerics", "ggml", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["backend"], "cpu");
    assert_eq!(j["numerics"], "ggml");
    // The first chunk under llama.cpp's roundings is not the f32 engine's first chunk.
    let f32 = run(&["--backend", "cpu", "--json"]);
    let f: Value = serde_json::from_slice(&f32.stdout).unwrap();
    assert_eq!(f["numerics"], "f32");
    assert_ne!(j["ppl"]["value"], f["ppl"]["value"]);
}

/// Debian's license texts, concatenated as tests/fixtures/llama_cpp/perplexity_long.py does (the
/// regular files of /usr/share/common-licenses in this order; GPL, LGPL and GFDL are symlinks).
const LICENSES: [&str; 14] = [
    "Apache-2.0",
    "Artistic",
    "BSD",
    "CC0-1.0",
    "GFDL-1.2",
    "GFDL-1.3",
    "GPL-1",
    "GPL-2",
    "GPL-3",
    "LGPL-2",
    "LGPL-2.1",
    "LGPL-3",
    "MPL-1.1",
    "MPL-2.0",
];

/// The long text as llama-perplexity's `-f` reads it, or why it cannot be rebuilt here: the
/// directory is missing or its files are not the ones the fixture was measured on.
fn long_text(expect_sha256: &str) -> Result<String, String> {
    let dir = Path::new("/usr/share/common-licenses");
    let mut bytes = Vec::new();
    for name in LICENSES {
        let p = dir.join(name);
        let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        bytes.extend_from_slice(&b);
    }
    let got: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != expect_sha256 {
        return Err(format!(
            "{}: the concatenated license texts have sha256 {got}, the fixture's text {expect_sha256}",
            dir.display()
        ));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", dir.display()))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Issue #2's bar on a long text: every variant, rebuilt with rawrxd's quantizer and checked to be
/// the file llama.cpp scored, within 0.5 % of llama-perplexity
/// (tests/fixtures/llama_cpp/perplexity_long_smollm2.json: `-c 128`, the fixture's chunk count,
/// over Debian's license texts) under `NUMERICS`. Skips, saying why, where
/// /usr/share/common-licenses is absent or differs. In release it takes about 20 minutes of CPU
/// time (26 minutes on two shared cores here):
/// `cargo test --release --test ggml_numerics -- --ignored long_text`.
#[test]
#[ignore = "slow: scores eight variants over a 52,000-token text"]
fn perplexity_on_long_text_within_half_a_percent_of_llama_cpp() {
    const NUMERICS: Numerics = Numerics::Ggml;
    let Some(model) = common::test_model() else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama_cpp/perplexity_long_smollm2.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let text = match long_text(fx["text_sha256"].as_str().unwrap()) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    assert_eq!(fx["n_ctx"].as_u64(), Some(N_CTX as u64));
    let n_chunks = fx["n_chunks"].as_u64().unwrap() as usize;
    let src = GgufFile::open(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (v, entry) in fx["variants"].as_object().unwrap() {
        let path = dir.path().join(format!("smol-{v}.gguf"));
        let f = make_variant(&src, v, &path);
        assert_eq!(
            tensor_hash(&f),
            entry["tensor_sha256"].as_str().unwrap(),
            "{v}: not the file llama-perplexity scored"
        );
        let llama = entry["chunk_ppl"][n_chunks - 1].as_f64().unwrap();
        let ours = ppl_of(f, &text, n_chunks, NUMERICS);
        let diff = (ours - llama) / llama;
        eprintln!(
            "{v}: rawrxd {ours:.4}  llama-perplexity {llama:.4}  ({:+.2} %)",
            100.0 * diff
        );
        if diff.abs() > 0.005 {
            failed.push(format!("{v}: {ours:.4} vs {llama:.4}"));
        }
    }
    assert!(failed.is_empty(), "over 0.5 %: {failed:?}");
}
