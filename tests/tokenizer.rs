//! The tokenizer against llama.cpp on the same GGUF file.
//!
//! `tests/fixtures/tokenizer/smollm2.jsonl` holds llama.cpp's `llama-tokenize` output for varied
//! texts on the test model (see the README there); every line must match exactly.

use std::path::PathBuf;

use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::{ModelKind, Tokenizer};

/// The test model, or `None` when it is missing and RAWRXD_ALLOW_MISSING_MODEL=1.
fn test_model() -> Option<PathBuf> {
    let path = std::env::var_os("RAWRXD_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("RAWRXD_ALLOW_MISSING_MODEL").as_deref() == Ok("1") {
        eprintln!("skipping: test model {} is missing", path.display());
        return None;
    }
    panic!(
        "test model {} is missing (set RAWRXD_TEST_MODEL, or RAWRXD_ALLOW_MISSING_MODEL=1 to skip)",
        path.display()
    );
}

fn smollm2() -> Option<Tokenizer> {
    let path = test_model()?;
    let f = GgufFile::open(&path).expect("open test model");
    Some(Tokenizer::from_gguf(&f).expect("build tokenizer"))
}

struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
    ids: Vec<u32>,
}

fn fixture(name: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read fixture");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
            Case {
                text: v["text"].as_str().expect("text").to_owned(),
                add_special: v["add_special"].as_bool().expect("add_special"),
                parse_special: v["parse_special"].as_bool().expect("parse_special"),
                ids: v["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|x| x.as_u64().expect("id") as u32)
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn smollm2_matches_llama_tokenize_on_every_fixture_line() {
    let Some(tok) = smollm2() else { return };
    let cases = fixture("smollm2.jsonl");
    assert!(
        cases.len() >= 70,
        "fixture too short: {} lines",
        cases.len()
    );
    let mut failures = Vec::new();
    for c in &cases {
        let got = tok
            .encode(&c.text, c.add_special, c.parse_special)
            .expect("encode");
        if got != c.ids {
            failures.push(format!(
                "text {:?} (parse_special {}):\n  llama.cpp {:?}\n  rawrxd    {:?}",
                c.text, c.parse_special, c.ids, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} lines differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_metadata_as_llama_cpp_reads_it() {
    let Some(tok) = smollm2() else { return };
    assert_eq!(tok.kind(), ModelKind::Bpe);
    assert_eq!(tok.n_vocab(), 49152);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    // tokenizer.ggml.add_bos_token = false: add_special adds nothing for this model.
    assert!(!tok.adds_bos() && !tok.adds_eos());
    assert_eq!(
        tok.encode("Hello", true, true).unwrap(),
        tok.encode("Hello", false, true).unwrap()
    );
    // llama.cpp's EOG set for this file: <|endoftext|>, <|im_end|>, and <reponame> (a FIM repo
    // token found by text).
    let eog: Vec<u32> = (0..tok.n_vocab() as u32)
        .filter(|&id| tok.is_eog(id))
        .collect();
    assert_eq!(eog, [0, 2, 4]);
}

#[test]
fn smollm2_decodes_back_to_the_text() {
    let Some(tok) = smollm2() else { return };
    for c in fixture("smollm2.jsonl") {
        // Byte-level BPE is lossless on text (specials decode to their own text).
        assert_eq!(tok.decode(&c.ids), c.text);
    }
    assert_eq!(tok.token_bytes(216), b" ");
    assert_eq!(tok.token_bytes(1), b"<|im_start|>");
    assert!(tok.token_bytes(u32::MAX).is_empty());
}
