//! Connection affinity: a client connection is served by the router executor that
//! shares a core with the shard its commands go to. With connection hand-off on (the
//! default, `crate::handoff`) such a connection goes to the shard process itself
//! instead; [`Streak`] decides when in both cases.
//!
//! When executors are pinned (`router::Layout`), router executor `i` and shard `i`
//! share CPU `i`. A request that crosses from a router executor to a shard on another
//! core costs two cross-core wake-ups (router → shard, shard → router); on the same
//! core the hand-off is a plain context switch. Measured on the 2-core machine at
//! redis-benchmark -P 1 (bench-results/kv.md, "Placement"): a router thread pinned
//! beside the busy shard served 35–90% more requests per second than one pinned to the
//! other core, and 15–35% more than leaving both to the scheduler.
//!
//! So a connection whose last [`MIGRATE_AFTER`] batches each went to one shard `s`
//! (commands that touch no shard, such as PING, do not count either way), and whose
//! executor is not `s`'s, moves there between two batches: when every reply has been
//! written and no request bytes are buffered. The move is a [`Handoff`]: a duplicate of
//! the socket descriptor plus the connection's state (client id, name, protocol
//! version), pushed to the target executor's [`Inbox`]; the old executor then closes its
//! descriptor. The client sees nothing of it.

use crate::cmd::ConnState;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Consecutive single-shard batches after which a connection moves to that shard's
/// router executor.
pub const MIGRATE_AFTER: u32 = 8;

/// Which shards the commands of one batch (one socket read's worth) were routed to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchShards {
    /// None yet (or only commands answered by the router).
    #[default]
    None,
    /// Every shard-bound command went to this shard.
    One(usize),
    /// Commands went to more than one shard (or one went to all of them).
    Many,
}

impl BatchShards {
    /// Records a command routed to shard `s`.
    pub fn add(&mut self, s: usize) {
        *self = match *self {
            BatchShards::None => BatchShards::One(s),
            BatchShards::One(t) if t == s => BatchShards::One(s),
            _ => BatchShards::Many,
        };
    }

    /// Records a command that went to several shards.
    pub fn many(&mut self) {
        *self = BatchShards::Many;
    }
}

/// Per-connection affinity state: the current run of single-shard batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Streak {
    /// The batch being read now; `dispatch` records each command's shard here.
    pub batch: BatchShards,
    shard: usize,
    len: u32,
}

impl Streak {
    /// Ends the current batch. Returns the shard whose router executor this connection
    /// should move to, once the run reached [`MIGRATE_AFTER`] batches.
    pub fn end_batch(&mut self) -> Option<usize> {
        match std::mem::take(&mut self.batch) {
            BatchShards::None => None,
            BatchShards::Many => {
                self.len = 0;
                None
            }
            BatchShards::One(s) => {
                if self.len > 0 && self.shard == s {
                    self.len = self.len.saturating_add(1);
                } else {
                    self.shard = s;
                    self.len = 1;
                }
                (self.len >= MIGRATE_AFTER).then_some(s)
            }
        }
    }

    /// Starts over (after a move).
    pub fn reset(&mut self) {
        *self = Streak::default();
    }
}

/// A client connection on its way to another router executor.
pub struct Handoff {
    /// A duplicate of the client's socket descriptor (non-blocking, as the original).
    pub fd: OwnedFd,
    pub conn: ConnState,
}

/// One router executor's queue of incoming connections. The queue is shared by all
/// executors (a `Mutex`, taken once per move); the executor is woken by one byte on a
/// socket pair, read by its glommio task (`router::serve_handoffs`).
pub struct Inbox {
    queue: Mutex<Vec<Handoff>>,
    bell: UnixStream,
    bell_rx: Mutex<Option<UnixStream>>,
}

impl Inbox {
    /// Errors: the socket pair cannot be created (out of descriptors).
    pub fn new() -> std::io::Result<Inbox> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Inbox { queue: Mutex::new(Vec::new()), bell: tx, bell_rx: Mutex::new(Some(rx)) })
    }

    /// Queues `h` and wakes the owning executor. Never blocks: when the bell's buffer is
    /// full the executor has unread rings already and will drain the queue.
    pub fn push(&self, h: Handoff) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(h);
        let _ = (&self.bell).write(&[1]);
    }

    /// Everything queued so far.
    pub fn take(&self) -> Vec<Handoff> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The read end of the bell; `Some` once, for the owning executor.
    pub fn take_bell(&self) -> Option<UnixStream> {
        self.bell_rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_single_shard_batches_asks_to_move() {
        let mut s = Streak::default();
        for i in 1..MIGRATE_AFTER {
            s.batch.add(3);
            assert_eq!(s.end_batch(), None, "batch {i}");
        }
        // Batches without shard commands (PING) neither count nor break the run.
        assert_eq!(s.end_batch(), None);
        s.batch.add(3);
        s.batch.add(3);
        assert_eq!(s.end_batch(), Some(3));
    }

    #[test]
    fn other_shards_break_the_run() {
        let mut s = Streak::default();
        for _ in 1..MIGRATE_AFTER {
            s.batch.add(1);
            s.end_batch();
        }
        s.batch.add(1);
        s.batch.add(2);
        assert_eq!(s.end_batch(), None);
        s.batch.add(1);
        assert_eq!(s.end_batch(), None, "the run starts over");
        s.batch.many();
        assert_eq!(s.end_batch(), None);
        for _ in 1..MIGRATE_AFTER {
            s.batch.add(2);
            assert_eq!(s.end_batch(), None);
        }
        s.batch.add(2);
        assert_eq!(s.end_batch(), Some(2));
    }
}
