//! Append chains (FORMAT.md "Appends"): APPEND writes only the appended bytes, as an
//! append record (kind 6), instead of the whole new value.
//!
//! A key whose value was extended that way keeps its keydir entry pointing at the
//! *base*: the put whose value the appends extend (its place, length and footprint, as
//! for any key). Its *pieces* — where each append record's bytes are, oldest first —
//! live beside the keydir in [`Chains`], a map (namespace, key) → [`Chain`] that only
//! chained keys are in: a key without pieces costs nothing there, and every read checks
//! [`Chains::is_empty`] (a length compare) before it looks a key up in it. The value is
//! the base's bytes followed by each piece's bytes; its length is the base's plus
//! [`Chain::bytes`]. Each piece keeps its record's bytes of its segment alive (the live
//! byte accounting of FORMAT.md "Accounting").
//!
//! **Folding** bounds a chain: a *fold* writes the whole value as one put, which drops
//! the chain. [`crate::Store::append`] rewrites a value of at most
//! [`APPEND_REWRITE_MAX`] bytes (or one shorter than the appended bytes) at once — cheap,
//! and small values stay one record — and otherwise writes a piece, then starts a fold
//! in the background ([`Inner::claim_fold`], [`Inner::fold_claimed`]; one per key at a
//! time, and appends meanwhile are kept in RAM to be written with it, so concurrent
//! appends never make it start over) when the chain has as many pieces as the value may
//! have — [`MAX_PIECES`], or
//! one per [`BYTES_PER_PIECE`] of the value if that is more — (so a read of the value
//! costs at most one read per 64 KiB of it, or 65 in all, and the chain 16 B of RAM per
//! piece), or when the pieces would hold more bytes than the base (geometric: each fold
//! at least doubles the base). Together: the folds of a value cost, amortized, at most
//! about `max(value / 64, 64 KiB)` bytes written (and read) per append, and less than
//! twice the value's final length for appends of at least 64 KiB — O(n), not O(n²).
//! Measured (`bench-results/kv-values.md`, "APPEND"): 200 APPENDs of 1 MiB took 2.2–2.6
//! s when every 64th piece folded whatever the value's size (that fold of the 192 MiB
//! value alone cost 0.9 s), against Redis's 1.95 s; 2.0 s with this bound.
//! Compaction folds a key when it meets the key's live base or one of its live pieces
//! (it never copies either alone), so the pieces of a key are always in the log in the
//! order they were written, after their base.
//!
//! **The cache** keeps the base's bytes under the base's place, as for any value (they
//! never change while the key has pieces), and a read of the whole chained value caches
//! it under the place of its newest piece, which no other value can have. An append
//! drops that assembled entry (the value has a new newest piece) and copies nothing: an
//! append that extended a cached value in place would copy the value each time, O(n²)
//! in memory traffic (measured: 1 KiB APPENDs at -P 16 ran at 0.12× Redis that way). A
//! read then puts the value together from the cached base and the pieces (from the
//! append buffer or disk, all reads issued at once). A revert that takes pieces back
//! drops every entry past the acknowledged ends, their places' included.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use crate::file::File;
use crate::keydir::Entry;
use crate::store::{value_key, Inner};
use crate::util::io_err;
use crate::vlog::record::{self, segment_file_name, HEADER_LEN, MAX_BODY};
use crate::{CacheKey, Ns, StorageError};

/// A chain may have this many pieces, or one per [`BYTES_PER_PIECE`] of its value if
/// that is more: the append that reaches the bound (or makes the pieces outweigh the
/// base) starts a fold in the background.
pub const MAX_PIECES: usize = 64;
/// See [`MAX_PIECES`]: 64 KiB.
pub const BYTES_PER_PIECE: u64 = 64 << 10;

