//! Quantizers that turn f32 vectors into the codes the int8 and binary kernels of
//! [`crate::distance`] read. Codes navigate (a flat scan's first pass, a graph's hops);
//! the f32 originals re-rank (DESIGN §4.2–§4.4).
//!
//! - [`int8`]: symmetric per-vector scale, `dim` bytes + one f32 per vector (about a
//!   quarter of f32's size), error at most half a quantization step per component.
//! - [`binary`]: one sign bit per component, `⌈dim/64⌉` words per vector (a 32nd of
//!   f32), Hamming distance as the proxy for angle.

pub mod binary;
pub mod int8;

pub use binary::{binary_words, quantize_binary};
pub use int8::{dequantize_i8, quantize_i8};
