//! aarch64 paths: the only place with Arm intrinsics (and the one `sdot` in inline
//! assembly, because Rust's `vdotq_s32` is not stable yet).
//!
//! As on x86_64: a token type that only its `detect` makes (after
//! `is_aarch64_feature_detected!` found every feature), and the path's kernels as
//! safe `#[target_feature]` functions that check their own bounds, entered only
//! through the [`Isa`](super::Isa) impl that [`impl_isa`] writes for the token.
//! Inside the kernels, `unsafe` is limited to loads from fixed-size arrays (whose
//! type proves the length) and the `sdot` instruction.

/// Implements [`Isa`](super::Isa) for a token by calling the free kernel functions of
/// the invoking module, which must carry exactly the `#[target_feature]` set that the
/// token's `detect` checks.
macro_rules! impl_isa {
    ($token:ty) => {
        #[expect(unsafe_code, reason = "entering target_feature kernels; the token proves the CPU features")]
        impl crate::distance::Isa for $token {
            // SAFETY (every call below): a value of this token type exists only if its
            // `detect` saw every feature enabled by the called functions' `#[target_feature]`
            // on the running CPU. Apart from that requirement the functions are safe: they
            // check their slice bounds themselves.
            #[inline]
            fn dot(self, a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: see above.
                unsafe { dot(a, b) }
            }
            #[inline]
            fn l2(self, a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: see above.
                unsafe { l2(a, b) }
            }
            #[inline]
            fn dot_sq(self, a: &[f32], b: &[f32]) -> (f32, f32) {
                // SAFETY: see above.
                unsafe { dot_sq(a, b) }
            }
            #[inline]
            fn dot_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { dot_rows(q, rows, out) }
            }
            #[inline]
            fn l2_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { l2_rows(q, rows, out) }
            }
            #[inline]
            fn cosine_rows(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { cosine_rows(q, rows, out) }
            }
            #[inline]
            fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
                // SAFETY: see above.
                unsafe { dot_i8(a, b) }
            }
            #[inline]
            fn dot_sq_i8(self, a: &[i8], b: &[i8]) -> (i32, i32) {
                // SAFETY: see above.
                unsafe { dot_sq_i8(a, b) }
            }
            #[inline]
            fn ip_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { ip_i8_rows(q, qs, rows, scales, out) }
            }
            #[inline]
            fn l2_i8_rows(self, q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { l2_i8_rows(q, qs, rows, scales, out) }
            }
            #[inline]
            fn cosine_i8_rows(self, q: &[i8], rows: &[i8], out: &mut [f32]) {
                // SAFETY: see above.
                unsafe { cosine_i8_rows(q, rows, out) }
            }
            #[inline]
            fn hamming(self, a: &[u64], b: &[u64]) -> u32 {
                // SAFETY: see above.
                unsafe { hamming(a, b) }
            }
            #[inline]
            fn hamming_rows(self, q: &[u64], rows: &[u64], out: &mut [u32]) {
                // SAFETY: see above.
                unsafe { hamming_rows(q, rows, out) }
            }
        }
    };
}

pub(crate) mod neon;
pub(crate) mod dotprod;
