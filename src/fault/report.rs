//! [`FaultReport`]: the accounting of a fault run — every request's [`Outcome`] and reason,
//! request loss, recovery times, and failure-adjusted latency percentiles.
//!
//! Invariants: every request the pool issued has exactly one outcome, so
//! `ok + retried_ok + failed + cancelled == sent` (`sent` counts open-loop arrivals dropped at
//! the in-flight cap too; they are failures with reason `dropped`). Each failed, retried or
//! cancelled request has one reason: a malformed request that was refused is `malformed`;
//! otherwise the reason of its last failed attempt as the fault target classified it
//! (`device_lost`, `alloc_failure`, `step_timeout`, …), else the pool's error kind (`timeout`
//! when the pool's own request timeout fired). `retried_ok` carries the reason of its first
//! failure. Request loss = failed / sent; client cancellations are not losses.
//!
//! Latency: `e2e_all` holds every request that was sent and not cancelled, a failed one at its
//! time to failure (scheduled → end); `e2e_ok` and `ttft_ok` hold the successful ones only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::service::DeviceLoss;
use super::target::{FaultEvent, Journal};
use crate::pool::histogram::{new_histogram, record as record_us, Percentiles};
use crate::pool::{ErrorKind, RequestRecord};

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Completed at the first attempt.
    Ok,
    /// Completed after one or more failed attempts.
    RetriedOk,
    /// Did not complete.
    Failed,
    /// The client (or the run) cancelled it.
    Cancelled,
}

impl Outcome {
    /// `ok`, `retried_ok`, `failed`, `cancelled`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RetriedOk => "retried_ok",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One request's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestOutcome {
    /// The pool's request id.
    pub id: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed, was retried or was cancelled (`None` for `ok`).
    pub reason: Option<String>,
    /// Attempts made (0: never sent).
    pub attempts: u32,
    /// Faults injected into it.
    pub faults: Vec<&'static str>,
}

/// Requests by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub ok: u64,
    pub retried_ok: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// Everything a fault run accounted; see the module header.
#[derive(Clone, Debug, Serialize)]
pub struct FaultReport {
    /// Requests the pool issued.
    pub sent: u64,
    /// Requests by outcome.
    pub outcomes: OutcomeCounts,
    /// Failed requests by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Retried-then-completed requests by the reason of their first failure.
    pub retried_by_reason: BTreeMap<String, u64>,
    /// Cancelled requests by reason (`client_cancel`, `run_cancelled`).
    pub cancelled_by_reason: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    /// Malformed requests the target accepted (a server defect).
    pub malformed_accepted: u64,
    /// failed / sent × 100.
    pub loss_pct: f64,
    /// Every device loss and its recovery.
    pub device_losses: Vec<DeviceLoss>,
    /// E2E over every sent, not cancelled request, failures at time to failure (ms).
    pub e2e_all: Percentiles,
    /// E2E over completed requests (ms).
    pub e2e_ok: Percentiles,
    /// TTFT over completed requests (ms).
    pub ttft_ok: Percentiles,
    /// Every injected fault.
    pub events: Vec<FaultEvent>,
    /// Every request's outcome, by id.
    pub requests: Vec<RequestOutcome>,
}

/// The outcome of `record` given its journal.
fn outcome_of(record: &RequestRecord, journal: Option<&Journal>) -> (Outcome, Option<String>) {
    let last_failure = journal.and_then(|j| j.failures.last().cloned());
    match &record.error {
        None => match journal.and_then(|j| j.failures.first()) {
            Some(first) => (Outcome::RetriedOk, Some(first.clone())),
            None => (Outcome::Ok, None),
        },
        Some(e) => {
            if journal.is_some_and(|j| j.client_cancelled) {
                (Outcome::Cancelled, Some("client_cancel".into()))
            } else if e.kind == ErrorKind::Cancelled {
                (Outcome::Cancelled, Some("run_cancelled".into()))
            } else if e.kind == ErrorKind::Invalid && journal.is_some_and(|j| j.malformed.is_some())
            {
                (Outcome::Failed, Some("malformed".into()))
            } else if e.kind == ErrorKind::Timeout && !e.message.starts_with("step timeout") {
                // The pool's own request timeout: the attempt in flight never reported back.
                (Outcome::Failed, Some("timeout".into()))
            } else {
                (
                    Outcome::Failed,
                    Some(last_failure.unwrap_or(e.kind.label())),
                )
            }
        }
    }
}

