//! Rotary position embedding as ggml-cpu applies it (`ggml_compute_forward_rope_flt`, no YaRN
//! extrapolation: `ext_factor = 0`, `attn_factor = 1`).
//!
//! Invariants: the angle of pair `i` at position `p` is `θ_i = freq_scale · p · s^i / ff_i` with
//! `s = freq_base^(-2/n_rot)`, where `p · s^i` is accumulated multiplicatively in f32 from `p`,
//! exactly as ggml's `rope_cache_init` does, so the angles match ggml bit for bit. Dimensions past
//! `n_rot` are left untouched.

use crate::model::RopeMode;

/// Everything that fixes the rotation angles.
#[derive(Clone, Debug)]
pub struct Rope {
    /// How dimensions are paired.
    pub mode: RopeMode,
    /// Dimensions rotated (even, at most the head dimension).
    pub n_rot: usize,
    /// `rope.freq_base`.
    pub freq_base: f32,
    /// `1 / rope.scaling.factor` for linear scaling, else 1.
    pub freq_scale: f32,
    /// Per-pair frequency divisors (`rope_freqs.weight`, Llama 3.1), `n_rot / 2` of them.
    pub freq_factors: Option<Vec<f32>>,
}

impl Rope {
    /// `(cos θ_i, sin θ_i)` for `i in 0..n_rot/2` at position `pos`, into `cache` (length `n_rot`).
    pub fn angles(&self, pos: usize, cache: &mut [f32]) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos as f32;
        for (i, cs) in cache[..self.n_rot].chunks_exact_mut(2).enumerate() {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let t = self.freq_scale * (theta / ff);
            cs[0] = t.cos();
            cs[1] = t.sin();
            theta *= theta_scale;
        }
    }

    /// Rotates every `head_dim`-wide head of `x` (one token's heads) by the angles in `cache`.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cache: &[f32]) {
        let n = self.n_rot;
        for head in x.chunks_exact_mut(head_dim) {
            for i0 in (0..n).step_by(2) {
                let (c, s) = (cache[i0], cache[i0 + 1]);
                let (a, b) = match self.mode {
                    RopeMode::Normal => (i0, i0 + 1),
                    RopeMode::Neox => (i0 / 2, i0 / 2 + n / 2),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}
