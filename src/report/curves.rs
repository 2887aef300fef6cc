//! The plots the phase documents use, built from plain measurements.
//!
//! Each builder has a `*_spec` form returning the [`PlotSpec`] (to adjust size or labels before
//! drawing) and a form that writes `<out>.svg` and `<out>.png` directly. Units are fixed here so
//! every document labels its axes the same way: VRAM in MiB, latency in ms, throughput in tokens/s,
//! soak time in hours.

use std::path::{Path, PathBuf};

use super::num;
use super::plot::write_plot;
use super::spec::{PlotKind, PlotSpec, Series};
use crate::Result;

/// One quantization variant on the performance curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// Variant name, drawn next to its bubble (e.g. "Q4_K_M").
    pub variant: String,
    /// VRAM the loaded model uses, MiB.
    pub vram_mib: f64,
    /// Decode throughput, tokens/s.
    pub tg_tps: f64,
    /// 95th percentile of decode time per token, ms.
    pub ms_p95: f64,
}

/// Phase 1's curve: decode speed against VRAM, one bubble per variant whose area is its p95
/// ms/token, labelled "variant · p95 ms".
pub fn performance_curve_spec(points: &[CurvePoint]) -> PlotSpec {
    let series = Series::new(
        "variants",
        points.iter().map(|p| (p.vram_mib, p.tg_tps)).collect(),
    )
    .with_labels(
        points
            .iter()
            .map(|p| format!("{} · {} ms", p.variant, num::significant(p.ms_p95, 3)))
            .collect(),
    );
    PlotSpec::new(
        "Performance curve: decode speed vs VRAM",
        "VRAM (MiB)",
        "decode (tokens/s)",
        PlotKind::Bubble {
            sizes: vec![points.iter().map(|p| p.ms_p95).collect()],
            size_label: "p95 decode latency (ms/token)".to_string(),
        },
    )
    .with_series(series)
}

/// Writes [`performance_curve_spec`] to `<out>.svg` and `<out>.png`.
pub fn performance_curve(points: &[CurvePoint], out: &Path) -> Result<(PathBuf, PathBuf)> {
    write_plot(&performance_curve_spec(points), out)
}

/// P50/P95/P99 of a latency `metric` (e.g. "time to first token", "inter-token latency") in ms
/// against the number of concurrent streams, three lines. `rows` are
/// `(concurrency, p50, p95, p99)` in any order.
pub fn latency_vs_concurrency_spec(metric: &str, rows: &[(u32, f64, f64, f64)]) -> PlotSpec {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.0);
    let line = |name: &str, pick: fn(&(u32, f64, f64, f64)) -> f64| {
        Series::new(
            name,
            rows.iter().map(|r| (f64::from(r.0), pick(r))).collect(),
        )
    };
    PlotSpec::new(
        format!("{} vs concurrency", capitalized(metric)),
        "concurrent streams",
        format!("{metric} (ms)"),
        PlotKind::Line,
    )
    .with_series(line("P50", |r| r.1))
    .with_series(line("P95", |r| r.2))
    .with_series(line("P99", |r| r.3))
}

/// Writes [`latency_vs_concurrency_spec`] to `<out>.svg` and `<out>.png`.
pub fn latency_vs_concurrency(
    metric: &str,
    rows: &[(u32, f64, f64, f64)],
    out: &Path,
) -> Result<(PathBuf, PathBuf)> {
    write_plot(&latency_vs_concurrency_spec(metric, rows), out)
}

/// Aggregate tokens/s against concurrent streams, with the ideal linear scaling from the lowest
/// measured concurrency as a dashed line and each point labelled with its scaling efficiency
/// (measured / ideal). `rows` are `(concurrency, aggregate tokens/s)` in any order.
pub fn throughput_vs_concurrency_spec(rows: &[(u32, f64)]) -> PlotSpec {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.0);
    let mut spec = PlotSpec::new(
        "Aggregate throughput vs concurrency",
        "concurrent streams",
        "aggregate decode (tokens/s)",
        PlotKind::Line,
    );
    let base = rows.first().filter(|b| b.0 > 0).copied();
    let ideal = |c: u32| base.map(|(c0, t0)| t0 * f64::from(c) / f64::from(c0));
    let labels = rows
        .iter()
        .map(|&(c, t)| match ideal(c) {
            Some(i) if i > 0.0 && rows.len() > 1 => format!("{} %", num::fixed(100.0 * t / i, 0)),
            _ => String::new(),
        })
        .collect();
    spec.series.push(
        Series::new(
            "measured",
            rows.iter().map(|&(c, t)| (f64::from(c), t)).collect(),
        )
        .with_labels(labels),
    );
    if let (Some((c0, _)), Some(&(c1, _))) = (base, rows.last()) {
        if c1 > c0 {
            let pts = [c0, c1]
                .iter()
                .filter_map(|&c| ideal(c).map(|t| (f64::from(c), t)))
                .collect();
            spec.series
                .push(Series::new(format!("linear scaling from {c0}"), pts).dashed());
        }
    }
    spec
}

