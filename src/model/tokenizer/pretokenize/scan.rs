//! llama.cpp's hand-written scanners (`unicode_regex_split_custom_gpt2`, `_llama3`, `_qwen2`,
//! `_qwen35`, `_newlines` in src/unicode.cpp), ported line for line: they are what llama.cpp runs
//! for those five expressions, including where they differ from the regex they stand for.
//!
//! Invariants: a scanner sees one piece `[lo, hi)` at a time and treats everything outside it as
//! absent (`OUT_OF_RANGE`, `CpFlags::NONE`); the lengths it pushes add up to `hi - lo`.

use super::super::unicode::{self, CpFlags};

/// The hand-written scanners, ported from llama.cpp's `unicode_regex_split_custom_*`.
pub(super) struct Scan<'a> {
    pub cpts: &'a [u32],
    pub flags: &'a [CpFlags],
}

const OUT_OF_RANGE: u32 = u32::MAX;

impl Scan<'_> {
    /// Runs `f` over each piece `[start, end)`; `f` pushes the new piece lengths.
    pub fn each_piece(
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
    pub fn gpt2(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
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
    pub fn llama3(&self, lo: usize, hi: usize, out: &mut Vec<usize>, max_digits: usize) {
        self.llama3_like(lo, hi, out, max_digits, false)
    }

    /// Qwen3.5: Qwen2 with `[\p{L}\p{M}]+` letter runs and marks excluded from the symbol run.
    pub fn qwen35(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
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
    pub fn newlines(&self, lo: usize, hi: usize, out: &mut Vec<usize>) {
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
