//! Summaries of a window of samples: mean, min, max, p95 and the least-squares slope.
//!
//! Inputs are `(ts, value)` points in time order; all functions return `None` for too few points
//! rather than a made-up number.

use super::Aggregate;

/// `agg` of the values of `points`.
pub fn aggregate(agg: Aggregate, points: &[(f64, f64)]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let values = points.iter().map(|p| p.1);
    Some(match agg {
        Aggregate::Mean => values.sum::<f64>() / points.len() as f64,
        Aggregate::Max => values.fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Min => values.fold(f64::INFINITY, f64::min),
        Aggregate::P95 => percentile(points.iter().map(|p| p.1).collect(), 95.0),
    })
}

/// The `q`-th percentile (0–100) with linear interpolation between closest ranks: rank
/// `q/100 · (n − 1)` of the sorted values.
pub fn percentile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (values.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    values[lo] + (values[hi] - values[lo]) * (rank - lo as f64)
}

/// The least-squares slope of value over time, per second; `None` for fewer than 2 points or
/// points all at one instant.
pub fn slope_per_s(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mv = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(t, v) in points {
        sxy += (t - mt) * (v - mv);
        sxx += (t - mt) * (t - mt);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[f64]) -> Vec<(f64, f64)> {
        v.iter().enumerate().map(|(i, &x)| (i as f64, x)).collect()
    }

    #[test]
    fn aggregates_match_hand_computed_values() {
        let p = pts(&[3.0, 1.0, 4.0, 1.0, 5.0]);
        assert_eq!(aggregate(Aggregate::Mean, &p), Some(2.8));
        assert_eq!(aggregate(Aggregate::Max, &p), Some(5.0));
        assert_eq!(aggregate(Aggregate::Min, &p), Some(1.0));
        // sorted 1 1 3 4 5, rank 0.95·4 = 3.8: 4 + 0.8·(5 − 4) = 4.8 (numpy.percentile agrees)
        let p95 = aggregate(Aggregate::P95, &p).unwrap();
        assert!((p95 - 4.8).abs() < 1e-12, "{p95}");
        assert_eq!(aggregate(Aggregate::Mean, &[]), None);
    }

    #[test]
    fn slope_of_a_line_and_of_noise() {
        // v = 2t + 1 exactly.
        let line: Vec<(f64, f64)> = (0..5).map(|t| (t as f64, 2.0 * t as f64 + 1.0)).collect();
        assert!((slope_per_s(&line).unwrap() - 2.0).abs() < 1e-12);
        // (0,1) (1,3) (2,2): mean t 1, mean v 2; sxy = (−1)(−1) + 0 + (1)(0) = 1; sxx = 2.
        assert_eq!(
            slope_per_s(&[(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)]),
            Some(0.5)
        );
        assert_eq!(slope_per_s(&[(1.0, 1.0)]), None);
        assert_eq!(slope_per_s(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }
}
