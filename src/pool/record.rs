//! [`RequestRecord`]: everything measured about one request, and the per-request metrics and
//! SLO check derived from it.
//!
//! Times are microseconds since the run's start. Latency clocks start at `scheduled_us`, the time
//! the request *should* have been sent: in an open loop that is its arrival time even if the sender
//! was late (no coordinated omission); in a closed loop it is when the virtual user finished
//! thinking. `queue_wait` = scheduled → sent; `ttft` = scheduled → first token; `e2e` = scheduled
//! → last token; `prefill` = sent → first token; `decode` = first → last token; `tpot` = decode /
//! (tokens − 1).
//!
//! Inter-token gaps: a chunk of `n` tokens arriving `g` after the previous chunk contributes `n`
//! gaps of `g / n`; extra tokens in the first chunk contribute gaps of 0. So a request of `t`
//! tokens has exactly `t − 1` gaps (counting streamed tokens), whose sum is its decode time.

use serde::Serialize;

use super::target::{ErrorKind, RequestError};

/// Tokens that arrived together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TokenChunk {
    /// Arrival, µs since the run's start.
    pub at_us: u64,
    /// Tokens in the chunk (≥ 1).
    pub tokens: u32,
}

/// One request, from schedule to outcome. It ends in exactly one outcome: `error` is `None`
/// (completed) or says why it failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Index in the run.
    pub id: u64,
    /// When it was due to be sent.
    pub scheduled_us: u64,
    /// When it was sent; `None` if it never was (dropped at the in-flight cap).
    pub sent_us: Option<u64>,
    /// When the target accepted it (HTTP: success headers arrived).
    pub accepted_us: Option<u64>,
    /// Token arrivals in order.
    pub chunks: Vec<TokenChunk>,
    /// When it ended: done, or failed.
    pub end_us: u64,
    /// Output tokens: the target's usage count if it reported one, else the streamed count.
    pub tokens: u64,
    /// Prompt tokens, if the target reported them.
    pub prompt_tokens: Option<u64>,
    /// Why it failed, or `None` if it completed.
    pub error: Option<RequestError>,
}

impl RequestRecord {
    /// A request due at `scheduled_us`, not sent yet, without outcome so far.
    pub fn new(id: u64, scheduled_us: u64) -> RequestRecord {
        RequestRecord {
            id,
            scheduled_us,
            sent_us: None,
            accepted_us: None,
            chunks: Vec::new(),
            end_us: scheduled_us,
            tokens: 0,
            prompt_tokens: None,
            error: None,
        }
    }

    /// A record of a request that was never sent (`kind` is usually [`ErrorKind::Dropped`]).
    pub fn unsent(id: u64, scheduled_us: u64, kind: ErrorKind, message: &str) -> RequestRecord {
        RequestRecord {
            error: Some(RequestError::new(kind, message)),
            ..RequestRecord::new(id, scheduled_us)
        }
    }

    /// Whether it completed.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Drops the token chunks between the first and the last: what is left still gives
    /// `ttft_us`, `prefill_us`, `e2e_us` and the outcome, but not the inter-token gaps (an
    /// aggregator has folded those into its histograms already). For runs that must account every
    /// request (fault runs) without holding every gap of every request.
    pub fn compact(&mut self) {
        if self.chunks.len() > 2 {
            let last = self.chunks[self.chunks.len() - 1];
            self.chunks.truncate(1);
            self.chunks.push(last);
            self.chunks.shrink_to_fit();
        }
    }

    /// Tokens that arrived in chunks.
    pub fn streamed_tokens(&self) -> u64 {
        self.chunks.iter().map(|c| c.tokens as u64).sum()
    }

    /// Arrival of the first token.
    pub fn first_token_us(&self) -> Option<u64> {
        self.chunks.first().map(|c| c.at_us)
    }

    /// Arrival of the last token.
    pub fn last_token_us(&self) -> Option<u64> {
        self.chunks.last().map(|c| c.at_us)
    }

