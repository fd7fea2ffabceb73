//! int8 quantization with a symmetric per-vector scale.
//!
//! For a vector `x` of `dim` finite components:
//!
//! - `scale = max|xᵢ| / 127` (an f32; 0 for the zero vector),
//! - `codeᵢ = round(xᵢ / scale)` (half away from zero), in `[-127, 127]` (never -128),
//! - the dequantized vector is `x̂ᵢ = scale · codeᵢ`.
//!
//! Storage: `dim` i8 codes and the f32 scale kept beside them (the kernels take a row
//! matrix of codes and a parallel `&[f32]` of scales, see [`crate::distance`]).
//!
//! **Error bound.** Per component, `|xᵢ − x̂ᵢ| ≤ e = scale · (1/2 + 254·u)` with
//! `u = 2⁻²⁴` (half a step, plus the rounding of the division and of the
//! dequantizing product; `254·u < 1.6·10⁻⁵`). Hence, for two vectors:
//!
//! - inner product: `|⟨x, y⟩ − ⟨x̂, ŷ⟩| ≤ e_x·‖y‖₁ + e_y·‖x̂‖₁`,
//! - Euclidean distance: `|‖x − y‖ − ‖x̂ − ŷ‖| ≤ √dim · (e_x + e_y)`,
//!
//! and the int8 kernels compute `⟨x̂, ŷ⟩` and `‖x̂ − ŷ‖²` from exact integer sums (then
//! one f64 → f32 rounding). A vector with one large outlier component gets a coarse
//! step for all the others; that is the price of one scale per vector.
//! `tests` check these bounds on random vectors.

/// Quantizes `x` into `codes` and returns the scale (see the module docs).
///
/// # Panics
/// If `codes.len() != x.len()`, or any component is NaN or infinite.
pub fn quantize_i8(x: &[f32], codes: &mut [i8]) -> f32 {
    assert_eq!(codes.len(), x.len(), "quantize_i8: {} codes for dim {}", codes.len(), x.len());
    assert!(x.iter().all(|v| v.is_finite()), "quantize_i8: non-finite component");
    let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = max / 127.0;
    if scale == 0.0 {
        // The zero vector, or one so small that its step underflows: all codes 0.
        codes.fill(0);
        return 0.0;
    }
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = (v / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// Writes the dequantized vector `scale · codes` into `out`.
///
/// # Panics
/// If `out.len() != codes.len()`.
pub fn dequantize_i8(codes: &[i8], scale: f32, out: &mut [f32]) {
    assert_eq!(out.len(), codes.len(), "dequantize_i8: length mismatch");
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = scale * f32::from(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::Kernel;
    use proptest::prelude::*;

    const U: f32 = 1.0 / (1u32 << 24) as f32;

    fn quantize(x: &[f32]) -> (Vec<i8>, f32) {
        let mut c = vec![0i8; x.len()];
        let s = quantize_i8(x, &mut c);
        (c, s)
    }

    fn check(x: &[f32], codes: &[i8], scale: f32) {
        assert_eq!(quantize(x), (codes.to_vec(), scale));
    }

    #[test]
    fn known_codes() {
        check(&[], &[], 0.0);
        check(&[0.0, -0.0], &[0, 0], 0.0);
        check(&[127.0, -63.5, 0.4, -1.0], &[127, -64, 0, -1], 1.0);
        check(&[-2.54, 1.27], &[-127, 64], 2.54 / 127.0);
        check(&[f32::MIN_POSITIVE / 1e6], &[0], 0.0);
        check(&[f32::MAX, -f32::MAX], &[127, -127], f32::MAX / 127.0);
    }

    #[test]
    #[should_panic(expected = "non-finite")]
    fn rejects_nan() {
        quantize(&[1.0, f32::NAN]);
    }

    fn vec_strategy() -> impl Strategy<Value = Vec<f32>> {
        (0usize..600).prop_flat_map(|n| prop::collection::vec(prop_oneof![-1e3f32..1e3, -1e-3f32..1e-3, Just(0.0)], n))
    }

    proptest! {
        #[test]
        fn component_error_within_bound(x in vec_strategy()) {
            let (c, s) = quantize(&x);
            let e = s * (0.5 + 254.0 * U);
            let mut xh = vec![0.0; x.len()];
            dequantize_i8(&c, s, &mut xh);
            for i in 0..x.len() {
                prop_assert!(c[i] != i8::MIN);
                prop_assert!((x[i] - xh[i]).abs() <= e, "i {} x {} x̂ {} e {}", i, x[i], xh[i], e);
            }
        }

        #[test]
        fn ip_and_l2_within_bound((x, y) in (0usize..600).prop_flat_map(|n| (
            prop::collection::vec(-10.0f32..10.0, n), prop::collection::vec(-10.0f32..10.0, n)))) {
            let ((cx, sx), (cy, sy)) = (quantize(&x), quantize(&y));
            let (ex, ey) = (sx * (0.5 + 254.0 * U), sy * (0.5 + 254.0 * U));
            let l1 = |v: &[f32]| v.iter().map(|a| f64::from(a.abs())).sum::<f64>();
            let mut xh = vec![0.0; x.len()];
            dequantize_i8(&cx, sx, &mut xh);
            let exact_ip: f64 = x.iter().zip(&y).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            let exact_l2: f64 = x.iter().zip(&y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
            let k = Kernel::best();
            // Slack for the one f32 rounding of the kernel's result.
            let ip = f64::from(k.ip_i8(&cx, sx, &cy, sy));
            let ip_bound = f64::from(ex) * l1(&y) + f64::from(ey) * l1(&xh);
            prop_assert!((ip - exact_ip).abs() <= ip_bound + 1e-6 * ip.abs() + 1e-30, "ip {} exact {} bound {}", ip, exact_ip, ip_bound);
            let d = f64::from(k.l2_i8(&cx, sx, &cy, sy)).sqrt();
            let d_bound = (x.len() as f64).sqrt() * f64::from(ex + ey);
            prop_assert!((d - exact_l2.sqrt()).abs() <= d_bound + 1e-6 * d + 1e-30, "d {} exact {} bound {}", d, exact_l2.sqrt(), d_bound);
        }
    }
}
