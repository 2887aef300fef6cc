//! Charts as plain UTF-8 text, for BENCHMARK_VISUAL_SUMMARY.txt and terminal output.
//!
//! Every function returns a `String` of `\n`-terminated lines, is deterministic, and measures
//! width in `char`s (labels are expected to be single-width characters; block and box-drawing
//! characters count as one column, as they do in Western-locale terminals). Non-finite values
//! draw nothing and print as `n/a`; nothing here panics on odd input.

use super::num;

/// Partial blocks for 1/8 … 7/8 of a cell, left-aligned.
const EIGHTHS: [char; 7] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const FULL: char = '█';
/// Sparkline levels, lowest to highest.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Scatter markers per series.
const MARKERS: [char; 6] = ['*', 'o', '+', 'x', '#', '@'];

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(chars(s))))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(chars(s))))
}

/// A bar `eighths / 8` cells long.
fn bar(eighths: usize) -> String {
    let mut s = String::with_capacity(eighths / 8 + 1);
    s.extend(std::iter::repeat_n(FULL, eighths / 8));
    if eighths % 8 > 0 {
        s.push(EIGHTHS[eighths % 8 - 1]);
    }
    s
}

/// Horizontal bar chart: one line per row, `label  bar  value unit`, labels left-aligned, values
/// right-aligned with `decimals` decimals, bars proportional to value with 1/8-cell resolution
/// and the largest value filling the bar area.
///
/// Lines are `width` characters long (the bar area takes what labels, values and unit leave, at
/// least one cell). Bars start at zero: rows with values ≤ 0 or non-finite get no bar.
pub fn bar_chart<S: AsRef<str>>(
    rows: &[(S, f64)],
    unit: &str,
    decimals: usize,
    width: usize,
) -> String {
    let values: Vec<String> = rows.iter().map(|r| num::fixed(r.1, decimals)).collect();
    let label_w = rows.iter().map(|r| chars(r.0.as_ref())).max().unwrap_or(0);
    let value_w = values.iter().map(|v| chars(v)).max().unwrap_or(0);
    let unit_part = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let bar_w = width
        .saturating_sub(label_w + 1 + 1 + value_w + chars(&unit_part))
        .max(1);
    let max = rows
        .iter()
        .map(|r| r.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut out = String::new();
    for ((label, v), text) in rows.iter().map(|r| (r.0.as_ref(), r.1)).zip(&values) {
        let eighths = if max > 0.0 && v.is_finite() && v > 0.0 {
            ((v / max) * (bar_w * 8) as f64).round() as usize
        } else {
            0
        };
        out.push_str(&pad_right(label, label_w));
        out.push(' ');
        out.push_str(&pad_right(&bar(eighths.min(bar_w * 8)), bar_w));
        out.push(' ');
        out.push_str(&pad_left(text, value_w));
        out.push_str(&unit_part);
        out.push('\n');
    }
    out
}

/// A one-line sparkline of at most `width` characters: `▁` at the minimum, `█` at the maximum.
/// Longer inputs are averaged into `width` equal buckets; a constant series draws mid-height `▄`;
/// non-finite values (or buckets of only non-finite values) draw a space. No trailing newline.
pub fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets: Vec<f64> = if values.len() <= width {
        values.to_vec()
    } else {
        (0..width)
            .map(|i| {
                let (a, b) = (i * values.len() / width, (i + 1) * values.len() / width);
                let finite: Vec<f64> = values[a..b]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                if finite.is_empty() {
                    f64::NAN
                } else {
                    finite.iter().sum::<f64>() / finite.len() as f64
                }
            })
            .collect()
    };
    let (lo, hi) = buckets
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    buckets
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else if hi - lo <= 0.0 {
                LEVELS[3]
            } else {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                LEVELS[i.min(7)]
            }
        })
        .collect()
}

