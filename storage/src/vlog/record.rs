//! Record and segment-header encoding and decoding. Pure: bytes in, bytes out, no I/O.
//! The byte layout is specified in `storage/FORMAT.md` (the only copy of it); the
//! constants here must match that document.

use crate::Ns;

/// Bytes of the fixed record header.
pub(crate) const HEADER_LEN: usize = 28;
/// Bytes of the header of one entry inside a batch record's body.
pub(crate) const ENTRY_HEADER_LEN: usize = 10;
/// Largest record body accepted by the writer and by recovery, bytes.
pub(crate) const MAX_BODY: usize = 1 << 30;
/// Bytes of the segment header block at offset 0 of every segment file.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 4096;
/// Segment magic, ASCII.
pub(crate) const MAGIC: [u8; 8] = *b"KEELVLOG";
/// Format version written to segment headers (FORMAT.md "Version changes").
pub(crate) const FORMAT_VERSION: u32 = 3;
/// Oldest format version still read: version 1 segments have no kind 5 or 6 records,
/// version 2 segments no kind 6 records; they are otherwise identical.
pub(crate) const OLDEST_READ_VERSION: u32 = 1;

const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_BATCH: u8 = 3;
const KIND_CLEAR_ALL: u8 = 4;
/// Format version 2: a put with an expiry time (`expire_at`, unix epoch milliseconds,
/// `u64`, never 0) stored in the 8 bytes before the key.
const KIND_PUT_EXPIRING: u8 = 5;
/// Format version 3: an append (key, then the bytes appended to the key's value).
const KIND_APPEND: u8 = 6;
/// Bytes of a kind-5 record's or batch entry's `expire_at`.
pub(crate) const EXPIRE_AT_LEN: usize = 8;

/// One mutation to encode.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op<'a> {
    Put { ns: Ns, key: &'a [u8], value: &'a [u8] },
    /// A put whose key expires at `at` (unix epoch ms, > 0): kind 5.
    PutExpiring { ns: Ns, key: &'a [u8], value: &'a [u8], at: u64 },
    Delete { ns: Ns, key: &'a [u8] },
}

impl<'a> Op<'a> {
    /// A put with expiry time `at` (unix epoch ms; 0: none, a plain put).
    pub fn put(ns: Ns, key: &'a [u8], value: &'a [u8], at: u64) -> Op<'a> {
        if at == 0 {
            Op::Put { ns, key, value }
        } else {
            Op::PutExpiring { ns, key, value, at }
        }
    }
}

/// What one decoded operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Put,
    Delete,
    ClearAll,
    /// Bytes appended to the key's value (kind 6; `value` holds them).
    Append,
}

/// One operation found in a record, borrowing the record's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecOp<'a> {
    pub kind: OpKind,
    pub ns: Ns,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Offset of the value's first byte, relative to the record start.
    pub value_off: usize,
    /// Bytes of the segment this operation accounts for (see FORMAT.md "Accounting").
    pub foot: u32,
    /// A put's expiry time, unix epoch ms (0: none; always 0 for other kinds).
    pub at: u64,
}

/// A decoded, plausibility-checked record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub crc: u32,
    pub body_len: u32,
    kind: u8,
    pub ns: Ns,
    pub seq: u64,
    pub key_len: u32,
    pub value_len: u32,
}

impl Header {
    /// Header plus body, bytes.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.body_len as usize
    }

    /// The record kind byte (1 put, 2 delete, 3 batch, 4 clear-all, 5 put with expiry,
    /// 6 append).
    #[cfg(feature = "fuzzing")]
    pub fn kind(&self) -> u8 {
        self.kind
    }
}

