//! Axis ranges and tick positions, in data units.
//!
//! An [`AxisRange`] always has `lo < hi` (and both > 0 on a log axis), so a chart never degenerates.
//! Margins are a fraction of the range on each side, at least [`MIN_MARGIN`] and more when
//! markers are big compared with the plot (bubbles must not cross the frame). Ticks on log axes
//! are chosen here (plotters only puts them on powers of ten, which leaves a sub-decade axis
//! with one tick or none).

/// Smallest margin on each side, as a fraction of the final range.
pub(crate) const MIN_MARGIN: f64 = 0.06;

/// A margin fraction wide enough that a marker of `marker_px` pixels around a point at the data's
/// edge stays inside a plot `plot_px` pixels long.
pub(crate) fn margin_for(marker_px: f64, plot_px: f64) -> f64 {
    if plot_px <= 0.0 {
        return MIN_MARGIN;
    }
    // The margin is a fraction of the drawn range, so an edge point sits margin * plot_px pixels
    // from the frame.
    MIN_MARGIN.max((marker_px / plot_px).min(0.3))
}

/// An axis range in data units, already widened by margins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AxisRange {
    pub lo: f64,
    pub hi: f64,
}

impl AxisRange {
    /// The range covering `values` with `margin` (a fraction of the final range, < 0.5) on each
    /// side. A single value (zero span) is widened by 10 % of its magnitude (±1 at zero; ×/÷ 2 on
    /// a log axis); no values give 0..1 (1..10 on log). A linear range whose data are all ≥ 0 and
    /// reach within a third of the span from zero starts at zero (points at or near zero then sit
    /// on the axis), so speeds and sizes are not visually exaggerated and time starts at 0.
    /// Callers pass only validated values (finite, > 0 on log).
    pub fn covering(values: impl Iterator<Item = f64>, log: bool, margin: f64) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            return if log {
                AxisRange { lo: 1.0, hi: 10.0 }
            } else {
                AxisRange { lo: 0.0, hi: 1.0 }
            };
        }
        // Margin m of the final range R = S + 2p on each side: p = S m / (1 - 2m).
        let m = margin.clamp(0.0, 0.45);
        let grow = m / (1.0 - 2.0 * m);
        if log {
            let (l, h) = (lo.log10(), hi.log10());
            let (l, h) = if h - l < 1e-12 {
                (l - 2f64.log10(), h + 2f64.log10())
            } else {
                let pad = (h - l) * grow;
                (l - pad, h + pad)
            };
            return AxisRange {
                lo: 10f64.powf(l),
                hi: 10f64.powf(h),
            };
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            return AxisRange {
                lo: lo - pad,
                hi: hi + pad,
            };
        }
        let pad = (hi - lo) * grow;
        let zero_ok = lo >= 0.0 && lo < (hi - lo) / 3.0;
        AxisRange {
            lo: if zero_ok { 0.0 } else { lo - pad },
            hi: hi + pad,
        }
    }

    /// Tick values for a log axis over this range: (labelled ticks, light grid lines). Three or
    /// more powers of ten: those (thinned to every k-th decade to stay within `max`), with light
    /// lines at 2..9 × 10^k; at least one decade: 1-2-5 × 10^k; less: evenly spaced 1-2-5 steps.
    pub fn log_ticks(&self, max: usize) -> (Vec<f64>, Vec<f64>) {
        let max = max.max(2);
        let (d0, d1) = (
            self.lo.log10().floor() as i32,
            self.hi.log10().ceil() as i32,
        );
        let within = |mults: &[f64]| -> Vec<f64> {
            let mut v = Vec::new();
            for k in d0..=d1 {
                for &m in mults {
                    let t = m * 10f64.powi(k);
                    // Relative tolerance: the range ends were computed through log10/powf.
                    if t >= self.lo * (1.0 - 1e-9) && t <= self.hi * (1.0 + 1e-9) {
                        v.push(t);
                    }
                }
            }
            v
        };
        let ones_to_nine: Vec<f64> = (1..=9).map(f64::from).collect();
        let decades = within(&[1.0]);
        if decades.len() >= 3 {
            let step = decades.len().div_ceil(max);
            let bold: Vec<f64> = decades.iter().copied().step_by(step).collect();
            let light = if step == 1 {
                within(&ones_to_nine)
                    .into_iter()
                    .filter(|t| !bold.iter().any(|b| (b - t).abs() <= 1e-9 * t.abs()))
                    .collect()
            } else {
                Vec::new()
            };
            return (bold, light);
        }
        if self.hi / self.lo >= 10.0 {
            return (within(&[1.0, 2.0, 5.0]), Vec::new());
        }
        // Less than a decade: a log axis barely curves, and 1..9 × 10^k leaves big gaps above a
        // power of ten (70, 80, 90, 100, then 200).
        (linear_ticks(self.lo, self.hi, max.min(8)), Vec::new())
    }
}

