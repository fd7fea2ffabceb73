//! Argument parsing shared by the ops: Redis's strict integer forms and the error texts
//! Redis uses for them. (Argument counts are checked once, from the command table.)

pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const ERR_SYNTAX: &str = "ERR syntax error";

/// Redis `string2ll` (see [`keel_protocol::num::parse_i64`]): an optional `-`, then `0`
/// alone or a digit 1-9 followed by digits; no `+`, no spaces, no leading zeros.
pub use keel_protocol::num::parse_i64;

/// A strict non-negative decimal u64: `0` or a digit 1-9 followed by digits, no sign.
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b == b"0" {
        return Some(0);
    }
    if b.len() > 20 {
        return None;
    }
    parse_digits_no_leading_zero(b)
}

/// A SCAN cursor: decimal digits (leading zeros allowed), fits in u64.
pub fn parse_cursor(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

fn parse_digits_no_leading_zero(d: &[u8]) -> Option<u64> {
    match d.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Upper-cases a command name into `buf`; `None` if it is longer than `buf`.
pub fn upper<'a>(name: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let out = buf.get_mut(..name.len())?;
    for (o, c) in out.iter_mut().zip(name) {
        *o = c.to_ascii_uppercase();
    }
    Some(out)
}

/// User bytes made safe to put into an error line: lossy UTF-8, CR/LF replaced by
/// spaces, cut at 128 bytes (as Redis does for unknown command names).
pub fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(128)];
    String::from_utf8_lossy(cut).chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect()
}


#[cfg(test)]
mod tests {
    use super::*;

    fn check_i64(input: &str, expected: Option<i64>) {
        assert_eq!(parse_i64(input.as_bytes()), expected, "parse_i64({input:?})");
    }

    #[test]
    fn i64_accepts_redis_forms() {
        check_i64("0", Some(0));
        check_i64("1", Some(1));
        check_i64("-1", Some(-1));
        check_i64("1234567890", Some(1234567890));
        check_i64("9223372036854775807", Some(i64::MAX));
        check_i64("-9223372036854775808", Some(i64::MIN));
    }

    #[test]
    fn i64_rejects_everything_else() {
        for s in [
            "", "-", "+1", " 1", "1 ", "01", "-0", "00", "1.0", "1e3", "0x10", "abc", "9223372036854775808",
            "-9223372036854775809", "18446744073709551616", "123456789012345678901", "--1", "1-",
        ] {
            check_i64(s, None);
        }
    }

    #[test]
    fn u64_is_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"42"), Some(42));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        for s in ["", "-1", "+1", "01", "18446744073709551616", "1a", " 1"] {
            assert_eq!(parse_u64(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn cursor_allows_leading_zeros() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for s in ["", "-1", "+1", "18446744073709551616", "1a", "x"] {
            assert_eq!(parse_cursor(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn upper_and_show() {
        let mut buf = [0u8; 4];
        assert_eq!(upper(b"get", &mut buf), Some(&b"GET"[..]));
        assert_eq!(upper(b"toolong", &mut buf), None);
        assert_eq!(show(b"a\r\nb"), "a  b");
        assert_eq!(show(&[0xff, b'x']), "\u{fffd}x");
        assert_eq!(show(&[b'x'; 300]).len(), 128);
    }
}