/// Encoded size of a record holding `ops` (one op: a put/delete record; more: a batch).
pub(crate) fn encoded_len(ops: &[Op<'_>]) -> usize {
    match ops {
        [Op::Put { key, value, .. }] => HEADER_LEN + key.len() + value.len(),
        [Op::PutExpiring { key, value, .. }] => HEADER_LEN + EXPIRE_AT_LEN + key.len() + value.len(),
        [Op::Delete { key, .. }] => HEADER_LEN + key.len(),
        _ => HEADER_LEN + 4 + ops.iter().map(entry_len).sum::<usize>(),
    }
}

fn entry_len(op: &Op<'_>) -> usize {
    match op {
        Op::Put { key, value, .. } => ENTRY_HEADER_LEN + key.len() + value.len(),
        Op::PutExpiring { key, value, .. } => ENTRY_HEADER_LEN + EXPIRE_AT_LEN + key.len() + value.len(),
        Op::Delete { key, .. } => ENTRY_HEADER_LEN + key.len(),
    }
}

/// Appends the record for `ops` (non-empty) with sequence number `seq` to `out`, and
/// calls `placed(i, value_off, foot)` for each op with its value offset relative to the
/// record start and its accounted bytes. Callers check [`encoded_len`] ≤ `HEADER_LEN +
/// MAX_BODY` first.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, ops: &[Op<'_>], mut placed: impl FnMut(usize, usize, u32)) {
    debug_assert!(!ops.is_empty());
    let start = out.len();
    let total = encoded_len(ops);
    out.reserve(total);
    match ops {
        [Op::Put { ns, key, value }] => {
            push_header(out, KIND_PUT, *ns, seq, total - HEADER_LEN, key.len(), value.len());
            out.extend_from_slice(key);
            out.extend_from_slice(value);
            placed(0, HEADER_LEN + key.len(), total as u32);
        }
        [Op::PutExpiring { ns, key, value, at }] => {
            push_header(out, KIND_PUT_EXPIRING, *ns, seq, total - HEADER_LEN, key.len(), value.len());
            out.extend_from_slice(&at.to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(value);
            placed(0, HEADER_LEN + EXPIRE_AT_LEN + key.len(), total as u32);
        }
        [Op::Delete { ns, key }] => {
            push_header(out, KIND_DELETE, *ns, seq, key.len(), key.len(), 0);
            out.extend_from_slice(key);
            placed(0, total, total as u32);
        }
        _ => {
            push_header(out, KIND_BATCH, 0, seq, total - HEADER_LEN, 0, 0);
            out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
            for (i, op) in ops.iter().enumerate() {
                let entry_start = out.len() - start;
                let (kind, ns, key, value, at): (u8, Ns, &[u8], &[u8], u64) = match op {
                    Op::Put { ns, key, value } => (KIND_PUT, *ns, key, value, 0),
                    Op::PutExpiring { ns, key, value, at } => (KIND_PUT_EXPIRING, *ns, key, value, *at),
                    Op::Delete { ns, key } => (KIND_DELETE, *ns, key, &[], 0),
                };
                out.push(kind);
                out.push(ns);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                let at_len = if kind == KIND_PUT_EXPIRING {
                    out.extend_from_slice(&at.to_le_bytes());
                    EXPIRE_AT_LEN
                } else {
                    0
                };
                out.extend_from_slice(key);
                out.extend_from_slice(value);
                placed(i, entry_start + ENTRY_HEADER_LEN + at_len + key.len(), entry_len(op) as u32);
            }
        }
    }
    seal(&mut out[start..]);
    debug_assert_eq!(out.len() - start, total);
}

/// Encoded size of an append record (kind 6) of `key` and `tail`.
pub(crate) fn append_len(key: &[u8], tail: &[u8]) -> usize {
    HEADER_LEN + key.len() + tail.len()
}

/// Appends an append record (kind 6: `tail` is appended to the value of `key` in `ns`)
/// with sequence number `seq` to `out`; returns the offset of `tail`'s first byte
/// relative to the record start, and the record's length (its accounted bytes).
/// Callers check [`append_len`] ≤ `HEADER_LEN + MAX_BODY` first.
pub(crate) fn encode_append(out: &mut Vec<u8>, seq: u64, ns: Ns, key: &[u8], tail: &[u8]) -> (usize, u32) {
    let start = out.len();
    let total = append_len(key, tail);
    out.reserve(total);
    push_header(out, KIND_APPEND, ns, seq, total - HEADER_LEN, key.len(), tail.len());
    out.extend_from_slice(key);
    out.extend_from_slice(tail);
    seal(&mut out[start..]);
    (HEADER_LEN + key.len(), total as u32)
}

/// Appends a clear-all record with sequence number `seq`; returns its length.
pub(crate) fn encode_clear_all(out: &mut Vec<u8>, seq: u64) -> usize {
    let start = out.len();
    push_header(out, KIND_CLEAR_ALL, 0, seq, 0, 0, 0);
    seal(&mut out[start..]);
    HEADER_LEN
}

fn push_header(out: &mut Vec<u8>, kind: u8, ns: Ns, seq: u64, body_len: usize, key_len: usize, value_len: usize) {
    out.extend_from_slice(&[0; 4]); // CRC, filled by `seal`
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.push(kind);
    out.push(ns);
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(key_len as u32).to_le_bytes());
    out.extend_from_slice(&(value_len as u32).to_le_bytes());
}

