//! The statistics `compare` needs: sample summaries and Welch's unequal-variance t-test, with the
//! Student t distribution computed from the regularized incomplete beta function (continued
//! fraction, as in Numerical Recipes §6.4) — no statistics crate for three functions.

use serde::Serialize;

/// Mean, sample standard deviation and count of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator); 0 for a single sample.
    pub sd: f64,
}

impl Summary {
    /// Summary of `xs`; `None` when empty.
    pub fn of(xs: &[f64]) -> Option<Summary> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = if xs.len() > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Summary {
            n: xs.len() as u64,
            mean,
            sd,
        })
    }
}

/// The result of Welch's t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WelchTest {
    /// The t statistic, (mean B − mean A) / standard error.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's t-test of `a` against `b`; `None` unless both have n ≥ 2. When both variances are
/// zero, `p` is 0 if the means differ and 1 if they are equal.
pub fn welch_t_test(a: &Summary, b: &Summary) -> Option<WelchTest> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (na, nb) = (a.n as f64, b.n as f64);
    let (va, vb) = (a.sd * a.sd / na, b.sd * b.sd / nb);
    let se2 = va + vb;
    let diff = b.mean - a.mean;
    if se2 == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(WelchTest {
            t,
            df: na + nb - 2.0,
            p,
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    Some(WelchTest {
        t,
        df,
        p: student_t_two_sided_p(t, df),
    })
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    let x = df / (df + t * t);
    incomplete_beta(df / 2.0, 0.5, x).clamp(0.0, 1.0)
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// Lentz's evaluation of the continued fraction for I_x(a, b).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, n = 9; relative error below 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        // Γ(n) = (n−1)!, Γ(1/2) = √π.
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(11.0) - 3_628_800f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
    }

    #[test]
    fn student_t_matches_table_critical_values() {
        // Two-sided 5% and 1% critical values from standard t tables.
        for (t, df, p) in [
            (12.706, 1.0, 0.05),
            (4.303, 2.0, 0.05),
            (2.571, 5.0, 0.05),
            (2.228, 10.0, 0.05),
            (2.042, 30.0, 0.05),
            (3.169, 10.0, 0.01),
            (2.750, 30.0, 0.01),
        ] {
            let got = student_t_two_sided_p(t, df);
            assert!(
                (got - p).abs() < 2e-4 * (p / 0.05).max(1.0),
                "t={t} df={df}: {got}"
            );
        }
        // df = 1 is the Cauchy distribution: P(|T| ≥ 1) = 1/2 exactly.
        assert!((student_t_two_sided_p(1.0, 1.0) - 0.5).abs() < 1e-12);
        // Large df approaches the normal: P(|Z| ≥ 1.959964) = 0.05.
        assert!((student_t_two_sided_p(1.959_964, 1e7) - 0.05).abs() < 1e-5);
        assert_eq!(student_t_two_sided_p(0.0, 7.0), 1.0);
    }

    #[test]
    fn welch_matches_hand_computation() {
        // a = {1,2,3,4,5}: mean 3, s² 2.5; b = {3,4,5,6,7,8}: mean 5.5, s² 3.5.
        let a = Summary::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let b = Summary::of(&[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!((a.sd * a.sd - 2.5).abs() < 1e-12 && (b.sd * b.sd - 3.5).abs() < 1e-12);
        let w = welch_t_test(&a, &b).unwrap();
        // se² = 2.5/5 + 3.5/6 = 1.083333; t = 2.5/√1.083333 = 2.401922
        // df = 1.083333² / (0.5²/4 + 0.583333²/5) = 1.173611 / 0.130556 = 8.989362
        assert!((w.t - 2.401_922).abs() < 1e-5, "{w:?}");
        assert!((w.df - 8.989_362).abs() < 1e-5, "{w:?}");
        assert!(w.p > 0.03 && w.p < 0.05, "{w:?}");
        assert!(welch_t_test(&Summary::of(&[1.0]).unwrap(), &b).is_none());
    }
}
