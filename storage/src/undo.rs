//! The undo log: the keydir changes of group-commit rounds that are not yet
//! acknowledged, so that a failed round can be taken back (FORMAT.md "Group commit",
//! failure steps).
//!
//! Every change to the keydir made by `apply`, `clear_all`, `forget_where` (while a
//! round is pending) and compaction's moves is logged with the round it belongs to and
//! what it replaced. When a round is acknowledged its changes are dropped from the
//! front; when a round fails, every logged change is undone newest first, which puts the
//! keydir back to the state of the last acknowledged round.
//!
//! Cost on the write path: a few `VecDeque` pushes per keydir change, and no allocation
//! (once the deques have grown to the backlog of unacknowledged writes): the key logged
//! is the mutation's own `Vec`, moved, whatever its length (it is freed at the
//! acknowledgement instead of at the write); the previous entry is moved out of the
//! keydir in place ([`crate::keydir::Keydir::insert_with`]). 32 bytes of log per new key,
//! 80 per replaced or removed one. `clear_all` keeps the whole previous keydir until its
//! round is acknowledged. Measured with `benches/apply.rs`: see the commit that added
//! the log.

use std::collections::VecDeque;

use crate::keydir::{Entry, Keydir};
use crate::Ns;

/// One undoable change.
pub(crate) enum Change {
    /// `key` of `ns` was `prev` (`None`: absent) before the change.
    Key { ns: Ns, key: Vec<u8>, prev: Option<Entry> },
    /// `bytes` were added to the tombstone count of segment `seg`.
    Tomb { seg: u32, bytes: u64 },
    /// `clear_all`: the whole keydir before it, and each segment's live bytes.
    Cleared { keydir: Keydir, live: Vec<(u32, u64)> },
}

/// One logged change of a key; its previous entry, if `replaced`, is in `prevs`.
struct KeyChange {
    ns: Ns,
    replaced: bool,
    key: Vec<u8>,
}

/// A logged `clear_all`.
struct Clear {
    /// Key changes logged before it, counted since the log was made.
    after_keys: u64,
    keydir: Keydir,
    live: Vec<(u32, u64)>,
}

/// How much one round logged into each deque.
struct RoundLog {
    round: u64,
    keys: usize,
    prevs: usize,
    tombs: usize,
    clears: usize,
}

/// Changes of unacknowledged rounds, oldest first, in one deque per kind (a put of a new
/// key costs 32 bytes of log, a replaced or removed key 80). Key changes and clears are
/// undone in reverse order of their logging; tombstone counts are sums, undone in any
/// order.
#[derive(Default)]
pub(crate) struct UndoLog {
    keys: VecDeque<KeyChange>,
    prevs: VecDeque<Entry>,
    tombs: VecDeque<(u32, u64)>,
    clears: VecDeque<Clear>,
    /// Key changes logged since the log was made (orders clears among key changes).
    keys_logged: u64,
    rounds: VecDeque<RoundLog>,
}

impl UndoLog {
    /// The counts of `round`, the newest.
    fn round(&mut self, round: u64) -> &mut RoundLog {
        if self.rounds.back().is_none_or(|r| r.round != round) {
            debug_assert!(self.rounds.back().is_none_or(|r| r.round < round), "rounds are logged in order");
            self.rounds.push_back(RoundLog { round, keys: 0, prevs: 0, tombs: 0, clears: 0 });
        }
        self.rounds.back_mut().expect("just pushed")
    }

    /// The write path's form of `push(round, Change::Key { ns, key, prev })`, in two
    /// calls: `push_prev(round, prev)` first if there was a previous entry (from inside
    /// the keydir update, where it is at hand), then `push_key(round, ns, key, replaced)`.
    #[inline]
    pub fn push_prev(&mut self, round: u64, prev: Entry) {
        self.round(round).prevs += 1;
        self.prevs.push_back(prev);
    }

    /// See [`UndoLog::push_prev`]; `replaced`: whether it was called for this key.
    #[inline]
    pub fn push_key(&mut self, round: u64, ns: Ns, key: Vec<u8>, replaced: bool) {
        self.round(round).keys += 1;
        self.keys.push_back(KeyChange { ns, replaced, key });
        self.keys_logged += 1;
    }

    /// Logs a change made for `round` (rounds are logged in increasing order).
    pub fn push(&mut self, round: u64, change: Change) {
        match change {
            Change::Key { ns, key, prev } => {
                let replaced = prev.is_some();
                if let Some(e) = prev {
                    self.push_prev(round, e);
                }
                self.push_key(round, ns, key, replaced);
            }
            Change::Tomb { seg, bytes } => {
                self.round(round).tombs += 1;
                self.tombs.push_back((seg, bytes));
            }
            Change::Cleared { keydir, live } => {
                self.round(round).clears += 1;
                self.clears.push_back(Clear { after_keys: self.keys_logged, keydir, live });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rounds.is_empty()
    }

    /// Changes logged and not yet acknowledged.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len() + self.tombs.len() + self.clears.len()
    }

    /// Drops the changes of every round ≤ `round` (they are acknowledged).
    pub fn acknowledge(&mut self, round: u64) {
        let (mut keys, mut prevs, mut tombs, mut clears) = (0, 0, 0, 0);
        while let Some(r) = self.rounds.front() {
            if r.round > round {
                break;
            }
            keys += r.keys;
            prevs += r.prevs;
            tombs += r.tombs;
            clears += r.clears;
            self.rounds.pop_front();
        }
        self.keys.drain(..keys);
        self.prevs.drain(..prevs);
        self.tombs.drain(..tombs);
        self.clears.drain(..clears);
    }

    /// Takes every logged change, newest first (for undoing them in that order; the
    /// tombstone counts come last).
    pub fn take_newest_first(&mut self) -> Vec<Change> {
        let mut out = Vec::with_capacity(self.keys.len() + self.tombs.len() + self.clears.len());
        // One past the count of the newest key change left.
        let mut next_key = self.keys_logged;
        loop {
            if self.clears.back().is_some_and(|c| c.after_keys >= next_key) || (self.keys.is_empty() && !self.clears.is_empty()) {
                let Clear { keydir, live, .. } = self.clears.pop_back().expect("checked");
                out.push(Change::Cleared { keydir, live });
            } else if let Some(KeyChange { ns, replaced, key }) = self.keys.pop_back() {
                let prev = replaced.then(|| self.prevs.pop_back().expect("an entry per replaced key"));
                out.push(Change::Key { ns, key, prev });
                next_key -= 1;
            } else {
                break;
            }
        }
        out.extend(self.tombs.drain(..).map(|(seg, bytes)| Change::Tomb { seg, bytes }));
        self.rounds.clear();
        out
    }
}
