//! Integer text conversions shared by the codecs: Redis's strict `string2ll` and an
//! allocation-free decimal writer.

/// Longest decimal `i64` text Redis accepts (`LONG_STR_SIZE - 1`, sign included).
const MAX_I64_TEXT: usize = 20;

/// Parses `s` as Redis's `string2ll` does: optional `-`, no `+`, no leading zeros
/// (except `0` itself), no `-0`, no spaces, at most 20 bytes, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > MAX_I64_TEXT {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        // v <= 2^63: wrapping_neg of the two's-complement value is exact.
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Appends the decimal text of `n`.
pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends the decimal text of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the decimal text of `n`.
pub(crate) fn push_usize(out: &mut Vec<u8>, n: usize) {
    push_u64(out, n as u64);
}

/// Why a database index argument was refused ([`parse_db_index`]); each has its own
/// Redis error text, which depends on the command (see [`DbIndexError::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbIndexError {
    /// Not an integer ([`parse_i64`]).
    NotInteger,
    /// An integer outside C `int` (−2^31 ..= 2^31 − 1): Redis reads database indexes as
    /// `int` and says so before it checks the database count.
    NotInt32,
    /// An `int`, but not one of the configured databases.
    OutOfRange,
}

/// Redis's text for a database index outside 0..databases (`DbIndexError::OutOfRange`).
pub const ERR_DB_RANGE: &str = "ERR DB index is out of range";

impl DbIndexError {
    /// Redis 7.0's text, given the command's own text for a bad integer (`None`:
    /// SELECT and MOVE; SWAPDB passes `ERR invalid first DB index` / `second`):
    /// - not an integer: `msg`, else `ERR value is not an integer or out of range`;
    /// - outside `int`: `msg`, else `ERR value is out of range, value must between
    ///   -2147483648 and 2147483647` (sic, Redis's grammar);
    /// - not a configured database: `ERR DB index is out of range`.
    pub fn text(self, msg: Option<&str>) -> String {
        match (self, msg) {
            (DbIndexError::OutOfRange, _) => ERR_DB_RANGE.into(),
            (_, Some(m)) => m.into(),
            (DbIndexError::NotInteger, None) => "ERR value is not an integer or out of range".into(),
            (DbIndexError::NotInt32, None) => {
                format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX)
            }
        }
    }
}

/// A database index argument (SELECT, MOVE, SWAPDB) among `count` databases (at most
/// 256), checked in Redis's order: an integer ([`parse_i64`]), within C `int`, then
/// below `count`.
///
/// # Errors
/// The first check that fails, as a [`DbIndexError`].
pub fn parse_db_index(s: &[u8], count: usize) -> Result<u8, DbIndexError> {
    let n = parse_i64(s).ok_or(DbIndexError::NotInteger)?;
    i32::try_from(n).map_err(|_| DbIndexError::NotInt32)?;
    u8::try_from(n).ok().filter(|&db| usize::from(db) < count).ok_or(DbIndexError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<i64>) {
        assert_eq!(parse_i64(input.as_bytes()), expected, "input {input:?}");
    }

    #[test]
    fn string2ll_rules() {
        check("0", Some(0));
        check("7", Some(7));
        check("-7", Some(-7));
        check("1234567890", Some(1234567890));
        check("9223372036854775807", Some(i64::MAX));
        check("-9223372036854775808", Some(i64::MIN));
        check("9223372036854775808", None);
        check("-9223372036854775809", None);
        check("99999999999999999999", None);
        check("", None);
        check("-", None);
        check("-0", None);
        check("01", None);
        check("+1", None);
        check(" 1", None);
        check("1 ", None);
        check("1x", None);
        check("000000000000000000001", None);
    }

    #[test]
    fn writes_integers() {
        for n in [0, 1, -1, 9, 10, 12345, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let mut out = Vec::new();
        push_usize(&mut out, usize::MAX);
        assert_eq!(out, usize::MAX.to_string().as_bytes());
    }

    #[test]
    fn database_indexes_in_redis_order() {
        use super::{parse_db_index, DbIndexError::*};
        assert_eq!(parse_db_index(b"15", 16), Ok(15));
        assert_eq!(parse_db_index(b"0", 1), Ok(0));
        assert_eq!(parse_db_index(b"252", 253), Ok(252));
        for (s, e) in [
            (&b"16"[..], OutOfRange),
            (b"-1", OutOfRange),
            (b"256", OutOfRange),
            (b"2147483647", OutOfRange),
            (b"-2147483648", OutOfRange),
            (b"2147483648", NotInt32),
            (b"-2147483649", NotInt32),
            (b"99999999999999999999", NotInteger),
            (b"x", NotInteger),
            (b"1.5", NotInteger),
            (b"", NotInteger),
        ] {
            assert_eq!(parse_db_index(s, 16), Err(e), "{:?}", String::from_utf8_lossy(s));
        }
        assert_eq!(NotInt32.text(None), "ERR value is out of range, value must between -2147483648 and 2147483647");
        assert_eq!(NotInt32.text(Some("ERR invalid first DB index")), "ERR invalid first DB index");
        assert_eq!(OutOfRange.text(Some("ERR invalid first DB index")), "ERR DB index is out of range");
        assert_eq!(NotInteger.text(None), "ERR value is not an integer or out of range");
    }
}
