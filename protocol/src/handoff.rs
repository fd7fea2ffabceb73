//! Connection hand-off messages (DESIGN §1, "connection hand-off"): a router executor
//! passes a client's TCP socket to the shard all its commands go to, and the shard
//! passes it back when the client sends a command the shard does not serve itself.
//!
//! Messages travel over a Unix stream socket (`shard-III/handoff.sock`, one connection
//! per router executor per shard); the socket descriptor itself rides along as
//! `SCM_RIGHTS` ancillary data on the `sendmsg` of the message's first byte. This module
//! is only the byte format; the descriptor passing lives with the I/O.
//!
//! # Message
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `len`: u32 LE, bytes after this field = 19 + data length, at most [`MAX_MESSAGE`] |
//! | 4 | 1 | `kind`: [`MsgKind`] (1 = take, 2 = return, 3 = closed) |
//! | 5 | 8 | `client_id`: u64 LE, the router's client id (CLIENT ID) |
//! | 13 | 1 | `resp`: 2 or 3, the connection's protocol version |
//! | 14 | 8 | `commands`: u64 LE, commands the shard served for this client since it took it (0 in a take) |
//! | 22 | 1 | `db`: the connection's selected database (SELECT) |
//! | 23 | len − 19 | `data`: for a return, request bytes the shard read but did not serve, starting at a request boundary; empty otherwise |
//!
//! A take and a return carry exactly one descriptor; a closed message carries none.

use crate::resp::RespVersion;
use thiserror::Error;

/// Largest `len` a decoder accepts (1 GiB + header): bounds the unserved request bytes
/// a return can carry.
pub const MAX_MESSAGE: usize = (1 << 30) + HEADER - 4;
/// Bytes before `data`.
pub const HEADER: usize = 23;

/// What a message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    /// Router → shard: serve this client (descriptor attached).
    Take = 1,
    /// Shard → router: serve this client again, starting with `data` (descriptor attached).
    Return = 2,
    /// Shard → router: the client's connection is closed (EOF, QUIT-less close, error,
    /// shutdown); forget it.
    Closed = 3,
}

/// One decoded message (without its descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: MsgKind,
    pub client_id: u64,
    /// The connection's protocol version (a byte 2 or 3 on the wire).
    pub resp: RespVersion,
    pub commands: u64,
    /// The connection's selected database: it moves with the connection both ways.
    pub db: u8,
    pub data: Vec<u8>,
}

/// A malformed message: the channel is broken and must be closed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandoffError {
    #[error("hand-off message too large: {0} bytes")]
    TooLarge(usize),
    #[error("hand-off message too short: {0} bytes")]
    TooShort(usize),
    #[error("unknown hand-off message kind {0}")]
    Kind(u8),
    #[error("bad protocol version {0} in hand-off message")]
    Resp(u8),
}

/// Appends `m` to `out`.
pub fn encode(m: &Message, out: &mut Vec<u8>) {
    out.reserve(4 + HEADER - 4 + m.data.len());
    out.extend_from_slice(&((HEADER - 4 + m.data.len()) as u32).to_le_bytes());
    out.push(m.kind as u8);
    out.extend_from_slice(&m.client_id.to_le_bytes());
    out.push(match m.resp {
        RespVersion::Resp2 => 2,
        RespVersion::Resp3 => 3,
    });
    out.extend_from_slice(&m.commands.to_le_bytes());
    out.push(m.db);
    out.extend_from_slice(&m.data);
}

/// Decodes the message at the start of `buf`: `Ok(None)` if it is not complete yet,
/// else the message and the bytes it used. Errors: see [`HandoffError`]; the length is
/// checked before anything is allocated.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, HandoffError> {
    let Some(len) = buf.get(..4) else { return Ok(None) };
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if len > MAX_MESSAGE {
        return Err(HandoffError::TooLarge(len));
    }
    if len < HEADER - 4 {
        return Err(HandoffError::TooShort(len));
    }
    let Some(body) = buf.get(4..4 + len) else { return Ok(None) };
    let kind = match body[0] {
        1 => MsgKind::Take,
        2 => MsgKind::Return,
        3 => MsgKind::Closed,
        k => return Err(HandoffError::Kind(k)),
    };
    let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
    let resp = match body[9] {
        2 => RespVersion::Resp2,
        3 => RespVersion::Resp3,
        v => return Err(HandoffError::Resp(v)),
    };
    let m = Message { kind, client_id: u64_at(1), resp, commands: u64_at(10), db: body[18], data: body[HEADER - 4..].to_vec() };
    Ok(Some((m, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: MsgKind, data: &[u8]) -> Message {
        Message { kind, client_id: 0x0102_0304_0506_0708, resp: RespVersion::Resp3, commands: 42, db: 7, data: data.to_vec() }
    }

    #[test]
    fn round_trip_at_every_split() {
        let mut buf = Vec::new();
        encode(&msg(MsgKind::Take, b""), &mut buf);
        encode(&msg(MsgKind::Return, b"*1\r\n$4\r\nPING\r\n"), &mut buf);
        encode(&msg(MsgKind::Closed, b""), &mut buf);
        assert_eq!(buf.len(), 3 * HEADER + 14);
        for cut in 0..buf.len() {
            // A prefix decodes to complete messages or `None`, never an error.
            let mut at = 0;
            while let Some((_, used)) = decode(&buf[at..cut]).unwrap() {
                at += used;
            }
        }
        let (a, n) = decode(&buf).unwrap().unwrap();
        assert_eq!(a, msg(MsgKind::Take, b""));
        let (b, m) = decode(&buf[n..]).unwrap().unwrap();
        assert_eq!(b, msg(MsgKind::Return, b"*1\r\n$4\r\nPING\r\n"));
        let (c, k) = decode(&buf[n + m..]).unwrap().unwrap();
        assert_eq!(c, msg(MsgKind::Closed, b""));
        assert_eq!(n + m + k, buf.len());
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut buf = Vec::new();
        encode(&msg(MsgKind::Take, b""), &mut buf);
        let mut bad = buf.clone();
        bad[4] = 9;
        assert_eq!(decode(&bad), Err(HandoffError::Kind(9)));
        let mut bad = buf.clone();
        bad[13] = 4;
        assert_eq!(decode(&bad), Err(HandoffError::Resp(4)));
        assert_eq!(decode(&u32::MAX.to_le_bytes()), Err(HandoffError::TooLarge(u32::MAX as usize)));
        assert_eq!(decode(&3u32.to_le_bytes()), Err(HandoffError::TooShort(3)));
    }
}
