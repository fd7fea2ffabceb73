//! Router↔shard frames over a Unix socket.
//!
//! # Frame
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `len`: u32 LE, bytes after this field = 9 + payload length, at most the frame limit |
//! | 4 | 8 | `req_id`: u64 LE, chosen by the router, echoed in the reply |
//! | 12 | 1 | `kind`: [`Kind`] (1 = request, 2 = reply, 3 = request in a database) |
//! | 13 | len − 9 | payload |
//!
//! # Request payload ([`Kind::Request`])
//!
//! `[u32 argc]` then per argument `[u32 len][len bytes]`, all LE. The argv is the
//! parsed command with tenant-qualified names, binary-safe. It runs in database 0.
//!
//! # Request in a database ([`Kind::RequestDb`])
//!
//! `[u8 db]` then a request payload as above: the command runs in database `db`
//! (SELECT; 1..=255 on the wire, the shard checks it against its `databases`). An
//! encoder writes db 0 as a plain [`Kind::Request`], so a connection that never SELECTs
//! sends exactly the bytes it sent before databases existed, and any other database costs
//! one byte per request.
//!
//! # Reply payload ([`Kind::Reply`])
//!
//! One [`Value`] as a tag byte followed by its body, all integers LE:
//!
//! | tag | `Value` | body |
//! |---|---|---|
//! | 1 | `Simple` | `[u32 len][len bytes UTF-8]` |
//! | 2 | `Error` | `[u32 len][len bytes UTF-8]` |
//! | 3 | `Integer` | `[i64]` |
//! | 4 | `Bulk` | `[u32 len][len bytes]` |
//! | 5 | `Double` | `[u64 IEEE-754 bits]` (NaN payloads and `-0` preserved) |
//! | 6 | `Null` | — |
//! | 7 | `NullArray` | — |
//! | 8 | `Array` | `[u32 n]` then n values |
//! | 9 | `Map` | `[u32 n]` then n × (key value, value value) |
//! | 10 | `Set` | `[u32 n]` then n values |
//! | 11 | `Bool` | `[u8 0 or 1]` |
//! | 12 | `Verbatim` | `[u32 format len][format UTF-8][u32 len][len bytes]` |
//!
//! # Limits
//!
//! Both ends agree on a frame limit (`max_frame_len` in the config, default
//! [`DEFAULT_MAX_FRAME`]; at most [`MAX_FRAME_LIMIT`]). Encoders refuse, without writing
//! anything, a frame that would exceed it ([`FrameError::TooLarge`]: the router answers
//! the client `-ERR request too large`, the shard replies `-ERR reply too large`
//! instead); decoders reject, before allocating: a frame longer than the limit,
//! truncated or trailing bytes, a count larger than the bytes left could hold, unknown
//! tags, invalid UTF-8, and aggregates nested deeper than [`MAX_DEPTH`].

mod value;

pub use value::{decode_value, encode_value, value_len};

use crate::Value;

/// The default frame limit (bytes after the length field): 1 GiB + 1 MiB, so that any
/// request within the default `client_query_buffer_limit` (1 GiB; a request's frame is
/// never larger than its multibulk RESP form) fits, and so does a reply of one 512 MiB
/// value.
pub const DEFAULT_MAX_FRAME: usize = (1 << 30) + (1 << 20);

/// The largest frame limit a configuration may set (the length field is a u32).
pub const MAX_FRAME_LIMIT: usize = 2 << 30;

/// Bytes before the payload: `len` (4) + `req_id` (8) + `kind` (1).
pub const HEADER_LEN: usize = 13;

/// Deepest aggregate nesting [`decode_value`] accepts (a top-level array is depth 1).
pub const MAX_DEPTH: usize = 64;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Router → shard: payload is an argv (see [`encode_request`]).
    Request = 1,
    /// Shard → router: payload is one [`Value`] in the binary encoding of [`encode_value`].
    Reply = 2,
    /// Router → shard: payload is `[u8 db]` and an argv (see [`encode_request_in`]).
    RequestDb = 3,
}

impl TryFrom<u8> for Kind {
    type Error = FrameError;

