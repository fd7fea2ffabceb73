//! [`FlatIndex`]: exact cosine search by scanning every stored vector.

use crate::distance::Kernel;
use crate::IndexError;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Rows scored per kernel call during a scan (a 1 KiB score buffer on the stack).
const SCAN_BLOCK: usize = 256;

/// Exact (brute-force) cosine index over f32 vectors.
///
/// Layout: every vector is stored L2-normalized in one contiguous slot-major
/// `Vec<f32>` (slot `s` occupies `data[s*dim .. (s+1)*dim]`), with an id → slot
/// `HashMap` and a slot → id `Vec`. Slots are always dense: [`FlatIndex::remove`]
/// moves the last slot into the hole, so a scan never skips anything and needs no
/// free list. Cosine similarity is then one dot product per slot.
///
/// Memory: `4·dim + 8` bytes per vector plus the id map (about 24 bytes per entry at
/// the hash table's load factor), see [`FlatIndex::memory_bytes`]. The vector array
/// grows by doubling and shrinks when it falls below a quarter full.
#[derive(Clone)]
pub struct FlatIndex {
    dim: usize,
    /// Normalized vectors, slot-major; `data.len() == ids.len() * dim`.
    data: Vec<f32>,
    /// Slot → id.
    ids: Vec<u64>,
    /// Id → slot.
    slots: HashMap<u64, usize>,
}

impl FlatIndex {
    /// An empty index for vectors of `dim` components (`dim` 0 accepts no vector,
    /// because every vector would be the zero vector).
    pub fn new(dim: usize) -> Self {
        FlatIndex { dim, data: Vec::new(), ids: Vec::new(), slots: HashMap::new() }
    }

    /// Number of components per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors stored.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves room for `additional` more vectors (e.g. before a bulk load), so the
    /// vector array is allocated once instead of doubling.
    pub fn reserve(&mut self, additional: usize) {
        self.data.reserve(additional.saturating_mul(self.dim));
        self.ids.reserve(additional);
        self.slots.reserve(additional);
    }

    /// Inserts or replaces vector `id` (len must equal dim, finite, non-zero).
    ///
    /// The vector is stored normalized, so only its direction matters. Errors (checked
    /// in this order, leaving the index unchanged): [`IndexError::Dim`],
    /// [`IndexError::NonFinite`] with the component index, [`IndexError::ZeroVector`].
    pub fn upsert(&mut self, id: u64, v: &[f32]) -> Result<(), IndexError> {
        let unit = normalized(v, self.dim)?;
        match self.slots.get(&id) {
            Some(&slot) => self.row_mut(slot).copy_from_slice(&unit),
            None => {
                self.slots.insert(id, self.ids.len());
                self.ids.push(id);
                self.data.extend_from_slice(&unit);
            }
        }
        Ok(())
    }

    /// Checks that `v` would be accepted by [`upsert`](Self::upsert), without changing
    /// anything: same errors, same order. Lets a caller validate before it writes the
    /// vector durably, then upsert knowing it cannot fail.
    pub fn check(&self, v: &[f32]) -> Result<(), IndexError> {
        normalized(v, self.dim).map(|_| ())
    }

