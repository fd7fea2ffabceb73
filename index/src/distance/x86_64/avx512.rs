//! The `avx512` path: AVX-512 F + BW + VNNI + VPOPCNTDQ (Ice Lake, Sapphire Rapids,
//! Zen 4 and later). CPUs with AVX-512 but without VNNI or VPOPCNTDQ take `avx2`.
//!
//! - f32: four 16-lane FMA accumulators (64 floats per step), a 16-wide step, and a
//!   masked load for the last `dim % 16` floats, so no scalar tail.
//! - int8: `vpdpbusd` multiplies unsigned by signed bytes and adds each group of four
//!   products into an i32 lane. Codes are signed on both sides, so the row side is
//!   biased: `r ⊕ 0x80` read as u8 is `r + 128`, and
//!   `Σ q·r = Σ q·(r + 128) − 128·Σ q`, where `Σ q` is computed once per query. Every
//!   sum wraps in i32; the true result fits (see [`crate::distance::MAX_I8_DIM`]), so
//!   the wrapped one is exact. For `Σ r²` the same trick gives
//!   `Σ r·(r + 128) − 128·Σ r`, `Σ r` from `vpdpbusd` with a vector of ones. (The
//!   bias-and-correct form of an s8·s8 dot on u8·s8 hardware is the usual one, e.g.
//!   oneDNN's s8s8 convolutions.)
//! - binary: `vpopcntq` on the XOR of 8 words at a time, masked tail load.

use crate::distance::{for_rows, scalar};
use std::arch::x86_64::*;

/// Proof that this CPU has AVX-512 F, BW, VNNI and VPOPCNTDQ: only [`Avx512::detect`]
/// makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// `Some` if the running CPU has AVX-512 F, BW, VNNI and VPOPCNTDQ.
    pub(crate) fn detect() -> Option<Self> {
        let ok = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vpopcntdq");
        ok.then_some(Avx512(()))
    }
}

impl_isa!(Avx512);

f32_rows_kernels!("avx512f,avx512bw,avx512vnni,avx512vpopcntdq");
hamming_rows_kernel!("avx512f,avx512bw,avx512vnni,avx512vpopcntdq");

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum::<false>(a, b)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn l2(a: &[f32], b: &[f32]) -> f32 {
    sum::<true>(a, b)
}

/// `Σ aᵢbᵢ` (`L2 == false`) or `Σ (aᵢ − bᵢ)²` (`L2 == true`). Masked-off tail lanes
/// load as 0 on both sides and add 0.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn sum<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let step = |acc: __m512, x: __m512, y: __m512| {
        if L2 {
            let d = _mm512_sub_ps(x, y);
            _mm512_fmadd_ps(d, d, acc)
        } else {
            _mm512_fmadd_ps(x, y, acc)
        }
    };
    let (a64, a_tail) = a.as_chunks::<64>();
    let (b64, b_tail) = b.as_chunks::<64>();
    let mut acc = [_mm512_setzero_ps(); 4];
    for (x, y) in a64.iter().zip(b64) {
        let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
        for l in 0..4 {
            acc[l] = step(acc[l], ld(&x[l]), ld(&y[l]));
        }
    }
    let (a16, a_tail) = a_tail.as_chunks::<16>();
    let (b16, b_tail) = b_tail.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        acc[0] = step(acc[0], ld(x), ld(y));
    }
    if !a_tail.is_empty() {
        acc[1] = step(acc[1], ld_tail(a_tail), ld_tail(b_tail));
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])))
}

/// `(Σ aᵢbᵢ, Σ bᵢ²)` in one pass: two accumulators of each, 32 floats per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn dot_sq(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let (a32, a_tail) = a.as_chunks::<32>();
    let (b32, b_tail) = b.as_chunks::<32>();
    let mut ab = [_mm512_setzero_ps(); 2];
    let mut bb = [_mm512_setzero_ps(); 2];
    for (x, y) in a32.iter().zip(b32) {
        let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
        for l in 0..2 {
            let yl = ld(&y[l]);
            ab[l] = _mm512_fmadd_ps(ld(&x[l]), yl, ab[l]);
            bb[l] = _mm512_fmadd_ps(yl, yl, bb[l]);
        }
    }
    let (a16, a_tail) = a_tail.as_chunks::<16>();
    let (b16, b_tail) = b_tail.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        let yl = ld(y);
        ab[0] = _mm512_fmadd_ps(ld(x), yl, ab[0]);
        bb[0] = _mm512_fmadd_ps(yl, yl, bb[0]);
    }
    if !a_tail.is_empty() {
        let yl = ld_tail(b_tail);
        ab[1] = _mm512_fmadd_ps(ld_tail(a_tail), yl, ab[1]);
        bb[1] = _mm512_fmadd_ps(yl, yl, bb[1]);
    }
    (_mm512_reduce_add_ps(_mm512_add_ps(ab[0], ab[1])), _mm512_reduce_add_ps(_mm512_add_ps(bb[0], bb[1])))
}




