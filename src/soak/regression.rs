//! The leak verdict: a least-squares slope of memory over soak time with a 95 % confidence
//! interval from Student's t — never start-versus-end.
//!
//! Model: within one *segment* (one process lifetime of a soak; a resumed soak starts a new one,
//! because a restarted process starts its memory afresh) memory is `y = a_seg + b·x + noise`,
//! with one common slope `b` and an intercept per segment. `x` is soak time in hours, `y` is
//! MB (MiB, 2^20 bytes), so `b` is MB/h. The pooled within-segment estimate is
//! `b = Σ Sxy / Σ Sxx`, residual sum of squares `SSE = Σ Syy − b·Σ Sxy`, `df = N − k − 1` for `N`
//! points in `k` non-empty segments, `se(b) = √(SSE / df / Σ Sxx)`, and the interval is
//! `b ± t(0.975, df)·se(b)`. With one segment this is ordinary least squares.
//!
//! Memory: O(1) per segment — each keeps Welford-style running means and co-moments (numerically
//! stable for long runs), never the points.
//!
//! Verdict against a threshold `T` MB/h: `leak` when the lower bound exceeds `T`; `stable` when the
//! whole interval lies within `±T`; `inconclusive` otherwise (too few points, too much noise, or a
//! significant *decrease*, which is not flat either).

use serde::{Deserialize, Serialize};

use crate::store::student_t_two_sided_p;

/// The default threshold: a slope that would move memory by 50 MB over 48 hours.
pub const DEFAULT_THRESHOLD_MB_PER_H: f64 = 50.0 / 48.0;

/// Running least-squares state of one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Points.
    pub n: u64,
    /// Mean of x.
    pub mean_x: f64,
    /// Mean of y.
    pub mean_y: f64,
    /// Σ (x − x̄)².
    pub sxx: f64,
    /// Σ (x − x̄)(y − ȳ).
    pub sxy: f64,
    /// Σ (y − ȳ)².
    pub syy: f64,
}

impl Segment {
    /// Adds the point (x, y).
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dx = x - self.mean_x;
        let dy = y - self.mean_y;
        self.mean_x += dx / n;
        self.mean_y += dy / n;
        self.sxx += dx * (x - self.mean_x);
        self.sxy += dx * (y - self.mean_y);
        self.syy += dy * (y - self.mean_y);
    }
}

/// A slope fit over any number of segments; see the module header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlopeFit {
    /// The segments, in order; points go to the last one.
    pub segments: Vec<Segment>,
}

/// What a leak verdict says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The slope's 95 % lower bound is above the threshold.
    Leak,
    /// The whole 95 % interval is within ±threshold.
    Stable,
    /// Neither (or not enough points yet).
    Inconclusive,
}

impl Verdict {
    /// `leak`, `stable` or `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Stable => "stable",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The verdict for the interval `[lo, hi]` against `threshold` (MB/h, positive).
    pub fn of(lo: f64, hi: f64, threshold: f64) -> Verdict {
        if lo > threshold {
            Verdict::Leak
        } else if lo >= -threshold && hi <= threshold {
            Verdict::Stable
        } else {
            Verdict::Inconclusive
        }
    }
}

/// A slope with its 95 % interval and verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LeakEstimate {
    /// Points in the fit.
    pub n: u64,
    /// Residual degrees of freedom.
    pub df: u64,
    /// Slope, MB/h.
    pub slope: f64,
    /// Standard error of the slope, MB/h.
    pub se: f64,
    /// 95 % lower bound, MB/h.
    pub lo: f64,
    /// 95 % upper bound, MB/h.
    pub hi: f64,
    /// Against the threshold it was judged with.
    pub verdict: Verdict,
}

impl SlopeFit {
    /// A fit with one empty segment.
    pub fn new() -> SlopeFit {
        SlopeFit {
            segments: vec![Segment::default()],
        }
    }

    /// Starts a new segment (a new process lifetime); an empty last segment is reused.
    pub fn new_segment(&mut self) {
        if self.segments.last().is_none_or(|s| s.n > 0) {
            self.segments.push(Segment::default());
        }
    }