    /// # Errors
    /// [`FrameError::BadKind`] for anything but 1, 2 and 3.
    fn try_from(b: u8) -> Result<Kind, FrameError> {
        match b {
            1 => Ok(Kind::Request),
            2 => Ok(Kind::Reply),
            3 => Ok(Kind::RequestDb),
            other => Err(FrameError::BadKind(other)),
        }
    }
}

/// A decoded frame borrowing its payload from the input buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The request id; a reply carries its request's.
    pub req_id: u64,
    /// What the payload holds.
    pub kind: Kind,
    /// The payload, undecoded.
    pub payload: &'a [u8],
}

/// A frame or payload that cannot be decoded. Any of these means the peer is broken
/// (or the stream lost its framing): close the socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame (bytes after the length field) exceeds the frame limit: `len` of a
    /// received frame, or the size a frame being encoded would have.
    #[error("frame too large: {0} bytes")]
    TooLarge(usize),
    /// The `kind` byte is not a [`Kind`].
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    /// The header or payload breaks the layout; the text says how.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
}

/// Decodes one frame from the front of `buf`: `Ok(None)` if incomplete, else the frame
/// and the bytes it used (`4 + len`). `max_frame` is the frame limit.
///
/// # Errors
/// [`FrameError::TooLarge`] as soon as the 4 length bytes are there and exceed
/// `max_frame`; [`FrameError::Malformed`] if `len < 9`; [`FrameError::BadKind`] for an
/// unknown kind byte.
pub fn decode_frame(buf: &[u8], max_frame: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(len) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > max_frame {
        return Err(FrameError::TooLarge(len));
    }
    if len < HEADER_LEN - 4 {
        return Err(FrameError::Malformed("frame shorter than its header"));
    }
    let Some(frame) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    let (req_id, rest) = frame.split_at(8);
    let req_id = u64::from_le_bytes(req_id.try_into().expect("8 bytes"));
    let kind = Kind::try_from(rest[0])?;
    Ok(Some((Frame { req_id, kind, payload: &rest[1..] }, 4 + len)))
}

/// Appends a frame with an already encoded payload.
///
/// # Errors
/// [`FrameError::TooLarge`] (nothing appended) if the frame would exceed `max_frame`.
pub fn encode_frame(req_id: u64, kind: Kind, payload: &[u8], max_frame: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    check_len(9 + payload.len(), max_frame)?;
    let start = begin_frame(req_id, kind, out);
    out.extend_from_slice(payload);
    end_frame(start, out);
    Ok(())
}

/// Appends a request frame: payload = `[u32 argc]` then per arg `[u32 len][bytes]`.
///
/// # Errors
/// [`FrameError::TooLarge`] (nothing appended, nothing allocated) if the frame would
/// exceed `max_frame`.
pub fn encode_request(req_id: u64, argv: &[&[u8]], max_frame: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_request_args(req_id, argv, max_frame, out)
}

/// As [`encode_request`], for any byte-like arguments (e.g. a `Vec<Vec<u8>>` argv as is).
///
/// # Errors
/// As [`encode_request`].
pub fn encode_request_args<A: AsRef<[u8]>>(req_id: u64, argv: &[A], max_frame: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_request_in(req_id, 0, argv, max_frame, out)
}

/// As [`encode_request_args`], for a command that runs in database `db`: db 0 is a
/// plain [`Kind::Request`] frame, any other a [`Kind::RequestDb`] frame one byte longer.
///
/// # Errors
/// As [`encode_request`].
pub fn encode_request_in<A: AsRef<[u8]>>(req_id: u64, db: u8, argv: &[A], max_frame: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = request_frame_len(argv) + usize::from(db != 0);
    check_len(len, max_frame)?;
    out.reserve(4 + len);
    let start = if db == 0 {
        begin_frame(req_id, Kind::Request, out)
    } else {
        let start = begin_frame(req_id, Kind::RequestDb, out);
        out.push(db);
        start
    };
    put_len(out, argv.len());
    for arg in argv {
        let arg = arg.as_ref();
        put_len(out, arg.len());
        out.extend_from_slice(arg);
    }
    end_frame(start, out);
    Ok(())
}

