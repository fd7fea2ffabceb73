//! The write path: the in-RAM append buffer ("tails") and the group-commit task.
//!
//! `Store::apply` encodes a record at the end of the active tail and returns at once;
//! the committer task turns everything appended since its last round into one O_DIRECT
//! write per segment touched (4 KiB aligned: the partial last block is rewritten each
//! round, zero padded), then one fdatasync, then wakes the round's waiters. While a round
//! is in flight, new records accumulate for the next one. The numbered steps and the
//! per-tier differences are in `storage/FORMAT.md` ("Group commit").
//!
//! When a round fails (or another task poisons the store), [`Inner::poison`] puts the
//! keydir back to the last acknowledged round at once, and the committer then cuts the
//! segment files back to their acknowledged ends ([`roll_back_files`]). If the failure
//! was a full file system met by a *write* (ENOSPC, EDQUOT, or a short write whose
//! retry reports one) and the rollback completed, the committer rebuilds the active
//! tail from the file and resumes ([`resume`]): the next write is tried normally, and
//! fails the same way while the disk is still full. Any other failure (an fdatasync or
//! directory fsync, an I/O error, an incomplete rollback) poisons the store for good and
//! the committer ends.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_lite::future::{poll_fn, yield_now};

use super::record::{segment_file_name, segment_header, SEGMENT_HEADER_LEN};
use super::SegInfo;
use crate::file::File;
use crate::store::Inner;
use crate::util::clone_io;
use crate::{Durability, StorageError};

const ALIGN: u64 = 4096;
/// A tail buffer with more capacity than this is shrunk once mostly empty, bytes.
const SHRINK_ABOVE: usize = 4 << 20;

/// The not-yet-durable end of one segment, held in RAM.
pub(crate) struct Tail {
    pub seg: u32,
    /// File offset of `buf[0]`; 4 KiB aligned. Everything before it is written.
    pub base: u64,
    /// The bytes `[base, end)`: the partial block already on disk (rewritten by the next
    /// write) followed by everything not yet written.
    pub buf: Vec<u8>,
    /// Offset up to which the data has been written.
    pub written: u64,
    /// Whether the segment file exists.
    pub created: bool,
    /// No more records go to this segment (a newer one is active).
    pub sealed: bool,
}

