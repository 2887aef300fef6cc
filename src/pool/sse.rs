//! An incremental parser of server-sent events (the WHATWG `text/event-stream` format), fed with
//! the body's bytes as they arrive.
//!
//! Invariants: the events produced do not depend on how the byte stream is split into chunks
//! (a line ending `\r\n` split between two chunks is one line ending); lines end in `\n`, `\r\n`
//! or `\r`; `:`-lines are comments (keep-alives) and are skipped; an event is dispatched at a
//! blank line, with its `data:` lines joined by `\n`; a leading UTF-8 byte-order mark is dropped.
//! At the end of the stream a final event that lacks its blank line is still dispatched (servers
//! that close right after the last `data:` line are common; the standard would drop it).

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// Incremental SSE parser; see the module header.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read, without its terminator.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: an `\n` starting the next one belongs to that line end.
    skip_lf: bool,
    /// No byte seen yet (a byte-order mark may follow).
    at_start: bool,
    /// Data of the event being assembled, each line followed by `\n`.
    data: String,
    /// Whether any `data:` line was seen for the event being assembled.
    has_data: bool,
    event: Option<String>,
    /// Comment lines seen (keep-alives), for diagnostics.
    comments: u64,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser {
            at_start: true,
            ..SseParser::default()
        }
    }

    /// Comment lines seen so far.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Feeds the next bytes of the stream and appends the events they complete to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        if self.at_start && !bytes.is_empty() {
            // The BOM may itself be split across chunks: wait for three bytes.
            self.line.extend_from_slice(bytes);
            if self.line.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.line) {
                return;
            }
            self.at_start = false;
            let buffered = std::mem::take(&mut self.line);
            let rest = buffered.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffered);
            self.feed(rest, out);
            return;
        }
        if self.skip_lf {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
            if !bytes.is_empty() {
                self.skip_lf = false;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
            let crlf = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if crlf {
                if bytes.is_empty() {
                    self.skip_lf = true;
                } else if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
            }
        }
        self.line.extend_from_slice(bytes);
    }

    /// Ends the stream: an unterminated last line is processed and a pending event dispatched.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.dispatch(out);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields do not matter to a load generator
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last line
        out.push(SseEvent { event, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with every feature: BOM, comments, CRLF / CR / LF endings, multi-line data, an
    /// event name, an id, a field without colon, a data line without space, multi-byte UTF-8,
    /// blank lines without data, and a last event without its blank line.
    const STREAM: &[u8] = "\u{feff}: keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":\"é✓\"}\n\nevent: msg\rid: 7\rdata: line1\rdata: line2\r\r\n\n: ping\n\ndata\n\ndata: [DONE]".as_bytes();

    fn expected() -> Vec<SseEvent> {
        let ev = |event: Option<&str>, data: &str| SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        };
        vec![
            ev(None, "{\"a\":1}"),
            ev(None, "{\"b\":\"é✓\"}"),
            ev(Some("msg"), "line1\nline2"),
            ev(None, ""),
            ev(None, "[DONE]"),
        ]
    }

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn whole_stream() {
        assert_eq!(parse_pieces(&[STREAM]), expected());
    }

    #[test]
    fn split_at_every_byte_offset() {
        for i in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(parse_pieces(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn split_at_every_pair_of_offsets() {
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let pieces = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(parse_pieces(&pieces), expected(), "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_pieces(&pieces), expected());
    }

    #[test]
    fn comments_are_counted_and_skipped() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b": a\n: b\n\n", &mut out);
        parser.finish(&mut out);
        assert!(out.is_empty());
        assert_eq!(parser.comments(), 2);
    }
}
