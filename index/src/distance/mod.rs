//! Distance kernels: the dot product over f32 slices, chosen once per process.
//!
//! [`scalar`] is the reference. On x86_64 an AVX2+FMA kernel and on aarch64 a NEON
//! kernel are used when the CPU has them; the choice is made on first use
//! (`is_x86_feature_detected!` / `is_aarch64_feature_detected!`) and cached in a
//! [`OnceLock`], so afterwards every call is one atomic load and a branch. Every SIMD
//! kernel is property-tested against the scalar one.
//!
//! SIMD kernels sum in a different order from the reference, so results agree within
//! rounding (relative to `Σ|aᵢ·bᵢ|`), not bit for bit. One kernel is used for the life of
//! the process, so a given input always yields the same bits.
//!
//! All `unsafe` code of the crate is in the architecture modules below; each exposes a
//! zero-sized token that can only be obtained after runtime detection succeeded, and its
//! safe methods are sound because holding the token proves the CPU features.

use std::sync::OnceLock;

pub mod scalar;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86_64;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod aarch64;

/// One dot-product implementation that this CPU can run.
///
/// Obtain one with [`Kernel::best`] (what [`dot`] uses), [`Kernel::scalar`], or
/// [`Kernel::available`] (every kernel this CPU supports, for tests and benchmarks).
#[derive(Clone, Copy, Debug)]
pub struct Kernel(Imp);

#[derive(Clone, Copy, Debug)]
enum Imp {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(x86_64::Avx2Fma),
    #[cfg(target_arch = "aarch64")]
    Neon(aarch64::Neon),
}

static BEST: OnceLock<Kernel> = OnceLock::new();

/// Dot product `Σ aᵢ·bᵢ` with the process-wide best kernel.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Kernel::best().dot(a, b)
}

/// Dot products of `q` with each row of a row-major matrix, with the best kernel:
/// `out[i] = dot(q, rows[i*d .. (i+1)*d])` where `d = q.len()`.
///
/// # Panics
/// If `rows.len() != out.len() * q.len()`.
#[inline]
pub fn dot_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    Kernel::best().dot_rows(q, rows, out)
}

impl Kernel {
    /// The fastest kernel this CPU supports, detected once and cached.
    #[inline]
    pub fn best() -> Kernel {
        *BEST.get_or_init(|| *Kernel::available().last().expect("scalar is always available"))
    }

    /// The portable reference kernel.
    pub fn scalar() -> Kernel {
        Kernel(Imp::Scalar)
    }

    /// Every kernel this CPU can run, slowest (scalar) first, fastest last.
    pub fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut out = vec![Kernel::scalar()];
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = x86_64::Avx2Fma::detect() {
            out.push(Kernel(Imp::Avx2Fma(t)));
        }
        #[cfg(target_arch = "aarch64")]
        if let Some(t) = aarch64::Neon::detect() {
            out.push(Kernel(Imp::Neon(t)));
        }
        out
    }

    /// Short name for logs and `INFO`: `scalar`, `avx2+fma` or `neon`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Imp::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma(_) => "avx2+fma",
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => "neon",
        }
    }

    /// Dot product `Σ aᵢ·bᵢ`.
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: length mismatch");
        match self.0 {
            Imp::Scalar => scalar::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma(t) => t.dot(a, b),
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(t) => t.dot(a, b),
        }
    }

    /// `out[i] = dot(q, rows[i*d .. (i+1)*d])` with `d = q.len()`.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * q.len()`.
    #[inline]
    pub fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(Some(rows.len()), out.len().checked_mul(q.len()), "dot_rows: shape mismatch");
        match self.0 {
            Imp::Scalar => scalar::dot_rows(q, rows, out),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma(t) => t.dot_rows(q, rows, out),
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(t) => t.dot_rows(q, rows, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Agreement bound: f32 rounding of a length-n sum is at most ~n·ε·Σ|aᵢbᵢ|; use a
    /// looser fixed factor so the bound holds for every summation order.
    fn check_close(got: f32, want: f32, a: &[f32], b: &[f32], what: &str) {
        let mag: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
        let tol = 1e-5 * mag.max(f32::MIN_POSITIVE) + (a.len() as f32) * f32::EPSILON * mag;
        assert!((got - want).abs() <= tol, "{what}: got {got}, scalar {want}, tol {tol}, len {}", a.len());
    }

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..300).prop_flat_map(|n| {
            (prop::collection::vec(-100.0f32..100.0, n), prop::collection::vec(-100.0f32..100.0, n))
        })
    }

    #[test]
    fn best_is_stable_and_listed() {
        let names: Vec<_> = Kernel::available().iter().map(|k| k.name()).collect();
        assert_eq!(names[0], "scalar");
        assert!(names.contains(&Kernel::best().name()));
        assert_eq!(Kernel::best().name(), Kernel::best().name());
    }

    #[test]
    fn exact_small_cases() {
        for k in Kernel::available() {
            assert_eq!(k.dot(&[], &[]), 0.0, "{}", k.name());
            assert_eq!(k.dot(&[2.0], &[3.0]), 6.0, "{}", k.name());
            // Lengths around the 8- and 32-lane boundaries; integer values sum exactly.
            for n in [7, 8, 9, 31, 32, 33, 64, 65, 384] {
                let a: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
                let b: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
                assert_eq!(k.dot(&a, &b), scalar::dot(&a, &b), "{} n={n}", k.name());
            }
        }
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn dot_length_mismatch_panics() {
        dot(&[1.0, 2.0], &[1.0]);
    }

    proptest! {
        #[test]
        fn every_kernel_agrees_with_scalar((a, b) in pair()) {
            let want = scalar::dot(&a, &b);
            for k in Kernel::available() {
                check_close(k.dot(&a, &b), want, &a, &b, k.name());
            }
        }

        #[test]
        fn dot_rows_agrees_with_dot(d in 0usize..70, n in 0usize..20, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 2001) as f32 / 100.0 - 10.0 };
            let q: Vec<f32> = (0..d).map(|_| next()).collect();
            let rows: Vec<f32> = (0..d * n).map(|_| next()).collect();
            for k in Kernel::available() {
                let mut out = vec![f32::NAN; n];
                k.dot_rows(&q, &rows, &mut out);
                for i in 0..n {
                    let row = &rows[i * d..(i + 1) * d];
                    // Same kernel, same order: bit-identical to the single-row call.
                    prop_assert_eq!(out[i].to_bits(), k.dot(&q, row).to_bits(), "{} row {}", k.name(), i);
                    check_close(out[i], scalar::dot(&q, row), &q, row, k.name());
                }
            }
        }
    }
}
