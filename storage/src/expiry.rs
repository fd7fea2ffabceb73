//! Key expiry: the store's clock, the removal of expired keys, and the active expiry
//! cycle.
//!
//! A key's expiry time (`expire_at`, unix epoch milliseconds) is kept beside the keydir
//! in a per-namespace index (`keydir::Ttls`: a hash map like Redis's `expires` dict plus
//! a set ordered by time), so keys without a TTL cost nothing more. It is durable in the
//! put record that wrote the value (kind 5, FORMAT.md): every change of a key's expiry
//! time writes the value again with the new time, so the record the keydir points at
//! always holds the current time, and recovery and compaction need no other record.
//!
//! An expired key is invisible at once: every read of the [`crate::Store`] (lookups,
//! counts, KEYS, SCAN) checks the time. It is *removed* — from the keydir, with a
//! tombstone in the vLog, through the normal group commit (nobody waits for it) — by
//! whichever comes first:
//! - a read that meets it (lazy expiry, as Redis's `expireIfNeeded`);
//! - the active expiry cycle below;
//! - compaction, which meets it live in a segment it compacts;
//! - opening the store (keys that expired while it was down).
//!
//! The tombstone is what keeps an older version of the key (an earlier put without a
//! TTL, in an older segment) from coming back once compaction drops the expired record:
//! the same reason Redis appends a DEL to its AOF when a key expires.
//!
//! **Active cycle.** Not Redis's sampling cycle but an ordered index: every
//! [`CYCLE`] (100 ms, Redis's `hz` 10) the task takes the due keys in time order and
//! removes them in batches of [`BATCH`] (one record each), until none is due or the cycle
//! has used [`BUDGET`] (1 ms) of the shard's thread; what is left waits for the next
//! cycle (it is invisible meanwhile). The ordered set costs a second copy of each
//! expiring key, and in return finds every due key without sampling, so that counts
//! (DBSIZE) are exact and expired keys never linger after a burst of expiries; Redis's
//! sampling trades that exactness for less memory.

use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::store::Inner;
use crate::{Mutation, Ns, StorageError};

/// The store's time source: unix epoch milliseconds. One per store (so one per shard);
/// tests inject their own with [`crate::Store::set_clock`].
pub type Clock = Rc<dyn Fn() -> u64>;

/// The wall clock, unix epoch milliseconds (0 if the system clock is before 1970).
pub fn system_clock() -> Clock {
    Rc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// Interval of the active expiry cycle.
pub(crate) const CYCLE: Duration = Duration::from_millis(100);
/// Time one cycle may use before it leaves the rest for the next.
const BUDGET: Duration = Duration::from_millis(1);
/// Keys removed per record (and per check of the budget).
pub(crate) const BATCH: usize = 256;

impl Inner {
    /// Now, by the store's clock (unix epoch ms).
    pub(crate) fn now(&self) -> u64 {
        (self.clock.borrow())()
    }

    /// Removes `keys` of `ns` (all expired) with one delete record through the normal
    /// group commit, nobody waiting for it, and counts them in `expired_keys`. Does
    /// nothing while the store refuses writes: the keys stay invisible and are removed
    /// later. Returns how many were removed.
    pub(crate) fn remove_expired(&self, ns: Ns, keys: Vec<Vec<u8>>) -> usize {
        if keys.is_empty() || self.is_poisoned() {
            return 0;
        }
        let n = keys.len();
        let muts = keys.iter().map(|key| Mutation::Delete { ns, key: key.clone() }).collect();
        match self.apply_now(muts) {
            Ok(_) => {
                self.expired_keys.set(self.expired_keys.get() + n as u64);
                n
            }
            // Keys so long that their deletes pass the 1 GiB record limit together.
            Err(StorageError::TooLarge(_)) if n > 1 => keys.into_iter().map(|k| self.remove_expired(ns, vec![k])).sum(),
            Err(e) => {
                tracing::warn!("could not remove {n} expired keys: {e}");
                0
            }
        }
    }

    /// Removes `key` of `ns` if its expiry time has passed; returns whether it was
    /// expired (also when the removal has to wait because writes are refused).
    pub(crate) fn expire_if_due(&self, ns: Ns, key: &[u8]) -> bool {
        // The clock is read only for a key that has a time (most reads: no TTL at all).
        let at = self.keydir.borrow().expire_at(ns, key);
        if at == 0 || at > self.now() {
            return false;
        }
        self.remove_expired(ns, vec![key.to_vec()]);
        true
    }

    /// Removes up to `max` due keys over all namespaces, oldest first, in records of at
    /// most [`BATCH`] keys; returns how many.
    pub(crate) fn expire_due(&self, max: usize) -> usize {
        let now = self.now();
        let mut done = 0;
        let namespaces = self.keydir.borrow().namespaces_with_ttls();
        for ns in namespaces {
            while done < max {
                let keys = self.keydir.borrow().due(ns, now, BATCH.min(max - done));
                if keys.is_empty() {
                    break;
                }
                let n = keys.len();
                let removed = self.remove_expired(ns, keys);
                done += removed;
                if removed < n {
                    return done; // writes are refused
                }
            }
        }
        done
    }
}

/// The active expiry cycle (see the module docs); ends when the store is closed or
/// poisoned for good, and skips cycles while writes are refused.
pub(crate) async fn background(weak: Weak<Inner>) {
    loop {
        glommio::timer::sleep(CYCLE).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.get() || inner.log.borrow().poisoned_for_good() {
            return;
        }
        let started = Instant::now();
        while !inner.closed.get() && !inner.is_poisoned() && inner.expire_due(BATCH) == BATCH && started.elapsed() < BUDGET {
            glommio::yield_if_needed().await;
        }
    }
}