/// An x/y scatter plot on a character grid `width` characters wide (including the y tick
/// labels) with `height` rows of plot area. Each series gets a marker (`*`, `o`, `+`, `x`, `#`,
/// `@`, cycling); a later series overwrites an earlier one in a shared cell. Axes span the data
/// exactly (min at the first cell, max at the last); rows carry no trailing spaces; a legend line follows when there is more than
/// one series. Non-finite points are skipped.
pub fn scatter<S: AsRef<str>>(
    series: &[(S, &[(f64, f64)])],
    x_label: &str,
    y_label: &str,
    width: usize,
    height: usize,
) -> String {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let span = |get: fn((f64, f64)) -> f64| {
        pts().map(get).fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(l, h)| (l.min(v), h.max(v))))
        })
    };
    let (x_lo, x_hi) = span(|p| p.0).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi) = span(|p| p.1).unwrap_or((0.0, 1.0));
    let y_ticks = [num::significant(y_hi, 4), num::significant(y_lo, 4)];
    let y_w = y_ticks.iter().map(|t| chars(t)).max().unwrap_or(0);
    let grid_w = width.saturating_sub(y_w + 2).max(2);
    let grid_h = height.max(2);

    let cell = |v: f64, lo: f64, hi: f64, n: usize| -> usize {
        if hi - lo <= 0.0 {
            (n - 1) / 2
        } else {
            (((v - lo) / (hi - lo)) * (n - 1) as f64).round() as usize
        }
    };
    let mut grid = vec![vec![' '; grid_w]; grid_h];
    for (i, s) in series.iter().enumerate() {
        for &(x, y) in s.1.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
            let col = cell(x, x_lo, x_hi, grid_w).min(grid_w - 1);
            let row = grid_h - 1 - cell(y, y_lo, y_hi, grid_h).min(grid_h - 1);
            grid[row][col] = MARKERS[i % MARKERS.len()];
        }
    }

    let mut out = String::new();
    out.push_str(y_label);
    out.push('\n');
    for (r, line) in grid.iter().enumerate() {
        let (tick, axis) = match r {
            0 => (y_ticks[0].as_str(), '┤'),
            _ if r == grid_h - 1 => (y_ticks[1].as_str(), '┤'),
            _ => ("", '│'),
        };
        out.push_str(&pad_left(tick, y_w));
        out.push(' ');
        out.push(axis);
        let row: String = line.iter().collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out.push_str(&" ".repeat(y_w + 1));
    out.push('└');
    out.push_str(&"─".repeat(grid_w));
    out.push('\n');
    let (xl, xh) = (num::significant(x_lo, 4), num::significant(x_hi, 4));
    out.push_str(&" ".repeat(y_w + 2));
    out.push_str(&xl);
    out.push_str(&pad_left(&xh, grid_w.saturating_sub(chars(&xl))));
    out.push('\n');
    let indent = y_w + 2 + grid_w.saturating_sub(chars(x_label)) / 2;
    out.push_str(&" ".repeat(indent));
    out.push_str(x_label);
    out.push('\n');
    if series.len() > 1 {
        let legend: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{} {}", MARKERS[i % MARKERS.len()], s.0.as_ref()))
            .collect();
        out.push_str(&" ".repeat(y_w + 2));
        out.push_str(&legend.join("   "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_with_eighth_blocks() {
        let got = bar_chart(&[("a", 1.0), ("bb", 2.0), ("ccc", 4.0)], "t/s", 1, 30);
        let want = "\
a   ████▌              1.0 t/s
bb  █████████          2.0 t/s
ccc ██████████████████ 4.0 t/s
";
        assert_eq!(got, want);
        assert!(got.lines().all(|l| l.chars().count() == 30));
    }

    #[test]
    fn bars_round_to_the_nearest_eighth_and_skip_bad_values() {
        // Bar area 14 - (1 + 1 + 1 + 3) = 8 cells = 64 eighths: 1/64 of the maximum is one
        // eighth, 0.4/64 rounds to nothing.
        let rows = [
            ("x", 64.0),
            ("y", 1.0),
            ("z", 0.4),
            ("n", f64::NAN),
            ("m", -3.0),
        ];
        let got = bar_chart(&rows, "", 0, 14);
        let want = [
            "x ████████  64",
            "y ▏          1",
            "z            0",
            "n          n/a",
            "m           -3",
        ];
        assert_eq!(got, want.map(|l| format!("{l}\n")).concat());
    }

    #[test]
    fn sparkline_spans_min_to_max_and_buckets_long_input() {
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 20),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[5.0, 5.0, 5.0], 10), "▄▄▄");
        // Pairs averaged: 0.5, 2.5, 4.5, 6.5 -> min, 2/6, 4/6, max of 7 steps.
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 4),
            "▁▃▆█"
        );
        assert_eq!(sparkline(&[1.0, f64::NAN, 3.0], 10), "▁ █");
        assert_eq!(sparkline(&[], 10), "");
    }

    #[test]
    fn scatter_puts_extremes_in_the_corners() {
        let pts = [(0.0, 0.0), (10.0, 5.0), (5.0, 2.5)];
        // y ticks one char wide: grid 14 - 3 = 11 columns, 3 rows; the middle point lands in the
        // middle cell (5/10 * 10 = column 5, row 1).
        let got = scatter(&[("s", &pts[..])], "x (h)", "y (MiB)", 14, 3);
        let want = [
            "y (MiB)",
            "5 ┤          *",
            "  │     *",
            "0 ┤*",
            "  └───────────",
            "   0        10",
            "      x (h)",
        ];
        assert_eq!(got, want.map(|l| format!("{l}\n")).concat());
    }

    #[test]
    fn scatter_legend_and_markers_for_several_series() {
        let a = [(0.0, 0.0)];
        let b = [(1.0, 1.0)];
        let got = scatter(&[("a", &a[..]), ("b", &b[..])], "x", "y", 8, 2);
        let want = [
            "y",
            "1 ┤    o",
            "0 ┤*",
            "  └─────",
            "   0   1",
            "     x",
            "   * a   o b",
        ];
        assert_eq!(got, want.map(|l| format!("{l}\n")).concat());
    }
}