    /// Scheduled → sent.
    pub fn queue_wait_us(&self) -> Option<u64> {
        self.sent_us.map(|s| s.saturating_sub(self.scheduled_us))
    }

    /// Scheduled → first token.
    pub fn ttft_us(&self) -> Option<u64> {
        self.first_token_us()
            .map(|t| t.saturating_sub(self.scheduled_us))
    }

    /// Scheduled → last token (→ end if no token came).
    pub fn e2e_us(&self) -> u64 {
        self.last_token_us()
            .unwrap_or(self.end_us)
            .saturating_sub(self.scheduled_us)
    }

    /// Sent → first token.
    pub fn prefill_us(&self) -> Option<u64> {
        Some(self.first_token_us()?.saturating_sub(self.sent_us?))
    }

    /// First → last token.
    pub fn decode_us(&self) -> Option<u64> {
        Some(self.last_token_us()?.saturating_sub(self.first_token_us()?))
    }

    /// (E2E − TTFT) / (tokens − 1), for requests of at least two tokens.
    pub fn tpot_us(&self) -> Option<f64> {
        if self.tokens < 2 {
            return None;
        }
        Some(self.decode_us()? as f64 / (self.tokens - 1) as f64)
    }

    /// The inter-token gaps (see the module header), in µs, rounded down.
    pub fn itl_gaps_us(&self) -> Vec<u64> {
        let mut gaps = Vec::with_capacity(self.streamed_tokens().saturating_sub(1) as usize);
        let mut previous: Option<u64> = None;
        for chunk in &self.chunks {
            let n = chunk.tokens.max(1) as u64;
            match previous {
                None => gaps.extend(std::iter::repeat_n(0, n as usize - 1)),
                Some(p) => {
                    let gap = chunk.at_us.saturating_sub(p);
                    gaps.extend(std::iter::repeat_n(gap / n, n as usize));
                }
            }
            previous = Some(chunk.at_us);
        }
        gaps
    }
}

/// Service-level objectives for one request; `None` fields are not checked. A request meets the
/// SLO when it completed and every set bound holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Slo {
    /// Bound on time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Bound on the request's `itl_percentile`-th inter-token gap, ms.
    pub itl_ms: Option<f64>,
    /// Which percentile of the request's own gaps `itl_ms` bounds (e.g. 99; 100 = every gap).
    pub itl_percentile: f64,
    /// Bound on time per output token, ms.
    pub tpot_ms: Option<f64>,
    /// Bound on end-to-end latency, ms.
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// An SLO with no bounds (every completed request meets it) and ITL checked at p99.
    pub fn new() -> Slo {
        Slo {
            itl_percentile: 99.0,
            ..Slo::default()
        }
    }

    /// Whether `record` meets every bound. Errors never do; a bound on a quantity the request
    /// does not have (TTFT of a request without tokens) is a miss, except ITL and TPOT of
    /// single-token requests, which have none to violate.
    pub fn met_by(&self, record: &RequestRecord) -> bool {
        if !record.ok() {
            return false;
        }
        let within = |us: f64, ms: Option<f64>| ms.is_none_or(|ms| us <= ms * 1000.0);
        let ttft_ok = match (self.ttft_ms, record.ttft_us()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ms), Some(us)) => within(us as f64, Some(ms)),
        };
        let tpot_ok = record.tpot_us().is_none_or(|us| within(us, self.tpot_ms));
        let e2e_ok = within(record.e2e_us() as f64, self.e2e_ms);
        let itl_ok = match self.itl_ms {
            None => true,
            Some(ms) => {
                let mut gaps = record.itl_gaps_us();
                gaps.sort_unstable();
                nearest_rank(&gaps, self.itl_percentile / 100.0)
                    .is_none_or(|us| within(us as f64, Some(ms)))
            }
        };
        ttft_ok && tpot_ok && e2e_ok && itl_ok
    }
}