/// How many pieces a chained value of `len` bytes may have (see [`MAX_PIECES`]).
pub fn max_pieces(len: u64) -> usize {
    MAX_PIECES.max((len / BYTES_PER_PIECE) as usize)
}
/// An append to a value without pieces that is at most this long (bytes), or shorter
/// than the appended bytes, rewrites the value as one put.
pub const APPEND_REWRITE_MAX: usize = 4096;
/// Disk parts of one value closer than this (bytes) are read with one I/O.
const READ_GAP: u64 = 64 << 10;
/// … as long as that read stays within this many bytes.
const READ_SPAN: u64 = 8 << 20;

/// Where one append record's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Segment id.
    pub seg: u32,
    /// File offset of the appended bytes' first byte in the segment.
    pub off: u32,
    /// Appended bytes.
    pub len: u32,
    /// Bytes of the segment the piece keeps alive: its whole record.
    pub foot: u32,
}

impl Piece {
    /// The cache key of a value whose newest piece this is.
    pub fn place(&self) -> CacheKey {
        CacheKey::Value { seg: self.seg, off: self.off }
    }
}

/// The pieces of one key, oldest first (never empty while in [`Chains`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    pub pieces: Vec<Piece>,
    /// Sum of the pieces' lengths.
    pub bytes: u64,
    /// Sequence number of the newest piece's record; kept only while recovery replays
    /// (0 otherwise).
    pub seq: u64,
    /// A fold of the key in progress, if any (RAM only; see [`Fold`]).
    pub fold: Option<Fold>,
}

/// A fold in progress: it read (or is reading) the base and the first `from` pieces,
/// and `extra` collects the bytes of the pieces appended since, so that the fold can
/// write the whole value without reading again however many appends come meanwhile.
/// Named by `token` (unique per store), so a fold only ever finishes or clears its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fold {
    pub token: u64,
    pub from: usize,
    pub extra: Vec<u8>,
}

impl Chain {
    /// The newest piece.
    pub fn last(&self) -> Piece {
        *self.pieces.last().expect("a chain has a piece")
    }
}

/// The chains of every namespace; see the module documentation.
#[derive(Default)]
pub(crate) struct Chains {
    by_ns: HashMap<Ns, HashMap<Box<[u8]>, Chain>>,
    len: usize,
    pieces: usize,
}

impl Chains {
    /// True when no key has a piece (the reads' fast path).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Chained keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Pieces of all chains.
    pub fn pieces(&self) -> usize {
        self.pieces
    }

    pub fn get(&self, ns: Ns, key: &[u8]) -> Option<&Chain> {
        if self.len == 0 {
            return None;
        }
        self.by_ns.get(&ns)?.get(key)
    }

    pub fn get_mut(&mut self, ns: Ns, key: &[u8]) -> Option<&mut Chain> {
        if self.len == 0 {
            return None;
        }
        self.by_ns.get_mut(&ns)?.get_mut(key)
    }

    /// Adds `piece` as the newest of `key`'s chain (started if need be); `seq` is its
    /// record's sequence number (recovery) or 0. Returns the chain.
    pub fn push(&mut self, ns: Ns, key: &[u8], piece: Piece, seq: u64) -> &mut Chain {
        let map = self.by_ns.entry(ns).or_default();
        if !map.contains_key(key) {
            self.len += 1;
            map.insert(key.into(), Chain::default());
        }
        let chain = map.get_mut(key).expect("just inserted");
        chain.pieces.push(piece);
        chain.bytes += piece.len as u64;
        chain.seq = seq;
        self.pieces += 1;
        chain
    }

    /// Takes the newest piece of `key`'s chain off (the chain goes with its last piece).
    pub fn pop(&mut self, ns: Ns, key: &[u8]) -> Option<Piece> {
        let map = self.by_ns.get_mut(&ns)?;
        let chain = map.get_mut(key)?;
        let piece = chain.pieces.pop()?;
        chain.bytes -= piece.len as u64;
        chain.fold = None; // a revert: the fold in progress gives up (its token is gone)
        self.pieces -= 1;
        if chain.pieces.is_empty() {
            map.remove(key);
            self.len -= 1;
        }
        Some(piece)
    }

