//! RESP reply parser (`keel_protocol::resp::parse_value`), what keel's benchmark client
//! and the tests (the differential test frames redis-server's replies with it) read.
//!
//! Input: one byte choosing the limits (< 0x80: the defaults; else small limits taken
//! from the next 3 bytes, so that every limit is hit), then a stream of replies parsed
//! one after another. Checks, beyond no panic, for every reply:
//! - the bytes used are > 0 and never more than the buffer holds, and every shorter
//!   prefix of them is `Ok(None)` (incomplete, never an error);
//! - the result depends only on the bytes it read: the buffer with bytes appended
//!   gives the same value and length, or the same error;
//! - `Limits`: no aggregate nests deeper than `max_depth`, none has more than
//!   `max_array_len` elements (pairs for a map), and no bulk string (verbatim text
//!   included) is longer than `max_bulk_len` (a big number, `(`, is a line: unbounded);
//! - round trip: the value encoded (`encode`, RESP3 and RESP2) parses back, using all
//!   of it, to a value that encodes to the same bytes.
#![no_main]

use keel_protocol::resp::{encode, parse_value, Limits, RespVersion};
use keel_protocol::value::Value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (limits, mut rest) = if mode < 0x80 || rest.len() < 3 {
        (Limits::default(), rest)
    } else {
        let small = Limits {
            max_bulk_len: rest[0] as usize,
            max_array_len: rest[1] as usize,
            max_depth: (rest[2] % 9) as usize,
            ..Limits::default()
        };
        (small, &rest[3..])
    };
    for _ in 0..32 {
        if rest.is_empty() {
            break;
        }
        let whole = parse_value(rest, &limits);

        let mut longer = rest.to_vec();
        longer.extend_from_slice(b"\r\n:1\r\n*1\r\n");
        let extended = parse_value(&longer, &limits);
        match (&whole, &extended) {
            (Ok(Some((a, n))), Ok(Some((b, m)))) => {
                assert_eq!(n, m, "bytes used with bytes appended");
                assert_eq!(resp3(a), resp3(b), "value with bytes appended");
            }
            (Ok(None), _) => {}
            (Err(a), Err(b)) => assert_eq!(a, b, "error with bytes appended"),
            _ => panic!("{whole:?} became {extended:?} with bytes appended"),
        }

        let Ok(Some((v, used))) = whole else { break };
        assert!(used > 0 && used <= rest.len(), "used {used} of {}", rest.len());
        for k in 0..used {
            assert!(matches!(parse_value(&rest[..k], &limits), Ok(None)), "prefix of {k} of {used} bytes");
        }
        check_limits(&v, 0, &limits);

        // Round trips, parsed without limits beyond the depth (RESP2 doubles a map's
        // count and writes doubles as bulk strings).
        let roomy = Limits { max_bulk_len: usize::MAX >> 1, max_array_len: usize::MAX >> 1, ..limits };
        for ver in [RespVersion::Resp3, RespVersion::Resp2] {
            let mut e1 = Vec::new();
            encode(&v, ver, &mut e1);
            match parse_value(&e1, &roomy) {
                Ok(Some((v2, n))) => {
                    assert_eq!(n, e1.len(), "{ver:?} re-encoding used in part");
                    let mut e2 = Vec::new();
                    encode(&v2, ver, &mut e2);
                    assert_eq!(e1, e2, "{ver:?} round trip");
                }
                other => panic!("{ver:?} encoding of {v:?} parses as {other:?}"),
            }
        }
        rest = &rest[used..];
    }
});

fn resp3(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, RespVersion::Resp3, &mut out);
    out
}

/// `v` (inside `depth` aggregates) keeps within `limits`.
fn check_limits(v: &Value, depth: usize, limits: &Limits) {
    let aggregate = |n: usize| {
        assert!(depth < limits.max_depth, "an aggregate at depth {depth} (max_depth {})", limits.max_depth);
        assert!(n <= limits.max_array_len, "{n} elements (max_array_len {})", limits.max_array_len);
    };
    match v {
        Value::Array(items) | Value::Set(items) => {
            aggregate(items.len());
            items.iter().for_each(|i| check_limits(i, depth + 1, limits));
        }
        Value::Map(pairs) => {
            aggregate(pairs.len());
            for (k, x) in pairs {
                check_limits(k, depth + 1, limits);
                check_limits(x, depth + 1, limits);
            }
        }
        Value::Bulk(b) => {
            let digits = b.strip_prefix(b"-").or_else(|| b.strip_prefix(b"+")).unwrap_or(b);
            let big_number = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
            assert!(b.len() <= limits.max_bulk_len || big_number, "bulk of {} bytes (max_bulk_len {})", b.len(), limits.max_bulk_len);
        }
        Value::Verbatim(_, text) => {
            assert!(text.len() + 4 <= limits.max_bulk_len, "verbatim of {} bytes (max_bulk_len {})", text.len() + 4, limits.max_bulk_len)
        }
        _ => {}
    }
}
