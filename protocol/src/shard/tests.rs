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

const MAX: usize = DEFAULT_MAX_FRAME;

#[test]
fn frames() {
    let mut out = Vec::new();
    encode_request(7, &[b"GET", b"t:k"], MAX, &mut out).unwrap();
    let want = b"\x1b\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x03\x00\x00\x00GET\x03\x00\x00\x00t:k";
    assert_eq!(out, want);
    let (frame, used) = decode_frame(&out, MAX).unwrap().unwrap();
    assert_eq!((frame.req_id, frame.kind, used), (7, Kind::Request, out.len()));
    assert_eq!(decode_request(frame.payload), Ok(vec![b"GET".to_vec(), b"t:k".to_vec()]));
    for k in 0..out.len() {
        assert!(decode_frame(&out[..k], MAX).unwrap().is_none(), "prefix {k}");
    }

    let mut owned = Vec::new();
    encode_request_args(7, &[b"GET".to_vec(), b"t:k".to_vec()], MAX, &mut owned).unwrap();
    assert_eq!(owned, want);

    out.clear();
    encode_reply(u64::MAX, &Value::Integer(1), MAX, &mut out).unwrap();
    let (frame, used) = decode_frame(&out, MAX).unwrap().unwrap();
    assert_eq!((frame.req_id, frame.kind, used), (u64::MAX, Kind::Reply, 22));
    assert_eq!(decode_value(frame.payload), Ok(Value::Integer(1)));

    let mut raw = Vec::new();
    encode_frame(3, Kind::Reply, b"\x06", MAX, &mut raw).unwrap();
    assert_eq!(raw, b"\x0a\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x02\x06");
}

#[test]
fn frame_errors() {
    let too_big = ((MAX + 1) as u32).to_le_bytes();
    assert_eq!(decode_frame(&too_big, MAX).unwrap_err(), FrameError::TooLarge(MAX + 1));
    assert_eq!(decode_frame(&u32::MAX.to_le_bytes(), MAX).unwrap_err(), FrameError::TooLarge(u32::MAX as usize));
    assert!(decode_frame(&(MAX as u32).to_le_bytes(), MAX).unwrap().is_none());
    assert_eq!(decode_frame(&100u32.to_le_bytes(), 99).unwrap_err(), FrameError::TooLarge(100));
    assert_eq!(decode_frame(b"\x08\x00\x00\x00", MAX).unwrap_err(), FrameError::Malformed("frame shorter than its header"));
    assert_eq!(decode_frame(b"\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04", MAX).unwrap_err(), FrameError::BadKind(4));
    assert_eq!(Kind::try_from(2), Ok(Kind::Reply));
}

/// Frames over the limit are refused before anything is written, whatever the limit,
/// so that no request or reply size can make an encoder panic.
#[test]
fn encoders_refuse_frames_over_the_limit() {
    let mut out = b"keep".to_vec();
    // A GET frame is 9 + 4 + (4 + 3) + (4 + 3) = 27 bytes after the length field.
    assert_eq!(encode_request(1, &[b"GET", b"t:k"], 26, &mut out), Err(FrameError::TooLarge(27)));
    assert_eq!(out, b"keep");
    encode_request(1, &[b"GET", b"t:k"], 27, &mut out).unwrap();
    out.truncate(4);
    let v = Value::Array(vec![Value::bulk(vec![b'x'; 100]), Value::Map(vec![(Value::Null, Value::Double(1.0))])]);
    let len = 9 + value_len(&v);
    assert_eq!(encode_reply(1, &v, len - 1, &mut out), Err(FrameError::TooLarge(len)));
    assert_eq!(out, b"keep");
    encode_reply(1, &v, len, &mut out).unwrap();
    assert_eq!(out.len(), 4 + 4 + len);
    assert_eq!(encode_frame(1, Kind::Reply, &[0; 10], 18, &mut out), Err(FrameError::TooLarge(19)));
    // The length field is a u32: no limit lets a frame pass 4 GiB.
    assert!(check_len(u32::MAX as usize + 1, usize::MAX).is_err());
}

/// `value_len` is exactly what `encode_value` writes.
#[test]
fn value_len_matches_the_encoding() {
    let values = [
        Value::ok(),
        Value::err("ERR x"),
        Value::Integer(-5),
        Value::bulk("abc"),
        Value::Double(f64::NAN),
        Value::Null,
        Value::NullArray,
        Value::Array(vec![Value::Null, Value::bulk("z")]),
        Value::Map(vec![(Value::bulk("k"), Value::Set(vec![Value::Bool(true)]))]),
        Value::Verbatim("txt".into(), b"hello".to_vec()),
    ];
    for v in values {
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        assert_eq!(value_len(&v), out.len(), "{v:?}");
    }
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

#[test]
fn requests_in_a_database() {
    // Database 0 is a plain request: not one byte more.
    let (mut plain, mut db0) = (Vec::new(), Vec::new());
    encode_request(7, &[b"GET", b"t:k"], MAX, &mut plain).unwrap();
    encode_request_in(7, 0, &[b"GET", b"t:k"], MAX, &mut db0).unwrap();
    assert_eq!(db0, plain);
    let (frame, _) = decode_frame(&db0, MAX).unwrap().unwrap();
    assert_eq!(decode_request_in(frame.kind, frame.payload), Ok((0, vec![b"GET".to_vec(), b"t:k".to_vec()])));

    // Any other database: kind 3 and one db byte before the argv.
    let mut out = Vec::new();
    encode_request_in(9, 5, &[b"GET", b"t:k"], MAX, &mut out).unwrap();
    let want = b"\x1c\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x03\x05\x02\x00\x00\x00\x03\x00\x00\x00GET\x03\x00\x00\x00t:k";
    assert_eq!(out, want);
    let (frame, used) = decode_frame(&out, MAX).unwrap().unwrap();
    assert_eq!((frame.req_id, frame.kind, used), (9, Kind::RequestDb, out.len()));
    assert_eq!(decode_request_in(frame.kind, frame.payload), Ok((5, vec![b"GET".to_vec(), b"t:k".to_vec()])));

    // The limit counts the db byte.
    let mut none = Vec::new();
    assert_eq!(encode_request_in(1, 5, &[b"GET", b"t:k"], 27, &mut none), Err(FrameError::TooLarge(28)));
    assert!(none.is_empty());

    // Malformed: no db byte, db 0 spelled long, a reply frame.
    assert_eq!(decode_request_in(Kind::RequestDb, b""), Err(FrameError::Malformed("truncated")));
    assert!(matches!(decode_request_in(Kind::RequestDb, b"\x00\x00\x00\x00\x00"), Err(FrameError::Malformed(_))));
    assert_eq!(decode_request_in(Kind::RequestDb, b"\x02\x00\x00\x00\x00"), Ok((2, vec![])));
    assert_eq!(decode_request_in(Kind::Reply, b"\x06"), Err(FrameError::BadKind(2)));
}
