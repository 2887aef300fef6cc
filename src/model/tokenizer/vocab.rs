//! The tokenizer's input (`Vocab`, the `tokenizer.ggml.*` metadata as plain data) and the rules
//! llama.cpp applies when loading it (src/llama-vocab.cpp, `llama_vocab::impl::load`): default
//! special ids per model type, per-pre-tokenizer overrides, attribute fix-ups by token text, and
//! the end-of-generation set.
//!
//! Invariants of [`Loaded`]: every id it holds is below `tokens.len()`; `attrs` has one entry per
//! token; `index` maps each token's bytes to its id (token texts are unique, as llama.cpp demands).

use std::collections::{BTreeSet, HashMap};

use super::pretokenize::{self, PreSpec};
use crate::{Error, Result};

/// Which tokenization algorithm a vocabulary uses (`tokenizer.ggml.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// `"llama"`: SentencePiece, score-driven merging with byte fallback.
    Spm,
    /// `"gpt2"`: byte-level BPE with a regex pre-tokenizer and ranked merges.
    Bpe,
}

/// Special token ids as given by metadata (`tokenizer.ggml.*_token_id`); `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct SpecialIds {
    /// `bos_token_id`.
    pub bos: Option<u32>,
    /// `eos_token_id`.
    pub eos: Option<u32>,
    /// `eot_token_id`.
    pub eot: Option<u32>,
    /// `eom_token_id`.
    pub eom: Option<u32>,
    /// `unknown_token_id`.
    pub unk: Option<u32>,
    /// `seperator_token_id` (sic).
    pub sep: Option<u32>,
    /// `padding_token_id`.
    pub pad: Option<u32>,
    /// `mask_token_id`.
    pub mask: Option<u32>,
    /// `fim_pre_token_id` (or the deprecated `prefix_token_id`).
    pub fim_pre: Option<u32>,
    /// `fim_suf_token_id` (or the deprecated `suffix_token_id`).
    pub fim_suf: Option<u32>,
    /// `fim_mid_token_id` (or the deprecated `middle_token_id`).
    pub fim_mid: Option<u32>,
    /// `fim_pad_token_id`.
    pub fim_pad: Option<u32>,
    /// `fim_rep_token_id`.
    pub fim_rep: Option<u32>,
    /// `fim_sep_token_id`.
    pub fim_sep: Option<u32>,
}

/// A vocabulary as stored in GGUF metadata, before llama.cpp's loading rules are applied.
///
/// Build one by hand (tests, synthetic models) or read it with `Tokenizer::from_gguf`.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: `"gpt2"` or `"llama"`.
    pub model: String,
    /// `tokenizer.ggml.pre` (BPE only); absent means `default`.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, as raw bytes.
    pub tokens: Vec<Vec<u8>>,
    /// `tokenizer.ggml.scores` (SPM merge priorities); absent means all 0.
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type` (see [`token_type`]); absent means all normal.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges` (BPE only): `"left right"`, highest priority first.
    pub merges: Vec<Vec<u8>>,
    /// Special ids from metadata.
    pub special: SpecialIds,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `general.name`: llama.cpp adjusts a few token attributes by model name (Phi-3).
    pub model_name: Option<String>,
    /// `general.architecture`: likewise for some embedding models.
    pub architecture: Option<String>,
}

/// Values of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
pub mod token_type {
    /// Not specified.
    pub const UNDEFINED: i32 = 0;
    /// An ordinary piece of text.
    pub const NORMAL: i32 = 1;
    /// The unknown-token placeholder.
    pub const UNKNOWN: i32 = 2;
    /// A control token (`<s>`, `<|im_start|>`): only produced from text when parsing specials.
    pub const CONTROL: i32 = 3;
    /// A user-defined token: always matched whole in text.
    pub const USER_DEFINED: i32 = 4;
    /// Reserved, never produced.
    pub const UNUSED: i32 = 5;
    /// A byte-fallback token `<0xXX>`.
    pub const BYTE: i32 = 6;
}

/// Token attribute bits (llama.cpp's `llama_token_attr`).
pub(super) mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// A vocabulary after llama.cpp's loading rules.
#[derive(Debug)]
pub(super) struct Loaded {
    pub kind: ModelKind,
    pub pre: Option<PreSpec>,
    pub tokens: Vec<Box<[u8]>>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u32>,
    pub index: HashMap<Box<[u8]>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub eog: BTreeSet<u32>,
}

/// Texts llama.cpp takes for an end-of-turn token when metadata names none.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
/// Texts that always end generation.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