fn seal(record: &mut [u8]) {
    let crc = crc32c::crc32c(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the record header in `b` (at least [`HEADER_LEN`] bytes). `Ok(None)`: the
/// header is all zero, i.e. the end of the data (zero padding). `Err(reason)`: not a
/// plausible header.
pub(crate) fn parse_header(b: &[u8]) -> Result<Option<Header>, &'static str> {
    let b = &b[..HEADER_LEN];
    if b.iter().all(|&x| x == 0) {
        return Ok(None);
    }
    let h = Header {
        crc: u32_at(b, 0),
        body_len: u32_at(b, 4),
        kind: b[8],
        ns: b[9],
        seq: u64::from_le_bytes(b[12..20].try_into().expect("8 bytes")),
        key_len: u32_at(b, 20),
        value_len: u32_at(b, 24),
    };
    if b[10] != 0 || b[11] != 0 {
        return Err("reserved header bytes are not zero");
    }
    if h.body_len as usize > MAX_BODY {
        return Err("body length exceeds the 1 GiB limit");
    }
    let (body, key, value) = (h.body_len as u64, h.key_len as u64, h.value_len as u64);
    let consistent = match h.kind {
        KIND_PUT | KIND_APPEND => body == key + value,
        KIND_PUT_EXPIRING => body == EXPIRE_AT_LEN as u64 + key + value,
        KIND_DELETE => value == 0 && body == key,
        KIND_BATCH => h.ns == 0 && key == 0 && value == 0 && body >= 4,
        KIND_CLEAR_ALL => h.ns == 0 && key == 0 && value == 0 && body == 0,
        _ => return Err("unknown record kind"),
    };
    if !consistent {
        return Err("header lengths are inconsistent with the record kind");
    }
    Ok(Some(h))
}

/// True when the CRC in `record` (header and body, exactly `h.total_len()` bytes) matches.
pub(crate) fn crc_ok(h: &Header, record: &[u8]) -> bool {
    crc32c::crc32c(&record[4..]) == h.crc
}

/// Validates the whole record (`h.total_len()` bytes, CRC already checked) and then
/// calls `f` for each operation in order. Nothing is passed to `f` unless the whole
/// record is well-formed, so a batch is visited all-or-nothing.
pub(crate) fn visit<'a>(h: &Header, record: &'a [u8], mut f: impl FnMut(RecOp<'a>)) -> Result<(), String> {
    let total = h.total_len();
    let key_end = HEADER_LEN + h.key_len as usize;
    // A put or an append: the key then the value (or the appended bytes).
    let plain = |kind| RecOp {
        kind,
        ns: h.ns,
        key: &record[HEADER_LEN..key_end],
        value: &record[key_end..total],
        value_off: key_end,
        foot: total as u32,
        at: 0,
    };
    match h.kind {
        KIND_PUT => f(plain(OpKind::Put)),
        KIND_PUT_EXPIRING => {
            let key_start = HEADER_LEN + EXPIRE_AT_LEN;
            let key_end = key_start + h.key_len as usize;
            let at = u64_at(record, HEADER_LEN);
            if at == 0 {
                return Err("a put with expiry has expire_at 0".into());
            }
            f(RecOp { kind: OpKind::Put, ns: h.ns, key: &record[key_start..key_end], value: &record[key_end..total], value_off: key_end, foot: total as u32, at })
        }
        KIND_APPEND => f(plain(OpKind::Append)),
        KIND_DELETE => f(RecOp {
            kind: OpKind::Delete,
            ns: h.ns,
            key: &record[HEADER_LEN..key_end],
            value: &[],
            value_off: key_end,
            foot: total as u32,
            at: 0,
        }),
        KIND_CLEAR_ALL => f(RecOp {
            kind: OpKind::ClearAll,
            ns: 0,
            key: &[],
            value: &[],
            value_off: HEADER_LEN,
            foot: total as u32,
            at: 0,
        }),
        KIND_BATCH => {
            let count = u32_at(record, HEADER_LEN) as usize;
            // Pass 1: validate every entry.
            let mut at = HEADER_LEN + 4;
            for i in 0..count {
                if total - at < ENTRY_HEADER_LEN {
                    return Err(format!("batch entry {i} of {count} is cut off"));
                }
                let kind = record[at];
                let (key_len, value_len) = (u32_at(record, at + 2) as usize, u32_at(record, at + 6) as usize);
                let ok_kind = kind == KIND_PUT || kind == KIND_PUT_EXPIRING || (kind == KIND_DELETE && value_len == 0);
                if !ok_kind {
                    return Err(format!("batch entry {i} has bad kind {kind} or a delete with a value"));
                }
                let at_len = if kind == KIND_PUT_EXPIRING { EXPIRE_AT_LEN as u64 } else { 0 };
                let len = ENTRY_HEADER_LEN as u64 + at_len + key_len as u64 + value_len as u64;
                if len > (total - at) as u64 {
                    return Err(format!("batch entry {i} of {count} overruns the record"));
                }
                if at_len > 0 && u64_at(record, at + ENTRY_HEADER_LEN) == 0 {
                    return Err(format!("batch entry {i} is a put with expiry whose expire_at is 0"));
                }
                at += len as usize;
            }
            if at != total {
                return Err(format!("{} trailing bytes after the last batch entry", total - at));
            }
            // Pass 2: visit.
            let mut at = HEADER_LEN + 4;
            for _ in 0..count {
                let (kind, ns) = (record[at], record[at + 1]);
                let (key_len, value_len) = (u32_at(record, at + 2) as usize, u32_at(record, at + 6) as usize);
                let at_len = if kind == KIND_PUT_EXPIRING { EXPIRE_AT_LEN } else { 0 };
                let expire_at = if at_len > 0 { u64_at(record, at + ENTRY_HEADER_LEN) } else { 0 };
                let key_start = at + ENTRY_HEADER_LEN + at_len;
                let value_off = key_start + key_len;
                let len = ENTRY_HEADER_LEN + at_len + key_len + value_len;
                f(RecOp {
                    kind: if kind == KIND_DELETE { OpKind::Delete } else { OpKind::Put },
                    ns,
                    key: &record[key_start..value_off],
                    value: &record[value_off..value_off + value_len],
                    value_off,
                    foot: len as u32,
                    at: expire_at,
                });
                at += len;
            }
        }
        _ => unreachable!("parse_header rejects unknown kinds"),
    }
    Ok(())
}

/// What the bytes at a record position hold: recovery's whole check of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// A complete record with a good CRC and a well-formed body (`header.total_len()`
    /// bytes from the start).
    Record(Header),
    /// End of data: no bytes, an all-zero header, or fewer than [`HEADER_LEN`] bytes
    /// all zero.
    End,
    /// A record that is cut off or fails its checks; the text says how.
    Bad(String),
}

