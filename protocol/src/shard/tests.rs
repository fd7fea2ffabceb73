use super::*;

/// `v` encodes to exactly `payload` and decodes back.
fn check(v: Value, payload: &[u8]) {
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    assert_eq!(out, payload, "encoding of {v:?}");
    assert_eq!(decode_value(payload), Ok(v));
}

/// `payload` is rejected as malformed with `msg`.
fn check_err(payload: &[u8], msg: &'static str) {
    assert_eq!(decode_value(payload), Err(FrameError::Malformed(msg)), "payload {payload:?}");
}

#[test]
fn value_layout() {
    check(Value::ok(), b"\x01\x02\x00\x00\x00OK");
    check(Value::err("E"), b"\x02\x01\x00\x00\x00E");
    check(Value::Integer(-2), b"\x03\xfe\xff\xff\xff\xff\xff\xff\xff");
    check(Value::bulk("ab"), b"\x04\x02\x00\x00\x00ab");
    check(Value::Double(1.0), b"\x05\x00\x00\x00\x00\x00\x00\xf0\x3f");
    check(Value::Null, b"\x06");
    check(Value::NullArray, b"\x07");
    check(Value::Array(vec![Value::Null]), b"\x08\x01\x00\x00\x00\x06");
    check(Value::Map(vec![(Value::Null, Value::Bool(true))]), b"\x09\x01\x00\x00\x00\x06\x0b\x01");
    check(Value::Set(vec![]), b"\x0a\x00\x00\x00\x00");
    check(Value::Bool(false), b"\x0b\x00");
    check(Value::Verbatim("txt".into(), b"x".to_vec()), b"\x0c\x03\x00\x00\x00txt\x01\x00\x00\x00x");
}

#[test]
fn malformed_values() {
    check_err(b"", "truncated");
    check_err(b"\x04\x05\x00\x00\x00abc", "truncated");
    check_err(b"\x03\x00", "truncated");
    check_err(b"\x06\x06", "trailing bytes");
    check_err(b"\x00", "unknown value tag");
    check_err(b"\x0b\x02", "bool byte not 0 or 1");
    check_err(b"\x01\x01\x00\x00\x00\xff", "invalid utf-8");
    check_err(b"\x08\xff\xff\xff\xff\x06\x06", "element count larger than the payload");
    check_err(b"\x09\x02\x00\x00\x00\x06\x06\x06", "element count larger than the payload");
}

#[test]
fn nesting_limit() {
    let mut v = Value::Null;
    for _ in 0..MAX_DEPTH {
        v = Value::Array(vec![v]);
    }
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    assert_eq!(decode_value(&out), Ok(v.clone()));
    out.clear();
    encode_value(&Value::Set(vec![v]), &mut out);
    check_err(&out, "values nested too deep");
    // A hostile payload deeper than the stack could take is refused at MAX_DEPTH.
    let deep = b"\x08\x01\x00\x00\x00".repeat(1_000_000);
    check_err(&deep, "values nested too deep");
}

#[test]
fn frames() {
    let mut out = Vec::new();
    encode_request(7, &[b"GET", b"t:k"], &mut out);
    let want = b"\x1b\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x03\x00\x00\x00GET\x03\x00\x00\x00t:k";
    assert_eq!(out, want);
    let (frame, used) = decode_frame(&out).unwrap().unwrap();
    assert_eq!((frame.req_id, frame.kind, used), (7, Kind::Request, out.len()));
    assert_eq!(decode_request(frame.payload), Ok(vec![b"GET".to_vec(), b"t:k".to_vec()]));
    for k in 0..out.len() {
        assert!(decode_frame(&out[..k]).unwrap().is_none(), "prefix {k}");
    }

    let mut owned = Vec::new();
    encode_request_args(7, &[b"GET".to_vec(), b"t:k".to_vec()], &mut owned);
    assert_eq!(owned, want);

    out.clear();
    encode_reply(u64::MAX, &Value::Integer(1), &mut out);
    let (frame, used) = decode_frame(&out).unwrap().unwrap();
    assert_eq!((frame.req_id, frame.kind, used), (u64::MAX, Kind::Reply, 22));
    assert_eq!(decode_value(frame.payload), Ok(Value::Integer(1)));

    let mut raw = Vec::new();
    encode_frame(3, Kind::Reply, b"\x06", &mut raw);
    assert_eq!(raw, b"\x0a\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x02\x06");
}

#[test]
fn frame_errors() {
    let too_big = ((MAX_FRAME + 1) as u32).to_le_bytes();
    assert_eq!(decode_frame(&too_big).unwrap_err(), FrameError::TooLarge(MAX_FRAME + 1));
    assert_eq!(decode_frame(&u32::MAX.to_le_bytes()).unwrap_err(), FrameError::TooLarge(u32::MAX as usize));
    assert!(decode_frame(&(MAX_FRAME as u32).to_le_bytes()).unwrap().is_none());
    assert_eq!(decode_frame(b"\x08\x00\x00\x00").unwrap_err(), FrameError::Malformed("frame shorter than its header"));
    assert_eq!(decode_frame(b"\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03").unwrap_err(), FrameError::BadKind(3));
    assert_eq!(Kind::try_from(2), Ok(Kind::Reply));
}

#[test]
fn malformed_requests() {
    let bad = |p: &[u8], msg| assert_eq!(decode_request(p), Err(FrameError::Malformed(msg)), "payload {p:?}");
    bad(b"", "truncated");
    bad(b"\x01\x00\x00\x00", "argument count larger than the payload");
    bad(b"\xff\xff\xff\xff\x00\x00\x00\x00", "argument count larger than the payload");
    bad(b"\x01\x00\x00\x00\x05\x00\x00\x00ab", "truncated");
    bad(b"\x01\x00\x00\x00\x01\x00\x00\x00ab", "trailing bytes");
    assert_eq!(decode_request(b"\x00\x00\x00\x00"), Ok(vec![]));
}