impl FaultReport {
    /// Accounts `records` (every request of a run) with the fault target's `journal`, its
    /// injected `events` and the engine's `device_losses`.
    pub fn build(
        records: &[RequestRecord],
        journal: &BTreeMap<u64, Journal>,
        events: Vec<FaultEvent>,
        device_losses: Vec<DeviceLoss>,
    ) -> FaultReport {
        let mut outcomes = OutcomeCounts::default();
        let mut failed_by_reason = BTreeMap::new();
        let mut retried_by_reason = BTreeMap::new();
        let mut cancelled_by_reason = BTreeMap::new();
        let mut injected = BTreeMap::new();
        let mut malformed_accepted = 0;
        let (mut e2e_all, mut e2e_ok, mut ttft_ok) =
            (new_histogram(), new_histogram(), new_histogram());
        let mut requests = Vec::with_capacity(records.len());
        for e in &events {
            *injected.entry(e.kind.to_string()).or_insert(0) += 1;
        }
        for r in records {
            let j = journal.get(&r.id);
            let (outcome, reason) = outcome_of(r, j);
            let bump = |m: &mut BTreeMap<String, u64>| {
                *m.entry(reason.clone().unwrap_or_default()).or_insert(0) += 1;
            };
            match outcome {
                Outcome::Ok => outcomes.ok += 1,
                Outcome::RetriedOk => {
                    outcomes.retried_ok += 1;
                    bump(&mut retried_by_reason);
                }
                Outcome::Failed => {
                    outcomes.failed += 1;
                    bump(&mut failed_by_reason);
                }
                Outcome::Cancelled => {
                    outcomes.cancelled += 1;
                    bump(&mut cancelled_by_reason);
                }
            }
            if r.ok() && j.is_some_and(|j| j.malformed.is_some()) {
                malformed_accepted += 1;
            }
            let sent = r.sent_us.is_some();
            match outcome {
                Outcome::Ok | Outcome::RetriedOk => {
                    record_us(&mut e2e_all, r.e2e_us());
                    record_us(&mut e2e_ok, r.e2e_us());
                    if let Some(t) = r.ttft_us() {
                        record_us(&mut ttft_ok, t);
                    }
                }
                Outcome::Failed if sent => {
                    record_us(&mut e2e_all, r.end_us.saturating_sub(r.scheduled_us));
                }
                Outcome::Failed | Outcome::Cancelled => {}
            }
            requests.push(RequestOutcome {
                id: r.id,
                outcome,
                reason,
                attempts: j.map_or(sent as u32, |j| j.attempts),
                faults: j.map(|j| j.faults.clone()).unwrap_or_default(),
            });
        }
        requests.sort_by_key(|r| r.id);
        let sent = records.len() as u64;
        let loss_pct = if sent == 0 {
            0.0
        } else {
            outcomes.failed as f64 * 100.0 / sent as f64
        };
        FaultReport {
            sent,
            outcomes,
            failed_by_reason,
            retried_by_reason,
            cancelled_by_reason,
            injected,
            malformed_accepted,
            loss_pct,
            device_losses,
            e2e_all: Percentiles::of(&e2e_all),
            e2e_ok: Percentiles::of(&e2e_ok),
            ttft_ok: Percentiles::of(&ttft_ok),
            events,
            requests,
        }
    }

    /// Recovery times of the device losses that recovered, ms.
    pub fn recovery_ms(&self) -> Vec<f64> {
        self.device_losses
            .iter()
            .filter_map(|l| l.recovery_ms)
            .collect()
    }

    /// Whether request loss stays below `max_loss_pct`.
    pub fn passes(&self, max_loss_pct: f64) -> bool {
        self.loss_pct < max_loss_pct
    }

