//! The tokenizer: text to token ids and back, identical to llama.cpp's `llama_tokenize` on the
//! same GGUF file.
//!
//! Pipeline of [`Tokenizer::encode`]: special tokens are cut out of the text first
//! ([`special`]); each remaining text fragment goes to the model's algorithm — SentencePiece
//! ([`spm`]) for `tokenizer.ggml.model = "llama"`, or byte-level BPE for `"gpt2"`: the
//! pre-tokenizer of `tokenizer.ggml.pre` splits it into words ([`pretokenize`]), each word is
//! mapped byte by byte to GPT-2's printable code points ([`unicode`]) and merged by rank ([`bpe`]).
//! BOS/EOS are added per `tokenizer.ggml.add_{bos,eos}_token` and llama.cpp's defaults.
//!
//! Invariants: a `Tokenizer` is immutable after construction and `Sync`; every id it returns is
//! below [`Tokenizer::n_vocab`]; `pieces[id]` is what llama.cpp's `token_to_piece(id, special =
//! true)` yields.

mod bpe;
mod gguf;
mod pretokenize;
mod special;
mod spm;
mod unicode;
mod unicode_table;
mod vocab;

use std::collections::{BTreeSet, HashMap};

pub use vocab::{token_type, ModelKind, SpecialIds, Vocab};

use crate::{Error, Result};
use special::Fragment;
use vocab::attr;

/// A tokenizer built from GGUF metadata (or a hand-made [`Vocab`]).
#[derive(Debug)]
pub struct Tokenizer {
    kind: ModelKind,
    tokens: Vec<Box<[u8]>>,
    scores: Vec<f32>,
    attrs: Vec<u32>,
    index: HashMap<Box<[u8]>, u32>,
    /// Decoded bytes of each token.
    pieces: Vec<Box<[u8]>>,
    /// Control, user-defined and unknown tokens, longest text first: matched in this order.
    specials: Vec<u32>,
    bpe: Option<BpeState>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    eog: BTreeSet<u32>,
}

// The engine shares one tokenizer across request threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Tokenizer>();
};

/// The byte-level BPE half of a tokenizer.
#[derive(Debug)]
struct BpeState {
    pre: pretokenize::PreTokenizer,
    merges: bpe::Merges,
    ignore_merges: bool,
}

