//! [`parse_payload`]: a payload blob's searchable [`Fields`].

use super::value::{Fields, Value};
use super::{MAX_FIELD_NAME_LEN, MAX_KEYWORD_LEN, MAX_PAYLOAD_VALUES};

/// Why a payload was refused. `Display` is the text after `ERR ` in a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload starts with `{` but is not one well-formed JSON object; the text is
    /// serde_json's, with its line and column.
    #[error("malformed payload JSON: {msg}")]
    Json { line: usize, column: usize, msg: String },
    /// A whitespace-separated token has no `=`.
    #[error("payload token at byte {pos} is not key=value")]
    NotKeyValue { pos: usize },
    /// A token starts with `=`.
    #[error("payload token at byte {pos} has an empty field name")]
    EmptyName { pos: usize },
    /// A token's field name is longer than [`MAX_FIELD_NAME_LEN`].
    #[error("payload token at byte {pos} has a field name of {len} bytes (at most {MAX_FIELD_NAME_LEN})")]
    NameTooLong { pos: usize, len: usize },
    /// A JSON object key is empty or longer than [`MAX_FIELD_NAME_LEN`].
    #[error("payload JSON field name of {len} bytes (must be 1 to {MAX_FIELD_NAME_LEN})")]
    JsonName { len: usize },
    /// More than [`MAX_PAYLOAD_VALUES`] searchable values.
    #[error("payload has more than {MAX_PAYLOAD_VALUES} searchable values")]
    TooManyValues,
}

/// Parses a payload blob into its searchable fields.
///
/// - If the first non-whitespace byte is `{`, the payload must be one JSON object
///   (trailing whitespace only). Its top-level members are the fields: an integer that
///   fits `i64` and a string are classified by their text ([`Value::from_text`], so
///   `"42"` is `Int(42)`); `true`/`false` are keywords `true`/`false`; any other number
///   (a float, or an integer past `i64`) is the keyword of serde_json's text for it
///   (`1.5` → `1.5`, `1e3` → `1000.0`, `18446744073709551615` stays as written), which
///   `=`/`IN` can match but ranges never do; an array of scalars gives one value per
///   element. `null`, nested objects, and arrays or `null` inside arrays are not
///   searchable and are skipped. A key repeated in the object keeps its last value.
/// - Otherwise the payload is ASCII-whitespace-separated `key=value` tokens, split at
///   the first `=` (the value may contain `=` and be empty); the value is classified by
///   [`Value::from_text`]; a repeated key is multi-valued. Bytes need not be UTF-8.
///   An empty payload has no fields.
///
/// Keyword values longer than [`MAX_KEYWORD_LEN`] bytes are not searchable (skipped:
/// a payload may carry long text to be returned verbatim). Field names must be 1 to
/// [`MAX_FIELD_NAME_LEN`] bytes, and a payload has at most [`MAX_PAYLOAD_VALUES`]
/// searchable values, or the payload is refused.
pub fn parse_payload(payload: &[u8]) -> Result<Fields, PayloadError> {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_json(payload),
        _ => parse_tokens(payload),
    }
}

fn parse_tokens(payload: &[u8]) -> Result<Fields, PayloadError> {
    let mut pairs = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        if payload[pos].is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < payload.len() && !payload[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let token = &payload[start..pos];
        let eq = token.iter().position(|&b| b == b'=').ok_or(PayloadError::NotKeyValue { pos: start })?;
        let (name, value) = (&token[..eq], &token[eq + 1..]);
        if name.is_empty() {
            return Err(PayloadError::EmptyName { pos: start });
        }
        if name.len() > MAX_FIELD_NAME_LEN {
            return Err(PayloadError::NameTooLong { pos: start, len: name.len() });
        }
        push(&mut pairs, name, Value::from_text(value))?;
    }
    Ok(Fields::from_pairs(pairs))
}

fn parse_json(payload: &[u8]) -> Result<Fields, PayloadError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload)
        .map_err(|e| PayloadError::Json { line: e.line(), column: e.column(), msg: e.to_string() })?;
    let mut pairs = Vec::new();
    for (name, value) in &object {
        if name.is_empty() || name.len() > MAX_FIELD_NAME_LEN {
            return Err(PayloadError::JsonName { len: name.len() });
        }
        match value {
            serde_json::Value::Array(items) => {
                for item in items {
                    if let Some(v) = json_scalar(item) {
                        push(&mut pairs, name.as_bytes(), v)?;
                    }
                }
            }
            other => {
                if let Some(v) = json_scalar(other) {
                    push(&mut pairs, name.as_bytes(), v)?;
                }
            }
        }
    }
    Ok(Fields::from_pairs(pairs))
}

/// A JSON scalar's value; `None` for what is not searchable (null, objects, arrays).
fn json_scalar(value: &serde_json::Value) -> Option<Value> {
    match value {
        serde_json::Value::Bool(b) => Some(Value::Keyword(if *b { &b"true"[..] } else { &b"false"[..] }.into())),
        serde_json::Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Keyword(n.to_string().into_bytes().into()),
        }),
        serde_json::Value::String(s) => Some(Value::from_text(s.as_bytes())),
        serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

/// Adds one pair, skipping keywords over the length cap and enforcing the count cap.
fn push(pairs: &mut Vec<(Box<[u8]>, Value)>, name: &[u8], value: Value) -> Result<(), PayloadError> {
    if matches!(&value, Value::Keyword(k) if k.len() > MAX_KEYWORD_LEN) {
        return Ok(());
    }
    if pairs.len() >= MAX_PAYLOAD_VALUES {
        return Err(PayloadError::TooManyValues);
    }
    pairs.push((name.into(), value));
    Ok(())
}
