//! What every SIMD path shares, as macros the path modules invoke (they must be
//! defined before those modules, so `distance/mod.rs` declares this file first): the
//! [`Isa`](crate::distance::Isa) impl that enters a path's kernels, and the `*_rows`
//! loops around its per-pair kernels. Part of the architecture code: the `unsafe` in
//! `impl_isa!` expands only inside the `x86_64` and `aarch64` modules.

/// Implements [`Isa`](crate::distance::Isa) for a token by calling the free kernel functions of
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

/// The `*_rows` kernels of a path over f32 (`dot_rows`, `l2_rows`, `cosine_rows`),
/// written once and instantiated in each path's module with that path's
/// `#[target_feature]` set, so that its per-pair kernels (`dot`, `l2`, `dot_sq`) inline
/// into the row loop with the same features.
macro_rules! f32_rows_kernels {
    ($features:literal) => {
        #[target_feature(enable = $features)]
        pub(super) fn dot_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
            crate::distance::for_rows(rows, q.len(), out, |_, r| dot(q, r));
        }

        #[target_feature(enable = $features)]
        pub(super) fn l2_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
            crate::distance::for_rows(rows, q.len(), out, |_, r| l2(q, r));
        }

        #[target_feature(enable = $features)]
        pub(super) fn cosine_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
            let qq = dot(q, q);
            crate::distance::for_rows(rows, q.len(), out, |_, r| {
                let (qr, rr) = dot_sq(q, r);
                crate::distance::scalar::cosine_from(qr, qq, rr)
            });
        }
    };
}

/// The int8 `*_rows` kernels (`ip_i8_rows`, `l2_i8_rows`, `cosine_i8_rows`) from a
/// path's `dot_i8` and `dot_sq_i8`, as [`f32_rows_kernels`] does for f32.
macro_rules! i8_rows_kernels {
    ($features:literal) => {
        #[target_feature(enable = $features)]
        fn ip_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
            assert_eq!(scales.len(), out.len());
            crate::distance::for_rows(rows, q.len(), out, |i, r| crate::distance::scalar::ip_i8_from(qs, scales[i], dot_i8(q, r)));
        }

        #[target_feature(enable = $features)]
        fn l2_i8_rows(q: &[i8], qs: f32, rows: &[i8], scales: &[f32], out: &mut [f32]) {
            assert_eq!(scales.len(), out.len());
            let qq = dot_i8(q, q);
            crate::distance::for_rows(rows, q.len(), out, |i, r| {
                let (qr, rr) = dot_sq_i8(q, r);
                crate::distance::scalar::l2_i8_from(qs, qq, scales[i], rr, qr)
            });
        }

        #[target_feature(enable = $features)]
        fn cosine_i8_rows(q: &[i8], rows: &[i8], out: &mut [f32]) {
            let qq = dot_i8(q, q);
            crate::distance::for_rows(rows, q.len(), out, |_, r| {
                let (qr, rr) = dot_sq_i8(q, r);
                crate::distance::scalar::cosine_i8_from(qr, qq, rr)
            });
        }
    };
}

/// `hamming_rows` from a path's `hamming`, as [`f32_rows_kernels`] does for f32.
macro_rules! hamming_rows_kernel {
    ($features:literal) => {
        #[target_feature(enable = $features)]
        pub(super) fn hamming_rows(q: &[u64], rows: &[u64], out: &mut [u32]) {
            crate::distance::for_rows(rows, q.len(), out, |_, r| hamming(q, r));
        }
    };
}
