//! Writing a soak into the results store: series points per sample, checkpoints, the final
//! verdict — and reading a soak back to resume it.
//!
//! Store layout of a soak run (phase `phase2-soak`):
//! - series, one point per sample, all stamped with the sample's `ts`: `vram_own_mb`,
//!   `vram_heap_used_mb`, `gpu_sysfs_used_mb` (each where present), `rss_mb`, `cpu_pct`,
//!   `tokens_per_s`, `requests_ok`, `requests_failed` (cumulative over the soak), `elapsed_s`
//!   (soak time, which maps every point to its place on the soak's time line on resume);
//! - event `soak_segment` `{segment, elapsed_start_s, resumed}` at each (re)start;
//! - per checkpoint: measurements `leak_slope_mb_per_h`, `leak_slope_ci95_lo`,
//!   `leak_slope_ci95_hi` per memory kind (tags `kind`, `verdict`, `n`, `checkpoint`,
//!   `elapsed_s`), `requests_ok`, `requests_failed`; histograms `soak.ttft`, `soak.itl`,
//!   `soak.e2e` (µs) of the requests since the previous checkpoint (merged on read); then the
//!   event `checkpoint` — written last, so a checkpoint whose event exists is complete;
//! - at the end, the same measurements tagged `final = true` and the event `soak_end`.
//!
//! Every write is its own committed transaction (the store's invariant): `kill -9` loses no
//! sample or checkpoint written before it.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::regression::{LeakEstimate, SlopeFit};
use super::sample::{Sample, SharedInterval, MEMORY_KINDS};
use crate::store::{RunId, Store, Tags};
use crate::{Error, Result};

/// The phase soak runs are stored under.
pub const SOAK_PHASE: &str = "phase2-soak";

/// Writes one sample's series points.
pub fn record_sample(store: &Store, run: RunId, s: &Sample) -> Result<()> {
    let points = [
        ("vram_own_mb", s.vram_own_mb),
        ("vram_heap_used_mb", s.vram_heap_used_mb),
        ("gpu_sysfs_used_mb", s.gpu_sysfs_used_mb),
        ("rss_mb", s.rss_mb),
        ("cpu_pct", s.cpu_pct),
        ("tokens_per_s", Some(s.tokens_per_s)),
        ("requests_ok", Some(s.requests_ok as f64)),
        ("requests_failed", Some(s.requests_failed as f64)),
        ("elapsed_s", Some(s.elapsed_s)),
    ];
    for (name, v) in points {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            store.record_series(run, name, s.ts, v)?;
        }
    }
    Ok(())
}

/// Verdicts as a JSON object `{kind: {slope, lo, hi, verdict, n}}`.
pub fn verdicts_json(leak: &std::collections::BTreeMap<String, LeakEstimate>) -> Value {
    let mut m = serde_json::Map::new();
    for (kind, e) in leak {
        m.insert(
            kind.clone(),
            json!({ "slope_mb_per_h": e.slope, "ci95_lo": e.lo, "ci95_hi": e.hi,
                    "verdict": e.verdict.as_str(), "n": e.n }),
        );
    }
    Value::Object(m)
}

/// Writes the leak and request measurements of `s`, tagged with `extra`.
fn record_measurements(store: &Store, run: RunId, s: &Sample, extra: &Tags) -> Result<()> {
    for (kind, e) in &s.leak {
        let mut tags = extra.clone();
        tags.insert("kind".into(), json!(kind));
        tags.insert("verdict".into(), json!(e.verdict.as_str()));
        tags.insert("n".into(), json!(e.n));
        tags.insert("elapsed_s".into(), json!(s.elapsed_s));
        store.record(run, "leak_slope_mb_per_h", e.slope, "MB/h", &tags)?;
        store.record(run, "leak_slope_ci95_lo", e.lo, "MB/h", &tags)?;
        store.record(run, "leak_slope_ci95_hi", e.hi, "MB/h", &tags)?;
    }
    let mut tags = extra.clone();
    tags.insert("elapsed_s".into(), json!(s.elapsed_s));
    store.record(run, "requests_ok", s.requests_ok as f64, "count", &tags)?;
    store.record(
        run,
        "requests_failed",
        s.requests_failed as f64,
        "count",
        &tags,
    )?;
    Ok(())
}

/// Writes the histograms since the previous checkpoint (taking them from `interval`).
fn record_histograms(store: &Store, run: RunId, interval: &SharedInterval) -> Result<()> {
    for (name, h) in interval.take_histograms() {
        if !h.is_empty() {
            store.record_histogram(run, &format!("soak.{name}"), "us", &h)?;
        }
    }
    Ok(())
}