/// Exact `Σ aᵢbᵢ` over i8.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    biased_dot_i8(a, b).wrapping_sub(sum_i8(a).wrapping_mul(128))
}

/// `Σ qᵢ·(rᵢ + 128)`, wrapping: four `vpdpbusd` accumulators over 256 codes per step.
/// Masked-off tail lanes load as 0, and `q = 0` makes their products 0.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn biased_dot_i8(q: &[i8], r: &[i8]) -> i32 {
    assert_eq!(q.len(), r.len());
    let bias = _mm512_set1_epi8(i8::MIN);
    let (q256, q_tail) = q.as_chunks::<256>();
    let (r256, r_tail) = r.as_chunks::<256>();
    let mut acc = [_mm512_setzero_si512(); 4];
    for (x, y) in q256.iter().zip(r256) {
        let (x, y) = (x.as_chunks::<64>().0, y.as_chunks::<64>().0);
        for l in 0..4 {
            acc[l] = _mm512_dpbusd_epi32(acc[l], _mm512_xor_si512(ld_i8(&y[l]), bias), ld_i8(&x[l]));
        }
    }
    let (q64, q_tail) = q_tail.as_chunks::<64>();
    let (r64, r_tail) = r_tail.as_chunks::<64>();
    for (x, y) in q64.iter().zip(r64) {
        acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_xor_si512(ld_i8(y), bias), ld_i8(x));
    }
    if !q_tail.is_empty() {
        acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_xor_si512(ld_i8_tail(r_tail), bias), ld_i8_tail(q_tail));
    }
    let acc = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
    _mm512_reduce_add_epi32(acc)
}

/// `Σ aᵢ` over i8 (exact: `|Σ| ≤ 128·len`).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn sum_i8(a: &[i8]) -> i32 {
    let ones = _mm512_set1_epi8(1);
    let (a64, a_tail) = a.as_chunks::<64>();
    let mut acc = _mm512_setzero_si512();
    for x in a64 {
        acc = _mm512_dpbusd_epi32(acc, ones, ld_i8(x));
    }
    if !a_tail.is_empty() {
        acc = _mm512_dpbusd_epi32(acc, ones, ld_i8_tail(a_tail));
    }
    _mm512_reduce_add_epi32(acc)
}

/// Exact `(Σ aᵢbᵢ, Σ bᵢ²)` over i8.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn dot_sq_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    biased_dot_sq_i8(a, b, sum_i8(a).wrapping_mul(128))
}

/// `(Σ qᵢrᵢ, Σ rᵢ²)` given `q_bias = 128·Σ qᵢ`: one pass of three `vpdpbusd` per 64
/// codes (`q·(r+128)`, `r·(r+128)`, `1·r`).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn biased_dot_sq_i8(q: &[i8], r: &[i8], q_bias: i32) -> (i32, i32) {
    assert_eq!(q.len(), r.len());
    let bias = _mm512_set1_epi8(i8::MIN);
    let ones = _mm512_set1_epi8(1);
    let (q64, q_tail) = q.as_chunks::<64>();
    let (r64, r_tail) = r.as_chunks::<64>();
    let mut qr = _mm512_setzero_si512();
    let mut rr = _mm512_setzero_si512();
    let mut rs = _mm512_setzero_si512();
    let mut step = |x: __m512i, y: __m512i| {
        let yu = _mm512_xor_si512(y, bias);
        qr = _mm512_dpbusd_epi32(qr, yu, x);
        rr = _mm512_dpbusd_epi32(rr, yu, y);
        rs = _mm512_dpbusd_epi32(rs, ones, y);
    };
    for (x, y) in q64.iter().zip(r64) {
        step(ld_i8(x), ld_i8(y));
    }
    if !q_tail.is_empty() {
        step(ld_i8_tail(q_tail), ld_i8_tail(r_tail));
    }
    // Σ r·(r+128) − 128·Σ r per lane first: one horizontal sum instead of two.
    let rr = _mm512_sub_epi32(rr, _mm512_slli_epi32::<7>(rs));
    (_mm512_reduce_add_epi32(qr).wrapping_sub(q_bias), _mm512_reduce_add_epi32(rr))
}

