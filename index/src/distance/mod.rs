//! Distance kernels: f32 (dot, squared L2, cosine), int8 codes with a per-vector scale
//! (inner product, squared L2, cosine) and packed bits (Hamming), each in a one-pair
//! form and a `*_rows` form (one query against many contiguous rows, the loop of a
//! flat scan and of a graph hop's neighbour list).
//!
//! # Shapes and units
//!
//! | kind | one vector | `rows` (n vectors) | result |
//! |---|---|---|---|
//! | f32 | `dim` × `f32` | `n·dim` f32, row-major, no padding | f32 |
//! | int8 | `dim` × `i8` codes + one f32 scale | `n·dim` i8, row-major, no padding, and `scales: &[f32]` of `n` (row `i`'s scale is `scales[i]`, not inside the row) | f32 (raw [`dot_i8`]: exact i32) |
//! | binary | `⌈dim/64⌉` × `u64` | `n·⌈dim/64⌉` u64, row-major | u32 bit count |
//!
//! Binary bit order: component `j` is bit `j % 64` (value `1 << (j % 64)`) of word
//! `j / 64`; bits at positions `≥ dim` of the last word are 0 (the kernels count every
//! bit, so padding must agree). [`crate::quant`] makes both kinds of codes and states
//! their error.
//!
//! Results are similarities for `dot`/`ip`/`cosine` (larger is closer) and distances
//! for `l2` (squared, in the vectors' units squared) and `hamming` (bits). Cosine of a
//! zero vector is defined as 0. The int8 kernels work on the dequantized vectors
//! `scale·code`: `ip = sa·sb·Σab`, `l2 = sa²Σaa + sb²Σbb − 2·sa·sb·Σab`, `cosine =
//! Σab/√(ΣaaΣbb)` (scales cancel), where the sums are exact i32 and the finishing
//! arithmetic is f64 rounded once to f32 and shared by every path: int8 and binary
//! results are therefore bit-identical on every path.
//!
//! Panics: every function panics on a shape mismatch (`a.len() != b.len()`, or
//! `rows.len() != out.len() · q.len()`, or `scales.len() != out.len()`), and the int8
//! ones when `dim > ` [`MAX_I8_DIM`]. f32 inputs are expected finite; NaN or
//! infinities propagate as IEEE arithmetic says (no panic).
//!
//! # Paths and dispatch
//!
//! | path | needs | f32 | int8 | binary |
//! |---|---|---|---|---|
//! | `scalar` | nothing | 8 partial sums (auto-vectorized) | i32 sums | `count_ones` |
//! | `avx2` (x86_64) | AVX2, FMA, POPCNT | 4 × 8-lane FMA | sign-extend to i16, `vpmaddwd` | `popcnt` per word |
//! | `avx512` (x86_64) | AVX-512 F, BW, VNNI, VPOPCNTDQ | 4 × 16-lane FMA, masked tail | `vpdpbusd` (u8×i8) with a +128 bias | `vpopcntq` |
//! | `neon` (aarch64) | NEON | 4 × 4-lane FMA | `smull` to i16, `sadalp` to i32 | `cnt` + pairwise adds |
//! | `neon+dotprod` (aarch64) | NEON, DotProd | as `neon` | `sdot` | as `neon` |
//!
//! The `avx512` level is the Ice Lake / Zen 4 set (as DiskANN's `V4` level includes
//! VNNI); AVX-512 CPUs without VNNI or VPOPCNTDQ (Skylake-SP) take `avx2`. The choice is
//! made once, on first use ([`Kernel::best`]: the last of [`Kernel::available`]), and
//! cached in a [`OnceLock`]; afterwards each call is one atomic load and a branch on the
//! path. A path exists only as a token that its CPU detection made, so its safe methods
//! cannot run on a CPU without the features.
//!
//! # Agreement between paths
//!
//! int8 and binary: exact. f32: SIMD paths sum in a different order from the scalar
//! reference (and use fused multiply-adds), so the sums agree within rounding: for
//! `n` terms, `|path − scalar| ≤ 2·γ(n+1)·Σ|termᵢ|` with `γ(k) = k·ε/(1 − k·ε)` and
//! `ε = 2⁻²⁴` (each order is within `γ(n+1)` of the exact sum, Higham, *Accuracy and
//! Stability of Numerical Algorithms*, §4.2); for cosine, whose terms are bounded by
//! `|a||b|`, `|path − scalar| ≤ 4·γ(n+1) + 8ε`. One path is used for the life of the
//! process, and `*_rows` gives the same bits as the one-pair form, so a given input
//! always yields the same result. `tests.rs` checks all of this for every dim in
//! 0..=1100.
//!
//! All `unsafe` code of the crate is in the architecture modules below.

