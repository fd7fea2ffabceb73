//! Recovery: replays every segment in id order to rebuild the keydir.
//!
//! The newest sequence number wins per key, whichever segment it is found in
//! (compaction copies records forward with their original sequence numbers, so a
//! newer segment can hold an older version). Deletes and clear-alls are remembered by
//! sequence number during the replay so that an older put found later cannot come back.
//! An append record (kind 6) extends the key's current value iff the key has one and
//! it is older (FORMAT.md "Appends" says why that is right, also with compaction's
//! copies); the key's chain remembers the newest piece's sequence number meanwhile.
//! A bad record at the tail of the newest segment (nothing valid after it) is a torn
//! write: the file is truncated there. Any other bad record is `Corrupt`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::chain::{Chains, Piece};
use crate::file::{File, Fs};
use crate::keydir::{Entry, Keydir};
use crate::util::io_err;
use crate::vlog::reader::{SegmentReader, Step};
use crate::vlog::record::{self, check_segment_header, segment_file_name, Header, OpKind, FORMAT_VERSION, SEGMENT_HEADER_LEN};
use crate::vlog::writer::Tail;
use crate::vlog::SegInfo;
use crate::{Ns, RecoveryReport, StorageError};

/// Everything the store needs from recovery.
pub(crate) struct Recovered {
    pub keydir: Keydir,
    pub segs: BTreeMap<u32, SegInfo>,
    /// The newest segment's tail; `None` when there is no segment yet.
    pub tail: Option<Tail>,
    pub next_seq: u64,
    pub report: RecoveryReport,
    /// The newest segment's id if it is of an older format version than the one
    /// written, else 0.
    pub old_version_active: u32,
    /// The pieces of keys extended by append records.
    pub chains: Chains,
}

/// Replay state.
struct Replay {
    keydir: Keydir,
    /// Values of at most this many bytes are kept in the keydir (`inline_value_max`).
    inline_max: usize,
    /// Per namespace: key → sequence number of its newest delete, for keys with no newer put.
    tombs: Vec<HashMap<Box<[u8]>, u64>>,
    /// Puts and deletes older than this are void (the newest clear-all seen).
    clear_seq: u64,
    max_seq: u64,
    /// Per namespace: key → (seq, expire_at) of the newest put with an expiry time seen;
    /// it holds the key's expiry time if that put is the winner at the end.
    ttls: Vec<HashMap<Box<[u8]>, SeqTime>>,
    /// Pieces of the keys' current values; a chain's `seq` is its newest piece's.
    chains: Chains,
}

/// (seq, expire_at) of a put with an expiry time.
type SeqTime = (u64, u64);

impl Replay {
    fn put(&mut self, ns: Ns, key: &[u8], entry: Entry, at: u64) {
        let seq = entry.seq;
        if seq < self.clear_seq {
            return;
        }
        let tombs = &mut self.tombs[ns as usize];
        if !tombs.is_empty() {
            if let Some(&t) = tombs.get(key) {
                if t > seq {
                    return;
                }
                tombs.remove(key);
            }
        }
        if self.current_seq(ns, key).is_some_and(|s| s > seq) {
            return;
        }
        self.keydir.insert(ns, key, entry);
        self.chains.remove(ns, key);
        if at != 0 {
            self.ttls[ns as usize].insert(key.into(), (seq, at));
        }
    }

    fn delete(&mut self, ns: Ns, key: &[u8], seq: u64) {
        if seq < self.clear_seq {
            return;
        }
        match self.current_seq(ns, key) {
            Some(s) if s > seq => return, // a newer put or append; it also shadows anything older
            Some(_) => {
                self.keydir.remove(ns, key);
                self.chains.remove(ns, key);
            }
            None => {}
        }
        let t = self.tombs[ns as usize].entry(key.into()).or_insert(seq);
        *t = (*t).max(seq);
    }

    fn clear_all(&mut self, seq: u64) {
        if seq <= self.clear_seq {
            return;
        }
        self.clear_seq = seq;
        for ns in 0..=Ns::MAX {
            self.keydir.retain(ns, &mut |_, e| e.seq > seq, &mut |_, _| {});
            self.tombs[ns as usize].retain(|_, t| *t > seq);
        }
        let keydir = &self.keydir;
        self.chains.retain(|ns, k, _| keydir.get(ns, k).is_some());
    }

    /// The sequence number of the key's current value: its newest piece's if it has
    /// pieces, else its put's. `None`: the key has no value.
    fn current_seq(&self, ns: Ns, key: &[u8]) -> Option<u64> {
        let e = self.keydir.get(ns, key)?;
        Some(self.chains.get(ns, key).map_or(e.seq, |c| c.seq))
    }

