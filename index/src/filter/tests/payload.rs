use super::*;

fn check(payload: &[u8], expected: &[(&str, Value)]) {
    assert_eq!(parse_payload(payload), Ok(fields(expected)), "{:?}", String::from_utf8_lossy(payload));
}

fn check_err(payload: &[u8], expected: PayloadError) {
    assert_eq!(parse_payload(payload), Err(expected), "{:?}", String::from_utf8_lossy(payload));
}

#[test]
fn tokens() {
    check(b"", &[]);
    check(b" \t\n ", &[]);
    check(
        b"lang=en n=42  tag=a\ttag=b tag=a x==y e= neg=-7 zip=007",
        &[
            ("lang", kw("en")),
            ("n", Value::Int(42)),
            ("tag", kw("a")),
            ("tag", kw("b")),
            ("x", kw("=y")),
            ("e", kw("")),
            ("neg", Value::Int(-7)),
            ("zip", kw("007")),
        ],
    );
    let raw = parse_payload(b"k=\xff\x00").unwrap();
    assert_eq!(raw.values(b"k").collect::<Vec<_>>(), [&Value::Keyword(b"\xff\x00"[..].into())]);
}

#[test]
fn token_errors() {
    check_err(b"a=1 bad c=2", PayloadError::NotKeyValue { pos: 4 });
    check_err(b"  =2", PayloadError::EmptyName { pos: 2 });
    let long = format!("x=1 {}=1", "n".repeat(MAX_FIELD_NAME_LEN + 1));
    check_err(long.as_bytes(), PayloadError::NameTooLong { pos: 4, len: MAX_FIELD_NAME_LEN + 1 });
    let at_cap = format!("{}=1", "n".repeat(MAX_FIELD_NAME_LEN));
    assert!(parse_payload(at_cap.as_bytes()).is_ok());
    let many: String = (0..=MAX_PAYLOAD_VALUES).map(|i| format!("k={i} ")).collect();
    check_err(many.as_bytes(), PayloadError::TooManyValues);
    assert_eq!(
        PayloadError::NotKeyValue { pos: 4 }.to_string(),
        "payload token at byte 4 is not key=value"
    );
    // `[` is not JSON's object start, so this is a token without `=`.
    check_err(b"[1, 2]", PayloadError::NotKeyValue { pos: 0 });
}

#[test]
fn long_keywords_are_not_searchable() {
    let long = format!("a=1 text={}", "w".repeat(MAX_KEYWORD_LEN + 1));
    check(long.as_bytes(), &[("a", Value::Int(1))]);
    let json = format!(r#"{{"a": 1, "text": "{}"}}"#, "w".repeat(MAX_KEYWORD_LEN + 1));
    check(json.as_bytes(), &[("a", Value::Int(1))]);
}

#[test]
fn json() {
    check(
        br#" {"lang": "en", "n": 42, "s": "42", "f": 1.5, "e": 1e3, "b": true, "no": false,
             "tags": ["x", 1, null, {"a": 1}, [2], "x"], "o": {"a": 1}, "z": null, "empty": [],
             "big": 18446744073709551615, "min": -9223372036854775808} "#,
        &[
            ("lang", kw("en")),
            ("n", Value::Int(42)),
            ("s", Value::Int(42)),
            ("f", kw("1.5")),
            ("e", kw("1000.0")),
            ("b", kw("true")),
            ("no", kw("false")),
            ("tags", kw("x")),
            ("tags", Value::Int(1)),
            ("big", kw("18446744073709551615")),
            ("min", Value::Int(i64::MIN)),
        ],
    );
    check(b"{}", &[]);
    check(br#"{"a": 1, "a": 2}"#, &[("a", Value::Int(2))]);
}

#[test]
fn json_errors() {
    let e = parse_payload(br#"{"a": 1"#).unwrap_err();
    assert!(matches!(e, PayloadError::Json { line: 1, column: 7, .. }), "{e:?}");
    assert!(e.to_string().starts_with("malformed payload JSON: "), "{e}");
    assert!(e.to_string().contains("line 1 column 7"), "{e}");
    let e = parse_payload(b"{\"a\": 1}\n x").unwrap_err();
    assert!(matches!(e, PayloadError::Json { line: 2, column: 2, .. }), "{e:?}");
    assert!(matches!(parse_payload(b"{1: 2}"), Err(PayloadError::Json { .. })));
    assert!(matches!(parse_payload(b"{\"a\": tru}"), Err(PayloadError::Json { .. })));
    assert!(matches!(parse_payload(b"{\"a\": \"\xff\"}"), Err(PayloadError::Json { .. })));
    let deep = format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(parse_payload(deep.as_bytes()), Err(PayloadError::Json { .. })));
    check_err(br#"{"": 1}"#, PayloadError::JsonName { len: 0 });
    let long = format!(r#"{{"{}": 1}}"#, "n".repeat(MAX_FIELD_NAME_LEN + 1));
    check_err(long.as_bytes(), PayloadError::JsonName { len: MAX_FIELD_NAME_LEN + 1 });
    let many: Vec<u32> = (0..=MAX_PAYLOAD_VALUES as u32).collect();
    let many = format!(r#"{{"k": {}}}"#, serde_json::to_string(&many).unwrap());
    check_err(many.as_bytes(), PayloadError::TooManyValues);
}