/// The length (after the length field) of the request frame carrying `argv`, to check
/// it against the frame limit without encoding it.
pub fn request_frame_len<A: AsRef<[u8]>>(argv: &[A]) -> usize {
    9 + 4 + argv.iter().map(|a| 4 + a.as_ref().len()).sum::<usize>()
}

/// Decodes a request payload into its argv.
///
/// # Errors
/// [`FrameError::Malformed`] if the payload is truncated, has trailing bytes, or
/// claims more arguments than its bytes could hold (checked before allocating).
pub fn decode_request(payload: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut r = Cursor::new(payload);
    let argc = r.len()?;
    if argc > r.remaining() / 4 {
        return Err(FrameError::Malformed("argument count larger than the payload"));
    }
    let mut argv = Vec::with_capacity(argc);
    for _ in 0..argc {
        let n = r.len()?;
        argv.push(r.bytes(n)?.to_vec());
    }
    r.finish()?;
    Ok(argv)
}

/// Decodes the payload of a request frame of either kind into its database and argv:
/// ([`Kind::Request`] → database 0; [`Kind::RequestDb`] → its first byte).
///
/// # Errors
/// [`FrameError::Malformed`] as [`decode_request`], or for a [`Kind::RequestDb`]
/// payload without its db byte, or one whose db byte is 0 (db 0 is always sent as a
/// plain request, so every request has exactly one encoding); [`FrameError::BadKind`]
/// for a reply frame.
pub fn decode_request_in(kind: Kind, payload: &[u8]) -> Result<(u8, Vec<Vec<u8>>), FrameError> {
    match kind {
        Kind::Request => Ok((0, decode_request(payload)?)),
        Kind::RequestDb => match payload.split_first() {
            None => Err(TRUNCATED),
            Some((0, _)) => Err(FrameError::Malformed("database 0 in a request-in-database frame")),
            Some((&db, rest)) => Ok((db, decode_request(rest)?)),
        },
        Kind::Reply => Err(FrameError::BadKind(Kind::Reply as u8)),
    }
}

/// Appends a reply frame carrying `v` (payload: [`encode_value`]).
///
/// # Errors
/// [`FrameError::TooLarge`] (nothing appended, nothing allocated) if the frame would
/// exceed `max_frame`; the shard then sends a short error reply instead.
pub fn encode_reply(req_id: u64, v: &Value, max_frame: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    check_len(9 + value_len(v), max_frame)?;
    let start = begin_frame(req_id, Kind::Reply, out);
    encode_value(v, out);
    end_frame(start, out);
    Ok(())
}

/// The size of a frame of `len` bytes (after the length field) against the limit.
fn check_len(len: usize, max_frame: usize) -> Result<(), FrameError> {
    if len > max_frame.min(u32::MAX as usize) {
        return Err(FrameError::TooLarge(len));
    }
    Ok(())
}

/// Writes the header with a placeholder length; returns where the frame starts.
fn begin_frame(req_id: u64, kind: Kind, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&req_id.to_le_bytes());
    out.push(kind as u8);
    start
}

/// Patches the length of the frame that starts at `start` (checked by the caller
/// against the limit, so it fits in the u32).
fn end_frame(start: usize, out: &mut [u8]) {
    let len = out.len() - start - 4;
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
}

/// Appends a u32 LE length (callers checked the frame against its limit, < 4 GiB).
fn put_len(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("length fits in u32 (frames are below the frame limit)");
    out.extend_from_slice(&n.to_le_bytes());
}

/// Bounds-checked reading of a payload.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

const TRUNCATED: FrameError = FrameError::Malformed("truncated");

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if n > self.remaining() {
            return Err(TRUNCATED);
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u32 LE length or count.
    fn len(&mut self) -> Result<usize, FrameError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    /// Errors unless every byte was read.
    fn finish(&self) -> Result<(), FrameError> {
        if self.remaining() != 0 {
            return Err(FrameError::Malformed("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