    /// Removes `id`; true if it was present.
    ///
    /// O(dim): the last slot is moved into the freed one.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.slots.remove(&id) else { return false };
        let last = self.ids.len() - 1;
        if slot != last {
            let moved = self.ids[last];
            self.ids[slot] = moved;
            self.slots.insert(moved, slot);
            let d = self.dim;
            self.data.copy_within(last * d..(last + 1) * d, slot * d);
        }
        self.ids.pop();
        self.data.truncate(last * self.dim);
        if self.ids.capacity() > 64 && self.ids.len() < self.ids.capacity() / 4 {
            let keep = self.ids.len() * 2;
            self.ids.shrink_to(keep);
            self.data.shrink_to(keep * self.dim);
            self.slots.shrink_to(keep);
        }
        true
    }

    /// True if `id` is stored.
    pub fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    /// The k most similar vectors as (id, cosine similarity), best first; ties by smaller id.
    ///
    /// `k` is clamped to [`FlatIndex::len`]; similarities are in `[-1, 1]`. The query is
    /// validated like [`FlatIndex::upsert`] ([`IndexError::Dim`],
    /// [`IndexError::NonFinite`], [`IndexError::ZeroVector`]) even when the index is
    /// empty. Cost: one pass over all `len × dim` floats plus O(len · log k) for the
    /// bounded heap (in practice far less: most rows lose to the current k-th best).
    pub fn search(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        self.search_where(q, k, |_| true)
    }

    /// The k most similar vectors among those whose id `keep` accepts, best first: the
    /// true top-k of the matching set (as [`FlatIndex::search`] over only those
    /// vectors), fewer if fewer match. For a broad filter: it scans every vector and
    /// asks `keep` for each one scored.
    pub fn search_where(
        &self,
        q: &[f32],
        k: usize,
        mut keep: impl FnMut(u64) -> bool,
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        let q = normalized(q, self.dim)?;
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let kernel = Kernel::best();
        let mut top = TopK::new(k);
        let mut scores = [0.0f32; SCAN_BLOCK];
        let rows_per_block = SCAN_BLOCK * self.dim;
        for (b, rows) in self.data.chunks(rows_per_block).enumerate() {
            let n = rows.len() / self.dim;
            let out = &mut scores[..n];
            kernel.dot_rows(&q, rows, out);
            let ids = &self.ids[b * SCAN_BLOCK..b * SCAN_BLOCK + n];
            for (&id, &score) in ids.iter().zip(out.iter()) {
                if keep(id) {
                    top.push(id, score);
                }
            }
        }
        Ok(top.into_sorted())
    }

    /// The k most similar vectors among `ids` (distinct; ids not stored are skipped),
    /// best first. For a selective filter: it scores only those vectors, one id lookup
    /// each. Same answer as [`FlatIndex::search_where`] with membership in `ids`.
    pub fn search_among(
        &self,
        q: &[f32],
        k: usize,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        let q = normalized(q, self.dim)?;
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let kernel = Kernel::best();
        let mut top = TopK::new(k);
        let d = self.dim;
        for id in ids {
            if let Some(&slot) = self.slots.get(&id) {
                top.push(id, kernel.dot(&q, &self.data[slot * d..(slot + 1) * d]));
            }
        }
        Ok(top.into_sorted())
    }

    /// Bytes of RAM held (vectors + id maps).
    ///
    /// Counts allocated capacity: the vector array, the slot → id array and the id →
    /// slot hash table (entries plus one control byte each). Excludes `size_of::<Self>()`.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.data.capacity() * size_of::<f32>()
            + self.ids.capacity() * size_of::<u64>()
            + self.slots.capacity() * (size_of::<(u64, usize)>() + 1)
    }

    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        &mut self.data[slot * self.dim..(slot + 1) * self.dim]
    }
}

impl std::fmt::Debug for FlatIndex {
    /// Shape only: printing every vector would be useless at scale.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatIndex").field("dim", &self.dim).field("len", &self.len()).finish_non_exhaustive()
    }
}

/// Validates `v` (length `dim`, finite, non-zero) and returns it scaled to unit length.
///
/// The norm is computed in f64, so neither huge components (whose squares overflow
/// f32) nor tiny ones (whose squares underflow) are a problem.
fn normalized(v: &[f32], dim: usize) -> Result<Vec<f32>, IndexError> {
    if v.len() != dim {
        return Err(IndexError::Dim { got: v.len(), want: dim });
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(IndexError::NonFinite(i));
    }
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let unit: Vec<f32> = v.iter().map(|&x| (f64::from(x) / norm) as f32).collect();
    // A norm of 0, or one so small that every component rounds to 0, has no direction.
    if norm == 0.0 || unit.iter().all(|&x| x == 0.0) {
        return Err(IndexError::ZeroVector);
    }
    Ok(unit)
}

/// A candidate in the top-k heap. `Ord` puts the *worse* candidate first (greater),
/// so the max-heap's top is the current k-th best: lower score is worse, and at equal
/// score the larger id is worse.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f32,
    id: u64,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// Bounded top-k selection: keeps the k best candidates seen so far.
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    #[inline]
    fn push(&mut self, id: u64, score: f32) {
        // Clamp rounding overshoot to the cosine range; `+ 0.0` turns -0.0 into +0.0 so
        // that equal scores compare equal under `total_cmp` and ties go by id.
        let c = Candidate { score: score.clamp(-1.0, 1.0) + 0.0, id };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            }
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(u64, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|c| (c.id, c.score)).collect()
    }
}

#[cfg(test)]
mod tests;
