//! [`Store`]: the keydir plus the vLog, and the operations the shard calls.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use crate::chain::{Assembled, ChainUndo, Chains};
use crate::file::{Dir, File, Fs};
use crate::keydir::{key_hash, Entry, Keydir};
use crate::undo::{Undo, UndoLog};
use crate::util::io_err;
use crate::vlog::record::{self, segment_file_name, segment_header, Op, HEADER_LEN, MAX_BODY, SEGMENT_HEADER_LEN};
use crate::vlog::writer::{self, LogState, Tail};
use crate::vlog::SegInfo;
use crate::cache::S3Fifo;
use crate::chain::APPEND_REWRITE_MAX;
use crate::{compaction, expiry, probe_direct_io, recovery, Appended, CacheKey, Clock, Commit, CLEAR_NS_BATCH_BYTES, Durability, Lookup, Mutation, Ns, RecoveryReport, StorageError, StoreOptions, StoreStats, ValueVersion};

/// Smallest and largest accepted `segment_bytes` (offsets in the keydir are `u32`).
const MIN_SEGMENT_BYTES: u64 = 2 * SEGMENT_HEADER_LEN;
const MAX_SEGMENT_BYTES: u64 = 2 << 30;
/// Bytes per O_DIRECT read in [`Store::for_each_live`].
const READ_WINDOW: u64 = 1 << 20;

/// State shared by the [`Store`] handles and the background tasks.
pub(crate) struct Inner {
    pub vlog_dir: PathBuf,
    pub opts: StoreOptions,
    /// The file layer every vLog file operation goes through.
    pub fs: Fs,
    pub dir_handle: Dir,
    pub keydir: RefCell<Keydir>,
    /// Keydir changes of rounds not yet acknowledged (undone if a round fails).
    pub undo: RefCell<UndoLog>,
    /// Times the keydir was reverted to its last acknowledged state.
    pub reverts: Cell<u64>,
    pub segs: RefCell<BTreeMap<u32, SegInfo>>,
    pub log: RefCell<LogState>,
    pub next_seq: Cell<u64>,
    pub compactions: Cell<u64>,
    /// One compaction pass at a time.
    pub compaction_lock: Semaphore,
    /// The last [`Store`] handle is gone: compaction stops, the committer only writes
    /// out what was appended before.
    pub closed: Cell<bool>,
    /// After a failure: the segment files were cut back to the acknowledged state
    /// ([`writer::roll_back_files`] finished).
    pub rolled_back: Cell<bool>,
    /// Values written or read from the vLog, by
    /// [`CacheKey::Value`]. Kept free of stale entries: an overwrite, delete or
    /// clear-all drops what it replaces, compaction moves an entry to its copy's place,
    /// and a revert drops every entry past a segment's acknowledged end.
    pub cache: RefCell<S3Fifo<CacheKey>>,
    /// Bumped by every revert: a read that started before one does not fill the cache.
    pub cache_epoch: Cell<u64>,
    /// The time source of expiry (unix epoch ms).
    pub clock: RefCell<Clock>,
    /// Keys removed because they expired, since open.
    pub expired_keys: Cell<u64>,
    /// The id of the active segment if it is of a format version older than the one
    /// written (0: it is not): the first append rolls to a new segment, so that no
    /// record of a newer kind (5, 6) lands in an older segment.
    pub old_version_active: Cell<u32>,
    /// The pieces of keys extended by append records (`chain.rs`); empty for most
    /// stores, and every read checks that first.
    pub chains: RefCell<Chains>,
    /// The last token given to a fold of append pieces (`chain.rs`).
    pub fold_tokens: Cell<u64>,
    /// Background folds running.
    pub folds_running: Cell<usize>,
    /// Value bytes of whole-value reads ([`Store::get`], [`Inner::assemble_read`], also
    /// when a fold or [`Store::for_each_live`] calls it) issued to the vLog and not yet
    /// returned: [`Store::reading_bytes`].
    pub reading: Cell<usize>,
}

/// One client read's share of [`Inner::reading`]: `bytes` counted while it lives, given
/// back when it is dropped (the read returned, failed, or its future was dropped).
pub(crate) struct Reading<'a> {
    count: &'a Cell<usize>,
    bytes: usize,
}

impl<'a> Reading<'a> {
    pub(crate) fn new(count: &'a Cell<usize>, bytes: usize) -> Reading<'a> {
        count.set(count.get() + bytes);
        Reading { count, bytes }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.count.set(self.count.get() - self.bytes);
    }
}

/// The cache key of a value in the vLog.
pub(crate) fn value_key(e: &Entry) -> CacheKey {
    CacheKey::Value { seg: e.seg, off: e.off }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the committer notice that the store is gone and end.
        self.log.get_mut().wake_committer();
    }
}

impl Inner {
    pub(crate) fn take_seq(&self) -> u64 {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        seq
    }

    /// Points `key` at a new entry, keeping the segments' live byte counts right;
    /// returns the entry it replaced. Not logged (the revert's path).
    fn set_entry(&self, ns: Ns, key: &[u8], entry: Entry) -> Option<Entry> {
        let mut segs = self.segs.borrow_mut();
        if let Some(s) = segs.get_mut(&entry.seg) {
            s.live += entry.foot as u64;
        }
        let old = self.keydir.borrow_mut().insert(ns, key, entry);
        if let Some(old) = &old {
            if let Some(s) = segs.get_mut(&old.seg) {
                s.live -= old.foot as u64;
            }
        }
        old
    }

    /// Takes `foot` bytes off the live count of segment `seg`.
    pub(crate) fn unlive(&self, seg: u32, foot: u32) {
        if let Some(s) = self.segs.borrow_mut().get_mut(&seg) {
            s.live -= foot as u64;
        }
    }

    /// Points `key` at a new entry, keeping the live byte counts right, and logs the
    /// change for `round` in the undo log: its hash and position among the keys of that hash, and the
    /// replaced entry if any, copied from the keydir slot before it changes (see
    /// [`crate::undo`]). The key itself is not kept. Also compaction's moves. Returns
    /// the cache key of the value it replaced, if any and if it may be cached (not an
    /// inline value): the caller drops or replaces that cache entry (it must not stay).
    #[inline(always)]
    #[must_use = "the replaced value's cache entry must be dropped or replaced"]
    pub(crate) fn put_logged(&self, round: u64, ns: Ns, key: &[u8], entry: Entry) -> Option<CacheKey> {
        let h = key_hash(key);
        let mut segs = self.segs.borrow_mut();
        let mut undo = self.undo.borrow_mut();
        undo.begin(round);
        if let Some(s) = segs.get_mut(&entry.seg) {
            s.live += entry.foot as u64;
        }
        let mut flags = 0;
        let mut replaced = None;
        let (_, pos) = self.keydir.borrow_mut().insert_with(ns, h, key, entry, |slot, entry| {
            flags = undo.prev(slot);
            // An inline value is never in the cache.
            replaced = slot.inline.is_none().then(|| value_key(slot));
            if let Some(s) = segs.get_mut(&slot.seg) {
                s.live -= slot.foot as u64;
            }
            *slot = entry;
        });
        undo.put(ns, h, pos, key, flags);
        replaced
    }

