//! vLog record decoder (`keel_storage::fuzzing`, i.e. `vlog::record::check_record`, the
//! one decision recovery takes on the bytes at a record position).
//!
//! Input: one mode byte, then bytes. Mode bit 0 reseals the bytes first (CRC recomputed
//! as the writer would), so the fuzzer gets past the CRC to the header and batch
//! checks; bit 1 instead builds writer operations from the bytes, encodes them and
//! decodes the record back. Checks, beyond no panic and no out-of-bounds read:
//! - a record that decodes used at most the bytes given, and re-encodes through the
//!   writer's encoder to exactly its bytes (put, delete, clear-all, and batches of ≥ 2
//!   entries; the writer never writes a batch of 0 or 1), with each op's value at its
//!   `value_off` and the writer's `(value_off, foot)`;
//! - corruption is detected: flipping any one bit of a decoded record (at 16 spread
//!   positions) never decodes as a record again — outside `body_len` the CRC covers
//!   the same bytes, so the record must be rejected;
//! - `Ok(None)` (end of data) only for an all-zero header or fewer than 28 zero bytes;
//! - `find_valid_record` returns 0 for a decodable record, and any offset it returns
//!   holds a decodable record; the segment header check accepts only the writer's block.
#![no_main]

use keel_storage::fuzzing::{
    check_segment_header, decode_record, encode_append, encode_clear_all, encode_record, find_valid_record, reseal, segment_header,
    DecodedOp, DecodedRecord, EncodeOp, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    if mode & 2 != 0 {
        written_records_decode(input);
        return;
    }
    let mut buf = input.to_vec();
    if mode & 1 != 0 {
        reseal(&mut buf);
    }
    match decode_record(&buf) {
        Ok(Some(r)) => {
            check_decoded(&buf, &r);
            assert_eq!(find_valid_record(&buf), Some(0));
        }
        Ok(None) => {
            let head = &buf[..buf.len().min(HEADER_LEN)];
            assert!(head.iter().all(|&b| b == 0), "end of data at a non-zero header");
        }
        Err(_) => {}
    }
    if let Some(q) = find_valid_record(&buf) {
        assert!(matches!(decode_record(&buf[q..]), Ok(Some(_))), "find_valid_record at {q}");
    }
    if buf.len() >= 20 {
        let id = u32::from_le_bytes(buf[12..16].try_into().unwrap());
        if check_segment_header(&buf, id).is_ok() {
            assert_eq!(&buf[..20], &segment_header(id)[..20]);
        }
    }
});

/// `r` was decoded from the front of `buf`: it re-encodes to its bytes, and no single
/// bit flip of it decodes.
fn check_decoded(buf: &[u8], r: &DecodedRecord) {
    assert!(r.len >= HEADER_LEN && r.len <= buf.len(), "record of {} bytes in {}", r.len, buf.len());
    let rec = &buf[..r.len];
    for op in &r.ops {
        let (value_off, value): (usize, &[u8]) = match op {
            DecodedOp::Put { value_off, value, .. } => (*value_off, value),
            DecodedOp::Delete { value_off, .. } => (*value_off, &[]),
            DecodedOp::ClearAll { .. } => (0, &[]),
            DecodedOp::Append { value_off, tail, .. } => (*value_off, tail),
        };
        assert_eq!(&rec[value_off..value_off + value.len()], value, "value at value_off");
    }
    let to_encode: Vec<EncodeOp> = r
        .ops
        .iter()
        .filter_map(|op| match op {
            DecodedOp::Put { ns, key, value, expire_at, .. } => Some(EncodeOp::Put { ns: *ns, key: key.clone(), value: value.clone(), expire_at: *expire_at }),
            DecodedOp::Delete { ns, key, .. } => Some(EncodeOp::Delete { ns: *ns, key: key.clone() }),
            DecodedOp::ClearAll { .. } | DecodedOp::Append { .. } => None,
        })
        .collect();
    match r.kind {
        4 => assert_eq!(encode_clear_all(r.seq), rec, "clear-all round trip"),
        6 => {
            let [DecodedOp::Append { ns, key, tail, value_off, foot }] = &r.ops[..] else { panic!("an append record holds one append: {:?}", r.ops) };
            let (enc, placed) = encode_append(r.seq, *ns, key, tail);
            assert_eq!(enc, rec, "append round trip");
            assert_eq!(placed, (*value_off, *foot));
        }
        3 if r.ops.len() < 2 => {} // never written; still a valid record
        _ => {
            let (enc, placed) = encode_record(r.seq, &to_encode);
            assert_eq!(enc, rec, "record round trip");
            assert_eq!(placed, placements(&r.ops));
        }
    }
    for k in 0..16usize {
        let bit = (k * 7919).wrapping_add(r.seq as usize) % (r.len * 8);
        let mut bad = rec.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        let res = decode_record(&bad);
        if (4..8).contains(&(bit / 8)) {
            assert!(!matches!(res, Ok(Some(ref x)) if x.len == r.len), "flip in body_len went unnoticed");
        } else {
            assert!(!matches!(res, Ok(Some(_))), "bit {bit} flipped went unnoticed: {res:?}");
        }
    }
}

