//! How one series is drawn: markers, lines, bubbles, and its sample in the legend.
//!
//! Each series gets a colour and a marker shape by its index (colour alone is not enough in
//! print or for colour-blind readers). Bubble area, not radius, is proportional to size. Dense
//! lines are thinned per pixel column before drawing (same pixels, far smaller SVG) and drawn one
//! pixel wide, because plotters' wide strokes break into specks on sub-pixel segments.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::spec::{PlotKind, PlotSpec, Series};
use super::style::{err, series_color, Metrics};
use crate::Result;

/// A line series with more points than this is drawn without markers (a soak has thousands).
const MAX_MARKED_POINTS: usize = 60;

/// Bubble radius in pixels for each point: area proportional to size, between `min_r` and `max_r`.
fn bubble_radii(sizes: &[f64], max_size: f64, min_r: f64, max_r: f64) -> Vec<i32> {
    sizes
        .iter()
        .map(|&s| {
            let f = if max_size > 0.0 {
                (s / max_size).sqrt()
            } else {
                0.0
            };
            (min_r + (max_r - min_r) * f).round() as i32
        })
        .collect()
}

/// Marker radius in pixels of every point, per series (bubbles by size, others fixed).
pub(crate) fn marker_radii(spec: &PlotSpec, m: &Metrics) -> Vec<Vec<i32>> {
    let bubble_max = match &spec.kind {
        PlotKind::Bubble { sizes, .. } => sizes.iter().flatten().copied().fold(0.0, f64::max),
        _ => 0.0,
    };
    spec.series
        .iter()
        .enumerate()
        .map(|(s, series)| match &spec.kind {
            PlotKind::Bubble { sizes, .. } if !series.dashed => bubble_radii(
                &sizes[s],
                bubble_max,
                f64::from(m.marker),
                f64::from(m.px(30.0)),
            ),
            _ => vec![m.marker; series.points.len()],
        })
        .collect()
}

/// Draws marker `shape` (cycled per series) of half-size `r` at each of `pts`, on a chart's
/// plotting area (data coordinates) or on the root (pixels) alike.
fn draw_markers<DB, CT>(
    area: &DrawingArea<DB, CT>,
    shape: usize,
    pts: impl Iterator<Item = CT::From>,
    r: i32,
    style: ShapeStyle,
) -> Result<()>
where
    DB: DrawingBackend,
    CT: CoordTranslate,
{
    let cross = style.stroke_width(style.stroke_width.max(2));
    for at in pts {
        match shape % 4 {
            0 => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), r, style))),
            1 => area.draw(&(EmptyElement::at(at) + TriangleMarker::new((0, 0), r + 1, style))),
            2 => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-r, -r), (r, r)], style))),
            _ => area.draw(&(EmptyElement::at(at) + Cross::new((0, 0), r, cross))),
        }
        .map_err(err)?;
    }
    Ok(())
}

/// Thins a dense polyline to at most four points per pixel column (first, lowest, highest,
/// last, in input order: the "M4" reduction), which draws the same pixels. `col` maps a point to
/// its pixel column; points must come in non-decreasing column order.
pub(crate) fn decimate(points: &[(f64, f64)], col: impl Fn(&(f64, f64)) -> i32) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let c = col(&points[i]);
        let mut j = i;
        while j < points.len() && col(&points[j]) == c {
            j += 1;
        }
        let group = &points[i..j];
        let lowest = (0..group.len()).fold(0, |a, k| if group[k].1 < group[a].1 { k } else { a });
        let highest = (0..group.len()).fold(0, |a, k| if group[k].1 > group[a].1 { k } else { a });
        let mut keep = [0, lowest, highest, group.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for k in keep {
            if last != Some(k) {
                out.push(group[k]);
                last = Some(k);
            }
        }
        i = j;
    }
    out
}

/// Pixels every few pixels along a polyline, ends included.
pub(crate) fn sample_polyline(px: &[(i32, i32)], step: i32, out: &mut Vec<(i32, i32)>) {
    if let Some(&first) = px.first() {
        out.push(first);
    }
    for w in px.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = (b.0 - a.0).abs().max((b.1 - a.1).abs());
        let n = (len / step.max(1)).max(1);
        for k in 1..=n {
            let t = f64::from(k) / f64::from(n);
            out.push((
                a.0 + (f64::from(b.0 - a.0) * t).round() as i32,
                a.1 + (f64::from(b.1 - a.1) * t).round() as i32,
            ));
        }
    }
}

pub(crate) type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

