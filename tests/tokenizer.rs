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

/// Every vocab-only GGUF in llama.cpp's `models/` directory (SPM: llama-spm, phi-3, baichuan; BPE
/// with the pre-tokenizers default, gpt-2, mpt, starcoder, refact, command-r, falcon,
/// deepseek-llm/coder, llama-bpe, qwen2, qwen35) against llama.cpp's ids in
/// `llama_vocab.jsonl`. The vocab files are not in this repository: point RAWRXD_LLAMA_CPP at a
/// llama.cpp checkout and run `cargo test --release --test tokenizer -- --ignored`.
#[test]
#[ignore = "needs llama.cpp's models/ggml-vocab-*.gguf: set RAWRXD_LLAMA_CPP"]
fn llama_cpp_vocab_files_match_llama_cpp() {
    let dir = PathBuf::from(
        std::env::var_os("RAWRXD_LLAMA_CPP").expect("RAWRXD_LLAMA_CPP = a llama.cpp checkout"),
    )
    .join("models");
    // Fixture case i is line i of smollm2.jsonl (both come from gen_smollm2.py's CASES).
    let texts: Vec<String> = fixture("smollm2.jsonl")
        .into_iter()
        .map(|c| c.text)
        .collect();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer/llama_vocab.jsonl");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(path)
        .expect("read llama_vocab.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let mut loaded: std::collections::BTreeMap<String, Tokenizer> = Default::default();
    let (mut checked, mut failures) = (0, Vec::new());
    for row in &rows {
        let vocab = row["vocab"].as_str().expect("vocab");
        if !loaded.contains_key(vocab) {
            let f = GgufFile::open(dir.join(vocab)).expect("open vocab file");
            let tok = Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("{vocab}: {e}"));
            assert_eq!(
                tok.adds_bos(),
                row["add_special"].as_bool().unwrap(),
                "{vocab}: add_bos"
            );
            loaded.insert(vocab.to_owned(), tok);
        }
        let tok = &loaded[vocab];
        let text = &texts[row["case"].as_u64().expect("case") as usize];
        let want = ids(&row["ids"]);
        let want_plain = row.get("ids_plain").map_or_else(|| want.clone(), ids);
        for (add, parse, want) in [(tok.adds_bos(), true, want), (false, false, want_plain)] {
            let got = tok.encode(text, add, parse).expect("encode");
            checked += 1;
            if got != want {
                failures.push(format!(
                    "{vocab} {text:?} (add_special {add}, parse_special {parse}):\n  llama.cpp {want:?}\n  rawrxd    {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(loaded.len(), 16);
}
