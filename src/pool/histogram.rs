//! Latency histograms: HdrHistogram in microseconds with 3 significant digits (a recorded value
//! is reported within 0.1 %), their percentile summary, and their serde form.
//!
//! Percentiles are nearest-rank (see [`super::record::nearest_rank`]) over the histogram's
//! buckets, reported as the highest value equivalent to the bucket — the same answer
//! HdrHistogram's `value_at_quantile` gives, without its float rounding at integral ranks.
//! Serialized, a histogram is the hex string of its HdrHistogram V2 encoding, so stored runs can
//! be decoded, merged and re-queried.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::record::quantile_rank;

/// A fresh latency histogram (µs, 3 significant digits, auto-resizing).
pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is always a valid precision, so this cannot fail.
    let mut h = Histogram::new(3).expect("3 significant digits is valid");
    h.auto(true);
    h
}

/// Records `value` (µs), growing the histogram as needed; a value it cannot grow to (beyond
/// `u64` range arithmetic) is clamped to the highest trackable value.
pub fn record(h: &mut Histogram<u64>, value: u64) {
    // `saturating_record` would clamp without resizing, so try the resizing path first.
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// The nearest-rank `q`-quantile (0..=1) of `h`, or 0 for an empty histogram.
pub fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        return 0;
    }
    let rank = quantile_rank(h.len(), q);
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= rank {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    h.max()
}

/// Percentiles of one metric, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a µs histogram, in ms.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            min: ms(h.min()),
            p50: ms(quantile(h, 0.50)),
            p90: ms(quantile(h, 0.90)),
            p95: ms(quantile(h, 0.95)),
            p99: ms(quantile(h, 0.99)),
            p999: ms(quantile(h, 0.999)),
            max: ms(h.highest_equivalent(h.max())),
        }
    }
}

/// Serde for `Histogram<u64>` as the hex of its V2 encoding (`#[serde(with = "…")]`).
pub mod serde_v2 {
    use super::*;

    /// Writes the histogram as a hex string of its V2 encoding.
    pub fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        let mut hex = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            hex.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&hex)
    }

    /// Reads a histogram written by [`serialize`].
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let hex = <String as serde::Deserialize>::deserialize(d)?;
        decode(&hex).map_err(serde::de::Error::custom)
    }

    /// Decodes the hex of a V2 encoding.
    pub fn decode(hex: &str) -> Result<Histogram<u64>, String> {
        if hex.len() % 2 != 0 {
            return Err("histogram: odd number of hex digits".into());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("histogram: bad hex: {e}"))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram: {e:?}"))?;
        h.auto(true);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::record::nearest_rank;

    #[test]
    fn quantiles_match_exact_nearest_rank_within_precision() {
        let mut values: Vec<u64> = (0..5000u64).map(|i| (i * 7919) % 100_003 + i / 3).collect();
        let mut h = new_histogram();
        for &v in &values {
            h.record(v).unwrap();
        }
        values.sort_unstable();
        for q in [0.0, 0.07, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = nearest_rank(&values, q).unwrap();
            let got = quantile(&h, q);
            assert!(
                h.equivalent(exact, got),
                "q={q}: exact {exact}, histogram {got}"
            );
        }
    }

    #[test]
    fn v2_round_trip() {
        let mut h = new_histogram();
        for v in [0u64, 1, 17, 900, 123_456, 10_000_000] {
            h.record(v).unwrap();
        }
        #[derive(Serialize, serde::Deserialize)]
        struct Wrap(#[serde(with = "serde_v2")] Histogram<u64>);
        let json = serde_json::to_string(&Wrap(h.clone())).unwrap();
        let back: Wrap = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, h);
        assert!(serde_v2::decode("abc").is_err());
    }
}
