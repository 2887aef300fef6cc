//! Streaming detokenization: token ids in, text out, one token at a time.
//!
//! A token's bytes may end inside a UTF-8 character (byte-level BPE splits multi-byte
//! characters across tokens), so [`Detokenizer::push`] only returns whole characters and keeps
//! an incomplete tail for the next token; bytes that can never form a character become U+FFFD
//! at once. Control tokens (`<|im_end|>`, …) render as nothing, as llama-server does by default.
//! Concatenating every `push` and the final [`Detokenizer::finish`] gives the lossy UTF-8 of the
//! rendered bytes.

use std::sync::Arc;

use super::tokenizer::Tokenizer;

/// Turns a stream of token ids into text.
#[derive(Debug)]
pub struct Detokenizer {
    tokenizer: Arc<Tokenizer>,
    pending: Vec<u8>,
}

impl Detokenizer {
    /// A detokenizer for `tokenizer`'s ids.
    pub fn new(tokenizer: Arc<Tokenizer>) -> Detokenizer {
        Detokenizer {
            tokenizer,
            pending: Vec::new(),
        }
    }

    /// The text that token `id` completes (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if !self.tokenizer.is_control(id) {
            self.pending
                .extend_from_slice(self.tokenizer.token_bytes(id));
        }
        take_complete(&mut self.pending)
    }

    /// Whatever is left (an incomplete character, as U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Removes and returns the longest prefix of `buf` that is whole characters, replacing invalid
/// sequences with U+FFFD; an incomplete sequence at the end stays in `buf`.
fn take_complete(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&buf[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = buf.len();
                break;
            }
            Err(e) => {
                let valid = start + e.valid_up_to();
                // `from_utf8` just validated this range, so the fallback is never taken.
                out.push_str(std::str::from_utf8(&buf[start..valid]).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        start = valid + n;
                    }
                    None => {
                        start = valid;
                        break;
                    }
                }
            }
        }
    }
    buf.drain(..start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_wait_for_their_last_byte() {
        let euro = "€".as_bytes(); // e2 82 ac
        let mut buf = b"a".to_vec();
        buf.extend_from_slice(&euro[..2]);
        assert_eq!(take_complete(&mut buf), "a");
        assert_eq!(buf, &euro[..2]);
        buf.push(euro[2]);
        buf.extend_from_slice(b"b");
        assert_eq!(take_complete(&mut buf), "€b");
        assert!(buf.is_empty());
    }

    #[test]
    fn impossible_bytes_become_replacement_characters_at_once() {
        let mut buf = vec![b'x', 0xff, b'y', 0xe2, 0x28, b'z'];
        assert_eq!(take_complete(&mut buf), "x\u{fffd}y\u{fffd}(z");
        assert!(buf.is_empty());
    }
}
