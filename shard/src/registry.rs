//! The shard's vector index registry: name → index, its persistent metadata record and
//! its rebuild from the vLog at start (and after the store took back a failed write:
//! `Shard::handle`).
//!
//! The byte layouts of the index metadata record and of the vector records, and why a
//! uid is never reused, are in `shard/FORMAT.md` (the only copy); this file implements
//! them.

use keel_index::filter::{parse_payload, Fields, PostingIndex};
use keel_index::{FlatIndex, Kind, Metric};
use keel_storage::{Store, NS_INDEX, NS_VECTOR};
use std::collections::{BTreeMap, HashMap};

/// Version of the metadata record (`shard/FORMAT.md`).
const META_VERSION: u8 = 1;
const META_LEN: usize = 16;

/// Index backends (meta byte values).
pub const BACKEND_FLAT: u8 = 0;

/// The meta byte of a kind of row (`shard/FORMAT.md`).
pub fn kind_byte(k: Kind) -> u8 {
    match k {
        Kind::F32 => 0,
        Kind::Int8 => 1,
        Kind::Binary => 2,
    }
}

/// The meta byte of a metric (`shard/FORMAT.md`).
pub fn metric_byte(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 0,
        Metric::L2 => 1,
        Metric::Ip => 2,
    }
}

/// The persistent description of one index; its encoding is `shard/FORMAT.md`'s "Index
/// metadata".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexMeta {
    pub uid: u64,
    pub dim: u32,
    pub kind: Kind,
    pub metric: Metric,
}

impl IndexMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_LEN);
        v.push(META_VERSION);
        v.extend_from_slice(&self.uid.to_le_bytes());
        v.extend_from_slice(&self.dim.to_le_bytes());
        v.extend_from_slice(&[kind_byte(self.kind), BACKEND_FLAT, metric_byte(self.metric)]);
        v
    }

    pub fn decode(b: &[u8]) -> Result<IndexMeta, String> {
        match b.first() {
            None => return Err("empty record".into()),
            Some(&META_VERSION) => {}
            Some(&v) => return Err(format!("unsupported meta version {v} (this keel reads version {META_VERSION})")),
        }
        if b.len() != META_LEN {
            return Err(format!("meta record is {} bytes, expected {META_LEN}", b.len()));
        }
        let kind = Kind::ALL.into_iter().find(|&k| kind_byte(k) == b[13]);
        let metric = Metric::ALL.into_iter().find(|&m| metric_byte(m) == b[15]);
        let (Some(kind), BACKEND_FLAT, Some(metric)) = (kind, b[14], metric) else {
            return Err(format!(
                "unsupported kind/backend/metric {}/{}/{} (this keel knows kinds 0-2, backend 0, metrics 0-2)",
                b[13], b[14], b[15]
            ));
        };
        let meta = IndexMeta {
            uid: u64::from_le_bytes(b[1..9].try_into().expect("8 bytes")),
            dim: u32::from_le_bytes(b[9..13].try_into().expect("4 bytes")),
            kind,
            metric,
        };
        if meta.dim == 0 || meta.dim > crate::ops::vector::MAX_DIM {
            return Err(format!("invalid dimension {}", meta.dim));
        }
        Ok(meta)
    }
}

/// Largest payload of a vector, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// One live index: the vectors (or their codes) and their payloads' searchable fields.
pub struct IndexEntry {
    pub meta: IndexMeta,
    pub index: FlatIndex,
    /// Every stored vector's slot, with its payload's fields (none without a payload).
    pub postings: PostingIndex,
    /// The fields of the slots whose payload has any (needed to take a slot out of
    /// `postings`, and to re-check a filter at the end of a search).
    pub fields: HashMap<u32, Fields>,
}

impl IndexEntry {
    /// An empty index described by `meta`.
    pub fn new(meta: IndexMeta) -> IndexEntry {
        IndexEntry {
            meta,
            index: FlatIndex::new(meta.dim as usize, meta.metric, meta.kind),
            postings: PostingIndex::new(),
            fields: HashMap::new(),
        }
    }

    /// Inserts or replaces vector `id`, checked by this entry's index
    /// ([`FlatIndex::check`]), with its payload's `fields`.
    pub fn upsert_checked(&mut self, id: u64, v: keel_index::Checked, fields: Fields) {
        let slot = slot_row(self.index.upsert_checked(id, v));
        let old = self.fields.remove(&slot).unwrap_or_default();
        self.postings.remove(slot, &old);
        self.postings.insert(slot, &fields);
        if !fields.is_empty() {
            self.fields.insert(slot, fields);
        }
    }

