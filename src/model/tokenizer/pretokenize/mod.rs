//! Pre-tokenization: splitting text into words before byte-level BPE, as llama.cpp does it.
//!
//! llama.cpp does not run the tokenizer.json regex with a Unicode regex engine. For each
//! `tokenizer.ggml.pre` it keeps a list of expressions and applies them in turn, each one splitting
//! every piece left by the previous one (text between matches becomes a piece of its own). The four
//! most used expressions (GPT-2, Llama 3, Qwen2, Qwen3.5) run as hand-written scanners whose
//! behaviour differs from the regex in corner cases; all others run through `std::regex` (ECMAScript)
//! on a "collapsed" copy of the text in which every non-ASCII code point is replaced by one byte
//! standing for its category, `\p{..}` being rewritten to match those bytes. This module reproduces
//! both paths: the scanners are ported, and the `std::regex` path is emulated with `fancy_regex` on
//! the same collapsed text (placeholder code points instead of bytes, `\s` pinned to ASCII).
//!
//! Invariants: positions and piece lengths are counted in code points until the end, where pieces
//! become byte slices of the input; pieces partition the input (concatenated, they give it back),
//! and no piece is empty.

mod scan;
mod specs;
mod std_regex;

use fancy_regex::Regex;

use super::unicode::CpFlags;
use crate::{Error, Result};
use scan::Scan;
pub use specs::{spec_for, PreSpec};
use specs::{GPT2, LLAMA3, LLAMA3_ORIG, NEWLINES, QWEN2, QWEN35};

/// One splitting step.
#[derive(Debug)]
enum Splitter {
    Gpt2,
    Llama3,
    Qwen2,
    Qwen35,
    Newlines,
    /// Emulated `std::regex`; `collapsed` when the text is matched in its collapsed form.
    Regex {
        re: Regex,
        collapsed: bool,
    },
}

/// A compiled pre-tokenizer: a sequence of splitting steps.
#[derive(Debug)]
pub struct PreTokenizer {
    steps: Vec<Splitter>,
}

impl PreTokenizer {
    /// Compiles `exprs` the way llama.cpp's `unicode_regex_split` interprets them.
    pub fn new(exprs: &[&str]) -> Result<PreTokenizer> {
        let steps = exprs
            .iter()
            .map(|&e| compile(e))
            .collect::<Result<Vec<_>>>()?;
        Ok(PreTokenizer { steps })
    }

    /// Splits `text` into words; they concatenate back to `text` and none is empty.
    pub fn split<'t>(&self, text: &'t str) -> Result<Vec<&'t str>> {
        let cpts: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let flags: Vec<CpFlags> = cpts.iter().map(|&c| CpFlags::of(c)).collect();
        let mut offsets = if cpts.is_empty() {
            Vec::new()
        } else {
            vec![cpts.len()]
        };
        for step in &self.steps {
            let scan = Scan {
                cpts: &cpts,
                flags: &flags,
            };
            offsets = match step {
                Splitter::Gpt2 => scan.each_piece(&offsets, Scan::gpt2),
                Splitter::Llama3 => scan.each_piece(&offsets, |s, a, b, o| s.llama3(a, b, o, 3)),
                Splitter::Qwen2 => scan.each_piece(&offsets, |s, a, b, o| s.llama3(a, b, o, 1)),
                Splitter::Qwen35 => scan.each_piece(&offsets, Scan::qwen35),
                Splitter::Newlines => scan.each_piece(&offsets, Scan::newlines),
                Splitter::Regex { re, collapsed } => {
                    std_regex::regex_split(re, *collapsed, &cpts, &offsets)?
                }
            };
        }
        // Code point counts back to byte slices.
        let mut words = Vec::with_capacity(offsets.len());
        let mut chars = text.char_indices().map(|(i, _)| i).chain([text.len()]);
        let mut start = 0usize;
        chars.next();
        for len in offsets {
            let end = chars.nth(len - 1).unwrap_or(text.len());
            words.push(&text[start..end]);
            start = end;
        }
        Ok(words)
    }
}

