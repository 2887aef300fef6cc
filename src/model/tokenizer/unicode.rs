//! Unicode facts as llama.cpp's tokenizer sees them (src/unicode.cpp).
//!
//! Invariants: categories come from the Unicode 15.1 UCD, the version llama.cpp's tables were
//! generated from, so `\p{L}` and friends agree code point by code point; "whitespace" is the
//! Unicode `White_Space` property (25 code points), not Rust's `char::is_whitespace` (identical
//! today, but pinned here); the GPT-2 byte map is a bijection between the 256 byte values and 256
//! printable code points.

use super::unicode_table::CATEGORY_RANGES;

/// The general-category group of a code point, at the granularity llama.cpp's regexes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Unassigned (`Cn`).
    Undefined,
    /// `\p{N}`.
    Number,
    /// `\p{L}`.
    Letter,
    /// `\p{Z}`.
    Separator,
    /// `\p{M}` (combining marks).
    Mark,
    /// `\p{P}`.
    Punctuation,
    /// `\p{S}`.
    Symbol,
    /// `\p{C}` other than unassigned: controls, format, private use, surrogates.
    Control,
}

/// The general-category group of `cp`; anything past U+10FFFF is `Undefined`.
pub fn category(cp: u32) -> Category {
    if cp > 0x10FFFF {
        return Category::Undefined;
    }
    // The first range starts at 0, so the partition point is at least 1.
    let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
    CATEGORY_RANGES[i - 1].1
}

