//! The binary encoding of [`Value`] in reply payloads (layout: the [module docs](super)).

use super::{put_len, Cursor, FrameError, MAX_DEPTH};
use crate::Value;

const SIMPLE: u8 = 1;
const ERROR: u8 = 2;
const INTEGER: u8 = 3;
const BULK: u8 = 4;
const DOUBLE: u8 = 5;
const NULL: u8 = 6;
const NULL_ARRAY: u8 = 7;
const ARRAY: u8 = 8;
const MAP: u8 = 9;
const SET: u8 = 10;
const BOOL: u8 = 11;
const VERBATIM: u8 = 12;

/// Appends `v` in the binary reply encoding (tag byte + LE body; see the
/// [module docs](super)). Lossless: [`decode_value`] returns an equal `Value` (doubles
/// bit for bit), provided `v` nests at most [`MAX_DEPTH`] aggregates deep.
///
/// # Panics
/// If a string or aggregate has more than `u32::MAX` bytes or elements.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Simple(s) => put_bytes(out, SIMPLE, s.as_bytes()),
        Value::Error(s) => put_bytes(out, ERROR, s.as_bytes()),
        Value::Integer(n) => {
            out.push(INTEGER);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Bulk(b) => put_bytes(out, BULK, b),
        Value::Double(d) => {
            out.push(DOUBLE);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Null => out.push(NULL),
        Value::NullArray => out.push(NULL_ARRAY),
        Value::Array(items) | Value::Set(items) => {
            out.push(if matches!(v, Value::Set(_)) { SET } else { ARRAY });
            put_len(out, items.len());
            for item in items {
                encode_value(item, out);
            }
        }
        Value::Map(pairs) => {
            out.push(MAP);
            put_len(out, pairs.len());
            for (k, v) in pairs {
                encode_value(k, out);
                encode_value(v, out);
            }
        }
        Value::Bool(b) => out.extend_from_slice(&[BOOL, u8::from(*b)]),
        Value::Verbatim(format, text) => {
            put_bytes(out, VERBATIM, format.as_bytes());
            put_len(out, text.len());
            out.extend_from_slice(text);
        }
    }
}

/// The number of bytes [`encode_value`] appends for `v`, computed without encoding
/// (used to check a reply against the frame limit before building it).
pub fn value_len(v: &Value) -> usize {
    match v {
        Value::Simple(s) | Value::Error(s) => 5 + s.len(),
        Value::Integer(_) | Value::Double(_) => 9,
        Value::Bulk(b) => 5 + b.len(),
        Value::Null | Value::NullArray => 1,
        Value::Array(items) | Value::Set(items) => 5 + items.iter().map(value_len).sum::<usize>(),
        Value::Map(pairs) => 5 + pairs.iter().map(|(k, v)| value_len(k) + value_len(v)).sum::<usize>(),
        Value::Bool(_) => 2,
        Value::Verbatim(format, text) => 9 + format.len() + text.len(),
    }
}

/// Decodes a reply payload into a [`Value`].
///
/// # Errors
/// [`FrameError::Malformed`] for truncated or trailing bytes, an unknown tag, invalid
/// UTF-8 in a `Simple`/`Error`/verbatim format, a bool byte other than 0/1, an element
/// count larger than the bytes left could hold (checked before allocating), or nesting
/// deeper than [`MAX_DEPTH`].
pub fn decode_value(payload: &[u8]) -> Result<Value, FrameError> {
    let mut r = Cursor::new(payload);
    let v = read_value(&mut r, 0)?;
    r.finish()?;
    Ok(v)
}

/// One value; `depth` is the number of aggregates around it.
fn read_value(r: &mut Cursor<'_>, depth: usize) -> Result<Value, FrameError> {
    Ok(match r.u8()? {
        SIMPLE => Value::Simple(read_text(r)?),
        ERROR => Value::Error(read_text(r)?),
        INTEGER => Value::Integer(r.u64()? as i64),
        BULK => {
            let n = r.len()?;
            Value::Bulk(r.bytes(n)?.to_vec())
        }
        DOUBLE => Value::Double(f64::from_bits(r.u64()?)),
        NULL => Value::Null,
        NULL_ARRAY => Value::NullArray,
        tag @ (ARRAY | SET) => {
            let n = read_count(r, depth, 1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(r, depth + 1)?);
            }
            if tag == SET {
                Value::Set(items)
            } else {
                Value::Array(items)
            }
        }
        MAP => {
            let n = read_count(r, depth, 2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let k = read_value(r, depth + 1)?;
                pairs.push((k, read_value(r, depth + 1)?));
            }
            Value::Map(pairs)
        }
        BOOL => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(FrameError::Malformed("bool byte not 0 or 1")),
        },
        VERBATIM => {
            let format = read_text(r)?;
            let n = r.len()?;
            Value::Verbatim(format, r.bytes(n)?.to_vec())
        }
        _ => return Err(FrameError::Malformed("unknown value tag")),
    })
}

/// An aggregate's element count, after checking the depth and that `count` elements
/// of at least `per` bytes each fit in what is left.
fn read_count(r: &mut Cursor<'_>, depth: usize, per: usize) -> Result<usize, FrameError> {
    if depth >= MAX_DEPTH {
        return Err(FrameError::Malformed("values nested too deep"));
    }
    let n = r.len()?;
    if n > r.remaining() / per {
        return Err(FrameError::Malformed("element count larger than the payload"));
    }
    Ok(n)
}

fn read_text(r: &mut Cursor<'_>) -> Result<String, FrameError> {
    let n = r.len()?;
    let b = r.bytes(n)?;
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(FrameError::Malformed("invalid utf-8")),
    }
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_len(out, b.len());
    out.extend_from_slice(b);
}
