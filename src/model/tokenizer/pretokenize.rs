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

use fancy_regex::Regex;

use super::unicode::{self, Category, CpFlags};
use crate::{Error, Result};

/// GPT-2's pattern (hand-written scanner in llama.cpp).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's pattern, case-insensitive contractions spelled out (hand-written scanner).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's pattern as written in tokenizer.json (same scanner).
const LLAMA3_ORIG: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: Llama 3's with single digits (hand-written scanner).
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's pattern: Qwen2's with combining marks in letter runs (hand-written scanner).
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Runs of newlines and runs of anything else (hand-written scanner).
const NEWLINES: &str = r"[^\n]+|[\n]+";

/// Byte-level pre-tokenizer settings llama.cpp attaches to a `tokenizer.ggml.pre` value.
#[derive(Debug, Clone, Copy)]
pub struct PreSpec {
    /// The expressions, applied in order.
    pub exprs: &'static [&'static str],
    /// Whole words found in the vocabulary skip BPE merging (`ignore_merges`).
    pub ignore_merges: bool,
    /// The default of `add_bos` before metadata overrides it.
    pub add_bos: bool,
    /// The pre-tokenizer clears the default BOS id (ChatGLM).
    pub no_bos: bool,
}

impl PreSpec {
    const fn new(exprs: &'static [&'static str]) -> PreSpec {
        PreSpec {
            exprs,
            ignore_merges: false,
            add_bos: false,
            no_bos: false,
        }
    }
    const fn ignore_merges(mut self) -> PreSpec {
        self.ignore_merges = true;
        self
    }
    const fn add_bos(mut self) -> PreSpec {
        self.add_bos = true;
        self
    }
    const fn no_bos(mut self) -> PreSpec {
        self.no_bos = true;
        self
    }
}