    /// Removes `key` from the keydir, keeping the live byte counts right, and logs the
    /// change (with the key) for `round` in the undo log; a missing key changes nothing.
    fn remove_logged(&self, round: u64, ns: Ns, key: Vec<u8>) {
        self.drop_chain(Some(round), ns, &key);
        let Some(old) = self.keydir.borrow_mut().remove(ns, &key) else { return };
        self.unlive(old.seg, old.foot);
        if old.inline.is_none() {
            self.cache.borrow_mut().remove(&value_key(&old));
        }
        self.undo.borrow_mut().removed(round, ns, key, &old);
    }

    /// Sets the expiry time of `key` (0: none), logged for `round` if it changes.
    fn set_expire_at_logged(&self, round: u64, ns: Ns, key: &[u8], at: u64) {
        let prev = self.keydir.borrow_mut().set_expire_at(ns, key, at);
        if prev != at {
            self.undo.borrow_mut().ttl(round, ns, key, prev);
        }
    }

    /// Adds tombstone bytes to segment `seg`, logged for `round`.
    pub(crate) fn add_tomb_logged(&self, round: u64, seg: u32, bytes: u64) {
        if let Some(s) = self.segs.borrow_mut().get_mut(&seg) {
            s.tomb += bytes;
        }
        self.undo.borrow_mut().tomb(round, seg, bytes);
    }

    /// Undoes every keydir change of unacknowledged rounds, newest first, so the keydir
    /// is again that of the last acknowledged round (with the segments' live and
    /// tombstone counts). Counts a revert if anything was undone.
    pub(crate) fn revert_unacknowledged(&self) {
        self.drop_unacknowledged_from_cache();
        let steps = self.undo.borrow_mut().take_newest_first();
        if steps.is_empty() {
            return;
        }
        let n = steps.len();
        let mut lost = 0;
        for step in steps {
            match step {
                Undo::Put { ns, hash, pos, prev: None } => match self.keydir.borrow_mut().remove_nth(ns, hash, pos) {
                    Some((_, e)) => self.unlive(e.seg, e.foot),
                    None => lost += 1,
                },
                Undo::Put { ns, hash, pos, prev: Some(prev) } => {
                    let (prev_seg, prev_foot) = (prev.seg, prev.foot);
                    match self.keydir.borrow_mut().replace_nth(ns, hash, pos, prev) {
                        Some(e) => {
                            self.unlive(e.seg, e.foot);
                            if let Some(s) = self.segs.borrow_mut().get_mut(&prev_seg) {
                                s.live += prev_foot as u64;
                            }
                        }
                        None => lost += 1,
                    }
                }
                Undo::PutKey { ns, key, prev: Some(prev) } => {
                    // The key is missing after a removal, present after a put.
                    self.set_entry(ns, &key, prev);
                }
                Undo::PutKey { ns, key, prev: None } => match self.keydir.borrow_mut().remove(ns, &key) {
                    Some(e) => self.unlive(e.seg, e.foot),
                    None => lost += 1,
                },
                Undo::Clear { keydir, live } => {
                    *self.keydir.borrow_mut() = keydir;
                    let mut segs = self.segs.borrow_mut();
                    for (id, bytes) in live {
                        if let Some(s) = segs.get_mut(&id) {
                            s.live = bytes;
                        }
                    }
                }
                Undo::Tomb { seg, bytes } => {
                    if let Some(s) = self.segs.borrow_mut().get_mut(&seg) {
                        s.tomb -= bytes;
                    }
                }
                Undo::Ttl { ns, key, prev } => {
                    self.keydir.borrow_mut().set_expire_at(ns, &key, prev);
                }
                Undo::Chain(step) => self.undo_chain(step),
            }
        }
        self.reverts.set(self.reverts.get() + 1);
        tracing::warn!("reverted {n} keydir changes of unacknowledged writes to the last acknowledged state");
        if lost > 0 {
            // Cannot happen: every change after the one undone was undone first.
            debug_assert!(false, "{lost} undo steps did not find their entry");
            tracing::error!("{lost} keydir changes could not be undone: their entries were not found");
        }
    }

    /// Drops every cached value that lies past its segment's acknowledged end (or in a
    /// segment with nothing acknowledged): the files are about to be cut back there, and
    /// the same place may later hold other bytes. Stops fills by reads in flight.
    fn drop_unacknowledged_from_cache(&self) {
        self.cache_epoch.set(self.cache_epoch.get() + 1);
        let segs = self.segs.borrow();
        self.cache.borrow_mut().retain(|k| match *k {
            CacheKey::Value { seg, off, .. } => segs.get(&seg).is_some_and(|s| (off as u64) < s.acked_end),
        });
    }

    /// The value of `e` if it is in RAM: [`Inner::ram_value`] or in the cache (a hit
    /// counted; a miss counted if `count_miss`).
    pub(crate) fn in_ram(&self, e: &Entry, count_miss: bool) -> Option<Vec<u8>> {
        if let Some(v) = self.ram_value(e) {
            return Some(v);
        }
        let mut cache = self.cache.borrow_mut();
        let ck = value_key(e);
        let v = if count_miss { cache.get(&ck) } else { cache.get_if_cached(&ck) };
        v.map(<[u8]>::to_vec)
    }

    /// The value of `e` if it is in RAM without the cache: kept in the keydir (inline),
    /// not yet written, or empty.
    pub(crate) fn ram_value(&self, e: &Entry) -> Option<Vec<u8>> {
        if let Some(v) = &e.inline {
            return Some(v.as_slice().to_vec());
        }
        if e.len == 0 {
            return Some(Vec::new());
        }
        self.log.borrow().ram(e.seg, e.off as u64, e.len as usize).map(<[u8]>::to_vec)
    }
}

