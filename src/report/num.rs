//! Number formatting shared by plots, terminal charts and tables.
//!
//! All functions are pure and locale-free: `.` as decimal point, no thousands separators, `-0`
//! printed as `0`, non-finite values as `n/a`.

/// Text for a value that cannot be shown (NaN or infinite).
pub const NOT_AVAILABLE: &str = "n/a";

/// `v` with exactly `decimals` digits after the point.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return NOT_AVAILABLE.to_string();
    }
    let s = format!("{v:.decimals$}");
    // "-0.00" reads as a sign error in a table of measurements.
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// Decimals for tick labels on a linear axis of width `span`: enough to tell ticks about a tenth
/// of the span apart, none for spans ≥ 10.
pub fn tick_decimals(span: f64) -> usize {
    if !span.is_finite() || span <= 0.0 {
        return 0;
    }
    let step = span / 10.0;
    let exp = step.log10().floor();
    // A step of 1.5 × 10^k is rounded by the tick generator to 2 × 10^k: same decimals as 10^k.
    (-exp).max(0.0) as usize
}

/// `v` with about `digits` significant digits and trailing zeros trimmed: 0.05, 12.3, 1500. Used
/// on log axes, where ticks span decades. Magnitudes ≥ 1e6 or < 1e-3 use exponent form (2.5e6).
pub fn significant(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return NOT_AVAILABLE.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = digits.max(1);
    let mag = v.abs().log10().floor();
    if !(-3.0..6.0).contains(&mag) {
        let s = format!("{:.*e}", digits - 1, v);
        // Trim the mantissa: "2.50e6" -> "2.5e6".
        return match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim_zeros(m)),
            None => s,
        };
    }
    let decimals = (digits as f64 - 1.0 - mag).max(0.0) as usize;
    trim_zeros(&fixed(v, decimals)).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rounds_and_drops_negative_zero() {
        assert_eq!(fixed(1.23456, 2), "1.23");
        assert_eq!(fixed(2.7, 0), "3");
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(-1.5, 1), "-1.5");
        assert_eq!(fixed(f64::NAN, 2), "n/a");
    }

    #[test]
    fn tick_decimals_follow_the_span() {
        assert_eq!(tick_decimals(1000.0), 0);
        assert_eq!(tick_decimals(10.0), 0);
        assert_eq!(tick_decimals(5.0), 1);
        assert_eq!(tick_decimals(0.3), 2);
        assert_eq!(tick_decimals(0.0), 0);
    }

    #[test]
    fn significant_trims_and_switches_to_exponent() {
        assert_eq!(significant(0.05, 3), "0.05");
        assert_eq!(significant(12.34, 3), "12.3");
        assert_eq!(significant(1500.0, 3), "1500");
        assert_eq!(significant(100.0, 3), "100");
        assert_eq!(significant(2_500_000.0, 3), "2.5e6");
        assert_eq!(significant(0.0002, 3), "2e-4");
        assert_eq!(significant(-12.34, 3), "-12.3");
    }
}
