//! Tokenizers for synthetic models: a built-in byte-level BPE vocabulary of any size, or the
//! tokenizer of a donor GGUF.
//!
//! Invariants of the built-in vocabulary (what llama.cpp's `gpt2` loader needs): ids 0 and 1 are
//! the control tokens `<|endoftext|>` (eos, padding) and `<|startoftext|>` (bos); ids 2..258 are
//! the 256 byte tokens, spelled with GPT-2's byte-to-unicode map so every byte string can be
//! tokenized; every further token is the concatenation of a merge `"left right"` whose two halves
//! are earlier tokens, listed in the same order as the merges (rank = id - 258). Token texts are
//! unique. The result depends only on `n_vocab`.

use crate::gguf::{GgufFile, MetaValue, ValueType};
use crate::{Error, Result};

use super::shape::MIN_VOCAB;

/// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 onwards.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap_or('?')
}

/// Byte values ordered by how useful their pairs are as filler merges: lowercase letters by
/// English frequency, space, uppercase, digits, punctuation, newline, then everything else.
fn byte_order() -> Vec<u8> {
    let mut order: Vec<u8> = Vec::with_capacity(256);
    let push = |b: u8, order: &mut Vec<u8>| {
        if !order.contains(&b) {
            order.push(b);
        }
    };
    for &b in b"etaoinshrdlcumwfgypbvkjxqz ETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,'-!?:;\"()\n" {
        push(b, &mut order);
    }
    for b in 0..=255u8 {
        push(b, &mut order);
    }
    order
}

/// Builds the tokenizer metadata (`tokenizer.ggml.*`) of a byte-level BPE vocabulary of exactly
/// `n_vocab` tokens.
pub fn builtin_vocab(n_vocab: usize) -> Result<Vec<(String, MetaValue)>> {
    if n_vocab < MIN_VOCAB {
        return Err(Error::Tokenizer(format!(
            "a vocabulary of {n_vocab} tokens cannot hold the 2 special and 256 byte tokens"
        )));
    }
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|startoftext|>".into()];
    let mut types: Vec<i32> = vec![3, 3];
    tokens.extend((0..=255u8).map(|b| byte_char(b).to_string()));
    types.extend(std::iter::repeat_n(1, 256));
    let order: Vec<String> = byte_order()
        .into_iter()
        .map(|b| byte_char(b).to_string())
        .collect();
    let n_merges = n_vocab - MIN_VOCAB;
    let mut merges: Vec<String> = Vec::with_capacity(n_merges);
    // two-byte tokens: all pairs among the first k bytes before any pair with byte k+1
    'pairs: for k in 0..order.len() {
        for j in 0..=k {
            let pairs = if j == k {
                vec![(k, k)]
            } else {
                vec![(j, k), (k, j)]
            };
            for (a, b) in pairs {
                if merges.len() == n_merges {
                    break 'pairs;
                }
                merges.push(format!("{} {}", order[a], order[b]));
                tokens.push(format!("{}{}", order[a], order[b]));
            }
        }
    }
    // three-byte tokens for vocabularies beyond 65,794
    let n_two = tokens.len();
    'triples: for t in MIN_VOCAB..n_two {
        for c in &order {
            if merges.len() == n_merges {
                break 'triples;
            }
            merges.push(format!("{} {c}", tokens[t]));
            tokens.push(format!("{}{c}", tokens[t]));
        }
    }
    if tokens.len() != n_vocab {
        return Err(Error::Tokenizer(format!(
            "the built-in vocabulary holds at most {} tokens, {n_vocab} asked",
            tokens.len()
        )));
    }
    types.resize(n_vocab, 1);
    let strings = |v: Vec<String>| {
        MetaValue::Array(
            ValueType::String,
            v.into_iter().map(MetaValue::String).collect(),
        )
    };
    Ok(vec![
        (
            "tokenizer.ggml.model".into(),
            MetaValue::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".into(),
            MetaValue::String("gpt-2".into()),
        ),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            MetaValue::Array(
                ValueType::I32,
                types.into_iter().map(MetaValue::I32).collect(),
            ),
        ),
        ("tokenizer.ggml.merges".into(), strings(merges)),
        ("tokenizer.ggml.bos_token_id".into(), MetaValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), MetaValue::U32(0)),
        ("tokenizer.ggml.padding_token_id".into(), MetaValue::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), MetaValue::Bool(true)),
        (
            "tokenizer.ggml.add_eos_token".into(),
            MetaValue::Bool(false),
        ),
    ])
}

/// The tokenizer metadata (`tokenizer.*`) of `donor`, which must have exactly `n_vocab` tokens.
pub fn donor_vocab(donor: &GgufFile, n_vocab: usize) -> Result<Vec<(String, MetaValue)>> {
    let n = donor.get_array("tokenizer.ggml.tokens")?.len();
    if n != n_vocab {
        return Err(Error::Tokenizer(format!(
            "{}: the donor vocabulary has {n} tokens but the shape has n_vocab {n_vocab} \
             (add n_vocab={n} to --shape)",
            donor.path().display()
        )));
    }
    Ok(donor
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn strings<'a>(meta: &'a [(String, MetaValue)], key: &str) -> Vec<&'a str> {
        let v = &meta.iter().find(|(k, _)| k == key).unwrap().1;
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    #[test]
    fn byte_map_matches_gpt2() {
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(0), 'Ā');
        assert_eq!(byte_char(0xAD), 'Ń');
        let all: HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn every_merge_makes_the_next_token_from_earlier_ones() {
        for n_vocab in [MIN_VOCAB, 300, 32000, 70000] {
            let meta = builtin_vocab(n_vocab).unwrap();
            let tokens = strings(&meta, "tokenizer.ggml.tokens");
            let merges = strings(&meta, "tokenizer.ggml.merges");
            assert_eq!(tokens.len(), n_vocab);
            assert_eq!(merges.len(), n_vocab - MIN_VOCAB);
            let unique: HashSet<&str> = tokens.iter().copied().collect();
            assert_eq!(unique.len(), n_vocab, "token texts must be unique");
            let mut known: HashSet<&str> = tokens[..MIN_VOCAB].iter().copied().collect();
            for (i, m) in merges.iter().enumerate() {
                let (a, b) = m.split_once(' ').unwrap();
                assert!(known.contains(a) && known.contains(b), "merge {i}: {m}");
                assert_eq!(format!("{a}{b}"), tokens[MIN_VOCAB + i]);
                known.insert(tokens[MIN_VOCAB + i]);
            }
        }
        assert!(builtin_vocab(MIN_VOCAB - 1).is_err());
    }
}