    /// Removes `key`'s chain.
    pub fn remove(&mut self, ns: Ns, key: &[u8]) -> Option<Chain> {
        if self.len == 0 {
            return None;
        }
        let chain = self.by_ns.get_mut(&ns)?.remove(key)?;
        self.len -= 1;
        self.pieces -= chain.pieces.len();
        Some(chain)
    }

    /// Puts `chain` (not empty) back as `key`'s, replacing any (without a fold in
    /// progress).
    pub fn insert(&mut self, ns: Ns, key: &[u8], mut chain: Chain) {
        debug_assert!(!chain.pieces.is_empty());
        chain.fold = None;
        self.remove(ns, key);
        self.len += 1;
        self.pieces += chain.pieces.len();
        self.by_ns.entry(ns).or_default().insert(key.into(), chain);
    }

    /// Keeps only the chains `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(Ns, &[u8], &Chain) -> bool) {
        let (mut len, mut pieces) = (0, 0);
        for (ns, map) in self.by_ns.iter_mut() {
            map.retain(|k, c| keep(*ns, k, c));
            len += map.len();
            pieces += map.values().map(|c| c.pieces.len()).sum::<usize>();
        }
        (self.len, self.pieces) = (len, pieces);
    }

    /// Sets every chain's `seq` to 0 (recovery is done).
    pub fn forget_seqs(&mut self) {
        self.by_ns.values_mut().flat_map(|m| m.values_mut()).for_each(|c| c.seq = 0);
    }

    pub fn for_each(&self, mut f: impl FnMut(Ns, &[u8], &Chain)) {
        for (ns, map) in &self.by_ns {
            for (k, c) in map {
                f(*ns, k, c);
            }
        }
    }
}

/// How to undo one change of [`Chains`] (the undo log keeps them in order with the
/// keydir's changes).
pub(crate) enum ChainUndo {
    /// An append: take the newest piece of `key` off again.
    Pop { ns: Ns, key: Vec<u8> },
    /// A dropped chain (overwrite, delete, forget): put it back.
    Restore { ns: Ns, key: Vec<u8>, chain: Chain },
    /// `clear_all`: put the whole table back (the segments' live bytes come back with
    /// the keydir's own undo step).
    All(Chains),
}

/// Awaits every future of `futs` together (each polled until it is ready), in order.
async fn join_all<F: Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future is ready")).collect()
}

/// One part of a value being assembled: bytes already in RAM, or a place to read.
pub(crate) enum Part {
    Ram(Vec<u8>),
    Disk { file: Option<Rc<File>>, seg: u32, off: u64, len: usize },
}

/// A chained value's parts, taken when the read starts (the files stay readable through
/// the handles even if compaction deletes them meanwhile), and what is needed to fill
/// the cache when they are read.
pub(crate) struct Assembly {
    parts: Vec<Part>,
    total: usize,
    place: CacheKey,
    epoch: u64,
}

/// Either the value, found in RAM or the cache, or the parts to read.
pub(crate) enum Assembled {
    Ready(Vec<u8>),
    Read(Assembly),
}

impl Inner {
    /// Whether `key` has pieces.
    #[inline(always)]
    pub(crate) fn is_chained(&self, ns: Ns, key: &[u8]) -> bool {
        let chains = self.chains.borrow();
        !chains.is_empty() && chains.get(ns, key).is_some()
    }

    /// The cache key of `key`'s value, whose keydir entry is `e`: its newest piece's
    /// place if it has pieces, else its own.
    #[inline(always)]
    pub(crate) fn place(&self, ns: Ns, key: &[u8], e: &Entry) -> CacheKey {
        let chains = self.chains.borrow();
        if chains.is_empty() {
            return value_key(e);
        }
        chains.get(ns, key).map_or_else(|| value_key(e), |c| c.last().place())
    }