use std::sync::OnceLock;

pub mod scalar;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[macro_use]
mod arch_shared;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
mod aarch64;

/// Largest int8 dimension accepted: with codes in `[-128, 127]` every i32 sum stays
/// below `2³⁰` in magnitude, so the integer kernels are exact.
pub const MAX_I8_DIM: usize = 65_536;

/// One set of kernels that this CPU can run (a path: scalar, AVX2, AVX-512, NEON…).
///
/// Obtain one with [`Kernel::best`] (what the free functions use), [`Kernel::scalar`],
/// or [`Kernel::available`] (every path this CPU supports, for tests and benchmarks).
#[derive(Clone, Copy, Debug)]
pub struct Kernel(Imp);

#[derive(Clone, Copy, Debug)]
enum Imp {
    Scalar(scalar::Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::avx2::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86_64::avx512::Avx512),
    #[cfg(target_arch = "aarch64")]
    Neon(aarch64::neon::Neon),
    #[cfg(target_arch = "aarch64")]
    NeonDot(aarch64::dotprod::NeonDot),
}

/// The kernels every path implements. Shapes are checked by [`Kernel`]'s methods
/// before dispatch; implementations check again what their memory safety needs.
pub(crate) trait Isa: Copy {
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
    fn l2(self, a: &[f32], b: &[f32]) -> f32;
    /// `(Σ aᵢbᵢ, Σ bᵢ²)`.
    fn dot_sq(self, a: &[f32], b: &[f32]) -> (f32, f32);
    fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]);
    fn l2_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]);
    /// Must equal `cosine_from(dot_sq(q, row), dot(q, q))` bit for bit.
    fn cosine_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]);
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32;
    /// `(Σ aᵢbᵢ, Σ bᵢ²)`.
    fn dot_sq_i8(self, a: &[i8], b: &[i8]) -> (i32, i32);
    fn ip_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]);
    fn l2_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]);
    fn cosine_i8_rows(self, q: &[i8], rows: &[i8], out: &mut [f32]);
    fn hamming(self, a: &[u64], b: &[u64]) -> u32;
    fn hamming_rows(self, q: &[u64], rows: &[u64], out: &mut [u32]);
}

/// Runs `$body` with `$t` bound to the path's token.
macro_rules! on_path {
    ($k:expr, |$t:ident| $body:expr) => {
        match $k.0 {
            Imp::Scalar($t) => $body,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2($t) => $body,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512($t) => $body,
            #[cfg(target_arch = "aarch64")]
            Imp::Neon($t) => $body,
            #[cfg(target_arch = "aarch64")]
            Imp::NeonDot($t) => $body,
        }
    };
}

static BEST: OnceLock<Kernel> = OnceLock::new();

impl Kernel {
    /// The fastest path this CPU supports, detected once and cached.
    #[inline]
    pub fn best() -> Kernel {
        *BEST.get_or_init(|| *Kernel::available().last().expect("scalar is always available"))
    }

    /// The portable reference path.
    pub fn scalar() -> Kernel {
        Kernel(Imp::Scalar(scalar::Scalar))
    }

