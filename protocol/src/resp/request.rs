//! Request parsing: multibulk and inline commands, as Redis's `networking.c` does it.

use super::{Limits, ProtocolError};
use crate::num::parse_i64;

/// A parsed request: its arguments, the command name first.
pub type Argv = Vec<Vec<u8>>;

/// Multibulk counts above this are rejected even when [`Limits`] allow more (Redis:
/// `ll > INT_MAX`).
const MAX_MULTIBULK: i64 = i32::MAX as i64;

/// `argv` is pre-sized to at most this many slots, whatever count the client claims.
const ARGV_PRESIZE: usize = 16;

/// Parses one request from the front of `buf` and returns its argv and the number of
/// bytes it used; `Ok(None)` if `buf` holds only a prefix of a request.
///
/// - **Multibulk** (`buf[0] == b'*'`): `*<n>\r\n` then `n` times `$<len>\r\n<len bytes>\r\n`.
///   Counts and lengths are parsed as Redis's `string2ll` (no `+`, no leading zeros).
///   `*0\r\n` and `*-1\r\n` (any `n <= 0`) yield an empty argv. As in Redis, the two
///   bytes after each `\r` and after each argument are skipped, not checked.
/// - **Inline** (anything else): one line ending in `\n` (an optional `\r` before it is
///   dropped), split by [`split_inline`]. An empty or all-blank line yields an empty
///   argv; callers skip it, as Redis does.
///
/// # Errors
/// Redis's texts, checked before allocating:
/// - `invalid multibulk length`: bad count, or more than [`Limits::max_array_len`].
/// - `invalid bulk length`: bad or negative length, or more than [`Limits::max_bulk_len`].
/// - `request exceeds client_query_buffer_limit of N bytes`: the arguments read so far
///   and the next one announced (or the count times the smallest argument) would make
///   the request longer than [`Limits::max_request_len`].
/// - `expected '$', got 'X'`: an argument header not starting with `$`.
/// - `too big mbulk count string` / `too big bulk count string`: no `\r` within
///   [`Limits::max_inline_len`] bytes of a header line.
/// - `too big inline request`: an inline line longer than [`Limits::max_inline_len`].
/// - `unbalanced quotes in request`: see [`split_inline`].
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Argv, usize)>, ProtocolError> {
    // Nothing is kept between calls, so check that a long request is all there before
    // copying its arguments: an incomplete one then costs a scan of its headers only.
    RequestParser::new().step(buf, limits, true)
}

/// A resumable [`parse_request`]: remembers the arguments of a partly received
/// multibulk request, so that a request with many arguments arriving in many reads is
/// parsed in linear time instead of being re-parsed from its start after every read.
///
/// Contract: after [`parse`](Self::parse) returns `Ok(None)`, the next call must pass a
/// buffer that starts with the same bytes (the same request start, more bytes
/// appended). After `Ok(Some(..))` or `Err(..)` the parser is fresh again.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Arguments of the current multibulk request parsed so far.
    argv: Vec<Vec<u8>>,
    /// Arguments still expected; 0 when no multibulk request is in progress.
    left: usize,
    /// Offset (from the request's first byte) where parsing resumes.
    pos: usize,
}

impl RequestParser {
    /// A parser with no request in progress.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// True if a multibulk request is partly parsed.
    pub fn in_progress(&self) -> bool {
        self.left > 0
    }

    /// Forgets any partly parsed request.
    pub fn reset(&mut self) {
        *self = RequestParser::default();
    }

    /// As [`parse_request`], resuming where the previous `Ok(None)` stopped.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<(Argv, usize)>, ProtocolError> {
        let res = self.step(buf, limits, false);
        if !matches!(res, Ok(None)) {
            self.reset();
        }
        res
    }

    /// One parse step; with `prescan`, a request of more than [`ARGV_PRESIZE`] arguments
    /// is first checked to be complete without allocating.
    fn step(&mut self, buf: &[u8], limits: &Limits, prescan: bool) -> Result<Option<(Argv, usize)>, ProtocolError> {
        if self.left == 0 {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return parse_inline(buf, limits),
            }
            let Some(cr) = find_cr(buf, 0, limits, "too big mbulk count string")? else {
                return Ok(None);
            };
            let count = match parse_i64(&buf[1..cr]) {
                Some(n) if n <= MAX_MULTIBULK && (n <= 0 || n as u64 <= limits.max_array_len as u64) => n,
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if count <= 0 {
                return Ok(Some((Vec::new(), cr + 2)));
            }
            // Each argument takes at least 6 bytes (`$0\r\n\r\n`).
            if (cr as u64 + 2).saturating_add(count as u64 * 6) > limits.max_request_len as u64 {
                return Err(too_long(limits));
            }
            self.left = count as usize;
            self.pos = cr + 2;
            let mut capacity = self.left.min(ARGV_PRESIZE);
            if prescan && self.left > ARGV_PRESIZE {
                let mut at = self.pos;
                for _ in 0..self.left {
                    let Some((data, len)) = bulk_at(buf, at, limits)? else {
                        return Ok(None);
                    };
                    at = data + len + 2;
                }
                // All there: the count is bounded by the buffer's size.
                capacity = self.left;
            }
            self.argv = Vec::with_capacity(capacity);
        }
        while self.left > 0 {
            let Some((data, len)) = bulk_at(buf, self.pos, limits)? else {
                return Ok(None);
            };
            self.argv.push(buf[data..data + len].to_vec());
            self.pos = data + len + 2;
            self.left -= 1;
        }
        Ok(Some((std::mem::take(&mut self.argv), self.pos)))
    }
}