    /// A plain-text report: outcomes, reasons, loss, recoveries, percentiles (ms).
    pub fn table(&self) -> String {
        let o = &self.outcomes;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} requests: {} ok, {} retried_ok, {} failed, {} cancelled; request loss {:.2} %",
            self.sent, o.ok, o.retried_ok, o.failed, o.cancelled, self.loss_pct
        );
        let list = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, m) in [
            ("injected", &self.injected),
            ("failed by reason", &self.failed_by_reason),
            ("retried by reason", &self.retried_by_reason),
            ("cancelled by reason", &self.cancelled_by_reason),
        ] {
            if !m.is_empty() {
                let _ = writeln!(out, "{name}: {}", list(m));
            }
        }
        if self.malformed_accepted > 0 {
            let _ = writeln!(
                out,
                "malformed requests accepted: {}",
                self.malformed_accepted
            );
        }
        for (k, l) in self.device_losses.iter().enumerate() {
            let recovery = l
                .recovery_ms
                .map_or("not recovered".to_string(), |ms| format!("{ms:.1} ms"));
            let _ = writeln!(
                out,
                "device loss {} (generation {}, at {:.3} s): recovery {recovery}, {} failed loads{}",
                k + 1,
                l.generation,
                l.lost_s,
                l.load_failures,
                l.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" ({e})"))
            );
        }
        let _ = writeln!(
            out,
            "{:<10}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "ms", "n", "p50", "p90", "p95", "p99", "max"
        );
        for (name, p) in [
            ("e2e all", &self.e2e_all),
            ("e2e ok", &self.e2e_ok),
            ("ttft ok", &self.ttft_ok),
        ] {
            let _ = writeln!(
                out,
                "{:<10}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}",
                name, p.count, p.p50, p.p90, p.p95, p.p99, p.max
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::RequestError;

    fn rec(id: u64, error: Option<(ErrorKind, &str)>) -> RequestRecord {
        RequestRecord {
            sent_us: Some(10),
            end_us: 1000 + id,
            error: error.map(|(k, m)| RequestError::new(k, m)),
            ..RequestRecord::new(id, 0)
        }
    }

    #[test]
    fn outcomes_add_up_with_reasons() {
        let records = vec![
            rec(0, None),
            rec(1, None),
            rec(2, Some((ErrorKind::Invalid, "bad"))),
            rec(3, Some((ErrorKind::Cancelled, "the client cancelled"))),
            rec(4, Some((ErrorKind::Server, "device lost"))),
            rec(5, Some((ErrorKind::Timeout, "no complete answer"))),
            RequestRecord::unsent(6, 0, ErrorKind::Dropped, "cap"),
        ];
        let mut journal = BTreeMap::new();
        journal.insert(
            1,
            Journal {
                attempts: 2,
                failures: vec!["alloc_failure".into()],
                ..Journal::default()
            },
        );
        journal.insert(
            2,
            Journal {
                malformed: Some(super::super::Malformed::EmptyPrompt),
                attempts: 1,
                ..Journal::default()
            },
        );
        journal.insert(
            3,
            Journal {
                client_cancelled: true,
                ..Journal::default()
            },
        );
        journal.insert(
            4,
            Journal {
                attempts: 3,
                failures: vec!["device_lost".into(); 3],
                ..Journal::default()
            },
        );
        let r = FaultReport::build(&records, &journal, Vec::new(), Vec::new());
        let o = &r.outcomes;
        assert_eq!((o.ok, o.retried_ok, o.failed, o.cancelled), (1, 1, 4, 1));
        assert_eq!(o.ok + o.retried_ok + o.failed + o.cancelled, r.sent);
        assert_eq!(r.retried_by_reason["alloc_failure"], 1);
        assert_eq!(r.failed_by_reason["malformed"], 1);
        assert_eq!(r.failed_by_reason["device_lost"], 1);
        assert_eq!(r.failed_by_reason["timeout"], 1);
        assert_eq!(r.failed_by_reason["dropped"], 1);
        assert_eq!(r.cancelled_by_reason["client_cancel"], 1);
        assert!((r.loss_pct - 400.0 / 7.0).abs() < 1e-9);
        // 2 completed + 3 sent failures (the dropped one was never sent).
        assert_eq!(r.e2e_all.count, 5);
        assert_eq!(r.e2e_ok.count, 2);
    }
}
