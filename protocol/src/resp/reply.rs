//! Reply parsing: any RESP2/RESP3 value, for clients and tests.

use super::{Limits, ProtocolError};
use crate::num::parse_i64;
use crate::Value;

/// A numeric header line (`:`, `$`, `*`, …) longer than this is malformed; the longest
/// valid one, `-9223372036854775808`, has 20 bytes.
const MAX_NUMBER_LINE: usize = 64;

/// Parses one reply value (any RESP2/RESP3 type) from the front of `buf` and returns
/// it with the number of bytes it used; `Ok(None)` if `buf` holds only a prefix.
///
/// | type byte | RESP | becomes |
/// |---|---|---|
/// | `+` | `+OK\r\n` | [`Value::Simple`] |
/// | `-` | `-ERR x\r\n` | [`Value::Error`] |
/// | `:` | `:-12\r\n` (an optional `+` is accepted) | [`Value::Integer`] |
/// | `$` | `$3\r\nfoo\r\n`; `$-1\r\n` | [`Value::Bulk`]; [`Value::Null`] |
/// | `*` | `*2\r\n…`; `*-1\r\n` | [`Value::Array`]; [`Value::NullArray`] |
/// | `_` | `_\r\n` | [`Value::Null`] |
/// | `,` | `,1.5\r\n`, `,inf\r\n`, `,nan\r\n` | [`Value::Double`] |
/// | `#` | `#t\r\n` / `#f\r\n` | [`Value::Bool`] |
/// | `!` | `!5\r\nERR x\r\n` | [`Value::Error`] |
/// | `=` | `=7\r\ntxt:abc\r\n` | [`Value::Verbatim`] (`"txt"`, `b"abc"`) |
/// | `(` | `(12345678901234567890\r\n` | [`Value::Bulk`] of the digits |
/// | `%` | `%1\r\n<key><value>` | [`Value::Map`] |
/// | `~` | `~2\r\n…` | [`Value::Set`] |
/// | `>` | `>2\r\n…` (push) | [`Value::Array`] |
/// | `\|` | `\|1\r\n<key><value><the value>` | the value after the attributes; they are dropped |
///
/// Text that is not UTF-8 in `+`, `-`, `!` and the verbatim format is converted
/// lossily. Streamed strings and aggregates (`$?`, `*?`) are not supported.
///
/// # Errors
/// `invalid bulk length` / `invalid multibulk length` for a bad or over-limit length or
/// count ([`Limits::max_bulk_len`], [`Limits::max_array_len`], checked before reading
/// further); `max nesting depth exceeded` beyond [`Limits::max_depth`]; `invalid
/// integer`, `invalid double`, `invalid boolean`, `invalid big number`, `invalid null`,
/// `invalid verbatim string`, `expected CRLF after bulk data`, `unknown reply type
/// 'X'` for the rest.
pub fn parse_value(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ProtocolError> {
    let mut r = Reader { buf, pos: 0, limits };
    match r.value(0) {
        Ok(v) => Ok(Some((v, r.pos))),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// Why parsing stopped early (internal; `Incomplete` becomes `Ok(None)`).
enum Stop {
    Incomplete,
    Invalid(ProtocolError),
}

type Step<T> = Result<T, Stop>;

fn invalid<T>(msg: &str) -> Step<T> {
    Err(Stop::Invalid(ProtocolError::new(msg)))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    /// One value; `depth` is the number of aggregates around it.
    fn value(&mut self, depth: usize) -> Step<Value> {
        let Some(&tag) = self.buf.get(self.pos) else {
            return Err(Stop::Incomplete);
        };
        self.pos += 1;
        Ok(match tag {
            b'+' => Value::Simple(text(self.line()?)),
            b'-' => Value::Error(text(self.line()?)),
            b':' => Value::Integer(self.integer()?),
            b'$' => match self.nullable_size("invalid bulk length", self.limits.max_bulk_len)? {
                None => Value::Null,
                Some(n) => Value::Bulk(self.blob(n)?.to_vec()),
            },
            b'!' => {
                let n = self.size("invalid bulk length", self.limits.max_bulk_len)?;
                Value::Error(text(self.blob(n)?))
            }
            b'=' => {
                let n = self.size("invalid bulk length", self.limits.max_bulk_len)?;
                let b = self.blob(n)?;
                if b.len() < 4 || b[3] != b':' {
                    return invalid("invalid verbatim string");
                }
                Value::Verbatim(text(&b[..3]), b[4..].to_vec())
            }
            b'_' => match self.line()? {
                b"" => Value::Null,
                _ => return invalid("invalid null"),
            },
            b'#' => match self.line()? {
                b"t" => Value::Bool(true),
                b"f" => Value::Bool(false),
                _ => return invalid("invalid boolean"),
            },
            b',' => {
                let line = self.line()?;
                match std::str::from_utf8(line).ok().and_then(|s| s.parse::<f64>().ok()) {
                    Some(d) => Value::Double(d),
                    None => return invalid("invalid double"),
                }
            }
            b'(' => {
                let line = self.line()?;
                let digits = line.strip_prefix(b"-").or_else(|| line.strip_prefix(b"+")).unwrap_or(line);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return invalid("invalid big number");
                }
                Value::Bulk(line.to_vec())
            }
            b'*' | b'>' | b'~' => {
                self.check_depth(depth)?;
                let max = self.limits.max_array_len;
                let n = if tag == b'*' {
                    match self.nullable_size("invalid multibulk length", max)? {
                        Some(n) => n,
                        None => return Ok(Value::NullArray),
                    }
                } else {
                    self.size("invalid multibulk length", max)?
                };
                let items = self.values(n, depth + 1)?;
                if tag == b'~' {
                    Value::Set(items)
                } else {
                    Value::Array(items)
                }
            }
            b'%' => {
                self.check_depth(depth)?;
                let n = self.size("invalid multibulk length", self.limits.max_array_len)?;
                let mut pairs = Vec::with_capacity(self.capacity(n));
                for _ in 0..n {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            b'|' => {
                self.check_depth(depth)?;
                let n = self.size("invalid multibulk length", self.limits.max_array_len)?;
                for _ in 0..n {
                    self.value(depth + 1)?;
                    self.value(depth + 1)?;
                }
                return self.value(depth);
            }
            other => {
                let msg = format!("unknown reply type '{}'", char::from(other).escape_default());
                return Err(Stop::Invalid(ProtocolError::new(msg)));
            }
        })
    }

    /// `n` values at nesting `depth`.
    fn values(&mut self, n: usize, depth: usize) -> Step<Vec<Value>> {
        let mut items = Vec::with_capacity(self.capacity(n));
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(items)
    }

    /// How many slots to reserve for `n` claimed elements: no more than the bytes left
    /// could hold (each element takes at least 3 bytes, `_\r\n`).
    fn capacity(&self, n: usize) -> usize {
        n.min((self.buf.len() - self.pos) / 3)
    }

    fn check_depth(&self, depth: usize) -> Step<()> {
        if depth >= self.limits.max_depth {
            return invalid("max nesting depth exceeded");
        }
        Ok(())
    }

    /// A length or count line: `n <= max`, else the error `msg`.
    fn size(&mut self, msg: &str, max: usize) -> Step<usize> {
        match parse_i64(self.number_line(msg)?) {
            Some(n) if n >= 0 && n as u64 <= max as u64 => Ok(n as usize),
            _ => invalid(msg),
        }
    }

    /// As [`Self::size`], but `-1` (RESP2's null bulk string or array) is `None`.
    fn nullable_size(&mut self, msg: &str, max: usize) -> Step<Option<usize>> {
        match parse_i64(self.number_line(msg)?) {
            Some(-1) => Ok(None),
            Some(n) if n >= 0 && n as u64 <= max as u64 => Ok(Some(n as usize)),
            _ => invalid(msg),
        }
    }

    fn integer(&mut self) -> Step<i64> {
        let line = self.number_line("invalid integer")?;
        match parse_i64(line.strip_prefix(b"+").unwrap_or(line)) {
            Some(n) => Ok(n),
            None => invalid("invalid integer"),
        }
    }

    /// A short line holding a number: an error (`msg`) if no CRLF within
    /// [`MAX_NUMBER_LINE`] bytes.
    fn number_line(&mut self, msg: &str) -> Step<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(MAX_NUMBER_LINE)];
        match window.iter().position(|&b| b == b'\r') {
            Some(i) if i + 1 < rest.len() => {
                if rest[i + 1] != b'\n' {
                    return invalid(msg);
                }
                self.pos += i + 2;
                Ok(&rest[..i])
            }
            Some(_) => Err(Stop::Incomplete),
            None if rest.len() >= MAX_NUMBER_LINE => invalid(msg),
            None => Err(Stop::Incomplete),
        }
    }

    /// The rest of a line up to the first CRLF (lone `\r` bytes are part of the line).
    fn line(&mut self) -> Step<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let mut from = 0;
        while let Some(i) = rest[from..].iter().position(|&b| b == b'\r') {
            let cr = from + i;
            match rest.get(cr + 1) {
                None => break,
                Some(b'\n') => {
                    self.pos += cr + 2;
                    return Ok(&rest[..cr]);
                }
                Some(_) => from = cr + 1,
            }
        }
        Err(Stop::Incomplete)
    }

    /// `n` bytes followed by CRLF.
    fn blob(&mut self, n: usize) -> Step<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n + 2 {
            return Err(Stop::Incomplete);
        }
        if &rest[n..n + 2] != b"\r\n" {
            return invalid("expected CRLF after bulk data");
        }
        self.pos += n + 2;
        Ok(&rest[..n])
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