    /// Removes vector `id` and its fields; true if it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.index.remove(id).map(slot_row) else { return false };
        let old = self.fields.remove(&slot).unwrap_or_default();
        self.postings.remove(slot, &old);
        true
    }

    /// Compacts the index (see [`FlatIndex::compact`]) and moves the fields with their
    /// vectors.
    pub fn compact(&mut self) {
        for (from, to) in self.index.compact() {
            let (from, to) = (slot_row(from), slot_row(to));
            let f = self.fields.remove(&from).unwrap_or_default();
            self.postings.remove(from, &f);
            self.postings.insert(to, &f);
            if !f.is_empty() {
                self.fields.insert(to, f);
            }
        }
    }

    /// The fields of vector `id` (empty without a payload or when it is gone).
    pub fn fields_of(&self, id: u64) -> Option<&Fields> {
        self.fields.get(&slot_row(self.index.slot_of(id)?))
    }

    /// Bytes of RAM: the index and the posting lists (the fields kept per slot are not
    /// counted).
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + self.postings.memory_bytes()
    }
}

/// A slot as a posting row. Slots stay below 2^32: an index holds at most that many
/// vectors (`FlatIndex` slots are dense).
fn slot_row(slot: usize) -> u32 {
    u32::try_from(slot).expect("fewer than 2^32 vectors per index")
}

/// The value of a vector record (`shard/FORMAT.md`, "Vector"): the f32 blob, then the
/// payload (if any).
pub fn vector_value(mut blob: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    blob.extend_from_slice(payload);
    blob
}

/// The (f32 blob, payload) of a vector record's value for an index of `dim`; `None` if
/// it is shorter than the blob. The payload is empty when there is none.
pub fn split_vector_value(value: &[u8], dim: usize) -> Option<(&[u8], &[u8])> {
    (value.len() >= 4 * dim).then(|| value.split_at(4 * dim))
}

/// The fields of a stored or given payload (none for an empty one). Errors: the
/// payload is over [`MAX_PAYLOAD`] or does not parse.
pub fn payload_fields(payload: &[u8]) -> Result<Fields, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("payload is {} bytes, the limit is {MAX_PAYLOAD}", payload.len()));
    }
    if payload.is_empty() {
        return Ok(Fields::new());
    }
    parse_payload(payload).map_err(|e| format!("payload: {e}"))
}

/// name → index, sorted by name (for `SKEG.VINDEX.LIST`).
#[derive(Default)]
pub struct Registry {
    pub by_name: BTreeMap<Vec<u8>, IndexEntry>,
    /// The next uid to hand out; above every uid seen in the keydir.
    pub next_uid: u64,
    /// Counts changes that move vectors between slots (a compaction, a rebuild): a
    /// search that runs in slices starts over when it changed under it.
    pub epoch: u64,
}

/// What [`rebuild`] found.
#[derive(Debug, Default)]
pub struct RebuildReport {
    pub indexes: usize,
    pub vectors: usize,
    /// Vector records of dropped indexes forgotten from the keydir.
    pub orphans_forgotten: usize,
    /// Vector records that failed validation (logged; not loaded).
    pub bad_vectors: usize,
}

/// The keydir key of vector `id` in the index with `uid` (`shard/FORMAT.md`, "Vector
/// key").
pub fn vector_key(uid: u64, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&uid.to_le_bytes());
    k.extend_from_slice(&id.to_le_bytes());
    k
}

/// The (uid, id) of a vector key; `None` if it is not 16 bytes.
pub fn split_vector_key(k: &[u8]) -> Option<(u64, u64)> {
    if k.len() != 16 {
        return None;
    }
    Some((u64::from_le_bytes(k[..8].try_into().ok()?), u64::from_le_bytes(k[8..].try_into().ok()?)))
}

impl Registry {
    /// Hands out a uid never used before in this store.
    pub fn allocate_uid(&mut self, store: &Store) -> u64 {
        let uid = self.next_uid.max(store.stats().last_seq.saturating_add(1)).max(1);
        self.next_uid = uid + 1;
        uid
    }

    pub fn n_vectors(&self) -> usize {
        self.by_name.values().map(|e| e.index.len()).sum()
    }

    pub fn memory_bytes(&self) -> usize {
        self.by_name.values().map(IndexEntry::memory_bytes).sum()
    }
}

