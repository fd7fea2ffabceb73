//! Router↔shard frame codec (`keel_protocol::shard`).
//!
//! Input: one byte choosing the frame limit, then a stream of frames; the same bytes
//! are also decoded directly as a request payload and as a reply payload. Checks,
//! beyond no panic:
//! - a decoded frame uses `4 + len` bytes, at most the buffer, and every shorter prefix
//!   is `Ok(None)`; errors are exactly the ones the header calls for (`TooLarge` only
//!   above the limit, `Malformed` only for `len < 9`, `BadKind` only for kinds ∉ {1, 2, 3});
//! - round trip: a decoded frame re-encodes (`encode_frame`) to the same bytes; a
//!   request payload that decodes re-encodes (`encode_request_args`) to the same bytes
//!   and `request_frame_len` agrees; a request-in-a-database payload that decodes
//!   (`decode_request_in`) re-encodes (`encode_request_in`) to the same frame; a reply payload that decodes re-encodes
//!   (`encode_value`, `encode_reply`) to the same bytes and `value_len` agrees;
//! - the limit: an encoder given a limit one byte below the frame refuses it with
//!   `TooLarge` and appends nothing.
#![no_main]

use keel_protocol::shard::{
    decode_frame, decode_request, decode_request_in, decode_value, encode_frame, encode_reply, encode_request_args, encode_request_in, encode_value,
    request_frame_len, value_len, FrameError, Kind, DEFAULT_MAX_FRAME, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let max_frame = match mode % 4 {
        0 => DEFAULT_MAX_FRAME,
        1 => 64,
        2 => 1024,
        _ => HEADER_LEN - 4,
    };
    let mut rest = input;
    for _ in 0..64 {
        let res = decode_frame(rest, max_frame);
        let len = rest.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
        match res {
            Ok(Some((f, used))) => {
                let len = len.expect("a frame has a length");
                assert_eq!(used, 4 + len);
                assert!(used <= rest.len() && len <= max_frame && len >= HEADER_LEN - 4);
                for k in 0..used {
                    assert!(matches!(decode_frame(&rest[..k], max_frame), Ok(None)), "prefix of {k} bytes");
                }
                let frame = &rest[..used];
                let mut out = vec![0xAA];
                encode_frame(f.req_id, f.kind, f.payload, max_frame, &mut out).expect("fits the limit it came in");
                assert_eq!(&out[1..], frame, "encode_frame");
                let mut out = Vec::new();
                assert_eq!(encode_frame(f.req_id, f.kind, f.payload, len - 1, &mut out), Err(FrameError::TooLarge(len)));
                assert!(out.is_empty());
                match f.kind {
                    Kind::Request => check_request(f.req_id, f.payload, Some(frame), max_frame),
                    Kind::Reply => check_reply(f.req_id, f.payload, Some(frame), max_frame),
                    Kind::RequestDb => check_request_db(f.req_id, f.payload, frame, max_frame),
                }
                rest = &rest[used..];
            }
            Ok(None) => {
                if let Some(len) = len {
                    assert!(len <= max_frame && len >= HEADER_LEN - 4 && rest.len() < 4 + len);
                }
                break;
            }
            Err(FrameError::TooLarge(n)) => {
                assert_eq!(Some(n), len);
                assert!(n > max_frame);
                break;
            }
            Err(FrameError::Malformed(_)) => {
                assert!(len.is_some_and(|len| len < HEADER_LEN - 4));
                break;
            }
            Err(FrameError::BadKind(k)) => {
                assert!(!(1..=3).contains(&k) && rest.get(12) == Some(&k));
                break;
            }
        }
    }
    check_request(7, input, None, DEFAULT_MAX_FRAME);
    check_reply(7, input, None, DEFAULT_MAX_FRAME);
});

/// If `payload` decodes as a request, it re-encodes to the same bytes (and `frame`, when
/// given, is the whole frame it came in).
fn check_request(req_id: u64, payload: &[u8], frame: Option<&[u8]>, max_frame: usize) {
    let Ok(argv) = decode_request(payload) else { return };
    let mut out = Vec::new();
    encode_request_args(req_id, &argv, max_frame, &mut out).expect("within the limit");
    assert_eq!(&out[HEADER_LEN..], payload, "request payload round trip");
    assert_eq!(request_frame_len(&argv), out.len() - 4);
    if let Some(frame) = frame {
        assert_eq!(out, frame, "request frame round trip");
    }
    let mut none = Vec::new();
    assert!(encode_request_args(req_id, &argv, out.len() - 5, &mut none).is_err() && none.is_empty());
}

/// If a request-in-a-database `payload` decodes, it re-encodes to the same `frame`, and
/// its db is never 0 (db 0 has one encoding: a plain request).
fn check_request_db(req_id: u64, payload: &[u8], frame: &[u8], max_frame: usize) {
    let Ok((db, argv)) = decode_request_in(Kind::RequestDb, payload) else { return };
    assert_ne!(db, 0);
    let mut out = Vec::new();
    encode_request_in(req_id, db, &argv, max_frame, &mut out).expect("within the limit");
    assert_eq!(out, frame, "request-in-a-database frame round trip");
    let mut none = Vec::new();
    assert!(encode_request_in(req_id, db, &argv, out.len() - 5, &mut none).is_err() && none.is_empty());
}

/// If `payload` decodes as a reply value, it re-encodes to the same bytes (compared as
/// bytes: a NaN double is not equal to itself as a `Value`).
fn check_reply(req_id: u64, payload: &[u8], frame: Option<&[u8]>, max_frame: usize) {
    let Ok(v) = decode_value(payload) else { return };
    assert_eq!(value_len(&v), payload.len());
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    assert_eq!(out, payload, "value round trip");
    let mut out = Vec::new();
    encode_reply(req_id, &v, max_frame, &mut out).expect("within the limit");
    assert_eq!(&out[HEADER_LEN..], payload);
    if let Some(frame) = frame {
        assert_eq!(out, frame, "reply frame round trip");
    }
    let mut none = Vec::new();
    assert!(encode_reply(req_id, &v, out.len() - 5, &mut none).is_err() && none.is_empty());
}
