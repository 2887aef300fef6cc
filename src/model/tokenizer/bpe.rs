//! Byte-level BPE merging (llama.cpp's `llm_tokenizer_bpe_session`).
//!
//! A word (one pre-tokenizer piece, already mapped through GPT-2's byte-to-unicode table) starts
//! as one symbol per code point; the adjacent pair with the best (lowest) merge rank is merged,
//! leftmost first among equal ranks, until no pair has a rank. Finished symbols become tokens;
//! a symbol that is not a token falls back to one token per byte where those exist.
//!
//! Invariants: every string that occurs in a merge rule is interned to an id (token strings keep
//! their token id; others get ids from `n_vocab` up), and `rules` maps a pair of ids to the rule's
//! rank and the id of the concatenation, so merging never builds or hashes strings.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Merge rules keyed by interned ids.
#[derive(Debug)]
pub struct Merges {
    /// Strings of merge rules that are not tokens, interned past the vocabulary.
    extra: HashMap<Box<[u8]>, u32>,
    /// `(left, right) -> (rank, merged)`.
    rules: HashMap<(u32, u32), (u32, u32)>,
}

/// Id of a symbol whose text occurs in no rule and no token.
const NO_ID: u32 = u32::MAX;

impl Merges {
    /// Builds the rule table from `"left right"` lines (rank = line number; the first occurrence
    /// of a pair wins). Like llama.cpp, the split is at the first space after the first byte; a
    /// line without one becomes the rule `("", "")`, which never applies.
    pub fn new(merges: &[Vec<u8>], index: &HashMap<Box<[u8]>, u32>, n_vocab: u32) -> Merges {
        let mut m = Merges {
            extra: HashMap::new(),
            rules: HashMap::with_capacity(merges.len()),
        };
        let mut next = n_vocab;
        let mut intern = |s: &[u8], extra: &mut HashMap<Box<[u8]>, u32>| -> u32 {
            if let Some(&id) = index.get(s) {
                return id;
            }
            *extra.entry(s.into()).or_insert_with(|| {
                next += 1;
                next - 1
            })
        };
        for (rank, line) in merges.iter().enumerate() {
            let (l, r) = match line.iter().skip(1).position(|&b| b == b' ') {
                Some(p) => (&line[..p + 1], &line[p + 2..]),
                None => (&line[..0], &line[..0]),
            };
            let li = intern(l, &mut m.extra);
            let ri = intern(r, &mut m.extra);
            let joined = [l, r].concat();
            let ji = intern(&joined, &mut m.extra);
            m.rules.entry((li, ri)).or_insert((rank as u32, ji));
        }
        m
    }

    fn id(&self, s: &[u8], index: &HashMap<Box<[u8]>, u32>) -> u32 {
        index
            .get(s)
            .or_else(|| self.extra.get(s))
            .copied()
            .unwrap_or(NO_ID)
    }
}

/// A symbol of the word being merged: a byte range and its interned id.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Reusable buffers for [`encode_word`].
#[derive(Default)]
pub struct Scratch {
    symbols: Vec<Symbol>,
    /// Lowest rank, then leftmost, first.
    queue: BinaryHeap<Reverse<Candidate>>,
}

/// A queued pair: `(rank, left index, right index, left id, right id)`.
type Candidate = (u32, usize, usize, u32, u32);

