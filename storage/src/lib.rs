//! keel's per-shard storage engine: a Bitcask-style value log (vLog) with an in-RAM
//! keydir, group commit through glommio `DmaFile` (O_DIRECT, io_uring), three
//! durability tiers, crash recovery and compaction. Byte format and the numbered commit
//! and recovery steps: `storage/FORMAT.md`.
//!
//! Trade-offs:
//! - Every live key sits in RAM (the keydir: a packed record of 18 B plus the key's
//!   size class — 8, 16, 24 … 255 B, longer keys on the heap — and 4–8 B of hash
//!   table; values of at most `inline_value_max` bytes, default 16, inline in the
//!   record). Any other value is served from the value
//!   cache ([`cache::S3Fifo`], bounded by `cache_bytes`, filled by writes and by reads
//!   that miss) or else read from the vLog with one O_DIRECT read (or from the append
//!   buffer while it is not written yet).
//! - Writes never wait inside [`Store::apply`]: the keydir changes at once and the record
//!   goes to an in-RAM append buffer; one committer task writes each round of records
//!   with one aligned write and one fdatasync (group commit), so the cost of a sync is
//!   shared by every write that arrived meanwhile. Readers see a write before it is
//!   durable; only its acknowledgement waits. The price: each keydir change of a round
//!   not yet acknowledged is also kept in a small undo log (the entry it replaced), so
//!   that a failed round can be taken back.
//! - Space is reclaimed by copying live records forward (compaction), which rewrites
//!   live data once per compaction of its segment.
//!
//! **Architecture invariant:** every acknowledged write is in the vLog at its tier before
//! its ack; a bad record is never skipped silently (torn tail of the newest segment →
//! truncated and logged; anywhere else → `Corrupt{file, offset}`); after a write or sync
//! failure the store is poisoned and refuses writes, and a write that was not
//! acknowledged is never acknowledged later nor visible to a later read: the keydir goes
//! back to the last acknowledged round at once ([`Store::reverts`] counts it) and the
//! files are cut back to their acknowledged ends, so a restart does not bring it back
//! (best effort: a failure of that cleanup is logged). At `Relaxed`, writes acknowledged
//! before a failed background sync stay. Poisoning is for good, except after a full
//! disk met by a write: once that write is taken back completely, writes resume by
//! themselves (and fail the same way while the disk is still full). Every vLog file operation goes through the
//! file layer (`file/`: glommio `DmaFile`/`Directory`, or in tests the fault-injecting
//! [`fault`] layer); the crate runs on one executor thread and never blocks it except
//! for short directory operations at open.

#![deny(unsafe_code)]

pub mod cache;
mod chain;
mod compaction;
mod expiry;
mod file;
mod keydir;
mod probe;
mod recovery;
mod store;
mod undo;
mod util;
mod vlog;

#[cfg(test)]
mod test;

/// The fault-injecting file layer (crate tests, or the cargo feature `fault-injection`,
/// off by default: enable it only from `[dev-dependencies]`). Open a store on it with
/// [`Store::open_with_faults`].
#[cfg(any(test, feature = "fault-injection"))]
pub use file::fault;
/// The vLog record codec for the fuzz target in `storage/fuzz` (cargo feature
/// `fuzzing`, off by default; not API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub use expiry::{system_clock, Clock};
pub use probe::probe_direct_io;
pub use chain::{APPEND_REWRITE_MAX, BYTES_PER_PIECE, MAX_PIECES};
pub use store::Store;

/// Keydir namespace, one byte (0..=255; the shard uses the three below). Each namespace
/// has its own key space, counts and SCAN order. User KV keys live in [`NS_KV`]; the
/// shard stores vector index metadata in [`NS_INDEX`] and vectors in [`NS_VECTOR`]
/// (their keys and values: `shard/FORMAT.md`).
pub type Ns = u8;
/// User key-value keys.
pub const NS_KV: Ns = 0;
/// Vector index metadata (`shard/FORMAT.md`).
pub const NS_INDEX: Ns = 1;
/// Vectors (`shard/FORMAT.md`).
pub const NS_VECTOR: Ns = 2;

/// Largest record body of one batch [`Store::clear_ns`] writes: 64 MiB (a delete entry
/// is 10 bytes plus its key).
pub const CLEAR_NS_BATCH_BYTES: usize = 64 << 20;

