//! The `neon+dotprod` path (Armv8.2-A DotProd: Cortex-A55/A76 and later, Neoverse,
//! Apple M1 and later): the `neon` path with int8 sums on `sdot`, which multiplies
//! four signed byte pairs and adds them into an i32 lane (`|Σ| ≤ 4·128²`, exact). f32
//! and binary kernels are the `neon` ones.
//!
//! `sdot` is issued with inline assembly: Rust's `vdotq_s32` intrinsic is not stable.

use super::neon::{cosine_rows, dot, dot_rows, dot_sq, hamming, hamming_rows, l2, l2_rows, ld_i8};
use std::arch::aarch64::*;

/// Proof that this CPU has NEON and DotProd: only [`NeonDot::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeonDot(());

impl NeonDot {
    /// `Some` if the running CPU has NEON and DotProd.
    pub(crate) fn detect() -> Option<Self> {
        let ok = std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod");
        ok.then_some(NeonDot(()))
    }
}

impl_isa!(NeonDot);

i8_rows_kernels!("neon,dotprod");

/// Exact `Σ aᵢbᵢ` over i8: 64 codes per step in four `sdot` accumulators, a 16-wide
/// step and a scalar tail.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len());
    let (a64, a_tail) = a.as_chunks::<64>();
    let (b64, b_tail) = b.as_chunks::<64>();
    let mut acc = [vdupq_n_s32(0); 4];
    for (x, y) in a64.iter().zip(b64) {
        let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
        for l in 0..4 {
            acc[l] = sdot(acc[l], ld_i8(&x[l]), ld_i8(&y[l]));
        }
    }
    let (a16, a_tail) = a_tail.as_chunks::<16>();
    let (b16, b_tail) = b_tail.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        acc[0] = sdot(acc[0], ld_i8(x), ld_i8(y));
    }
    let mut s = vaddvq_s32(vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3])));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s = s.wrapping_add(i32::from(x) * i32::from(y));
    }
    s
}

/// Exact `(Σ aᵢbᵢ, Σ bᵢ²)` over i8, 32 codes per step.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn dot_sq_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    assert_eq!(a.len(), b.len());
    let (a32, a_tail) = a.as_chunks::<32>();
    let (b32, b_tail) = b.as_chunks::<32>();
    let mut ab = [vdupq_n_s32(0); 2];
    let mut bb = [vdupq_n_s32(0); 2];
    for (x, y) in a32.iter().zip(b32) {
        let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
        for l in 0..2 {
            let yl = ld_i8(&y[l]);
            ab[l] = sdot(ab[l], ld_i8(&x[l]), yl);
            bb[l] = sdot(bb[l], yl, yl);
        }
    }
    let (a16, a_tail) = a_tail.as_chunks::<16>();
    let (b16, b_tail) = b_tail.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        let yl = ld_i8(y);
        ab[0] = sdot(ab[0], ld_i8(x), yl);
        bb[0] = sdot(bb[0], yl, yl);
    }
    let mut sab = vaddvq_s32(vaddq_s32(ab[0], ab[1]));
    let mut sbb = vaddvq_s32(vaddq_s32(bb[0], bb[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sab = sab.wrapping_add(i32::from(x) * i32::from(y));
        sbb = sbb.wrapping_add(i32::from(y) * i32::from(y));
    }
    (sab, sbb)
}




/// `acc + ` the four-way signed byte dot products of `a` and `b` per i32 lane.
#[target_feature(enable = "neon,dotprod")]
#[inline]
#[expect(unsafe_code, reason = "inline assembly for sdot, whose intrinsic is unstable")]
fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: `sdot` reads the three vector registers and writes `acc` only (no memory,
    // stack or flags); this function's `dotprod` target feature, which its callers
    // must guarantee like any `#[target_feature]` function's, makes the instruction
    // exist.
    unsafe {
        std::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