impl Tail {
    pub fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Needs a round: unwritten bytes, no file yet, or sealed (a sealed tail is synced
    /// and dropped by the next round, even when its bytes were all written before).
    fn needs_round(&self) -> bool {
        self.end() > self.written || !self.created || self.sealed
    }

    /// The bytes `[off, off + len)` if they are still in this buffer.
    pub fn ram(&self, off: u64, len: usize) -> Option<&[u8]> {
        if off < self.base {
            return None;
        }
        let at = (off - self.base) as usize;
        self.buf.get(at..at + len)
    }
}

/// Why the store is poisoned.
///
/// A poison is *resumable* only when a group-commit write (or the creation of a
/// segment file) failed because the file system is full: ENOSPC / EDQUOT, or a short
/// write whose retry reported one (see [`is_out_of_space`]). Nothing about the page
/// cache is in doubt then: the bytes either never reached the file or are cut by the
/// rollback. The store resumes ([`resume`]) when all of this holds:
/// - the rollback completed ([`roll_back_files`] returned `true`: every file cut to its
///   acknowledged end and fdatasynced, the new segments removed and the directory
///   fsynced);
/// - no other failure came meanwhile ([`Inner::poison`] makes a resumable poison
///   permanent when a non-resumable one follows);
/// - the active tail is rebuilt from the file: the partial block `[acked_end rounded
///   down to 4 KiB, acked_end)` is re-read into its buffer (the RAM copy may have moved
///   past it: a segment written in the failed round before another one failed), with
///   `base` aligned and `written = acked_end`.
///
/// Then `poison` is cleared; the undo log is already empty (the revert took it all and
/// nothing is appended while poisoned); the committer goes on (it never ended), and the
/// relaxed syncer and compaction tasks skip their work while a resumable poison lasts
/// instead of ending. Whether the disk is still full is not checked: the next write
/// finds out (and is reverted the same way). Sequence numbers of the failed records are
/// not reused, and their rounds are remembered as failed ([`LogState::failed`]), so a
/// commit future polled only after the resume still fails.
///
/// Everything else is permanent until a restart. In particular a failed fdatasync:
/// after it the kernel may have dropped the dirty pages and marked them clean, so what
/// the file holds is unknown, and retrying the sync can report success for data that
/// is lost (PostgreSQL's "fsyncgate"); `StorageError::Poisoned` from then on.
pub(crate) struct Poison {
    pub op: String,
    pub err: io::Error,
    /// A full file system met by a write: the store resumes after the rollback.
    pub resumable: bool,
}

/// Rounds `(lo, hi]` that were unacknowledged when the store was poisoned: they failed,
/// whatever rounds are acknowledged later.
pub(crate) struct FailedRounds {
    pub lo: u64,
    pub hi: u64,
    /// `LogState::failures` after the (latest) failure that made this entry.
    pub failure: u64,
    pub op: String,
    pub err: io::Error,
}

/// Shared state of the write path.
pub(crate) struct LogState {
    /// Back = the active segment; front ones are sealed and not yet fully written.
    pub tails: VecDeque<Tail>,
    /// Round that records appended now belong to.
    pub open_round: u64,
    /// Every round ≤ this one is acknowledged.
    pub done_round: u64,
    /// The open round must fdatasync even at `Relaxed` (a `sync()` is waiting).
    pub force_sync: bool,
    pub waiters: Vec<(u64, Waker)>,
    pub poison: Option<Poison>,
    /// Rounds that failed, oldest first, disjoint (consecutive failures with no round
    /// acknowledged in between share one entry, with the latest cause, so a long
    /// full-disk spell costs one). Only a commit future made before a failure can need
    /// its entry, so entries older than every live [`CommitWait`] are dropped.
    pub failed: VecDeque<FailedRounds>,
    /// Times the store was poisoned (resumable or not).
    pub failures: u64,
    /// Live [`CommitWait`]s by the value of `failures` when they were made, from
    /// `oldest_wait` on (the oldest value a live one may have).
    live_waits: VecDeque<usize>,
    oldest_wait: u64,
    pub committer: Option<Waker>,
    /// `Relaxed`: data was written but not yet fdatasynced.
    pub unsynced: bool,
}

impl LogState {
    pub fn new(active: Tail) -> LogState {
        LogState {
            tails: VecDeque::from([active]),
            open_round: 1,
            done_round: 0,
            force_sync: false,
            waiters: Vec::new(),
            poison: None,
            failed: VecDeque::new(),
            failures: 0,
            live_waits: VecDeque::new(),
            oldest_wait: 0,
            committer: None,
            unsynced: false,
        }
    }

    /// The failure that took back `round`, if it failed.
    fn failure_of(&self, round: u64) -> Option<&FailedRounds> {
        let i = self.failed.partition_point(|f| f.hi < round);
        self.failed.get(i).filter(|f| f.lo < round)
    }

    /// A [`CommitWait`] is made now; returns its `failures` value.
    fn wait_made(&mut self) -> u64 {
        let at = (self.failures - self.oldest_wait) as usize;
        if self.live_waits.len() <= at {
            self.live_waits.resize(at + 1, 0);
        }
        self.live_waits[at] += 1;
        self.failures
    }

    /// A [`CommitWait`] made at `failures` value `made` is gone: drops the failed-round
    /// entries no live one can need (those of failures before the oldest live one).
    fn wait_dropped(&mut self, made: u64) {
        self.live_waits[(made - self.oldest_wait) as usize] -= 1;
        while self.live_waits.front() == Some(&0) {
            self.live_waits.pop_front();
            self.oldest_wait += 1;
        }
        if self.live_waits.is_empty() {
            self.oldest_wait = self.failures;
        }
        while self.failed.front().is_some_and(|f| f.failure <= self.oldest_wait) {
            self.failed.pop_front();
        }
    }

