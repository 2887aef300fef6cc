//! Reading a [`Vocab`] from GGUF metadata (`tokenizer.ggml.*`, plus `general.name` and
//! `general.architecture`, which llama.cpp consults for a few attribute rules).
//!
//! Invariant: a key that is present with the wrong type is an error naming the file and the key;
//! an absent optional key is `None`. Special-token ids are accepted from any non-negative integer
//! type (llama.cpp insists on u32; converters always write u32).

use crate::gguf::{GgufFile, MetaValue};
use crate::{Error, Result};

use super::{SpecialIds, Tokenizer, Vocab};

impl Tokenizer {
    /// Builds the tokenizer of a GGUF model file from its metadata.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        Tokenizer::from_vocab(Vocab::from_gguf(f)?)
    }
}

impl Vocab {
    /// Reads the tokenizer metadata of `f`.
    pub fn from_gguf(f: &GgufFile) -> Result<Vocab> {
        let r = Reader(f);
        let model = r
            .string("tokenizer.ggml.model")?
            .ok_or_else(|| r.err("tokenizer.ggml.model", "missing: the file has no tokenizer"))?;
        let tokens = r
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| r.err("tokenizer.ggml.tokens", "missing"))?;
        let merges = match r.strings("tokenizer.ggml.merges")? {
            Some(m) => m,
            None if model == "gpt2" => {
                return Err(r.err(
                    "tokenizer.ggml.merges",
                    "missing (a gpt2 tokenizer needs merges)",
                ))
            }
            None => Vec::new(),
        };
        let id = |key: &str| r.id(&format!("tokenizer.ggml.{key}"));
        // llama.cpp reads the deprecated FIM keys after the current ones, so they win.
        let either = |new: &str, old: &str| -> Result<Option<u32>> { Ok(id(old)?.or(id(new)?)) };
        let special = SpecialIds {
            bos: id("bos_token_id")?,
            eos: id("eos_token_id")?,
            eot: id("eot_token_id")?,
            eom: id("eom_token_id")?,
            unk: id("unknown_token_id")?,
            sep: id("seperator_token_id")?,
            pad: id("padding_token_id")?,
            mask: id("mask_token_id")?,
            fim_pre: either("fim_pre_token_id", "prefix_token_id")?,
            fim_suf: either("fim_suf_token_id", "suffix_token_id")?,
            fim_mid: either("fim_mid_token_id", "middle_token_id")?,
            fim_pad: id("fim_pad_token_id")?,
            fim_rep: id("fim_rep_token_id")?,
            fim_sep: id("fim_sep_token_id")?,
        };
        Ok(Vocab {
            model,
            pre: r.string("tokenizer.ggml.pre")?,
            tokens,
            scores: r.scores("tokenizer.ggml.scores")?,
            token_types: r.i32s("tokenizer.ggml.token_type")?,
            merges,
            special,
            add_bos: r.bool("tokenizer.ggml.add_bos_token")?,
            add_eos: r.bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: r.bool("tokenizer.ggml.add_space_prefix")?,
            model_name: r.string("general.name")?,
            architecture: r.string("general.architecture")?,
        })
    }
}

/// Typed access to optional metadata keys with errors that name the file and key.
struct Reader<'f>(&'f GgufFile);

impl Reader<'_> {
    fn err(&self, key: &str, msg: &str) -> Error {
        Error::Tokenizer(format!("{}: {key}: {msg}", self.0.path().display()))
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.0.get(key) {
            None => Ok(None),
            Some(MetaValue::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                key,
                &format!("expected a string, found {:?}", v.value_type()),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.0.get(key) {
            None => Ok(None),
            Some(MetaValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(key, &format!("expected a bool, found {:?}", v.value_type()))),
        }
    }

    fn id(&self, key: &str) -> Result<Option<u32>> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64().map(u32::try_from) {
                Some(Ok(id)) => Ok(Some(id)),
                _ => Err(self.err(key, &format!("expected a token id, found {}", v.summary()))),
            },
        }
    }

    fn array(&self, key: &str) -> Result<Option<&[MetaValue]>> {
        match self.0.get(key) {
            None => Ok(None),
            Some(MetaValue::Array(_, items)) => Ok(Some(items)),
            Some(v) => Err(self.err(
                key,
                &format!("expected an array, found {:?}", v.value_type()),
            )),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                MetaValue::String(s) => Ok(s.as_bytes().to_vec()),
                _ => Err(self.err(key, &format!("element {i} is not a string"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn i32s(&self, key: &str) -> Result<Option<Vec<i32>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                MetaValue::I32(x) => Ok(*x),
                _ => Err(self.err(key, &format!("element {i} is not an i32"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Scores are f32, or i32 in some converted files (llama.cpp accepts both).
    fn scores(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                MetaValue::F32(x) => Ok(*x),
                MetaValue::I32(x) => Ok(*x as f32),
                _ => Err(self.err(key, &format!("element {i} is neither f32 nor i32"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
