//! Emulation of llama.cpp's `std::regex` path (`unicode_regex_split_stl` and the "collapsed"
//! text of `unicode_regex_split`) with `fancy_regex`.
//!
//! Invariants: the haystack has one code point per input code point (ASCII kept, non-ASCII
//! whitespace as U+000B, and in collapsed mode every other non-ASCII code point as the placeholder
//! of its category), so match offsets map back to input positions one to one; translated
//! expressions give `\s`, `\d`, `\w` their ASCII (`std::regex`, "C" locale) meanings.

use fancy_regex::Regex;

use super::super::unicode::{self, Category};
use crate::{Error, Result};

/// Whether llama.cpp matches `expr` against the collapsed text (it names a category).
pub(super) fn uses_categories(expr: &str) -> bool {
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
pub(super) fn regex_split(
    re: &Regex,
    collapsed: bool,
    cpts: &[u32],
    offsets: &[usize],
) -> Result<Vec<usize>> {
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
pub(super) fn translate(expr: &str, collapsed: bool) -> Result<String> {
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
