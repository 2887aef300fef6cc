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

mod hand_made {
    //! Tokenizers built from hand-written vocabularies, with expectations worked out by hand from
    //! llama.cpp's algorithms (src/llama-vocab.cpp: `llm_tokenizer_spm_session`,
    //! `llm_tokenizer_bpe_session`, `tokenizer_st_partition`, `impl::tokenize`).

    use rawrxd::model::tokenizer::{token_type, SpecialIds, Tokenizer, Vocab};

    /// `<unk> <s> </s>`, the 256 byte tokens (ids 3..=258), then normal pieces with scores.
    fn spm_vocab(pieces: &[(&str, f32)]) -> Vocab {
        let mut tokens: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
        let mut types = vec![
            token_type::UNKNOWN,
            token_type::CONTROL,
            token_type::CONTROL,
        ];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>").into_bytes());
            types.push(token_type::BYTE);
            scores.push(0.0);
        }
        for (p, s) in pieces {
            tokens.push(p.as_bytes().to_vec());
            types.push(token_type::NORMAL);
            scores.push(*s);
        }
        Vocab {
            model: "llama".into(),
            tokens,
            scores: Some(scores),
            token_types: Some(types),
            ..Vocab::default()
        }
    }

    const PIECES: [(&str, f32); 11] = [
        ("▁", -1.0),      // 259
        ("h", -2.0),      // 260
        ("e", -2.0),      // 261
        ("l", -2.0),      // 262
        ("o", -2.0),      // 263
        ("▁h", -5.0),     // 264
        ("he", -3.0),     // 265
        ("ll", -4.0),     // 266
        ("llo", -6.0),    // 267
        ("hello", -7.0),  // 268
        ("▁hello", -8.0), // 269
    ];
    const BYTE: u32 = 3; // id of <0x00>

    #[test]
    fn spm_merges_by_score_with_space_prefix_and_byte_fallback() {
        let tok = Tokenizer::from_vocab(spm_vocab(&PIECES)).unwrap();
        // llama.cpp's SPM defaults: BOS 1, EOS 2, add BOS, no EOS, add a space prefix.
        assert_eq!(
            (tok.bos(), tok.eos(), tok.adds_bos(), tok.adds_eos()),
            (Some(1), Some(2), true, false)
        );
        // "▁hello": he (-3), ll (-4), [▁h (-5) is stale by then], llo (-6), hello (-7), ▁hello (-8).
        assert_eq!(tok.encode("hello", false, true).unwrap(), [269]);
        assert_eq!(tok.encode("hello", true, true).unwrap(), [1, 269]);
        assert_eq!(tok.encode("", true, true).unwrap(), [1]);
        assert!(tok.encode("", false, true).unwrap().is_empty());
        // After a special token the next text gets the space prefix again: "▁hi▁é" is ▁h, then
        // 'i' and 'é' (C3 A9) as bytes around a lone ▁.
        let i = BYTE + u32::from(b'i');
        assert_eq!(
            tok.encode("hello<s>hi é", false, true).unwrap(),
            [269, 1, 264, i, 259, BYTE + 0xC3, BYTE + 0xA9]
        );
        // Without special parsing "<s>" is text: its characters fall back to bytes.
        assert_eq!(
            tok.encode("hello<s>hi é", false, false).unwrap(),
            [
                269,
                BYTE + 0x3C,
                BYTE + 0x73,
                BYTE + 0x3E,
                260,
                i,
                259,
                BYTE + 0xC3,
                BYTE + 0xA9
            ]
        );
        // Pieces: ▁ reads as a space, byte tokens as their byte, controls as their text.
        assert_eq!(tok.token_bytes(269), b" hello");
        assert_eq!(tok.token_bytes(BYTE + 0xC3), [0xC3]);
        assert_eq!(
            tok.decode(&[1, 269, 264, i, 259, BYTE + 0xC3, BYTE + 0xA9]),
            "<s> hello hi é"
        );
        assert!(tok.is_eog(2) && !tok.is_eog(1));
    }

    #[test]
    fn spm_metadata_overrides_the_defaults() {
        let mut v = spm_vocab(&PIECES);
        v.add_space_prefix = Some(false);
        v.add_eos = Some(true);
        v.special = SpecialIds {
            bos: Some(2),
            eos: Some(1),
            ..SpecialIds::default()
        };
        let tok = Tokenizer::from_vocab(v).unwrap();
        // No prefix: "hello" -> he, ll, llo, hello.
        assert_eq!(tok.encode("hello", true, true).unwrap(), [2, 268, 1]);
        // An out-of-range metadata id keeps the default.
        let mut v = spm_vocab(&PIECES);
        v.special.bos = Some(100_000);
        assert_eq!(Tokenizer::from_vocab(v).unwrap().bos(), Some(1));
    }

    /// A byte-level BPE vocabulary: the 256 byte symbols (GPT-2 code points), then `extra`.
    fn bpe_vocab(pre: &str, extra: &[(&str, i32)], merges: &[&str]) -> Vocab {
        let mut tokens = Vec::new();
        let mut types = Vec::new();
        for b in 0..=255u8 {
            let cp = match b {
                0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => u32::from(b),
                0..=0x20 => 0x100 + u32::from(b),
                0x7F..=0xA0 => 0x100 + 33 + u32::from(b - 0x7F),
                _ => 0x100 + 67,
            };
            tokens.push(char::from_u32(cp).unwrap().to_string().into_bytes());
            types.push(token_type::NORMAL);
        }
        for (t, ty) in extra {
            tokens.push(t.as_bytes().to_vec());
            types.push(*ty);
        }
        Vocab {
            model: "gpt2".into(),
            pre: Some(pre.into()),
            tokens,
            token_types: Some(types),
            merges: merges.iter().map(|m| m.as_bytes().to_vec()).collect(),
            ..Vocab::default()
        }
    }

    #[test]
    fn bpe_llama3_defaults_ignore_merges_and_user_defined_tokens() {
        let extra = [
            ("<|begin_of_text|>", token_type::CONTROL), // 256
            ("<|eot_id|>", token_type::CONTROL),        // 257
            ("Ġh", token_type::NORMAL),                 // 258
            ("Ġhi", token_type::NORMAL),                // 259
            ("<tool>", token_type::USER_DEFINED),       // 260
            ("hi", token_type::NORMAL),                 // 261
        ];
        let mut v = bpe_vocab("llama-bpe", &extra, &["Ġ h", "Ġh i"]);
        v.special.bos = Some(256);
        let tok = Tokenizer::from_vocab(v).unwrap();
        // llama3 pre-tokenizers add BOS by default.
        assert!(tok.adds_bos());
        // " hi" is one word: merged by rank into Ġhi. "hi" has no merge, but ignore_merges takes
        // the whole-word token.
        assert_eq!(tok.encode(" hi", true, true).unwrap(), [256, 259]);
        assert_eq!(tok.encode("hi", false, true).unwrap(), [261]);
        // User-defined tokens are cut out even without special parsing; control ones are not.
        let lt = u32::from(b'<');
        let plain = tok.encode("<tool><|eot_id|>", false, false).unwrap();
        assert_eq!(plain[0], 260);
        assert_eq!(plain[1], lt);
        assert_eq!(
            tok.encode("<tool><|eot_id|>", false, true).unwrap(),
            [260, 257]
        );
        // <|eot_id|> ends generation (found by its text).
        assert!(tok.is_eog(257));
        assert_eq!(tok.decode(&[256, 259]), "<|begin_of_text|> hi");
    }

    #[test]
    fn unsupported_vocabularies_are_errors() {
        let mut v = bpe_vocab("no-such-pre", &[], &["a b"]);
        assert!(Tokenizer::from_vocab(v.clone()).is_err());
        v.pre = Some("gpt-2".into());
        v.model = "bert".into();
        assert!(Tokenizer::from_vocab(v.clone()).is_err());
        v.model = "gpt2".into();
        v.merges.clear();
        assert!(Tokenizer::from_vocab(v).is_err());
    }
}
