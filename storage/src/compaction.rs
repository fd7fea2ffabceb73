//! Compaction: rewrites a sealed segment's live records into the active segment, then
//! deletes the old segment.
//!
//! Steps for one segment S (each step is crash-safe; see FORMAT.md "Compaction"):
//! 1. Read S record by record. For each put, check synchronously that the keydir still
//!    points at this very record (segment and offset); if so, append a copy with the
//!    same sequence number and point the keydir at the copy, with no await in between.
//!    Tombstones (deletes, clear-all) are copied only while a segment older than S
//!    exists (only those can hold what they delete), and a delete only if its key is not
//!    live again.
//!    A live put whose expiry time has passed is not copied: the key is removed with a
//!    tombstone instead (`expiry.rs`).
//!    A key with append pieces (`chain.rs`) is never copied piece by piece: when S holds
//!    its live base or one of its live pieces, the key is *folded* once the scan is
//!    done: its value is read and written as one new put (a new sequence number), which
//!    drops its chain (FORMAT.md "Appends").
//! 2. Wait until the copies are written and fdatasynced.
//! 3. Unlink S and fsync the directory.
//!
//! A crash before 3 leaves duplicates that replay resolves by sequence number. Closing
//! the store abandons a compaction the same way. If the round of step 2 fails, the
//! moves are undone with the rest of the unacknowledged changes (the keydir points
//! into S again) and S is kept, so readers holding S's locations keep working. A failed
//! unlink or directory fsync in step 3 poisons the store: a later compaction must be
//! able to rely on S being gone for good (it drops tombstones once no older segment
//! exists).

use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::store::Inner;
use crate::util::{gio_err, io_err};
use crate::vlog::reader::{SegmentReader, Step};
use crate::vlog::record::{self, segment_file_name, Op, OpKind, RecOp, SEGMENT_HEADER_LEN};
use crate::{Ns, StorageError};

/// How often the background task looks for segments to compact.
const INTERVAL: Duration = Duration::from_secs(1);

/// The background compaction task; ends when the store is dropped or poisoned for
/// good, and skips its passes while the store takes back writes after a full disk.
pub(crate) async fn background(weak: Weak<Inner>) {
    loop {
        glommio::timer::sleep(INTERVAL).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.log.borrow().poisoned_for_good() || inner.closed.get() {
            return;
        }
        if inner.is_poisoned() {
            continue;
        }
        if let Err(e) = pass(&inner).await {
            tracing::error!("vlog compaction failed: {e}");
        }
    }
}

/// Compacts every segment that qualifies, one at a time; returns how many. Stops early
/// (without deleting the segment in progress) once the store is closed.
pub(crate) async fn pass(inner: &Rc<Inner>) -> Result<usize, StorageError> {
    let _permit = inner.compaction_lock.acquire_permit(1).await.map_err(gio_err("lock compaction"))?;
    let mut done = 0;
    // Bounded so that a pathological threshold cannot keep this loop going forever.
    let limit = inner.segs.borrow().len();
    while done < limit && !inner.closed.get() {
        let Some(id) = pick(inner) else { break };
        let failures = inner.log.borrow().failures;
        if let Err(e) = compact_segment(inner, id).await {
            // Not retried in a loop, unless the store failed meanwhile (its copy round
            // was taken back: after a full disk it is tried again once writes resume).
            if inner.log.borrow().failures == failures && !inner.is_poisoned() {
                if let Some(s) = inner.segs.borrow_mut().get_mut(&id) {
                    s.skip_compaction = true;
                }
            }
            return Err(e);
        }
        done += 1;
        glommio::yield_if_needed().await;
    }
    Ok(done)
}