/// Writes [`throughput_vs_concurrency_spec`] to `<out>.svg` and `<out>.png`.
pub fn throughput_vs_concurrency(rows: &[(u32, f64)], out: &Path) -> Result<(PathBuf, PathBuf)> {
    write_plot(&throughput_vs_concurrency_spec(rows), out)
}

/// Soak VRAM (MiB) over time (hours) with the fitted leak line `vram = slope * t + intercept`
/// drawn dashed over the sampled time span and named with its slope in MiB/h.
pub fn timeseries_with_fit_spec(samples: &[(f64, f64)], fit: Option<(f64, f64)>) -> PlotSpec {
    let mut spec = PlotSpec::new("VRAM during soak", "time (h)", "VRAM (MiB)", PlotKind::Line)
        .with_series(Series::new("VRAM used", samples.to_vec()));
    let span = samples
        .iter()
        .map(|s| s.0)
        .fold(None, |acc: Option<(f64, f64)>, t| {
            Some(acc.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
        });
    if let (Some((slope, intercept)), Some((t0, t1))) = (fit, span) {
        let name = format!("fit: {} MiB/h", signed(slope, 2));
        spec.series.push(
            Series::new(
                name,
                vec![(t0, slope * t0 + intercept), (t1, slope * t1 + intercept)],
            )
            .dashed(),
        );
    }
    spec
}

/// Writes [`timeseries_with_fit_spec`] to `<out>.svg` and `<out>.png`.
pub fn timeseries_with_fit(
    samples: &[(f64, f64)],
    fit: Option<(f64, f64)>,
    out: &Path,
) -> Result<(PathBuf, PathBuf)> {
    write_plot(&timeseries_with_fit_spec(samples, fit), out)
}

fn signed(v: f64, decimals: usize) -> String {
    let s = num::fixed(v, decimals);
    if v.is_finite() && !s.starts_with('-') {
        format!("+{s}")
    } else {
        s
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_labels_are_scaling_efficiency() {
        let spec = throughput_vs_concurrency_spec(&[(4, 300.0), (1, 100.0), (2, 180.0)]);
        let measured = &spec.series[0];
        assert_eq!(
            measured.points,
            vec![(1.0, 100.0), (2.0, 180.0), (4.0, 300.0)]
        );
        let labels = measured.labels.as_ref().unwrap();
        assert_eq!(labels, &["100 %", "90 %", "75 %"]);
        let ideal = &spec.series[1];
        assert!(ideal.dashed);
        assert_eq!(ideal.points, vec![(1.0, 100.0), (4.0, 400.0)]);
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn fit_line_spans_the_samples_and_names_its_slope() {
        let spec = timeseries_with_fit_spec(&[(0.5, 100.0), (2.0, 103.0)], Some((2.0, 99.0)));
        assert_eq!(spec.series[1].name, "fit: +2.00 MiB/h");
        assert_eq!(spec.series[1].points, vec![(0.5, 100.0), (2.0, 103.0)]);
        // No samples: no fit line (there is no span to draw it over), and still a valid spec.
        let spec = timeseries_with_fit_spec(&[], Some((1.0, 0.0)));
        assert_eq!(spec.series.len(), 1);
        assert!(spec.validate().is_ok() && spec.is_empty());
    }

    #[test]
    fn latency_lines_are_sorted_by_concurrency() {
        let spec = latency_vs_concurrency_spec(
            "time to first token",
            &[(8, 30.0, 50.0, 70.0), (1, 10.0, 12.0, 15.0)],
        );
        assert_eq!(spec.title, "Time to first token vs concurrency");
        assert_eq!(spec.y_label, "time to first token (ms)");
        assert_eq!(spec.series[2].points, vec![(1.0, 15.0), (8.0, 70.0)]);
    }

    #[test]
    fn curve_labels_carry_variant_and_p95() {
        let spec = performance_curve_spec(&[CurvePoint {
            variant: "Q4_K_M".into(),
            vram_mib: 105.0,
            tg_tps: 300.0,
            ms_p95: 3.456,
        }]);
        assert_eq!(
            spec.series[0].labels.as_ref().unwrap()[0],
            "Q4_K_M · 3.46 ms"
        );
        assert!(spec.validate().is_ok());
    }
}