/// When a write is acknowledged (DESIGN §3); the config's type, the only one (what each
/// tier survives is documented there).
pub use keel_config::Durability;

/// Tuning of one [`Store`]. Serializable: it is part of the configuration the router
/// hands each shard process (`keel_shard::ShardConfig`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreOptions {
    /// Segment size at which the active segment is rolled, bytes (default 64 MiB;
    /// clamped to 8 KiB ..= 2 GiB). A record larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Acknowledgement tier of every write (default `Kernel`).
    pub durability: Durability,
    /// Values of at most this many bytes are kept in the keydir beside their key, not in
    /// the value cache (default 16, at most [`INLINE_VALUE_CAP`]: a larger setting is
    /// taken as that). Such a value costs its bytes in the keydir record (a 16-byte key
    /// with a value of up to 8 bytes: 42 B instead of 34) instead of a cache entry's
    /// ~180 B, and a read of it needs neither the cache nor the vLog. 0: none is.
    pub inline_value_max: usize,
    /// A sealed segment whose dead bytes / data bytes reaches this is compacted
    /// (default 0.5; 0.0 compacts any segment with dead bytes, above 1.0 never).
    pub compaction_dead_ratio: f64,
    /// Budget of the store's value cache ([`cache::S3Fifo`]), bytes (default 32 MiB):
    /// values written or read from the vLog are kept there, each costing
    /// [`cache::S3Fifo::entry_cost`]; a value whose cost passes an eighth of it is
    /// never cached. The config (`keel_config`) accepts 1 MiB ..= 1 TiB; the store takes
    /// any value (0: nothing is cached).
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

/// Default of [`StoreOptions::inline_value_max`]: 16 bytes.
pub const DEFAULT_INLINE_VALUE_MAX: usize = 16;
/// Largest [`StoreOptions::inline_value_max`]: 32 bytes.
pub const INLINE_VALUE_CAP: usize = keydir::INLINE_CAP;

impl StoreOptions {
    /// [`StoreOptions::inline_value_max`] within [`INLINE_VALUE_CAP`].
    pub(crate) fn inline_max(&self) -> usize {
        self.inline_value_max.min(INLINE_VALUE_CAP)
    }
}

/// Default of [`StoreOptions::cache_bytes`]: 32 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 32 << 20;

fn default_cache_bytes() -> u64 {
    DEFAULT_CACHE_BYTES
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { segment_bytes: 64 << 20, durability: Durability::Kernel, inline_value_max: DEFAULT_INLINE_VALUE_MAX, compaction_dead_ratio: 0.5, cache_bytes: DEFAULT_CACHE_BYTES }
    }
}

/// One change; a `Vec<Mutation>` passed to [`Store::apply`] is all-or-nothing (one
/// record, one CRC). Keys and values may be empty; a record is at most 1 GiB.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Sets `key` in `ns` to `value`.
    /// Sets `key` in namespace `ns` to `value` (key and value each ≤ 1 GiB in one record).
    Put { ns: Ns, key: Vec<u8>, value: Vec<u8> },
    /// Sets `key` in namespace `ns` to `value`, expiring at `expire_at` (unix epoch
    /// milliseconds; 0: no expiry, the same as [`Mutation::Put`]). A time at or before
    /// the store's clock makes the key invisible at once (it is removed, with a
    /// tombstone, by the next expiry); callers normally write a `Delete` instead.
    PutExpiring { ns: Ns, key: Vec<u8>, value: Vec<u8>, expire_at: u64 },
    /// Removes `key` from `ns` (a tombstone is written even if the key is missing).
    /// Removes `key` from namespace `ns` (writes a tombstone even if absent).
    Delete { ns: Ns, key: Vec<u8> },
}

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation failed; `op` says what was being done, as a verb phrase with
    /// the file ("write vlog segment 00000003.vlog at offset 8192").
    #[error("I/O error: {op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// A bad record that is not a torn tail: `file` is the segment's path, `offset` the
    /// byte offset of the bad record (or header) in it.
    #[error("corrupt vlog segment {file} at offset {offset}: {reason}")]
    Corrupt { file: String, offset: u64, reason: String },
    /// An earlier write or sync failed in a way that is for good (anything but a full
    /// disk met by a write, see FORMAT.md "When a round fails"); the store refuses
    /// writes until a restart.
    #[error("storage is poisoned after an earlier I/O failure; refusing writes")]
    Poisoned,
    /// The record for one `apply` would exceed 1 GiB (its size in bytes).
    #[error("record too large: {0} bytes")]
    TooLarge(usize),
}