/// Checks the record at the start of `b`, which holds the bytes from the record's
/// offset to the end of the data considered (at least the record's `total_len()`
/// bytes when they exist). Pure; [`reader::SegmentReader::next`](super::reader) and
/// [`find_valid_record`] both decide through it, and the fuzz target `vlog_record`
/// calls it with arbitrary bytes.
pub(crate) fn check_record(b: &[u8]) -> Checked {
    if b.len() < HEADER_LEN {
        if b.iter().all(|&x| x == 0) {
            return Checked::End;
        }
        return Checked::Bad(format!("short record: {} bytes left, a header needs {HEADER_LEN}", b.len()));
    }
    let header = match parse_header(b) {
        Ok(None) => return Checked::End,
        Ok(Some(h)) => h,
        Err(reason) => return Checked::Bad(reason.to_string()),
    };
    let total = header.total_len();
    if b.len() < total {
        return Checked::Bad(format!("short record: {total} bytes long, {} bytes left in the file", b.len()));
    }
    let rec = &b[..total];
    if !crc_ok(&header, rec) {
        return Checked::Bad("CRC mismatch".into());
    }
    if let Err(reason) = visit(&header, rec, |_| {}) {
        return Checked::Bad(reason);
    }
    Checked::Record(header)
}

/// Offset of the first complete, CRC-valid record starting anywhere in `data`, if any.
/// Used by recovery to tell a torn tail (nothing valid follows) from corruption.
pub(crate) fn find_valid_record(data: &[u8]) -> Option<usize> {
    let mut q = 0;
    while q + HEADER_LEN <= data.len() {
        if matches!(check_record(&data[q..]), Checked::Record(_)) {
            return Some(q);
        }
        q += 1;
    }
    None
}

