//! NEON kernel (aarch64). The only place with Arm intrinsics.
//!
//! Four 4-lane accumulators (16 floats per step), a 4-wide step and a scalar tail.

use std::arch::aarch64::*;

/// Proof that this CPU supports NEON: only [`Neon::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// `Some` if the running CPU has NEON (every aarch64 Linux CPU does).
    pub(crate) fn detect() -> Option<Self> {
        if std::arch::is_aarch64_feature_detected!("neon") {
            Some(Neon(()))
        } else {
            None
        }
    }

    /// `Σ aᵢ·bᵢ`. Panics if the lengths differ.
    #[inline]
    pub(crate) fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: `self` exists only if `detect` saw NEON, and the lengths are equal as
        // `dot_neon` requires.
        unsafe { dot_neon(a, b) }
    }

    /// `out[i] = dot(q, rows[i*d..(i+1)*d])`, `d = q.len()`. Panics on a shape mismatch.
    #[inline]
    pub(crate) fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(Some(rows.len()), out.len().checked_mul(q.len()));
        if q.is_empty() {
            out.fill(0.0);
            return;
        }
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
            // SAFETY: as in `dot`; `chunks_exact` gives rows of exactly `q.len()`.
            *o = unsafe { dot_neon(q, row) };
        }
    }
}

/// # Safety
/// The CPU must support NEON, and `a.len() == b.len()`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let pa = a.as_ptr();
    let pb = b.as_ptr();
    let mut acc0 = vdupq_n_f32(0.0);
    let mut acc1 = vdupq_n_f32(0.0);
    let mut acc2 = vdupq_n_f32(0.0);
    let mut acc3 = vdupq_n_f32(0.0);
    let mut i = 0;
    // SAFETY (all loads below): every load reads 4 floats at offset i with i + 4 <= n
    // (the loop conditions), and both slices have n elements.
    while i + 16 <= n {
        acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        acc1 = vfmaq_f32(acc1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
        acc2 = vfmaq_f32(acc2, vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
        acc3 = vfmaq_f32(acc3, vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
        i += 16;
    }
    while i + 4 <= n {
        acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        i += 4;
    }
    let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}