    /// Poisoned for good (not waiting to resume after a full disk).
    pub fn poisoned_for_good(&self) -> bool {
        self.poison.as_ref().is_some_and(|p| !p.resumable)
    }

    pub fn active(&self) -> &Tail {
        self.tails.back().expect("there is always an active tail")
    }

    fn has_work(&self) -> bool {
        self.force_sync || self.tails.iter().any(Tail::needs_round)
    }

    pub fn wake_committer(&mut self) {
        if let Some(w) = self.committer.take() {
            w.wake();
        }
    }

    /// Bytes appended but not yet written.
    pub fn unwritten(&self) -> u64 {
        self.tails.iter().map(|t| t.end() - t.written.max(t.base)).sum()
    }

    /// The value bytes at `[off, off + len)` of segment `seg` if they are still in RAM.
    pub fn ram(&self, seg: u32, off: u64, len: usize) -> Option<&[u8]> {
        self.tails.iter().find(|t| t.seg == seg)?.ram(off, len)
    }
}

impl Inner {
    /// Appends one record of `len` bytes written by `encode` at the end of the log,
    /// rolling to a new segment first when the active one would pass `segment_bytes`.
    /// Returns (segment id, record offset, commit round).
    pub(crate) fn append(&self, len: usize, encode: impl FnOnce(&mut Vec<u8>)) -> (u32, u64, u64) {
        let mut log = self.log.borrow_mut();
        debug_assert!(log.poison.is_none(), "nothing is appended to a poisoned store");
        let active = log.active();
        let full = active.end() > SEGMENT_HEADER_LEN && active.end() + len as u64 > self.opts.segment_bytes;
        if full || active.seg == self.old_version_active.get() {
            self.old_version_active.set(0);
            let id = active.seg + 1;
            log.tails.back_mut().expect("active tail").sealed = true;
            log.tails.push_back(Tail { seg: id, base: 0, buf: segment_header(id), written: 0, created: false, sealed: false });
            self.segs.borrow_mut().insert(id, SegInfo::unacknowledged(SEGMENT_HEADER_LEN));
        }
        let tail = log.tails.back_mut().expect("active tail");
        let (seg, off) = (tail.seg, tail.end());
        encode(&mut tail.buf);
        debug_assert_eq!(tail.end(), off + len as u64);
        let end = tail.end();
        self.segs.borrow_mut().get_mut(&seg).expect("segment of the active tail").end = end;
        let round = log.open_round;
        log.wake_committer();
        (seg, off, round)
    }

    /// A future that resolves when `round` is acknowledged (or fails if the store is
    /// poisoned first).
    pub(crate) fn wait_round(self: &Rc<Self>, round: u64) -> CommitWait {
        let made = self.log.borrow_mut().wait_made();
        CommitWait { inner: self.clone(), round, made }
    }

    /// Asks for a round that writes everything appended so far and fdatasyncs at every
    /// tier; returns the round to wait for.
    pub(crate) fn request_sync(&self) -> u64 {
        let mut log = self.log.borrow_mut();
        log.force_sync = true;
        log.wake_committer();
        log.open_round
    }

