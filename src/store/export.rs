//! Exporting runs as JSON, CSV or Markdown.
//!
//! - JSON: `{"schema_version", "exported_at", "runs": [{"run", "measurements", "histograms",
//!   "series", "events"}]}` — every measurement row; histograms as percentile summaries; series as
//!   summaries (a 48-hour soak holds too many points for a report); all events.
//! - CSV: one row per measurement (`stat` = `value`) and one per histogram statistic (`count`,
//!   `mean`, `p50`, `p90`, `p95`, `p99`, `p99.9`, `max`), RFC 4180 quoting.
//! - Markdown: per run, a provenance table, measurements grouped by name (mean ± sd when repeated),
//!   histogram percentiles, series summaries and events.

use std::str::FromStr;

use serde::Serialize;
use serde_json::{json, Value};

use super::clock::{iso8601, now};
use super::compare::{fmt_num, md_escape};
use super::histogram::HistogramSummary;
use super::run::{Event, Measurement, Run, RunId};
use super::stats::Summary;
use super::{Store, SCHEMA_VERSION};
use crate::{Error, Result};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON document.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// Markdown tables.
    Markdown,
}

impl FromStr for ExportFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ExportFormat::Json),
            "csv" => Ok(ExportFormat::Csv),
            "md" | "markdown" => Ok(ExportFormat::Markdown),
            _ => Err(Error::Invalid(format!(
                "export format: expected json, csv or md, got '{s}'"
            ))),
        }
    }
}

/// A series reduced to a summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SeriesSummary {
    name: String,
    points: usize,
    first_ts: f64,
    last_ts: f64,
    min: f64,
    max: f64,
    mean: f64,
}

/// Everything exported about one run.
struct RunExport {
    run: Run,
    measurements: Vec<Measurement>,
    histograms: Vec<HistogramSummary>,
    series: Vec<SeriesSummary>,
    events: Vec<Event>,
}

fn gather(store: &Store, id: RunId) -> Result<RunExport> {
    let run = store.run(id)?;
    let measurements = store.measurements(id)?;
    let mut histograms = Vec::new();
    for (name, unit) in store.histogram_names(id)? {
        if let Some(h) = store.histogram(id, &name)? {
            histograms.push(HistogramSummary::of(&name, &unit, &h));
        }
    }
    let mut series = Vec::new();
    for name in store.series_names(id)? {
        let points = store.series(id, &name)?;
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            continue;
        };
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        series.push(SeriesSummary {
            name,
            points: points.len(),
            first_ts: first.ts,
            last_ts: last.ts,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean: values.iter().sum::<f64>() / values.len() as f64,
        });
    }
    let events = store.events(id)?;
    Ok(RunExport {
        run,
        measurements,
        histograms,
        series,
        events,
    })
}

/// Renders `runs` in `format`.
pub fn export(store: &Store, runs: &[RunId], format: ExportFormat) -> Result<String> {
    let gathered = runs
        .iter()
        .map(|&id| gather(store, id))
        .collect::<Result<Vec<_>>>()?;
    Ok(match format {
        ExportFormat::Json => to_json(&gathered),
        ExportFormat::Csv => to_csv(&gathered),
        ExportFormat::Markdown => to_markdown(&gathered),
    })
}

