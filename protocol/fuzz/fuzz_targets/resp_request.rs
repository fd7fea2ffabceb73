//! RESP request parser (`keel_protocol::resp::{parse_request, RequestParser}`).
//!
//! Input: one byte choosing the limits (< 0x80: the defaults; else small limits taken
//! from the next 5 bytes, so that every limit is hit), then a stream of requests parsed
//! one after another. Checks, beyond no panic, for every request:
//! - the bytes used are > 0 and never more than the buffer holds;
//! - `RequestParser` fed the whole buffer, and fed byte by byte (`Ok(None)` until the
//!   end), gives exactly `parse_request`'s result (argv, bytes used, or the error);
//! - `Limits`: a multibulk request has at most `max_array_len` arguments, each at most
//!   `max_bulk_len` bytes, and uses at most `max_request_len` bytes; an inline request
//!   uses at most `max_inline_len + 1` bytes;
//! - the argv re-encoded as multibulk parses back to the same argv, using all of it.
#![no_main]

use keel_protocol::resp::{encode_request_args, parse_request, Limits, RequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (limits, mut rest) = if mode < 0x80 || rest.len() < 5 {
        (Limits::default(), rest)
    } else {
        let small = Limits {
            max_bulk_len: rest[0] as usize,
            max_array_len: rest[1] as usize,
            max_depth: 8,
            max_inline_len: rest[2] as usize,
            max_request_len: u16::from_le_bytes([rest[3], rest[4]]) as usize,
        };
        (small, &rest[5..])
    };
    for _ in 0..32 {
        if rest.is_empty() {
            break;
        }
        let whole = parse_request(rest, &limits);

        let mut at_once = RequestParser::new();
        assert_eq!(at_once.parse(rest, &limits), whole, "RequestParser on the whole buffer");
        if !matches!(whole, Ok(None)) {
            assert!(!at_once.in_progress(), "parser not fresh after a result");
        }

        let mut resumed = RequestParser::new();
        let mut by_byte = Ok(None);
        for k in 1..=rest.len() {
            by_byte = resumed.parse(&rest[..k], &limits);
            if !matches!(by_byte, Ok(None)) {
                break;
            }
        }
        assert_eq!(by_byte, whole, "RequestParser fed byte by byte");

        let Ok(Some((argv, used))) = whole else { break };
        assert!(used > 0 && used <= rest.len(), "used {used} of {}", rest.len());
        if rest[0] == b'*' {
            assert!(argv.len() <= limits.max_array_len, "{} arguments", argv.len());
            for arg in &argv {
                assert!(arg.len() <= limits.max_bulk_len, "argument of {} bytes", arg.len());
            }
            if !argv.is_empty() {
                assert!(used <= limits.max_request_len, "request of {used} bytes");
            }
        } else {
            assert!(used <= limits.max_inline_len + 1, "inline request of {used} bytes");
        }
        if !argv.is_empty() {
            let mut enc = Vec::new();
            encode_request_args(&argv, &mut enc);
            assert_eq!(parse_request(&enc, &Limits::default()), Ok(Some((argv, enc.len()))), "re-encoded");
        }
        rest = &rest[used..];
    }
});