    /// Bytes appended to `key`'s base by its pieces (0 without).
    #[inline(always)]
    pub(crate) fn appended_bytes(&self, ns: Ns, key: &[u8]) -> u64 {
        let chains = self.chains.borrow();
        if chains.is_empty() {
            return 0;
        }
        chains.get(ns, key).map_or(0, |c| c.bytes)
    }

    /// Drops `key`'s chain, if any (its value is being overwritten, deleted or
    /// forgotten): its pieces' live bytes and its cache entry go, and the drop is logged
    /// for `round` (`None`: not logged).
    #[inline(always)]
    pub(crate) fn drop_chain(&self, round: Option<u64>, ns: Ns, key: &[u8]) {
        if self.chains.borrow().is_empty() {
            return;
        }
        self.drop_chain_slow(round, ns, key);
    }

    fn drop_chain_slow(&self, round: Option<u64>, ns: Ns, key: &[u8]) {
        let Some(chain) = self.chains.borrow_mut().remove(ns, key) else { return };
        for p in &chain.pieces {
            self.unlive(p.seg, p.foot);
        }
        self.cache.borrow_mut().remove(&chain.last().place());
        if let Some(round) = round {
            self.undo.borrow_mut().chain(round, ChainUndo::Restore { ns, key: key.to_vec(), chain });
        }
    }

    /// Undoes one change of the chains (a revert, newest first).
    pub(crate) fn undo_chain(&self, step: ChainUndo) {
        match step {
            ChainUndo::Pop { ns, key } => {
                if let Some(p) = self.chains.borrow_mut().pop(ns, &key) {
                    self.unlive(p.seg, p.foot);
                }
            }
            ChainUndo::Restore { ns, key, chain } => {
                let mut segs = self.segs.borrow_mut();
                for p in &chain.pieces {
                    if let Some(s) = segs.get_mut(&p.seg) {
                        s.live += p.foot as u64;
                    }
                }
                self.chains.borrow_mut().insert(ns, &key, chain);
            }
            ChainUndo::All(mut chains) => {
                chains.by_ns.values_mut().flat_map(|m| m.values_mut()).for_each(|c| c.fold = None);
                *self.chains.borrow_mut() = chains;
            }
        }
    }

    /// Appends `tail` to the value of `key` (live, not expired) as an
    /// append record: the record goes to the append buffer, the piece to the key's chain
    /// (logged for the round), and the whole value's cache entry, if the key already had
    /// pieces, goes (the base's entry stays: its bytes are still the base). Returns the
    /// round to wait for. Errors: as [`Inner::apply_now`]'s.
    pub(crate) fn append_piece(&self, ns: Ns, key: &[u8], tail: &[u8]) -> Result<u64, StorageError> {
        self.check_writable()?;
        let len = record::append_len(key, tail);
        if len > HEADER_LEN + MAX_BODY {
            return Err(StorageError::TooLarge(len));
        }
        let old_whole = self.chains.borrow().get(ns, key).map(|c| c.last().place());
        let seq = self.take_seq();
        let mut placed = (0, 0);
        let (seg, rec_off, round) = self.append(len, |buf| placed = record::encode_append(buf, seq, ns, key, tail));
        let piece = Piece { seg, off: (rec_off + placed.0 as u64) as u32, len: tail.len() as u32, foot: placed.1 };
        if let Some(s) = self.segs.borrow_mut().get_mut(&seg) {
            s.live += piece.foot as u64;
        }
        if let Some(fold) = &mut self.chains.borrow_mut().push(ns, key, piece, 0).fold {
            fold.extra.extend_from_slice(tail);
        }
        self.undo.borrow_mut().chain(round, ChainUndo::Pop { ns, key: key.to_vec() });
        if let Some(old) = old_whole {
            self.cache.borrow_mut().remove(&old);
        }
        Ok(round)
    }

