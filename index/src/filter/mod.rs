//! Payload fields, filter expressions and per-field posting lists (issue 13,
//! `SKEG.VSET … PAYLOAD blob`, `SKEG.VSEARCH … FILTER expr`).
//!
//! The shard stores a payload blob with each vector and returns it verbatim; this
//! module only reads its searchable fields. Three parts:
//!
//! 1. [`parse_payload`]: blob → [`Fields`], a sorted list of (name, [`Value`]); values
//!    are `i64` integers or keywords (bytes). The payload is a JSON object (its
//!    top-level members) or whitespace-separated `key=value` tokens.
//! 2. [`Filter::parse`]: expression → [`Filter`]; [`Filter::matches`] is the reference
//!    evaluator over one row's fields.
//! 3. [`PostingIndex`]: per-(field, value) roaring bitmaps over `u32` rows;
//!    [`PostingIndex::evaluate`] gives every matching row at once, so a selective
//!    filter never reads the payloads it excludes. The caller (the flat index) scores
//!    only those rows when they are few, or scans and tests membership when many.
//!
//! # Grammar
//!
//! ```text
//! filter    := or
//! or        := and ( OR and )*
//! and       := not ( AND not )*
//! not       := NOT not | '(' or ')' | predicate
//! predicate := field ( ( '=' | '!=' ) value
//!                    | ( '<' | '<=' | '>' | '>=' ) int
//!                    | IN '(' value ( ',' value )* ')'
//!                    | BETWEEN int AND int
//!                    | EXISTS )
//! field     := ident | string
//! value     := bare | string
//! int       := a value whose text is an integer (bare or quoted)
//! ident     := [A-Za-z0-9_.-]+            (not a keyword)
//! bare      := [^ whitespace ( ) , " = ! < >]+   (not a keyword; any other byte)
//! string    := '"' ( [^"\\] | '\"' | '\\' )* '"'
//! ```
//!
//! Precedence `NOT` > `AND` > `OR`: `a = 1 OR b = 2 AND c = 3` is
//! `a = 1 OR (b = 2 AND c = 3)`. Keywords (`AND OR NOT IN BETWEEN EXISTS`) are
//! case-insensitive and cannot be bare names or values: quote them (`"in" = "or"`).
//! Whitespace is optional around operators and parentheses (`a>=1`).
//!
//! # Values
//!
//! A value's kind follows from its text, identically in payloads and filters
//! ([`Value::from_text`]): the canonical decimal form of an `i64` is an integer,
//! anything else a keyword compared byte for byte. Quoting only delimits: `lang = "en"`
//! is `lang = en`, and `n = "42"` is `n = 42`, which matches `n=42`, `{"n":42}` and
//! `{"n":"42"}`. `007` or `1.0` are keywords. JSON floats (and integers past `i64`) are
//! keywords of serde_json's text (`{"x":1.5}` matches `x = 1.5`), never range-compared.
//!
//! # Semantics
//!
//! A field may be missing, or hold several values (a repeated key, a JSON array).
//! Each predicate asks whether *some* value of the field satisfies it:
//!
//! - `f = v`: some value equals `v`; `f IN (v, …)`: some value equals one listed.
//! - `f != v` is exactly `NOT (f = v)`: no value equals `v`, so a row **without** `f`
//!   matches, and a row with `f` = {`v`, `w`} does not (as Qdrant's `must_not`).
//! - `f < n`, `<=`, `>`, `>=`, `f BETWEEN a AND b` (inclusive; nothing when `a > b`):
//!   some **integer** value is in range; keyword values never are, so on a
//!   keyword-only field a range matches nothing. Bounds must be integers (else a
//!   parse error).
//! - `f EXISTS`: the field has at least one searchable value.
//! - `NOT e`: every row `e` does not match, including rows with no fields.
//!
//! Each predicate is separate: `f > 5 AND f < 3` matches `f` = {1, 10}.
//!
//! # Limits
//!
//! - Payloads: field names of 1 to [`MAX_FIELD_NAME_LEN`] bytes and at most
//!   [`MAX_PAYLOAD_VALUES`] values, else [`PayloadError`]; keywords over
//!   [`MAX_KEYWORD_LEN`] bytes are skipped (not searchable), as are JSON `null`,
//!   nested objects and nested arrays. JSON nesting is bounded by serde_json (128).
//! - Filters: at most [`MAX_FILTER_LEN`] bytes and [`MAX_FILTER_DEPTH`] levels of
//!   parentheses and `NOT`, so neither parsing nor evaluation can exhaust the stack.
//!
//! # Errors
//!
//! Nothing panics on bad input. [`PayloadError`] names the token's byte position or
//! serde_json's line and column; [`FilterError`] names the 0-based byte position
//! (`filter error at position 4: expected a value after '='`).

mod expr;
mod parse;
mod payload;
mod posting;
mod value;

#[cfg(test)]
mod tests;

pub use expr::{CmpOp, Expr, Filter};
pub use parse::FilterError;
pub use payload::{parse_payload, PayloadError};
pub use posting::PostingIndex;
pub use value::{Fields, Value};

/// Longest field name, in bytes, in a payload.
pub const MAX_FIELD_NAME_LEN: usize = 256;
/// Longest searchable keyword, in bytes; longer payload values are skipped.
pub const MAX_KEYWORD_LEN: usize = 1024;
/// Most searchable (name, value) pairs in one payload.
pub const MAX_PAYLOAD_VALUES: usize = 1024;
/// Longest filter expression, in bytes.
pub const MAX_FILTER_LEN: usize = 64 * 1024;
/// Deepest nesting of parentheses and `NOT` in a filter.
pub const MAX_FILTER_DEPTH: usize = 64;