fn to_json(runs: &[RunExport]) -> String {
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut run = serde_json::to_value(&r.run).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut run {
                m.insert("started_at_utc".into(), iso8601(r.run.started_at).into());
                m.insert(
                    "ended_at_utc".into(),
                    r.run.ended_at.map(iso8601).map_or(Value::Null, Value::from),
                );
            }
            json!({
                "run": run,
                "measurements": r.measurements,
                "histograms": r.histograms,
                "series": r.series,
                "events": r.events,
            })
        })
        .collect();
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "exported_at": iso8601(now()),
        "runs": runs,
    });
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The CSV header.
pub(crate) const CSV_HEADER: &str =
    "run_id,phase,run_name,variant,metric,stat,value,unit,config_generation,ts_utc,tags";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn to_csv(runs: &[RunExport]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in runs {
        let run = &r.run;
        let mut row = |metric: &str,
                       stat: &str,
                       value: String,
                       unit: &str,
                       generation: String,
                       ts: String,
                       tags: String| {
            let fields = [
                run.id.to_string(),
                run.phase.clone(),
                run.name.clone(),
                run.variant.clone().unwrap_or_default(),
                metric.to_string(),
                stat.to_string(),
                value,
                unit.to_string(),
                generation,
                ts,
                tags,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out += &line.join(",");
            out.push('\n');
        };
        for m in &r.measurements {
            row(
                &m.name,
                "value",
                m.value.to_string(),
                &m.unit,
                m.config_generation.to_string(),
                iso8601(m.ts),
                Value::Object(m.tags.clone()).to_string(),
            );
        }
        for h in &r.histograms {
            let stats = [("count", h.count as f64), ("mean", h.mean)]
                .into_iter()
                .chain(h.percentiles().map(|(l, v)| (l, v as f64)));
            for (stat, value) in stats {
                row(
                    &h.name,
                    stat,
                    value.to_string(),
                    &h.unit,
                    String::new(),
                    String::new(),
                    String::new(),
                );
            }
        }
    }
    out
}

fn to_markdown(runs: &[RunExport]) -> String {
    let mut s = String::new();
    for r in runs {
        let run = &r.run;
        s += &format!(
            "## Run {}: {} / {} ({})\n\n",
            run.id,
            md_escape(&run.phase),
            md_escape(&run.name),
            run.status
        );
        s += "| field | value |\n|---|---|\n";
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "—".into());
        let fields = [
            (
                "rawrxd",
                format!("{} ({})", run.rawrxd_version, run.git_commit),
            ),
            ("host", run.host.clone()),
            ("device", opt(&run.device)),
            ("driver", opt(&run.driver)),
            ("model", opt(&run.model_path)),
            ("model sha256", opt(&run.model_sha256)),
            ("variant", opt(&run.variant)),
            ("params", run.params.to_string()),
            ("config generation", run.config_generation.to_string()),
            ("started", iso8601(run.started_at)),
            (
                "ended",
                run.ended_at.map(iso8601).unwrap_or_else(|| "—".into()),
            ),
            ("error", opt(&run.error)),
        ];
        for (k, v) in fields {
            s += &format!("| {k} | {} |\n", md_escape(&v));
        }
        if !r.measurements.is_empty() {
            s += "\n### Measurements\n\n| metric | value | sd | n | unit | generation |\n";
            s += "|---|---|---|---|---|---|\n";
            let mut order: Vec<&str> = Vec::new();
            for m in &r.measurements {
                if !order.contains(&m.name.as_str()) {
                    order.push(&m.name);
                }
            }
            for name in order {
                let group: Vec<&Measurement> =
                    r.measurements.iter().filter(|m| m.name == name).collect();
                let values: Vec<f64> = group.iter().map(|m| m.value).collect();
                let Some(sum) = Summary::of(&values) else {
                    continue;
                };
                let mut gens: Vec<i64> = group.iter().map(|m| m.config_generation).collect();
                gens.dedup();
                let gens: Vec<String> = gens.iter().map(i64::to_string).collect();
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    md_escape(name),
                    fmt_num(sum.mean),
                    if sum.n > 1 {
                        fmt_num(sum.sd)
                    } else {
                        "—".into()
                    },
                    sum.n,
                    md_escape(&group[0].unit),
                    gens.join(", ")
                );
            }
        }
        if !r.histograms.is_empty() {
            s += "\n### Histograms\n\n";
            s += "| metric | unit | count | mean | p50 | p90 | p95 | p99 | p99.9 | max |\n";
            s += "|---|---|---|---|---|---|---|---|---|---|\n";
            for h in &r.histograms {
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    md_escape(&h.name),
                    md_escape(&h.unit),
                    h.count,
                    fmt_num(h.mean),
                    h.p50,
                    h.p90,
                    h.p95,
                    h.p99,
                    h.p999,
                    h.max
                );
            }
        }
        if !r.series.is_empty() {
            s += "\n### Series\n\n| series | points | from | to | min | mean | max |\n";
            s += "|---|---|---|---|---|---|---|\n";
            for x in &r.series {
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} |\n",
                    md_escape(&x.name),
                    x.points,
                    iso8601(x.first_ts),
                    iso8601(x.last_ts),
                    fmt_num(x.min),
                    fmt_num(x.mean),
                    fmt_num(x.max)
                );
            }
        }
        if !r.events.is_empty() {
            s += "\n### Events\n\n| time | kind | payload |\n|---|---|---|\n";
            for e in &r.events {
                s += &format!(
                    "| {} | {} | {} |\n",
                    iso8601(e.ts),
                    md_escape(&e.kind),
                    md_escape(&e.payload.to_string())
                );
            }
        }
        s.push('\n');
    }
    s
}