    /// Records a failure and stops the write path: the keydir goes back to the last
    /// acknowledged round at once (so no later read sees an unacknowledged write),
    /// every unacknowledged round is marked failed and its waiting commits fail (they
    /// never will be acknowledged), and the committer is woken to cut the files back
    /// ([`roll_back_files`]). `resumable` (a full disk met by a write, see [`Poison`]):
    /// the committer then resumes; otherwise, or if a resumable poison is replaced by
    /// this one, writes are refused until a restart. Acknowledged writes are kept, also
    /// at `Relaxed` when the failure is its background sync. Call with no borrow of the
    /// store's cells held.
    pub(crate) fn poison(&self, op: String, err: io::Error, resumable: bool) {
        if resumable {
            tracing::error!("vlog {op} failed: {err}; the file system is full: taking back the unacknowledged writes, refusing writes until that is done");
        } else {
            tracing::error!("vlog {op} failed: {err}; the store is poisoned and refuses writes from now on");
        }
        {
            let mut log = self.log.borrow_mut();
            log.failures += 1;
            let (lo, hi) = (log.done_round, log.open_round);
            let failure = log.failures;
            match log.failed.back_mut() {
                // No round acknowledged since the last failure: one entry, the latest cause.
                Some(last) if last.hi >= lo => *last = FailedRounds { lo: last.lo, hi: last.hi.max(hi), failure, op: op.clone(), err: clone_io(&err) },
                _ => log.failed.push_back(FailedRounds { lo, hi, failure, op: op.clone(), err: clone_io(&err) }),
            }
            // Later appends go to a round that is not marked failed.
            log.open_round += 1;
            match &mut log.poison {
                None => log.poison = Some(Poison { op, err, resumable }),
                Some(p) if p.resumable && !resumable => *p = Poison { op, err, resumable },
                Some(_) => {}
            }
        }
        self.revert_unacknowledged();
        let waiters = {
            let mut log = self.log.borrow_mut();
            log.wake_committer();
            std::mem::take(&mut log.waiters)
        };
        for (_, w) in waiters {
            w.wake();
        }
    }

