//! The undo log: the keydir changes of group-commit rounds that are not yet
//! acknowledged, so that a failed round can be taken back (FORMAT.md "When a round
//! fails").
//!
//! Every change to the keydir made by `apply`, `clear_all`, `forget_where` (while a
//! round is pending) and compaction's moves is logged in the order it was made. When a
//! round is acknowledged its changes are dropped from the front; when a round fails,
//! every logged change is undone newest first, which puts the keydir back to the state
//! of the last acknowledged round, with the segments' live and tombstone byte counts.
//!
//! What is logged per change:
//! - a put (or a compaction move): one `u64` naming the key by its bucket — namespace,
//!   48-bit bucket hash ([`crate::keydir::key_hash`]) and the key's position among the
//!   keys of that bucket right after the put — and, if it replaced an entry, that
//!   entry: 16 bytes of location, length and footprint (entries keep no sequence
//!   number once recovery is done, and no value). No key bytes. The position finds the key again exactly, also
//!   in a bucket of several keys (48-bit hash collisions): the changes are undone newest
//!   first, so when a put is undone every later change has been undone already and the
//!   bucket holds exactly the keys it held right after the put, in the same (sorted)
//!   order. A key at position 15 or later of its bucket (never seen in practice) is
//!   logged with its bytes instead;
//! - a delete or a `forget_where` drop: the same word, the removed entry, and the key
//!   itself (its bytes are needed to insert it again); a delete of a missing key
//!   changes nothing and logs nothing;
//! - `clear_all`: the whole previous keydir and each segment's live bytes;
//! - tombstone bytes added to a segment: (segment, bytes), undone in any order;
//! - a change of the append chains (`chain.rs`: an append, a chain dropped by an
//!   overwrite, delete or forget, or all of them by `clear_all`): a word with the
//!   `CHAIN` bit, and the step that undoes it in `chains` (the key for an append, the
//!   dropped chain with its key, the whole table);
//! - an expiry time changed (set, changed or removed, see `Keydir::set_expire_at`): a
//!   word, and the key with its previous time in `ttls` (only keys that have or had a
//!   TTL pay for this).
//!
//! Nothing is found by scanning at revert time: every change is in the log, so the
//! revert is a walk of the log, newest first (plus `clear_all`'s whole keydirs).
//!
//! Cost on the write path: a put of a new key logs one word (8 bytes); an overwrite
//! three (24 bytes; 88 and the key's allocation kept alive in the log this replaced,
//! 40 while the keydir still held small values). No allocation, no key copy (the mutation's key is freed at the
//! write, as without a log), one compare per change to see whether a round starts, and
//! dropping an acknowledged round touches none of its words (they are plain data).
//!
//! How it is written matters more than how much (measured, with profiles:
//! `bench-results/kv-structure.md`). The keydir lookup of a put misses the cache, and
//! its store into the slot waits for that line. Logging the replaced entry by moving it
//! through a stack temporary (an `Option<Entry>` returned, a struct built and then
//! copied), or pushing it to the tail of a log whose lines are not in the cache, cost
//! 10–25 % of an MSET with the log's size unchanged: the profiles put the time on the
//! loads that read such a temporary back (they cannot be forwarded from the narrower
//! stores that wrote it, so they wait for the older stores, the keydir's included) and
//! on the keydir lookup itself. So the replaced entry's fields are read from the keydir
//! slot in place ([`crate::keydir::Keydir::insert_with`] hands it over before
//! overwriting it) and written as whole `u64`s into a 4 KiB buffer that stays in the
//! cache (`staged`), copied to the log in one go when full. The rest of the cost grows
//! with the log's footprint in the caches, i.e. with the writes in flight
//! (`benches/apply.rs`, case "100k keys overwritten", `KEEL_BENCH_IN_FLIGHT`).

use std::collections::VecDeque;

use crate::chain::ChainUndo;
use crate::keydir::{Entry, Keydir, CURSOR_BITS};
use crate::Ns;

/// Bits of a logged change's word (see [`UndoLog`]).
const HASH_MASK: u64 = (1 << CURSOR_BITS) - 1;
const NS_SHIFT: u32 = 48;
const KIND_SHIFT: u32 = 56;
const KIND_PUT: u64 = 0;
const KIND_REMOVED: u64 = 1;
const KIND_CLEARED: u64 = 2;
const KIND_TTL: u64 = 3;
/// The change replaced (or removed) an entry: its words come before the change's.
const HAS_PREV: u64 = 1 << 58;
/// The change is one of the append chains': its step is the newest in `chains`.
const CHAIN: u64 = 1 << 59;
const POS_SHIFT: u32 = 60;
/// Position value meaning "the key's bytes are in `keys`".
const POS_KEYED: u64 = 15;