/// The 4096-byte segment header block for segment `id` (current format version).
pub(crate) fn segment_header(id: u32) -> Vec<u8> {
    segment_header_of_version(id, FORMAT_VERSION)
}

/// The segment header block of format `version` (tests write version 1 segments).
pub(crate) fn segment_header_of_version(id: u32, version: u32) -> Vec<u8> {
    let mut b = vec![0u8; SEGMENT_HEADER_LEN as usize];
    b[..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&version.to_le_bytes());
    b[12..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Checks a segment header block (at least 20 bytes) against the expected id; returns
/// its format version (1 or 2).
pub(crate) fn check_segment_header(b: &[u8], id: u32) -> Result<u32, String> {
    if b.len() < 20 {
        return Err("segment header is cut off".into());
    }
    if b[..8] != MAGIC {
        return Err("bad segment magic".into());
    }
    if crc32c::crc32c(&b[..16]) != u32_at(b, 16) {
        return Err("segment header CRC mismatch".into());
    }
    let version = u32_at(b, 8);
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(format!("unsupported vlog format version {version} (this build reads {OLDEST_READ_VERSION} to {FORMAT_VERSION})"));
    }
    let found = u32_at(b, 12);
    if found != id {
        return Err(format!("segment header names segment {found}, file name says {id}"));
    }
    Ok(version)
}

/// `00000042.vlog` for segment 42.
pub(crate) fn segment_file_name(id: u32) -> String {
    format!("{id:08}.vlog")
}

/// The segment id of a segment file name, if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".vlog")?;
    if digits.len() != 8 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, ns, key, value, value offset, accounted bytes) of each op.
    type Decoded = (OpKind, Ns, Vec<u8>, Vec<u8>, usize, u32);

    fn decode(rec: &[u8]) -> Vec<Decoded> {
        let h = parse_header(rec).unwrap().unwrap();
        assert_eq!(h.total_len(), rec.len());
        assert!(crc_ok(&h, rec));
        let mut v = Vec::new();
        visit(&h, rec, |op| v.push((op.kind, op.ns, op.key.to_vec(), op.value.to_vec(), op.value_off, op.foot))).unwrap();
        v
    }

    #[test]
    fn put_round_trip() {
        let mut out = vec![9u8; 3]; // records are appended after existing bytes
        let mut placed = vec![];
        encode(&mut out, 7, &[Op::Put { ns: 2, key: b"key", value: b"value" }], |i, off, foot| placed.push((i, off, foot)));
        let rec = &out[3..];
        assert_eq!(rec.len(), HEADER_LEN + 8);
        assert_eq!(placed, vec![(0, HEADER_LEN + 3, 36)]);
        assert_eq!(&rec[placed[0].1..], b"value");
        assert_eq!(decode(rec), vec![(OpKind::Put, 2, b"key".to_vec(), b"value".to_vec(), HEADER_LEN + 3, 36)]);
        assert_eq!(parse_header(rec).unwrap().unwrap().seq, 7);
    }

    #[test]
    fn append_round_trip() {
        let mut out = vec![9u8; 3];
        let (off, foot) = encode_append(&mut out, 8, 0, b"key", b"tail");
        let rec = &out[3..];
        assert_eq!((rec.len(), off, foot), (HEADER_LEN + 7, HEADER_LEN + 3, 35));
        assert_eq!(rec.len(), append_len(b"key", b"tail"));
        assert_eq!(rec[8], KIND_APPEND);
        assert_eq!(check_record(rec), Checked::Record(parse_header(rec).unwrap().unwrap()));
        assert_eq!(decode(rec), vec![(OpKind::Append, 0, b"key".to_vec(), b"tail".to_vec(), HEADER_LEN + 3, 35)]);
        // Lengths that do not add up are rejected.
        let mut bad = rec.to_vec();
        bad[24] = 5; // value_len 5, body_len still 7
        assert!(matches!(check_record(&bad), Checked::Bad(_)));
        // Not allowed inside a batch.
        let mut out = vec![];
        encode(&mut out, 1, &[Op::Put { ns: 0, key: b"a", value: b"1" }, Op::Put { ns: 0, key: b"b", value: b"2" }], |_, _, _| {});
        out[HEADER_LEN + 4] = KIND_APPEND;
        let crc = crc32c::crc32c(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(check_record(&out), Checked::Bad(r) if r.contains("bad kind 6")));
    }

    #[test]
    fn batch_round_trip_and_placement() {
        let ops = [Op::Put { ns: 0, key: b"a", value: b"1" }, Op::Delete { ns: 1, key: b"bb" }, Op::Put { ns: 0, key: b"c", value: b"" }];
        let mut out = vec![];
        let mut placed = vec![];
        encode(&mut out, 1, &ops, |i, off, foot| placed.push((i, off, foot)));
        assert_eq!(out.len(), encoded_len(&ops));
        let d = decode(&out);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1], (OpKind::Delete, 1, b"bb".to_vec(), vec![], placed[1].1, 12));
        for (i, op) in d.iter().enumerate() {
            assert_eq!((op.4, op.5), (placed[i].1, placed[i].2));
        }
        assert_eq!(&out[placed[0].1..placed[0].1 + 1], b"1");
    }

    #[test]
    fn zero_header_is_end_and_garbage_is_rejected() {
        assert_eq!(parse_header(&[0; HEADER_LEN]), Ok(None));
        let mut out = vec![];
        encode_clear_all(&mut out, 3);
        assert_eq!(decode(&out)[0].0, OpKind::ClearAll);
        let mut bad = out.clone();
        bad[8] = 99;
        assert!(parse_header(&bad).is_err());
        let mut flipped = out.clone();
        flipped[15] ^= 1;
        let h = parse_header(&flipped).unwrap().unwrap();
        assert!(!crc_ok(&h, &flipped));
    }

    #[test]
    fn malformed_batch_is_rejected_before_any_visit() {
        let ops = [Op::Put { ns: 0, key: b"a", value: b"1" }, Op::Put { ns: 0, key: b"b", value: b"2" }];
        let mut out = vec![];
        encode(&mut out, 1, &ops, |_, _, _| {});
        // Claim three entries, then re-seal so the CRC is valid.
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&3u32.to_le_bytes());
        seal(&mut out);
        let h = parse_header(&out).unwrap().unwrap();
        let mut seen = 0;
        assert!(visit(&h, &out, |_| seen += 1).is_err());
        assert_eq!(seen, 0);
    }

    #[test]
    fn check_record_decides_end_bad_or_record() {
        let mut rec = vec![];
        encode(&mut rec, 9, &[Op::Put { ns: 0, key: b"k", value: b"v" }], |_, _, _| {});
        let h = parse_header(&rec).unwrap().unwrap();
        assert_eq!(check_record(&rec), Checked::Record(h));
        let mut longer = rec.clone();
        longer.extend_from_slice(b"next record");
        assert_eq!(check_record(&longer), Checked::Record(h));
        assert_eq!(check_record(&[]), Checked::End);
        assert_eq!(check_record(&[0; 5]), Checked::End);
        assert_eq!(check_record(&[0; HEADER_LEN + 3]), Checked::End);
        assert_eq!(check_record(&[0, 1, 0]), Checked::Bad(format!("short record: 3 bytes left, a header needs {HEADER_LEN}")));
        assert_eq!(check_record(&rec[..rec.len() - 1]), Checked::Bad(format!("short record: {} bytes long, {} bytes left in the file", rec.len(), rec.len() - 1)));
        let mut flipped = rec.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(check_record(&flipped), Checked::Bad("CRC mismatch".into()));
    }

    #[test]
    fn find_valid_record_skips_garbage() {
        let mut data = vec![0x5a; 37];
        let at = data.len();
        encode(&mut data, 5, &[Op::Delete { ns: 0, key: b"k" }], |_, _, _| {});
        assert_eq!(find_valid_record(&data), Some(at));
        assert_eq!(find_valid_record(&data[..data.len() - 1]), None);
    }

    #[test]
    fn put_with_expiry_round_trip() {
        let at = 0x0102_0304_0506_0708u64;
        let mut out = vec![];
        let mut placed = vec![];
        encode(&mut out, 7, &[Op::put(0, b"key", b"value", at)], |i, off, foot| placed.push((i, off, foot)));
        assert_eq!(out.len(), HEADER_LEN + 8 + 8);
        assert_eq!(out[8], KIND_PUT_EXPIRING);
        assert_eq!(&out[HEADER_LEN..HEADER_LEN + 8], &at.to_le_bytes(), "expire_at right after the header");
        assert_eq!(&out[HEADER_LEN + 8..HEADER_LEN + 11], b"key");
        assert_eq!(placed, vec![(0, HEADER_LEN + 11, 44)]);
        let h = parse_header(&out).unwrap().unwrap();
        assert_eq!((h.body_len, h.key_len, h.value_len), (16, 3, 5));
        let mut seen = vec![];
        visit(&h, &out, |op| seen.push((op.kind, op.key.to_vec(), op.value.to_vec(), op.value_off, op.foot, op.at))).unwrap();
        assert_eq!(seen, vec![(OpKind::Put, b"key".to_vec(), b"value".to_vec(), HEADER_LEN + 11, 44, at)]);
        // Op::put with time 0 is a plain put.
        let mut plain = vec![];
        encode(&mut plain, 7, &[Op::put(0, b"key", b"value", 0)], |_, _, _| {});
        assert_eq!(plain[8], KIND_PUT);
        // expire_at 0 in a kind 5 record is rejected.
        out[HEADER_LEN..HEADER_LEN + 8].fill(0);
        seal(&mut out);
        assert_eq!(check_record(&out), Checked::Bad("a put with expiry has expire_at 0".into()));
    }

    #[test]
    fn batch_entries_with_expiry() {
        let ops = [Op::put(0, b"a", b"1", 5), Op::Put { ns: 1, key: b"b", value: b"22" }, Op::Delete { ns: 0, key: b"c" }, Op::put(2, b"", b"", 9)];
        let mut out = vec![];
        let mut placed = vec![];
        encode(&mut out, 3, &ops, |i, off, foot| placed.push((i, off, foot)));
        assert_eq!(out.len(), encoded_len(&ops));
        // First entry: 10-byte entry header, then expire_at, key, value.
        let e0 = HEADER_LEN + 4;
        assert_eq!(out[e0], KIND_PUT_EXPIRING);
        assert_eq!(&out[e0 + 10..e0 + 18], &5u64.to_le_bytes());
        assert_eq!(placed[0], (0, e0 + 19, 20));
        let h = parse_header(&out).unwrap().unwrap();
        let mut seen = vec![];
        visit(&h, &out, |op| seen.push((op.kind, op.ns, op.key.to_vec(), op.value.to_vec(), op.value_off, op.foot, op.at))).unwrap();
        assert_eq!(seen.iter().map(|s| s.6).collect::<Vec<_>>(), vec![5, 0, 0, 9]);
        for (i, s) in seen.iter().enumerate() {
            assert_eq!((s.4, s.5), (placed[i].1, placed[i].2));
        }
        assert_eq!(seen[0].3, b"1");
        // An entry whose expire_at is 0 fails the whole batch.
        out[e0 + 10..e0 + 18].fill(0);
        seal(&mut out);
        let h = parse_header(&out).unwrap().unwrap();
        assert!(visit(&h, &out, |_| {}).is_err());
    }

    #[test]
    fn versions_1_to_3_are_read() {
        check_segment_header(&segment_header_of_version(5, 1), 5).unwrap();
        assert_eq!(check_segment_header(&segment_header(5), 5), Ok(3));
        assert_eq!(check_segment_header(&segment_header_of_version(5, 1), 5), Ok(1));
        assert_eq!(check_segment_header(&segment_header_of_version(5, 2), 5), Ok(2));
        assert_eq!(check_segment_header(&segment_header_of_version(5, 4), 5), Err("unsupported vlog format version 4 (this build reads 1 to 3)".to_string()));
        assert!(check_segment_header(&segment_header_of_version(5, 0), 5).is_err());
    }

    #[test]
    fn segment_header_and_names() {
        let h = segment_header(42);
        assert_eq!(h.len(), 4096);
        check_segment_header(&h, 42).unwrap();
        assert!(check_segment_header(&h, 43).is_err());
        assert_eq!(segment_file_name(42), "00000042.vlog");
        assert_eq!(parse_segment_file_name("00000042.vlog"), Some(42));
        assert_eq!(parse_segment_file_name("42.vlog"), None);
        assert_eq!(parse_segment_file_name("0000004x.vlog"), None);
    }
}
