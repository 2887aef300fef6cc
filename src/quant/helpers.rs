//! Scale searches shared by the K-quant reference quantizers (ggml-quants.c's "Helper functions").
//!
//! Invariants: each function reproduces its ggml namesake operation for operation: the same
//! accumulation order, no fused multiply-add (Rust never contracts `a * b + c`), integer values
//! converted to f32 exactly where C converts them, and `nearest_int`'s magic-number rounding
//! (ties to even, garbage but deterministic outside ±2^22). That is what makes the quantizers
//! bit-exact with llama.cpp's.

/// ggml's `GROUP_MAX_EPS`: groups whose largest magnitude is below this are all zero.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// nearest_int: adds 1.5 * 2^23 so the FPU rounds to an integer (ties to even) in the mantissa.
#[inline]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// The element with the largest magnitude (first one wins ties) and that magnitude.
#[inline]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

/// Weight of element `x` under ggml's `rmse_type` (no importance matrix).
#[inline]
fn rmse_weight(rmse_type: i32, x: f32) -> f32 {
    match rmse_type {
        1 => x * x,
        2 => 1.0,
        3 => x.abs(),
        _ => x.abs().sqrt(),
    }
}

/// make_qx_quants without importance weights: symmetric quantization of `x` to
/// `L[i] in [0, 2*nmax)` (offset by `nmax`), searching 19 scales around `nmax / max` for the one
/// minimizing the weighted error. Returns the scale.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8], mut rmse_type: i32) -> f32 {
    let n = x.len();
    let l_out = &mut l_out[..n];
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    if rmse_type == 0 {
        for (l, &v) in l_out.iter_mut().zip(x) {
            *l = (nmax + quant(iscale, v)) as i8;
        }
        return 1.0 / iscale;
    }
    let return_early = rmse_type < 0;
    if return_early {
        rmse_type = -rmse_type;
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (lo, &v) in l_out.iter_mut().zip(x) {
        let l = quant(iscale, v);
        *lo = (l + nmax) as i8;
        let w = rmse_weight(rmse_type, v);
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 {
            0.5 * (scale + 1.0 / iscale)
        } else {
            1.0 / iscale
        };
    }
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = quant(iscale, v);
            let w = rmse_weight(rmse_type, v);
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (lo, &v) in l_out.iter_mut().zip(x) {
                *lo = (nmax + quant(iscale, v)) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// make_q3_quants: symmetric quantization to `L[i] in [0, 2*nmax)`; with `do_rmse`, up to five
/// coordinate-descent passes moving single elements while the weighted (`x^2`) error drops.
/// Returns the scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8], do_rmse: bool) -> f32 {
    let n = x.len();
    let l_out = &mut l_out[..n];
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    if do_rmse {
        let mut sumlx = 0.0f32;
        let mut suml2 = 0.0f32;
        for (lo, &v) in l_out.iter_mut().zip(x) {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            *lo = l as i8;
            let w = v * v;
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        for _ in 0..5 {
            let mut n_changed = 0;
            for (lo, &v) in l_out.iter_mut().zip(x) {
                let w = v * v;
                let li = f32::from(*lo);
                let mut slx = sumlx - w * v * li;
                if slx > 0.0 {
                    let mut sl2 = suml2 - w * li * li;
                    let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                    if new_l != i32::from(*lo) {
                        slx += w * v * new_l as f32;
                        sl2 += w * new_l as f32 * new_l as f32;
                        if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            *lo = new_l as i8;
                            sumlx = slx;
                            suml2 = sl2;
                            n_changed += 1;
                        }
                    }
                }
            }
            if n_changed == 0 {
                break;
            }
        }
        for lo in l_out.iter_mut() {
            *lo += nmax as i8;
        }
        return if suml2 > 0.0 { sumlx / suml2 } else { 0.0 };
    }
    for (lo, &v) in l_out.iter_mut().zip(x) {
        *lo = (nearest_int(iscale * v).clamp(-nmax, nmax - 1) + nmax) as i8;
    }
    1.0 / iscale
}

/// Parameters of make_qkx2_quants' scale search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Qkx2Search {
    /// Largest quant value (3, 15 or 31).
    pub nmax: i32,
    /// First offset added to `nmax` when trying scales.
    pub rmin: f32,
    /// Step between tried offsets.
    pub rdelta: f32,
    /// Number of steps (`nstep + 1` scales are tried).
    pub nstep: i32,
    /// Minimize the weighted absolute error instead of the squared one.
    pub use_mad: bool,
}

/// make_qkx2_quants: asymmetric quantization `x ~ scale * L - the_min`, `L in [0, nmax]`, with a
/// weighted least-squares fit of scale and min for each tried grid. Returns `(scale, the_min)`.
pub(crate) fn make_qkx2_quants(
    p: Qkx2Search,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    let (weights, l_out) = (&weights[..n], &mut l_out[..n]);
    let mut laux = [0u8; 32];
    let laux = &mut laux[..n];
    let nmax = p.nmax;

    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let mut diff = scale * l as f32 + min - x[i];
        diff = if p.use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmax as f32) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let mut diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                diff = if p.use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l_out.copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// get_scale_min_k4: the 6-bit scale and min of sub-block `j` (0..8) from Q4_K/Q5_K's 12 packed
/// scale bytes.
#[inline]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs eight 6-bit (scale, min) pairs the way quantize_row_q4_K_ref / q5_K_ref do; the
/// inverse of [`get_scale_min_k4`].
pub(crate) fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-3.7), -4);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
    }

    #[test]
    fn scale_min_packing_round_trips() {
        let ls = [0, 1, 17, 63, 32, 5, 48, 63];
        let lm = [63, 0, 2, 40, 21, 63, 1, 33];
        let packed = pack_scale_min_k4(&ls, &lm);
        for j in 0..8 {
            assert_eq!(
                get_scale_min_k4(j, &packed),
                (ls[j], lm[j]),
                "sub-block {j}"
            );
        }
    }
}
