//! Router↔shard frames against generated argvs and values.

use keel_protocol::shard::{
    decode_frame, decode_request, decode_value, encode_reply, encode_request_args, encode_value, value_len, FrameError, Kind,
    DEFAULT_MAX_FRAME as MAX,
};
use proptest::prelude::*;

use crate::strategies::{any_value, argv, chunk_ends, same};

proptest! {
    #[test]
    fn request_round_trip(req_id in any::<u64>(), argv in argv()) {
        let mut buf = Vec::new();
        encode_request_args(req_id, &argv, MAX, &mut buf).unwrap();
        for k in 0..buf.len() {
            prop_assert!(decode_frame(&buf[..k], MAX).unwrap().is_none(), "prefix of {} bytes", k);
        }
        let (frame, used) = decode_frame(&buf, MAX).unwrap().unwrap();
        prop_assert_eq!((frame.req_id, frame.kind, used), (req_id, Kind::Request, buf.len()));
        prop_assert_eq!(decode_request(frame.payload), Ok(argv));
        // Any truncation of the payload is refused.
        for k in 0..frame.payload.len() {
            prop_assert!(decode_request(&frame.payload[..k]).is_err(), "payload cut at {}", k);
        }
    }

    #[test]
    fn reply_round_trip(req_id in any::<u64>(), v in any_value()) {
        let mut buf = Vec::new();
        encode_reply(req_id, &v, MAX, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), 13 + value_len(&v));
        let (frame, used) = decode_frame(&buf, MAX).unwrap().unwrap();
        prop_assert_eq!((frame.req_id, frame.kind, used), (req_id, Kind::Reply, buf.len()));
        let got = decode_value(frame.payload).unwrap();
        prop_assert!(same(&got, &v));
        // Bit-exact, doubles included.
        let mut again = Vec::new();
        encode_value(&got, &mut again);
        prop_assert_eq!(&again[..], frame.payload);
        for k in 0..frame.payload.len() {
            prop_assert!(decode_value(&frame.payload[..k]).is_err(), "payload cut at {}", k);
        }
        let mut longer = frame.payload.to_vec();
        longer.push(6);
        prop_assert_eq!(decode_value(&longer), Err(FrameError::Malformed("trailing bytes")));
    }

    /// Many frames back to back, read in arbitrary chunks.
    #[test]
    fn pipelined_in_chunks(reqs in prop::collection::vec(argv(), 1..10), cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let mut wire = Vec::new();
        for (i, argv) in reqs.iter().enumerate() {
            encode_request_args(i as u64, argv, MAX, &mut wire).unwrap();
        }
        let (mut got, mut at) = (Vec::new(), 0);
        for end in chunk_ends(wire.len(), &cuts) {
            while let Some((frame, used)) = decode_frame(&wire[at..end], MAX).unwrap() {
                prop_assert_eq!(frame.req_id, got.len() as u64);
                got.push(decode_request(frame.payload).unwrap());
                at += used;
            }
        }
        prop_assert_eq!(got, reqs);
    }

    /// Decoders never panic on arbitrary bytes.
    #[test]
    fn garbage_never_panics(input in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = decode_frame(&input, MAX);
        let _ = decode_request(&input);
        let _ = decode_value(&input);
    }
}
