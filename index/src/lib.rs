//! keel's vector indexes, their distance kernels and quantizers.
//!
//! Today this is one index kind, [`FlatIndex`]: exhaustive search by scanning every
//! vector, under one of three [`Metric`]s (cosine, L2, inner product), holding each
//! vector as one of three [`Kind`]s of row: f32 (exact), int8 codes (a quarter of the
//! bytes) or binary codes (a 32nd), whose candidates the caller re-ranks exactly with
//! the f32 originals it keeps elsewhere (the shard: in the vLog). It trades query time
//! (linear in the number of vectors, bounded by memory bandwidth: about 150 MB read per
//! query at 100k × 384 f32) for perfect recall, no build step and O(1) updates. A
//! search is a [`Scan`] that the caller advances in slices, so that a long scan can
//! yield to other work between them.
//!
//! The kernels ([`distance`]) are the hot loops of every index kind: f32 cosine,
//! squared L2 and dot; int8 codes with a per-vector scale; binary codes with Hamming
//! distance; each also as "one query against many contiguous rows" (`*_rows`), the
//! loop of a flat scan and of a graph hop over a neighbour list. The trade-offs:
//!
//! - **One binary, the best path chosen at run time** (scalar, AVX2, AVX-512, NEON,
//!   NEON+DotProd), not `-C target-cpu`: keel runs on any x86_64 or aarch64 machine.
//!   The price is one atomic load and a branch per call, and a kernel never inlines
//!   into its caller; the `*_rows` forms pay that once per batch of rows.
//! - **Exact where it can be.** int8 and binary kernels use integer arithmetic and give
//!   the same bits on every path; f32 paths sum in other orders (and fuse
//!   multiply-adds), so they agree with the scalar reference within a stated rounding
//!   bound, and one process always uses one path.
//! - **Codes navigate, f32 re-ranks** (DESIGN §4.2–§4.4): [`quant`] makes int8 codes (a
//!   quarter of f32's bytes, error at most half a step per component) and sign bits (a
//!   32nd). Over a scan much larger than the caches the kernels run at memory bandwidth,
//!   so fewer bytes per vector is what speeds it up; on rows in cache (a graph hop) the
//!   wider paths and VNNI pay. Rows should start on 64-byte boundaries: misaligned
//!   rows cost the AVX-512 path up to half its in-cache speed
//!   (`bench-results/kernels.md`).
//!
//! [`filter`] reads the searchable fields of a vector's payload, parses filter
//! expressions and keeps per-field posting bitmaps (roaring), so a filtered search can
//! score only the matching rows when they are few and check membership when many.
//!
//! Architecture Invariant: `index` never calls glommio and does no I/O; the shard
//! feeds it vectors (from the vLog) and calls it synchronously.
//!
//! Architecture Invariant: `unsafe` code and intrinsics live only in the
//! architecture modules under [`distance`] (`x86_64/`, `aarch64/`); the rest of the
//! crate is safe (`#![deny(unsafe_code)]`).

#![deny(unsafe_code)]

pub mod distance;
pub mod filter;
mod flat;
pub mod quant;

pub use flat::{Bounded, Checked, FlatIndex, Kind, Metric, Progress, Query, Rerank, Scan, SharedScan};

/// Errors for bad vectors or queries; `Display` is the text after `ERR ` in the reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    /// The blob is not exactly `4 * dim` bytes.
    #[error("vector blob is {got} bytes, expected {want} (4 x dim {dim})")]
    BlobLength { got: usize, want: usize, dim: usize },
    /// The vector or query has `got` components; the index holds `want`.
    #[error("vector dimension mismatch: got {got}, index has {want}")]
    Dim { got: usize, want: usize },
    /// Component at this 0-based position is NaN or ±infinity.
    #[error("vector component {0} is NaN or infinite")]
    NonFinite(usize),
    /// Every component is zero (or too small for its norm to be represented).
    #[error("zero vector has no cosine similarity")]
    ZeroVector,
}

/// Decodes a little-endian f32 blob of exactly `4 * dim` bytes, rejecting NaN/Inf.
///
/// Returns `dim` components. Errors: [`IndexError::BlobLength`] if `blob.len() != 4 *
/// dim`; [`IndexError::NonFinite`] with the first bad component's index.
pub fn parse_f32_blob(blob: &[u8], dim: usize) -> Result<Vec<f32>, IndexError> {
    let mut out = Vec::new();
    parse_f32_blob_into(blob, dim, &mut out)?;
    Ok(out)
}

/// [`parse_f32_blob`] into `out` (cleared first; its allocation is reused). On error
/// `out` holds nothing meaningful.
pub fn parse_f32_blob_into(blob: &[u8], dim: usize, out: &mut Vec<f32>) -> Result<(), IndexError> {
    let want = dim.saturating_mul(4);
    if blob.len() != want {
        return Err(IndexError::BlobLength { got: blob.len(), want, dim });
    }
    out.clear();
    // Decode everything, then look for a bad component: two loops the compiler
    // vectorizes, instead of one with an early exit per component.
    out.extend(blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return Err(IndexError::NonFinite(i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(blob: &[u8], dim: usize, expected: Result<Vec<f32>, IndexError>) {
        assert_eq!(parse_f32_blob(blob, dim), expected);
    }

    fn bytes(xs: &[f32]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn parse_into_reuses_its_buffer_and_errs_alike() {
        let mut out = vec![9.0; 7];
        parse_f32_blob_into(&bytes(&[1.5, -2.0]), 2, &mut out).unwrap();
        assert_eq!(out, vec![1.5, -2.0]);
        let bad = bytes(&[1.0, f32::NAN, f32::INFINITY]);
        assert_eq!(parse_f32_blob_into(&bad, 3, &mut out), Err(IndexError::NonFinite(1)));
        assert_eq!(parse_f32_blob_into(&bad[..5], 3, &mut out).unwrap_err(), parse_f32_blob(&bad[..5], 3).unwrap_err());
    }

    #[test]
    fn parses_little_endian() {
        check(&bytes(&[1.0, -2.5, 0.0]), 3, Ok(vec![1.0, -2.5, 0.0]));
        check(&[0x00, 0x00, 0x80, 0x3f], 1, Ok(vec![1.0]));
        check(&[], 0, Ok(vec![]));
    }

    #[test]
    fn rejects_wrong_length() {
        check(&bytes(&[1.0, 2.0]), 3, Err(IndexError::BlobLength { got: 8, want: 12, dim: 3 }));
        check(&[0u8; 13], 3, Err(IndexError::BlobLength { got: 13, want: 12, dim: 3 }));
        check(&[0u8; 4], usize::MAX, Err(IndexError::BlobLength { got: 4, want: usize::MAX, dim: usize::MAX }));
    }

    #[test]
    fn rejects_non_finite() {
        check(&bytes(&[1.0, f32::NAN]), 2, Err(IndexError::NonFinite(1)));
        check(&bytes(&[f32::INFINITY, 1.0]), 2, Err(IndexError::NonFinite(0)));
        check(&bytes(&[0.0, 1.0, f32::NEG_INFINITY]), 3, Err(IndexError::NonFinite(2)));
    }

    #[test]
    fn error_text() {
        assert_eq!(
            IndexError::BlobLength { got: 8, want: 12, dim: 3 }.to_string(),
            "vector blob is 8 bytes, expected 12 (4 x dim 3)"
        );
        assert_eq!(IndexError::NonFinite(4).to_string(), "vector component 4 is NaN or infinite");
    }
}