fn placements(ops: &[DecodedOp]) -> Vec<(usize, u32)> {
    ops.iter()
        .map(|op| match op {
            DecodedOp::Put { value_off, foot, .. } | DecodedOp::Delete { value_off, foot, .. } | DecodedOp::Append { value_off, foot, .. } => (*value_off, *foot),
            DecodedOp::ClearAll { foot } => (0, *foot),
        })
        .collect()
}

/// Operations built from `input` go through the writer's encoder and come back equal.
fn written_records_decode(input: &[u8]) {
    let mut ops = Vec::new();
    let mut rest = input;
    while rest.len() >= 3 && ops.len() < 8 {
        let (head, tail) = rest.split_at(3);
        let key_len = (head[1] as usize % 16).min(tail.len());
        let (key, tail) = tail.split_at(key_len);
        let value_len = (head[2] as usize % 64).min(tail.len());
        let (value, tail) = tail.split_at(value_len);
        let ns = head[0] >> 1;
        // A put with expiry for some values of the length byte (its high bit).
        let expire_at = if head[2] & 0x80 != 0 { u64::from(head[1]) << 32 | u64::from(head[2]) } else { 0 };
        ops.push(if head[0] & 1 == 0 {
            EncodeOp::Put { ns, key: key.to_vec(), value: value.to_vec(), expire_at }
        } else {
            EncodeOp::Delete { ns, key: key.to_vec() }
        });
        rest = tail;
    }
    if ops.is_empty() {
        let rec = encode_clear_all(input.len() as u64);
        let r = decode_record(&rec).expect("clear-all decodes").expect("not the end");
        check_decoded(&rec, &r);
        return;
    }
    let seq = input.len() as u64 + 1;
    let (mut rec, placed) = encode_record(seq, &ops);
    let r = decode_record(&rec).expect("written record decodes").expect("not the end");
    assert_eq!(r.seq, seq);
    assert_eq!(r.len, rec.len());
    assert_eq!(placements(&r.ops), placed);
    for (op, got) in ops.iter().zip(&r.ops) {
        match (op, got) {
            (EncodeOp::Put { ns, key, value, expire_at }, DecodedOp::Put { ns: n, key: k, value: v, expire_at: at, .. }) => {
                assert_eq!((ns, key, value, expire_at), (n, k, v, at));
            }
            (EncodeOp::Delete { ns, key }, DecodedOp::Delete { ns: n, key: k, .. }) => assert_eq!((ns, key), (n, k)),
            other => panic!("op decoded as another kind: {other:?}"),
        }
    }
    check_decoded(&rec, &r);
    // Trailing bytes after a record do not change it; a cut-off record is an error.
    rec.extend_from_slice(rest);
    assert_eq!(decode_record(&rec).expect("with trailing bytes"), Some(r.clone()));
    assert!(decode_record(&rec[..r.len - 1]).is_err());
}