/// How to undo one change, newest first; see [`UndoLog::take_newest_first`].
pub(crate) enum Undo {
    /// Put `prev` back for (`None`: remove) the key of `ns` at position `pos` of
    /// bucket `hash`.
    Put { ns: Ns, hash: u64, pos: usize, prev: Option<Entry> },
    /// The same for `key` of `ns`, named by its bytes (removals, and puts at a
    /// position ≥ 15).
    PutKey { ns: Ns, key: Vec<u8>, prev: Option<Entry> },
    /// Put back the keydir from before `clear_all` and each segment's live bytes.
    Clear { keydir: Keydir, live: Vec<(u32, u64)> },
    /// Take `bytes` off the tombstone count of segment `seg` (these come last).
    Tomb { seg: u32, bytes: u64 },
    /// Set the expiry time of `key` of `ns` back to `prev` (0: none).
    Ttl { ns: Ns, key: Vec<u8>, prev: u64 },
    /// Undo a change of the append chains.
    Chain(ChainUndo),
}

/// How many items each deque held, counted since the log was made.
#[derive(Clone, Copy, Default)]
struct Marks {
    words: u64,
    keys: u64,
    clears: u64,
    tombs: u64,
    ttls: u64,
    chains: u64,
}

/// A logged `clear_all`.
struct Clear {
    keydir: Keydir,
    live: Vec<(u32, u64)>,
}

/// Words of changes staged before they move to the log in one copy (4 KiB).
const STAGED: usize = 512;

/// Changes of unacknowledged rounds, oldest first, as one stream of `u64` words, read
/// back from the end. Per keydir change, in this order: if it replaced or removed an
/// entry, that entry's `seg | off << 32` and `len | foot << 32`; last the change's own
/// word, `hash | ns << 48 | kind << 56 | HAS_PREV | pos << 60`. Keys, clears and tombstone counts go to their own deques, in order.
///
/// The write path pushes plain `u64`s into `staged`, a small buffer that stays in the
/// cache, copying the replaced entry's fields from the keydir slot itself; `staged`
/// moves to `log` in one copy when full. See the module documentation for why.
pub(crate) struct UndoLog {
    log: VecDeque<u64>,
    /// `staged[..n_staged]` are the newest words, not yet in `log`.
    staged: Box<[u64; STAGED]>,
    n_staged: usize,
    keys: VecDeque<Vec<u8>>,
    clears: VecDeque<Clear>,
    tombs: VecDeque<(u32, u64)>,
    /// Expiry time changes: the key and its previous time.
    ttls: VecDeque<(Vec<u8>, u64)>,
    /// Append chain changes, as the steps that undo them.
    chains: VecDeque<ChainUndo>,
    /// Items dropped from the front of each deque so far.
    dropped: Marks,
    /// Each round with logged changes, oldest first, and where its changes start.
    rounds: VecDeque<(u64, Marks)>,
    /// The round of the newest logged change (0: none since the log was last emptied).
    newest: u64,
}

impl Default for UndoLog {
    fn default() -> UndoLog {
        UndoLog {
            log: VecDeque::new(),
            staged: Box::new([0; STAGED]),
            n_staged: 0,
            keys: VecDeque::new(),
            clears: VecDeque::new(),
            tombs: VecDeque::new(),
            ttls: VecDeque::new(),
            chains: VecDeque::new(),
            dropped: Marks::default(),
            rounds: VecDeque::new(),
            newest: 0,
        }
    }
}

impl UndoLog {
    /// Where the next item of each deque goes, counted since the log was made.
    fn ends(&self) -> Marks {
        let d = &self.dropped;
        Marks {
            words: d.words + (self.log.len() + self.n_staged) as u64,
            keys: d.keys + self.keys.len() as u64,
            clears: d.clears + self.clears.len() as u64,
            tombs: d.tombs + self.tombs.len() as u64,
            ttls: d.ttls + self.ttls.len() as u64,
            chains: d.chains + self.chains.len() as u64,
        }
    }

    /// Starts logging a change of `round` (one compare unless a round starts). Rounds
    /// are logged in increasing order.
    #[inline(always)]
    pub fn begin(&mut self, round: u64) {
        if round != self.newest {
            self.start_round(round);
        }
    }

    #[cold]
    fn start_round(&mut self, round: u64) {
        debug_assert!(round > self.newest, "rounds are logged in increasing order");
        let start = self.ends();
        self.rounds.push_back((round, start));
        self.newest = round;
    }