    /// Every path this CPU can run, slowest (scalar) first, fastest last.
    pub fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut out = vec![Kernel::scalar()];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(t) = x86_64::avx2::Avx2::detect() {
                out.push(Kernel(Imp::Avx2(t)));
            }
            if let Some(t) = x86_64::avx512::Avx512::detect() {
                out.push(Kernel(Imp::Avx512(t)));
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if let Some(t) = aarch64::neon::Neon::detect() {
                out.push(Kernel(Imp::Neon(t)));
            }
            if let Some(t) = aarch64::dotprod::NeonDot::detect() {
                out.push(Kernel(Imp::NeonDot(t)));
            }
        }
        out
    }

    /// Short name for logs, `INFO` and benchmarks: `scalar`, `avx2`, `avx512`, `neon`
    /// or `neon+dotprod`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Imp::Scalar(_) => "scalar",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(_) => "avx512",
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => "neon",
            #[cfg(target_arch = "aarch64")]
            Imp::NeonDot(_) => "neon+dotprod",
        }
    }

    /// Dot product `Σ aᵢ·bᵢ` (a similarity; cosine of unit vectors).
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: length mismatch");
        on_path!(self, |t| t.dot(a, b))
    }

    /// `out[i] = dot(q, rows[i·d .. (i+1)·d])`, `d = q.len()`.
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()`.
    #[inline]
    pub fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        check_rows("dot_rows", q.len(), rows.len(), out.len());
        on_path!(self, |t| t.dot_rows(q, rows, out))
    }

    /// Squared Euclidean distance `Σ (aᵢ − bᵢ)²`.
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    #[inline]
    pub fn l2(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "l2: length mismatch");
        on_path!(self, |t| t.l2(a, b))
    }

    /// `out[i] = l2(q, row i)`, rows as in [`Kernel::dot_rows`].
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()`.
    #[inline]
    pub fn l2_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        check_rows("l2_rows", q.len(), rows.len(), out.len());
        on_path!(self, |t| t.l2_rows(q, rows, out))
    }

    /// Cosine similarity `Σaᵢbᵢ / (|a|·|b|)`, in `[-1, 1]` up to rounding; 0 if either
    /// vector is zero. For vectors already normalized, [`Kernel::dot`] is cheaper.
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    #[inline]
    pub fn cosine(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "cosine: length mismatch");
        on_path!(self, |t| {
            let (ab, bb) = t.dot_sq(a, b);
            scalar::cosine_from(ab, t.dot(a, a), bb)
        })
    }

    /// `out[i] = cosine(q, row i)`, rows as in [`Kernel::dot_rows`]; `|q|` is computed
    /// once.
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()`.
    #[inline]
    pub fn cosine_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        check_rows("cosine_rows", q.len(), rows.len(), out.len());
        on_path!(self, |t| t.cosine_rows(q, rows, out))
    }

    /// Exact `Σ aᵢ·bᵢ` of two int8 code vectors (no scales).
    ///
    /// # Panics
    /// If `a.len() != b.len()` or `a.len() > MAX_I8_DIM`.
    #[inline]
    pub fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        check_i8("dot_i8", a.len(), b.len());
        on_path!(self, |t| t.dot_i8(a, b))
    }

    /// Inner product of the dequantized vectors, `sa·sb·Σ aᵢbᵢ`.
    ///
    /// # Panics
    /// If `a.len() != b.len()` or `a.len() > MAX_I8_DIM`.
    #[inline]
    pub fn ip_i8(self, a: &[i8], sa: f32, b: &[i8], sb: f32) -> f32 {
        check_i8("ip_i8", a.len(), b.len());
        scalar::ip_i8_from(sa, sb, on_path!(self, |t| t.dot_i8(a, b)))
    }

    /// `out[i] = ip_i8(q, qs, row i, scales[i])`; row `i` is `rows[i·d .. (i+1)·d]`.
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()`, `scales.len() != out.len()` or
    /// `q.len() > MAX_I8_DIM`.
    #[inline]
    pub fn ip_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
        check_i8_rows("ip_i8_rows", q.len(), rows.len(), scales.len(), out.len());
        on_path!(self, |t| t.ip_i8_rows(q, qs, rows, scales, out))
    }

    /// Squared L2 distance of the dequantized vectors `sa·a` and `sb·b`.
    ///
    /// # Panics
    /// If `a.len() != b.len()` or `a.len() > MAX_I8_DIM`.
    #[inline]
    pub fn l2_i8(self, a: &[i8], sa: f32, b: &[i8], sb: f32) -> f32 {
        check_i8("l2_i8", a.len(), b.len());
        on_path!(self, |t| {
            let (ab, bb) = t.dot_sq_i8(a, b);
            scalar::l2_i8_from(sa, t.dot_i8(a, a), sb, bb, ab)
        })
    }

    /// `out[i] = l2_i8(q, qs, row i, scales[i])`, rows as in [`Kernel::ip_i8_rows`].
    ///
    /// # Panics
    /// As [`Kernel::ip_i8_rows`].
    #[inline]
    pub fn l2_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
        check_i8_rows("l2_i8_rows", q.len(), rows.len(), scales.len(), out.len());
        on_path!(self, |t| t.l2_i8_rows(q, qs, rows, scales, out))
    }

    /// Cosine similarity of two int8 code vectors (scales cancel); 0 if either is zero.
    ///
    /// # Panics
    /// If `a.len() != b.len()` or `a.len() > MAX_I8_DIM`.
    #[inline]
    pub fn cosine_i8(self, a: &[i8], b: &[i8]) -> f32 {
        check_i8("cosine_i8", a.len(), b.len());
        on_path!(self, |t| {
            let (ab, bb) = t.dot_sq_i8(a, b);
            scalar::cosine_i8_from(ab, t.dot_i8(a, a), bb)
        })
    }

    /// `out[i] = cosine_i8(q, row i)`, rows as in [`Kernel::ip_i8_rows`].
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()` or `q.len() > MAX_I8_DIM`.
    #[inline]
    pub fn cosine_i8_rows(self, q: &[i8], rows: &[i8], out: &mut [f32]) {
        check_i8_rows("cosine_i8_rows", q.len(), rows.len(), out.len(), out.len());
        on_path!(self, |t| t.cosine_i8_rows(q, rows, out))
    }

    /// Hamming distance: the number of differing bits of two packed bit vectors.
    ///
    /// # Panics
    /// If `a.len() != b.len()` (in words).
    #[inline]
    pub fn hamming(self, a: &[u64], b: &[u64]) -> u32 {
        assert_eq!(a.len(), b.len(), "hamming: length mismatch");
        on_path!(self, |t| t.hamming(a, b))
    }

    /// `out[i] = hamming(q, rows[i·w .. (i+1)·w])`, `w = q.len()` words.
    ///
    /// # Panics
    /// If `rows.len() != out.len() · q.len()`.
    #[inline]
    pub fn hamming_rows(self, q: &[u64], rows: &[u64], out: &mut [u32]) {
        check_rows("hamming_rows", q.len(), rows.len(), out.len());
        on_path!(self, |t| t.hamming_rows(q, rows, out))
    }
}

/// [`Kernel::dot`] with the process-wide best path.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Kernel::best().dot(a, b)
}

/// [`Kernel::dot_rows`] with the process-wide best path.
#[inline]
pub fn dot_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    Kernel::best().dot_rows(q, rows, out)
}

/// [`Kernel::l2`] with the process-wide best path.
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    Kernel::best().l2(a, b)
}

/// [`Kernel::l2_rows`] with the process-wide best path.
#[inline]
pub fn l2_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    Kernel::best().l2_rows(q, rows, out)
}

/// [`Kernel::cosine`] with the process-wide best path.
#[inline]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    Kernel::best().cosine(a, b)
}

/// [`Kernel::cosine_rows`] with the process-wide best path.
#[inline]
pub fn cosine_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    Kernel::best().cosine_rows(q, rows, out)
}

/// [`Kernel::dot_i8`] with the process-wide best path.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    Kernel::best().dot_i8(a, b)
}

/// [`Kernel::ip_i8`] with the process-wide best path.
#[inline]
pub fn ip_i8(a: &[i8], sa: f32, b: &[i8], sb: f32) -> f32 {
    Kernel::best().ip_i8(a, sa, b, sb)
}

/// [`Kernel::ip_i8_rows`] with the process-wide best path.
#[inline]
pub fn ip_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
    Kernel::best().ip_i8_rows(q, qs, rows, scales, out)
}

/// [`Kernel::l2_i8`] with the process-wide best path.
#[inline]
pub fn l2_i8(a: &[i8], sa: f32, b: &[i8], sb: f32) -> f32 {
    Kernel::best().l2_i8(a, sa, b, sb)
}

/// [`Kernel::l2_i8_rows`] with the process-wide best path.
#[inline]
pub fn l2_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
    Kernel::best().l2_i8_rows(q, qs, rows, scales, out)
}

/// [`Kernel::cosine_i8`] with the process-wide best path.
#[inline]
pub fn cosine_i8(a: &[i8], b: &[i8]) -> f32 {
    Kernel::best().cosine_i8(a, b)
}

/// [`Kernel::cosine_i8_rows`] with the process-wide best path.
#[inline]
pub fn cosine_i8_rows(q: &[i8], rows: &[i8], out: &mut [f32]) {
    Kernel::best().cosine_i8_rows(q, rows, out)
}

/// [`Kernel::hamming`] with the process-wide best path.
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    Kernel::best().hamming(a, b)
}

/// [`Kernel::hamming_rows`] with the process-wide best path.
#[inline]
pub fn hamming_rows(q: &[u64], rows: &[u64], out: &mut [u32]) {
    Kernel::best().hamming_rows(q, rows, out)
}

#[inline]
fn check_rows(what: &str, dim: usize, rows: usize, n: usize) {
    assert_eq!(Some(rows), n.checked_mul(dim), "{what}: shape mismatch (rows {rows}, dim {dim}, out {n})");
}

#[inline]
fn check_i8(what: &str, a: usize, b: usize) {
    assert_eq!(a, b, "{what}: length mismatch");
    assert!(a <= MAX_I8_DIM, "{what}: dim {a} > MAX_I8_DIM");
}

#[inline]
fn check_i8_rows(what: &str, dim: usize, rows: usize, scales: usize, n: usize) {
    check_rows(what, dim, rows, n);
    assert_eq!(scales, n, "{what}: {scales} scales for {n} rows");
    assert!(dim <= MAX_I8_DIM, "{what}: dim {dim} > MAX_I8_DIM");
}

/// `out[i] = f(i, row i)` for the `dim`-wide rows of `rows`; with `dim == 0` every row
/// is the empty slice. The architecture modules call it from their `target_feature`
/// functions with a closure defined there, so the closure and the kernel it calls
/// inherit those features and inline into one loop.
///
/// # Panics
/// If `rows.len() != out.len() · dim`.
#[inline(always)]
pub(crate) fn for_rows<T, O>(rows: &[T], dim: usize, out: &mut [O], mut f: impl FnMut(usize, &[T]) -> O) {
    check_rows("rows", dim, rows.len(), out.len());
    if dim == 0 {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(i, &[]);
        }
        return;
    }
    for (i, (o, row)) in out.iter_mut().zip(rows.chunks_exact(dim)).enumerate() {
        *o = f(i, row);
    }
}

#[cfg(test)]
mod tests;
