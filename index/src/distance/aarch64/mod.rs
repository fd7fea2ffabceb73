//! aarch64 paths: the only place with Arm intrinsics (and the one `sdot` in inline
//! assembly, because Rust's `vdotq_s32` is not stable yet).
//!
//! As on x86_64: a token type that only its `detect` makes (after
//! `is_aarch64_feature_detected!` found every feature), and the path's kernels as
//! safe `#[target_feature]` functions that check their own bounds, entered only
//! through the [`Isa`](super::Isa) impl that `impl_isa!` (`distance/arch_shared.rs`) writes for the token.
//! Inside the kernels, `unsafe` is limited to loads from fixed-size arrays (whose
//! type proves the length) and the `sdot` instruction.

pub(crate) mod neon;
pub(crate) mod dotprod;
