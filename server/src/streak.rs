//! When a connection is handed to a shard (`crate::handoff`): [`Streak`] counts the
//! connection's consecutive batches whose shard-bound commands all went to one shard;
//! after [`HANDOFF_AFTER`] of them the connection is offered to that shard between two
//! batches.
//!
//! Commands the router answers itself (PING, CLIENT, INFO…) neither count nor break a
//! run; a batch that touches several shards (a multi-key command split by shard, a
//! keyspace-wide command) ends it.

/// Consecutive single-shard batches after which a connection is handed to that shard.
pub const HANDOFF_AFTER: u32 = 8;

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

/// Per-connection state: the current run of single-shard batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Streak {
    /// The batch being read now; `dispatch` records each command's shard here.
    pub batch: BatchShards,
    shard: usize,
    len: u32,
}

impl Streak {
    /// Ends the current batch. Returns the shard this connection should be handed to,
    /// once the run reached [`HANDOFF_AFTER`] batches.
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
                (self.len >= HANDOFF_AFTER).then_some(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_single_shard_batches_asks_for_a_handoff() {
        let mut s = Streak::default();
        for i in 1..HANDOFF_AFTER {
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
        for _ in 1..HANDOFF_AFTER {
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
        for _ in 1..HANDOFF_AFTER {
            s.batch.add(2);
            assert_eq!(s.end_batch(), None);
        }
        s.batch.add(2);
        assert_eq!(s.end_batch(), Some(2));
    }
}