const DEFAULT_EXPRS: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
const STARCODER_EXPRS: &[&str] = &[r"\p{N}", GPT2];
const FALCON_EXPRS: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
const DEEPSEEK_LLM_EXPRS: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
    "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
    "\\s+$",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    r"\p{N}+",
];
const DEEPSEEK_CODER_EXPRS: &[&str] = &[
    "[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    r"\p{N}",
];
const DEEPSEEK3_EXPRS: &[&str] = &[
    r"\p{N}{1,3}",
    "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];
const BLOOM_EXPRS: &[&str] =
    &[" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+"];
const VIKING_EXPRS: &[&str] = &[
    " ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+",
    r"\p{N}",
];
const TEKKEN_EXPRS: &[&str] = &[
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];
const GPT4O_EXPRS: &[&str] = &[
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];
const CHAMELEON_EXPRS: &[&str] = &[
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    r"\p{N}",
    r"[\p{P}!-/:-@\[-`{-~]",
    GPT2,
];
const SEED_CODER_EXPRS: &[&str] = &[
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+",
];
const BAILINGMOE_EXPRS: &[&str] = &[
    r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
];
const UFAKZEKA_EXPRS: &[&str] =
    &[r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"];
const MINICPM5_EXPRS: &[&str] = &[
    r"\p{N}{1,3}",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];
const EXAONE_MOE_EXPRS: &[&str] = &[
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+",
];

const SPARK2_5_EXPRS: &[&str] = &[
    r#"\p{N}{1,3}"#,
    "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\u{D}\u{A}\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\u{D}\u{A}]|\\s+(?!\\S)|\\s+",
    r#"\p{N}"#,
];
const YOUTU_EXPRS: &[&str] = &[
    "[\u{AC00}-\u{D7A3}\u{3131}-\u{318E}]+|[\u{FF01}\u{2026}\u{201C}\u{201D}\u{2018}\u{2019}\u{2014}\u{FF1A}\u{FF1B}\u{FF0C}\u{3001}-\u{303F}\u{FE30}-\u{FE4F}]+|[\u{3105}-\u{312F}]+|[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
    r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
];
const JAIS2_EXPRS: &[&str] = &[
    r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"#,
];
const GRANITE_EMB_MULTI_EXPRS: &[&str] = &[
    r#"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
];

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value, or `None` if rawrxd does not
/// implement it (llama.cpp also rejects names it does not know).
///
/// An absent or empty value means `default` (llama.cpp warns that quality will suffer).
pub fn spec_for(pre: &str) -> Option<PreSpec> {
    let spec = match pre {
        "" | "default" => PreSpec::new(DEFAULT_EXPRS),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreSpec::new(&[LLAMA3]).ignore_merges().add_bos(),
        "dbrx" | "smaug-bpe" => PreSpec::new(&[LLAMA3]),
        "chatglm-bpe" => PreSpec::new(&[LLAMA3]).no_bos(),
        "glm4" | "glm5" => PreSpec::new(&[LLAMA3]).no_bos().ignore_merges(),
        "deepseek-llm" => PreSpec::new(DEEPSEEK_LLM_EXPRS),
        "deepseek-coder" => PreSpec::new(DEEPSEEK_CODER_EXPRS),
        "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => PreSpec::new(DEEPSEEK3_EXPRS),
        "falcon" => PreSpec::new(FALCON_EXPRS),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => PreSpec::new(STARCODER_EXPRS),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "exaone4" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" => {
            PreSpec::new(&[GPT2])
        }
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
        | "solar-open" | "grok-2" => PreSpec::new(&[QWEN2]),
        "qwen35" => PreSpec::new(&[QWEN35]),
        "laguna" => PreSpec::new(&[NEWLINES, QWEN2]),
        "poro-chat" | "bloom" | "gpt3-finnish" => PreSpec::new(BLOOM_EXPRS),
        "viking" => PreSpec::new(VIKING_EXPRS),
        "tekken" => PreSpec::new(TEKKEN_EXPRS).ignore_merges().add_bos(),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => PreSpec::new(GPT4O_EXPRS),
        "chameleon" => PreSpec::new(CHAMELEON_EXPRS).add_bos(),
        "seed-coder" => PreSpec::new(SEED_CODER_EXPRS),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => PreSpec::new(BAILINGMOE_EXPRS),
        "ufakzeka" => PreSpec::new(UFAKZEKA_EXPRS),
        "minicpm5" => PreSpec::new(MINICPM5_EXPRS).ignore_merges(),
        "exaone-moe" => PreSpec::new(EXAONE_MOE_EXPRS),
        "spark2_5" => PreSpec::new(SPARK2_5_EXPRS),
        "youtu" => PreSpec::new(YOUTU_EXPRS).ignore_merges(),
        "jais-2" => PreSpec::new(JAIS2_EXPRS),
        "granite-embed-multi-97m" => PreSpec::new(GRANITE_EMB_MULTI_EXPRS).ignore_merges(),
        _ => return None,
    };
    Some(spec)
}

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
                Splitter::Regex { re, collapsed } => regex_split(re, *collapsed, &cpts, &offsets)?,
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
            let collapsed = uses_categories(expr);
            let translated = translate(expr, collapsed)?;
            let re = Regex::new(&translated).map_err(|e| {
                Error::Tokenizer(format!(
                    "pre-tokenizer regex '{expr}' does not compile: {e}"
                ))
            })?;
            Splitter::Regex { re, collapsed }
        }
    })
}

/// Whether llama.cpp matches `expr` against the collapsed text (it names a category).
fn uses_categories(expr: &str) -> bool {
    CATEGORY_NAMES.iter().any(|(name, _)| expr.contains(name))
}

/// The `\p{..}` names llama.cpp understands. All letter subclasses collapse to "letter".
const CATEGORY_NAMES: [(&str, Category); 10] = [
    (r"\p{N}", Category::Number),
    (r"\p{L}", Category::Letter),
    (r"\p{P}", Category::Punctuation),
    (r"\p{M}", Category::Mark),
    (r"\p{S}", Category::Symbol),
    (r"\p{Lu}", Category::Letter),
    (r"\p{Ll}", Category::Letter),
    (r"\p{Lt}", Category::Letter),
    (r"\p{Lm}", Category::Letter),
    (r"\p{Lo}", Category::Letter),
];

/// Private-use code points standing for llama.cpp's collapsed category bytes 0xD0..=0xD5.
/// Collapsing replaces every non-ASCII code point, so the originals can never collide with them.
const PLACEHOLDER_OTHER: u32 = 0xF0D0;

fn placeholder(cat: Category) -> u32 {
    PLACEHOLDER_OTHER
        + match cat {
            Category::Number => 1,
            Category::Letter => 2,
            Category::Punctuation => 3,
            Category::Mark => 4,
            Category::Symbol => 5,
            _ => 0,
        }
}

