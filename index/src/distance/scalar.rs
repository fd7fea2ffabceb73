//! The portable reference kernels. Plain safe Rust; every SIMD path is tested against
//! them (DiskANN keeps its reference kernels the same way, `diskann-vector`'s
//! `distance/reference.rs`).
//!
//! The f32 sums keep eight partial sums (lane `i % 8`), which lets the compiler
//! vectorize them with the baseline instruction set (SSE2 on x86_64) and makes them a
//! usable fallback. The integer kernels are exact, so every path must match them bit
//! for bit; the f32 ones agree within the rounding bound in [`super`]'s docs.
//!
//! The `*_from` functions turn the raw sums into a metric. Every path calls these same
//! functions, so a path's result differs from the scalar one only by the sums.

use super::Isa;

/// The scalar path's token (always available).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Isa for Scalar {
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
    fn l2(self, a: &[f32], b: &[f32]) -> f32 {
        l2(a, b)
    }
    fn dot_sq(self, a: &[f32], b: &[f32]) -> (f32, f32) {
        dot_sq(a, b)
    }
    fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        super::for_rows(rows, q.len(), out, |_, r| dot(q, r));
    }
    fn l2_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        super::for_rows(rows, q.len(), out, |_, r| l2(q, r));
    }
    fn cosine_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        let qq = dot(q, q);
        super::for_rows(rows, q.len(), out, |_, r| {
            let (qr, rr) = dot_sq(q, r);
            cosine_from(qr, qq, rr)
        });
    }
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        dot_i8(a, b)
    }
    fn dot_sq_i8(self, a: &[i8], b: &[i8]) -> (i32, i32) {
        dot_sq_i8(a, b)
    }
    fn ip_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
        super::for_rows(rows, q.len(), out, |i, r| ip_i8_from(qs, scales[i], dot_i8(q, r)));
    }
    fn l2_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
        let qq = dot_i8(q, q);
        super::for_rows(rows, q.len(), out, |i, r| {
            let (qr, rr) = dot_sq_i8(q, r);
            l2_i8_from(qs, qq, scales[i], rr, qr)
        });
    }
    fn cosine_i8_rows(self, q: &[i8], rows: &[i8], out: &mut [f32]) {
        let qq = dot_i8(q, q);
        super::for_rows(rows, q.len(), out, |_, r| {
            let (qr, rr) = dot_sq_i8(q, r);
            cosine_i8_from(qr, qq, rr)
        });
    }
    fn hamming(self, a: &[u64], b: &[u64]) -> u32 {
        hamming(a, b)
    }
    fn hamming_rows(self, q: &[u64], rows: &[u64], out: &mut [u32]) {
        super::for_rows(rows, q.len(), out, |_, r| hamming(q, r));
    }
}

/// `Σ aᵢ·bᵢ` (eight partial sums, then a fixed tree, then the tail in order).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    sum8(a, b, |x, y| x * y)
}

/// `Σ (aᵢ − bᵢ)²`, the squared Euclidean distance.
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2: length mismatch");
    sum8(a, b, |x, y| (x - y) * (x - y))
}

/// `(Σ aᵢ·bᵢ, Σ bᵢ²)`: the two sums that cosine needs per row (the query's own
/// `Σ aᵢ²` is computed once per query).
pub fn dot_sq(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "dot_sq: length mismatch");
    (sum8(a, b, |x, y| x * y), sum8(b, b, |x, y| x * y))
}

/// `Σ aᵢ·bᵢ` over i8 codes, exact in i32 for `len ≤` [`super::MAX_I8_DIM`].
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8: length mismatch");
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// `(Σ aᵢ·bᵢ, Σ bᵢ²)` over i8 codes, exact in i32 for `len ≤` [`super::MAX_I8_DIM`].
pub fn dot_sq_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    (dot_i8(a, b), dot_i8(b, b))
}

/// Number of differing bits between two packed bit vectors of equal word count.
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: length mismatch");
    a.iter().zip(b).map(|(&x, &y)| (x ^ y).count_ones()).sum()
}

/// Cosine similarity from `Σab`, `Σaa`, `Σbb`: `ab / √(aa·bb)`, finished in f64 so
/// the product of the norms cannot overflow; 0 when either norm² is 0.
#[inline(always)]
pub(crate) fn cosine_from(ab: f32, aa: f32, bb: f32) -> f32 {
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (f64::from(ab) / (f64::from(aa) * f64::from(bb)).sqrt()) as f32
}

/// Inner product of two dequantized int8 vectors: `sa·sb·Σab` (f64, then rounded once).
#[inline(always)]
pub(crate) fn ip_i8_from(sa: f32, sb: f32, ab: i32) -> f32 {
    (f64::from(sa) * f64::from(sb) * f64::from(ab)) as f32
}

/// Squared L2 of two dequantized int8 vectors: `sa²·Σaa + sb²·Σbb − 2·sa·sb·Σab`,
/// in f64 (each integer sum is exact in f64), clamped at 0, rounded once to f32.
#[inline(always)]
pub(crate) fn l2_i8_from(sa: f32, aa: i32, sb: f32, bb: i32, ab: i32) -> f32 {
    let (sa, sb) = (f64::from(sa), f64::from(sb));
    let d = sa * sa * f64::from(aa) + sb * sb * f64::from(bb) - 2.0 * sa * sb * f64::from(ab);
    d.max(0.0) as f32
}

/// Cosine of two int8 code vectors (their scales cancel): `ab / √(aa·bb)`, 0 when
/// either is the zero vector.
#[inline(always)]
pub(crate) fn cosine_i8_from(ab: i32, aa: i32, bb: i32) -> f32 {
    if aa == 0 || bb == 0 {
        return 0.0;
    }
    (f64::from(ab) / (f64::from(aa) * f64::from(bb)).sqrt()) as f32
}

/// `Σ f(aᵢ, bᵢ)` with eight partial sums (lane `i % 8`), summed as
/// `((s0+s4)+(s1+s5)) + ((s2+s6)+(s3+s7))`, then the tail in order.
#[inline(always)]
fn sum8(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    for (xa, xb) in a8.iter().zip(b8) {
        for l in 0..8 {
            acc[l] += f(xa[l], xb[l]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += f(x, y);
    }
    s
}
