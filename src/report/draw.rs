//! Draws a validated [`PlotSpec`] onto any plotters backend.
//!
//! One function, generic over the backend, so the SVG and the PNG of a plot come from the same
//! code path and differ only in rasterisation. Layout: a title band (title, and for bubble plots a
//! line saying what bubble area means), then a cartesian chart whose label areas are sized from
//! the measured tick labels. Point labels and the legend are placed by `layout.rs` in pixel space
//! so they avoid markers, lines and each other; series themselves are drawn by `marks.rs`, with
//! sizes and colours from `style.rs`.
//!
//! Callers must have validated the spec and registered the font (`font::ensure_font`).

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{margin_for, AxisRange, MIN_MARGIN};
use super::layout::{self, Rect};
use super::marks::{decimate, draw_series, legend_sample, marker_radii, sample_polyline};
use super::num;
use super::spec::{PlotKind, PlotSpec};
use super::style::{err, text_size, text_style, Metrics};
use crate::Result;

/// Draws `spec` on `root` (the whole image).
pub(crate) fn draw_plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &PlotSpec,
) -> Result<()> {
    let m = Metrics::new(spec.width, spec.height);
    root.fill(&WHITE).map_err(err)?;

    // Title band.
    let title_style = text_style(m.title).pos(Pos::new(HPos::Center, VPos::Top));
    let (_, title_h) = text_size(root, &spec.title, &title_style)?;
    let mut band = m.pad + title_h;
    root.draw_text(&spec.title, &title_style, (spec.width as i32 / 2, m.pad))
        .map_err(err)?;
    if let PlotKind::Bubble { sizes, size_label } = &spec.kind {
        let all = sizes.iter().flatten().copied();
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let text = if lo <= hi {
            format!(
                "bubble area ∝ {size_label}: {} – {}",
                num::significant(lo, 3),
                num::significant(hi, 3)
            )
        } else {
            format!("bubble area ∝ {size_label}")
        };
        let style = text_style(m.subtitle)
            .color(&RGBColor(80, 80, 80))
            .pos(Pos::new(HPos::Center, VPos::Top));
        let (_, h) = text_size(root, &text, &style)?;
        root.draw_text(&text, &style, (spec.width as i32 / 2, band + m.px(6.0)))
            .map_err(err)?;
        band += m.px(6.0) + h;
    }
    band += m.px(8.0);
    let (_, body) = root.split_vertically(band);

    let radii = marker_radii(spec, &m);
    let marker_px =
        f64::from(radii.iter().flatten().copied().max().unwrap_or(m.marker) + m.px(3.0));

    // Label areas from measured tick labels of a first guess at the ranges; then the plot size
    // they leave decides how much margin the markers need.
    let xs = || points(spec).map(|p| p.0);
    let ys = || points(spec).map(|p| p.1);
    let guess_y = AxisRange::covering(ys(), spec.log_y, MIN_MARGIN);
    let frame = Frame::measure(root, &m, &body, guess_y, spec.log_y)?;
    let x = AxisRange::covering(
        xs(),
        spec.log_x,
        margin_for(marker_px, f64::from(frame.plot_w)),
    );
    let y = AxisRange::covering(
        ys(),
        spec.log_y,
        margin_for(marker_px, f64::from(frame.plot_h)),
    );
    let frame = Frame { x, y, ..frame };
    let ticks = |r: AxisRange, px: i32| r.log_ticks((px / m.px(70.0).max(1)).clamp(3, 12) as usize);
    let log_x = || {
        let (bold, light) = ticks(x, frame.plot_w);
        (x.lo..x.hi)
            .log_scale()
            .with_key_points(bold)
            .with_light_points(light)
    };
    let log_y = || {
        let (bold, light) = ticks(y, frame.plot_h);
        (y.lo..y.hi)
            .log_scale()
            .with_key_points(bold)
            .with_light_points(light)
    };
    match (spec.log_x, spec.log_y) {
        (false, false) => draw_chart(
            root,
            &body,
            spec,
            &m,
            &frame,
            &radii,
            x.lo..x.hi,
            y.lo..y.hi,
        ),
        (true, false) => draw_chart(root, &body, spec, &m, &frame, &radii, log_x(), y.lo..y.hi),
        (false, true) => draw_chart(root, &body, spec, &m, &frame, &radii, x.lo..x.hi, log_y()),
        (true, true) => draw_chart(root, &body, spec, &m, &frame, &radii, log_x(), log_y()),
    }
}

fn points(spec: &PlotSpec) -> impl Iterator<Item = (f64, f64)> + '_ {
    spec.series.iter().flat_map(|s| s.points.iter().copied())
}