/// Merges one byte-encoded `word` and appends its tokens to `out`.
///
/// `n_vocab` bounds token ids; `ignore_merges` makes a word that is itself a token come out whole.
pub fn encode_word(
    word: &[u8],
    merges: &Merges,
    index: &HashMap<Box<[u8]>, u32>,
    ignore_merges: bool,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
) {
    if word.is_empty() {
        return;
    }
    if ignore_merges {
        if let Some(&id) = index.get(word) {
            out.push(id);
            return;
        }
    }
    let syms = &mut scratch.symbols;
    syms.clear();
    let mut start = 0;
    while start < word.len() {
        let len = utf8_len(word[start]).min(word.len() - start);
        let i = syms.len();
        syms.push(Symbol {
            start,
            len,
            id: merges.id(&word[start..start + len], index),
            prev: i.checked_sub(1),
            next: (start + len < word.len()).then_some(i + 1),
        });
        start += len;
    }

    let queue = &mut scratch.queue;
    queue.clear();
    let push = |queue: &mut BinaryHeap<_>, syms: &[Symbol], l: usize, r: usize| {
        let (a, b) = (syms[l].id, syms[r].id);
        if let Some(&(rank, _)) = merges.rules.get(&(a, b)) {
            queue.push(Reverse((rank, l, r, a, b)));
        }
    };
    for i in 1..syms.len() {
        push(queue, syms, i - 1, i);
    }
    while let Some(Reverse((_, l, r, a, b))) = queue.pop() {
        // Skip pairs that changed since they were queued (a side merged or grew).
        if syms[l].len == 0 || syms[r].len == 0 || syms[l].id != a || syms[r].id != b {
            continue;
        }
        let merged = merges.rules[&(a, b)].1;
        syms[l].len += syms[r].len;
        syms[l].id = merged;
        syms[r].len = 0;
        syms[l].next = syms[r].next;
        if let Some(n) = syms[r].next {
            syms[n].prev = Some(l);
        }
        if let Some(p) = syms[l].prev {
            push(queue, syms, p, l);
        }
        if let Some(n) = syms[l].next {
            push(queue, syms, l, n);
        }
    }

    for s in syms.iter().filter(|s| s.len > 0) {
        let text = &word[s.start..s.start + s.len];
        match index.get(text) {
            Some(&id) => out.push(id),
            // llama.cpp looks up each byte of the (byte-encoded) text as a one-byte token and
            // drops those it does not find.
            None => out.extend(
                text.iter()
                    .filter_map(|b| index.get(std::slice::from_ref(b)).copied()),
            ),
        }
    }
}

/// Length of the UTF-8 sequence a lead byte announces (llama.cpp's `unicode_len_utf8`).
pub fn utf8_len(lead: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(lead >> 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(tokens: &[&str]) -> HashMap<Box<[u8]>, u32> {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_bytes().into(), i as u32))
            .collect()
    }

    fn encode(word: &str, tokens: &[&str], merges: &[&str], ignore: bool) -> Vec<u32> {
        let idx = index(tokens);
        let merges: Vec<Vec<u8>> = merges.iter().map(|m| m.as_bytes().to_vec()).collect();
        let m = Merges::new(&merges, &idx, tokens.len() as u32);
        let mut out = Vec::new();
        encode_word(
            word.as_bytes(),
            &m,
            &idx,
            ignore,
            &mut Scratch::default(),
            &mut out,
        );
        out
    }

    #[test]
    fn lowest_rank_merges_first() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"];
        // "b c" outranks "a b": a|bc, then "a bc" -> abc.
        assert_eq!(encode("abc", &tokens, &["b c", "a b", "a bc"], false), [5]);
        // Without "a bc", the word stays a|bc.
        assert_eq!(encode("abc", &tokens, &["b c", "a b"], false), [0, 4]);
        // "a b" first: ab|c; no rule for "ab c".
        assert_eq!(encode("abc", &tokens, &["a b", "b c"], false), [3, 2]);
    }

    #[test]
    fn equal_ranks_merge_leftmost_first() {
        let tokens = ["a", "aa", "aaa"];
        // "aaa": pairs (0,1) and (1,2) both rank 0; the left one merges: aa|a.
        assert_eq!(encode("aaa", &tokens, &["a a"], false), [1, 0]);
    }

    #[test]
    fn non_token_symbols_fall_back_to_single_byte_tokens() {
        // "xy" merges into a string that is not a token; "x" is a one-byte token, "y" is not.
        let tokens = ["x", "q"];
        assert_eq!(encode("xy", &tokens, &["x y"], false), [0]);
    }

    #[test]
    fn ignore_merges_takes_whole_word_tokens() {
        let tokens = ["a", "b", "ab", "ba", "aba"];
        assert_eq!(encode("aba", &tokens, &["a b"], false), [2, 0]);
        assert_eq!(encode("aba", &tokens, &["a b"], true), [4]);
    }
}
