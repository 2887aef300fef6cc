//! SentencePiece-style tokenization (llama.cpp's `llm_tokenizer_spm_session`).
//!
//! The text (spaces already replaced by `▁`) starts as one symbol per UTF-8 character. Any two
//! adjacent symbols whose concatenation is a token form a candidate; the candidate whose token has
//! the highest score is merged, leftmost first among equal scores, until none is left. Each final
//! symbol is a token, or else is written as byte tokens `<0xXX>`.
//!
//! Invariants: symbols are contiguous byte ranges of the text in order, so a merged symbol's text
//! is one slice; a symbol only grows by absorbing its right neighbour, so a queued candidate is
//! stale exactly when its two sides no longer add up to its recorded length.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::bpe::utf8_len;
use crate::{Error, Result};

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A merge candidate; orders by score, then by leftmost position.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Tokenizes `text` (already whitespace-escaped) and appends the ids to `out`.
///
/// `byte_token` maps a byte to its fallback token; it fails when the vocabulary has none.
pub fn encode(
    text: &[u8],
    index: &HashMap<Box<[u8]>, u32>,
    scores: &[f32],
    byte_token: impl Fn(u8) -> Result<u32>,
    out: &mut Vec<u32>,
) -> Result<()> {
    let mut syms = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let len = utf8_len(text[start]).min(text.len() - start);
        let i = syms.len();
        syms.push(Symbol {
            start,
            len,
            prev: i.checked_sub(1),
            next: (start + len < text.len()).then_some(i + 1),
        });
        start += len;
    }
    if syms.is_empty() {
        return Ok(());
    }

    let mut queue = BinaryHeap::new();
    let try_add = |queue: &mut BinaryHeap<Bigram>, syms: &[Symbol], l: usize, r: usize| {
        let size = syms[l].len + syms[r].len;
        let piece = &text[syms[l].start..syms[l].start + size];
        if let Some(&id) = index.get(piece) {
            queue.push(Bigram {
                score: scores[id as usize],
                left: l,
                right: r,
                size,
            });
        }
    };
    for i in 1..syms.len() {
        try_add(&mut queue, &syms, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (b.left, b.right);
        if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != b.size {
            continue;
        }
        syms[l].len += syms[r].len;
        syms[r].len = 0;
        syms[l].next = syms[r].next;
        if let Some(n) = syms[r].next {
            syms[n].prev = Some(l);
        }
        if let Some(p) = syms[l].prev {
            try_add(&mut queue, &syms, p, l);
        }
        if let Some(n) = syms[l].next {
            try_add(&mut queue, &syms, l, n);
        }
    }

    // Every merged symbol is a token by construction, so only single characters can miss the
    // vocabulary; llama.cpp's re-segmentation through its `rev_merge` map therefore always ends
    // in the byte fallback for them.
    let mut i = Some(0);
    while let Some(k) = i {
        let s = syms[k];
        let piece = &text[s.start..s.start + s.len];
        match index.get(piece) {
            Some(&id) => out.push(id),
            None => {
                for &b in piece {
                    out.push(byte_token(b)?);
                }
            }
        }
        i = s.next;
    }
    Ok(())
}

/// The byte-fallback token of `b`: `<0xXX>`, else the one-byte token, as llama.cpp looks it up.
pub fn byte_token(index: &HashMap<Box<[u8]>, u32>, b: u8) -> Result<u32> {
    let hex = format!("<0x{b:02X}>");
    index
        .get(hex.as_bytes())
        .or_else(|| index.get(std::slice::from_ref(&b)))
        .copied()
        .ok_or_else(|| {
            Error::Tokenizer(format!(
                "no byte token for byte {b:#04x} (looked for {hex})"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny vocabulary: (text, score).
    fn vocab(entries: &[(&str, f32)]) -> (HashMap<Box<[u8]>, u32>, Vec<f32>) {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (t.as_bytes().into(), i as u32))
            .collect();
        (index, entries.iter().map(|e| e.1).collect())
    }

    fn run(text: &str, entries: &[(&str, f32)]) -> Vec<u32> {
        let (index, scores) = vocab(entries);
        let mut out = Vec::new();
        encode(
            text.as_bytes(),
            &index,
            &scores,
            |b| byte_token(&index, b),
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn highest_score_merges_first() {
        let v = [
            ("a", 0.0),
            ("b", 0.0),
            ("c", 0.0),
            ("ab", -1.0),
            ("bc", -0.5),
            ("abc", -3.0),
        ];
        // "bc" (-0.5) beats "ab" (-1.0): a|bc, then "abc" is a token: merged.
        assert_eq!(run("abc", &v), [5]);
        // Without "abc": a|bc.
        assert_eq!(run("abc", &v[..5]), [0, 4]);
        // Flip the scores: ab|c.
        let v2 = [
            ("a", 0.0),
            ("b", 0.0),
            ("c", 0.0),
            ("ab", -0.5),
            ("bc", -1.0),
        ];
        assert_eq!(run("abc", &v2), [3, 2]);
    }

    #[test]
    fn equal_scores_merge_leftmost_first() {
        let v = [("a", 0.0), ("aa", -1.0)];
        assert_eq!(run("aaa", &v), [1, 0]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes() {
        let mut v: Vec<(String, f32)> =
            (0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0)).collect();
        v.push(("▁".into(), -1.0));
        v.push(("x".into(), -1.0));
        let entries: Vec<(&str, f32)> = v.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        // "é" is not in the vocabulary: its two UTF-8 bytes become <0xC3> <0xA9>.
        assert_eq!(run("▁xé", &entries), [256, 257, 0xC3, 0xA9]);
    }

    #[test]
    fn missing_byte_token_is_an_error() {
        let (index, scores) = vocab(&[("a", 0.0)]);
        let mut out = Vec::new();
        let err = encode(b"b", &index, &scores, |b| byte_token(&index, b), &mut out);
        assert!(err.is_err());
    }
}
