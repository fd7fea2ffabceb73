//! [`Filter::parse`]: a lexer and a recursive-descent parser, with byte positions in
//! every error.

use super::expr::{CmpOp, Expr, Filter};
use super::value::Value;
use super::{MAX_FILTER_DEPTH, MAX_FILTER_LEN};

/// A malformed filter: `pos` is the 0-based byte offset in the expression where it went
/// wrong (the expression's length when it ended too soon).
///
/// `Display` (the text after `ERR ` in a reply) reads like
/// `filter error at position 7: expected a value after '='`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter error at position {pos}: {msg}")]
pub struct FilterError {
    /// 0-based byte offset.
    pub pos: usize,
    /// What was expected or found there.
    pub msg: String,
}

impl Filter {
    /// Parses a filter expression (grammar in the [module docs](crate::filter)).
    ///
    /// Errors name the byte position: an empty or unfinished expression, a missing or
    /// unknown operator, a missing value, a non-integer bound for a range, an empty
    /// `IN ()`, unbalanced parentheses, an unterminated string or unknown escape,
    /// trailing input, nesting deeper than [`MAX_FILTER_DEPTH`], or input longer than
    /// [`MAX_FILTER_LEN`] bytes.
    pub fn parse(input: impl AsRef<[u8]>) -> Result<Filter, FilterError> {
        let input = input.as_ref();
        if input.len() > MAX_FILTER_LEN {
            return Err(err(MAX_FILTER_LEN, format!("filter longer than {MAX_FILTER_LEN} bytes")));
        }
        let tokens = lex(input)?;
        let mut p = Parser { tokens, at: 0, end: input.len() };
        let expr = p.or(0)?;
        match p.peek() {
            None => Ok(Filter { expr }),
            Some(t) if t.kind == Kind::RParen => Err(err(t.pos, "unexpected ')' with no '(' open")),
            Some(t) => Err(err(t.pos, "expected AND, OR or the end of the filter")),
        }
    }
}

/// Bytes a bare field name may hold: ASCII letters, digits, `_`, `.`, `-`.
pub(crate) fn is_identifier(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Bytes a bare value may hold: anything but ASCII whitespace, `( ) , " = ! < >`.
pub(crate) fn is_bare_byte(b: u8) -> bool {
    !b.is_ascii_whitespace() && !matches!(b, b'(' | b')' | b',' | b'"' | b'=' | b'!' | b'<' | b'>')
}

/// The keywords, which a bare name or value cannot be (quote it instead).
pub(crate) fn is_reserved(text: &[u8]) -> bool {
    ["AND", "OR", "NOT", "IN", "BETWEEN", "EXISTS"].iter().any(|k| text.eq_ignore_ascii_case(k.as_bytes()))
}

fn err(pos: usize, msg: impl Into<String>) -> FilterError {
    FilterError { pos, msg: msg.into() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A bare run of [`is_bare_byte`] bytes.
    Word(Vec<u8>),
    /// A double-quoted string, unescaped.
    Quoted(Vec<u8>),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    pos: usize,
}

fn lex(input: &[u8]) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let pos = i;
        let b = input[i];
        let next = input.get(i + 1).copied();
        let (kind, len) = match b {
            _ if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => (Kind::LParen, 1),
            b')' => (Kind::RParen, 1),
            b',' => (Kind::Comma, 1),
            b'=' => (Kind::Op(CmpOp::Eq), 1),
            b'!' if next == Some(b'=') => (Kind::Op(CmpOp::Ne), 2),
            b'!' => return Err(err(pos, "unexpected '!' (the operator is '!=')")),
            b'<' if next == Some(b'=') => (Kind::Op(CmpOp::Le), 2),
            b'<' => (Kind::Op(CmpOp::Lt), 1),
            b'>' if next == Some(b'=') => (Kind::Op(CmpOp::Ge), 2),
            b'>' => (Kind::Op(CmpOp::Gt), 1),
            b'"' => {
                let (text, len) = quoted(input, pos)?;
                (Kind::Quoted(text), len)
            }
            _ => {
                let len = input[pos..].iter().take_while(|&&b| is_bare_byte(b)).count();
                (Kind::Word(input[pos..pos + len].to_vec()), len)
            }
        };
        tokens.push(Token { kind, pos });
        i += len;
    }
    Ok(tokens)
}

