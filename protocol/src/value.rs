//! The protocol-neutral reply value: the RESP3 data model.
//!
//! Shards answer with a [`Value`]; the router encodes it for the client's protocol
//! (RESP2 or RESP3 today; native and JSON later). RESP2 downgrades are defined in
//! [`crate::resp::encode`]: `Double` → bulk string (Redis's number formatting), `Map` →
//! flat array, `Set` → array, `Bool` → integer 1/0, `Null` → null bulk string (`$-1`),
//! `NullArray` → `*-1`, `Verbatim` → bulk string of the text. Between router and shard
//! a `Value` travels losslessly in the binary encoding of [`crate::shard::encode_value`].

/// One reply value (RESP3 data model, <https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md>).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK` — a short status line; must not contain `\r` or `\n` (the RESP encoder
    /// replaces them with spaces).
    Simple(String),
    /// `-ERR …` — the full error line including its code prefix (`ERR`, `WRONGTYPE`, …);
    /// must not contain `\r` or `\n` (the RESP encoder replaces them with spaces).
    Error(String),
    /// `:123`
    Integer(i64),
    /// `$3\r\nfoo` — binary-safe bytes.
    Bulk(Vec<u8>),
    /// RESP3 `,1.5`; RESP2 sends it as a bulk string.
    Double(f64),
    /// RESP3 `_`; RESP2 `$-1`.
    Null,
    /// RESP2 `*-1` (null array; e.g. some blocking commands); RESP3 `_`.
    NullArray,
    /// `*N`
    Array(Vec<Value>),
    /// RESP3 `%N`; RESP2 a flat array of 2N elements.
    Map(Vec<(Value, Value)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Value>),
    /// RESP3 `#t`/`#f`; RESP2 `:1`/`:0`.
    Bool(bool),
    /// RESP3 `=N\r\ntxt:…` verbatim string: (format, text). The format is 3 bytes, e.g.
    /// `txt` or `mkd` (any other is sent as `txt`); RESP2 sends the text as a bulk string.
    Verbatim(String, Vec<u8>),
}

impl Value {
    /// `+OK`
    pub fn ok() -> Value {
        Value::Simple("OK".to_string())
    }

    /// An error reply; `msg` is the whole line, e.g. `"ERR syntax error"`.
    pub fn err(msg: impl Into<String>) -> Value {
        Value::Error(msg.into())
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl AsRef<[u8]>) -> Value {
        Value::Bulk(b.as_ref().to_vec())
    }

    /// True for `Value::Error`.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}