impl Inner {
    /// [`Store::apply`] up to the commit: appends the record and updates the keydir;
    /// returns the round to wait for (`None` for an empty batch).
    pub(crate) fn apply_now(&self, muts: Vec<Mutation>) -> Result<Option<u64>, StorageError> {
        let inner = self;
        inner.check_writable()?;
        if muts.is_empty() {
            return Ok(None);
        }
        let muts = dedupe(muts);
        let ops: Vec<Op<'_>> = muts
            .iter()
            .map(|m| match m {
                Mutation::Put { ns, key, value } => Op::Put { ns: *ns, key, value },
                Mutation::PutExpiring { ns, key, value, expire_at } => Op::put(*ns, key, value, *expire_at),
                Mutation::Delete { ns, key } => Op::Delete { ns: *ns, key },
            })
            .collect();
        let len = record::encoded_len(&ops);
        if len > HEADER_LEN + MAX_BODY {
            return Err(StorageError::TooLarge(len));
        }
        let seq = inner.take_seq();
        let inline_max = inner.opts.inline_max();
        let mut placed = Vec::with_capacity(ops.len());
        let (seg, rec_off, round) = inner.append(len, |buf| record::encode(buf, seq, &ops, |_, value_off, foot| placed.push((value_off, foot))));
        drop(ops);
        if muts.len() > 1 {
            // (MSET: the keys' cache misses overlap instead of coming one by one.)
            let ns = muts[0].target().0;
            inner.keydir.borrow().prefetch(ns, muts.iter().map(Mutation::target).filter(|t| t.0 == ns).map(|t| t.1));
        }
        for (m, (value_off, foot)) in muts.into_iter().zip(placed) {
            let (ns, key, value, at) = match m {
                Mutation::Put { ns, key, value } => (ns, key, value, 0),
                Mutation::PutExpiring { ns, key, value, expire_at } => (ns, key, value, expire_at),
                Mutation::Delete { ns, key } => {
                    inner.set_expire_at_logged(round, ns, &key, 0);
                    inner.remove_logged(round, ns, key);
                    inner.add_tomb_logged(round, seg, foot as u64);
                    continue;
                }
            };
            let entry = Entry { seq, seg, off: (rec_off + value_off as u64) as u32, len: value.len() as u32, foot, inline: None }
                .with_value(&value, inline_max);
            inner.drop_chain(Some(round), ns, &key);
            let replaced = inner.put_logged(round, ns, &key, entry);
            inner.set_expire_at_logged(round, ns, &key, at);
            // Write-allocate: the value's bytes go to the cache under their new place (no
            // copy: the mutation's buffer moves there), an overwrite taking over the old
            // value's entry in place. Not inline values (the keydir holds them), nor
            // vectors: they are loaded in bulk and read back at random by re-ranking, so a
            // load would only push the KV working set out; their reads fill the cache.
            if entry.inline.is_some() && replaced.is_none() {
                continue;
            }
            let mut cache = inner.cache.borrow_mut();
            if entry.inline.is_none() && ns != crate::NS_VECTOR && cache.admits(value.len()) {
                match replaced {
                    Some(old) => cache.replace(&old, value_key(&entry), value.into_boxed_slice()),
                    None => cache.insert(value_key(&entry), value.into_boxed_slice()),
                };
            } else if let Some(old) = replaced {
                cache.remove(&old);
            }
        }
        Ok(Some(round))
    }
}

/// A shard's store. Cheap to clone (`Rc`); `!Send`; must live on one glommio executor.
///
/// Dropping the last handle stops compaction; records appended but not yet written are
/// still written by the committer in the background (best effort, nobody waits): call
/// [`Store::sync`] first on shutdown. Opening the same directory again on this thread
/// waits until the old instance has finished.
#[derive(Clone)]
pub struct Store {
    handle: Rc<Handle>,
}

/// Shared by the clones of one [`Store`]; dropping it closes the store.
struct Handle {
    inner: Rc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.closed.set(true);
        if let Ok(mut log) = self.inner.log.try_borrow_mut() {
            log.wake_committer();
        }
    }
}

thread_local! {
    /// Stores opened on this thread, by vlog directory, so a reopen can wait for the old
    /// instance's background work to end.
    static OPEN_STORES: RefCell<HashMap<PathBuf, Weak<Inner>>> = RefCell::new(HashMap::new());
}

/// How long [`Store::open`] waits for a closed instance on the same directory to end.
const REOPEN_WAIT: Duration = Duration::from_secs(30);