fn compile(expr: &str) -> Result<Splitter> {
    // Like llama.cpp, pick a hand-written scanner by the exact text of the expression.
    Ok(match expr {
        GPT2 => Splitter::Gpt2,
        LLAMA3 | LLAMA3_ORIG => Splitter::Llama3,
        QWEN2 => Splitter::Qwen2,
        QWEN35 => Splitter::Qwen35,
        NEWLINES => Splitter::Newlines,
        _ => {
            let collapsed = std_regex::uses_categories(expr);
            let translated = std_regex::translate(expr, collapsed)?;
            let re = Regex::new(&translated).map_err(|e| {
                Error::Tokenizer(format!(
                    "pre-tokenizer regex '{expr}' does not compile: {e}"
                ))
            })?;
            Splitter::Regex { re, collapsed }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::std_regex::translate;
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        let spec = spec_for(pre).expect("known pre-tokenizer");
        let p = PreTokenizer::new(spec.exprs).expect("compiles");
        p.split(text)
            .expect("splits")
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn every_known_pre_tokenizer_compiles() {
        for pre in [
            "default",
            "llama3",
            "dbrx",
            "chatglm-bpe",
            "deepseek-llm",
            "deepseek-coder",
            "deepseek-v3",
            "falcon",
            "smollm",
            "gpt-2",
            "qwen2",
            "qwen35",
            "laguna",
            "bloom",
            "viking",
            "tekken",
            "gpt-4o",
            "chameleon",
            "seed-coder",
            "bailingmoe",
            "ufakzeka",
            "minicpm5",
            "exaone-moe",
        ] {
            let spec = spec_for(pre).unwrap();
            PreTokenizer::new(spec.exprs).unwrap_or_else(|e| panic!("{pre}: {e}"));
        }
        assert!(spec_for("no-such-pre").is_none());
    }

    #[test]
    fn translation_pins_std_regex_meanings() {
        // \s is ASCII-only, and the literal is hex-escaped.
        assert_eq!(
            translate(r"\s+a", false).unwrap(),
            r"[\x{9}-\x{D}\x{20}]+\x{61}"
        );
        // \p{N} becomes the number placeholder plus the ASCII digits.
        assert_eq!(
            translate(r"\p{N}", true).unwrap(),
            r"[\x{F0D1}\x{30}\x{31}\x{32}\x{33}\x{34}\x{35}\x{36}\x{37}\x{38}\x{39}]"
        );
        assert!(translate("\\p{L}\u{4E00}", true).is_err());
        assert!(translate(r"\p{Han}", true).is_err());
    }

    #[test]
    fn pieces_partition_the_text() {
        let text = "Hello,  world!\n\n 123456 ça va? 😀👍🏽 \t x";
        for pre in [
            "default",
            "smollm",
            "llama3",
            "qwen2",
            "deepseek-llm",
            "tekken",
        ] {
            assert_eq!(split(pre, text).concat(), text, "{pre}");
            assert!(split(pre, text).iter().all(|w| !w.is_empty()), "{pre}");
        }
        assert!(split("llama3", "").is_empty());
    }

    #[test]
    fn gpt2_scanner_on_spaces_and_contractions() {
        // Hand-derived from the scanner: a run of spaces leaves its last one to the next word.
        assert_eq!(split("gpt-2", "I'm   here"), ["I", "'m", "  ", " here"]);
        // GPT-2's contractions are case-sensitive; "'S" is a symbol run followed by a letter run.
        assert_eq!(split("gpt-2", "IT'S"), ["IT", "'", "S"]);
        // Trailing spaces at the end of the text stay together.
        assert_eq!(split("gpt-2", "a  "), ["a", "  "]);
    }

    /// tests/fixtures/tokenizer/pretokenize.jsonl: llama.cpp's own name table and
    /// `unicode_regex_split` output (see the README there).
    fn fixture() -> Vec<serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer/pretokenize.jsonl"
        );
        let text = std::fs::read_to_string(path).expect("read pretokenize.jsonl");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }

    /// Names llama.cpp knows and rawrxd does not implement (custom scanners or other models).
    const UNSUPPORTED: &[&str] = &[
        // Hand-written scanners in llama.cpp that rawrxd does not port.
        "tiny_aya",
        "cohere2moe",
        "superbpe",
        "kimi-k2",
        "afmoe",
        // Not byte-level BPE ("gemma4"/"sarvam-moe" are SPM-style BPE; "whitespace" is its own model).
        "gemma4",
        "granite-embed-multi-311m",
        "sarvam-moe",
        "whitespace",
    ];

    #[test]
    fn names_and_flags_match_llama_cpp() {
        let rows = fixture();
        let mut unsupported = Vec::new();
        let mut n = 0;
        for row in rows.iter().filter(|r| r.get("split_as").is_some()) {
            let name = row["pre"].as_str().unwrap();
            let Some(spec) = spec_for(name) else {
                unsupported.push(name);
                continue;
            };
            n += 1;
            let flag = |k: &str| row[k].as_bool().unwrap();
            assert_eq!(
                spec.ignore_merges,
                flag("ignore_merges"),
                "{name}: ignore_merges"
            );
            assert_eq!(spec.add_bos, flag("add_bos"), "{name}: add_bos");
            assert_eq!(spec.no_bos, flag("no_bos"), "{name}: no_bos");
        }
        unsupported.sort();
        let mut want = UNSUPPORTED.to_vec();
        want.sort();
        assert_eq!(unsupported, want);
        assert!(n >= 80, "only {n} names checked");
    }

    #[test]
    fn splits_match_llama_cpp_for_every_supported_name() {
        let rows = fixture();
        let mut by_rep: std::collections::HashMap<&str, Vec<(&str, Vec<&str>)>> =
            Default::default();
        for r in rows.iter().filter(|r| r.get("pieces").is_some()) {
            let pieces = r["pieces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            by_rep
                .entry(r["pre"].as_str().unwrap())
                .or_default()
                .push((r["text"].as_str().unwrap(), pieces));
        }
        let mut failures = Vec::new();
        let mut checked = 0;
        for row in rows.iter().filter(|r| r.get("split_as").is_some()) {
            let name = row["pre"].as_str().unwrap();
            let (Some(spec), Some(rep)) = (spec_for(name), row["split_as"].as_str()) else {
                continue;
            };
            let pre = PreTokenizer::new(spec.exprs).unwrap();
            for (text, want) in &by_rep[rep] {
                let got = pre.split(text).unwrap();
                checked += 1;
                if &got != want {
                    failures.push(format!(
                        "{name} {text:?}:\n  llama.cpp {want:?}\n  rawrxd    {got:?}"
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} splits differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(checked >= 1800, "only {checked} splits checked");
    }

    #[test]
    fn smollm_isolates_every_digit() {
        assert_eq!(
            split("smollm", "x 2024!"),
            ["x", " ", "2", "0", "2", "4", "!"]
        );
    }
}
