//! Special-token partitioning (llama.cpp's `tokenizer_st_partition`): before any BPE or SPM work,
//! the text is cut at every occurrence of a special token's text, longest tokens first.
//!
//! Invariants: fragments appear in text order; text fragments are non-empty byte ranges of the
//! input, and together with the token fragments they cover the input except for whitespace that
//! an `LSTRIP`/`RSTRIP` token swallowed next to itself.

use super::vocab::attr;

/// A piece of the input after partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Bytes `start..start + len` of the input, still to be tokenized.
    Text { start: usize, len: usize },
    /// A special token matched whole.
    Token(u32),
}

/// Cuts `text` at the special tokens `specials` (ids, in matching order) whose texts and
/// attributes are given by `token_text` / `attrs`. With `parse_special` false, control and unknown
/// tokens are left as text; user-defined tokens are matched regardless (as in HF tokenizers).
pub fn partition<'v>(
    text: &[u8],
    specials: &[u32],
    token_text: impl Fn(u32) -> &'v [u8],
    attrs: &[u32],
    parse_special: bool,
) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text {
        start: 0,
        len: text.len(),
    });
    for &id in specials {
        let a = attrs[id as usize];
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let needle = token_text(id);
        if needle.is_empty() || !frags.iter().any(|f| matches!(f, Fragment::Text { .. })) {
            continue;
        }
        let mut next = Vec::with_capacity(frags.len() + 2);
        for f in frags {
            let Fragment::Text { start, len } = f else {
                next.push(f);
                continue;
            };
            let (mut base, mut left) = (start, len);
            loop {
                let Some(at) = find(&text[base..base + left], needle) else {
                    next.push(Fragment::Text {
                        start: base,
                        len: left,
                    });
                    break;
                };
                let m = base + at;
                // Text before the match, minus trailing whitespace for LSTRIP tokens.
                let mut before = m - base;
                if a & attr::LSTRIP != 0 {
                    while before > 0 && is_c_space(text[base + before - 1]) {
                        before -= 1;
                    }
                }
                if before > 0 {
                    next.push(Fragment::Text {
                        start: base,
                        len: before,
                    });
                }
                next.push(Fragment::Token(id));
                // Text after the match, minus leading whitespace for RSTRIP tokens.
                let end = base + left;
                let mut after = m + needle.len();
                if a & attr::RSTRIP != 0 {
                    while after < end && is_c_space(text[after]) {
                        after += 1;
                    }
                }
                if after >= end {
                    break;
                }
                (base, left) = (after, end - after);
            }
        }
        frags = next;
    }
    frags
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// The first occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let j = hay[i..=last_start].iter().position(|&b| b == first)? + i;
        if &hay[j + 1..j + needle.len()] == rest {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&[u8]; 3] = [b"<|im_start|>", b"<|im_end|>", b"<s>"];

    fn run(text: &str, attrs: &[u32], parse_special: bool) -> Vec<Fragment> {
        partition(
            text.as_bytes(),
            &[0, 1, 2],
            |id| TEXTS[id as usize],
            attrs,
            parse_special,
        )
    }

    #[test]
    fn cuts_at_every_occurrence() {
        use Fragment::*;
        let attrs = [attr::CONTROL; 3];
        let got = run("<|im_start|>user\nhi<|im_end|><|im_end|>x", &attrs, true);
        assert_eq!(
            got,
            [
                Token(0),
                Text { start: 12, len: 7 },
                Token(1),
                Token(1),
                Text { start: 39, len: 1 }
            ]
        );
        // Control tokens stay text without parse_special ...
        assert_eq!(run("a<s>b", &attrs, false), [Text { start: 0, len: 5 }]);
        // ... user-defined ones do not.
        let ud = [attr::CONTROL, attr::CONTROL, attr::USER_DEFINED];
        assert_eq!(
            run("a<s>b", &ud, false),
            [
                Text { start: 0, len: 1 },
                Token(2),
                Text { start: 4, len: 1 }
            ]
        );
        assert!(run("", &attrs, true).is_empty());
    }

    #[test]
    fn strip_attributes_eat_neighbouring_spaces() {
        use Fragment::*;
        let attrs = [
            attr::CONTROL,
            attr::CONTROL,
            attr::CONTROL | attr::LSTRIP | attr::RSTRIP,
        ];
        assert_eq!(
            run("a \t<s>\n b", &attrs, true),
            [
                Text { start: 0, len: 1 },
                Token(2),
                Text { start: 8, len: 1 }
            ]
        );
        assert_eq!(run("  <s>  ", &attrs, true), [Token(2)]);
    }

    #[test]
    fn find_is_a_substring_search() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"aaa", b"a"), Some(0));
    }
}