/// The code point the emulated `std::regex` sees in place of `cp`.
fn transform(cp: u32, collapsed: bool) -> u32 {
    if cp < 0x80 {
        cp
    } else if unicode::is_whitespace(cp) {
        // std::regex's `\s` only knows ASCII whitespace; llama.cpp maps the rest to '\v'.
        0x0B
    } else if collapsed {
        placeholder(unicode::category(cp))
    } else {
        cp
    }
}

/// Splits each piece at the matches of an emulated `std::regex`, like `unicode_regex_split_stl`.
fn regex_split(re: &Regex, collapsed: bool, cpts: &[u32], offsets: &[usize]) -> Result<Vec<usize>> {
    // The transformed text and the byte offset of each code point in it (plus the end).
    let mut hay = String::with_capacity(cpts.len());
    let mut at = Vec::with_capacity(cpts.len() + 1);
    for &cp in cpts {
        at.push(hay.len());
        // transform() only returns scalar values: ASCII, U+000B, placeholders or `cp` itself.
        hay.push(char::from_u32(transform(cp, collapsed)).unwrap_or('\u{FFFD}'));
    }
    at.push(hay.len());
    let cp_at = |byte: usize| at.partition_point(|&b| b < byte);

    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0usize;
    for &len in offsets {
        let (lo, hi) = (at[start], at[start + len]);
        let mut prev = start;
        for m in re.find_iter(&hay[lo..hi]) {
            let m = m.map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex failed: {e}")))?;
            let (ms, me) = (cp_at(lo + m.start()), cp_at(lo + m.end()));
            if ms > prev {
                out.push(ms - prev);
            }
            if me > ms {
                out.push(me - ms);
            }
            prev = me;
        }
        if prev < start + len {
            out.push(start + len - prev);
        }
        start += len;
    }
    Ok(out)
}

