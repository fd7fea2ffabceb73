//! Generators and comparison helpers shared by the property tests.

use keel_protocol::resp::{write_double, Limits};
use keel_protocol::Value;
use proptest::prelude::*;

/// Any argv: up to 8 binary arguments.
pub fn argv() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8)
}

/// A `Value` that RESP3 carries exactly (up to `NullArray` → `Null`): simple and error
/// strings without `\r`/`\n`, 3-byte verbatim formats.
pub fn resp_value() -> impl Strategy<Value = Value> {
    value_with("[^\r\n]{0,12}", "[a-z]{3}")
}

/// Any `Value`, for the lossless binary encoding.
pub fn any_value() -> impl Strategy<Value = Value> {
    value_with(".{0,12}", ".{0,5}")
}

fn value_with(line: &'static str, format: &'static str) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        line.prop_map(Value::Simple),
        line.prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bulk),
        any::<f64>().prop_map(Value::Double),
        prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-0.0), (-1e6..1e6f64)].prop_map(Value::Double),
        Just(Value::Null),
        Just(Value::NullArray),
        any::<bool>().prop_map(Value::Bool),
        (format, prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(f, t)| Value::Verbatim(f, t)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            prop::collection::vec(inner, 0..6).prop_map(Value::Set),
        ]
    })
}

/// Byte strings made of protocol fragments, to reach deep into the parsers' branches.
pub fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"*", b"$", b"+", b"-", b":", b"_", b",", b"#", b"!", b"=", b"(", b"%", b"~", b">", b"|", b"\r\n", b"\r",
        b"\n", b"0", b"1", b"2", b"3", b"-1", b"10", b"99999999999", b"t", b"f", b"inf", b"1.5", b"txt:", b"a",
        b"SET", b" ", b"\t", b"\"", b"'", b"\\", b"\\x4", b"1", b"\x00", b"\xff",
    ];
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|pieces| pieces.concat())
}

/// Default limits, and tight ones that the generators can exceed.
pub fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        Just(Limits { max_bulk_len: 4, max_array_len: 3, max_depth: 2, max_inline_len: 8, max_request_len: 40 }),
    ]
}

/// What RESP3 turns `v` into.
pub fn via_resp3(v: &Value) -> Value {
    match v {
        Value::NullArray => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(via_resp3).collect()),
        Value::Set(items) => Value::Set(items.iter().map(via_resp3).collect()),
        Value::Map(pairs) => Value::Map(pairs.iter().map(|(k, v)| (via_resp3(k), via_resp3(v))).collect()),
        other => other.clone(),
    }
}

/// What RESP2 turns `v` into.
pub fn via_resp2(v: &Value) -> Value {
    match v {
        Value::Double(d) => {
            let mut text = Vec::new();
            write_double(*d, &mut text);
            Value::Bulk(text)
        }
        Value::Bool(b) => Value::Integer(i64::from(*b)),
        Value::Verbatim(_, text) => Value::Bulk(text.clone()),
        Value::Array(items) | Value::Set(items) => Value::Array(items.iter().map(via_resp2).collect()),
        Value::Map(pairs) => Value::Array(pairs.iter().flat_map(|(k, v)| [via_resp2(k), via_resp2(v)]).collect()),
        other => other.clone(),
    }
}

/// Equality with NaN equal to NaN (doubles are compared by value otherwise).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

/// Cuts `buf` into chunks at the given (sorted, deduplicated) positions.
pub fn chunk_ends(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    ends.push(len);
    ends.sort_unstable();
    ends.dedup();
    ends
}