/// Four rows at a time ([`biased_dot_i8_x4`], the products scaled four lanes wide in
/// f64 exactly as [`scalar::ip_i8_from`] does one), then one row at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
fn ip_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
    assert_eq!(scales.len(), out.len());
    let d = q.len();
    let q_bias = sum_i8(q).wrapping_mul(128);
    let mut done = 0;
    if d > 0 {
        let (rows4, scales4, out4) = (rows.chunks_exact(4 * d), scales.chunks_exact(4), out.chunks_exact_mut(4));
        for ((r, sc), o) in rows4.zip(scales4).zip(out4) {
            let ab = _mm_sub_epi32(biased_dot_i8_x4(q, r), _mm_set1_epi32(q_bias));
            // (qs · scale) · ab in f64, one rounding to f32: `ip_i8_from`'s arithmetic.
            let sc = _mm256_mul_pd(_mm256_set1_pd(f64::from(qs)), _mm256_cvtps_pd(ld4(sc)));
            st4(o, _mm256_cvtpd_ps(_mm256_mul_pd(sc, _mm256_cvtepi32_pd(ab))));
            done += 4;
        }
    }
    let (rows, scales, out) = (&rows[done * d..], &scales[done..], &mut out[done..]);
    for_rows(rows, d, out, |i, r| scalar::ip_i8_from(qs, scales[i], biased_dot_i8(q, r).wrapping_sub(q_bias)));
}

/// `Σ qᵢ·(rᵢ + 128)` (wrapping) for each of the four rows of `rows` (`4·q.len()` codes),
/// as four i32 lanes: each query load serves four rows, eight `vpdpbusd` chains run
/// side by side (two per row), and the four horizontal sums share one shuffle tree.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn biased_dot_i8_x4(q: &[i8], rows: &[i8]) -> __m128i {
    let d = q.len();
    assert_eq!(rows.len(), 4 * d);
    let bias = _mm512_set1_epi8(i8::MIN);
    // (Written out, not with `array::map`: a closure there would not inherit this
    // function's target features, and its vector operations would become calls.)
    let r: [&[i8]; 4] = [&rows[..d], &rows[d..2 * d], &rows[2 * d..3 * d], &rows[3 * d..]];
    let r64 = [r[0].as_chunks::<64>().0, r[1].as_chunks::<64>().0, r[2].as_chunks::<64>().0, r[3].as_chunks::<64>().0];
    // Two accumulators per row (even and odd chunks), named rather than indexed by a
    // runtime value so that they stay in registers.
    let (mut even, mut odd) = ([_mm512_setzero_si512(); 4], [_mm512_setzero_si512(); 4]);
    let (q64, q_tail) = q.as_chunks::<64>();
    let (pairs, last) = q64.as_chunks::<2>();
    for (p, [x0, x1]) in pairs.iter().enumerate() {
        let (x0, x1) = (ld_i8(x0), ld_i8(x1));
        for j in 0..4 {
            let rj = &r64[j][2 * p..];
            even[j] = _mm512_dpbusd_epi32(even[j], _mm512_xor_si512(ld_i8(&rj[0]), bias), x0);
            odd[j] = _mm512_dpbusd_epi32(odd[j], _mm512_xor_si512(ld_i8(&rj[1]), bias), x1);
        }
    }
    if let [x] = last {
        let (x, c) = (ld_i8(x), 2 * pairs.len());
        for j in 0..4 {
            even[j] = _mm512_dpbusd_epi32(even[j], _mm512_xor_si512(ld_i8(&r64[j][c]), bias), x);
        }
    }
    if !q_tail.is_empty() {
        // Masked-off lanes load as 0 on both sides: q = 0 makes their products 0.
        let x = ld_i8_tail(q_tail);
        let start = d - q_tail.len();
        for j in 0..4 {
            odd[j] = _mm512_dpbusd_epi32(odd[j], _mm512_xor_si512(ld_i8_tail(&r[j][start..]), bias), x);
        }
    }
    let (a, b) = (_mm512_add_epi32(even[0], odd[0]), _mm512_add_epi32(even[1], odd[1]));
    let (c, e) = (_mm512_add_epi32(even[2], odd[2]), _mm512_add_epi32(even[3], odd[3]));
    // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3], then [a, b, c, e] partial sums.
    let ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    let ce = _mm512_add_epi32(_mm512_unpacklo_epi32(c, e), _mm512_unpackhi_epi32(c, e));
    let abce = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, ce), _mm512_unpackhi_epi64(ab, ce));
    let s = _mm256_add_epi32(_mm512_castsi512_si256(abce), _mm512_extracti64x4_epi64::<1>(abce));
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s))
}