#[allow(clippy::too_many_arguments)] // private helper of draw_chart
pub(crate) fn draw_series<DB, X, Y>(
    chart: &mut Chart<'_, DB, X, Y>,
    spec: &PlotSpec,
    m: &Metrics,
    s: usize,
    series: &Series,
    drawn: &[(f64, f64)],
    radii: &[i32],
    plot_w: i32,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let color = series_color(s);
    // plotters draws wide strokes as polygons, which break up into specks on segments shorter
    // than a few pixels; dense lines are drawn one pixel wide instead.
    let dense = drawn.len() as i32 * 3 > plot_w;
    let line = color.stroke_width(if dense { 1 } else { m.stroke });
    let pts = drawn.iter().copied();
    if series.dashed {
        chart
            .draw_series(DashedLineSeries::new(pts, m.px(10.0), m.px(6.0), line))
            .map_err(err)?;
        return Ok(());
    }
    match &spec.kind {
        PlotKind::Line => {
            chart
                .draw_series(LineSeries::new(pts.clone(), line))
                .map_err(err)?;
            if series.points.len() <= MAX_MARKED_POINTS && drawn.len() == series.points.len() {
                draw_markers(chart.plotting_area(), s, pts, m.marker, color.filled())?;
            }
        }
        PlotKind::Scatter => {
            draw_markers(chart.plotting_area(), s, pts, m.marker, color.filled())?;
        }
        PlotKind::Bubble { .. } => {
            // Largest first so small bubbles stay visible on top of big ones.
            let mut order: Vec<usize> = (0..series.points.len()).collect();
            order.sort_by(|&a, &b| radii[b].cmp(&radii[a]));
            chart
                .draw_series(
                    order.iter().map(|&i| {
                        Circle::new(series.points[i], radii[i], color.mix(0.45).filled())
                    }),
                )
                .map_err(err)?;
            chart
                .draw_series(order.iter().map(|&i| {
                    Circle::new(
                        series.points[i],
                        radii[i],
                        color.stroke_width(m.stroke.max(1)),
                    )
                }))
                .map_err(err)?;
        }
    }
    Ok(())
}

pub(crate) fn legend_sample<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &PlotSpec,
    m: &Metrics,
    s: usize,
    series: &Series,
    (x0, cy): (i32, i32),
    w: i32,
) -> Result<()> {
    let color = series_color(s);
    let line = color.stroke_width(m.stroke);
    let mid = (x0 + w / 2, cy);
    if series.dashed {
        let dash = w * 3 / 8;
        root.draw(&PathElement::new(vec![(x0, cy), (x0 + dash, cy)], line))
            .map_err(err)?;
        root.draw(&PathElement::new(
            vec![(x0 + w - dash, cy), (x0 + w, cy)],
            line,
        ))
        .map_err(err)?;
        return Ok(());
    }
    match spec.kind {
        PlotKind::Line => {
            root.draw(&PathElement::new(vec![(x0, cy), (x0 + w, cy)], line))
                .map_err(err)?;
            if series.points.len() <= MAX_MARKED_POINTS {
                draw_markers(root, s, std::iter::once(mid), m.marker, color.filled())?;
            }
        }
        PlotKind::Scatter => {
            draw_markers(root, s, std::iter::once(mid), m.marker, color.filled())?;
        }
        PlotKind::Bubble { .. } => {
            let r = m.px(7.0);
            root.draw(&Circle::new(mid, r, color.mix(0.45).filled()))
                .map_err(err)?;
            root.draw(&Circle::new(mid, r, color.stroke_width(m.stroke.max(1))))
                .map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bubble_area_is_proportional_to_size() {
        let r = bubble_radii(&[0.0, 25.0, 100.0], 100.0, 0.0, 20.0);
        assert_eq!(r, vec![0, 10, 20]);
        let r = bubble_radii(&[0.0, 0.0], 0.0, 4.0, 20.0);
        assert_eq!(r, vec![4, 4]);
    }

    #[test]
    fn decimation_keeps_first_extremes_and_last_per_column() {
        // Columns: x / 10. Column 0 holds five points, column 1 one.
        let pts = [
            (0.0, 5.0),
            (1.0, 9.0),
            (2.0, 1.0),
            (3.0, 4.0),
            (4.0, 3.0),
            (10.0, 7.0),
        ];
        let got = decimate(&pts, |p| (p.0 / 10.0) as i32);
        assert_eq!(
            got,
            vec![(0.0, 5.0), (1.0, 9.0), (2.0, 1.0), (4.0, 3.0), (10.0, 7.0)]
        );
    }

    #[test]
    fn polyline_samples_cover_long_segments() {
        let mut out = Vec::new();
        sample_polyline(&[(0, 0), (20, 0)], 4, &mut out);
        assert_eq!(out, vec![(0, 0), (4, 0), (8, 0), (12, 0), (16, 0), (20, 0)]);
    }
}