    /// An append record: extends the key's current value iff there is one and it is
    /// older than the record (FORMAT.md "Appends", Recovery).
    fn append(&mut self, ns: Ns, key: &[u8], seq: u64, piece: Piece) {
        if seq < self.clear_seq {
            return;
        }
        if self.current_seq(ns, key).is_some_and(|s| s < seq) {
            self.chains.push(ns, key, piece, seq);
        }
    }

    /// Applies one checked record of segment `seg` at `rec_off`; returns its tombstone bytes.
    fn record(&mut self, seg: u32, rec_off: u64, h: &Header, rec: &[u8]) -> u64 {
        self.max_seq = self.max_seq.max(h.seq);
        let mut tomb = 0;
        let seq = h.seq;
        record::visit(h, rec, |op| match op.kind {
            OpKind::Put => {
                let entry = Entry {
                    seq,
                    seg,
                    off: (rec_off + op.value_off as u64) as u32,
                    len: op.value.len() as u32,
                    foot: op.foot,
                    inline: None,
                }
                .with_value(op.value, self.inline_max);
                self.put(op.ns, op.key, entry, op.at);
            }
            OpKind::Delete => {
                tomb += op.foot as u64;
                self.delete(op.ns, op.key, seq);
            }
            OpKind::ClearAll => {
                tomb += op.foot as u64;
                self.clear_all(seq);
            }
            OpKind::Append => {
                let piece = Piece { seg, off: (rec_off + op.value_off as u64) as u32, len: op.value.len() as u32, foot: op.foot };
                self.append(op.ns, op.key, seq, piece);
            }
        })
        .expect("the reader checked the record");
        tomb
    }
}