/// Reads every index meta record, then every vector record into its index; forgets
/// vector records of indexes that no longer exist. A meta record this keel cannot read
/// stops the start (dropping it would silently lose the index's vectors).
pub async fn rebuild(store: &Store) -> anyhow::Result<(Registry, RebuildReport)> {
    let mut by_uid: HashMap<u64, (Vec<u8>, IndexEntry)> = HashMap::new();
    let mut bad_meta: Option<String> = None;
    store
        .for_each_live(NS_INDEX, &mut |name, value| {
            if bad_meta.is_some() {
                return;
            }
            match IndexMeta::decode(value) {
                Ok(meta) => {
                    if let Some((other, _)) = by_uid.get(&meta.uid) {
                        bad_meta = Some(format!(
                            "indexes '{}' and '{}' share uid {}",
                            crate::args::show(other),
                            crate::args::show(name),
                            meta.uid
                        ));
                        return;
                    }
                    let entry = IndexEntry::new(meta);
                    by_uid.insert(meta.uid, (name.to_vec(), entry));
                }
                Err(e) => bad_meta = Some(format!("index '{}': {e}", crate::args::show(name))),
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("read vector index metadata: {e}"))?;
    if let Some(e) = bad_meta {
        anyhow::bail!("read vector index metadata: {e}");
    }

    let mut report = RebuildReport { indexes: by_uid.len(), ..Default::default() };
    let mut max_uid = by_uid.keys().copied().max().unwrap_or(0);
    // One decode buffer for every record (`FlatIndex::check_blob`).
    let mut scratch = Vec::new();
    store
        .for_each_live(NS_VECTOR, &mut |key, value| {
            let Some((uid, id)) = split_vector_key(key) else { return };
            max_uid = max_uid.max(uid);
            let Some((name, entry)) = by_uid.get_mut(&uid) else { return };
            let dim = entry.meta.dim as usize;
            let loaded = match split_vector_value(value, dim) {
                None => Err(format!("record of {} bytes is shorter than 4 x dim {dim}", value.len())),
                Some((blob, payload)) => entry.index.check_blob(blob, &mut scratch).map_err(|e| e.to_string()).and_then(|v| {
                    let fields = payload_fields(payload)?;
                    entry.upsert_checked(id, v, fields);
                    Ok(())
                }),
            };
            match loaded {
                Ok(()) => report.vectors += 1,
                Err(e) => {
                    report.bad_vectors += 1;
                    tracing::error!("load vector {id} of index '{}': {e}; skipped", crate::args::show(name));
                }
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("read vectors: {e}"))?;

    report.orphans_forgotten = store.forget_where(NS_VECTOR, &mut |key| match split_vector_key(key) {
        Some((uid, _)) => !by_uid.contains_key(&uid),
        None => true,
    });

    let registry = Registry {
        by_name: by_uid.into_values().collect(),
        next_uid: max_uid.saturating_add(1).max(store.stats().last_seq.saturating_add(1)),
        epoch: 0,
    };
    Ok((registry, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        for kind in Kind::ALL {
            for metric in Metric::ALL {
                let m = IndexMeta { uid: 77, dim: 128, kind, metric };
                let b = m.encode();
                assert_eq!(b.len(), META_LEN);
                assert_eq!(IndexMeta::decode(&b), Ok(m));
            }
        }
        // The bytes FORMAT.md gives.
        let b = IndexMeta { uid: 1, dim: 3, kind: Kind::Int8, metric: Metric::Ip }.encode();
        assert_eq!(b, [1, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn meta_rejects_unknown_versions_and_shapes() {
        let good = IndexMeta { uid: 1, dim: 4, kind: Kind::F32, metric: Metric::Cosine }.encode();
        let mut v2 = good.clone();
        v2[0] = 2;
        assert!(IndexMeta::decode(&v2).unwrap_err().contains("version 2"));
        assert!(IndexMeta::decode(&good[..10]).is_err());
        assert!(IndexMeta::decode(&[]).is_err());
        for (at, byte) in [(13, 3), (14, 1), (15, 3)] {
            let mut bad = good.clone();
            bad[at] = byte;
            assert!(IndexMeta::decode(&bad).unwrap_err().contains("unsupported kind/backend/metric"));
        }
        let mut dim0 = good;
        dim0[9..13].copy_from_slice(&0u32.to_le_bytes());
        assert!(IndexMeta::decode(&dim0).is_err());
    }

    #[test]
    fn vector_keys() {
        let k = vector_key(5, u64::MAX);
        assert_eq!(k.len(), 16);
        assert_eq!(split_vector_key(&k), Some((5, u64::MAX)));
        assert_eq!(split_vector_key(&k[..15]), None);
    }
}
