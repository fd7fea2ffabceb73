//! The value log: segment files `vlog/00000001.vlog …`, their records, the write path
//! (append buffer and group commit) and sequential reading.

pub(crate) mod reader;
pub(crate) mod record;
pub(crate) mod writer;

use std::rc::Rc;

use crate::file::File;

/// What the store knows about one segment file.
pub(crate) struct SegInfo {
    /// Open handle; `None` while the committer has not created the file yet (its bytes
    /// are then all in the segment's [`writer::Tail`]).
    pub file: Option<Rc<File>>,
    /// Logical end of the data (offset just past the last record), bytes.
    pub end: u64,
    /// End of the data of the last acknowledged round, bytes (0: no round that wrote
    /// to this segment was acknowledged; the segment goes if a round fails).
    pub acked_end: u64,
    /// Bytes kept alive by keydir entries pointing into this segment.
    pub live: u64,
    /// Bytes of tombstones (deletes, clear-all) in this segment.
    pub tomb: u64,
    /// Set after compaction of this segment failed, so it is not retried in a loop.
    pub skip_compaction: bool,
}

impl SegInfo {
    /// A segment whose data up to `end` is acknowledged (recovered, or created durably).
    pub fn new(file: Option<Rc<File>>, end: u64) -> SegInfo {
        SegInfo { file, end, acked_end: end, live: 0, tomb: 0, skip_compaction: false }
    }

    /// A segment just started by an append: nothing of it is acknowledged yet.
    pub fn unacknowledged(end: u64) -> SegInfo {
        SegInfo { acked_end: 0, ..SegInfo::new(None, end) }
    }
}
