//! Token sampling with llama.cpp's default chain: repetition penalty → top-k → top-p → min-p →
//! temperature → a seeded draw from the softmax (`common_sampler` with its default sampler list,
//! minus the samplers that are off by default: DRY, typical-p, XTC, top-n-sigma).
//!
//! Invariants: each stage keeps at least one candidate, and the highest-logit candidate (after
//! penalties) always survives every filter, so `temp <= 0` (greedy) returns the argmax of the
//! penalized logits. Given the same seed, accepted tokens and logits, the draw is reproducible
//! (rand's `StdRng`; not bit-compatible with llama.cpp's mt19937).

use std::collections::{HashSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Error, Result};

/// Sampling settings; `Default` is llama.cpp's default.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SamplerParams {
    /// Temperature; `<= 0` samples greedily.
    pub temp: f32,
    /// Keep the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p`; 1 disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 disables.
    pub min_p: f32,
    /// Repetition penalty (`> 1` discourages repeats); 1 disables.
    pub repeat_penalty: f32,
    /// How many of the last accepted tokens the penalty considers; 0 disables.
    pub repeat_last_n: usize,
    /// Seed of the random draw.
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temp: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        SamplerParams {
            temp: 0.0,
            ..Self::default()
        }
    }

    /// Checks that every setting is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32| Err(Error::Invalid(format!("sampling: {what} = {v}")));
        if !self.temp.is_finite() {
            return bad("temperature", self.temp);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top-p (must be in (0, 1])", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min-p (must be in [0, 1])", self.min_p);
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repeat penalty (must be > 0)", self.repeat_penalty);
        }
        Ok(())
    }
}

/// One surviving token and its probability under the final distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub p: f32,
}

/// A sampler with its penalty history and random state.
#[derive(Debug)]
pub struct Sampler {
    params: SamplerParams,
    history: VecDeque<u32>,
    rng: StdRng,
}