    /// Starts reading `key`'s value if it has pieces (`None`: it has none), keydir entry
    /// `e`: the value itself when the cache holds it whole (a hit) or every part is in
    /// RAM, else its parts — the base, then each piece, from the append buffer or (the
    /// base) the cache where there, else places to read — taken now. `count_miss`: a
    /// value that needs a disk read counts a cache miss.
    pub(crate) fn assemble(&self, ns: Ns, key: &[u8], e: &Entry, count_miss: bool) -> Option<Assembled> {
        self.assemble_first(ns, key, e, count_miss, usize::MAX)
    }

    /// Whether all of `key`'s value with append pieces (entry `e`) is in RAM — the whole
    /// value cached, or its base and every piece inline, unwritten or cached — without
    /// copying or counting anything; `None` for a key without pieces. (`Store::lookup`
    /// asks this first, so that a value with a part on disk is not put together only to
    /// be thrown away.)
    pub(crate) fn chain_in_ram(&self, ns: Ns, key: &[u8], e: &Entry) -> Option<bool> {
        let chains = self.chains.borrow();
        let chain = chains.get(ns, key)?;
        let cache = self.cache.borrow();
        if cache.contains(&chain.pieces.last()?.place()) {
            return Some(true);
        }
        let log = self.log.borrow();
        let in_log = |seg: u32, off: u32, len: u32| len == 0 || log.ram(seg, off as u64, len as usize).is_some();
        let base = e.inline.is_some() || in_log(e.seg, e.off, e.len) || cache.contains(&value_key(e));
        Some(base && chain.pieces.iter().all(|p| in_log(p.seg, p.off, p.len)))
    }

    /// [`Inner::assemble`] of the base and the first `n` pieces only (all of them if
    /// there are fewer).
    fn assemble_first(&self, ns: Ns, key: &[u8], e: &Entry, count_miss: bool, n: usize) -> Option<Assembled> {
        let chains = self.chains.borrow();
        let chain = chains.get(ns, key)?;
        let pieces = &chain.pieces[..n.min(chain.pieces.len())];
        let place = pieces.last()?.place();
        if pieces.len() == chain.pieces.len() {
            let mut cache = self.cache.borrow_mut();
            if let Some(v) = cache.get_if_cached(&place) {
                return Some(Assembled::Ready(v.to_vec()));
            }
        }
        let log = self.log.borrow();
        let segs = self.segs.borrow();
        let part = |seg: u32, off: u32, len: u32| match log.ram(seg, off as u64, len as usize) {
            Some(b) => Part::Ram(b.to_vec()),
            None if len == 0 => Part::Ram(Vec::new()),
            None => Part::Disk { file: segs.get(&seg).and_then(|s| s.file.clone()), seg, off: off as u64, len: len as usize },
        };
        let mut parts = Vec::with_capacity(pieces.len() + 1);
        // The base: inline in the keydir, in the append buffer, cached, or on disk.
        let base = match self.in_ram(e, false) {
            Some(v) => Part::Ram(v),
            None => part(e.seg, e.off, e.len),
        };
        parts.push(base);
        parts.extend(pieces.iter().map(|p| part(p.seg, p.off, p.len)));
        let total = e.len as usize + pieces.iter().map(|p| p.len as usize).sum::<usize>();
        if parts.iter().all(|p| matches!(p, Part::Ram(_))) {
            let mut value = Vec::with_capacity(total);
            for p in parts {
                if let Part::Ram(b) = p {
                    value.extend_from_slice(&b);
                }
            }
            return Some(Assembled::Ready(value));
        }
        if count_miss {
            let _ = self.cache.borrow_mut().get(&place); // counts the miss
        }
        Some(Assembled::Read(Assembly { parts, total, place, epoch: self.cache_epoch.get() }))
    }

