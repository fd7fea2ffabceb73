//! The `avx2` path: AVX2 + FMA + POPCNT (Haswell and later, every x86_64 CPU of the
//! last decade).
//!
//! - f32: four 8-lane FMA accumulators (32 floats per step) hide the FMA latency; an
//!   8-wide step and a scalar loop take the tail. Loads are unaligned: rows are plain
//!   slices, and `vmovups` on aligned data costs nothing extra on these CPUs.
//! - int8: codes are sign-extended to i16 (`vpmovsxbw`) and multiplied pairwise into
//!   i32 (`vpmaddwd`): exact for every i8 pair (a pair sum is at most 2·128² = 32768,
//!   which the i32 result holds). The `vpmaddubsw` route is faster but saturates at
//!   i16, so it is not exact for all codes.
//! - binary: per 4 words, a `vpshufb` nibble-table count of the XOR summed by
//!   `vpsadbw`; `popcnt` for the last 0–3 words.

use std::arch::x86_64::*;

/// Proof that this CPU has AVX2, FMA and POPCNT: only [`Avx2::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// `Some` if the running CPU has AVX2, FMA and POPCNT.
    pub(crate) fn detect() -> Option<Self> {
        let ok = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("popcnt");
        ok.then_some(Avx2(()))
    }
}

impl_isa!(Avx2);

f32_rows_kernels!("avx2,fma,popcnt");
i8_rows_kernels!("avx2,fma,popcnt");
hamming_rows_kernel!("avx2,fma,popcnt");

#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum::<false>(a, b)
}

#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn l2(a: &[f32], b: &[f32]) -> f32 {
    sum::<true>(a, b)
}

/// `Σ aᵢbᵢ` (`L2 == false`) or `Σ (aᵢ − bᵢ)²` (`L2 == true`).
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn sum<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let step = |acc: __m256, x: __m256, y: __m256| {
        if L2 {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        } else {
            _mm256_fmadd_ps(x, y, acc)
        }
    };
    let (a32, a_tail) = a.as_chunks::<32>();
    let (b32, b_tail) = b.as_chunks::<32>();
    let mut acc = [_mm256_setzero_ps(); 4];
    for (x, y) in a32.iter().zip(b32) {
        let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
        for l in 0..4 {
            acc[l] = step(acc[l], ld(&x[l]), ld(&y[l]));
        }
    }
    let (a8, a_tail) = a_tail.as_chunks::<8>();
    let (b8, b_tail) = b_tail.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        acc[0] = step(acc[0], ld(x), ld(y));
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += if L2 { (x - y) * (x - y) } else { x * y };
    }
    s
}

/// `(Σ aᵢbᵢ, Σ bᵢ²)` in one pass: two accumulators of each, 16 floats per step.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn dot_sq(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let (a16, a_tail) = a.as_chunks::<16>();
    let (b16, b_tail) = b.as_chunks::<16>();
    let mut ab = [_mm256_setzero_ps(); 2];
    let mut bb = [_mm256_setzero_ps(); 2];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
        for l in 0..2 {
            let yl = ld(&y[l]);
            ab[l] = _mm256_fmadd_ps(ld(&x[l]), yl, ab[l]);
            bb[l] = _mm256_fmadd_ps(yl, yl, bb[l]);
        }
    }
    let (a8, a_tail) = a_tail.as_chunks::<8>();
    let (b8, b_tail) = b_tail.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        let yl = ld(y);
        ab[0] = _mm256_fmadd_ps(ld(x), yl, ab[0]);
        bb[0] = _mm256_fmadd_ps(yl, yl, bb[0]);
    }
    let mut sab = hsum(_mm256_add_ps(ab[0], ab[1]));
    let mut sbb = hsum(_mm256_add_ps(bb[0], bb[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sab += x * y;
        sbb += y * y;
    }
    (sab, sbb)
}




/// Exact `Σ aᵢbᵢ` over i8: 32 codes per step in two i32 accumulators.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len());
    let (a32, a_tail) = a.as_chunks::<32>();
    let (b32, b_tail) = b.as_chunks::<32>();
    let mut acc = [_mm256_setzero_si256(); 2];
    for (x, y) in a32.iter().zip(b32) {
        let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
        for l in 0..2 {
            acc[l] = _mm256_add_epi32(acc[l], _mm256_madd_epi16(ld_i8(&x[l]), ld_i8(&y[l])));
        }
    }
    let (a16, a_tail) = a_tail.as_chunks::<16>();
    let (b16, b_tail) = b_tail.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(ld_i8(x), ld_i8(y)));
    }
    let mut s = hsum_i32(_mm256_add_epi32(acc[0], acc[1]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s = s.wrapping_add(i32::from(x) * i32::from(y));
    }
    s
}

/// Exact `(Σ aᵢbᵢ, Σ bᵢ²)` over i8, 16 codes per step.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn dot_sq_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    assert_eq!(a.len(), b.len());
    let (a16, a_tail) = a.as_chunks::<16>();
    let (b16, b_tail) = b.as_chunks::<16>();
    let mut ab = _mm256_setzero_si256();
    let mut bb = _mm256_setzero_si256();
    for (x, y) in a16.iter().zip(b16) {
        let y = ld_i8(y);
        ab = _mm256_add_epi32(ab, _mm256_madd_epi16(ld_i8(x), y));
        bb = _mm256_add_epi32(bb, _mm256_madd_epi16(y, y));
    }
    let (mut sab, mut sbb) = (hsum_i32(ab), hsum_i32(bb));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sab = sab.wrapping_add(i32::from(x) * i32::from(y));
        sbb = sbb.wrapping_add(i32::from(y) * i32::from(y));
    }
    (sab, sbb)
}




/// Differing bits, 4 words per step: each byte of the XOR is counted with two
/// `vpshufb` nibble lookups, `vpsadbw` sums the byte counts into u64 lanes (Muła,
/// Kurz, Lemire, "Faster Population Counts Using AVX2 Instructions", 2018). The last
/// 0–3 words take `popcnt`.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn hamming(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len());
    let (a4, a_tail) = a.as_chunks::<4>();
    let (b4, b_tail) = b.as_chunks::<4>();
    let mut s = 0u32;
    if !a4.is_empty() {
        #[rustfmt::skip]
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let nibble = _mm256_set1_epi8(0x0f);
        let mut acc = _mm256_setzero_si256();
        for (x, y) in a4.iter().zip(b4) {
            let v = _mm256_xor_si256(ld_u64(x), ld_u64(y));
            let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nibble));
            let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble));
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256()));
        }
        let acc = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
        s = (_mm_cvtsi128_si64(acc) as u64 + _mm_extract_epi64::<1>(acc) as u64) as u32;
    }
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += (x ^ y).count_ones();
    }
    s
}


/// Loads 8 floats.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld(x: &[f32; 8]) -> __m256 {
    // SAFETY: `x` is 8 readable f32, exactly the 32 bytes `vmovups` reads; it needs no
    // alignment.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// Loads 16 codes sign-extended to 16 i16 lanes.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld_i8(x: &[i8; 16]) -> __m256i {
    // SAFETY: `x` is 16 readable bytes, exactly what the 128-bit unaligned load reads.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(x.as_ptr().cast()) })
}

/// Loads 4 words.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld_u64(x: &[u64; 4]) -> __m256i {
    // SAFETY: `x` is 4 readable u64, exactly the 32 bytes the unaligned load reads.
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

/// Sum of the 8 lanes of `v`.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// Wrapping sum of the 8 i32 lanes of `v`.
#[target_feature(enable = "avx2,fma,popcnt")]
#[inline]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}
