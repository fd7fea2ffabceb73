//! The `neon` path (every aarch64 CPU that Linux and macOS run on).
//!
//! - f32: four 4-lane FMA accumulators (16 floats per step), a 4-wide step and a scalar
//!   tail.
//! - int8: `smull`/`smull2` multiply 8 code pairs into i16 (exact: `|aᵢbᵢ| ≤ 128²`
//!   fits), `sadalp` adds adjacent i16 pairs into i32 accumulators. A sum of two
//!   products could reach 32768, so products are never added in i16 (`smlal` would
//!   overflow on `-128·-128 + -128·-128`).
//! - binary: `cnt` counts the bits of each byte of the XOR, `uaddlp`/`uadalp` widen
//!   the counts into u32 lanes.
//!
//! [`super::dotprod`] reuses the f32 and binary kernels of this file.

use std::arch::aarch64::*;

/// Proof that this CPU has NEON: only [`Neon::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// `Some` if the running CPU has NEON.
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(()))
    }
}

impl_isa!(Neon);

f32_rows_kernels!("neon");
i8_rows_kernels!("neon");
hamming_rows_kernel!("neon");

#[target_feature(enable = "neon")]
#[inline]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum::<false>(a, b)
}

#[target_feature(enable = "neon")]
#[inline]
pub(super) fn l2(a: &[f32], b: &[f32]) -> f32 {
    sum::<true>(a, b)
}

/// `Σ aᵢbᵢ` (`L2 == false`) or `Σ (aᵢ − bᵢ)²` (`L2 == true`).
#[target_feature(enable = "neon")]
#[inline]
fn sum<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let step = |acc: float32x4_t, x: float32x4_t, y: float32x4_t| {
        if L2 {
            let d = vsubq_f32(x, y);
            vfmaq_f32(acc, d, d)
        } else {
            vfmaq_f32(acc, x, y)
        }
    };
    let (a16, a_tail) = a.as_chunks::<16>();
    let (b16, b_tail) = b.as_chunks::<16>();
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
        for l in 0..4 {
            acc[l] = step(acc[l], ld(&x[l]), ld(&y[l]));
        }
    }
    let (a4, a_tail) = a_tail.as_chunks::<4>();
    let (b4, b_tail) = b_tail.as_chunks::<4>();
    for (x, y) in a4.iter().zip(b4) {
        acc[0] = step(acc[0], ld(x), ld(y));
    }
    let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += if L2 { (x - y) * (x - y) } else { x * y };
    }
    s
}

