//! x86_64 paths: the only place with x86 intrinsics.
//!
//! Each file holds one path: a token type that only its `detect` makes (after
//! `is_x86_feature_detected!` found every feature), and the path's kernels as safe
//! `#[target_feature]` functions. Those functions check their own bounds; the one
//! thing a caller must promise is the CPU features, which the token proves, so the
//! [`Isa`](super::Isa) impl that `impl_isa!` (`distance/arch_shared.rs`) writes for the token is the only place a
//! kernel is entered. Inside the kernels, `unsafe` is limited to loads from
//! fixed-size arrays (whose type proves the length) and masked tail loads.

pub(crate) mod avx2;
pub(crate) mod avx512;