/// Index of the first largest value (0 for an empty slice). NaN never beats an earlier value, and
/// one in front stays in front.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Sorts candidates by logit, highest first (ties: lower id first, for determinism).
fn sort_desc(c: &mut [Candidate]) {
    c.sort_by(|a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
}

/// Sets `p` to the softmax of the candidates' logits (llama.cpp's `softmax_impl`: f32 sums).
fn softmax(c: &mut [Candidate]) {
    let max = c.iter().map(|x| x.logit).fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in c.iter_mut() {
        x.p = (x.logit - max).exp();
        sum += x.p;
    }
    for x in c.iter_mut() {
        x.p /= sum;
    }
}

impl Sampler {
    /// A sampler for `params` (validated).
    pub fn new(params: SamplerParams) -> Result<Sampler> {
        params.validate()?;
        Ok(Sampler {
            rng: StdRng::seed_from_u64(params.seed),
            history: VecDeque::with_capacity(params.repeat_last_n),
            params,
        })
    }

    /// The settings.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Records `token` as generated (or part of the prompt) for the repetition penalty.
    pub fn accept(&mut self, token: u32) {
        if self.params.repeat_last_n == 0 {
            return;
        }
        if self.history.len() == self.params.repeat_last_n {
            self.history.pop_front();
        }
        self.history.push_back(token);
    }

    /// Forgets the history and re-seeds the random draw.
    pub fn reset(&mut self) {
        self.history.clear();
        self.rng = StdRng::seed_from_u64(self.params.seed);
    }

    /// Applies the repetition penalty to `logits` in place: each distinct token among the last
    /// `repeat_last_n` accepted has its logit divided by the penalty if positive, multiplied if not.
    pub fn apply_penalties(&self, logits: &mut [f32]) {
        if !self.penalises() {
            return;
        }
        let pen = self.params.repeat_penalty;
        let seen: HashSet<u32> = self.history.iter().copied().collect();
        for &t in &seen {
            if let Some(l) = logits.get_mut(t as usize) {
                if *l <= 0.0 {
                    *l *= pen;
                } else {
                    *l /= pen;
                }
            }
        }
    }

    /// Whether [`apply_penalties`](Self::apply_penalties) changes anything.
    fn penalises(&self) -> bool {
        self.params.repeat_penalty != 1.0 && !self.history.is_empty()
    }

    /// Runs every stage but the draw: the surviving candidates, most likely first, with `p` the
    /// probabilities the draw uses (after temperature). For `temp <= 0`, the single argmax
    /// ([`argmax`]), found without copying the vocabulary unless a penalty applies (a scheduler
    /// step samples every running sequence).
    pub fn candidates(&self, logits: &[f32]) -> Vec<Candidate> {
        if logits.is_empty() {
            return Vec::new();
        }
        if self.params.temp <= 0.0 {
            let pick = |l: &[f32]| {
                let id = argmax(l);
                Candidate {
                    id: id as u32,
                    logit: l[id],
                    p: 1.0,
                }
            };
            return vec![if self.penalises() {
                let mut l = logits.to_vec();
                self.apply_penalties(&mut l);
                pick(&l)
            } else {
                pick(logits)
            }];
        }
        let mut l = logits.to_vec();
        self.apply_penalties(&mut l);
        let mut c: Vec<Candidate> = l
            .iter()
            .enumerate()
            .map(|(i, &logit)| Candidate {
                id: i as u32,
                logit,
                p: 0.0,
            })
            .collect();
        let p = &self.params;
        sort_desc(&mut c);
        if p.top_k > 0 && p.top_k < c.len() {
            c.truncate(p.top_k);
        }
        if p.top_p < 1.0 {
            softmax(&mut c);
            let mut cum = 0f32;
            let mut keep = c.len();
            for (i, x) in c.iter().enumerate() {
                cum += x.p;
                if cum >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
        }
        if p.min_p > 0.0 {
            let min_logit = c[0].logit + p.min_p.ln();
            let keep = 1 + c[1..].iter().take_while(|x| x.logit >= min_logit).count();
            c.truncate(keep);
        }
        for x in c.iter_mut() {
            x.logit /= p.temp;
        }
        softmax(&mut c);
        c
    }

    /// Samples the next token from `logits` (`[n_vocab]`). Does not [`accept`](Self::accept) it.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        let c = self.candidates(logits);
        if c.is_empty() {
            return Err(Error::Invalid("sampling: empty logits".into()));
        }
        if c.len() == 1 {
            return Ok(c[0].id);
        }
        // llama.cpp's `dist`: the first candidate whose running sum reaches `u × total`.
        let u: f64 = self.rng.gen();
        let total: f64 = c.iter().map(|x| x.p as f64).sum();
        let target = total * u;
        let mut run = 0f64;
        for x in &c {
            run += x.p as f64;
            if run >= target {
                return Ok(x.id);
            }
        }
        Ok(c[c.len() - 1].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SamplerParams {
        SamplerParams {
            temp: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 7,
        }
    }

    fn ids(c: &[Candidate]) -> Vec<u32> {
        c.iter().map(|x| x.id).collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Logits ln(0.4), ln(0.3), ln(0.2), ln(0.1): the softmax is exactly those probabilities.
    fn four() -> Vec<f32> {
        [0.1f32, 0.4, 0.2, 0.3].iter().map(|p| p.ln()).collect()
    }

    #[test]
    fn plain_softmax_and_order() {
        let s = Sampler::new(params()).unwrap();
        let c = s.candidates(&four());
        assert_eq!(ids(&c), vec![1, 3, 2, 0]);
        for (x, p) in c.iter().zip([0.4, 0.3, 0.2, 0.1]) {
            assert!(close(x.p, p), "{x:?} vs {p}");
        }
    }

    #[test]
    fn top_k_renormalises() {
        let s = Sampler::new(SamplerParams {
            top_k: 2,
            ..params()
        })
        .unwrap();
        let c = s.candidates(&four());
        assert_eq!(ids(&c), vec![1, 3]);
        assert!(close(c[0].p, 0.4 / 0.7) && close(c[1].p, 0.3 / 0.7));
    }

    #[test]
    fn top_p_keeps_smallest_set_reaching_p() {
        // cumulative 0.4, 0.7, 0.9: p = 0.75 keeps three, p = 0.7 keeps two (0.7 >= 0.7 up to
        // rounding: use 0.69 to stay clear of it), p = 0.3 keeps one.
        for (top_p, want) in [(0.75, vec![1, 3, 2]), (0.69, vec![1, 3]), (0.3, vec![1])] {
            let s = Sampler::new(SamplerParams { top_p, ..params() }).unwrap();
            assert_eq!(ids(&s.candidates(&four())), want, "top_p {top_p}");
        }
        let s = Sampler::new(SamplerParams {
            top_p: 0.75,
            ..params()
        })
        .unwrap();
        let c = s.candidates(&four());
        assert!(close(c[2].p, 0.2 / 0.9));
    }

    #[test]
    fn min_p_is_relative_to_the_best() {
        // p_max = 0.4: min_p 0.5 keeps p >= 0.2 (three tokens), min_p 0.8 keeps p >= 0.32.
        let s = Sampler::new(SamplerParams {
            min_p: 0.5,
            ..params()
        })
        .unwrap();
        assert_eq!(ids(&s.candidates(&four())), vec![1, 3, 2]);
        let s = Sampler::new(SamplerParams {
            min_p: 0.8,
            ..params()
        })
        .unwrap();
        assert_eq!(ids(&s.candidates(&four())), vec![1]);
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        // T = 0.5 squares the probabilities: 0.16, 0.09, 0.04, 0.01 over 0.30.
        let s = Sampler::new(SamplerParams {
            temp: 0.5,
            ..params()
        })
        .unwrap();
        let c = s.candidates(&four());
        for (x, p) in c.iter().zip([0.16f32, 0.09, 0.04, 0.01]) {
            assert!(close(x.p, p / 0.30), "{x:?}");
        }
        // T = 2: square roots, renormalised.
        let s = Sampler::new(SamplerParams {
            temp: 2.0,
            ..params()
        })
        .unwrap();
        let c = s.candidates(&four());
        let r: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.sqrt()).collect();
        let z: f32 = r.iter().sum();
        for (x, p) in c.iter().zip(&r) {
            assert!(close(x.p, p / z), "{x:?}");
        }
    }

    #[test]
    fn repetition_penalty_divides_positive_multiplies_negative() {
        let mut s = Sampler::new(SamplerParams {
            repeat_penalty: 2.0,
            repeat_last_n: 2,
            ..params()
        })
        .unwrap();
        for t in [0, 1, 2, 2] {
            s.accept(t); // the window keeps the last two: {2}
        }
        let mut l = vec![3.0, 3.0, 3.0, -3.0];
        s.apply_penalties(&mut l);
        assert_eq!(l, vec![3.0, 3.0, 1.5, -3.0]);
        s.accept(3); // window {2, 3}
        let mut l = vec![3.0, 3.0, 3.0, -3.0];
        s.apply_penalties(&mut l);
        assert_eq!(l, vec![3.0, 3.0, 1.5, -6.0]);
    }

    #[test]
    fn greedy_takes_penalised_argmax() {
        let mut s = Sampler::new(SamplerParams {
            repeat_penalty: 2.0,
            ..SamplerParams::greedy()
        })
        .unwrap();
        let l = vec![1.0, 5.0, 4.0];
        assert_eq!(s.sample(&l).unwrap(), 1);
        s.accept(1); // 5 / 2 = 2.5 < 4
        assert_eq!(s.sample(&l).unwrap(), 2);
    }

    /// Plain greedy sampling (no penalty) takes the first of tied maxima; a NaN never wins over
    /// an earlier value and one in front stays; candidates and the draw agree.
    #[test]
    fn plain_greedy_matches_the_candidates_argmax() {
        let mut s = Sampler::new(SamplerParams::greedy()).unwrap();
        let cases: [(&[f32], u32); 5] = [
            (&[1.0, 5.0, 4.0, 5.0], 1),
            (&[-2.0, -1.0, -1.0], 1),
            (&[f32::NAN, 3.0, 2.0], 0),
            (&[0.5, f32::NAN, 7.0, 7.0], 2),
            (&[f32::NEG_INFINITY, f32::NEG_INFINITY], 0),
        ];
        for (l, want) in cases {
            assert_eq!(s.candidates(l)[0].id, want, "{l:?}");
            assert_eq!(s.sample(l).unwrap(), want, "{l:?}");
        }
        assert_eq!(s.sample(&[1.0, 5.0, 4.0, 5.0]).unwrap(), 1);
        assert!(s.sample(&[]).is_err());
    }

    #[test]
    fn draws_follow_the_distribution_and_the_seed() {
        let mut s = Sampler::new(params()).unwrap();
        let l = four();
        let mut counts = [0usize; 4];
        let n = 40_000;
        let draws: Vec<u32> = (0..n).map(|_| s.sample(&l).unwrap()).collect();
        for &d in &draws {
            counts[d as usize] += 1;
        }
        for (i, p) in [0.1, 0.4, 0.2, 0.3].iter().enumerate() {
            let f = counts[i] as f64 / n as f64;
            // 5 standard deviations of a binomial proportion at n = 40000 is under 0.0125.
            assert!((f - p).abs() < 0.0125, "token {i}: {f} vs {p}");
        }
        s.reset();
        let again: Vec<u32> = (0..100).map(|_| s.sample(&l).unwrap()).collect();
        assert_eq!(again, draws[..100]);
    }

    #[test]
    fn bad_settings_are_errors() {
        for p in [
            SamplerParams {
                top_p: 0.0,
                ..params()
            },
            SamplerParams {
                min_p: 1.5,
                ..params()
            },
            SamplerParams {
                repeat_penalty: 0.0,
                ..params()
            },
            SamplerParams {
                temp: f32::NAN,
                ..params()
            },
        ] {
            assert!(Sampler::new(p).is_err());
        }
    }
}