    /// Logs `e`, the entry the change being logged replaces or removes (read from the
    /// keydir slot, before the slot changes); returns the flags for the change's word.
    /// The change's [`UndoLog::put`] (or `removed`) must follow.
    #[inline(always)]
    pub fn prev(&mut self, e: &Entry) -> u64 {
        debug_assert_eq!(e.seq, 0, "the undo log runs after recovery, where entries keep no sequence number");
        let (at, w) = (self.n_staged, &mut self.staged);
        w[at] = e.seg as u64 | (e.off as u64) << 32;
        w[at + 1] = e.len as u64 | (e.foot as u64) << 32;
        self.n_staged = at + 2;
        HAS_PREV
    }

    /// Ends logging a put or compaction move: it set the key of `ns` that is now at
    /// position `pos` of bucket `hash`; `flags` are [`UndoLog::prev`]'s if it replaced an
    /// entry, else 0. `key` is only read if `pos` ≥ 15.
    #[inline(always)]
    pub fn put(&mut self, ns: Ns, hash: u64, pos: usize, key: &[u8], flags: u64) {
        let pos = if pos < POS_KEYED as usize {
            pos as u64
        } else {
            self.keys.push_back(key.to_vec());
            POS_KEYED
        };
        self.word(hash | (ns as u64) << NS_SHIFT | KIND_PUT << KIND_SHIFT | flags | pos << POS_SHIFT);
    }

    /// Writes a change's word (its last) and moves the staged words to the log if full.
    #[inline(always)]
    fn word(&mut self, word: u64) {
        self.staged[self.n_staged] = word;
        self.n_staged += 1;
        // Room for the next change's words (at most 2 + 1 on the fast path).
        if self.n_staged > STAGED - 8 {
            self.flush();
        }
    }

    /// Moves the staged words to the log.
    #[cold]
    fn flush(&mut self) {
        self.log.extend(self.staged[..self.n_staged].iter());
        self.n_staged = 0;
    }

    /// `key` of `ns`, whose entry was `prev`, was removed in `round`.
    pub fn removed(&mut self, round: u64, ns: Ns, key: Vec<u8>, prev: &Entry) {
        self.begin(round);
        let flags = self.prev(prev);
        self.keys.push_back(key);
        self.word((ns as u64) << NS_SHIFT | KIND_REMOVED << KIND_SHIFT | flags | POS_KEYED << POS_SHIFT);
    }

    /// `clear_all` in `round` emptied `keydir`, with these live byte counts per segment.
    pub fn cleared(&mut self, round: u64, keydir: Keydir, live: Vec<(u32, u64)>) {
        self.begin(round);
        self.clears.push_back(Clear { keydir, live });
        self.word(KIND_CLEARED << KIND_SHIFT);
    }

    /// `bytes` were added to the tombstone count of segment `seg` in `round`.
    pub fn tomb(&mut self, round: u64, seg: u32, bytes: u64) {
        self.begin(round);
        self.tombs.push_back((seg, bytes));
    }

    /// The expiry time of `key` of `ns` was changed in `round`; it was `prev` (0: none).
    pub fn ttl(&mut self, round: u64, ns: Ns, key: &[u8], prev: u64) {
        self.begin(round);
        self.ttls.push_back((key.to_vec(), prev));
        self.word((ns as u64) << NS_SHIFT | KIND_TTL << KIND_SHIFT);
    }

    /// A change of the append chains in `round`, undone by `step`.
    pub fn chain(&mut self, round: u64, step: ChainUndo) {
        self.begin(round);
        self.chains.push_back(step);
        self.word(CHAIN);
    }

    pub fn is_empty(&self) -> bool {
        self.rounds.is_empty()
    }