    /// Adds (x hours, y MB) to the current segment.
    pub fn add(&mut self, x: f64, y: f64) {
        if self.segments.is_empty() {
            self.segments.push(Segment::default());
        }
        if let Some(s) = self.segments.last_mut() {
            s.add(x, y);
        }
    }

    /// Points over all segments.
    pub fn n(&self) -> u64 {
        self.segments.iter().map(|s| s.n).sum()
    }

    /// The slope and its interval, judged against `threshold` MB/h; `None` until there are
    /// enough points (at least one residual degree of freedom and some spread in x).
    pub fn estimate(&self, threshold: f64) -> Option<LeakEstimate> {
        let used: Vec<&Segment> = self.segments.iter().filter(|s| s.n > 0).collect();
        let n: u64 = used.iter().map(|s| s.n).sum();
        let df = n.checked_sub(used.len() as u64 + 1).filter(|&d| d >= 1)?;
        let sxx: f64 = used.iter().map(|s| s.sxx).sum();
        let sxy: f64 = used.iter().map(|s| s.sxy).sum();
        let syy: f64 = used.iter().map(|s| s.syy).sum();
        if sxx <= 0.0 || !sxx.is_finite() {
            return None;
        }
        let slope = sxy / sxx;
        let sse = (syy - slope * sxy).max(0.0);
        let se = (sse / df as f64 / sxx).sqrt();
        let half = t_critical_95(df as f64) * se;
        let (lo, hi) = (slope - half, slope + half);
        Some(LeakEstimate {
            n,
            df,
            slope,
            se,
            lo,
            hi,
            verdict: Verdict::of(lo, hi, threshold),
        })
    }
}