    /// Reads the parts of `a` (disk parts of one segment close together with one
    /// O_DIRECT read; every read issued at once) and puts the value together; fills the
    /// cache with it if it is still `key`'s live value when the reads are done. Errors:
    /// `Io` if a read fails or comes back short.
    pub(crate) async fn assemble_read(&self, ns: Ns, key: &[u8], a: Assembly) -> Result<Vec<u8>, StorageError> {
        let parts = a.parts;
        // The spans to read: (file, segment, start, length), each covering parts i..j.
        let mut spans = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let Part::Disk { file, seg, off: start, .. } = &parts[i] else {
                i += 1;
                continue;
            };
            let (mut j, mut end) = (i, *start);
            while let Some(Part::Disk { seg: s, off, len, .. }) = parts.get(j) {
                let e = off + *len as u64;
                let near = *off >= end && off - end <= READ_GAP && e - start <= READ_SPAN;
                if s != seg || (j > i && !near) {
                    break;
                }
                end = end.max(e);
                j += 1;
            }
            spans.push((file.clone(), *seg, *start, (end - start) as usize));
            i = j;
        }
        let op = |seg: u32, start: u64| format!("read value from vlog segment {} at offset {start}", segment_file_name(seg));
        let _reading = crate::store::Reading::new(&self.reading, a.total);
        let mut reads = Vec::with_capacity(spans.len());
        for (file, seg, start, len) in &spans {
            let Some(file) = file else {
                return Err(StorageError::Io { op: op(*seg, *start), source: std::io::Error::other("segment file is missing") });
            };
            reads.push(Box::pin(file.read_at(*start, *len)));
        }
        let mut read = Vec::with_capacity(spans.len());
        for ((_, seg, start, len), r) in spans.iter().zip(join_all(reads).await) {
            let r = r.map_err(io_err(op(*seg, *start)))?;
            if r.len() != *len {
                let source = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("read {} of {len} bytes", r.len()));
                return Err(StorageError::Io { op: op(*seg, *start), source });
            }
            read.push((*start, r));
        }
        // Put the value together in order; disk parts come in span order.
        let mut value = Vec::with_capacity(a.total);
        let mut k = 0;
        for p in &parts {
            match p {
                Part::Ram(b) => value.extend_from_slice(b),
                Part::Disk { seg, off, len, .. } => {
                    while !(spans[k].1 == *seg && spans[k].2 <= *off && off + *len as u64 <= spans[k].2 + spans[k].3 as u64) {
                        k += 1;
                    }
                    let at = (off - read[k].0) as usize;
                    value.extend_from_slice(&read[k].1[at..at + len]);
                }
            }
        }
        debug_assert_eq!(value.len(), a.total);
        let live = self.cache_epoch.get() == a.epoch && self.keydir.borrow().get(ns, key).is_some_and(|e| self.place(ns, key, &e) == a.place);
        if live {
            let mut cache = self.cache.borrow_mut();
            if cache.admits(value.len()) {
                cache.insert(a.place, value.as_slice().into());
            }
        }
        Ok(value)
    }

    /// Whether `key`'s chain is due a fold (it has as many pieces as its value may
    /// have, or its pieces outweigh its base, whose entry is `e`) and none is in
    /// progress.
    pub(crate) fn fold_due(&self, ns: Ns, key: &[u8], e: &Entry) -> bool {
        self.chains.borrow().get(ns, key).is_some_and(|c| {
            c.fold.is_none() && (c.pieces.len() >= max_pieces(e.len as u64 + c.bytes) || c.bytes > e.len as u64)
        })
    }

    /// Starts a fold of `key` (it has pieces and no fold in progress): notes it in the
    /// chain and returns its token, for [`Inner::fold_claimed`].
    pub(crate) fn claim_fold(&self, ns: Ns, key: &[u8]) -> Option<u64> {
        let mut chains = self.chains.borrow_mut();
        let chain = chains.get_mut(ns, key)?;
        if chain.fold.is_some() {
            return None;
        }
        let token = self.fold_tokens.get() + 1;
        self.fold_tokens.set(token);
        chain.fold = Some(Fold { token, from: chain.pieces.len(), extra: Vec::new() });
        Some(token)
    }

    /// Gives up the fold `token` of `key`, if it is still the one in progress.
    fn release_fold(&self, ns: Ns, key: &[u8], token: u64) {
        if let Some(c) = self.chains.borrow_mut().get_mut(ns, key) {
            if c.fold.as_ref().is_some_and(|f| f.token == token) {
                c.fold = None;
            }
        }
    }

    /// Runs the fold `token` of `key` (see [`Inner::claim_fold`]): reads the base and
    /// the pieces it covers, then — with no await from the check to the write — if the
    /// key still has that base, those pieces and this fold (no revert, overwrite,
    /// delete or expiry came), writes the value read plus the bytes of the pieces
    /// appended since (kept in RAM by the fold) as one put with the key's expiry time,
    /// which drops the chain. Returns whether it wrote; when it does not, the fold is
    /// given up (a later append or compaction starts another). Errors: a failed read,
    /// or as [`Inner::apply_now`]'s.
    pub(crate) async fn fold_claimed(&self, ns: Ns, key: &[u8], token: u64) -> Result<bool, StorageError> {
        let result = self.fold_claimed_inner(ns, key, token).await;
        if !matches!(result, Ok(true)) {
            self.release_fold(ns, key, token);
        }
        result
    }

    async fn fold_claimed_inner(&self, ns: Ns, key: &[u8], token: u64) -> Result<bool, StorageError> {
        if self.expire_if_due(ns, key) {
            return Ok(false);
        }
        let Some(e) = self.keydir.borrow().get(ns, key) else { return Ok(false) };
        let from = match self.chains.borrow().get(ns, key).and_then(|c| c.fold.as_ref()) {
            Some(f) if f.token == token => f.from,
            _ => return Ok(false),
        };
        let last = self.chains.borrow().get(ns, key).map(|c| c.pieces[from - 1]);
        let reverts = self.reverts.get();
        let mut value = match self.assemble_first(ns, key, &e, false, from) {
            None => return Ok(false),
            Some(Assembled::Ready(v)) => v,
            Some(Assembled::Read(a)) => self.assemble_read(ns, key, a).await?,
        };
        // From here to the write: no await. (Closed while the read ran: write nothing.)
        if self.closed.get() || self.reverts.get() != reverts || self.expire_if_due(ns, key) {
            return Ok(false);
        }
        if self.keydir.borrow().get(ns, key).map(|now| value_key(&now)) != Some(value_key(&e)) {
            return Ok(false);
        }
        {
            let mut chains = self.chains.borrow_mut();
            let Some(c) = chains.get_mut(ns, key) else { return Ok(false) };
            match &mut c.fold {
                Some(f) if f.token == token && c.pieces.get(from - 1).copied() == last => value.append(&mut f.extra),
                _ => return Ok(false),
            }
        }
        let expire_at = self.keydir.borrow().expire_at(ns, key);
        self.apply_now(vec![crate::Mutation::PutExpiring { ns, key: key.to_vec(), value, expire_at }])?;
        Ok(true)
    }

    /// Folds `key` if it has pieces, waiting for a fold in progress and trying again
    /// until it has none (compaction: the key must no longer point into the segment it
    /// compacts). Errors: as [`Inner::fold_claimed`]'s.
    pub(crate) async fn fold(&self, ns: Ns, key: &[u8]) -> Result<(), StorageError> {
        loop {
            // Refused writes (a failed round not yet resumed, or for good) end it: a fold
            // could not write, and an expired key could not be removed (the loop would
            // spin without an await).
            self.check_writable()?;
            if !self.is_chained(ns, key) {
                return Ok(());
            }
            let wrote = match self.claim_fold(ns, key) {
                Some(token) => self.fold_claimed(ns, key, token).await?,
                None => false,
            };
            if !wrote {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
}