/// The sealed, fully written segment with the highest dead ratio at or above the
/// threshold. Tombstone bytes count as live, except in the oldest segment (no segment
/// older than it can hold what they delete).
fn pick(inner: &Inner) -> Option<u32> {
    let log = inner.log.borrow();
    let segs = inner.segs.borrow();
    let oldest = *segs.keys().next()?;
    let mut best: Option<(f64, u32)> = None;
    for (&id, s) in segs.iter() {
        if s.skip_compaction || s.file.is_none() || log.tails.iter().any(|t| t.seg == id) {
            continue;
        }
        let data = s.end - SEGMENT_HEADER_LEN;
        let kept = s.live + if id == oldest { 0 } else { s.tomb };
        let dead = data.saturating_sub(kept);
        let ratio = if data == 0 { 1.0 } else { dead as f64 / data as f64 };
        let qualifies = (data == 0 || dead > 0) && ratio >= inner.opts.compaction_dead_ratio;
        let better = match best {
            None => true,
            Some((r, _)) => ratio > r,
        };
        if qualifies && better {
            best = Some((ratio, id));
        }
    }
    best.map(|(_, id)| id)
}

async fn compact_segment(inner: &Rc<Inner>, id: u32) -> Result<(), StorageError> {
    let name = segment_file_name(id);
    let (file, end) = {
        let segs = inner.segs.borrow();
        let s = &segs[&id];
        (s.file.clone().expect("picked segments have a file"), s.end)
    };
    let path = inner.vlog_dir.join(&name).display().to_string();
    let mut reader = SegmentReader::new(file.clone(), end);
    let mut copied = 0u64;
    let mut folds = Vec::new();
    // A round taken back while compaction awaits (a read of this segment, a fold's
    // read, the sync) may have taken copies back too: their keys point into this
    // segment again, so it must then stay.
    let reverts = inner.reverts.get();
    loop {
        glommio::yield_if_needed().await;
        let step = reader.next().await;
        if inner.closed.get() {
            return Ok(()); // abandoned: the copies made so far are harmless duplicates
        }
        // Poisoned: the copies so far were reverted.
        inner.check_writable()?;
        match step.map_err(io_err(format!("read vlog segment {path} for compaction")))? {
            Step::Record { off, header } => {
                let rec = reader.slice(off, header.total_len());
                // Synchronous from the liveness check to the append (no await).
                let older_exists = inner.segs.borrow().range(..id).next().is_some();
                let mut ops = Vec::new();
                record::visit(&header, rec, |op| ops.push(op)).expect("the reader checked the record");
                if let [first, _, ..] = ops.as_slice() {
                    // (An MSET's keys: their liveness checks' cache misses overlap.)
                    let ns = first.ns;
                    inner.keydir.borrow().prefetch(ns, ops.iter().filter(|op| op.ns == ns).map(|op| op.key));
                }
                for op in ops {
                    copied += copy_if_needed(inner, id, off, header.seq, op, older_exists, &mut folds) as u64;
                }
            }
            Step::End { .. } => break,
            Step::Bad { off, reason } => return Err(StorageError::Corrupt { file: path, offset: off, reason }),
        }
    }
    // Keys with pieces: each is written whole, as one new put, once (a key whose base
    // and pieces are spread through the segment was queued once per run of them).
    folds.sort_unstable();
    folds.dedup();
    for (ns, key) in folds {
        inner.fold(ns, &key).await?;
        if inner.closed.get() {
            return Ok(());
        }
    }
    // Make the copies durable before the originals go.
    let round = inner.request_sync();
    inner.wait_round(round).await?;
    if inner.closed.get() {
        return Ok(());
    }
    {
        let mut segs = inner.segs.borrow_mut();
        let live = segs.get(&id).map_or(0, |s| s.live);
        if inner.reverts.get() != reverts || live != 0 {
            // Kept (it is picked again later): a revert took copies back, or (a bug)
            // something still lives here. Deleting it would lose live values.
            debug_assert!(inner.reverts.get() != reverts, "every live entry of a compacted segment was moved: {live} bytes left");
            tracing::debug!("compaction of vlog segment {name} abandoned: a write round was taken back meanwhile");
            return Ok(());
        }
        segs.remove(&id);
    }
    let removed = match file.remove().await {
        Ok(()) => inner.dir_handle.sync().await.map_err(|e| (format!("fsync the vlog directory after deleting compacted segment {name}"), e)),
        Err(e) => Err((format!("delete compacted vlog segment {path}"), e)),
    };
    if let Err((op, e)) = removed {
        let err = StorageError::Io { op: op.clone(), source: crate::util::clone_io(&e) };
        inner.poison(op, e, false);
        return Err(err);
    }
    inner.compactions.set(inner.compactions.get() + 1);
    tracing::debug!("compacted vlog segment {name}: {copied} records copied forward");
    Ok(())
}