/// About `n` evenly spaced "nice" (1-2-5 × 10^k) values inside `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let raw = (hi - lo) / n.max(1) as f64;
    if raw.is_nan() || raw <= 0.0 {
        return vec![lo];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(values: &[f64], log: bool) -> AxisRange {
        AxisRange::covering(values.iter().copied(), log, MIN_MARGIN)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn ranges_have_margins_and_never_collapse() {
        assert_eq!(range(&[], false), AxisRange { lo: 0.0, hi: 1.0 });
        assert_eq!(range(&[], true), AxisRange { lo: 1.0, hi: 10.0 });
        assert_eq!(range(&[5.0], false), AxisRange { lo: 4.5, hi: 5.5 });
        assert_eq!(range(&[0.0], false), AxisRange { lo: -1.0, hi: 1.0 });
        // Span 100, margin 6 % of the final range: pad = 100 * 0.06 / 0.88.
        let r = range(&[100.0, 200.0], false);
        let pad = 100.0 * 0.06 / 0.88;
        assert!(
            close(r.lo, 100.0 - pad) && close(r.hi, 200.0 + pad),
            "{r:?}"
        );
        assert!(close((100.0 - r.lo) / (r.hi - r.lo), 0.06));
        // Data near zero start the axis at zero.
        let r = range(&[10.0, 100.0], false);
        assert_eq!(r.lo, 0.0);
        let r = range(&[0.0, 100.0], false);
        assert_eq!(r.lo, 0.0);
        // Far from zero: margins only.
        assert!(range(&[40.0, 100.0], false).lo > 0.0);
        let r = range(&[10.0], true);
        assert!(close(r.lo, 5.0) && close(r.hi, 20.0), "{r:?}");
    }

    #[test]
    fn big_markers_get_a_bigger_margin() {
        assert_eq!(margin_for(4.0, 800.0), MIN_MARGIN);
        assert!(close(margin_for(80.0, 800.0), 0.1));
        let r = AxisRange::covering([2.0, 3.0].into_iter(), false, 0.1);
        // The edge points sit exactly 10 % of the axis inside the frame.
        assert!(
            close((2.0 - r.lo) / (r.hi - r.lo), 0.1) && close((r.hi - 3.0) / (r.hi - r.lo), 0.1)
        );
    }

    #[test]
    fn log_ticks_adapt_to_the_number_of_decades() {
        let r = AxisRange {
            lo: 0.9,
            hi: 1100.0,
        };
        assert_eq!(r.log_ticks(10).0, vec![1.0, 10.0, 100.0, 1000.0]);
        let r = AxisRange { lo: 0.9, hi: 1.1e6 };
        assert_eq!(r.log_ticks(4).0, vec![1.0, 100.0, 10_000.0, 1e6]);
        let r = AxisRange { lo: 3.0, hi: 60.0 };
        assert_eq!(r.log_ticks(10).0, vec![5.0, 10.0, 20.0, 50.0]);
        let r = AxisRange {
            lo: 65.0,
            hi: 160.0,
        };
        let (bold, light) = r.log_ticks(10);
        assert_eq!(bold, vec![80.0, 100.0, 120.0, 140.0, 160.0]);
        assert!(light.is_empty(), "{light:?}");
        let r = AxisRange {
            lo: 101.0,
            hi: 140.0,
        };
        assert_eq!(r.log_ticks(5).0, vec![110.0, 120.0, 130.0, 140.0]);
        // Light lines at 2..9 and 20..90 between the labelled 1, 10, 100.
        let (_, light) = AxisRange {
            lo: 0.95,
            hi: 110.0,
        }
        .log_ticks(10);
        assert_eq!(light.len(), 16);
    }
}
