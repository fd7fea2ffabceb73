//! AVX2+FMA kernel (x86_64). The only place with x86 intrinsics.
//!
//! Four 8-lane accumulators (32 floats per step) hide the FMA latency; an 8-wide step
//! and a scalar loop handle the tail. Loads are unaligned (`loadu`): index storage is a
//! plain `Vec<f32>`, and unaligned loads cost nothing extra on aligned data on CPUs
//! with AVX2.

use std::arch::x86_64::*;

/// Proof that this CPU supports AVX2 and FMA: only [`Avx2Fma::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` if the running CPU has AVX2 and FMA.
    pub(crate) fn detect() -> Option<Self> {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Some(Avx2Fma(()))
        } else {
            None
        }
    }

    /// `Σ aᵢ·bᵢ`. Panics if the lengths differ.
    #[inline]
    pub(crate) fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: `self` exists only if `detect` saw AVX2 and FMA on this CPU, and the
        // lengths are equal as `dot_avx2` requires.
        unsafe { dot_avx2(a, b) }
    }

    /// `out[i] = dot(q, rows[i*d..(i+1)*d])`, `d = q.len()`. Panics on a shape mismatch.
    #[inline]
    pub(crate) fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(Some(rows.len()), out.len().checked_mul(q.len()));
        // SAFETY: `self` proves AVX2 and FMA (see `dot`); the shape is checked above.
        unsafe { dot_rows_avx2(q, rows, out) }
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let pa = a.as_ptr();
    let pb = b.as_ptr();
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut acc2 = _mm256_setzero_ps();
    let mut acc3 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads below): every load reads 8 floats at offset i with i + 8 <= n
    // (the loop conditions), and both slices have n elements.
    while i + 32 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), acc3);
        i += 32;
    }
    while i + 8 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        i += 8;
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    let mut s = hsum(acc);
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `rows.len() == out.len() * q.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(q: &[f32], rows: &[f32], out: &mut [f32]) {
    let d = q.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(d)) {
        *o = dot_avx2(q, row);
    }
}

/// Sum of the 8 lanes of `v`.
///
/// # Safety
/// The CPU must support AVX (implied by the callers' AVX2).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}
