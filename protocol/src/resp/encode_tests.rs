use super::*;

/// `v` encodes to `resp2` and `resp3` exactly.
fn check(v: Value, resp2: &str, resp3: &str) {
    let mut out = Vec::new();
    encode(&v, RespVersion::Resp2, &mut out);
    assert_eq!(String::from_utf8_lossy(&out), resp2, "RESP2 of {v:?}");
    out.clear();
    encode(&v, RespVersion::Resp3, &mut out);
    assert_eq!(String::from_utf8_lossy(&out), resp3, "RESP3 of {v:?}");
}

fn check_double(d: f64, expected: &str) {
    let mut out = Vec::new();
    write_double(d, &mut out);
    assert_eq!(String::from_utf8_lossy(&out), expected, "double {d:?}");
    if !d.is_nan() {
        assert_eq!(expected.parse::<f64>().unwrap().to_bits(), d.to_bits(), "round trip of {d:?}");
    }
}

#[test]
fn scalars() {
    check(Value::ok(), "+OK\r\n", "+OK\r\n");
    check(Value::err("ERR bad\r\nthing\n"), "-ERR bad  thing \r\n", "-ERR bad  thing \r\n");
    check(Value::Simple("a\rb".into()), "+a b\r\n", "+a b\r\n");
    check(Value::Integer(-42), ":-42\r\n", ":-42\r\n");
    check(Value::Integer(i64::MIN), ":-9223372036854775808\r\n", ":-9223372036854775808\r\n");
    check(Value::bulk("a\r\nb"), "$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n");
    check(Value::bulk(""), "$0\r\n\r\n", "$0\r\n\r\n");
}

#[test]
fn resp2_downgrades() {
    check(Value::Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n");
    check(Value::Double(3.0), "$1\r\n3\r\n", ",3\r\n");
    check(Value::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n");
    check(Value::Double(f64::NEG_INFINITY), "$4\r\n-inf\r\n", ",-inf\r\n");
    check(Value::Double(f64::NAN), "$3\r\nnan\r\n", ",nan\r\n");
    check(Value::Null, "$-1\r\n", "_\r\n");
    check(Value::NullArray, "*-1\r\n", "_\r\n");
    check(Value::Bool(true), ":1\r\n", "#t\r\n");
    check(Value::Bool(false), ":0\r\n", "#f\r\n");
    check(Value::Verbatim("txt".into(), b"hi\r\n".to_vec()), "$4\r\nhi\r\n\r\n", "=8\r\ntxt:hi\r\n\r\n");
    check(Value::Verbatim("markdown".into(), b"x".to_vec()), "$1\r\nx\r\n", "=5\r\ntxt:x\r\n");
    check(
        Value::Map(vec![(Value::bulk("k"), Value::Integer(1)), (Value::Simple("s".into()), Value::Null)]),
        "*4\r\n$1\r\nk\r\n:1\r\n+s\r\n$-1\r\n",
        "%2\r\n$1\r\nk\r\n:1\r\n+s\r\n_\r\n",
    );
    check(Value::Set(vec![Value::bulk("a"), Value::Bool(true)]), "*2\r\n$1\r\na\r\n:1\r\n", "~2\r\n$1\r\na\r\n#t\r\n");
    check(
        Value::Array(vec![Value::Array(vec![]), Value::Double(0.25), Value::Map(vec![])]),
        "*3\r\n*0\r\n$4\r\n0.25\r\n*0\r\n",
        "*3\r\n*0\r\n,0.25\r\n%0\r\n",
    );
}

#[test]
fn doubles_as_redis_prints_them() {
    check_double(0.0, "0");
    check_double(-0.0, "-0");
    check_double(1.0, "1");
    check_double(-17.0, "-17");
    check_double(0.1, "0.1");
    check_double(-2.5, "-2.5");
    check_double(123.456, "123.456");
    check_double(0.001, "0.001");
    check_double(1e-6, "0.000001");
    check_double(1e-7, "1e-7");
    check_double(1.5e-7, "1.5e-7");
    check_double(1.2345678901, "1.2345678901");
    check_double(0.0001234567890123, "1.234567890123e-4");
    check_double(3.14159e-10, "3.14159e-10");
    check_double(4611686018427387904.0, "4611686018427387904");
    check_double(-4611686018427387904.0, "-4611686018427387904");
    check_double(5e18, "5e+18");
    check_double(1.2345678901234568e20, "123456789012345680000");
    check_double(1e21, "1e+21");
    check_double(1e100, "1e+100");
    check_double(1.5e300, "1.5e+300");
    check_double(f64::MAX, "1.7976931348623157e+308");
    check_double(f64::MIN_POSITIVE, "2.2250738585072014e-308");
    check_double(5e-324, "5e-324");
    check_double(0.30000000000000004, "0.30000000000000004");
    check_double(1e15 + 0.5, "1000000000000000.5");
}

#[test]
fn requests() {
    let mut out = Vec::new();
    encode_request(&[b"SET", b"k", b"\r\n"], &mut out);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\r\n\r\n");
    out.clear();
    encode_request(&[], &mut out);
    assert_eq!(out, b"*0\r\n");
    out.clear();
    encode_request_args(&[b"GET".to_vec(), b"key".to_vec()], &mut out);
    assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
}