/// Rewrites an ECMAScript expression into `fancy_regex` syntax with `std::regex` meanings:
/// `\s` `\d` `\w` are ASCII classes, `\p{X}` (collapsed mode only) matches X's placeholder and
/// X's ASCII members, and every literal is written as `\x{..}` so no character is special by
/// accident (`[` `&&` `~~` inside classes are operators in Rust regex syntax, not in ECMAScript).
fn translate(expr: &str, collapsed: bool) -> Result<String> {
    let bad = |msg: &str| Error::Tokenizer(format!("pre-tokenizer regex '{expr}': {msg}"));
    if collapsed && !expr.is_ascii() {
        // llama.cpp refuses these too.
        return Err(bad("mixes Unicode categories with non-ASCII characters"));
    }
    let cs: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            '\\' => {
                let (item, next) = parse_escape(&cs, i, collapsed).map_err(|m| bad(&m))?;
                match item {
                    ClassItem::Set(set, negated) => emit_class(&mut out, &set, negated),
                    ClassItem::Range(a, b) if a == b => emit_char(&mut out, a),
                    ClassItem::Range(..) => return Err(bad("unexpected range")),
                }
                i = next;
            }
            '[' => {
                let (set, negated, next) = parse_class(&cs, i, collapsed).map_err(|m| bad(&m))?;
                emit_class(&mut out, &set, negated);
                i = next;
            }
            '(' if cs.get(i + 1) == Some(&'?') => {
                // (?:  (?=  (?!  — copied as they are.
                let kind = cs.get(i + 2).copied().unwrap_or(')');
                if !matches!(kind, ':' | '=' | '!') {
                    return Err(bad("unsupported group kind"));
                }
                out.push('(');
                out.push('?');
                out.push(kind);
                i += 3;
            }
            '.' => {
                out.push_str(r"[^\x{A}\x{D}\x{2028}\x{2029}]");
                i += 1;
            }
            '(' | ')' | '|' | '?' | '*' | '+' | '^' | '$' => {
                out.push(c);
                i += 1;
            }
            '{' => {
                // A counted repetition: copy through the closing brace.
                let close = cs[i..]
                    .iter()
                    .position(|&x| x == '}')
                    .ok_or_else(|| bad("unclosed '{'"))?;
                out.extend(&cs[i..=i + close]);
                i += close + 1;
            }
            _ => {
                emit_char(&mut out, c as u32);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A piece of a character class: an inclusive range, or a whole set (from `\s`, `\p{..}`, ...).
enum ClassItem {
    Range(u32, u32),
    Set(Vec<(u32, u32)>, bool),
}

/// The ASCII whitespace `std::regex` knows: `\t \n \v \f \r` and space.
const ASCII_SPACE: [(u32, u32); 2] = [(0x09, 0x0D), (0x20, 0x20)];

fn category_set(cat: Category) -> Vec<(u32, u32)> {
    let mut set = vec![(placeholder(cat), placeholder(cat))];
    set.extend(
        (0u32..0x80)
            .filter(|&c| unicode::category(c) == cat)
            .map(|c| (c, c)),
    );
    set
}

/// Parses the escape at `cs[i] == '\\'`; returns the item and the index after it.
fn parse_escape(
    cs: &[char],
    i: usize,
    collapsed: bool,
) -> std::result::Result<(ClassItem, usize), String> {
    let c = *cs.get(i + 1).ok_or("trailing backslash")?;
    let lit = |cp: u32| Ok((ClassItem::Range(cp, cp), i + 2));
    match c {
        'p' => {
            let close = cs[i..]
                .iter()
                .position(|&x| x == '}')
                .ok_or("unclosed \\p{")?;
            let name: String = cs[i..=i + close].iter().collect();
            let cat = CATEGORY_NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, c)| c)
                .ok_or_else(|| format!("unsupported property {name}"))?;
            if !collapsed {
                return Err(format!("property {name} outside collapsed mode"));
            }
            Ok((ClassItem::Set(category_set(cat), false), i + close + 1))
        }
        's' => Ok((ClassItem::Set(ASCII_SPACE.to_vec(), false), i + 2)),
        'S' => Ok((ClassItem::Set(ASCII_SPACE.to_vec(), true), i + 2)),
        'd' => Ok((ClassItem::Set(vec![(0x30, 0x39)], false), i + 2)),
        'D' => Ok((ClassItem::Set(vec![(0x30, 0x39)], true), i + 2)),
        'w' | 'W' => {
            let set = vec![(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];
            Ok((ClassItem::Set(set, c == 'W'), i + 2))
        }
        'r' => lit(0x0D),
        'n' => lit(0x0A),
        't' => lit(0x09),
        'f' => lit(0x0C),
        'v' => lit(0x0B),
        '0' => lit(0),
        'x' | 'u' => {
            let n = if c == 'x' { 2 } else { 4 };
            let hex: String = cs
                .get(i + 2..i + 2 + n)
                .ok_or("short hex escape")?
                .iter()
                .collect();
            let cp = u32::from_str_radix(&hex, 16).map_err(|_| "bad hex escape")?;
            Ok((ClassItem::Range(cp, cp), i + 2 + n))
        }
        'b' | 'B' => Err("word boundaries are not supported".into()),
        c if c.is_ascii_alphanumeric() => Err(format!("unsupported escape \\{c}")),
        c => lit(c as u32),
    }
}

/// A parsed class: its ranges, whether negated, and the index after it.
type ParsedClass = (Vec<(u32, u32)>, bool, usize);

/// Parses the class at `cs[i] == '['`.
fn parse_class(cs: &[char], i: usize, collapsed: bool) -> std::result::Result<ParsedClass, String> {
    let mut j = i + 1;
    let negated = cs.get(j) == Some(&'^');
    if negated {
        j += 1;
    }
    let mut set = Vec::new();
    loop {
        let c = *cs.get(j).ok_or("unclosed '['")?;
        if c == ']' {
            break;
        }
        // One atom: a literal or an escape.
        let (item, next) = if c == '\\' {
            parse_escape(cs, j, collapsed)?
        } else {
            (ClassItem::Range(c as u32, c as u32), j + 1)
        };
        j = next;
        match item {
            ClassItem::Set(s, false) => set.extend(s),
            ClassItem::Set(_, true) => return Err("negated escapes inside a class".into()),
            ClassItem::Range(a, _) => {
                // `a-b` unless the '-' is last in the class.
                if cs.get(j) == Some(&'-') && cs.get(j + 1).is_some_and(|&x| x != ']') {
                    let (hi, next) = if cs[j + 1] == '\\' {
                        parse_escape(cs, j + 1, collapsed)?
                    } else {
                        (ClassItem::Range(cs[j + 1] as u32, cs[j + 1] as u32), j + 2)
                    };
                    let ClassItem::Range(b, _) = hi else {
                        return Err("range ends in a class escape".into());
                    };
                    if b < a {
                        return Err("reversed range".into());
                    }
                    set.push((a, b));
                    j = next;
                } else {
                    set.push((a, a));
                }
            }
        }
    }
    Ok((set, negated, j + 1))
}

fn emit_char(out: &mut String, cp: u32) {
    use std::fmt::Write;
    let _ = write!(out, "\\x{{{cp:X}}}");
}

fn emit_class(out: &mut String, set: &[(u32, u32)], negated: bool) {
    out.push('[');
    if negated {
        out.push('^');
    }
    for &(a, b) in set {
        emit_char(out, a);
        if b != a {
            out.push('-');
            emit_char(out, b);
        }
    }
    out.push(']');
}

/// The hand-written scanners, ported from llama.cpp's `unicode_regex_split_custom_*`.
struct Scan<'a> {
    cpts: &'a [u32],
    flags: &'a [CpFlags],
}

