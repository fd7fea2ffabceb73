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
//! segment files back to their acknowledged ends ([`roll_back_files`]) and stops.

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
/// Poisoning is for good today. Resuming writes later (e.g. once ENOSPC is fixed)
/// would need: the rollback to have completed (every file cut to its acknowledged end
/// and synced, the new segments removed and the directory synced; a failed step would
/// have to be retried first); the active tail rebuilt from the file (re-read the partial
/// block `[acked_end rounded down to 4 KiB, acked_end)` into its buffer, since the RAM
/// copy may have moved past it), `written`/`base` set to match; `poison` cleared, an
/// empty undo log, and the committer, relaxed syncer and compaction tasks started again;
/// and a caller's decision that the cause is gone. Sequence numbers of the failed
/// records are not reused (they never reached an acknowledged state), so nothing else
/// in the log has to change.
pub(crate) struct Poison {
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
            committer: None,
            unsynced: false,
        }
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
        if active.end() > SEGMENT_HEADER_LEN && active.end() + len as u64 > self.opts.segment_bytes {
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
        CommitWait { inner: self.clone(), round }
    }

    /// Asks for a round that writes everything appended so far and fdatasyncs at every
    /// tier; returns the round to wait for.
    pub(crate) fn request_sync(&self) -> u64 {
        let mut log = self.log.borrow_mut();
        log.force_sync = true;
        log.wake_committer();
        log.open_round
    }

    /// Records the first failure and stops the write path: the keydir goes back to the
    /// last acknowledged round at once (so no later read sees an unacknowledged write),
    /// every waiting commit fails (unacknowledged rounds never will be), and the
    /// committer is woken to cut the files back ([`roll_back_files`]) and end.
    /// Acknowledged writes are kept, also at `Relaxed` when the failure is its
    /// background sync. Call with no borrow of the store's cells held.
    pub(crate) fn poison(&self, op: String, err: io::Error) {
        tracing::error!("vlog {op} failed: {err}; the store is poisoned and refuses writes from now on");
        {
            let mut log = self.log.borrow_mut();
            if log.poison.is_none() {
                log.poison = Some(Poison { op, err });
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

    pub(crate) fn is_poisoned(&self) -> bool {
        self.log.borrow().poison.is_some()
    }
}

/// Resolves when its round is acknowledged.
pub(crate) struct CommitWait {
    inner: Rc<Inner>,
    round: u64,
}

impl Future for CommitWait {
    type Output = Result<(), StorageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut log = self.inner.log.borrow_mut();
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
/// data, so it is also the one that cuts the files back after a failure.
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
            Err((op, err)) => {
                inner.poison(op, err);
                roll_back_files(&inner).await;
                return;
            }
        }
    }
}

type RoundError = (String, io::Error);

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
            None => (create_segment_file(inner, seg).await.map_err(|e| (format!("create vlog segment {name}"), e))?, true),
        };
        let (dma, base, len, sealed) = {
            let log = inner.log.borrow();
            let t = log.tails.iter().find(|t| t.seg == seg).expect("tail of a planned segment");
            // Nothing new since the last write: no need to rewrite the partial block.
            let n = if t.written == end { 0 } else { (end - t.base) as usize };
            let len = n.div_ceil(ALIGN as usize) * ALIGN as usize;
            let mut dma = file.alloc_dma_buffer(len.max(ALIGN as usize));
            dma.trim_to_size(len);
            let bytes = dma.as_bytes_mut();
            bytes[..n].copy_from_slice(&t.buf[..n]);
            bytes[n..].fill(0);
            (dma, t.base, len, t.sealed)
        };
        if len > 0 {
            let n = file.write_at(dma, base).await.map_err(|e| (format!("write vlog segment {name} at offset {base}"), e))?;
            if n != len {
                let err = io::Error::new(io::ErrorKind::WriteZero, format!("short write: {n} of {len} bytes"));
                return Err((format!("write vlog segment {name} at offset {base}"), err));
            }
        }
        if !relaxed || sealed || created_now || force {
            file.fdatasync().await.map_err(|e| (format!("fdatasync vlog segment {name}"), e))?;
            synced.push(seg);
        } else {
            inner.log.borrow_mut().unsynced = true;
        }
        if created_now {
            inner.dir_handle.sync().await.map_err(|e| (format!("fsync the vlog directory after creating segment {name}"), e))?;
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
            file.fdatasync().await.map_err(|e| (format!("fdatasync vlog segment {}", segment_file_name(active)), e))?;
        }
        inner.log.borrow_mut().unsynced = false;
    }
    Ok(Round { number: round, ends: plan })
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
            if log.poison.is_some() {
                return;
            }
            if !std::mem::take(&mut log.unsynced) {
                continue;
            }
            let seg = log.active().seg;
            (seg, inner.segs.borrow().get(&seg).and_then(|s| s.file.clone()))
        };
        if let Some(file) = file {
            if let Err(e) = file.fdatasync().await {
                // The writes it covered were acknowledged already: they stay.
                inner.poison(format!("fdatasync vlog segment {}", segment_file_name(seg)), e);
                return;
            }
        }
    }
}

/// After a failure: makes the segment files match the acknowledged state, best effort
/// (each failed step is logged and the next one still tried):
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
pub(crate) async fn roll_back_files(inner: &Rc<Inner>) {
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
    let mut removed = false;
    for (id, file) in remove {
        let Some(file) = file else { continue };
        let name = segment_file_name(id);
        match file.remove().await {
            Ok(()) => {
                removed = true;
                tracing::warn!("removed vlog segment {name}: no acknowledged write is in it");
            }
            Err(e) => tracing::error!("remove vlog segment {name} of a failed write: {e}; a restart may find its unacknowledged records"),
        }
    }
    if removed {
        if let Err(e) = inner.dir_handle.sync().await {
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
            Err((op, e)) => tracing::error!("{op}: {e}; a restart may find unacknowledged records in it"),
        }
    }
    inner.rolled_back.set(true);
}