/// What the store's cache ([`cache::S3Fifo`]) holds entries of. A later user (a disk
/// index's sectors, small values by key) adds its kind here and shares the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// The bytes of a value, by where they are in the vLog: segment id and file offset
    /// of the value's first byte. Segment ids are never used twice and written bytes
    /// never change, so a place names one value — except after a failed round is cut
    /// back, when the place can later hold other bytes: the revert drops every entry
    /// past each segment's acknowledged end (`Store`'s revert), and a compaction move
    /// drops whatever was cached at its new place. (The keydir keeps no sequence
    /// numbers, so they cannot be part of the key.)
    Value { seg: u32, off: u32 },
}

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segment files after recovery.
    pub segments: usize,
    /// Valid records replayed (including dead and duplicate ones).
    pub records: u64,
    /// Live keys over all namespaces (including those found already expired).
    pub live_keys: usize,
    /// Keys whose expiry time had passed when the store opened: removed at open (with
    /// tombstones, so that no older version comes back), counted in `expired_keys`.
    pub expired_keys: usize,
    /// Set when a torn tail was truncated: (file path, offset truncated at).
    pub truncated_tail: Option<(String, u64)>,
}

/// Counters of one store.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Live keys in namespaces 0, 1, 2 (keys whose expiry time has passed are not
    /// counted, also while they still wait for their removal).
    pub keys_per_ns: [usize; 3],
    /// Of those, keys with an expiry time, per namespace.
    pub expires_per_ns: [usize; 3],
    /// Bytes the keydir's records and tables fill, all namespaces (its RSS, less the
    /// allocator's own overhead; not the TTL index of keys with an expiry time).
    pub keydir_bytes: usize,
    /// Keys removed because their expiry time passed since open (lazily when a read
    /// met them, by the active expiry cycle, or at open), over all namespaces.
    pub expired_keys: u64,
    /// Segment files (including one not yet created on disk).
    pub segments: usize,
    /// Bytes of data in all segments (logical ends, including 4 KiB headers).
    pub disk_bytes: u64,
    /// Bytes kept alive by live keys.
    pub live_bytes: u64,
    /// `disk_bytes` − `live_bytes` − headers: overwritten values, tombstones, batch
    /// overhead.
    pub dead_bytes: u64,
    /// Segments compacted (deleted) since open.
    pub compactions: u64,
    /// Highest sequence number used (one per `apply`/`clear_all`); never decreases,
    /// also across restarts.
    pub last_seq: u64,
    /// The value cache's budget, use and counters.
    pub cache: cache::CacheStats,
    /// Keys whose value has pieces written by [`Store::append`] (append records not yet
    /// folded into one put).
    pub append_chains: usize,
    /// Those pieces, over all keys.
    pub append_pieces: usize,
}

/// Resolves when the batch is acknowledged at the store's durability tier; fails with
/// `StorageError::Io` if its write or fdatasync (or that of an earlier unacknowledged
/// batch) failed: the batch is then reverted and the store poisoned (for good, or until
/// the revert is done after a full disk).
/// `'static`: it may be moved into another task. Dropping it does not cancel the write.
pub type Commit = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>>>>;

/// What [`Store::version`] returns: where a key's live value is in the vLog and how
/// many failed rounds the store had taken back then. Equal tokens mean no write of the
/// key came between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueVersion {
    reverts: u64,
    seg: u32,
    off: u32,
}

/// Result of [`Store::append`].
pub enum Appended {
    /// The value's new length, bytes, and the write's commit (as [`Store::apply`]'s).
    Len(usize, Commit),
    /// The new value would be longer than the limit given; nothing was written.
    TooLong,
}

/// Result of [`Store::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No live value.
    Missing,
    /// The value, from RAM: kept inline in the keydir, in the unwritten append buffer,
    /// in the value cache, or assembled from those for a value with append pieces.
    InMemory(Vec<u8>),
    /// Live but only on disk: call [`Store::get`].
    OnDisk,
}