/// Unescapes the string opening at `start`; returns it and its length with quotes.
fn quoted(input: &[u8], start: usize) -> Result<(Vec<u8>, usize), FilterError> {
    let mut text = Vec::new();
    let mut i = start + 1;
    loop {
        match input.get(i) {
            None => return Err(err(start, "unterminated quoted string")),
            Some(b'"') => return Ok((text, i + 1 - start)),
            Some(b'\\') => match input.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    text.push(c);
                    i += 2;
                }
                None => return Err(err(start, "unterminated quoted string")),
                Some(_) => return Err(err(i, "unknown escape in quoted string (only \\\" and \\\\)")),
            },
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Input length: the position of errors at the end.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// Position of the next token, or the end of the input.
    fn pos(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    /// Consumes the next token if it is the bare keyword `kw` (any case).
    fn keyword(&mut self, kw: &str) -> bool {
        let hit = matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(kw.as_bytes()));
        if hit {
            self.at += 1;
        }
        hit
    }

    /// `or := and (OR and)*`
    fn or(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and(depth, None)?];
        while self.keyword("OR") {
            terms.push(self.and(depth, Some("OR"))?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Or(terms) })
    }

    /// `and := not (AND not)*`
    fn and(&mut self, depth: usize, after: Option<&str>) -> Result<Expr, FilterError> {
        let mut terms = vec![self.not(depth, after)?];
        while self.keyword("AND") {
            terms.push(self.not(depth, Some("AND"))?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::And(terms) })
    }

    /// `not := NOT not | '(' or ')' | predicate`; `after` names what came before, for
    /// the error when nothing follows.
    fn not(&mut self, depth: usize, after: Option<&str>) -> Result<Expr, FilterError> {
        let pos = self.pos();
        if self.keyword("NOT") {
            check_depth(depth, pos)?;
            return Ok(Expr::Not(Box::new(self.not(depth + 1, Some("NOT"))?)));
        }
        match self.peek().map(|t| &t.kind) {
            Some(Kind::LParen) => {
                check_depth(depth, pos)?;
                self.at += 1;
                let e = self.or(depth + 1)?;
                match self.peek() {
                    Some(Token { kind: Kind::RParen, .. }) => {
                        self.at += 1;
                        Ok(e)
                    }
                    Some(t) => Err(err(t.pos, format!("expected ')' to close the '(' at position {pos}"))),
                    None => Err(err(self.end, format!("expected ')' to close the '(' at position {pos}"))),
                }
            }
            _ => self.predicate(after),
        }
    }

    /// `predicate := field (cmp value | IN '(' value (',' value)* ')' |
    /// BETWEEN int AND int | EXISTS)`
    fn predicate(&mut self, after: Option<&str>) -> Result<Expr, FilterError> {
        let pos = self.pos();
        let expected = match after {
            Some(kw) => format!("expected a field name, NOT or '(' after {kw}"),
            None => "expected a field name, NOT or '('".to_string(),
        };
        let field: Box<[u8]> = match self.next().map(|t| &t.kind) {
            Some(Kind::Quoted(q)) => q.as_slice().into(),
            Some(Kind::Word(w)) if is_reserved(w) => return Err(err(pos, expected)),
            Some(Kind::Word(w)) if is_identifier(w) => w.as_slice().into(),
            Some(Kind::Word(_)) => {
                return Err(err(
                    pos,
                    "a bare field name holds only letters, digits, '_', '.' and '-' (quote it)",
                ))
            }
            _ => return Err(err(pos, expected)),
        };
        let op_pos = self.pos();
        match self.next().map(|t| t.kind.clone()) {
            Some(Kind::Op(op)) => {
                let what = format!("'{}'", op.as_str());
                let value = if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.value(&what)?
                } else {
                    Value::Int(self.int(&what)?)
                };
                Ok(Expr::Cmp { field, op, value })
            }
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case(b"IN") => {
                if !matches!(self.next().map(|t| &t.kind), Some(Kind::LParen)) {
                    return Err(err(self.tokens.get(self.at - 1).map_or(self.end, |t| t.pos), "expected '(' after IN"));
                }
                if matches!(self.peek().map(|t| &t.kind), Some(Kind::RParen)) {
                    return Err(err(self.pos(), "IN needs at least one value"));
                }
                let mut values = vec![self.value("'(' in IN")?];
                loop {
                    match self.next().map(|t| &t.kind) {
                        Some(Kind::Comma) => values.push(self.value("',' in IN")?),
                        Some(Kind::RParen) => break,
                        _ => {
                            let at = self.tokens.get(self.at - 1).map_or(self.end, |t| t.pos);
                            return Err(err(at, "expected ',' or ')' in IN list"));
                        }
                    }
                }
                Ok(Expr::In { field, values })
            }
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case(b"BETWEEN") => {
                let lo = self.int("BETWEEN")?;
                if !self.keyword("AND") {
                    return Err(err(self.pos(), "expected AND after BETWEEN's lower bound"));
                }
                let hi = self.int("BETWEEN … AND")?;
                Ok(Expr::Between { field, lo, hi })
            }
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case(b"EXISTS") => Ok(Expr::Exists { field }),
            _ => Err(err(op_pos, "expected an operator (=, !=, <, <=, >, >=, IN, BETWEEN or EXISTS) after the field name")),
        }
    }

    /// A bare (non-keyword) or quoted value, classified like a payload's.
    fn value(&mut self, after: &str) -> Result<Value, FilterError> {
        let pos = self.pos();
        match self.next().map(|t| &t.kind) {
            Some(Kind::Word(w)) if !is_reserved(w) => Ok(Value::from_text(w)),
            Some(Kind::Quoted(q)) => Ok(Value::from_text(q)),
            Some(Kind::Word(_)) => Err(err(pos, format!("expected a value after {after} (quote a keyword used as a value)"))),
            _ => Err(err(pos, format!("expected a value after {after}"))),
        }
    }

    /// A value that must be an integer (range bounds).
    fn int(&mut self, after: &str) -> Result<i64, FilterError> {
        let pos = self.pos();
        match self.value(after)? {
            Value::Int(n) => Ok(n),
            Value::Keyword(_) => Err(err(pos, format!("expected an integer after {after}"))),
        }
    }
}

fn check_depth(depth: usize, pos: usize) -> Result<(), FilterError> {
    if depth >= MAX_FILTER_DEPTH {
        return Err(err(pos, format!("filter nested deeper than {MAX_FILTER_DEPTH} levels")));
    }
    Ok(())
}