/// Tick label text for an axis.
fn tick_formatter(range: AxisRange, log: bool) -> impl Fn(&f64) -> String {
    let decimals = num::tick_decimals(range.hi - range.lo);
    move |v: &f64| {
        if log {
            num::significant(*v, 3)
        } else {
            num::fixed(*v, decimals)
        }
    }
}

/// Chart margins around the plot and its label areas, in reference pixels (top, right, bottom,
/// left). The right margin leaves room for the last x tick label.
const CHART_MARGINS: (f64, f64, f64, f64) = (6.0, 28.0, 6.0, 6.0);

/// The chart's layout: label area sizes, the plot size they leave, and the final ranges.
#[derive(Clone, Copy)]
struct Frame {
    x_area: i32,
    y_area: i32,
    plot_w: i32,
    plot_h: i32,
    x: AxisRange,
    y: AxisRange,
}

impl Frame {
    fn measure<DB: DrawingBackend>(
        root: &DrawingArea<DB, Shift>,
        m: &Metrics,
        body: &DrawingArea<DB, Shift>,
        y: AxisRange,
        log_y: bool,
    ) -> Result<Frame> {
        let tick_style = text_style(m.tick);
        let fmt_y = tick_formatter(y, log_y);
        let mut y_tick_w = 0;
        for v in [y.lo, y.hi, (y.lo + y.hi) / 2.0, y.lo.abs().max(y.hi.abs())] {
            y_tick_w = y_tick_w.max(text_size(root, &fmt_y(&v), &tick_style)?.0);
        }
        let (_, tick_h) = text_size(root, "0", &tick_style)?;
        let (_, desc_h) = text_size(root, "Ag", &text_style(m.desc))?;
        let x_area = tick_h + desc_h + m.px(22.0);
        let y_area = y_tick_w + desc_h + m.px(24.0);
        let (bw, bh) = body.dim_in_pixel();
        let (t, r, b, l) = CHART_MARGINS;
        Ok(Frame {
            x_area,
            y_area,
            plot_w: (bw as i32 - y_area - m.px(l) - m.px(r)).max(1),
            plot_h: (bh as i32 - x_area - m.px(t) - m.px(b)).max(1),
            x: AxisRange { lo: 0.0, hi: 1.0 },
            y,
        })
    }
}

