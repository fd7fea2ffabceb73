//! RESP2/RESP3 codec (spec: <https://redis.io/docs/latest/develop/reference/protocol-spec/>).
//!
//! - Requests ([`parse_request`], [`RequestParser`], [`split_inline`]): what a client
//!   sends, parsed exactly as Redis's `processMultibulkBuffer` / `processInlineBuffer`
//!   do, with Redis's error texts.
//! - Replies ([`parse_value`]): every RESP2/RESP3 reply type, for clients (the
//!   benchmark) and tests.
//! - Encoding ([`encode`], [`encode_request`], [`write_double`]): RESP3 natively,
//!   RESP2 with the downgrades listed on [`encode`].
//!
//! Every parser returns `Ok(None)` when `buf` holds only a prefix of a message (the
//! caller reads more and calls again with the longer buffer) and checks [`Limits`]
//! before allocating, so a hostile length such as `$999999999999` costs nothing.

mod encode;
mod reply;
mod request;

pub use encode::{encode, encode_request, encode_request_args, write_double};
pub use reply::parse_value;
pub use request::{parse_request, split_inline, Argv, RequestParser};

/// Which reply dialect a connection speaks (`HELLO 3` switches to RESP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespVersion {
    /// The default dialect: no maps, sets, doubles, booleans or typed nulls.
    Resp2,
    /// The dialect selected by `HELLO 3`.
    Resp3,
}

/// Hard limits checked before allocating.
///
/// The defaults are Redis's for bulk and inline lengths; keel caps the element count of
/// one aggregate at 2^20 (Redis allows `INT_MAX` multibulk arguments).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string, bytes (Redis `proto-max-bulk-len`, default 512 MiB). A
    /// longer `$` length is rejected as `invalid bulk length` before anything is read.
    pub max_bulk_len: usize,
    /// Largest multibulk / aggregate element count (a map counts its pairs); default
    /// 2^20. A larger `*` count is rejected as `invalid multibulk length`.
    pub max_array_len: usize,
    /// Deepest aggregate nesting accepted by [`parse_value`] (a top-level array is depth
    /// 1; requests are flat). The reply parser recurses once per level, so keep this
    /// small.
    pub max_depth: usize,
    /// Longest inline command line and longest `*`/`$` header line, bytes (Redis
    /// `PROTO_INLINE_MAX_SIZE`: 64 KiB).
    pub max_inline_len: usize,
    /// Longest multibulk request, all its bytes as sent, default 1 GiB (keel's
    /// `client_query_buffer_limit`, after Redis's `client-query-buffer-limit`: the most a
    /// connection buffers for one request). Checked at each argument's header, before
    /// the argument is read.
    pub max_request_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 << 20, max_array_len: 1 << 20, max_depth: 32, max_inline_len: 64 << 10, max_request_len: 1 << 30 }
    }
}

/// A malformed or over-limit input. The `Display` text is what follows
/// `-ERR Protocol error: ` in the reply, e.g. `invalid bulk length`.
///
/// Request errors use Redis's texts: `invalid multibulk length`, `invalid bulk length`,
/// `expected '$', got 'X'`, `too big inline request`, `too big mbulk count string`,
/// `too big bulk count string`, `unbalanced quotes in request`. After any of them the
/// connection's input can no longer be framed; Redis replies and closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The message; see the type's docs for the texts.
    #[error("{0}")]
    Invalid(String),
}

impl ProtocolError {
    pub(crate) fn new(msg: impl Into<String>) -> ProtocolError {
        ProtocolError::Invalid(msg.into())
    }
}