/// Whether `cp` has the Unicode `White_Space` property (llama.cpp's `is_whitespace`).
pub fn is_whitespace(cp: u32) -> bool {
    matches!(
        cp,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Per-code-point flags the hand-written splitters test, like llama.cpp's `unicode_cpt_flags`.
///
/// `NONE` (all bits clear) stands for "outside the current piece"; every real code point has a
/// category bit set, so `is_none` tells the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpFlags(u16);

impl CpFlags {
    const UNDEFINED: u16 = 0x0001;
    const NUMBER: u16 = 0x0002;
    const LETTER: u16 = 0x0004;
    const SEPARATOR: u16 = 0x0008;
    const MARK: u16 = 0x0010;
    const PUNCTUATION: u16 = 0x0020;
    const SYMBOL: u16 = 0x0040;
    const CONTROL: u16 = 0x0080;
    const WHITESPACE: u16 = 0x0100;

    /// The flags of a position outside the piece being split.
    pub const NONE: CpFlags = CpFlags(0);

    /// The flags of code point `cp`.
    pub fn of(cp: u32) -> CpFlags {
        let cat = match category(cp) {
            Category::Undefined => Self::UNDEFINED,
            Category::Number => Self::NUMBER,
            Category::Letter => Self::LETTER,
            Category::Separator => Self::SEPARATOR,
            Category::Mark => Self::MARK,
            Category::Punctuation => Self::PUNCTUATION,
            Category::Symbol => Self::SYMBOL,
            Category::Control => Self::CONTROL,
        };
        let ws = if is_whitespace(cp) {
            Self::WHITESPACE
        } else {
            0
        };
        CpFlags(cat | ws)
    }

    /// `\p{L}`.
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    /// `\p{N}`.
    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    /// `\p{M}`.
    pub fn is_mark(self) -> bool {
        self.0 & Self::MARK != 0
    }
    /// `\s` (Unicode `White_Space`).
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    /// True only for [`CpFlags::NONE`].
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// ASCII-only simple lowercase. llama.cpp applies full simple case mapping, but it only compares
/// the result with ASCII letters, and no non-ASCII code point lowercases to one of those it
/// compares with (`s t m d r e v l`); the Kelvin sign (-> `k`) and `İ` (-> `i`) are not among them.
pub fn to_lower_ascii(cp: u32) -> u32 {
    if (b'A' as u32..=b'Z' as u32).contains(&cp) {
        cp + 32
    } else {
        cp
    }
}

/// GPT-2's byte-to-unicode map: byte `b` is written as this code point in byte-level BPE vocabs.
pub const fn byte_to_cp(b: u8) -> u32 {
    let b = b as u32;
    // Printable Latin-1 bytes stand for themselves ...
    if (0x21 <= b && b <= 0x7E) || (0xA1 <= b && b <= 0xAC) || (0xAE <= b) {
        return b;
    }
    // ... the other 68 take the code points from U+0100 on, in byte order.
    let n = if b <= 0x20 {
        b
    } else if b <= 0xA0 {
        // 0x00..=0x20 (33 bytes) come first, then 0x7F..=0xA0.
        33 + (b - 0x7F)
    } else {
        // 0xAD, after the 33 + 34 above.
        67
    };
    0x100 + n
}

/// The inverse of [`byte_to_cp`]: the byte a byte-level BPE code point stands for, if any.
pub fn cp_to_byte(cp: u32) -> Option<u8> {
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        0x100..=0x120 => Some((cp - 0x100) as u8),
        0x121..=0x142 => Some((cp - 0x121 + 0x7F) as u8),
        0x143 => Some(0xAD),
        _ => None,
    }
}

/// Appends the byte-level encoding of `bytes` (each byte as its GPT-2 code point, UTF-8) to `out`.
pub fn byte_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        let cp = byte_to_cp(b);
        // All targets are below U+0800: one or two UTF-8 bytes.
        if cp < 0x80 {
            out.push(cp as u8);
        } else {
            out.push(0xC0 | (cp >> 6) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection_onto_gpt2_code_points() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let cp = byte_to_cp(b);
            assert!(seen.insert(cp), "byte {b:#x} maps to a taken code point");
            assert_eq!(cp_to_byte(cp), Some(b));
        }
        // The well-known anchors of GPT-2 vocabularies: space is 'Ġ', newline 'Ċ', tab 'ĉ'.
        assert_eq!(byte_to_cp(b' '), 'Ġ' as u32);
        assert_eq!(byte_to_cp(b'\n'), 'Ċ' as u32);
        assert_eq!(byte_to_cp(b'\t'), 'ĉ' as u32);
        assert_eq!(byte_to_cp(0x7F), 0x121);
        assert_eq!(byte_to_cp(0xAD), 0x143);
        assert_eq!(cp_to_byte(0x144), None);
    }

    #[test]
    fn categories_of_tricky_code_points() {
        use Category::*;
        let cases = [
            ('a', Letter),
            ('7', Number),
            ('٣', Number),     // Arabic-Indic digit three
            ('Ⅻ', Number),     // Roman numeral (Nl)
            ('²', Number),     // superscript two (No)
            ('\u{301}', Mark), // combining acute
            ('中', Letter),
            ('ー', Letter), // Katakana prolonged sound mark (Lm)
            ('😀', Symbol),
            ('\u{200D}', Control), // zero-width joiner (Cf)
            ('\u{FE0F}', Mark),    // variation selector 16 (Mn)
            ('€', Symbol),
            ('¿', Punctuation),
            ('\u{A0}', Separator),
            ('\u{E000}', Control), // private use
            ('\u{378}', Undefined),
            ('\u{2FFC}', Symbol), // assigned in Unicode 15.1 (was unassigned before)
        ];
        for (c, want) in cases {
            assert_eq!(category(c as u32), want, "category of U+{:04X}", c as u32);
        }
        assert_eq!(category(0x110000), Undefined);
    }

    #[test]
    fn whitespace_matches_unicode_white_space() {
        for c in [
            '\t', '\n', '\u{B}', '\u{C}', '\r', ' ', '\u{85}', '\u{A0}', '\u{3000}',
        ] {
            assert!(is_whitespace(c as u32));
        }
        for c in ['\u{1C}', '\u{200B}', '\u{180E}', 'a'] {
            assert!(!is_whitespace(c as u32));
        }
        // Rust's own notion agrees on every code point.
        for cp in 0..=0x10FFFFu32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(is_whitespace(cp), c.is_whitespace(), "U+{cp:04X}");
            }
        }
    }
}