/// Appends a copy of `op` (from the record at `rec_off` of segment `id`) if it is still
/// needed; returns whether it did. The live base or piece of a key with append pieces
/// is not copied: the key goes to `folds`.
fn copy_if_needed(inner: &Rc<Inner>, id: u32, rec_off: u64, seq: u64, op: RecOp<'_>, older_exists: bool, folds: &mut Vec<(Ns, Vec<u8>)>) -> bool {
    match op.kind {
        OpKind::Put => {
            let value_off = rec_off + op.value_off as u64;
            let Some(mut entry) = inner.keydir.borrow().get_at(op.ns, op.key, id, value_off as u32) else {
                return false; // overwritten or deleted since
            };
            // Expired: not copied but removed, with a tombstone in the active segment,
            // so that an older version in an older segment stays dead.
            if op.at != 0 && op.at <= inner.now() && inner.remove_expired(op.ns, vec![op.key.to_vec()]) == 1 {
                return true;
            }
            if inner.is_chained(op.ns, op.key) {
                folds.push((op.ns, op.key.to_vec()));
                return false;
            }
            // The record the keydir points at holds the key's current expiry time.
            let ops = [Op::put(op.ns, op.key, op.value, op.at)];
            let mut placed = (0, 0);
            let (seg, new_off, round) = inner.append(record::encoded_len(&ops), |buf| {
                record::encode(buf, seq, &ops, |_, value_off, foot| placed = (value_off, foot))
            });
            let old_key = crate::store::value_key(&entry);
            entry.seg = seg;
            entry.off = (new_off + placed.0 as u64) as u32;
            entry.foot = placed.1;
            // The cached bytes follow the value to its copy (same bytes); the entry put
            // replaces is the one at `old_key`, moved already.
            inner.cache.borrow_mut().rekey(&old_key, crate::store::value_key(&entry));
            let replaced = inner.put_logged(round, op.ns, op.key, entry);
            debug_assert!(replaced.is_none() || replaced == Some(old_key), "{replaced:?}");
            true
        }
        OpKind::Delete => {
            if !older_exists || inner.keydir.borrow().get(op.ns, op.key).is_some() {
                return false;
            }
            let ops = [Op::Delete { ns: op.ns, key: op.key }];
            let mut foot = 0;
            let (seg, _, round) = inner.append(record::encoded_len(&ops), |buf| record::encode(buf, seq, &ops, |_, _, f| foot = f));
            inner.add_tomb_logged(round, seg, foot as u64);
            true
        }
        OpKind::Append => {
            let value_off = (rec_off + op.value_off as u64) as u32;
            let live = inner.chains.borrow().get(op.ns, op.key).is_some_and(|c| c.pieces.iter().any(|p| p.seg == id && p.off == value_off));
            // Folded once: the key's base or an earlier piece may have put it there.
            if live && folds.last().is_none_or(|(ns, k)| (*ns, k.as_slice()) != (op.ns, op.key)) {
                folds.push((op.ns, op.key.to_vec()));
            }
            false
        }
        OpKind::ClearAll => {
            if !older_exists {
                return false;
            }
            let (seg, _, round) = inner.append(record::HEADER_LEN, |buf| {
                record::encode_clear_all(buf, seq);
            });
            inner.add_tomb_logged(round, seg, record::HEADER_LEN as u64);
            true
        }
    }
}