/// Writes checkpoint number `index` at sample `s`: measurements, histograms, then the event.
pub fn record_checkpoint(
    store: &Store,
    run: RunId,
    index: u64,
    s: &Sample,
    interval: &SharedInterval,
) -> Result<()> {
    let mut tags = Tags::new();
    tags.insert("checkpoint".into(), json!(index));
    record_measurements(store, run, s, &tags)?;
    record_histograms(store, run, interval)?;
    let payload = json!({
        "index": index,
        "elapsed_s": s.elapsed_s,
        "samples": s.index + 1,
        "requests_ok": s.requests_ok,
        "requests_failed": s.requests_failed,
        "verdicts": verdicts_json(&s.leak),
    });
    store.record_event(run, "checkpoint", &payload)
}

/// Writes the final measurements and the `soak_end` event.
pub fn record_end(
    store: &Store,
    run: RunId,
    s: &Sample,
    interval: &SharedInterval,
    status: &str,
    reason: &str,
) -> Result<()> {
    let mut tags = Tags::new();
    tags.insert("final".into(), json!(true));
    tags.insert("status".into(), json!(status));
    record_measurements(store, run, s, &tags)?;
    record_histograms(store, run, interval)?;
    let payload = json!({
        "status": status,
        "reason": reason,
        "elapsed_s": s.elapsed_s,
        "samples": s.index + 1,
        "requests_ok": s.requests_ok,
        "requests_failed": s.requests_failed,
        "verdicts": verdicts_json(&s.leak),
    });
    store.record_event(run, "soak_end", &payload)
}

/// Writes the `soak_segment` event of a (re)start at soak time `elapsed`.
pub fn record_segment(store: &Store, run: RunId, segment: u64, elapsed: Duration) -> Result<()> {
    let payload = json!({
        "segment": segment,
        "elapsed_start_s": elapsed.as_secs_f64(),
        "resumed": segment > 0,
    });
    store.record_event(run, "soak_segment", &payload)
}

/// Where a soak run stood when it stopped, rebuilt from the store.
#[derive(Clone, Debug, Default)]
pub struct ResumeState {
    /// Soak time of the last sample.
    pub elapsed: Duration,
    /// Samples so far.
    pub samples: u64,
    /// Checkpoints so far.
    pub checkpoints: u64,
    /// Cumulative request counts at the last sample.
    pub requests_ok: u64,
    /// See `requests_ok`.
    pub requests_failed: u64,
    /// Segments so far.
    pub segments: u64,
    /// The leak fits per memory kind, one segment per earlier process lifetime.
    pub fits: HashMap<String, SlopeFit>,
}

/// Rebuilds the state of soak run `run` from its series and events; the fits use the warm-up
/// `warmup` of each segment, as the live soak does.
pub fn read_resume_state(store: &Store, run: RunId, warmup: Duration) -> Result<ResumeState> {
    let events = store.events(run)?;
    let mut seg_starts: Vec<f64> = events
        .iter()
        .filter(|e| e.kind == "soak_segment")
        .filter_map(|e| e.payload.get("elapsed_start_s").and_then(Value::as_f64))
        .collect();
    if seg_starts.is_empty() {
        return Err(Error::Invalid(format!(
            "run {run} is not a soak run (it has no soak_segment event)"
        )));
    }
    seg_starts.sort_by(f64::total_cmp);
    let checkpoints = events.iter().filter(|e| e.kind == "checkpoint").count() as u64;
    let elapsed_points = store.series(run, "elapsed_s")?;
    let at: HashMap<u64, f64> = elapsed_points
        .iter()
        .map(|p| (p.ts.to_bits(), p.value))
        .collect();
    let last_elapsed = elapsed_points.iter().map(|p| p.value).fold(0.0, f64::max);
    let last = |name: &str| -> Result<u64> {
        Ok(store
            .series(run, name)?
            .iter()
            .map(|p| p.value.max(0.0) as u64)
            .max()
            .unwrap_or(0))
    };
    let mut fits = HashMap::new();
    let warm = warmup.as_secs_f64();
    for (kind, series) in MEMORY_KINDS {
        let mut per_segment: Vec<Vec<(f64, f64)>> = vec![Vec::new(); seg_starts.len()];
        for p in store.series(run, series)? {
            let Some(&e) = at.get(&p.ts.to_bits()) else {
                continue;
            };
            let seg = seg_starts.iter().rposition(|&s| s <= e).unwrap_or(0);
            if e - seg_starts[seg] >= warm {
                per_segment[seg].push((e / 3600.0, p.value));
            }
        }
        if per_segment.iter().all(Vec::is_empty) {
            continue;
        }
        let mut fit = SlopeFit::new();
        for (i, points) in per_segment.iter().enumerate() {
            if i > 0 {
                fit.new_segment();
            }
            for &(x, y) in points {
                fit.add(x, y);
            }
        }
        fits.insert(kind.to_string(), fit);
    }
    Ok(ResumeState {
        elapsed: Duration::from_secs_f64(last_elapsed.max(0.0)),
        samples: elapsed_points.len() as u64,
        checkpoints,
        requests_ok: last("requests_ok")?,
        requests_failed: last("requests_failed")?,
        segments: seg_starts.len() as u64,
        fits,
    })
}