/// Waits until no other instance of the store in `vlog_dir` is alive on this thread.
async fn wait_for_previous_instance(vlog_dir: &Path) -> Result<(), StorageError> {
    let started = Instant::now();
    loop {
        let weak = OPEN_STORES.with(|m| m.borrow().get(vlog_dir).cloned());
        let closed = match weak.as_ref().and_then(Weak::upgrade) {
            None => return Ok(()),
            Some(inner) => inner.closed.get(),
        };
        let op = || format!("open store in {}", vlog_dir.display());
        if !closed {
            let source = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the store is already open on this thread");
            return Err(StorageError::Io { op: op(), source });
        }
        if started.elapsed() > REOPEN_WAIT {
            let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "the previous instance did not finish its background work");
            return Err(StorageError::Io { op: op(), source });
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

impl Store {
    /// Opens or creates the store in `dir` (creates `dir/vlog/`), probes O_DIRECT I/O
    /// there ([`probe_direct_io`]), replays every segment to rebuild the keydir,
    /// truncates a torn tail of the newest segment, and starts the background tasks:
    /// group commit, compaction (checks every second) and, at `Relaxed`, the 100 ms
    /// fdatasync. Must run inside a glommio executor, before any other `DmaFile` of this
    /// thread is opened on the same device (see [`probe_direct_io`]).
    ///
    /// Errors: `Corrupt` with file and offset for a bad record that is not a torn tail,
    /// `Io` for a failed probe, open, read or write.
    pub async fn open(dir: &Path, opts: StoreOptions) -> Result<(Store, RecoveryReport), StorageError> {
        Store::open_on(dir, opts, Fs::Real, crate::system_clock()).await
    }

    /// [`Store::open`] with `clock` as the time source of expiry (unix epoch ms) instead
    /// of the wall clock: keys already expired by it at open are removed then.
    pub async fn open_with_clock(dir: &Path, opts: StoreOptions, clock: Clock) -> Result<(Store, RecoveryReport), StorageError> {
        Store::open_on(dir, opts, Fs::Real, clock).await
    }

    /// [`Store::open`] with every vLog file operation going through the fault-injecting
    /// layer `faults` (tests only: cargo feature `fault-injection`, see
    /// [`crate::fault`]). Open the directory through the same `faults` every time.
    /// Errors: as [`Store::open`], plus faults armed on the operations of the open.
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn open_with_faults(dir: &Path, opts: StoreOptions, faults: &crate::fault::FaultFs) -> Result<(Store, RecoveryReport), StorageError> {
        Store::open_on(dir, opts, Fs::Fault(faults.clone()), crate::system_clock()).await
    }

    /// [`Store::open_with_faults`] with `clock` as the time source of expiry.
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn open_with_faults_and_clock(dir: &Path, opts: StoreOptions, faults: &crate::fault::FaultFs, clock: Clock) -> Result<(Store, RecoveryReport), StorageError> {
        Store::open_on(dir, opts, Fs::Fault(faults.clone()), clock).await
    }

    async fn open_on(dir: &Path, opts: StoreOptions, fs: Fs, clock: Clock) -> Result<(Store, RecoveryReport), StorageError> {
        let mut opts = opts;
        opts.segment_bytes = opts.segment_bytes.clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
        let vlog_dir = dir.join("vlog");
        let fresh = !vlog_dir.exists();
        std::fs::create_dir_all(&vlog_dir).map_err(io_err(format!("create vlog directory {}", vlog_dir.display())))?;
        // glommio's `Directory::open` fails with EBADF on relative paths: work with
        // absolute ones from here on.
        let dir = &dir.canonicalize().map_err(io_err(format!("resolve data directory {}", dir.display())))?;
        let vlog_dir = vlog_dir.canonicalize().map_err(io_err(format!("resolve vlog directory {}", vlog_dir.display())))?;
        tracing::debug!("store {}: waiting for an earlier instance on this thread", vlog_dir.display());
        wait_for_previous_instance(&vlog_dir).await?;
        tracing::debug!("store {}: probing O_DIRECT", vlog_dir.display());
        probe_direct_io(dir).await?;
        tracing::debug!("store {}: opening the vlog directory", vlog_dir.display());
        let dir_handle = fs.open_dir(&vlog_dir).await.map_err(io_err(format!("open vlog directory {}", vlog_dir.display())))?;
        if fresh {
            let parent = fs.open_dir(dir).await.map_err(io_err(format!("open data directory {}", dir.display())))?;
            parent.sync().await.map_err(io_err(format!("fsync data directory {}", dir.display())))?;
        }
        tracing::debug!("store {}: recovering", vlog_dir.display());
        let recovered = recovery::recover(&vlog_dir, &fs, opts.inline_max()).await?;
        tracing::debug!("store {}: recovered", vlog_dir.display());
        let mut segs = recovered.segs;
        let tail = match recovered.tail {
            Some(t) => t,
            None => {
                let file = create_first_segment(&fs, &vlog_dir, &dir_handle).await?;
                segs.insert(1, SegInfo::new(Some(file), SEGMENT_HEADER_LEN));
                Tail { seg: 1, base: SEGMENT_HEADER_LEN, buf: Vec::new(), written: SEGMENT_HEADER_LEN, created: true, sealed: false }
            }
        };
        let mut report = recovered.report;
        report.segments = segs.len();
        let opts_cache_bytes = opts.cache_bytes;
        let inner = Rc::new(Inner {
            vlog_dir,
            opts,
            fs,
            dir_handle,
            keydir: RefCell::new(recovered.keydir),
            undo: RefCell::new(UndoLog::default()),
            reverts: Cell::new(0),
            segs: RefCell::new(segs),
            log: RefCell::new(LogState::new(tail)),
            next_seq: Cell::new(recovered.next_seq),
            compactions: Cell::new(0),
            compaction_lock: Semaphore::new(1),
            closed: Cell::new(false),
            rolled_back: Cell::new(false),
            cache: RefCell::new(S3Fifo::new(usize::try_from(opts_cache_bytes).unwrap_or(usize::MAX))),
            cache_epoch: Cell::new(0),
            clock: RefCell::new(clock),
            expired_keys: Cell::new(0),
            old_version_active: Cell::new(recovered.old_version_active),
            chains: RefCell::new(recovered.chains),
            fold_tokens: Cell::new(0),
            folds_running: Cell::new(0),
            reading: Cell::new(0),
        });
        glommio::spawn_local(writer::committer(Rc::downgrade(&inner))).detach();
        glommio::spawn_local(compaction::background(Rc::downgrade(&inner))).detach();
        glommio::spawn_local(expiry::background(Rc::downgrade(&inner))).detach();
        if inner.opts.durability == Durability::Relaxed {
            glommio::spawn_local(writer::relaxed_syncer(Rc::downgrade(&inner))).detach();
        }
        OPEN_STORES.with(|m| m.borrow_mut().insert(inner.vlog_dir.clone(), Rc::downgrade(&inner)));
        // Keys that expired while the store was down: removed now, with tombstones.
        report.expired_keys = inner.expire_due(usize::MAX);
        Ok((Store { handle: Rc::new(Handle { inner }) }, report))
    }

    /// Number of live keys in `ns`; keys whose expiry time has passed are not counted
    /// (also while they wait for their removal).
    pub fn len(&self, ns: Ns) -> usize {
        let keydir = self.handle.inner.keydir.borrow();
        keydir.len(ns) - keydir.due_count(ns, self.handle.inner.now())
    }

    /// True when `ns` holds no key.
    pub fn is_empty(&self, ns: Ns) -> bool {
        self.len(ns) == 0
    }

    /// Whether `key` is live in `ns`. Like every read here, it sees no expired key and
    /// removes one it meets (lazy expiry: a delete record, nobody waits for it).
    pub fn contains(&self, ns: Ns, key: &[u8]) -> bool {
        let inner = &self.handle.inner;
        let present = inner.keydir.borrow().get(ns, key).is_some();
        present && !inner.expire_if_due(ns, key)
    }

    /// Length in bytes of the live value, without reading it.
    pub fn value_len(&self, ns: Ns, key: &[u8]) -> Option<usize> {
        let inner = &self.handle.inner;
        let len = inner.keydir.borrow().get(ns, key).map(|e| e.len as usize)?;
        (!inner.expire_if_due(ns, key)).then(|| len + inner.appended_bytes(ns, key) as usize)
    }

    /// The expiry time of live `key` (unix epoch ms): `None` if the key is missing (or
    /// expired), `Some(0)` if it has no expiry time.
    pub fn expire_at(&self, ns: Ns, key: &[u8]) -> Option<u64> {
        if !self.contains(ns, key) {
            return None;
        }
        Some(self.handle.inner.keydir.borrow().expire_at(ns, key))
    }

    /// A token for `key`'s live value (`None`: missing or expired): where the value is
    /// in the vLog (segment, offset; of its newest append record if it has any), and how
    /// many failed rounds the store has taken
    /// back (after a revert the same place may be written again with other bytes). It
    /// changes with every write of the key, appends included (and with compaction's moves, which only
    /// costs a caller one more read), so a caller that awaited a read can tell whether
    /// the key was written meanwhile. (Not the record's sequence number: the keydir
    /// keeps none once recovery is done.)
    pub fn version(&self, ns: Ns, key: &[u8]) -> Option<ValueVersion> {
        let e = self.handle.inner.keydir.borrow().get(ns, key)?;
        let CacheKey::Value { seg, off } = self.handle.inner.place(ns, key, &e);
        self.contains(ns, key).then_some(ValueVersion { reverts: self.reverts(), seg, off })
    }

    /// Now by the store's clock, unix epoch ms: the time expiry is decided by.
    pub fn now_ms(&self) -> u64 {
        self.handle.inner.now()
    }

    /// Replaces the store's clock (tests: a clock they move by hand). Keys whose time
    /// has passed by the new clock become invisible at once.
    pub fn set_clock(&self, clock: Clock) {
        *self.handle.inner.clock.borrow_mut() = clock;
    }

    /// Removes every key whose expiry time has passed now (what the active cycle does,
    /// without its time budget); returns how many. Nothing while writes are refused.
    pub fn expire_now(&self) -> usize {
        self.handle.inner.expire_due(usize::MAX)
    }

    /// Keys of `ns` with an expiry time (not yet passed) and their mean time left, ms
    /// (INFO keyspace's `expires` and `avg_ttl`).
    pub fn expires(&self, ns: Ns) -> (usize, u64) {
        let inner = &self.handle.inner;
        let now = inner.now();
        let keydir = inner.keydir.borrow();
        (keydir.expiring(ns) - keydir.due_count(ns, now), keydir.avg_ttl(ns, now))
    }

    /// Brings what the reads and writes of `keys` in `ns` are about to touch into the
    /// CPU cache: their keydir chain heads and records, and for a value in the value
    /// cache its map slot and first bytes. For a batch of requests (a pipeline): the
    /// loads of different keys are independent, so their cache misses overlap here
    /// instead of coming one request after another. Only the first 32 keys count.
    /// Changes nothing, counts no hit or miss.
    pub fn prefetch(&self, ns: Ns, keys: &[&[u8]]) {
        let inner = &self.handle.inner;
        let keydir = inner.keydir.borrow();
        keydir.prefetch(ns, keys.iter().copied());
        let cache = inner.cache.borrow();
        let mut touched = 0u8;
        for key in keys.iter().take(crate::keydir::PREFETCH_MAX) {
            if let Some(e) = keydir.get(ns, key).filter(|e| e.inline.is_none() && e.len > 0) {
                if let Some(&first) = cache.peek(&value_key(&e)).and_then(<[u8]>::first) {
                    touched ^= first;
                }
            }
        }
        std::hint::black_box(touched);
    }

    /// The value if it is held in RAM (inline in the keydir, still in the unwritten
    /// append buffer, or in the cache, which counts a hit; for a value with append
    /// pieces, all its parts): see [`Lookup`]. Never does I/O; `OnDisk` counts no miss (the
    /// [`Store::get`] that follows does).
    pub fn lookup(&self, ns: Ns, key: &[u8]) -> Lookup {
        let inner = &self.handle.inner;
        if inner.expire_if_due(ns, key) {
            return Lookup::Missing;
        }
        let Some(e) = inner.keydir.borrow().get(ns, key) else { return Lookup::Missing };
        // A value with append pieces (most stores have none: one length compare).
        let assembled = if inner.chains.borrow().is_empty() {
            None
        } else {
            match inner.chain_in_ram(ns, key, &e) {
                Some(false) => return Lookup::OnDisk,
                Some(true) => inner.assemble(ns, key, &e, false),
                None => None,
            }
        };
        match assembled {
            Some(Assembled::Ready(v)) => Lookup::InMemory(v),
            Some(Assembled::Read(_)) => Lookup::OnDisk,
            None => match inner.in_ram(&e, false) {
                Some(v) => Lookup::InMemory(v),
                None => Lookup::OnDisk,
            },
        }
    }

    /// Reads the live value: from RAM when possible (not yet written, or in the cache: a
    /// hit), else (a miss) with one O_DIRECT read of the blocks holding it,
    /// which fills the cache if the value is still live when the read completes and its
    /// cost is within [`crate::cache::S3Fifo::max_entry_bytes`]. Errors: `Io` if the
    /// read fails or comes back short.
    pub async fn get(&self, ns: Ns, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let inner = &self.handle.inner;
        if inner.expire_if_due(ns, key) {
            return Ok(None);
        }
        let Some(e) = inner.keydir.borrow().get(ns, key) else { return Ok(None) };
        // A value with append pieces (most stores have none: one length compare).
        if !inner.chains.borrow().is_empty() {
            match inner.assemble(ns, key, &e, true) {
                None => {}
                Some(Assembled::Ready(v)) => return Ok(Some(v)),
                Some(Assembled::Read(a)) => return inner.assemble_read(ns, key, a).await.map(Some),
            }
        }
        let (file, seg, off, len, ck) = {
            if let Some(v) = inner.in_ram(&e, true) {
                return Ok(Some(v));
            }
            let ck = value_key(&e);
            let file = inner.segs.borrow().get(&e.seg).and_then(|s| s.file.clone());
            (file, e.seg, e.off as u64, e.len as usize, ck)
        };
        let epoch = inner.cache_epoch.get();
        let op = || format!("read value from vlog segment {} at offset {off}", segment_file_name(seg));
        let Some(file) = file else {
            return Err(StorageError::Io { op: op(), source: std::io::Error::other("segment file is missing") });
        };
        let _reading = Reading::new(&inner.reading, len);
        let r = file.read_at(off, len).await.map_err(io_err(op()))?;
        if r.len() != len {
            let source = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("read {} of {len} bytes", r.len()));
            return Err(StorageError::Io { op: op(), source });
        }
        let value = r.to_vec();
        // Fill only with bytes still live at this place: not after a revert, an
        // overwrite or a move that happened while the read was in flight.
        let live = inner.cache_epoch.get() == epoch && inner.keydir.borrow().get(ns, key).is_some_and(|e| value_key(&e) == ck);
        if live {
            let mut cache = inner.cache.borrow_mut();
            if cache.admits(len) {
                cache.insert(ck, value.as_slice().into());
            }
        }
        Ok(Some(value))
    }

    /// Appends the batch as one all-or-nothing record and updates the keydir *now*
    /// (later lookups see it at once), and the cache: each value written replaces the old value's entry there (write-allocate, when its cost is within
    /// [`crate::cache::S3Fifo::max_entry_bytes`]); the returned future resolves when the batch is
    /// acknowledged at the store's tier (see `Durability`). When a key appears more than
    /// once, the last mutation wins. An empty batch resolves at once.
    ///
    /// If the round holding the batch (or an earlier unacknowledged one) fails, the
    /// batch is taken back: the keydir returns to the last acknowledged state (so a later
    /// lookup no longer sees it; [`Store::reverts`] counts up) and its bytes are cut from
    /// the segment files (FORMAT.md "Group commit", failure steps).
    ///
    /// Errors now: `Poisoned` after an earlier failure that is for good; `Io` with the
    /// cause while a write that met a full disk is being taken back (writes resume by
    /// themselves once that is done: FORMAT.md "When a round fails"); `TooLarge` when
    /// the record would exceed 1 GiB. The future fails with `Io` if the write or
    /// fdatasync fails ("No space left on device" for a full disk).
    pub fn apply(&self, muts: Vec<Mutation>) -> Result<Commit, StorageError> {
        let inner = &self.handle.inner;
        match inner.apply_now(muts)? {
            None => Ok(Box::pin(std::future::ready(Ok(())))),
            Some(round) => Ok(Box::pin(inner.wait_round(round))),
        }
    }

    /// Appends `tail` to the value of `key` in `ns` (APPEND; a missing key is created
    /// with `tail` as its value, without an expiry time; a key keeps its expiry time) and
    /// returns the new length with the write's commit, or [`Appended::TooLong`] (nothing
    /// written) if the new value of a key that exists would pass `max_len` bytes (as
    /// Redis, a missing key is not checked: `tail` passed the request's limits).
    ///
    /// Writes only `tail`, as an append record (format version 3, kind 6; FORMAT.md
    /// "Appends"), without reading the value — unless the key has no pieces and its
    /// value is at most [`APPEND_REWRITE_MAX`] bytes or shorter than `tail`: then it reads
    /// the value (from RAM or the disk) and writes the new value as one put, reading
    /// again if the key was written while the read was awaited. When the key's pieces
    /// then reach the bound ([`crate::MAX_PIECES`], or one per [`crate::BYTES_PER_PIECE`] of the value
    /// if that is more) or outweigh its base, a fold starts in the background: it reads
    /// the value and writes it whole as one put, together with the appends that come
    /// meanwhile (kept in RAM), so no append waits for it and concurrent appends to the
    /// key never make it start over. An append to a large value costs its own bytes
    /// plus, amortized, a bounded multiple of them for the folds. Errors: as
    /// [`Store::apply`]'s, and `Io` if the read fails.
    pub async fn append(&self, ns: Ns, key: &[u8], tail: &[u8], max_len: usize) -> Result<Appended, StorageError> {
        let inner = &self.handle.inner;
        loop {
            let Some(before) = self.version(ns, key) else {
                let commit = self.apply(vec![Mutation::Put { ns, key: key.to_vec(), value: tail.to_vec() }])?;
                return Ok(Appended::Len(tail.len(), commit));
            };
            let e = inner.keydir.borrow().get(ns, key).expect("a live key has an entry");
            let chained = inner.is_chained(ns, key);
            let new_len = e.len as u64 + inner.appended_bytes(ns, key) + tail.len() as u64;
            if new_len > max_len as u64 {
                return Ok(Appended::TooLong);
            }
            let new_len = new_len as usize;
            let rewrite = !chained && (e.len as usize <= APPEND_REWRITE_MAX || tail.len() > e.len as usize);
            if !rewrite {
                let round = inner.append_piece(ns, key, tail)?;
                if inner.fold_due(ns, key, &e) {
                    self.spawn_fold(ns, key);
                }
                return Ok(Appended::Len(new_len, Box::pin(inner.wait_round(round))));
            }
            let Some(mut value) = self.get(ns, key).await? else { continue };
            if self.version(ns, key) != Some(before) {
                continue; // written meanwhile: start again from its new value
            }
            value.extend_from_slice(tail);
            let expire_at = inner.keydir.borrow().expire_at(ns, key);
            let commit = self.apply(vec![Mutation::PutExpiring { ns, key: key.to_vec(), value, expire_at }])?;
            return Ok(Appended::Len(new_len, commit));
        }
    }

    /// Starts a fold of `key` in the background (FORMAT.md "Appends"): claimed now, so
    /// that later appends add to it rather than start another.
    fn spawn_fold(&self, ns: Ns, key: &[u8]) {
        let inner = self.handle.inner.clone();
        let Some(token) = inner.claim_fold(ns, key) else { return };
        let key = key.to_vec();
        inner.folds_running.set(inner.folds_running.get() + 1);
        glommio::spawn_local(async move {
            if !inner.closed.get() {
                if let Err(e) = inner.fold_claimed(ns, &key, token).await {
                    tracing::warn!("folding the append pieces of a key failed: {e}");
                }
            }
            inner.folds_running.set(inner.folds_running.get() - 1);
        })
        .detach();
    }

    /// Waits until no background fold of append pieces is running (tests). A fold's put
    /// is then appended, not necessarily written: nobody waits for it (a crash before it
    /// is written loses nothing, replay finds the pieces); [`Store::sync`] writes it.
    #[doc(hidden)]
    pub async fn wait_for_folds(&self) {
        while self.handle.inner.folds_running.get() > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Removes every key of every namespace (FLUSHALL), durably as one record; the
    /// future resolves like [`Store::apply`]'s. Errors now: as [`Store::apply`]'s.
    pub fn clear_all(&self) -> Result<Commit, StorageError> {
        let inner = &self.handle.inner;
        inner.check_writable()?;
        let seq = inner.take_seq();
        let (seg, _, round) = inner.append(HEADER_LEN, |buf| {
            record::encode_clear_all(buf, seq);
        });
        let keydir = std::mem::take(&mut *inner.keydir.borrow_mut());
        inner.cache.borrow_mut().clear();
        let live = inner.segs.borrow_mut().iter_mut().map(|(id, s)| (*id, std::mem::take(&mut s.live))).collect();
        inner.undo.borrow_mut().cleared(round, keydir, live);
        if !inner.chains.borrow().is_empty() {
            let chains = std::mem::take(&mut *inner.chains.borrow_mut());
            inner.undo.borrow_mut().chain(round, ChainUndo::All(chains));
        }
        inner.add_tomb_logged(round, seg, HEADER_LEN as u64);
        Ok(Box::pin(inner.wait_round(round)))
    }

    /// Removes every key of namespace `ns` (FLUSHDB): a delete per live key, in batches
    /// of at most [`CLEAR_NS_BATCH_BYTES`] of record body each (so one batch, one
    /// all-or-nothing record, for any namespace of up to ~2.5 million 16-byte keys); the
    /// keys are gone from the keydir at once. The future resolves when every batch is
    /// acknowledged, or fails with the first batch's error. No new record kind: the vLog
    /// format is unchanged, at the cost of a tombstone per key (Redis's FLUSHDB is O(N)
    /// as well). With more than one batch, a crash may leave the namespace partly
    /// cleared (whole batches). Errors now: as [`Store::apply`]'s.
    pub fn clear_ns(&self, ns: Ns) -> Result<Commit, StorageError> {
        self.clear_ns_batched(ns, CLEAR_NS_BATCH_BYTES)
    }

    /// [`Store::clear_ns`] with batches of at most `batch_bytes` (tests: several batches
    /// without millions of keys).
    #[doc(hidden)]
    pub fn clear_ns_batched(&self, ns: Ns, batch_bytes: usize) -> Result<Commit, StorageError> {
        self.handle.inner.check_writable()?;
        let keys = self.keys_where(ns, &mut |_| true);
        let mut commits = Vec::new();
        let mut batch = Vec::new();
        let mut bytes = 0;
        for key in keys {
            bytes += record::ENTRY_HEADER_LEN + key.len();
            batch.push(Mutation::Delete { ns, key });
            if bytes >= batch_bytes {
                commits.push(self.apply(std::mem::take(&mut batch))?);
                bytes = 0;
            }
        }
        commits.push(self.apply(batch)?);
        Ok(Box::pin(async move {
            for c in commits {
                c.await?;
            }
            Ok(())
        }))
    }

    /// Drops keydir entries of `ns` for which `pred(key)` is true, without writing any
    /// record (used when their owner, e.g. a dropped index, is already gone durably; a
    /// restart finds them again in the log, so the caller must forget them again).
    /// Returns how many were dropped. While a write is unacknowledged the drops belong to
    /// the round it is in: if that round fails they are undone with it.
    pub fn forget_where(&self, ns: Ns, pred: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let inner = &self.handle.inner;
        let mut forgotten = Vec::new();
        let mut n = 0;
        let log_it = !inner.undo.borrow().is_empty();
        let has_ttls = inner.keydir.borrow().expiring(ns) > 0;
        let has_chains = !inner.chains.borrow().is_empty();
        {
            let mut segs = inner.segs.borrow_mut();
            inner.keydir.borrow_mut().retain(ns, &mut |k, _| !pred(k), &mut |k, e| {
                if let Some(s) = segs.get_mut(&e.seg) {
                    s.live -= e.foot as u64;
                }
                inner.cache.borrow_mut().remove(&value_key(&e));
                n += 1;
                if log_it || has_ttls || has_chains {
                    forgotten.push((k, e));
                }
            });
        }
        let round = inner.log.borrow().open_round;
        for (key, e) in forgotten {
            // A forgotten key loses its pieces and its expiry time too.
            inner.drop_chain(log_it.then_some(round), ns, &key);
            let prev = inner.keydir.borrow_mut().set_expire_at(ns, &key, 0);
            if log_it {
                let mut undo = inner.undo.borrow_mut();
                undo.removed(round, ns, key.to_vec(), &e);
                if prev != 0 {
                    undo.ttl(round, ns, &key, prev);
                }
            }
        }
        n
    }

    /// Keys of `ns` for which `pred(key)` is true, in no particular order.
    /// Expired keys are left out.
    pub fn keys_where(&self, ns: Ns, pred: &mut dyn FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        let now = self.handle.inner.now();
        let keydir = self.handle.inner.keydir.borrow();
        keydir.for_each(ns, &mut |k, _| {
            if pred(k) && !keydir.is_expired(ns, k, now) {
                keys.push(k.to_vec());
            }
        });
        keys
    }

    /// Cursor scan over `ns`: returns at least `count` keys (whole hash buckets, so
    /// occasionally a few more) from `cursor` on, or all that are left, and the next
    /// cursor (0 when the walk is complete). Start with cursor 0. Cursors are < 2^48.
    /// Every key present for the whole walk is returned at least once; with no
    /// concurrent writes, exactly once. Keys come in hash order, not key order.
    /// Expired keys are left out (so a step may return fewer than `count`).
    pub fn scan(&self, ns: Ns, cursor: u64, count: usize) -> (u64, Vec<Vec<u8>>) {
        let now = self.handle.inner.now();
        let keydir = self.handle.inner.keydir.borrow();
        let (next, mut keys) = keydir.scan(ns, cursor, count);
        if keydir.expiring(ns) > 0 {
            keys.retain(|k| !keydir.is_expired(ns, k, now));
        }
        (next, keys)
    }

    /// Calls `f(key, value)` for every live key of `ns`: first those whose values are in
    /// RAM, then the rest in segment order, read in 1 MiB O_DIRECT windows. The set of
    /// keys is taken when the call starts; values overwritten during the walk may show
    /// either version. Errors: `Io` if a read fails or comes back short.
    pub async fn for_each_live(&self, ns: Ns, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StorageError> {
        let mut on_disk: Vec<(u32, u64, u32, Vec<u8>)> = Vec::new();
        let mut in_ram: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut chained = Vec::new();
        let inner = &self.handle.inner;
        inner.keydir.borrow().for_each(ns, &mut |k, e| match inner.assemble(ns, k, e, false) {
            Some(Assembled::Ready(v)) => in_ram.push((k.to_vec(), v)),
            Some(Assembled::Read(a)) => chained.push((k.to_vec(), a)),
            None => match inner.ram_value(e) {
                Some(v) => in_ram.push((k.to_vec(), v)),
                None => on_disk.push((e.seg, e.off as u64, e.len, k.to_vec())),
            },
        });
        // `f` runs with no borrow held, so it may call back into the store.
        for (k, v) in in_ram {
            f(&k, &v);
        }
        // Values with pieces (append records): their parts were taken above.
        for (k, a) in chained {
            let v = inner.assemble_read(ns, &k, a).await?;
            f(&k, &v);
        }
        on_disk.sort_unstable_by_key(|(seg, off, ..)| (*seg, *off));
        let files: BTreeMap<u32, _> = {
            let segs = self.handle.inner.segs.borrow();
            on_disk.iter().map(|(seg, ..)| (*seg, segs.get(seg).and_then(|s| s.file.clone()))).collect()
        };
        let mut i = 0;
        while i < on_disk.len() {
            glommio::yield_if_needed().await;
            let seg = on_disk[i].0;
            let op = || format!("read values from vlog segment {}", segment_file_name(seg));
            let Some(file) = files[&seg].clone() else {
                return Err(StorageError::Io { op: op(), source: std::io::Error::other("segment file is missing") });
            };
            // One window: consecutive entries of this segment that fit in READ_WINDOW
            // (or one larger entry alone).
            let start = on_disk[i].1 - on_disk[i].1 % 4096;
            let mut j = i;
            let mut end = start;
            while j < on_disk.len() && on_disk[j].0 == seg {
                let e_end = on_disk[j].1 + on_disk[j].2 as u64;
                if j > i && e_end - start > READ_WINDOW {
                    break;
                }
                end = end.max(e_end);
                j += 1;
            }
            let r = file.read_at(start, (end - start) as usize).await.map_err(io_err(op()))?;
            for (_, off, len, key) in &on_disk[i..j] {
                let at = (off - start) as usize;
                let Some(value) = r.get(at..at + *len as usize) else {
                    let source = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "value past the end of the segment file");
                    return Err(StorageError::Io { op: op(), source });
                };
                f(key, value);
            }
            i = j;
        }
        Ok(())
    }

    /// Writes out everything buffered and fdatasyncs it, at every tier (shutdown, tests).
    /// Errors: as [`Store::apply`]'s, or `Io` if this write or sync fails.
    pub async fn sync(&self) -> Result<(), StorageError> {
        self.handle.inner.check_writable()?;
        let round = self.handle.inner.request_sync();
        self.handle.inner.wait_round(round).await
    }

    /// Runs one compaction pass now (the background task does the same every second):
    /// compacts every sealed segment whose dead ratio is at least
    /// `compaction_dead_ratio`. Returns the number of segments compacted (deleted).
    /// Errors: `Corrupt` if a segment to compact has a bad record, `Io`, `Poisoned`.
    pub async fn compact_now(&self) -> Result<usize, StorageError> {
        compaction::pass(&self.handle.inner).await
    }

    /// Group-commit rounds completed since open (each: one write per segment touched and
    /// at most one fdatasync each). Many concurrent applies share a round.
    pub fn commit_rounds(&self) -> u64 {
        self.handle.inner.log.borrow().done_round
    }

    /// Bytes appended but not yet written (the group-commit backlog); a caller may
    /// throttle writes when this grows.
    pub fn unwritten_bytes(&self) -> u64 {
        self.handle.inner.log.borrow().unwritten()
    }

    /// How many times the keydir was reverted to its last acknowledged state after a
    /// failed write or sync (once per failure that took something back: several times
    /// when writes meet a full disk, since the store resumes after each). A
    /// caller that keeps state derived from what it wrote (e.g. the shard's vector
    /// indexes, updated at `apply` time) compares this with the value it last saw and
    /// rebuilds that state from the store when it changed. One `Cell` read.
    pub fn reverts(&self) -> u64 {
        self.handle.inner.reverts.get()
    }

    /// Value bytes of reads of whole values from the vLog issued and not yet returned to
    /// their caller, bytes (the values' lengths, not the O_DIRECT buffers' block-rounded
    /// sizes; a read whose future is dropped stops counting then): every [`Store::get`],
    /// and every assembly of a value with append pieces, also for a fold (background or
    /// compaction's) or [`Store::for_each_live`] — those bytes are held just the same.
    /// The shard's budget of value bytes in flight (`inflight_bytes`) counts them. Not
    /// counted: compaction's and recovery's segment reads, and [`Store::for_each_live`]'s
    /// windows.
    pub fn reading_bytes(&self) -> usize {
        self.handle.inner.reading.get()
    }

    /// Counters for INFO and tests.
    pub fn stats(&self) -> StoreStats {
        let now = self.handle.inner.now();
        let keydir = self.handle.inner.keydir.borrow();
        let segs = self.handle.inner.segs.borrow();
        let disk_bytes: u64 = segs.values().map(|s| s.end).sum();
        let live_bytes: u64 = segs.values().map(|s| s.live).sum();
        // Keys whose time has passed, waiting for their removal (counted by neither).
        let due = [0, 1, 2].map(|ns| keydir.due_count(ns, now));
        StoreStats {
            keys_per_ns: [0, 1, 2].map(|ns| keydir.len(ns) - due[ns as usize]),
            expires_per_ns: [0, 1, 2].map(|ns| keydir.expiring(ns) - due[ns as usize]),
            expired_keys: self.handle.inner.expired_keys.get(),
            keydir_bytes: keydir.heap_bytes(),
            segments: segs.len(),
            disk_bytes,
            live_bytes,
            dead_bytes: disk_bytes.saturating_sub(live_bytes + segs.len() as u64 * SEGMENT_HEADER_LEN),
            compactions: self.handle.inner.compactions.get(),
            last_seq: self.handle.inner.next_seq.get() - 1,
            cache: self.handle.inner.cache.borrow().stats(),
            append_chains: self.handle.inner.chains.borrow().len(),
            append_pieces: self.handle.inner.chains.borrow().pieces(),
        }
    }

    /// Keydir changes not yet acknowledged (tests: the undo log drains).
    #[cfg(test)]
    pub(crate) fn undo_len(&self) -> usize {
        self.handle.inner.undo.borrow().len()
    }

    /// Entries of the failed-round list (tests: it does not grow without bound).
    #[cfg(test)]
    pub(crate) fn failed_entries(&self) -> usize {
        self.handle.inner.log.borrow().failed.len()
    }

    /// Waits until the files are cut back after a failure (tests: nothing of the store
    /// is left running when the test ends).
    #[cfg(test)]
    pub(crate) async fn rolled_back(&self) {
        while !self.handle.inner.rolled_back.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Every keydir entry, sorted, and each segment's (id, live, tomb) (tests: compare
    /// the state before and after a revert). Checks that the SCAN order matches the
    /// keydir.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Snapshot {
        let keydir = self.handle.inner.keydir.borrow();
        assert!(keydir.order_is_consistent(), "the SCAN order matches the keydir");
        let mut entries = Vec::new();
        // Locations only: a revert does not restore inline copies of values (reads of
        // those keys go to the vLog until they are written again).
        keydir.for_each_all(&mut |ns, k, e| entries.push((ns, k.to_vec(), Entry { inline: None, ..*e })));
        entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let segs = self.handle.inner.segs.borrow().iter().map(|(id, s)| (*id, s.live, s.tomb)).collect();
        let mut chains = Vec::new();
        self.handle.inner.chains.borrow().for_each(|ns, k, c| chains.push((ns, k.to_vec(), crate::chain::Chain { fold: None, ..c.clone() })));
        chains.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Snapshot { entries, segs, ttls: keydir.ttls(), chains }
    }
}

/// What [`Store::snapshot`] returns.
#[cfg(test)]
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub entries: Vec<(Ns, Vec<u8>, Entry)>,
    pub segs: Vec<(u32, u64, u64)>,
    pub ttls: Vec<(Ns, Vec<u8>, u64)>,
    pub chains: Vec<(Ns, Vec<u8>, crate::chain::Chain)>,
}

/// Keeps only the last mutation of each (namespace, key), in order.
fn dedupe(muts: Vec<Mutation>) -> Vec<Mutation> {
    if muts.len() < 2 {
        return muts;
    }
    // A mutation is kept unless a later one has its target: pairwise for a few (an MSET
    // of ten keys compares 45 pairs, cheaper than hashing ten keys), by hash for more.
    let keep: Vec<bool> = if muts.len() <= 16 {
        (0..muts.len()).map(|i| muts[i + 1..].iter().all(|m| m.target() != muts[i].target())).collect()
    } else {
        let mut seen = HashSet::with_capacity(muts.len());
        let mut keep: Vec<bool> = muts.iter().rev().map(|m| seen.insert(m.target())).collect();
        keep.reverse();
        keep
    };
    if keep.iter().all(|&k| k) {
        return muts;
    }
    muts.into_iter().zip(keep).filter_map(|(m, k)| k.then_some(m)).collect()
}

impl Mutation {
    fn target(&self) -> (Ns, &[u8]) {
        match self {
            Mutation::Put { ns, key, .. } | Mutation::PutExpiring { ns, key, .. } | Mutation::Delete { ns, key } => (*ns, key),
        }
    }
}

/// Creates `00000001.vlog` with its header, durably (file and directory).
async fn create_first_segment(fs: &Fs, vlog_dir: &Path, dir_handle: &Dir) -> Result<Rc<File>, StorageError> {
    let path = vlog_dir.join(segment_file_name(1));
    let op = |what: &str| format!("{what} vlog segment {}", path.display());
    let file = fs.create(&path).await.map_err(io_err(op("create")))?;
    let header = segment_header(1);
    let mut buf = file.alloc_dma_buffer(header.len());
    buf.as_bytes_mut().copy_from_slice(&header);
    let n = file.write_at(buf, 0).await.map_err(io_err(op("write header of")))?;
    if n != header.len() {
        let source = std::io::Error::new(std::io::ErrorKind::WriteZero, format!("short write: {n} of {} bytes", header.len()));
        return Err(StorageError::Io { op: op("write header of"), source });
    }
    file.fdatasync().await.map_err(io_err(op("fdatasync")))?;
    dir_handle.sync().await.map_err(io_err("fsync the vlog directory after creating a segment"))?;
    Ok(Rc::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last mutation of each target is kept, in order, for batches compared pairwise
    /// (≤ 16) and by hash (more).
    #[test]
    fn dedupe_keeps_the_last_mutation_of_each_key() {
        for n in [2usize, 10, 16, 17, 40] {
            let muts: Vec<Mutation> = (0..n)
                .map(|i| match i % 3 {
                    2 => Mutation::Delete { ns: (i % 2) as Ns, key: format!("k{}", i % 5).into_bytes() },
                    _ => Mutation::Put { ns: (i % 2) as Ns, key: format!("k{}", i % 5).into_bytes(), value: vec![i as u8] },
                })
                .collect();
            let want: Vec<usize> = (0..n).filter(|&i| !(i + 1..n).any(|j| j % 2 == i % 2 && j % 5 == i % 5)).collect();
            let got: Vec<(Ns, Vec<u8>)> = dedupe(muts.clone()).iter().map(|m| (m.target().0, m.target().1.to_vec())).collect();
            let want: Vec<(Ns, Vec<u8>)> = want.iter().map(|&i| (muts[i].target().0, muts[i].target().1.to_vec())).collect();
            assert_eq!(got, want, "{n} mutations");
        }
    }
}
