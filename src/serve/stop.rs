//! Stop sequences (`stop` in OpenAI requests) over streamed text: the answer ends before the
//! first occurrence of any stop string, which is not sent.
//!
//! Invariants: text is released only when no stop string can still begin inside it, so a stop
//! string split across tokens is never partly sent; what is held back is the longest tail of
//! the text seen so far that is a proper prefix of a stop string (cut at a char boundary). With
//! no stop strings every push is released whole.

/// The scanner of one answer.
#[derive(Clone, Debug, Default)]
pub struct StopScan {
    stops: Vec<String>,
    held: String,
    hit: bool,
}

/// What a push releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Text to send now.
    pub text: String,
    /// A stop string was found: `text` ends just before it and the answer is over.
    pub stopped: bool,
}

impl StopScan {
    /// A scanner for `stops` (none: everything passes). Empty strings are ignored.
    pub fn new(stops: &[String]) -> StopScan {
        StopScan {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
            hit: false,
        }
    }

    /// Adds the next piece of the answer's text. After a stop was found nothing more is
    /// released.
    pub fn push(&mut self, text: &str) -> Scanned {
        if self.hit {
            return Scanned {
                text: String::new(),
                stopped: true,
            };
        }
        self.held.push_str(text);
        // The earliest occurrence of any stop string.
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s)).min() {
            self.hit = true;
            let mut out = std::mem::take(&mut self.held);
            out.truncate(at);
            return Scanned {
                text: out,
                stopped: true,
            };
        }
        let keep = self.held_tail();
        let out = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        Scanned {
            text: out,
            stopped: false,
        }
    }

    /// The answer ended (EOS, length) with `tail` as its last text: releases the text before a
    /// stop string in it, or else everything still held back.
    pub fn end(&mut self, tail: &str) -> Scanned {
        let mut out = self.push(tail);
        if !out.stopped {
            out.text.push_str(&std::mem::take(&mut self.held));
        }
        out
    }

    /// Bytes at the end of `held` that could still begin a stop string.
    fn held_tail(&self) -> usize {
        let h = self.held.as_str();
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        (1..longest.min(h.len() + 1))
            .rev()
            .find(|&n| {
                let start = h.len() - n;
                h.is_char_boundary(start) && self.stops.iter().any(|s| s.starts_with(&h[start..]))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Scanned, StopScan};

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut s = StopScan::new(&stops);
        let mut out = String::new();
        let (last, rest) = pieces.split_last().expect("pieces");
        for p in rest {
            let Scanned { text, stopped } = s.push(p);
            out.push_str(&text);
            if stopped {
                return (out, true);
            }
        }
        let Scanned { text, stopped } = s.end(last);
        out.push_str(&text);
        (out, stopped)
    }

    /// Independent oracle: the whole text cut before the earliest occurrence of any stop.
    fn cut(stops: &[&str], whole: &str) -> (String, bool) {
        match stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| whole.find(s))
            .min()
        {
            Some(at) => (whole[..at].to_string(), true),
            None => (whole.to_string(), false),
        }
    }

    #[test]
    fn a_stop_split_across_pieces_is_never_sent() {
        let pieces = ["Hello wo", "rld, E", "ND of", " it"];
        assert_eq!(scan(&["END"], &pieces), ("Hello world, ".to_string(), true));
        assert_eq!(scan(&["world"], &pieces), ("Hello ".to_string(), true));
        // The earliest of several wins, whatever their order in the list.
        assert_eq!(
            scan(&["of", "E"], &pieces),
            ("Hello world, ".to_string(), true)
        );
        // No stop in the text: everything, once the answer ends.
        assert_eq!(scan(&["xyz"], &pieces), (pieces.concat(), false));
        assert_eq!(scan(&[], &pieces), (pieces.concat(), false));
        // A stop at the very start leaves nothing.
        assert_eq!(scan(&["Hel"], &pieces), (String::new(), true));
    }

    #[test]
    fn held_text_is_released_as_soon_as_it_cannot_begin_a_stop() {
        let stops = vec!["abc".to_string()];
        let mut s = StopScan::new(&stops);
        assert_eq!(s.push("xxa").text, "xx");
        assert_eq!(s.push("b").text, "");
        // "abd" cannot begin "abc": all of it goes.
        assert_eq!(s.push("d").text, "abd");
        assert_eq!(s.push("xa").text, "x");
        // At the end the held "a" goes out with the tail.
        assert_eq!(
            s.end("b"),
            Scanned {
                text: "ab".into(),
                stopped: false
            }
        );
    }

    #[test]
    fn multibyte_text_is_cut_at_char_boundaries() {
        // The stop shares its first byte's char with the text ("é" is two bytes).
        let pieces = ["caf", "é au lait", " é"];
        assert_eq!(scan(&["é au"], &pieces), ("caf".to_string(), true));
        assert_eq!(scan(&["éx"], &pieces), (pieces.concat(), false));
    }

    /// Every way of splitting a text into three pieces gives the oracle's answer.
    #[test]
    fn any_split_equals_cutting_the_whole_text() {
        let whole = "one two; three\nfour five; six";
        let stops_sets: [&[&str]; 4] = [&[";"], &["\n", "five"], &["two; t", "o; th"], &["six!"]];
        for stops in stops_sets {
            for i in 0..=whole.len() {
                for j in i..=whole.len() {
                    let pieces = [&whole[..i], &whole[i..j], &whole[j..]];
                    assert_eq!(
                        scan(stops, &pieces),
                        cut(stops, whole),
                        "stops {stops:?}, split at {i}, {j}"
                    );
                }
            }
        }
    }
}