/// The two-sided 95 % critical value of Student's t with `df` degrees of freedom: the `t` with
/// P(|T| ≥ t) = 0.05, by bisection on the store's t distribution.
pub fn t_critical_95(df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0e3_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_p(mid, df) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn critical_values_match_t_tables() {
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (3.0, 3.182),
            (10.0, 2.228),
            (30.0, 2.042),
        ] {
            assert!((t_critical_95(df) - t).abs() < 1e-3, "df {df}");
        }
        assert!((t_critical_95(1e6) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn matches_a_hand_computed_regression() {
        // x = 0..4 h, y MB. By hand: x̄ = 2, ȳ = 14, Sxx = 10,
        // Sxy = (−2)(−4) + (−1)(−1.9) + 0 + (1)(2.2) + (2)(3.8) = 19.7, b = 1.97;
        // fitted 10.06 12.03 14.00 15.97 17.94, residuals −.06 .07 −.10 .23 −.14,
        // SSE = .091, s² = .091/3, se = √(s²/10) = 0.0550757, t(.975, 3) = 3.182446,
        // interval 1.97 ± 0.175275 = [1.794725, 2.145275].
        let mut fit = SlopeFit::new();
        for (x, y) in [10.0, 12.1, 13.9, 16.2, 17.8].iter().enumerate() {
            fit.add(x as f64, *y);
        }
        let e = fit.estimate(1.0).unwrap();
        assert_eq!((e.n, e.df), (5, 3));
        assert!((e.slope - 1.97).abs() < 1e-12, "{e:?}");
        assert!((e.se - 0.055_075_7).abs() < 1e-6, "{e:?}");
        assert!((e.lo - 1.794_725).abs() < 1e-5, "{e:?}");
        assert!((e.hi - 2.145_275).abs() < 1e-5, "{e:?}");
        assert_eq!(e.verdict, Verdict::Leak);
        assert_eq!(fit.estimate(2.0).unwrap().verdict, Verdict::Inconclusive);
        assert_eq!(fit.estimate(2.2).unwrap().verdict, Verdict::Stable);
    }

    #[test]
    fn too_few_points_give_no_estimate() {
        let mut fit = SlopeFit::new();
        assert!(fit.estimate(1.0).is_none());
        fit.add(0.0, 1.0);
        fit.add(1.0, 2.0);
        assert!(
            fit.estimate(1.0).is_none(),
            "two points leave no residual df"
        );
        fit.add(2.0, 3.0);
        let e = fit.estimate(1.0).unwrap();
        assert!((e.slope - 1.0).abs() < 1e-12 && e.se.abs() < 1e-9);
        let mut flat_x = SlopeFit::new();
        for y in [1.0, 2.0, 3.0] {
            flat_x.add(5.0, y);
        }
        assert!(flat_x.estimate(1.0).is_none(), "no spread in x");
    }

    #[test]
    fn segments_share_the_slope_not_the_intercept() {
        // Two process lifetimes of the same 3 MB/h line, the second restarted 500 MB lower:
        // start-versus-end would say "shrinking"; the pooled fit finds 3 MB/h exactly.
        let mut fit = SlopeFit::new();
        for i in 0..6 {
            fit.add(i as f64, 1000.0 + 3.0 * i as f64);
        }
        fit.new_segment();
        fit.new_segment(); // an empty segment is reused
        assert_eq!(fit.segments.len(), 2);
        for i in 6..12 {
            fit.add(
                i as f64,
                500.0 + 3.0 * i as f64 + if i % 2 == 0 { 0.1 } else { -0.1 },
            );
        }
        let e = fit.estimate(1.0).unwrap();
        assert_eq!((e.n, e.df), (12, 9));
        assert!((e.slope - 3.0).abs() < 0.05, "{e:?}");
        assert_eq!(e.verdict, Verdict::Leak);
        // One segment over the same points sees the drop as a steep decrease instead.
        let mut single = SlopeFit::new();
        for s in &fit.segments {
            assert_eq!(s.n, 6);
        }
        for i in 0..12 {
            let base = if i < 6 { 1000.0 } else { 500.0 };
            single.add(i as f64, base + 3.0 * i as f64);
        }
        assert!(single.estimate(1.0).unwrap().slope < -20.0);
    }

    /// Gaussian noise by Box–Muller from a seeded generator.
    fn normal(rng: &mut StdRng, sd: f64) -> f64 {
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen();
        sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    #[test]
    fn interval_covers_the_true_slope_about_95_percent_of_the_time() {
        // Known slope 0.5 MB/h, noise sd 2 MB, 30 points over 10 h; 2000 seeded replications.
        // The interval must cover 0.5 in 95 % ± 1.5 % of them (binomial sd ≈ 0.5 %).
        let mut rng = StdRng::seed_from_u64(7);
        let mut covered = 0;
        let reps = 2000;
        for _ in 0..reps {
            let mut fit = SlopeFit::new();
            for i in 0..30 {
                let x = i as f64 * 10.0 / 29.0;
                fit.add(x, 800.0 + 0.5 * x + normal(&mut rng, 2.0));
            }
            let e = fit.estimate(1.0).unwrap();
            if e.lo <= 0.5 && 0.5 <= e.hi {
                covered += 1;
            }
        }
        let share = covered as f64 / reps as f64;
        assert!((share - 0.95).abs() < 0.015, "coverage {share}");
    }

    #[test]
    fn verdicts_on_noisy_lines() {
        let mut rng = StdRng::seed_from_u64(11);
        // 48 h sampled every 5 min, noise sd 1 MB.
        let run = |slope: f64, rng: &mut StdRng| {
            let mut fit = SlopeFit::new();
            for i in 0..576 {
                let x = i as f64 / 12.0;
                fit.add(x, 2000.0 + slope * x + normal(rng, 1.0));
            }
            fit.estimate(DEFAULT_THRESHOLD_MB_PER_H).unwrap()
        };
        assert_eq!(run(0.0, &mut rng).verdict, Verdict::Stable);
        assert_eq!(run(3.0, &mut rng).verdict, Verdict::Leak);
        assert_eq!(run(-3.0, &mut rng).verdict, Verdict::Inconclusive);
        // Exactly at the threshold the lower bound cannot clear it.
        assert_ne!(
            run(DEFAULT_THRESHOLD_MB_PER_H, &mut rng).verdict,
            Verdict::Leak
        );
    }
}