/// `(Σ aᵢbᵢ, Σ bᵢ²)` in one pass: two accumulators of each, 8 floats per step.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn dot_sq(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    let mut ab = [vdupq_n_f32(0.0); 2];
    let mut bb = [vdupq_n_f32(0.0); 2];
    for (x, y) in a8.iter().zip(b8) {
        let (x, y) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
        for l in 0..2 {
            let yl = ld(&y[l]);
            ab[l] = vfmaq_f32(ab[l], ld(&x[l]), yl);
            bb[l] = vfmaq_f32(bb[l], yl, yl);
        }
    }
    let (a4, a_tail) = a_tail.as_chunks::<4>();
    let (b4, b_tail) = b_tail.as_chunks::<4>();
    for (x, y) in a4.iter().zip(b4) {
        let yl = ld(y);
        ab[0] = vfmaq_f32(ab[0], ld(x), yl);
        bb[0] = vfmaq_f32(bb[0], yl, yl);
    }
    let mut sab = vaddvq_f32(vaddq_f32(ab[0], ab[1]));
    let mut sbb = vaddvq_f32(vaddq_f32(bb[0], bb[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sab += x * y;
        sbb += y * y;
    }
    (sab, sbb)
}




/// Exact `Σ aᵢbᵢ` over i8, 16 codes per step.
#[target_feature(enable = "neon")]
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len());
    let (a16, a_tail) = a.as_chunks::<16>();
    let (b16, b_tail) = b.as_chunks::<16>();
    let mut acc = [vdupq_n_s32(0); 2];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (ld_i8(x), ld_i8(y));
        acc[0] = vpadalq_s16(acc[0], vmull_s8(vget_low_s8(x), vget_low_s8(y)));
        acc[1] = vpadalq_s16(acc[1], vmull_high_s8(x, y));
    }
    let mut s = vaddvq_s32(vaddq_s32(acc[0], acc[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s = s.wrapping_add(i32::from(x) * i32::from(y));
    }
    s
}

/// Exact `(Σ aᵢbᵢ, Σ bᵢ²)` over i8, 16 codes per step.
#[target_feature(enable = "neon")]
#[inline]
fn dot_sq_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    assert_eq!(a.len(), b.len());
    let (a16, a_tail) = a.as_chunks::<16>();
    let (b16, b_tail) = b.as_chunks::<16>();
    let mut ab = [vdupq_n_s32(0); 2];
    let mut bb = [vdupq_n_s32(0); 2];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (ld_i8(x), ld_i8(y));
        let (ylo, yhi) = (vget_low_s8(y), vget_high_s8(y));
        ab[0] = vpadalq_s16(ab[0], vmull_s8(vget_low_s8(x), ylo));
        ab[1] = vpadalq_s16(ab[1], vmull_s8(vget_high_s8(x), yhi));
        bb[0] = vpadalq_s16(bb[0], vmull_s8(ylo, ylo));
        bb[1] = vpadalq_s16(bb[1], vmull_s8(yhi, yhi));
    }
    let mut sab = vaddvq_s32(vaddq_s32(ab[0], ab[1]));
    let mut sbb = vaddvq_s32(vaddq_s32(bb[0], bb[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sab = sab.wrapping_add(i32::from(x) * i32::from(y));
        sbb = sbb.wrapping_add(i32::from(y) * i32::from(y));
    }
    (sab, sbb)
}




/// Differing bits: `cnt` per byte of the XOR, 4 words per step in two u32x4
/// accumulators.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len());
    let step = |acc: uint32x4_t, x: uint64x2_t, y: uint64x2_t| {
        vpadalq_u16(acc, vpaddlq_u8(vcntq_u8(vreinterpretq_u8_u64(veorq_u64(x, y)))))
    };
    let (a4, a_tail) = a.as_chunks::<4>();
    let (b4, b_tail) = b.as_chunks::<4>();
    let mut acc = [vdupq_n_u32(0); 2];
    for (x, y) in a4.iter().zip(b4) {
        let (x, y) = (x.as_chunks::<2>().0, y.as_chunks::<2>().0);
        for l in 0..2 {
            acc[l] = step(acc[l], ld_u64(&x[l]), ld_u64(&y[l]));
        }
    }
    let (a2, a_tail) = a_tail.as_chunks::<2>();
    let (b2, b_tail) = b_tail.as_chunks::<2>();
    for (x, y) in a2.iter().zip(b2) {
        acc[0] = step(acc[0], ld_u64(x), ld_u64(y));
    }
    let mut s = vaddvq_u32(vaddq_u32(acc[0], acc[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += (x ^ y).count_ones();
    }
    s
}


/// Loads 4 floats.
#[target_feature(enable = "neon")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: `x` is 4 readable f32, exactly the 16 bytes `ld1` reads.
    unsafe { vld1q_f32(x.as_ptr()) }
}

/// Loads 16 codes.
#[target_feature(enable = "neon")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
pub(super) fn ld_i8(x: &[i8; 16]) -> int8x16_t {
    // SAFETY: `x` is 16 readable bytes, exactly what `ld1` reads.
    unsafe { vld1q_s8(x.as_ptr()) }
}

/// Loads 2 words.
#[target_feature(enable = "neon")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld_u64(x: &[u64; 2]) -> uint64x2_t {
    // SAFETY: `x` is 2 readable u64, exactly the 16 bytes `ld1` reads.
    unsafe { vld1q_u64(x.as_ptr()) }
}
