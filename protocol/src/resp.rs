//! RESP2/RESP3 codec (spec: <https://redis.io/docs/latest/develop/reference/protocol-spec/>).
//!
//! INTERFACE STUB — to be implemented (see signatures and docs).

use crate::Value;

/// Which reply dialect a connection speaks (`HELLO 3` switches to RESP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespVersion {
    Resp2,
    Resp3,
}

/// Hard limits checked before allocating.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string, bytes (Redis `proto-max-bulk-len`, default 512 MiB).
    pub max_bulk_len: usize,
    /// Largest multibulk / aggregate element count (Redis: 1024*1024*1024; keel 1<<20... see default).
    pub max_array_len: usize,
    /// Deepest aggregate nesting accepted by [`parse_value`] (requests are flat).
    pub max_depth: usize,
    /// Longest inline command line, bytes (Redis: 64 KiB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 << 20, max_array_len: 1 << 20, max_depth: 32, max_inline_len: 64 << 10 }
    }
}

/// A malformed or over-limit input. The `Display` text is what follows
/// `-ERR Protocol error: ` in the reply, e.g. `invalid bulk length`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    Invalid(String),
}

/// Parses one request (multibulk `*N\r\n$L\r\n…` or an inline line `PING\r\n`) from the
/// front of `buf`. Returns `Ok(None)` if more bytes are needed, or `Ok(Some((argv, used)))`.
/// An inline empty line yields an empty argv (callers skip it, as Redis does).
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError> {
    let _ = (buf, limits);
    todo!()
}

/// Parses one reply value (any RESP2/RESP3 type) from the front of `buf`.
pub fn parse_value(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ProtocolError> {
    let _ = (buf, limits);
    todo!()
}

/// Appends `v` encoded for `ver` to `out`.
pub fn encode(v: &Value, ver: RespVersion, out: &mut Vec<u8>) {
    let _ = (v, ver, out);
    todo!()
}

/// Appends a request (array of bulk strings) to `out`.
pub fn encode_request(argv: &[&[u8]], out: &mut Vec<u8>) {
    let _ = (argv, out);
    todo!()
}