/// Segment ids found in `vlog_dir`, ascending (startup only: a blocking directory read).
fn list_segments(vlog_dir: &Path) -> Result<Vec<u32>, StorageError> {
    let op = || format!("list vlog directory {}", vlog_dir.display());
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(vlog_dir).map_err(io_err(op()))? {
        let entry = entry.map_err(io_err(op()))?;
        if let Some(id) = entry.file_name().to_str().and_then(record::parse_segment_file_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Replays every segment in `vlog_dir`.
pub(crate) async fn recover(vlog_dir: &Path, fs: &Fs, inline_max: usize) -> Result<Recovered, StorageError> {
    let ids = list_segments(vlog_dir)?;
    let mut replay = Replay {
        keydir: Keydir::for_replay(),
        inline_max,
        tombs: (0..=Ns::MAX as usize).map(|_| HashMap::new()).collect(),
        clear_seq: 0,
        max_seq: 0,
        ttls: (0..=Ns::MAX as usize).map(|_| HashMap::new()).collect(),
        chains: Chains::default(),
    };
    let mut old_version_active = 0;
    let mut segs = BTreeMap::new();
    let mut report = RecoveryReport::default();
    let mut tail = None;
    for (i, &id) in ids.iter().enumerate() {
        let newest = i + 1 == ids.len();
        let path = vlog_dir.join(segment_file_name(id));
        let name = path.display().to_string();
        let file = fs.open(&path, newest).await.map_err(io_err(format!("open vlog segment {name}")))?;
        let file = Rc::new(file);
        let size = file.size().await.map_err(io_err(format!("stat vlog segment {name}")))?;
        let read_op = || format!("read vlog segment {name}");
        if size > u32::MAX as u64 {
            return Err(StorageError::Corrupt { file: name, offset: u32::MAX as u64, reason: "segment is larger than 4 GiB".into() });
        }
        let mut reader = SegmentReader::new(file.clone(), size);
        let corrupt = |offset: u64, reason: String| StorageError::Corrupt { file: name.clone(), offset, reason };

        // The header block.
        let got = reader.fill(0, SEGMENT_HEADER_LEN as usize).await.map_err(io_err(read_op()))?;
        let header_check = if (got as u64) < SEGMENT_HEADER_LEN {
            Err(format!("segment header block is cut off ({got} of {SEGMENT_HEADER_LEN} bytes)"))
        } else {
            check_segment_header(reader.slice(0, got), id)
        };
        if newest && header_check.as_ref().is_ok_and(|&v| v < FORMAT_VERSION) {
            old_version_active = id;
        }
        let header_check = header_check.map(|_| ());
        if let Err(reason) = header_check {
            let later = reader.find_valid_record_after(SEGMENT_HEADER_LEN - 1).await.map_err(io_err(read_op()))?;
            if !newest || later.is_some() {
                return Err(corrupt(0, reason));
            }
            // A segment whose first write was torn: nothing in it was acknowledged.
            tracing::warn!("vlog segment {name}: {reason} in the newest segment (torn first write); reinitializing it");
            rewrite_header(&file, id, &name).await?;
            report.truncated_tail = Some((name.clone(), 0));
            segs.insert(id, SegInfo::new(Some(file), SEGMENT_HEADER_LEN));
            tail = Some(Tail { seg: id, base: SEGMENT_HEADER_LEN, buf: Vec::new(), written: SEGMENT_HEADER_LEN, created: true, sealed: false });
            continue;
        }

        // The records.
        let mut tomb = 0;
        let (end, torn) = loop {
            match reader.next().await.map_err(io_err(read_op()))? {
                Step::Record { off, header } => {
                    report.records += 1;
                    let rec = reader.slice(off, header.total_len());
                    tomb += replay.record(id, off, &header, rec);
                }
                Step::End { off } => {
                    if reader.all_zero_from(off).await.map_err(io_err(read_op()))? {
                        break (off, None);
                    }
                    let reason = "non-zero bytes after the end of the data (an all-zero record header)".to_string();
                    if !newest {
                        return Err(corrupt(off, reason));
                    }
                    if let Some(q) = reader.find_valid_record_after(off).await.map_err(io_err(read_op()))? {
                        return Err(corrupt(off, format!("{reason}; a valid record follows at offset {q}, so this is not a torn tail")));
                    }
                    break (off, Some(reason));
                }
                Step::Bad { off, reason } => {
                    if !newest {
                        return Err(corrupt(off, reason));
                    }
                    if let Some(q) = reader.find_valid_record_after(off).await.map_err(io_err(read_op()))? {
                        return Err(corrupt(off, format!("{reason}; a valid record follows at offset {q}, so this is not a torn tail")));
                    }
                    break (off, Some(reason));
                }
            }
        };
        if let Some(reason) = torn {
            tracing::warn!("vlog segment {name}: torn write at offset {end} ({reason}); truncating the file there");
            file.truncate(end).await.map_err(io_err(format!("truncate torn tail of vlog segment {name} to {end} bytes")))?;
            file.fdatasync().await.map_err(io_err(format!("fdatasync vlog segment {name}")))?;
            report.truncated_tail = Some((name.clone(), end));
        }
        if newest {
            let base = end - end % 4096;
            let got = reader.fill(base, (end - base) as usize).await.map_err(io_err(read_op()))?;
            let buf = reader.slice(base, got).to_vec();
            tail = Some(Tail { seg: id, base, buf, written: end, created: true, sealed: false });
        }
        let mut info = SegInfo::new(Some(file), end);
        info.tomb = tomb;
        segs.insert(id, info);
    }
    let mut keydir = replay.keydir;
    // Expiry times: those of the winning puts (the keys found expired are removed by
    // `Store::open`, with tombstones). Before `end_replay`, which drops the entries'
    // sequence numbers.
    for (ns, ttls) in replay.ttls.into_iter().enumerate() {
        for (key, (seq, at)) in ttls {
            if keydir.get(ns as Ns, &key).is_some_and(|e| e.seq == seq) {
                keydir.set_expire_at(ns as Ns, &key, at);
            }
        }
    }
    keydir.end_replay();
    keydir.for_each_all(&mut |_, _, e| {
        if let Some(s) = segs.get_mut(&e.seg) {
            s.live += e.foot as u64;
        }
    });
    let mut chains = replay.chains;
    chains.for_each(|_, _, c| {
        for p in &c.pieces {
            if let Some(s) = segs.get_mut(&p.seg) {
                s.live += p.foot as u64;
            }
        }
    });
    // Sequence numbers are not kept once the replay is done (as in the keydir).
    chains.forget_seqs();
    report.segments = segs.len();
    report.live_keys = (0..=Ns::MAX).map(|ns| keydir.len(ns)).sum();
    Ok(Recovered { keydir, segs, tail, next_seq: replay.max_seq + 1, report, old_version_active, chains })
}

/// Truncates a segment to nothing and writes its header block again, durably.
async fn rewrite_header(file: &File, id: u32, name: &str) -> Result<(), StorageError> {
    file.truncate(0).await.map_err(io_err(format!("truncate vlog segment {name} to 0 bytes")))?;
    let header = record::segment_header(id);
    let mut buf = file.alloc_dma_buffer(header.len());
    buf.as_bytes_mut().copy_from_slice(&header);
    let op = || format!("write header of vlog segment {name}");
    let n = file.write_at(buf, 0).await.map_err(io_err(op()))?;
    if n != header.len() {
        let source = std::io::Error::new(std::io::ErrorKind::WriteZero, format!("short write: {n} of {} bytes", header.len()));
        return Err(StorageError::Io { op: op(), source });
    }
    file.fdatasync().await.map_err(io_err(format!("fdatasync vlog segment {name}")))?;
    Ok(())
}
