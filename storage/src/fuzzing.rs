//! The vLog record codec for the fuzz target `storage/fuzz` (`vlog_record`), behind the
//! cargo feature `fuzzing` (off by default, hidden from the docs). Nothing here is API:
//! it wraps the crate-private functions of `vlog/record.rs` that recovery uses, with
//! owned results, so that a fuzzer can feed them arbitrary bytes.

use crate::vlog::record::{self, Checked, Op, OpKind};
use crate::Ns;

/// Bytes of the fixed record header.
pub const HEADER_LEN: usize = record::HEADER_LEN;

/// One operation of a decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedOp {
    /// `expire_at`: unix epoch ms of a kind 5 put (or batch entry), 0 for a plain put.
    Put { ns: Ns, key: Vec<u8>, value: Vec<u8>, value_off: usize, foot: u32, expire_at: u64 },
    Delete { ns: Ns, key: Vec<u8>, value_off: usize, foot: u32 },
    ClearAll { foot: u32 },
    /// Kind 6: `tail` is appended to the key's value.
    Append { ns: Ns, key: Vec<u8>, tail: Vec<u8>, value_off: usize, foot: u32 },
}

/// A record that passed recovery's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Its length, header included (the bytes it used).
    pub len: usize,
    /// The kind byte: 1 put, 2 delete, 3 batch, 4 clear-all, 5 put with expiry, 6 append.
    pub kind: u8,
    pub seq: u64,
    pub ops: Vec<DecodedOp>,
}

/// Recovery's decision on the bytes at a record position (`vlog::record::check_record`),
/// then the record's operations: `Ok(None)` at the end of data, `Err(reason)` for a bad
/// record.
pub fn decode_record(b: &[u8]) -> Result<Option<DecodedRecord>, String> {
    let h = match record::check_record(b) {
        Checked::Record(h) => h,
        Checked::End => return Ok(None),
        Checked::Bad(reason) => return Err(reason),
    };
    let mut ops = Vec::new();
    record::visit(&h, &b[..h.total_len()], |op| {
        ops.push(match op.kind {
            OpKind::Put => DecodedOp::Put { ns: op.ns, key: op.key.to_vec(), value: op.value.to_vec(), value_off: op.value_off, foot: op.foot, expire_at: op.at },
            OpKind::Delete => DecodedOp::Delete { ns: op.ns, key: op.key.to_vec(), value_off: op.value_off, foot: op.foot },
            OpKind::ClearAll => DecodedOp::ClearAll { foot: op.foot },
            OpKind::Append => DecodedOp::Append { ns: op.ns, key: op.key.to_vec(), tail: op.value.to_vec(), value_off: op.value_off, foot: op.foot },
        })
    })
    .map_err(|reason| format!("check_record passed a record visit rejects: {reason}"))?;
    Ok(Some(DecodedRecord { len: h.total_len(), kind: h.kind(), seq: h.seq, ops }))
}

/// A put or delete to encode with [`encode_record`].
#[derive(Debug, Clone)]
pub enum EncodeOp {
    /// `expire_at` 0: a plain put (kind 1), else a put with expiry (kind 5).
    Put { ns: Ns, key: Vec<u8>, value: Vec<u8>, expire_at: u64 },
    Delete { ns: Ns, key: Vec<u8> },
}

/// The writer's record for `ops` (non-empty; one op is a put or delete record, more a
/// batch), and each op's `(value_off, foot)` as the writer places it.
pub fn encode_record(seq: u64, ops: &[EncodeOp]) -> (Vec<u8>, Vec<(usize, u32)>) {
    let ops: Vec<Op<'_>> = ops
        .iter()
        .map(|op| match op {
            EncodeOp::Put { ns, key, value, expire_at } => Op::put(*ns, key, value, *expire_at),
            EncodeOp::Delete { ns, key } => Op::Delete { ns: *ns, key },
        })
        .collect();
    let mut out = Vec::new();
    let mut placed = Vec::new();
    record::encode(&mut out, seq, &ops, |_, off, foot| placed.push((off, foot)));
    (out, placed)
}

/// The writer's append record (kind 6) and its `(value_off, foot)`.
pub fn encode_append(seq: u64, ns: Ns, key: &[u8], tail: &[u8]) -> (Vec<u8>, (usize, u32)) {
    let mut out = Vec::new();
    let placed = record::encode_append(&mut out, seq, ns, key, tail);
    (out, placed)
}

/// The writer's clear-all record.
pub fn encode_clear_all(seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_clear_all(&mut out, seq);
    out
}

/// Rewrites the CRC field of `record` (its first `HEADER_LEN + body_len` bytes, as its
/// header says, clamped to `record`) to match its bytes, as the writer does.
pub fn reseal(record: &mut [u8]) {
    if record.len() < HEADER_LEN {
        return;
    }
    let body_len = u32::from_le_bytes(record[4..8].try_into().expect("4 bytes")) as usize;
    let end = HEADER_LEN.saturating_add(body_len).min(record.len());
    let crc = crc32c::crc32c(&record[4..end]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
}

/// Recovery's scan for a valid record after a bad one (`vlog::record::find_valid_record`).
pub fn find_valid_record(data: &[u8]) -> Option<usize> {
    record::find_valid_record(data)
}

/// Recovery's check of a segment header block against segment `id`; its version.
pub fn check_segment_header(b: &[u8], id: u32) -> Result<u32, String> {
    record::check_segment_header(b, id)
}

/// The writer's segment header block for segment `id`.
pub fn segment_header(id: u32) -> Vec<u8> {
    record::segment_header(id)
}
