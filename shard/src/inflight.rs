//! The shard-wide budget of value bytes read and not yet sent (`inflight_bytes`, README
//! "Memory"; ARCHITECTURE "Memory").
//!
//! Without it, the bytes a shard holds for replies grow with connections × pipeline
//! depth × value size (50 connections × 16 pipelined GETs × 16 KiB = 12.5 MiB, held in
//! an O_DIRECT buffer, a value copy and a reply buffer while a batch is served). What
//! counts, in bytes:
//!
//! - the reads of whole values the store has issued to the vLog and not yet returned
//!   (`keel_storage::Store::reading_bytes`: the values' lengths);
//! - the replies a connection has produced and not yet written to its socket, each
//!   charged once it exists as a value (a value read from disk once its read returned),
//!   by its size in the shard frame encoding (`keel_protocol::shard::value_len`: the
//!   value's bytes plus at most a few bytes of header per element), until the write
//!   that sends it completes.
//!
//! The rule, applied by both kinds of connection (router links in `conn.rs`, handed-off
//! clients in `client.rs`) before they start a request: a connection that holds anything
//! (replies not yet written, reads not yet returned) while the shard is at or over the
//! budget first answers what it has (writes its replies) and only then starts the
//! request. A connection that holds nothing always starts one. So no connection ever
//! waits for another's bytes: what it waits for is its own replies reaching its own
//! socket. No deadlock is possible, a value larger than the whole budget is served (to a
//! connection that holds nothing), and a client that stops reading its replies holds at
//! most what it had when the budget filled up, while the others go on (one request per
//! write). The bound this gives: in flight ≤ the budget + what each connection's
//! current request adds (one value for GET, its values for MGET), with the overshoot
//! mostly the request that crossed the budget.

use std::cell::Cell;

/// Default of the budget, bytes: the config key's default.
pub const DEFAULT_INFLIGHT_BYTES: usize = keel_config::DEFAULT_INFLIGHT_BYTES as usize;

/// One shard's budget and the bytes its connections hold (see the module docs).
#[derive(Debug)]
pub struct Inflight {
    limit: Cell<usize>,
    /// Reply bytes charged by connections and not yet released.
    held: Cell<usize>,
    /// The most bytes in flight seen since the shard started: `held` + the store's reads
    /// in flight at each budget check before a request, `held` when a reply is charged.
    peak: Cell<usize>,
}

impl Default for Inflight {
    fn default() -> Inflight {
        Inflight { limit: Cell::new(DEFAULT_INFLIGHT_BYTES), held: Cell::new(0), peak: Cell::new(0) }
    }
}

impl Inflight {
    /// The budget, bytes.
    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.set(bytes);
    }

    /// Bytes in flight now: replies held plus `reading` (the store's reads in flight).
    pub fn used(&self, reading: usize) -> usize {
        self.held.get() + reading
    }

    /// The most bytes seen in flight (sampled whenever a connection checks the budget
    /// before a request, with the store's reads in flight, and when it charges a reply,
    /// without them).
    pub fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Whether the shard is at or over the budget, with `reading` bytes of reads in
    /// flight (`Store::reading_bytes`); records the peak.
    pub(crate) fn full(&self, reading: usize) -> bool {
        let used = self.used(reading);
        self.peak.set(self.peak.get().max(used));
        used >= self.limit.get()
    }

    /// A connection's share, empty.
    pub(crate) fn share(&self) -> Share<'_> {
        Share { budget: self, bytes: 0 }
    }

    /// Adds `n` bytes a connection holds (for a connection that keeps its own count; the
    /// others use a [`Share`]).
    pub(crate) fn charge(&self, n: usize) {
        let held = self.held.get() + n;
        self.held.set(held);
        self.peak.set(self.peak.get().max(held));
    }

    /// Gives back `n` bytes charged with [`Inflight::charge`].
    pub(crate) fn release(&self, n: usize) {
        self.held.set(self.held.get() - n);
    }
}

/// The reply bytes one connection holds: charged as its replies come into being,
/// released once they are written; whatever is left is released when it is dropped (the
/// connection ended or went back to the router).
pub(crate) struct Share<'a> {
    budget: &'a Inflight,
    bytes: usize,
}

impl Share<'_> {
    pub(crate) fn charge(&mut self, n: usize) {
        self.bytes += n;
        self.budget.charge(n);
    }

    /// Releases `n` of the bytes this share holds (at most all of them).
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.budget.release(n);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_charge_release_and_give_back_on_drop() {
        let b = Inflight::default();
        b.set_limit(100);
        let mut a = b.share();
        let mut c = b.share();
        a.charge(60);
        assert!(!b.full(39));
        assert!(b.full(40), "at the budget");
        c.charge(70);
        assert_eq!((b.used(0), b.peak()), (130, 130));
        a.release(1000);
        assert_eq!((a.bytes(), b.used(0)), (0, 70), "releases at most what the share holds");
        c.release(20);
        drop(c);
        assert_eq!(b.used(5), 5, "a dropped share gives back what it held");
        assert_eq!(b.peak(), 130);
    }
}