    /// Changes logged and not yet acknowledged (keydir changes and tombstone counts).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let mut words: VecDeque<u64> = self.log.iter().chain(&self.staged[..self.n_staged]).copied().collect();
        let mut n = 0;
        while pop_change(&mut words).is_some() {
            n += 1;
        }
        n + self.tombs.len()
    }

    /// Drops the changes of every round ≤ `round` (they are acknowledged).
    pub fn acknowledge(&mut self, round: u64) {
        let acked = self.rounds.iter().take_while(|(r, _)| *r <= round).count();
        if acked == self.rounds.len() {
            self.clear();
            return;
        }
        if acked == 0 {
            return;
        }
        self.flush();
        let keep = self.rounds[acked].1;
        let d = self.dropped;
        let n = |keep: u64, dropped: u64| (keep - dropped) as usize;
        self.log.drain(..n(keep.words, d.words));
        self.keys.drain(..n(keep.keys, d.keys));
        self.clears.drain(..n(keep.clears, d.clears));
        self.tombs.drain(..n(keep.tombs, d.tombs));
        self.ttls.drain(..n(keep.ttls, d.ttls));
        self.chains.drain(..n(keep.chains, d.chains));
        self.dropped = keep;
        self.rounds.drain(..acked);
    }

    /// Drops everything.
    fn clear(&mut self) {
        self.dropped = self.ends();
        self.log.clear();
        self.n_staged = 0;
        self.keys.clear();
        self.clears.clear();
        self.tombs.clear();
        self.ttls.clear();
        self.chains.clear();
        self.rounds.clear();
        self.newest = 0;
    }

    /// Takes every logged change as the steps that undo it, newest first (the
    /// tombstone counts last), and empties the log.
    pub fn take_newest_first(&mut self) -> Vec<Undo> {
        self.flush();
        let mut out = Vec::new();
        while let Some((word, prev)) = pop_change(&mut self.log) {
            let ns = (word >> NS_SHIFT) as u8;
            let pos = word >> POS_SHIFT;
            if word & CHAIN != 0 {
                out.push(Undo::Chain(self.chains.pop_back().expect("a step per chain change")));
                continue;
            }
            out.push(match (word >> KIND_SHIFT) & 3 {
                KIND_CLEARED => {
                    let Clear { keydir, live } = self.clears.pop_back().expect("a keydir per clear");
                    Undo::Clear { keydir, live }
                }
                KIND_TTL => {
                    let (key, prev) = self.ttls.pop_back().expect("a key per expiry change");
                    Undo::Ttl { ns, key, prev }
                }
                _ if pos == POS_KEYED => Undo::PutKey { ns, key: self.keys.pop_back().expect("a key per keyed change"), prev },
                _ => Undo::Put { ns, hash: word & HASH_MASK, pos: pos as usize, prev },
            });
        }
        debug_assert!(self.keys.is_empty() && self.clears.is_empty() && self.ttls.is_empty() && self.chains.is_empty());
        out.extend(self.tombs.drain(..).map(|(seg, bytes)| Undo::Tomb { seg, bytes }));
        self.clear();
        out
    }
}

