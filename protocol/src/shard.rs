//! Router↔shard frames over a Unix socket: `[u32 len][u64 req_id][u8 kind][payload]`,
//! all little-endian; `len` counts the bytes after itself (8 + 1 + payload).
//!
//! INTERFACE STUB — to be implemented.

use crate::Value;

/// Largest frame accepted (bytes after the length field): 600 MiB.
pub const MAX_FRAME: usize = 600 << 20;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Router → shard: payload is an argv (see [`encode_request`]).
    Request = 1,
    /// Shard → router: payload is one [`Value`] in the binary encoding of [`encode_value`].
    Reply = 2,
}

/// A decoded frame borrowing its payload from the input buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    pub req_id: u64,
    pub kind: Kind,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too large: {0} bytes")]
    TooLarge(usize),
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
}

/// Decodes one frame from the front of `buf`: `Ok(None)` if incomplete, else the frame and
/// the bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let _ = buf;
    todo!()
}

/// Appends a request frame: payload = `[u32 argc]` then per arg `[u32 len][bytes]`.
pub fn encode_request(req_id: u64, argv: &[&[u8]], out: &mut Vec<u8>) {
    let _ = (req_id, argv, out);
    todo!()
}

/// Decodes a request payload into its argv.
pub fn decode_request(payload: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    let _ = payload;
    todo!()
}

/// Appends a reply frame carrying `v`.
pub fn encode_reply(req_id: u64, v: &Value, out: &mut Vec<u8>) {
    let _ = (req_id, v, out);
    todo!()
}

/// Decodes a reply payload into a [`Value`].
pub fn decode_value(payload: &[u8]) -> Result<Value, FrameError> {
    let _ = payload;
    todo!()
}