/// Reads the header of the argument at `buf[start]` and returns where its bytes start
/// and how many there are, once they and the two bytes after them are all in `buf`.
fn bulk_at(buf: &[u8], start: usize, limits: &Limits) -> Result<Option<(usize, usize)>, ProtocolError> {
    let Some(cr) = find_cr(buf, start, limits, "too big bulk count string")? else {
        return Ok(None);
    };
    if buf[start] != b'$' {
        let got = char::from(buf[start]);
        return Err(ProtocolError::new(format!("expected '$', got '{got}'")));
    }
    let len = match parse_i64(&buf[start + 1..cr]) {
        Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len as u64 => n as usize,
        _ => return Err(ProtocolError::new("invalid bulk length")),
    };
    let data = cr + 2;
    if data.saturating_add(len).saturating_add(2) > limits.max_request_len {
        return Err(too_long(limits));
    }
    if buf.len() - data < len + 2 {
        return Ok(None);
    }
    Ok(Some((data, len)))
}

/// The error for a request longer than [`Limits::max_request_len`].
fn too_long(limits: &Limits) -> ProtocolError {
    ProtocolError::new(format!("request exceeds client_query_buffer_limit of {} bytes", limits.max_request_len))
}

/// Finds the `\r` ending the header line that starts at `buf[start]`.
///
/// `Ok(None)` if the line (and the byte after its `\r`) is not all there yet; the error
/// `too_big` if there is no `\r` within `max_inline_len` bytes. Only those bytes are
/// scanned, so a huge buffer is never rescanned in full.
fn find_cr(buf: &[u8], start: usize, limits: &Limits, too_big: &str) -> Result<Option<usize>, ProtocolError> {
    let rest = &buf[start..];
    let window = &rest[..rest.len().min(limits.max_inline_len.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r') {
        // Redis also waits for the byte after `\r` (the `\n`) before reading the line.
        Some(i) if start + i + 1 < buf.len() => Ok(Some(start + i)),
        Some(_) => Ok(None),
        None if rest.len() > limits.max_inline_len => Err(ProtocolError::new(too_big)),
        None => Ok(None),
    }
}

/// One inline command: a line ending in `\n`, at most `max_inline_len` bytes before it.
fn parse_inline(buf: &[u8], limits: &Limits) -> Result<Option<(Argv, usize)>, ProtocolError> {
    let window = &buf[..buf.len().min(limits.max_inline_len.saturating_add(1))];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some((split_inline(line)?, nl + 1)))
}

/// Splits an inline command line into arguments with Redis's `sdssplitargs` rules.
///
/// - Arguments are separated by blanks (space, `\t`, `\n`, `\r`, `\v`, `\f`).
/// - `"…"` may hold the escapes `\n \r \t \b \a`, `\xHH` (two hex digits) and `\<c>`
///   for any other `c` (so `\\` and `\"`).
/// - `'…'` takes everything literally except `\'`.
/// - Quotes may start inside an argument (`a"b c"` is `ab c`), but a closing quote
///   must be followed by a blank or the end of the line.
/// - As in Redis (which works on a C string), a NUL byte ends the line.
///
/// # Errors
/// `unbalanced quotes in request` for an unterminated quote or a closing quote followed
/// by something other than a blank.
pub fn split_inline(line: &[u8]) -> Result<Argv, ProtocolError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // `at(i)` is the C string's byte at `i`: 0 past the end.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let unbalanced = || ProtocolError::new("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq, mut done) = (false, false, false);
        while !done {
            let c = at(i);
            if in_dq {
                if c == b'\\' && at(i + 1) == b'x' && is_hex(at(i + 2)) && is_hex(at(i + 3)) {
                    cur.push(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3)));
                    i += 3;
                } else if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    cur.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return Err(unbalanced());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(unbalanced());
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return Err(unbalanced());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(unbalanced());
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => cur.push(c),
                }
            }
            if at(i) != 0 {
                i += 1;
            }
        }
        args.push(cur);
    }
}

/// C `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