/// Loads 4 floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from a slice of 4")]
fn ld4(x: &[f32]) -> __m128 {
    assert_eq!(x.len(), 4);
    // SAFETY: `x` is 4 readable floats, exactly the 16 bytes the unaligned load reads.
    unsafe { _mm_loadu_ps(x.as_ptr()) }
}

/// Stores 4 floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a vector store to a slice of 4")]
fn st4(out: &mut [f32], v: __m128) {
    assert_eq!(out.len(), 4);
    // SAFETY: `out` is 4 writable floats, exactly the 16 bytes the unaligned store writes.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), v) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
fn l2_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
    assert_eq!(scales.len(), out.len());
    let qq = dot_i8(q, q);
    let q_bias = sum_i8(q).wrapping_mul(128);
    for_rows(rows, q.len(), out, |i, r| {
        let (qr, rr) = biased_dot_sq_i8(q, r, q_bias);
        scalar::l2_i8_from(qs, qq, scales[i], rr, qr)
    });
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
fn cosine_i8_rows(q: &[i8], rows: &[i8], out: &mut [f32]) {
    let qq = dot_i8(q, q);
    let q_bias = sum_i8(q).wrapping_mul(128);
    for_rows(rows, q.len(), out, |_, r| {
        let (qr, rr) = biased_dot_sq_i8(q, r, q_bias);
        scalar::cosine_i8_from(qr, qq, rr)
    });
}

/// Differing bits: `vpopcntq` of the XOR, 32 words per step in four accumulators,
/// masked tail.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
fn hamming(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len());
    let step = |acc: __m512i, x: __m512i, y: __m512i| _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
    let (a32, a_tail) = a.as_chunks::<32>();
    let (b32, b_tail) = b.as_chunks::<32>();
    let mut acc = [_mm512_setzero_si512(); 4];
    for (x, y) in a32.iter().zip(b32) {
        let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
        for l in 0..4 {
            acc[l] = step(acc[l], ld_u64(&x[l]), ld_u64(&y[l]));
        }
    }
    let (a8, a_tail) = a_tail.as_chunks::<8>();
    let (b8, b_tail) = b_tail.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        acc[0] = step(acc[0], ld_u64(x), ld_u64(y));
    }
    if !a_tail.is_empty() {
        acc[1] = step(acc[1], ld_u64_tail(a_tail), ld_u64_tail(b_tail));
    }
    let acc = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    _mm512_reduce_add_epi64(acc) as u32
}


/// Loads 16 floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld(x: &[f32; 16]) -> __m512 {
    // SAFETY: `x` is 16 readable f32, exactly the 64 bytes the unaligned load reads.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
}

/// Loads the first `min(x.len(), 16)` floats of `x`, zeros in the other lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a masked vector load")]
fn ld_tail(x: &[f32]) -> __m512 {
    let n = x.len().min(16);
    let mask = ((1u32 << n) - 1) as __mmask16;
    // SAFETY: the mask enables lanes 0..n only, and n ≤ x.len(), so every enabled lane
    // is inside `x`; an AVX-512 masked load does not access disabled lanes (it cannot
    // fault on them), so nothing outside `x` is read.
    unsafe { _mm512_maskz_loadu_ps(mask, x.as_ptr()) }
}

/// Loads 64 codes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld_i8(x: &[i8; 64]) -> __m512i {
    // SAFETY: `x` is 64 readable bytes, exactly what the unaligned load reads.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

/// Loads the first `min(x.len(), 64)` codes of `x`, zeros in the other lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a masked vector load")]
fn ld_i8_tail(x: &[i8]) -> __m512i {
    let n = x.len().min(64);
    let mask: __mmask64 = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    // SAFETY: as in `ld_tail`: only lanes 0..n ≤ x.len() are enabled, and disabled
    // lanes are not accessed.
    unsafe { _mm512_maskz_loadu_epi8(mask, x.as_ptr()) }
}

/// Loads 8 words.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a vector load from an array reference")]
fn ld_u64(x: &[u64; 8]) -> __m512i {
    // SAFETY: `x` is 8 readable u64, exactly the 64 bytes the unaligned load reads.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

/// Loads the first `min(x.len(), 8)` words of `x`, zeros in the other lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vpopcntdq")]
#[inline]
#[expect(unsafe_code, reason = "a masked vector load")]
fn ld_u64_tail(x: &[u64]) -> __m512i {
    let n = x.len().min(8);
    let mask = ((1u32 << n) - 1) as __mmask8;
    // SAFETY: as in `ld_tail`: only lanes 0..n ≤ x.len() are enabled, and disabled
    // lanes are not accessed.
    unsafe { _mm512_maskz_loadu_epi64(mask, x.as_ptr().cast()) }
}