/// The nearest-rank `q`-quantile (0..=1) of sorted values: the smallest value with at least
/// `⌈q·n⌉` values at or below it (rank 1 for q = 0). `q·n` within 1e-9 of an integer counts as
/// that integer, so 0.07 × 100 is rank 7, not 8.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = quantile_rank(sorted.len() as u64, q);
    Some(sorted[(rank - 1) as usize])
}

/// The 1-based rank of the `q`-quantile among `n` values (see [`nearest_rank`]).
pub fn quantile_rank(n: u64, q: f64) -> u64 {
    let x = q.clamp(0.0, 1.0) * n as f64;
    let rounded = x.round();
    let rank = if (x - rounded).abs() <= 1e-9 * x.max(1.0) {
        rounded
    } else {
        x.ceil()
    };
    (rank as u64).clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(chunks: &[(u64, u32)]) -> RequestRecord {
        RequestRecord {
            id: 0,
            scheduled_us: 100,
            sent_us: Some(150),
            accepted_us: Some(160),
            chunks: chunks
                .iter()
                .map(|&(at_us, tokens)| TokenChunk { at_us, tokens })
                .collect(),
            end_us: 2000,
            tokens: chunks.iter().map(|c| c.1 as u64).sum(),
            prompt_tokens: None,
            error: None,
        }
    }

    #[test]
    fn derived_times() {
        let r = record(&[(300, 1), (400, 1), (700, 3)]);
        assert_eq!(r.queue_wait_us(), Some(50));
        assert_eq!(r.ttft_us(), Some(200));
        assert_eq!(r.prefill_us(), Some(150));
        assert_eq!(r.e2e_us(), 600);
        assert_eq!(r.decode_us(), Some(400));
        assert_eq!(r.tpot_us(), Some(100.0));
        // 5 tokens, 4 gaps summing to the decode time
        assert_eq!(r.itl_gaps_us(), vec![100, 100, 100, 100]);
        let first_multi = record(&[(300, 2), (500, 1)]);
        assert_eq!(first_multi.itl_gaps_us(), vec![0, 200]);
    }

    #[test]
    fn compact_keeps_the_derived_times_but_not_the_gaps() {
        let full = record(&[(300, 1), (400, 1), (650, 2), (700, 3)]);
        let mut c = full.clone();
        c.compact();
        assert_eq!(c.chunks.len(), 2);
        assert_eq!(c.ttft_us(), full.ttft_us());
        assert_eq!(c.prefill_us(), full.prefill_us());
        assert_eq!(c.e2e_us(), full.e2e_us());
        assert_eq!(c.queue_wait_us(), full.queue_wait_us());
        assert_eq!(c.tokens, full.tokens);
        let short = record(&[(300, 1), (400, 1)]);
        let mut s = short.clone();
        s.compact();
        assert_eq!(s, short);
    }

    #[test]
    fn slo_checks() {
        let r = record(&[(300, 1), (400, 1), (1100, 1)]); // gaps 100, 700; ttft 200 µs
        let mut slo = Slo::new();
        assert!(slo.met_by(&r));
        slo.ttft_ms = Some(0.2);
        assert!(slo.met_by(&r));
        slo.ttft_ms = Some(0.199);
        assert!(!slo.met_by(&r));
        slo.ttft_ms = None;
        slo.itl_ms = Some(0.5);
        slo.itl_percentile = 50.0;
        assert!(slo.met_by(&r));
        slo.itl_percentile = 100.0;
        assert!(!slo.met_by(&r));
        let mut failed = r.clone();
        failed.error = Some(RequestError::new(ErrorKind::Timeout, "t"));
        assert!(!Slo::new().met_by(&failed));
    }

    #[test]
    fn ranks() {
        assert_eq!(quantile_rank(100, 0.07), 7);
        assert_eq!(quantile_rank(100, 0.071), 8);
        assert_eq!(quantile_rank(10, 0.0), 1);
        assert_eq!(quantile_rank(10, 1.0), 10);
        assert_eq!(quantile_rank(1000, 0.999), 999);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(nearest_rank::<u64>(&[], 0.5), None);
    }
}
