//! `encode` and `parse_value` against generated values.

use keel_protocol::resp::{encode, parse_value, Limits, RespVersion};
use keel_protocol::Value;
use proptest::prelude::*;

use crate::strategies::{chunk_ends, limits, protocolish, resp_value, same, via_resp2, via_resp3};

fn round_trip(v: &Value, ver: RespVersion) -> Result<Value, TestCaseError> {
    let mut buf = Vec::new();
    encode(v, ver, &mut buf);
    let limits = Limits::default();
    for k in 0..buf.len() {
        prop_assert_eq!(parse_value(&buf[..k], &limits), Ok(None), "prefix of {} bytes", k);
    }
    let (got, used) = parse_value(&buf, &limits).unwrap().expect("complete");
    prop_assert_eq!(used, buf.len());
    Ok(got)
}

proptest! {
    #[test]
    fn resp3_round_trip(v in resp_value()) {
        let got = round_trip(&v, RespVersion::Resp3)?;
        prop_assert!(same(&got, &via_resp3(&v)), "{:?} came back as {:?}", v, got);
    }

    #[test]
    fn resp2_round_trip(v in resp_value()) {
        let got = round_trip(&v, RespVersion::Resp2)?;
        prop_assert!(same(&got, &via_resp2(&v)), "{:?} came back as {:?}", v, got);
    }

    /// Doubles come back exactly from Redis's text form.
    #[test]
    fn doubles_round_trip(d in any::<f64>()) {
        let got = round_trip(&Value::Double(d), RespVersion::Resp3)?;
        prop_assert!(matches!(got, Value::Double(x) if x.to_bits() == d.to_bits() || (x.is_nan() && d.is_nan())));
    }

    /// Replies pipelined back to back, read in arbitrary chunks.
    #[test]
    fn pipelined_in_chunks(vs in prop::collection::vec(resp_value(), 1..8), cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let mut wire = Vec::new();
        for v in &vs {
            encode(v, RespVersion::Resp3, &mut wire);
        }
        let limits = Limits::default();
        let (mut got, mut at) = (Vec::new(), 0);
        for end in chunk_ends(wire.len(), &cuts) {
            while let Some((v, used)) = parse_value(&wire[at..end], &limits).unwrap() {
                got.push(v);
                at += used;
            }
        }
        prop_assert_eq!(at, wire.len());
        prop_assert_eq!(got.len(), vs.len());
        for (g, v) in got.iter().zip(&vs) {
            prop_assert!(same(g, &via_resp3(v)));
        }
    }

    /// On any input: no panic, and once a prefix gives a definite answer, every longer
    /// buffer gives the same one.
    #[test]
    fn garbage_is_monotone(input in prop_oneof![protocolish(), prop::collection::vec(any::<u8>(), 0..64)], limits in limits()) {
        let mut definite = None;
        for k in 0..=input.len() {
            let got = parse_value(&input[..k], &limits);
            match (&definite, &got) {
                (None, Ok(None)) => {}
                (None, _) => definite = Some(got),
                (Some(first), _) => prop_assert_eq!(format!("{first:?}"), format!("{got:?}"), "prefix of {} bytes", k),
            }
        }
    }
}
