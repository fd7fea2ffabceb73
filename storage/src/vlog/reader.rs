//! Sequential reading of one segment, record by record, in large aligned O_DIRECT reads.
//! Used by recovery and compaction.

use std::io;
use std::rc::Rc;

use super::record::{self, Checked, Header, HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::file::File;

/// Bytes read per O_DIRECT read while scanning.
const CHUNK: usize = 1 << 20;
const ALIGN: u64 = 4096;

/// What [`SegmentReader::next`] found at the current position.
pub(crate) enum Step {
    /// A complete record with a good CRC and a well-formed body, at `off`.
    Record { off: u64, header: Header },
    /// End of data: the end of the file, or an all-zero header (padding) at `off`.
    End { off: u64 },
    /// A record that is cut off or fails its checks, at `off`.
    Bad { off: u64, reason: String },
}

/// A window of a segment file, refilled as the scan advances.
pub(crate) struct SegmentReader {
    file: Rc<File>,
    /// Bytes of the file to consider (the file size, or the logical end for compaction).
    size: u64,
    win: Vec<u8>,
    /// File offset of `win[0]`; always 4 KiB aligned.
    win_off: u64,
    /// Offset of the next record.
    pos: u64,
}

impl SegmentReader {
    /// A reader over `[0, size)` of `file`, positioned at the first record.
    pub fn new(file: Rc<File>, size: u64) -> SegmentReader {
        SegmentReader { file, size, win: Vec::new(), win_off: 0, pos: SEGMENT_HEADER_LEN }
    }

    /// Makes `[off, off + len)` (clamped to `size`) available in the window; returns the
    /// number of bytes available from `off`.
    pub async fn fill(&mut self, off: u64, len: usize) -> io::Result<usize> {
        let want_end = (off + len as u64).min(self.size);
        let win_end = self.win_off + self.win.len() as u64;
        if off >= self.win_off && want_end <= win_end {
            return Ok((want_end.saturating_sub(off)) as usize);
        }
        let keep_from = off - off % ALIGN;
        if keep_from >= self.win_off && keep_from <= win_end {
            self.win.drain(..(keep_from - self.win_off) as usize);
        } else {
            self.win.clear();
        }
        self.win_off = keep_from;
        while self.win_off + (self.win.len() as u64) < want_end {
            let read_off = self.win_off + self.win.len() as u64;
            let need = (want_end - read_off) as usize;
            let n = need.max(CHUNK).div_ceil(ALIGN as usize) * ALIGN as usize;
            let r = self.file.read_at(read_off, n).await?;
            if r.is_empty() {
                break;
            }
            self.win.extend_from_slice(&r);
        }
        let end = (self.win_off + self.win.len() as u64).min(want_end);
        Ok(end.saturating_sub(off) as usize)
    }

    /// `len` bytes at `off`; they must have been made available by [`Self::fill`] or
    /// [`Self::next`] since the last refill.
    pub fn slice(&self, off: u64, len: usize) -> &[u8] {
        let at = (off - self.win_off) as usize;
        &self.win[at..at + len]
    }

    /// Reads and checks the record at the current position and advances past it. After
    /// `Step::Record`, the record's bytes are available through [`Self::slice`].
    pub async fn next(&mut self) -> io::Result<Step> {
        let off = self.pos;
        if off >= self.size {
            return Ok(Step::End { off });
        }
        // Make the header and then the whole record available (as far as the file
        // goes); `record::check_record` decides on those bytes alone.
        let mut got = self.fill(off, HEADER_LEN).await?;
        if got >= HEADER_LEN {
            if let Ok(Some(h)) = record::parse_header(self.slice(off, HEADER_LEN)) {
                got = self.fill(off, h.total_len()).await?;
            }
        }
        match record::check_record(self.slice(off, got)) {
            Checked::Record(header) => {
                self.pos = off + header.total_len() as u64;
                Ok(Step::Record { off, header })
            }
            Checked::End => Ok(Step::End { off }),
            Checked::Bad(reason) => Ok(Step::Bad { off, reason }),
        }
    }

    /// True when every byte in `[off, size)` is zero.
    pub async fn all_zero_from(&mut self, mut off: u64) -> io::Result<bool> {
        while off < self.size {
            let got = self.fill(off, CHUNK).await?;
            if got == 0 {
                return Ok(true);
            }
            if self.slice(off, got).iter().any(|&b| b != 0) {
                return Ok(false);
            }
            off += got as u64;
        }
        Ok(true)
    }

    /// Offset of the first valid record that starts after `off`, if any (error path only:
    /// reads the rest of the segment into memory).
    pub async fn find_valid_record_after(&mut self, off: u64) -> io::Result<Option<u64>> {
        let from = off + 1;
        if from >= self.size {
            return Ok(None);
        }
        let len = (self.size - from) as usize;
        let got = self.fill(from, len).await?;
        Ok(record::find_valid_record(self.slice(from, got)).map(|q| from + q as u64))
    }
}
