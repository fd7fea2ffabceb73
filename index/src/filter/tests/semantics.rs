use super::*;

/// Checks `filter` against each row: `rows` pairs fields with the expected answer.
fn check(filter: &str, rows: &[(&Fields, bool)]) {
    let f = Filter::parse(filter).unwrap();
    for (i, (fields, want)) in rows.iter().enumerate() {
        assert_eq!(f.matches(fields), *want, "{filter:?} on row {i}: {fields:?}");
    }
}

#[test]
fn missing_and_multi_valued_fields() {
    let none = Fields::new();
    let one = fields(&[("tag", kw("a")), ("n", Value::Int(5))]);
    let two = fields(&[("tag", kw("a")), ("tag", kw("b")), ("n", Value::Int(1)), ("n", Value::Int(10))]);
    let words = fields(&[("n", kw("five"))]);
    check("tag = a", &[(&none, false), (&one, true), (&two, true), (&words, false)]);
    check("tag = b", &[(&none, false), (&one, false), (&two, true)]);
    check("tag != a", &[(&none, true), (&one, false), (&two, false), (&words, true)]);
    check("tag != b", &[(&none, true), (&one, true), (&two, false)]);
    check("tag IN (b, c)", &[(&none, false), (&one, false), (&two, true)]);
    check("n > 5", &[(&none, false), (&one, false), (&two, true), (&words, false)]);
    check("n >= 5", &[(&one, true), (&two, true)]);
    check("n < 5", &[(&one, false), (&two, true)]);
    check("n <= 5", &[(&one, true), (&two, true)]);
    check("n > 5 AND n < 3", &[(&one, false), (&two, true)]);
    check("n BETWEEN 2 AND 9", &[(&none, false), (&one, true), (&two, false), (&words, false)]);
    check("n BETWEEN 9 AND 2", &[(&one, false), (&two, false)]);
    check("n EXISTS", &[(&none, false), (&one, true), (&words, true)]);
    check("NOT n EXISTS", &[(&none, true), (&one, false)]);
    check("NOT tag = a", &[(&none, true), (&one, false)]);
    check("n = five", &[(&words, true), (&one, false)]);
    check("n = \"5\"", &[(&one, true), (&words, false)]);
}

#[test]
fn payload_and_query_agree_on_kinds() {
    let text = parse_payload(b"n=42 zip=00501 f=1.5").unwrap();
    let json = parse_payload(br#"{"n": "42", "zip": "00501", "f": 1.5}"#).unwrap();
    for f in [&text, &json] {
        check("n = 42 AND n > 41 AND zip = 00501 AND f = 1.5", &[(f, true)]);
        check("zip > 500 OR f > 1", &[(f, false)]);
    }
}