impl Tokenizer {
    /// Builds a tokenizer from `tokenizer.ggml.*` metadata, applying llama.cpp's loading rules.
    pub fn from_vocab(mut vocab: Vocab) -> Result<Tokenizer> {
        let merges = std::mem::take(&mut vocab.merges);
        let v = vocab.load()?;
        let n = v.tokens.len() as u32;
        let bpe = match v.kind {
            ModelKind::Spm => None,
            ModelKind::Bpe => {
                let spec = v.pre.ok_or_else(|| {
                    Error::Tokenizer("BPE vocabulary without a pre-tokenizer".into())
                })?;
                if merges.is_empty() {
                    return Err(Error::Tokenizer(
                        "tokenizer.ggml.merges is missing or empty".into(),
                    ));
                }
                Some(BpeState {
                    pre: pretokenize::PreTokenizer::new(spec.exprs)?,
                    merges: bpe::Merges::new(&merges, &v.index, n),
                    ignore_merges: spec.ignore_merges,
                })
            }
        };

        let mut specials: Vec<u32> = (0..n)
            .filter(|&id| {
                v.attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        // llama.cpp's sort is not stable; equal lengths keep id order here.
        specials.sort_by_key(|&id| std::cmp::Reverse(v.tokens[id as usize].len()));

        let pieces = (0..v.tokens.len())
            .map(|id| piece(v.kind, &v.tokens[id], v.attrs[id]))
            .collect();

        Ok(Tokenizer {
            kind: v.kind,
            tokens: v.tokens,
            scores: v.scores,
            attrs: v.attrs,
            index: v.index,
            pieces,
            specials,
            bpe,
            bos: v.bos,
            eos: v.eos,
            add_bos: v.add_bos,
            add_eos: v.add_eos,
            add_space_prefix: v.add_space_prefix,
            eog: v.eog,
        })
    }

    /// Token ids of `text`, as llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    ///
    /// `add_special` adds BOS/EOS where the model asks for them; `parse_special` lets control
    /// tokens such as `<|im_start|>` be recognised in the text (user-defined tokens always are).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let bytes = text.as_bytes();
        let frags = special::partition(
            bytes,
            &self.specials,
            |id| &self.tokens[id as usize],
            &self.attrs,
            parse_special,
        );
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.push(self.bos.ok_or_else(|| {
                Error::Tokenizer("the model asks for a BOS token but has none".into())
            })?);
        }
        match &self.bpe {
            None => {
                let mut prev_special = true;
                let mut buf = Vec::new();
                for f in frags {
                    match f {
                        Fragment::Text { start, len } => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.extend_from_slice("▁".as_bytes());
                            }
                            escape_spaces(&bytes[start..start + len], &mut buf);
                            spm::encode(
                                &buf,
                                &self.index,
                                &self.scores,
                                |b| spm::byte_token(&self.index, b),
                                &mut out,
                            )?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Some(b) => {
                let mut scratch = bpe::Scratch::default();
                let mut word = Vec::new();
                for f in frags {
                    match f {
                        Fragment::Text { start, len } => {
                            // Fragments are cut at special-token texts; if one ends inside a
                            // UTF-8 sequence, llama.cpp sees U+FFFD for the broken bytes.
                            let frag = String::from_utf8_lossy(&bytes[start..start + len]);
                            for w in b.pre.split(&frag)? {
                                word.clear();
                                unicode::byte_encode_into(w.as_bytes(), &mut word);
                                bpe::encode_word(
                                    &word,
                                    &b.merges,
                                    &self.index,
                                    b.ignore_merges,
                                    &mut scratch,
                                    &mut out,
                                );
                            }
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos.ok_or_else(|| {
                Error::Tokenizer("the model asks for an EOS token but has none".into())
            })?);
        }
        Ok(out)
    }

    /// The bytes token `id` stands for (llama.cpp's `token_to_piece` with `special = true`):
    /// byte-level BPE tokens decoded to raw bytes, SPM `▁` turned into spaces, `<0xXX>` into the
    /// byte, control tokens as their text. Empty for unused tokens and ids out of range.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], |p| p)
    }

    /// The concatenated pieces of `ids`, as lossy UTF-8.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id))
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The vocabulary's text of token `id` (as stored in the GGUF), if it exists.
    pub fn token_text(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(|t| &t[..])
    }

    /// The id of the token whose stored text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.index.get(text.as_bytes()).copied()
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }

    /// The tokenization algorithm.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn adds_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether `id` ends generation: EOS, EOT, EOM, `<|im_end|>`-style tokens found by text, and
    /// the FIM pad/repo/separator tokens (llama.cpp's `special_eog_ids`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// Whether `id` is a control token (not text; never produced unless specials are parsed).
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & attr::CONTROL != 0)
    }
}

/// SPM's whitespace escaping: every space becomes `▁` (U+2581).
fn escape_spaces(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        if b == b' ' {
            out.extend_from_slice("▁".as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// What llama.cpp's `token_to_piece(special = true)` gives for a token.
fn piece(kind: ModelKind, text: &[u8], a: u32) -> Box<[u8]> {
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        return text.into();
    }
    if a & attr::NORMAL != 0 {
        return match kind {
            ModelKind::Spm => {
                let s = String::from_utf8_lossy(text).replace('▁', " ");
                s.into_bytes().into()
            }
            ModelKind::Bpe => byte_decode(text),
        };
    }
    if a & attr::BYTE != 0 {
        // "<0xXX>": llama.cpp parses the two hex digits at offset 3 (strtol: 0 on garbage).
        let hex = text.get(3..5).and_then(|h| std::str::from_utf8(h).ok());
        let byte = hex
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        return Box::new([byte]);
    }
    Box::new([])
}

/// Inverse of the GPT-2 byte-to-unicode map over a whole token; code points outside the map are
/// rendered the way llama.cpp does (`[UNK_BYTE_0x..<text>]`).
fn byte_decode(text: &[u8]) -> Box<[u8]> {
    let s = String::from_utf8_lossy(text);
    let mut out = Vec::with_capacity(text.len());
    for c in s.chars() {
        match unicode::cp_to_byte(c as u32) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut utf8 = [0u8; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(s.as_bytes());
                out.push(b']');
            }
        }
    }
    out.into()
}
