//! [`Value`] and [`Fields`]: the searchable side of a payload, and of a filter's
//! constants.

use std::fmt;

/// One searchable value: an integer or a keyword (arbitrary bytes).
///
/// A value's kind follows from its text alone ([`Value::from_text`]), the same way in
/// a payload and in a filter, so `n=42` in a payload, `{"n": 42}`, `{"n": "42"}` and
/// the query `n = 42` or `n = "42"` all hold or name `Int(42)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// A signed 64-bit integer; the only kind that ranges compare.
    Int(i64),
    /// Any other text, compared byte for byte (no case folding).
    Keyword(Box<[u8]>),
}

/// A payload's searchable fields: (name, value) pairs, sorted and without duplicates.
///
/// A field with several values (a repeated key, a JSON array) is several pairs with the
/// same name. Built by [`crate::filter::parse_payload`] or [`Fields::from_pairs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pairs: Vec<(Box<[u8]>, Value)>,
}

impl Value {
    /// Classifies a token: `Int` if `text` is the canonical decimal form of an `i64`
    /// (an optional `-`, then `0` or digits without a leading zero, in range, not
    /// `-0`), else `Keyword` of the bytes. So `007`, `+7`, `1.0` and
    /// `99999999999999999999` are keywords: matching them as text keeps every byte.
    pub fn from_text(text: &[u8]) -> Value {
        match parse_canonical_i64(text) {
            Some(n) => Value::Int(n),
            None => Value::Keyword(text.into()),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Keyword(_) => None,
        }
    }
}

impl fmt::Display for Value {
    /// The integer in decimal, or the keyword (lossily as UTF-8), unquoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Keyword(k) => f.write_str(&String::from_utf8_lossy(k)),
        }
    }
}

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields::default()
    }

    /// Builds fields from pairs in any order; duplicates collapse into one.
    pub fn from_pairs<N: Into<Box<[u8]>>>(pairs: impl IntoIterator<Item = (N, Value)>) -> Self {
        let mut pairs: Vec<(Box<[u8]>, Value)> = pairs.into_iter().map(|(n, v)| (n.into(), v)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        Fields { pairs }
    }

    /// Number of (name, value) pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True if there is no searchable field.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Every (name, value) pair, sorted by name, then value.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.pairs.iter().map(|(n, v)| (&**n, v))
    }

    /// The values of field `name` (none if it is missing), sorted.
    pub fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Value> + 'a {
        let start = self.pairs.partition_point(|(n, _)| &**n < name);
        self.pairs[start..].iter().take_while(move |(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// The distinct field names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        let mut last: Option<&[u8]> = None;
        self.pairs.iter().filter_map(move |(n, _)| {
            if last == Some(&**n) {
                None
            } else {
                last = Some(n);
                Some(&**n)
            }
        })
    }
}

/// Strict decimal `i64`: `-?(0|[1-9][0-9]*)`, in range, not `-0`.
fn parse_canonical_i64(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        // Accumulate negatively so i64::MIN fits.
        n = n.checked_mul(10)?.checked_sub(d)?;
    }
    if neg {
        Some(n)
    } else {
        n.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Value) {
        assert_eq!(Value::from_text(text.as_bytes()), expected, "{text:?}");
    }

    fn kw(s: &str) -> Value {
        Value::Keyword(s.as_bytes().into())
    }

    #[test]
    fn classifies_tokens() {
        check("0", Value::Int(0));
        check("42", Value::Int(42));
        check("-42", Value::Int(-42));
        check("9223372036854775807", Value::Int(i64::MAX));
        check("-9223372036854775808", Value::Int(i64::MIN));
        for s in ["9223372036854775808", "-9223372036854775809", "-0", "007", "+7", "1.0", "", "-", "1e3", " 1", "x"] {
            check(s, kw(s));
        }
    }

    #[test]
    fn fields_sorted_deduplicated() {
        let f = Fields::from_pairs([
            (&b"b"[..], Value::Int(2)),
            (&b"a"[..], kw("x")),
            (&b"b"[..], Value::Int(1)),
            (&b"b"[..], Value::Int(2)),
        ]);
        assert_eq!(f.len(), 3);
        assert_eq!(f.values(b"b").collect::<Vec<_>>(), [&Value::Int(1), &Value::Int(2)]);
        assert_eq!(f.values(b"a").collect::<Vec<_>>(), [&kw("x")]);
        assert_eq!(f.values(b"c").count(), 0);
        assert_eq!(f.names().collect::<Vec<_>>(), [&b"a"[..], &b"b"[..]]);
    }
}
