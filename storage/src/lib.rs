//! keel's per-shard storage engine: a Bitcask-style value log (vLog) with an in-RAM
//! keydir, group commit through glommio `DmaFile` (O_DIRECT, io_uring), three
//! durability tiers, crash recovery and compaction. Byte format: `storage/FORMAT.md`.
//!
//! INTERFACE STUB — to be implemented. The shapes below are the contract the shard
//! codes against; implementation may add items but must keep these.

use std::path::Path;

/// Keydir namespaces. User KV keys live in [`NS_KV`]; the shard stores vector index
/// metadata in [`NS_INDEX`] (key = index name) and vectors in [`NS_VECTOR`]
/// (key = index uid u64 LE ‖ vector id u64 LE, 16 bytes).
pub type Ns = u8;
pub const NS_KV: Ns = 0;
pub const NS_INDEX: Ns = 1;
pub const NS_VECTOR: Ns = 2;

/// When a write is acknowledged (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Ack after the batch's write completed; background fdatasync every 100 ms.
    Relaxed,
    /// Ack after write + fdatasync of the batch (and of the directory on segment creation).
    Kernel,
    /// As `Kernel`; on Linux fdatasync already flushes the device cache, so identical.
    Power,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Segment size at which the active segment is rolled, bytes (default 64 MiB).
    pub segment_bytes: u64,
    pub durability: Durability,
    /// Values up to this many bytes are also kept in RAM in the keydir (default 256).
    pub inline_value_max: usize,
    /// A sealed segment whose dead bytes / total bytes passes this is compacted (default 0.5).
    pub compaction_dead_ratio: f64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { segment_bytes: 64 << 20, durability: Durability::Kernel, inline_value_max: 256, compaction_dead_ratio: 0.5 }
    }
}

/// One change; a `Vec<Mutation>` passed to [`Store::apply`] is all-or-nothing.
#[derive(Debug, Clone)]
pub enum Mutation {
    Put { ns: Ns, key: Vec<u8>, value: Vec<u8> },
    Delete { ns: Ns, key: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error: {op}: {source}")]
    Io { op: String, #[source] source: std::io::Error },
    /// A bad record that is not a torn tail.
    #[error("corrupt vlog segment {file} at offset {offset}: {reason}")]
    Corrupt { file: String, offset: u64, reason: String },
    /// An earlier write or sync failed; the store refuses writes from then on.
    #[error("storage is poisoned after an earlier I/O failure; refusing writes")]
    Poisoned,
    #[error("record too large: {0} bytes")]
    TooLarge(usize),
}

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub live_keys: usize,
    /// Set when a torn tail was truncated: (file, offset truncated at).
    pub truncated_tail: Option<(String, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub keys_per_ns: [usize; 3],
    pub segments: usize,
    pub disk_bytes: u64,
    pub live_bytes: u64,
    pub dead_bytes: u64,
    pub compactions: u64,
    pub last_seq: u64,
}

/// Resolves when the batch is acknowledged at the store's durability tier.
pub type Commit = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>>>>;

/// A shard's store. Cheap to clone (`Rc`); `!Send`; must live on one glommio executor.
#[derive(Clone)]
pub struct Store {
    _p: std::rc::Rc<()>,
}

impl Store {
    /// Opens or creates the store in `dir` (creates `dir/vlog/`), replays every segment to
    /// rebuild the keydir, truncates a torn tail, and starts background compaction and (at
    /// `Relaxed`) the 100 ms sync task. Errors: `Corrupt` with file and offset, `Io`.
    pub async fn open(dir: &Path, opts: StoreOptions) -> Result<(Store, RecoveryReport), StorageError> {
        let _ = (dir, opts);
        todo!()
    }

    /// Number of live keys in `ns`.
    pub fn len(&self, ns: Ns) -> usize { let _ = ns; todo!() }

    pub fn contains(&self, ns: Ns, key: &[u8]) -> bool { let _ = (ns, key); todo!() }

    /// Length in bytes of the live value, without reading it.
    pub fn value_len(&self, ns: Ns, key: &[u8]) -> Option<usize> { let _ = (ns, key); todo!() }

    /// The value if it is held in RAM (inline or still in the unwritten buffer):
    /// `Ok(Some(Some(v)))`; `Ok(Some(None))`… — see [`Lookup`].
    pub fn lookup(&self, ns: Ns, key: &[u8]) -> Lookup { let _ = (ns, key); todo!() }

    /// Reads the live value (from RAM when possible, else one O_DIRECT read).
    pub async fn get(&self, ns: Ns, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> { let _ = (ns, key); todo!() }

    /// Appends the batch as one all-or-nothing unit and updates the keydir *now* (later
    /// lookups see it at once); the returned future resolves when the batch is durable at
    /// the store's tier. Errors now: `Poisoned`, `TooLarge`.
    pub fn apply(&self, muts: Vec<Mutation>) -> Result<Commit, StorageError> { let _ = muts; todo!() }

    /// Removes every key of every namespace (FLUSHALL), durably as one record.
    pub fn clear_all(&self) -> Result<Commit, StorageError> { todo!() }

    /// Drops keydir entries of `ns` for which `pred(key)` is true, without writing any
    /// record (used when their owner, e.g. a dropped index, is already gone durably).
    pub fn forget_where(&self, ns: Ns, pred: &mut dyn FnMut(&[u8]) -> bool) -> usize { let _ = (ns, pred); todo!() }

    /// Keys of `ns` for which `pred(key)` is true.
    pub fn keys_where(&self, ns: Ns, pred: &mut dyn FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> { let _ = (ns, pred); todo!() }

    /// Cursor scan over `ns`: returns up to about `count` keys from `cursor` on and the next
    /// cursor (0 when the walk is complete). Cursors are < 2^48. Every key present for the
    /// whole walk is returned at least once.
    pub fn scan(&self, ns: Ns, cursor: u64, count: usize) -> (u64, Vec<Vec<u8>>) { let _ = (ns, cursor, count); todo!() }

    /// Calls `f(key, value)` for every live key of `ns`, reading values in segment order.
    pub async fn for_each_live(&self, ns: Ns, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StorageError> { let _ = (ns, f); todo!() }

    /// Writes out everything buffered and fdatasyncs (shutdown).
    pub async fn sync(&self) -> Result<(), StorageError> { todo!() }

    pub fn stats(&self) -> StoreStats { todo!() }
}

/// Result of [`Store::lookup`].
pub enum Lookup {
    Missing,
    /// The value, from RAM.
    InMemory(Vec<u8>),
    /// Live but only on disk: call [`Store::get`].
    OnDisk,
}
