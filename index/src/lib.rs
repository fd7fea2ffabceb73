//! keel's vector indexes and distance kernels.
//!
//! INTERFACE STUB — to be implemented.
//!
//! Architecture Invariant: `index` never calls glommio and does no I/O; the shard
//! feeds it vectors (from the vLog) and calls it synchronously.

/// Errors for bad vectors or queries; `Display` is the text after `ERR ` in the reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    #[error("vector blob is {got} bytes, expected {want} (4 x dim {dim})")]
    BlobLength { got: usize, want: usize, dim: usize },
    #[error("vector dimension mismatch: got {got}, index has {want}")]
    Dim { got: usize, want: usize },
    #[error("vector component {0} is NaN or infinite")]
    NonFinite(usize),
    #[error("zero vector has no cosine similarity")]
    ZeroVector,
}

/// Decodes a little-endian f32 blob of exactly `4 * dim` bytes, rejecting NaN/Inf.
pub fn parse_f32_blob(blob: &[u8], dim: usize) -> Result<Vec<f32>, IndexError> {
    let _ = (blob, dim);
    todo!()
}

/// Exact (brute-force) cosine index over f32 vectors.
pub struct FlatIndex {
    _dim: usize,
}

impl FlatIndex {
    pub fn new(dim: usize) -> Self { FlatIndex { _dim: dim } }
    pub fn dim(&self) -> usize { todo!() }
    pub fn len(&self) -> usize { todo!() }
    pub fn is_empty(&self) -> bool { self.len() == 0 }
    /// Inserts or replaces vector `id` (len must equal dim, finite, non-zero).
    pub fn upsert(&mut self, id: u64, v: &[f32]) -> Result<(), IndexError> { let _ = (id, v); todo!() }
    /// Removes `id`; true if it was present.
    pub fn remove(&mut self, id: u64) -> bool { let _ = id; todo!() }
    pub fn contains(&self, id: u64) -> bool { let _ = id; todo!() }
    /// The k most similar vectors as (id, cosine similarity), best first; ties by smaller id.
    pub fn search(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> { let _ = (q, k); todo!() }
    /// Bytes of RAM held (vectors + id maps).
    pub fn memory_bytes(&self) -> usize { todo!() }
}
