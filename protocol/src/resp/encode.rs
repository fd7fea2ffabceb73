//! Reply and request encoding.

use std::fmt::Write as _;

use super::RespVersion;
use crate::num::{push_i64, push_usize};
use crate::Value;

/// Appends `v` encoded for `ver` to `out`.
///
/// | `Value` | RESP3 | RESP2 |
/// |---|---|---|
/// | `Simple("OK")` | `+OK\r\n` | same |
/// | `Error("ERR x")` | `-ERR x\r\n` | same |
/// | `Integer(5)` | `:5\r\n` | same |
/// | `Bulk(b"ab")` | `$2\r\nab\r\n` | same |
/// | `Double(1.5)` | `,1.5\r\n` | `$3\r\n1.5\r\n` |
/// | `Null` | `_\r\n` | `$-1\r\n` |
/// | `NullArray` | `_\r\n` | `*-1\r\n` |
/// | `Array([..])` | `*N\r\n` + items | same |
/// | `Map([(k, v), ..])` | `%N\r\n` + k v … | `*2N\r\n` + k v … |
/// | `Set([..])` | `~N\r\n` + items | `*N\r\n` + items |
/// | `Bool(true)` | `#t\r\n` | `:1\r\n` |
/// | `Verbatim("txt", b"ab")` | `=6\r\ntxt:ab\r\n` | `$2\r\nab\r\n` |
///
/// Doubles are written as Redis writes them (see [`write_double`]). A `\r` or `\n` in a
/// simple or error string is replaced by a space, so the line cannot break framing. A
/// verbatim format that is not exactly 3 bytes (or holds `:`, `\r`, `\n`) is sent as
/// `txt`.
pub fn encode(v: &Value, ver: RespVersion, out: &mut Vec<u8>) {
    let resp3 = ver == RespVersion::Resp3;
    match v {
        Value::Simple(s) => push_line(out, b'+', s),
        Value::Error(s) => push_line(out, b'-', s),
        Value::Integer(n) => {
            out.push(b':');
            push_i64(out, *n);
            out.extend_from_slice(b"\r\n");
        }
        Value::Bulk(b) => push_bulk(out, b),
        Value::Double(d) => {
            if resp3 {
                out.push(b',');
                write_double(*d, out);
                out.extend_from_slice(b"\r\n");
            } else {
                let mut text = Vec::with_capacity(24);
                write_double(*d, &mut text);
                push_bulk(out, &text);
            }
        }
        Value::Null if resp3 => out.extend_from_slice(b"_\r\n"),
        Value::Null => out.extend_from_slice(b"$-1\r\n"),
        Value::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(items) => {
            push_header(out, b'*', items.len());
            for item in items {
                encode(item, ver, out);
            }
        }
        Value::Map(pairs) => {
            if resp3 {
                push_header(out, b'%', pairs.len());
            } else {
                push_header(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, ver, out);
                encode(v, ver, out);
            }
        }
        Value::Set(items) => {
            push_header(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, ver, out);
            }
        }
        Value::Bool(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Value::Verbatim(format, text) if resp3 => {
            let format = format.as_bytes();
            let format_ok = format.len() == 3 && !format.iter().any(|b| matches!(b, b':' | b'\r' | b'\n'));
            push_header(out, b'=', text.len() + 4);
            out.extend_from_slice(if format_ok { format } else { b"txt" });
            out.push(b':');
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Value::Verbatim(_, text) => push_bulk(out, text),
    }
}

/// Appends a request: `*<argc>\r\n` then `$<len>\r\n<arg>\r\n` per argument (what
/// [`super::parse_request`] reads; binary-safe).
pub fn encode_request(argv: &[&[u8]], out: &mut Vec<u8>) {
    encode_request_args(argv, out);
}

/// As [`encode_request`], for any byte-like arguments (e.g. a `Vec<Vec<u8>>` argv).
pub fn encode_request_args<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<u8>) {
    push_header(out, b'*', argv.len());
    for arg in argv {
        push_bulk(out, arg.as_ref());
    }
}

/// Appends `d` as Redis's `d2string` formats it (RESP3 `,` replies and the RESP2 bulk
/// string of a double):
///
/// - `nan`, `inf`, `-inf`; `0` and `-0` for the zeros;
/// - an integral value within ±2^62 as an integer: `3`, `-17`, `4611686018427387904`;
/// - otherwise the shortest digits that round-trip, laid out as Redis's `fpconv_dtoa`
///   does (a `%g`-like choice): plain `0.001`, `123.25`, `12345678901234567000`, or
///   scientific `1e-7`, `1.5e+300`, `5e+18`.
pub fn write_double(d: f64, out: &mut Vec<u8>) {
    const INT_LIMIT: f64 = (i64::MAX / 2) as f64; // 2^62, as Redis's `double2ll`
    if d.is_nan() {
        out.extend_from_slice(b"nan");
    } else if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
    } else if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
    } else if (-INT_LIMIT..=INT_LIMIT).contains(&d) && d.fract() == 0.0 {
        push_i64(out, d as i64);
    } else {
        push_shortest(d, out);
    }
}

/// Grisu-style layout of the shortest round-trip digits (Redis `emit_digits`).
fn push_shortest(d: f64, out: &mut Vec<u8>) {
    // `{:e}` prints the shortest round-trip digits as `-D.DDDDe-X`.
    let mut sci = StackText::default();
    write!(sci, "{d:e}").expect("a finite f64 fits in 32 bytes");
    let text = sci.as_bytes();
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text.iter().position(|&b| b == b'e').expect("`{:e}` has an exponent");
    let mut digits = [0u8; 20];
    let mut n = 0;
    for &b in text[..e_at].iter().filter(|b| b.is_ascii_digit()) {
        digits[n] = b;
        n += 1;
    }
    let digits = &digits[..n];
    let sci_exp: i32 = std::str::from_utf8(&text[e_at + 1..]).ok().and_then(|s| s.parse().ok()).expect("`{:e}` exponent");
    // value = digits × 10^k
    let n = n as i32;
    let k = sci_exp - (n - 1);
    let exp = sci_exp.abs();
    if neg {
        out.push(b'-');
    }
    if k >= 0 && exp < n + 7 {
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
    } else if k < 0 && (k > -7 || exp < 4) {
        let int_digits = n + k;
        if int_digits <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-int_digits) as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let (int, frac) = digits.split_at(int_digits as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if sci_exp < 0 { b'-' } else { b'+' });
        push_usize(out, exp as usize);
    }
}

/// A fixed-size `fmt::Write` target, so formatting a double does not allocate.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `<tag><text>\r\n` with any `\r` / `\n` in `text` replaced by a space.
fn push_line(out: &mut Vec<u8>, tag: u8, text: &str) {
    out.push(tag);
    let bytes = text.as_bytes();
    if bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(bytes.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    push_usize(out, n);
    out.extend_from_slice(b"\r\n");
}

fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() + 16);
    push_header(out, b'$', b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