const OUT_OF_RANGE: u32 = u32::MAX;

impl Scan<'_> {
    /// Runs `f` over each piece `[start, end)`; `f` pushes the new piece lengths.
    fn each_piece(
        &self,
        offsets: &[usize],
        f: impl Fn(&Self, usize, usize, &mut Vec<usize>),
    ) -> Vec<usize> {
        let mut out = Vec::with_capacity(offsets.len());
        let mut start = 0;
        for &len in offsets {
            f(self, start, start + len, &mut out);
            start += len;
        }
        out
    }

    fn cpt(&self, lo: usize, hi: usize, pos: usize) -> u32 {
        if lo <= pos && pos < hi {
            self.cpts[pos]
        } else {
            OUT_OF_RANGE
        }
    }

    fn flags(&self, lo: usize, hi: usize, pos: usize) -> CpFlags {
        if lo <= pos && pos < hi {
            self.flags[pos]
        } else {
            CpFlags::NONE
        }
    }

    /// Matches `'s 't 'm 'd 're 've 'll` at `pos` (case-insensitively unless `exact`); returns
    /// the length of the match.
    fn contraction(&self, lo: usize, hi: usize, pos: usize, exact: bool) -> Option<usize> {
        if self.cpt(lo, hi, pos) != '\'' as u32 || pos + 1 >= hi {
            return None;
        }
        let low = |c: u32| if exact { c } else { unicode::to_lower_ascii(c) };
        let is = |c: u32, ch: char| c == ch as u32;
        let n1 = low(self.cpt(lo, hi, pos + 1));
        if is(n1, 's') || is(n1, 't') || is(n1, 'm') || is(n1, 'd') {
            return Some(2);
        }
        if pos + 2 < hi {
            let n2 = low(self.cpt(lo, hi, pos + 2));
            if (is(n1, 'r') && is(n2, 'e'))
                || (is(n1, 'v') && is(n2, 'e'))
                || (is(n1, 'l') && is(n2, 'l'))
            {
                return Some(3);
            }
        }
        None
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    fn gpt2(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
        let mut pieces = Pieces::new(lo, out);
        let mut pos = lo;
        while pos < hi {
            let cpt = self.cpt(lo, hi, pos);
            let flags = self.flags(lo, hi, pos);
            if let Some(n) = self.contraction(lo, hi, pos, true) {
                pos += n;
                pieces.cut(pos);
                continue;
            }
            let space = cpt == ' ' as u32;
            let mut f2 = if space {
                self.flags(lo, hi, pos + 1)
            } else {
                flags
            };
            // <space>?\p{L}+, <space>?\p{N}+, <space>?[^\s\p{L}\p{N}]+
            let runs: [fn(CpFlags) -> bool; 3] = [CpFlags::is_letter, CpFlags::is_number, |f| {
                !f.is_whitespace() && !f.is_letter() && !f.is_number() && !f.is_none()
            }];
            if let Some(run) = runs.iter().find(|run| run(f2)) {
                pos += space as usize;
                while run(f2) {
                    pos += 1;
                    f2 = self.flags(lo, hi, pos);
                }
                pieces.cut(pos);
                continue;
            }
            let mut n_ws = 0;
            while self.flags(lo, hi, pos + n_ws).is_whitespace() {
                n_ws += 1;
            }
            if n_ws > 1 && self.cpt(lo, hi, pos + n_ws) != OUT_OF_RANGE {
                // \s+(?!\S): leave the last space to the next word.
                pos += n_ws - 1;
            } else if n_ws > 0 {
                pos += n_ws;
            } else {
                pos += 1;
            }
            pieces.cut(pos);
        }
    }

    /// Llama 3 (`max_digits` 3) and Qwen2 (`max_digits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    fn llama3(&self, lo: usize, hi: usize, out: &mut Vec<usize>, max_digits: usize) {
        self.llama3_like(lo, hi, out, max_digits, false)
    }

    /// Qwen3.5: Qwen2 with `[\p{L}\p{M}]+` letter runs and marks excluded from the symbol run.
    fn qwen35(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
        self.llama3_like(lo, hi, out, 1, true)
    }

    fn llama3_like(
        &self,
        lo: usize,
        hi: usize,
        out: &mut Vec<usize>,
        max_digits: usize,
        marks: bool,
    ) {
        let is_cr_lf = |c: u32| c == '\r' as u32 || c == '\n' as u32;
        let wordish = |f: CpFlags| f.is_letter() || (marks && f.is_mark());
        let mut pieces = Pieces::new(lo, out);
        let mut pos = lo;
        while pos < hi {
            let cpt = self.cpt(lo, hi, pos);
            let flags = self.flags(lo, hi, pos);
            if let Some(n) = self.contraction(lo, hi, pos, false) {
                pos += n;
                pieces.cut(pos);
                continue;
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(is_cr_lf(cpt) || flags.is_number())
                && (wordish(flags) || wordish(self.flags(lo, hi, pos + 1)))
            {
                pos += 1;
                while wordish(self.flags(lo, hi, pos)) {
                    pos += 1;
                }
                pieces.cut(pos);
                continue;
            }
            // \p{N}{1,max}
            if flags.is_number() {
                let mut ini = pos;
                while self.flags(lo, hi, pos).is_number() {
                    pos += 1;
                    if pos - ini >= max_digits {
                        pieces.cut(pos);
                        ini = pos;
                    }
                }
                pieces.cut(pos);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp tests the first code point's own flags
            // for "in range", which only matters for a lone trailing space: \s+ takes it alike.)
            let symbolish = |f: CpFlags| !(f.is_whitespace() || wordish(f) || f.is_number());
            let mut f2 = if cpt == ' ' as u32 {
                self.flags(lo, hi, pos + 1)
            } else {
                flags
            };
            if symbolish(f2) && !flags.is_none() {
                pos += (cpt == ' ' as u32) as usize;
                while symbolish(f2) && !f2.is_none() {
                    pos += 1;
                    f2 = self.flags(lo, hi, pos);
                }
                while is_cr_lf(self.cpt(lo, hi, pos)) {
                    pos += 1;
                }
                pieces.cut(pos);
                continue;
            }
            let mut n_ws = 0;
            let mut last_cr_lf_end = 0;
            while self.flags(lo, hi, pos + n_ws).is_whitespace() {
                if is_cr_lf(self.cpt(lo, hi, pos + n_ws)) {
                    last_cr_lf_end = pos + n_ws + 1;
                }
                n_ws += 1;
            }
            if last_cr_lf_end > 0 {
                // \s*[\r\n]+
                pos = last_cr_lf_end;
            } else if n_ws > 1 && self.cpt(lo, hi, pos + n_ws) != OUT_OF_RANGE {
                // \s+(?!\S)
                pos += n_ws - 1;
            } else if n_ws > 0 {
                pos += n_ws;
            } else {
                pos += 1;
            }
            pieces.cut(pos);
        }
    }

    /// `[^\n]+|[\n]+`
    fn newlines(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
        let mut pos = lo;
        while pos < hi {
            let nl = self.cpts[pos] == '\n' as u32;
            let start = pos;
            while pos < hi && (self.cpts[pos] == '\n' as u32) == nl {
                pos += 1;
            }
            out.push(pos - start);
        }
    }
}

/// Collects piece lengths from successive cut positions, skipping empty pieces.
struct Pieces<'o> {
    prev: usize,
    out: &'o mut Vec<usize>,
}

impl<'o> Pieces<'o> {
    fn new(start: usize, out: &'o mut Vec<usize>) -> Self {
        Pieces { prev: start, out }
    }
    fn cut(&mut self, end: usize) {
        if end > self.prev {
            self.out.push(end - self.prev);
        }
        self.prev = end;
    }
}

#[cfg(test)]
mod tests {
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