impl Vocab {
    /// Applies llama.cpp's loading rules.
    pub(super) fn load(self) -> Result<Loaded> {
        let n = self.tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("tokenizer.ggml.tokens is empty".into()));
        }
        let n32 = u32::try_from(n)
            .map_err(|_| Error::Tokenizer(format!("{n} tokens do not fit 32-bit ids")))?;

        // Model type and its defaults. (llama.cpp also defaults an unknown-token id, which its
        // tokenizers never emit: SPM falls back to bytes.)
        let (kind, mut bos, mut eos, mut add_bos, mut add_space_prefix);
        let mut pre = None;
        match self.model.as_str() {
            "llama" => {
                kind = ModelKind::Spm;
                (bos, eos) = (Some(1), Some(2));
                add_bos = true;
                add_space_prefix = true;
            }
            "gpt2" => {
                kind = ModelKind::Bpe;
                (bos, eos) = (Some(11), Some(11));
                let name = self.pre.as_deref().unwrap_or("");
                if name.is_empty() {
                    log::warn!("tokenizer.ggml.pre is missing: using the 'default' pre-tokenizer; quality will suffer");
                }
                let spec = pretokenize::spec_for(name).ok_or_else(|| {
                    Error::Tokenizer(format!(
                        "unsupported pre-tokenizer tokenizer.ggml.pre = '{name}'"
                    ))
                })?;
                add_bos = spec.add_bos;
                if spec.no_bos {
                    bos = None;
                }
                add_space_prefix = false;
                pre = Some(spec);
            }
            other => {
                return Err(Error::Tokenizer(format!(
                "unsupported tokenizer.ggml.model '{other}' (rawrxd supports 'gpt2' and 'llama')"
            )))
            }
        }
        let mut add_eos = false;
        if let Some(v) = self.add_space_prefix {
            add_space_prefix = v;
        }

        // Token texts, scores, attributes.
        if let Some(s) = &self.scores {
            if s.len() < n {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.scores has {} entries for {n} tokens",
                    s.len()
                )));
            }
        }
        if let Some(t) = &self.token_types {
            if t.len() < n {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.token_type has {} entries for {n} tokens",
                    t.len()
                )));
            }
        }
        let mut tokens = Vec::with_capacity(n);
        let mut index = HashMap::with_capacity(n);
        for (i, t) in self.tokens.into_iter().enumerate() {
            let t: Box<[u8]> = if t.is_empty() {
                log::warn!("empty token at index {i}");
                format!("[EMPTY_{i}]").into_bytes().into()
            } else {
                t.into()
            };
            if index.insert(t.clone(), i as u32).is_some() {
                return Err(Error::Tokenizer(format!(
                    "token {i} '{}' appears twice in tokenizer.ggml.tokens",
                    String::from_utf8_lossy(&t)
                )));
            }
            tokens.push(t);
        }
        let scores = match self.scores {
            Some(mut s) => {
                s.truncate(n);
                s
            }
            None => vec![0.0; n],
        };
        let mut attrs: Vec<u32> = match &self.token_types {
            Some(types) => types[..n]
                .iter()
                .map(|&t| match t {
                    token_type::UNKNOWN => attr::UNKNOWN,
                    token_type::UNUSED => attr::UNUSED,
                    token_type::NORMAL => attr::NORMAL,
                    token_type::CONTROL => attr::CONTROL,
                    token_type::USER_DEFINED => attr::USER_DEFINED,
                    token_type::BYTE => attr::BYTE,
                    _ => 0,
                })
                .collect(),
            None => vec![attr::NORMAL; n],
        };

        // Metadata ids override the defaults when they are in range; defaults out of range go.
        let fix = |default: Option<u32>, meta: Option<u32>, key: &str| -> Option<u32> {
            let default = default.filter(|&id| id < n32);
            match meta {
                Some(id) if id < n32 => Some(id),
                Some(id) => {
                    log::warn!("bad special token {key} = {id}, using the default {default:?}");
                    default
                }
                None => default,
            }
        };
        let sp = &self.special;
        bos = fix(bos, sp.bos, "bos_token_id");
        eos = fix(eos, sp.eos, "eos_token_id");
        let mut eot = fix(None, sp.eot, "eot_token_id");
        let mut eom = fix(None, sp.eom, "eom_token_id");
        let mut fim_pre = fix(None, sp.fim_pre, "fim_pre_token_id");
        let mut fim_suf = fix(None, sp.fim_suf, "fim_suf_token_id");
        let mut fim_mid = fix(None, sp.fim_mid, "fim_mid_token_id");
        let mut fim_pad = fix(None, sp.fim_pad, "fim_pad_token_id");
        let mut fim_rep = fix(None, sp.fim_rep, "fim_rep_token_id");
        let mut fim_sep = fix(None, sp.fim_sep, "fim_sep_token_id");

        if let Some(v) = self.add_bos {
            add_bos = v;
        }
        if let Some(v) = self.add_eos {
            add_eos = v;
        }

        // Find unnamed special tokens by their text and make sure they are control tokens.
        // llama.cpp walks a hash map here, so when several texts qualify its pick is arbitrary;
        // we take the lowest id. Only which id is reported as EOT/FIM differs, never tokenization.
        let id_of = |text: &str| index.get(text.as_bytes()).copied();
        let autodetect = |slot: &mut Option<u32>, texts: &[&str], attrs: &mut [u32]| {
            if slot.is_none() {
                if let Some(id) = texts.iter().filter_map(|t| id_of(t)).min() {
                    *slot = Some(id);
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
        };
        autodetect(&mut eot, EOT_TEXTS, &mut attrs);
        autodetect(&mut eom, EOM_TEXTS, &mut attrs);
        autodetect(&mut fim_pre, FIM_PRE_TEXTS, &mut attrs);
        autodetect(&mut fim_suf, FIM_SUF_TEXTS, &mut attrs);
        autodetect(&mut fim_mid, FIM_MID_TEXTS, &mut attrs);
        autodetect(&mut fim_pad, FIM_PAD_TEXTS, &mut attrs);
        autodetect(&mut fim_rep, FIM_REP_TEXTS, &mut attrs);
        autodetect(&mut fim_sep, FIM_SEP_TEXTS, &mut attrs);
        let _ = (fim_pre, fim_suf, fim_mid);

        // Control tokens named "unused" are unused.
        for (t, a) in tokens.iter().zip(attrs.iter_mut()) {
            if *a & attr::CONTROL != 0 && t.windows(6).any(|w| w == b"unused") {
                *a |= attr::UNUSED;
            }
        }

        // End-of-generation tokens.
        let mut eog: BTreeSet<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for id in EOG_TEXTS.iter().filter_map(|t| id_of(t)) {
            eog.insert(id);
            attrs[id as usize] |= attr::CONTROL;
        }
        // gpt-oss: these are always rendered.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = id_of(text) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        // o200k_harmony / solar-open: "<|end|>" is not EOG when "<|return|>"+"<|call|>" or
        // "<|calls|>"+"<|flush|>" are.
        let in_eog = |t: &str, eog: &BTreeSet<u32>| id_of(t).is_some_and(|id| eog.contains(&id));
        let has_call = in_eog("<|call|>", &eog) || in_eog("<|calls|>", &eog);
        if let Some(end) = id_of("<|end|>").filter(|id| eog.contains(id)) {
            if has_call && (in_eog("<|return|>", &eog) || in_eog("<|flush|>", &eog)) {
                eog.remove(&end);
                attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        // Gemma 4 / PLaMo: "</s>" is an ordinary token there.
        if in_eog("<|tool_response>", &eog) || in_eog("<|plamo:eos|>", &eog) {
            if let Some(s) = id_of("</s>").filter(|id| eog.contains(id)) {
                eog.remove(&s);
                attrs[s as usize] = attr::NORMAL;
            }
        }

        // Per-model attribute rules (llama.cpp sets them after building its caches).
        let name = self.model_name.as_deref().unwrap_or("").to_lowercase();
        let pre_name = self.pre.as_deref().unwrap_or("");
        let arch = self.architecture.as_deref().unwrap_or("");
        let mut set = |text: &str, bit: u32, on: bool| {
            if let Some(id) = id_of(text) {
                let a = &mut attrs[id as usize];
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
            .iter()
            .any(|p| pre_name.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"]
                .iter()
                .any(|a| arch.contains(a))
        {
            set("<mask>", attr::LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for a in attrs.iter_mut() {
                if *a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                    *a |= attr::RSTRIP;
                }
            }
            let mut set = |text: &str, on: bool| {
                if let Some(id) = id_of(text) {
                    let a = &mut attrs[id as usize];
                    *a = if on {
                        *a | attr::RSTRIP
                    } else {
                        *a & !attr::RSTRIP
                    };
                }
            };
            set("</s>", true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(t, false);
            }
        } else if name.contains("modern-bert") {
            set("[MASK]", attr::LSTRIP, true);
        }

        Ok(Loaded {
            kind,
            pre,
            tokens,
            scores,
            attrs,
            index,
            bos,
            eos,
            add_bos,
            add_eos,
            add_space_prefix,
            eog,
        })
    }
}
