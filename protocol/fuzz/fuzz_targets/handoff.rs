//! Connection hand-off message codec (`keel_protocol::handoff`).
//!
//! Input: a stream of messages. Checks, beyond no panic:
//! - a decoded message uses `4 + len` bytes, at most the buffer, carries `len − 18`
//!   bytes of data, and its prefixes are `Ok(None)` (checked for the first 64 and the
//!   last one);
//! - errors are exactly the ones the header calls for (`TooLarge` only above
//!   `MAX_MESSAGE`, `TooShort` only below 18, `Kind`/`Resp` only for bad bytes);
//! - round trip: a decoded message re-encodes to the same bytes.
#![no_main]

use keel_protocol::handoff::{decode, encode, HandoffError, HEADER, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    for _ in 0..64 {
        let len = rest.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
        match decode(rest) {
            Ok(Some((m, used))) => {
                let len = len.expect("a message has a length");
                assert_eq!(used, 4 + len);
                assert!(used <= rest.len());
                assert_eq!(m.data.len(), used - HEADER);
                for k in (0..used.min(64)).chain([used - 1]) {
                    assert_eq!(decode(&rest[..k]), Ok(None), "prefix of {k} bytes");
                }
                let mut out = vec![0xAA];
                encode(&m, &mut out);
                assert_eq!(&out[1..], &rest[..used], "round trip");
                rest = &rest[used..];
            }
            Ok(None) => {
                if let Some(len) = len {
                    assert!(len <= MAX_MESSAGE && len >= HEADER - 4 && rest.len() < 4 + len);
                }
                break;
            }
            Err(e) => {
                let len = len.expect("an error needs a length");
                match e {
                    HandoffError::TooLarge(n) => assert!(n == len && n > MAX_MESSAGE),
                    HandoffError::TooShort(n) => assert!(n == len && n < HEADER - 4),
                    HandoffError::Kind(k) => assert!(rest[4] == k && !(1..=3).contains(&k)),
                    HandoffError::Resp(v) => assert!(rest[13] == v && v != 2 && v != 3),
                }
                break;
            }
        }
    }
});