    /// Round `round` succeeded: its segments' data is acknowledged up to the ends it
    /// wrote, its keydir changes leave the undo log, its waiters are woken.
    fn acknowledge(&self, round: &Round) {
        {
            let mut segs = self.segs.borrow_mut();
            for &(seg, end) in &round.ends {
                if let Some(s) = segs.get_mut(&seg) {
                    s.acked_end = end;
                }
            }
        }
        self.undo.borrow_mut().acknowledge(round.number);
        let woken: Vec<Waker> = {
            let mut log = self.log.borrow_mut();
            log.done_round = round.number;
            let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut log.waiters).into_iter().partition(|(r, _)| *r <= round.number);
            log.waiters = rest;
            done.into_iter().map(|(_, w)| w).collect()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Makes a resumable poison permanent (the store cannot resume: `why`).
    fn poison_for_good(&self, why: &str) {
        if let Some(p) = self.log.borrow_mut().poison.as_mut().filter(|p| p.resumable) {
            p.resumable = false;
            tracing::error!("vlog: {why}; the store is poisoned and refuses writes from now on");
        }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.log.borrow().poison.is_some()
    }

    /// `Ok` if writes are accepted now. Otherwise, while the store takes back writes
    /// after a full disk: `Io` with that failure (the client sees its cause, e.g. "No
    /// space left on device"); poisoned for good: `Poisoned`.
    pub(crate) fn check_writable(&self) -> Result<(), StorageError> {
        match &self.log.borrow().poison {
            None => Ok(()),
            Some(p) if p.resumable => Err(StorageError::Io { op: p.op.clone(), source: clone_io(&p.err) }),
            Some(_) => Err(StorageError::Poisoned),
        }
    }
}

/// Resolves when its round is acknowledged.
pub(crate) struct CommitWait {
    inner: Rc<Inner>,
    round: u64,
    /// `LogState::failures` when it was made.
    made: u64,
}

impl Drop for CommitWait {
    fn drop(&mut self) {
        // (Never borrowed here in practice; if it were, the entries are just kept.)
        if let Ok(mut log) = self.inner.log.try_borrow_mut() {
            log.wait_dropped(self.made);
        }
    }
}

impl Future for CommitWait {
    type Output = Result<(), StorageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut log = self.inner.log.borrow_mut();
        if let Some(f) = log.failure_of(self.round) {
            return Poll::Ready(Err(StorageError::Io { op: f.op.clone(), source: clone_io(&f.err) }));
        }
        if log.done_round >= self.round {
            return Poll::Ready(Ok(()));
        }
        if let Some(p) = &log.poison {
            return Poll::Ready(Err(StorageError::Io { op: p.op.clone(), source: clone_io(&p.err) }));
        }
        log.waiters.push((self.round, cx.waker().clone()));
        Poll::Pending
    }
}

/// What the committer found to do.
enum Next {
    Round,
    /// The store is poisoned: roll the files back and end.
    RollBack,
    /// The store is gone.
    End,
}

/// The group-commit task: one per store, holding only a weak reference while idle so
/// that dropping the last `Store` ends it. It is the only task that writes segment
/// data, so it is also the one that cuts the files back after a failure, and then
/// resumes after a full disk ([`resume`]) or ends.
pub(crate) async fn committer(weak: Weak<Inner>) {
    loop {
        let next = poll_fn(|cx| {
            let Some(inner) = weak.upgrade() else { return Poll::Ready(Next::End) };
            let mut log = inner.log.borrow_mut();
            if log.poison.is_some() {
                return Poll::Ready(Next::RollBack);
            }
            if log.has_work() {
                return Poll::Ready(Next::Round);
            }
            log.committer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        match next {
            Next::Round => {}
            Next::RollBack => {
                if let Some(inner) = weak.upgrade() {
                    roll_back_files(&inner).await;
                }
                return;
            }
            Next::End => return,
        }
        // Let the other tasks that are ready in this tick append to this round.
        yield_now().await;
        let Some(inner) = weak.upgrade() else { return };
        match run_round(&inner).await {
            // Poisoned meanwhile (the relaxed syncer or compaction failed): this round
            // is not acknowledged, its changes were reverted with the rest.
            Ok(_) if inner.is_poisoned() => {
                roll_back_files(&inner).await;
                return;
            }
            Ok(round) => inner.acknowledge(&round),
            Err(RoundError { op, err, resumable }) => {
                inner.poison(op, err, resumable);
                let complete = roll_back_files(&inner).await;
                if !(resumable && complete && resume(&inner).await) {
                    if resumable {
                        inner.poison_for_good("the rollback after a full disk did not complete");
                    }
                    return;
                }
            }
        }
    }
}

/// Why a round failed: what was being done, the error, and whether the store may
/// resume after it (a full disk met by a write, see [`Poison`]).
struct RoundError {
    op: String,
    err: io::Error,
    resumable: bool,
}

impl RoundError {
    /// A failed fdatasync or fsync, or any other error that leaves the store poisoned.
    /// (`op` is formatted only on failure: rounds are the hot path.)
    fn fatal(op: impl FnOnce() -> String) -> impl FnOnce(io::Error) -> RoundError {
        move |err| RoundError { op: op(), err, resumable: false }
    }

    /// A failed write or file creation: resumable if the file system is full.
    fn write(op: impl FnOnce() -> String) -> impl FnOnce(io::Error) -> RoundError {
        move |err| RoundError { resumable: is_out_of_space(&err), op: op(), err }
    }
}

/// The file system is full (ENOSPC), or the user's quota is (EDQUOT).
pub(crate) fn is_out_of_space(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// A completed round: its number and the data end it wrote in each segment it covered.
struct Round {
    number: u64,
    ends: Vec<(u32, u64)>,
}

/// One group-commit round.
async fn run_round(inner: &Rc<Inner>) -> Result<Round, RoundError> {
    let (round, force, plan) = {
        let mut log = inner.log.borrow_mut();
        let round = log.open_round;
        log.open_round += 1;
        let force = std::mem::take(&mut log.force_sync);
        let plan: Vec<(u32, u64)> = log.tails.iter().filter(|t| t.needs_round()).map(|t| (t.seg, t.end())).collect();
        (round, force, plan)
    };
    let relaxed = inner.opts.durability == Durability::Relaxed;
    let mut synced = Vec::new();
    for &(seg, end) in &plan {
        let name = segment_file_name(seg);
        let existing = inner.segs.borrow().get(&seg).and_then(|s| s.file.clone());
        let (file, created_now) = match existing {
            Some(f) => (f, false),
            None => (create_segment_file(inner, seg).await.map_err(RoundError::write(|| format!("create vlog segment {name}")))?, true),
        };
        let (base, n, sealed) = {
            let log = inner.log.borrow();
            let t = log.tails.iter().find(|t| t.seg == seg).expect("tail of a planned segment");
            // Nothing new since the last write: no need to rewrite the partial block.
            let n = if t.written == end { 0 } else { (end - t.base) as usize };
            (t.base, n, t.sealed)
        };
        if n > 0 {
            write_tail(inner, &file, seg, base, n).await?;
        }
        if !relaxed || sealed || created_now || force {
            file.fdatasync().await.map_err(RoundError::fatal(|| format!("fdatasync vlog segment {name}")))?;
            synced.push(seg);
        } else {
            inner.log.borrow_mut().unsynced = true;
        }
        if created_now {
            inner.dir_handle.sync().await.map_err(RoundError::fatal(|| format!("fsync the vlog directory after creating segment {name}")))?;
        }
        let mut log = inner.log.borrow_mut();
        let t = log.tails.iter_mut().find(|t| t.seg == seg).expect("tail of a planned segment");
        t.written = end;
        let new_base = end - end % ALIGN;
        t.buf.drain(..(new_base - t.base) as usize);
        t.base = new_base;
        // Give back the memory of a past burst.
        if t.buf.capacity() > SHRINK_ABOVE && t.buf.len() < t.buf.capacity() / 4 {
            t.buf.shrink_to((t.buf.len() * 2).max(SHRINK_ABOVE / 4));
        }
        if t.sealed && t.written == t.end() && log.tails.len() > 1 {
            log.tails.retain(|t| t.seg != seg);
        }
    }
    if force && relaxed {
        let active = inner.log.borrow().active().seg;
        let file = inner.segs.borrow().get(&active).and_then(|s| s.file.clone());
        if let (Some(file), false) = (file, synced.contains(&active)) {
            file.fdatasync().await.map_err(RoundError::fatal(|| format!("fdatasync vlog segment {}", segment_file_name(active))))?;
        }
        inner.log.borrow_mut().unsynced = false;
    }
    Ok(Round { number: round, ends: plan })
}

/// Writes the first `n` bytes of segment `seg`'s tail buffer (which starts at file
/// offset `base`), zero padded to whole 4 KiB blocks, with one O_DIRECT write.
///
/// A short write is how O_DIRECT reports a file system that filled up during the write:
/// the rest is tried once more (from the block the write stopped in), so that the
/// kernel names the cause (ENOSPC) — or writes it, if space was freed meanwhile. A
/// second short write is reported as `StorageFull` too.
async fn write_tail(inner: &Rc<Inner>, file: &File, seg: u32, base: u64, n: usize) -> Result<(), RoundError> {
    let op = || format!("write vlog segment {} at offset {base}", segment_file_name(seg));
    let len = n.div_ceil(ALIGN as usize) * ALIGN as usize;
    let wrote = file.write_at(tail_blocks(inner, file, seg, 0, n), base).await.map_err(RoundError::write(op))?;
    if wrote >= len {
        return Ok(());
    }
    let name = segment_file_name(seg);
    // The tail's bytes up to `n` do not change meanwhile: appends go after them, and
    // only this task moves `base` or cuts the buffer.
    let from = wrote - wrote % ALIGN as usize;
    let rest = len - from;
    let op = format!("{} (short write: {wrote} of {len} bytes; retrying the rest)", op());
    let again = file.write_at(tail_blocks(inner, file, seg, from, n), base + from as u64).await.map_err(RoundError::write(|| op.clone()))?;
    if again >= rest {
        tracing::warn!("vlog segment {name}: a short write at offset {base} ({wrote} of {len} bytes) completed when retried");
        return Ok(());
    }
    let err = io::Error::new(io::ErrorKind::StorageFull, format!("short again ({again} of {rest} bytes): No space left on device"));
    Err(RoundError { op, err, resumable: true })
}

/// A DMA buffer holding bytes `[from, n)` of segment `seg`'s tail buffer, zero padded
/// to whole 4 KiB blocks (`from` is a multiple of 4096).
fn tail_blocks(inner: &Inner, file: &File, seg: u32, from: usize, n: usize) -> glommio::io::DmaBuffer {
    let log = inner.log.borrow();
    let t = log.tails.iter().find(|t| t.seg == seg).expect("tail of a planned segment");
    let len = (n - from).div_ceil(ALIGN as usize) * ALIGN as usize;
    let mut dma = file.alloc_dma_buffer(len.max(ALIGN as usize));
    dma.trim_to_size(len);
    let bytes = dma.as_bytes_mut();
    bytes[..n - from].copy_from_slice(&t.buf[from..n]);
    bytes[n - from..].fill(0);
    dma
}

async fn create_segment_file(inner: &Rc<Inner>, seg: u32) -> io::Result<Rc<File>> {
    let path = inner.vlog_dir.join(segment_file_name(seg));
    let file = Rc::new(inner.fs.create(&path).await?);
    if let Some(s) = inner.segs.borrow_mut().get_mut(&seg) {
        s.file = Some(file.clone());
    }
    if let Some(t) = inner.log.borrow_mut().tails.iter_mut().find(|t| t.seg == seg) {
        t.created = true;
    }
    Ok(file)
}

/// `Relaxed` only: fdatasyncs the active segment every 100 ms if something was written.
pub(crate) async fn relaxed_syncer(weak: Weak<Inner>) {
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        let Some(inner) = weak.upgrade() else { return };
        let (seg, file) = {
            let mut log = inner.log.borrow_mut();
            if log.poisoned_for_good() {
                return;
            }
            // Taking back writes after a full disk: wait for the resume.
            if log.poison.is_some() || !std::mem::take(&mut log.unsynced) {
                continue;
            }
            let seg = log.active().seg;
            (seg, inner.segs.borrow().get(&seg).and_then(|s| s.file.clone()))
        };
        if let Some(file) = file {
            if let Err(e) = file.fdatasync().await {
                // The writes it covered were acknowledged already: they stay.
                inner.poison(format!("fdatasync vlog segment {}", segment_file_name(seg)), e, false);
                return;
            }
        }
    }
}

/// After a failure: makes the segment files match the acknowledged state, best effort
/// (each failed step is logged and the next one still tried); returns whether every
/// step succeeded (the store may resume only then):
/// 1. drop every segment no acknowledged round wrote to (created by a failed or later
///    round) from the store's view, unlink its file if it was created, then fsync the
///    vlog directory;
/// 2. truncate every other segment with unacknowledged data to its acknowledged end
///    and fdatasync it.
///
/// Removing first means that a crash in between leaves at worst unacknowledged bytes
/// at the tail of an older segment, never a newer segment full of them. The RAM tails
/// are cut to the acknowledged ends too, so that reads of acknowledged values still
/// find them in RAM or on disk. Called by the committer only (no round runs meanwhile).
pub(crate) async fn roll_back_files(inner: &Rc<Inner>) -> bool {
    let (remove, truncate) = {
        let mut segs = inner.segs.borrow_mut();
        let mut log = inner.log.borrow_mut();
        let mut remove = Vec::new();
        let mut truncate = Vec::new();
        segs.retain(|&id, s| {
            if s.acked_end == 0 {
                remove.push((id, s.file.clone()));
                return false;
            }
            if s.end > s.acked_end {
                if let Some(f) = &s.file {
                    truncate.push((id, f.clone(), s.acked_end));
                }
                s.end = s.acked_end;
            }
            true
        });
        log.tails.retain(|t| segs.contains_key(&t.seg));
        for t in log.tails.iter_mut() {
            let acked = segs[&t.seg].acked_end;
            if acked >= t.base {
                t.buf.truncate((acked - t.base) as usize);
            } else {
                // The acknowledged bytes before `base` are on disk; reads go there.
                t.buf.clear();
                t.base = acked;
            }
            t.written = acked;
        }
        if let Some((&newest, s)) = segs.iter().next_back() {
            if log.tails.back().map(|t| t.seg) != Some(newest) {
                let end = s.acked_end;
                log.tails.push_back(Tail { seg: newest, base: end, buf: Vec::new(), written: end, created: true, sealed: false });
            }
        }
        if let Some(t) = log.tails.back_mut() {
            t.sealed = false;
        }
        (remove, truncate)
    };
    let mut complete = true;
    let mut removed = false;
    for (id, file) in remove {
        let Some(file) = file else { continue };
        let name = segment_file_name(id);
        match file.remove().await {
            Ok(()) => {
                removed = true;
                tracing::warn!("removed vlog segment {name}: no acknowledged write is in it");
            }
            Err(e) => {
                complete = false;
                tracing::error!("remove vlog segment {name} of a failed write: {e}; a restart may find its unacknowledged records");
            }
        }
    }
    if removed {
        if let Err(e) = inner.dir_handle.sync().await {
            complete = false;
            tracing::error!("fsync the vlog directory after removing segments of a failed write: {e}");
        }
    }
    for (id, file, len) in truncate {
        let name = segment_file_name(id);
        let cut = async {
            file.truncate(len).await.map_err(|e| (format!("truncate vlog segment {name} to {len} bytes"), e))?;
            file.fdatasync().await.map_err(|e| (format!("fdatasync vlog segment {name} after truncating it"), e))
        };
        match cut.await {
            Ok(()) => tracing::warn!("truncated vlog segment {name} to its acknowledged end, {len} bytes"),
            Err((op, e)) => {
                complete = false;
                tracing::error!("{op}: {e}; a restart may find unacknowledged records in it");
            }
        }
    }
    inner.rolled_back.set(true);
    complete
}

/// After a complete rollback of a round that met a full disk: rebuilds the active tail
/// from its file — the partial block `[acked_end rounded down to 4 KiB, acked_end)` is
/// read back into the buffer, `base` aligned, `written = acked_end` — and clears the
/// poison, so the next append starts a normal round. Returns `false` (the store stays
/// poisoned, for good) if the poison is no longer resumable (another failure came
/// meanwhile) or the read fails. Called by the committer only.
async fn resume(inner: &Rc<Inner>) -> bool {
    let (seg, acked, file) = {
        let log = inner.log.borrow();
        let seg = log.active().seg;
        let segs = inner.segs.borrow();
        let Some(s) = segs.get(&seg) else { return false };
        (seg, s.acked_end, s.file.clone())
    };
    let name = segment_file_name(seg);
    let base = acked - acked % ALIGN;
    let partial = (acked - base) as usize;
    let mut block = Vec::with_capacity(partial);
    if partial > 0 {
        let Some(file) = file else { return false };
        match file.read_at(base, partial).await {
            Ok(r) if r.len() == partial => block.extend_from_slice(&r),
            Ok(r) => {
                let err = io::Error::new(io::ErrorKind::UnexpectedEof, format!("read {} of {partial} bytes", r.len()));
                inner.poison(format!("read back the last block of vlog segment {name} to resume writing"), err, false);
                return false;
            }
            Err(e) => {
                inner.poison(format!("read back the last block of vlog segment {name} to resume writing"), e, false);
                return false;
            }
        }
    }
    let mut log = inner.log.borrow_mut();
    if log.poisoned_for_good() {
        return false;
    }
    debug_assert!(inner.undo.borrow().is_empty(), "nothing is appended while poisoned");
    let t = log.tails.back_mut().expect("active tail");
    debug_assert_eq!(t.seg, seg);
    *t = Tail { seg, base, buf: block, written: acked, created: true, sealed: false };
    let Some(p) = log.poison.take() else { return false };
    tracing::warn!("vlog: resuming writes after \"{}: {}\" (taken back; segment {name} continues at offset {acked})", p.op, p.err);
    true
}