#[allow(clippy::too_many_arguments)] // private: one call per axis-kind combination above
fn draw_chart<DB, XR, YR>(
    root: &DrawingArea<DB, Shift>,
    body: &DrawingArea<DB, Shift>,
    spec: &PlotSpec,
    m: &Metrics,
    frame: &Frame,
    radii: &[Vec<i32>],
    x_coord: XR,
    y_coord: YR,
) -> Result<()>
where
    DB: DrawingBackend,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let tick_style = text_style(m.tick);
    let desc_style = text_style(m.desc);
    let fmt_x = tick_formatter(frame.x, spec.log_x);
    let fmt_y = tick_formatter(frame.y, spec.log_y);
    let (t, r, b, l) = CHART_MARGINS;
    let mut chart = ChartBuilder::on(body)
        .margin_top(m.px(t))
        .margin_right(m.px(r))
        .margin_bottom(m.px(b))
        .margin_left(m.px(l))
        .x_label_area_size(frame.x_area)
        .y_label_area_size(frame.y_area)
        .build_cartesian_2d(x_coord, y_coord)
        .map_err(err)?;

    let (px_range, py_range) = chart.plotting_area().get_pixel_range();
    let plot_rect = Rect {
        x0: px_range.start,
        y0: py_range.start,
        x1: px_range.end,
        y1: py_range.end,
    };
    let n_x = (frame.plot_w / m.px(90.0).max(1)).clamp(3, 12) as usize;
    let n_y = (frame.plot_h / m.px(55.0).max(1)).clamp(3, 12) as usize;

    chart
        .configure_mesh()
        .x_desc(spec.x_label.as_str())
        .y_desc(spec.y_label.as_str())
        .x_labels(n_x)
        .y_labels(n_y)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_style.clone())
        .axis_desc_style(desc_style.clone())
        .bold_line_style(RGBColor(0, 0, 0).mix(0.12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.04))
        .axis_style(RGBColor(60, 60, 60).stroke_width(m.stroke.max(1)))
        .draw()
        .map_err(err)?;

    if spec.is_empty() {
        let style = text_style(m.desc * 1.2)
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let center = (
            (plot_rect.x0 + plot_rect.x1) / 2,
            (plot_rect.y0 + plot_rect.y1) / 2,
        );
        root.draw_text("no data", &style, center).map_err(err)?;
        return Ok(());
    }

    // What gets drawn (dense lines thinned per pixel column), and where it lands in pixels:
    // markers as obstacles for labels, markers and line samples as things the legend avoids.
    let mut drawn = Vec::with_capacity(spec.series.len());
    let mut markers = Vec::new();
    let mut ink = Vec::new();
    for (s, series) in spec.series.iter().enumerate() {
        let is_line = series.dashed || matches!(spec.kind, PlotKind::Line);
        let col = |p: &(f64, f64)| chart.backend_coord(p).0;
        let sorted = series.points.windows(2).all(|w| w[0].0 <= w[1].0);
        let pts = if is_line && sorted && series.points.len() > 4 * frame.plot_w as usize {
            decimate(&series.points, col)
        } else {
            series.points.clone()
        };
        if !series.dashed {
            for (p, &rad) in series.points.iter().zip(&radii[s]) {
                let c = chart.backend_coord(p);
                markers.push(Rect::around(c.0, c.1, rad + 1));
                ink.push(c);
            }
        }
        if is_line {
            let px: Vec<_> = pts.iter().map(|p| chart.backend_coord(p)).collect();
            sample_polyline(&px, m.px(4.0).max(2), &mut ink);
        }
        drawn.push(pts);
    }

    for (s, series) in spec.series.iter().enumerate() {
        draw_series(
            &mut chart,
            spec,
            m,
            s,
            series,
            &drawn[s],
            &radii[s],
            frame.plot_w,
        )?;
    }

    let mut obstacles = markers;
    if spec.series.iter().any(|s| s.labels.is_some()) {
        let thick = (m.stroke as i32 + 1) / 2;
        obstacles.extend(ink.iter().map(|&(x, y)| Rect::around(x, y, thick)));
    }

    // Legend (own drawing, so its box is known to the label placement).
    if spec.series.len() > 1 {
        let legend_style = text_style(m.legend);
        let sample_w = m.px(34.0);
        let row_h = text_size(root, "Ag", &legend_style)?.1 + m.px(6.0);
        let mut text_w = 0;
        for s in &spec.series {
            text_w = text_w.max(text_size(root, &s.name, &legend_style)?.0);
        }
        let size = (
            m.pad + sample_w + m.px(8.0) + text_w + m.pad,
            row_h * spec.series.len() as i32 + m.px(10.0),
        );
        let bx = layout::legend_box(size, &plot_rect, m.pad, &ink);
        root.draw(&Rectangle::new(
            [(bx.x0, bx.y0), (bx.x1, bx.y1)],
            WHITE.mix(0.9).filled(),
        ))
        .map_err(err)?;
        root.draw(&Rectangle::new(
            [(bx.x0, bx.y0), (bx.x1, bx.y1)],
            RGBColor(0, 0, 0).mix(0.35).stroke_width(1),
        ))
        .map_err(err)?;
        for (s, series) in spec.series.iter().enumerate() {
            let cy = bx.y0 + m.px(5.0) + row_h * s as i32 + row_h / 2;
            let x0 = bx.x0 + m.pad;
            legend_sample(root, spec, m, s, series, (x0, cy), sample_w)?;
            let style = legend_style.clone().pos(Pos::new(HPos::Left, VPos::Center));
            root.draw_text(&series.name, &style, (x0 + sample_w + m.px(8.0), cy))
                .map_err(err)?;
        }
        obstacles.push(bx);
    }

    // Point labels, greedily placed clear of markers, lines, the legend and each other.
    let label_style = text_style(m.label).color(&RGBColor(30, 30, 30));
    let halo = m.px(2.0);
    for (s, series) in spec.series.iter().enumerate() {
        let Some(labels) = &series.labels else {
            continue;
        };
        for ((p, text), &rad) in series.points.iter().zip(labels).zip(&radii[s]) {
            if text.is_empty() {
                continue;
            }
            let (w, h) = text_size(root, text, &label_style)?;
            let c = chart.backend_coord(p);
            let r = layout::place_label(
                c,
                rad + m.px(4.0),
                (w + 2 * halo, h + 2 * halo),
                &plot_rect,
                &obstacles,
            );
            root.draw(&Rectangle::new(
                [(r.x0, r.y0), (r.x1, r.y1)],
                WHITE.mix(0.75).filled(),
            ))
            .map_err(err)?;
            let style = label_style.clone().pos(Pos::new(HPos::Left, VPos::Top));
            root.draw_text(text, &style, (r.x0 + halo, r.y0 + halo))
                .map_err(err)?;
            obstacles.push(r);
        }
    }
    Ok(())
}
