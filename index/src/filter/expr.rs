//! [`Filter`] and its syntax tree [`Expr`]: the reference evaluator and the canonical
//! text form.

use super::value::{Fields, Value};
use std::fmt;

/// A parsed filter expression (see the [module docs](crate::filter) for the grammar
/// and semantics). Only [`Filter::parse`] makes one, so its nesting is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub(crate) expr: Expr,
}

/// A filter's syntax tree. Field names are bytes as written (unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `field op value`. For `<`, `<=`, `>`, `>=` the value is always an `Int`.
    Cmp { field: Box<[u8]>, op: CmpOp, value: Value },
    /// `field IN (v, …)`, at least one value.
    In { field: Box<[u8]>, values: Vec<Value> },
    /// `field BETWEEN lo AND hi`, inclusive; matches nothing when `lo > hi`.
    Between { field: Box<[u8]>, lo: i64, hi: i64 },
    /// `field EXISTS`.
    Exists { field: Box<[u8]> },
    /// `NOT e`.
    Not(Box<Expr>),
    /// `e AND e AND …`, two or more.
    And(Vec<Expr>),
    /// `e OR e OR …`, two or more.
    Or(Vec<Expr>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Filter {
    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// True if a row with these fields matches: the reference semantics, which
    /// [`crate::filter::PostingIndex::evaluate`] gives for every row at once.
    pub fn matches(&self, fields: &Fields) -> bool {
        self.expr.matches(fields)
    }
}

impl Expr {
    /// True if a row with these fields matches (see the module docs for missing and
    /// multi-valued fields).
    pub fn matches(&self, fields: &Fields) -> bool {
        match self {
            Expr::Cmp { field, op: CmpOp::Eq, value } => fields.values(field).any(|v| v == value),
            Expr::Cmp { field, op: CmpOp::Ne, value } => !fields.values(field).any(|v| v == value),
            Expr::Cmp { field, op, value } => {
                let Some(bound) = value.as_int() else { return false };
                fields.values(field).filter_map(Value::as_int).any(|n| match op {
                    CmpOp::Lt => n < bound,
                    CmpOp::Le => n <= bound,
                    CmpOp::Gt => n > bound,
                    CmpOp::Ge => n >= bound,
                    CmpOp::Eq | CmpOp::Ne => unreachable!("handled above"),
                })
            }
            Expr::In { field, values } => fields.values(field).any(|v| values.contains(v)),
            Expr::Between { field, lo, hi } => {
                fields.values(field).filter_map(Value::as_int).any(|n| *lo <= n && n <= *hi)
            }
            Expr::Exists { field } => fields.values(field).next().is_some(),
            Expr::Not(e) => !e.matches(fields),
            Expr::And(es) => es.iter().all(|e| e.matches(fields)),
            Expr::Or(es) => es.iter().any(|e| e.matches(fields)),
        }
    }
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl fmt::Display for Filter {
    /// The canonical form: every `AND`/`OR` group in parentheses, names and values
    /// quoted only where needed. It parses back to the same filter (for UTF-8 text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cmp { field, op, value } => {
                write!(f, "{} {} {}", Name(field), op.as_str(), Literal(value))
            }
            Expr::In { field, values } => {
                write!(f, "{} IN (", Name(field))?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Literal(v))?;
                }
                f.write_str(")")
            }
            Expr::Between { field, lo, hi } => write!(f, "{} BETWEEN {lo} AND {hi}", Name(field)),
            Expr::Exists { field } => write!(f, "{} EXISTS", Name(field)),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::And(es) => group(f, es, " AND "),
            Expr::Or(es) => group(f, es, " OR "),
        }
    }
}

fn group(f: &mut fmt::Formatter<'_>, es: &[Expr], sep: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{e}")?;
    }
    f.write_str(")")
}

/// A field name as the parser reads it: bare if it is an identifier, else quoted.
struct Name<'a>(&'a [u8]);

/// A value as the parser reads it: integers bare, keywords bare when they can be.
struct Literal<'a>(&'a Value);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if super::parse::is_identifier(self.0) && !super::parse::is_reserved(self.0) {
            f.write_str(&String::from_utf8_lossy(self.0))
        } else {
            quoted(f, self.0)
        }
    }
}

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Int(n) => write!(f, "{n}"),
            Value::Keyword(k) => {
                let bare = !k.is_empty()
                    && k.iter().all(|&b| super::parse::is_bare_byte(b))
                    && !super::parse::is_reserved(k)
                    && k.is_ascii();
                if bare {
                    f.write_str(&String::from_utf8_lossy(k))
                } else {
                    quoted(f, k)
                }
            }
        }
    }
}

fn quoted(f: &mut fmt::Formatter<'_>, text: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for ch in String::from_utf8_lossy(text).chars() {
        if ch == '"' || ch == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{ch}")?;
    }
    f.write_str("\"")
}
