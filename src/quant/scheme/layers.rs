//! Layer selections of scheme rules: `"0-3"`, `"28-"`, `"5"`, `"0-1,30-"`, or a Lua list of
//! indices `{0, 1, 31}`.
//!
//! Invariant: a selection is a list of inclusive ranges whose open end (`"28-"`) is resolved
//! against the model's layer count only when matching, so one scheme fits models of any depth.

use std::fmt;

/// A set of layer indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSet {
    /// Inclusive `(first, last)` ranges; `last = None` means "to the last layer".
    ranges: Vec<(usize, Option<usize>)>,
}

impl LayerSet {
    /// Parses `"0-3"`, `"28-"`, `"5"` and comma-separated lists of those.
    pub fn parse(spec: &str) -> Result<LayerSet, String> {
        let mut ranges = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let bad = || format!("bad layer range '{part}' in \"{spec}\" (expected N, N-M or N-)");
            let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
            let range = match part.split_once('-') {
                None => {
                    let n = num(part)?;
                    (n, Some(n))
                }
                Some((a, "")) => (num(a)?, None),
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if b < a {
                        return Err(format!("layer range '{part}' ends before it starts"));
                    }
                    (a, Some(b))
                }
            };
            ranges.push(range);
        }
        Ok(LayerSet { ranges })
    }

    /// The set of exactly these layers.
    pub fn from_list(layers: &[usize]) -> LayerSet {
        LayerSet {
            ranges: layers.iter().map(|&l| (l, Some(l))).collect(),
        }
    }

    /// Whether `layer` is selected in a model of `n_layer` layers.
    pub fn contains(&self, layer: usize, n_layer: usize) -> bool {
        layer < n_layer
            && self
                .ranges
                .iter()
                .any(|&(a, b)| layer >= a && b.is_none_or(|b| layer <= b))
    }
}

impl fmt::Display for LayerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|&(a, b)| match b {
                Some(b) if b == a => a.to_string(),
                Some(b) => format!("{a}-{b}"),
                None => format!("{a}-"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_open_ends_and_lists() {
        let s = LayerSet::parse("0-3").unwrap();
        assert!(s.contains(0, 30) && s.contains(3, 30) && !s.contains(4, 30));
        let s = LayerSet::parse("28-").unwrap();
        assert!(!s.contains(27, 30) && s.contains(29, 30) && !s.contains(30, 30));
        let s = LayerSet::parse("1, 5-6,9-").unwrap();
        let got: Vec<usize> = (0..12).filter(|&l| s.contains(l, 12)).collect();
        assert_eq!(got, [1, 5, 6, 9, 10, 11]);
        assert_eq!(s.to_string(), "1,5-6,9-");
        let s = LayerSet::from_list(&[0, 31]);
        assert!(s.contains(31, 32) && !s.contains(30, 32));
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(LayerSet::parse("a-3").is_err());
        assert!(LayerSet::parse("5-2").is_err());
        assert!(LayerSet::parse("").is_err());
        assert!(LayerSet::parse("-3").is_err());
    }
}