/// Pops the newest change from the end of `words`: its word and the entry it replaced
/// or removed.
fn pop_change(words: &mut VecDeque<u64>) -> Option<(u64, Option<Entry>)> {
    let word = words.pop_back()?;
    if word & HAS_PREV == 0 {
        return Some((word, None));
    }
    let mut pop = || words.pop_back().expect("a logged entry's words");
    let (len_foot, seg_off) = (pop(), pop());
    let (len, foot) = (len_foot as u32, (len_foot >> 32) as u32);
    Some((word, Some(Entry { seq: 0, seg: seg_off as u32, off: (seg_off >> 32) as u32, len, foot, inline: None })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64, len: u32) -> Entry {
        Entry { seq: 0, seg: i as u32 % 7 + 1, off: i as u32 * 13, len, foot: len + 13, inline: None }
    }

    /// What one step undoes, comparable.
    #[derive(Debug, PartialEq)]
    enum Step {
        Put(Ns, u64, usize, Option<Entry>),
        PutKey(Ns, Vec<u8>, Option<Entry>),
        Clear(usize, Vec<(u32, u64)>),
        Tomb(u32, u64),
        Ttl(Ns, Vec<u8>, u64),
        ChainPop(Ns, Vec<u8>),
        ChainRestore(Ns, Vec<u8>, usize),
        ChainAll(usize),
    }

    fn steps(log: &mut UndoLog) -> Vec<Step> {
        log.take_newest_first()
            .into_iter()
            .map(|u| match u {
                Undo::Put { ns, hash, pos, prev } => Step::Put(ns, hash, pos, prev),
                Undo::PutKey { ns, key, prev } => Step::PutKey(ns, key, prev),
                Undo::Clear { keydir, live } => Step::Clear(keydir.len(0), live),
                Undo::Tomb { seg, bytes } => Step::Tomb(seg, bytes),
                Undo::Ttl { ns, key, prev } => Step::Ttl(ns, key, prev),
                Undo::Chain(ChainUndo::Pop { ns, key }) => Step::ChainPop(ns, key),
                Undo::Chain(ChainUndo::Restore { ns, key, chain }) => Step::ChainRestore(ns, key, chain.pieces.len()),
                Undo::Chain(ChainUndo::All(chains)) => Step::ChainAll(chains.len()),
            })
            .collect()
    }

    /// Logs one change of each kind per `i` in `round`; returns the steps that undo
    /// them, oldest first (tombstones apart).
    fn log_changes(log: &mut UndoLog, round: u64, range: std::ops::Range<u64>) -> (Vec<Step>, Vec<Step>) {
        let (mut changes, mut tombs) = (Vec::new(), Vec::new());
        for i in range {
            let (ns, hash) = ((i % 3) as Ns, (i * 0x9E37_79B9) & HASH_MASK);
            // A new key, at a position below 15 and at one of 15 or more.
            log.begin(round);
            log.put(ns, hash, (i % 15) as usize, b"unused", 0);
            changes.push(Step::Put(ns, hash, (i % 15) as usize, None));
            log.begin(round);
            log.put(ns, hash, 15 + i as usize, format!("key{i}").as_bytes(), 0);
            changes.push(Step::PutKey(ns, format!("key{i}").into_bytes(), None));
            // Replaced entries of several lengths.
            for len in [500, (i % 23) as u32, (1 << 30) - i as u32] {
                let prev = entry(i, len);
                log.begin(round);
                let flags = log.prev(&prev);
                log.put(ns, hash, 1, b"unused", flags);
                changes.push(Step::Put(ns, hash, 1, Some(prev)));
            }
            let prev = entry(i + 1, 4);
            log.removed(round, ns, format!("gone{i}").into_bytes(), &prev);
            changes.push(Step::PutKey(ns, format!("gone{i}").into_bytes(), Some(prev)));
            log.tomb(round, i as u32, i + 100);
            tombs.push(Step::Tomb(i as u32, i + 100));
            if i % 3 == 0 {
                log.ttl(round, ns, format!("ttl{i}").as_bytes(), i * 7);
                changes.push(Step::Ttl(ns, format!("ttl{i}").into_bytes(), i * 7));
            }
            if i % 4 == 1 {
                log.chain(round, ChainUndo::Pop { ns, key: format!("app{i}").into_bytes() });
                changes.push(Step::ChainPop(ns, format!("app{i}").into_bytes()));
                let pieces = vec![crate::chain::Piece { seg: 1, off: i as u32, len: 3, foot: 40 }; (i % 5 + 1) as usize];
                let chain = crate::chain::Chain { pieces, bytes: 3 * (i % 5 + 1), seq: 0, fold: None };
                log.chain(round, ChainUndo::Restore { ns, key: format!("drop{i}").into_bytes(), chain });
                changes.push(Step::ChainRestore(ns, format!("drop{i}").into_bytes(), (i % 5 + 1) as usize));
            }
            if i.is_multiple_of(50) {
                let mut kd = Keydir::default();
                kd.insert(0, format!("cleared{i}").as_bytes(), entry(i, 1));
                log.cleared(round, kd, vec![(1, i)]);
                changes.push(Step::Clear(1, vec![(1, i)]));
                let mut chains = crate::chain::Chains::default();
                chains.push(0, b"k", crate::chain::Piece { seg: 1, off: 9, len: 1, foot: 30 }, 0);
                log.chain(round, ChainUndo::All(chains));
                changes.push(Step::ChainAll(1));
            }
        }
        (changes, tombs)
    }

    #[test]
    fn changes_come_back_newest_first_with_their_entries() {
        let mut log = UndoLog::default();
        // Enough words to pass through the staging buffer many times.
        log_changes(&mut log, 1, 0..300);
        let (mut changes, mut tombs) = log_changes(&mut log, 2, 300..500);
        let (c3, t3) = log_changes(&mut log, 5, 500..700);
        changes.extend(c3);
        tombs.extend(t3);
        assert!(!log.is_empty());
        log.acknowledge(0);
        log.acknowledge(1);
        changes.reverse();
        changes.extend(tombs);
        assert_eq!(steps(&mut log), changes);
        assert!(log.is_empty());
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn acknowledging_every_round_empties_the_log() {
        let mut log = UndoLog::default();
        log_changes(&mut log, 1, 0..10);
        log_changes(&mut log, 2, 10..20);
        log.acknowledge(1);
        assert!(!log.is_empty());
        log.acknowledge(2);
        assert!(log.is_empty());
        assert_eq!(steps(&mut log), vec![]);
        // Logging goes on as before.
        let (mut changes, tombs) = log_changes(&mut log, 3, 20..21);
        changes.reverse();
        changes.extend(tombs);
        assert_eq!(steps(&mut log), changes);
    }
}
