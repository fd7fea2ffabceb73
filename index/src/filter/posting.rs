//! [`PostingIndex`]: per-field posting bitmaps, so a filter costs the rows it touches
//! rather than a scan of every payload.

use super::expr::{CmpOp, Expr, Filter};
use super::value::{Fields, Value};
use roaring::{MultiOps, RoaringBitmap};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// Posting bitmaps over caller-chosen `u32` rows (the flat index's slots or ids).
///
/// Per field: one bitmap of the rows that have it (`EXISTS`), one per keyword, and a
/// `BTreeMap` from each integer to its rows, so equality is one lookup and a range is
/// the union of the integers it spans (a cost in the number of distinct integers in
/// range). `NOT` and `!=` complement against every row present. An empty bitmap is
/// dropped at once, so memory follows what is stored.
///
/// The caller keeps each row's [`Fields`]: [`PostingIndex::remove`] must be given the
/// fields the row was inserted with.
#[derive(Debug, Clone, Default)]
pub struct PostingIndex {
    /// Every row present, with or without fields.
    all: RoaringBitmap,
    fields: HashMap<Box<[u8]>, FieldPostings>,
}

#[derive(Debug, Clone, Default)]
struct FieldPostings {
    exists: RoaringBitmap,
    keywords: HashMap<Box<[u8]>, RoaringBitmap>,
    ints: BTreeMap<i64, RoaringBitmap>,
}

/// Rough per-entry cost of a hash or B-tree map slot, for [`PostingIndex::memory_bytes`].
const ENTRY_OVERHEAD: usize = 48;

impl PostingIndex {
    /// An empty index.
    pub fn new() -> Self {
        PostingIndex::default()
    }

    /// Adds `row` with its fields. A row already present should be removed (with its
    /// old fields) first; otherwise the new fields add to the old.
    pub fn insert(&mut self, row: u32, fields: &Fields) {
        self.all.insert(row);
        for (name, value) in fields.iter() {
            let field = self.fields.entry(name.into()).or_default();
            field.exists.insert(row);
            match value {
                Value::Int(n) => field.ints.entry(*n).or_default().insert(row),
                Value::Keyword(k) => field.keywords.entry(k.clone()).or_default().insert(row),
            };
        }
    }

    /// Removes `row`, given the fields it was inserted with. Returns false if the row
    /// was not present (and then changes nothing).
    pub fn remove(&mut self, row: u32, fields: &Fields) -> bool {
        if !self.all.remove(row) {
            return false;
        }
        for name in fields.names() {
            let Some(field) = self.fields.get_mut(name) else { continue };
            field.exists.remove(row);
            for value in fields.values(name) {
                match value {
                    Value::Int(n) => {
                        if let Some(rows) = field.ints.get_mut(n) {
                            rows.remove(row);
                            if rows.is_empty() {
                                field.ints.remove(n);
                            }
                        }
                    }
                    Value::Keyword(k) => {
                        if let Some(rows) = field.keywords.get_mut(k) {
                            rows.remove(row);
                            if rows.is_empty() {
                                field.keywords.remove(k);
                            }
                        }
                    }
                }
            }
            if field.exists.is_empty() {
                self.fields.remove(name);
            }
        }
        true
    }

    /// Number of rows present.
    pub fn len(&self) -> u64 {
        self.all.len()
    }

    /// True if no row is present.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Every row present.
    pub fn rows(&self) -> &RoaringBitmap {
        &self.all
    }

    /// Exactly the rows whose fields match `filter` (what [`Filter::matches`] says of
    /// each row's fields).
    pub fn evaluate(&self, filter: &Filter) -> RoaringBitmap {
        let mut rows = self.eval(&filter.expr);
        // Only rows present: a caller's `remove` with fewer fields than it inserted
        // leaves stray bits, which must not come back.
        rows &= &self.all;
        rows
    }

    /// Estimated heap bytes: the bitmaps' serialized sizes (close to their in-memory
    /// size), the names and keywords, and a fixed cost per map entry.
    pub fn memory_bytes(&self) -> usize {
        let mut total = self.all.serialized_size();
        for (name, field) in &self.fields {
            total += ENTRY_OVERHEAD + name.len() + field.exists.serialized_size();
            for (k, rows) in &field.keywords {
                total += ENTRY_OVERHEAD + k.len() + rows.serialized_size();
            }
            for rows in field.ints.values() {
                total += ENTRY_OVERHEAD + rows.serialized_size();
            }
        }
        total
    }

    fn eval(&self, expr: &Expr) -> RoaringBitmap {
        match expr {
            Expr::Cmp { field, op: CmpOp::Eq, value } => self.equal(field, value),
            Expr::Cmp { field, op: CmpOp::Ne, value } => &self.all - self.equal(field, value),
            Expr::Cmp { field, op, value } => {
                let Some(n) = value.as_int() else { return RoaringBitmap::new() };
                let range = match op {
                    CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(n)),
                    CmpOp::Le => (Bound::Unbounded, Bound::Included(n)),
                    CmpOp::Gt => (Bound::Excluded(n), Bound::Unbounded),
                    CmpOp::Ge => (Bound::Included(n), Bound::Unbounded),
                    CmpOp::Eq | CmpOp::Ne => unreachable!("handled above"),
                };
                self.int_range(field, range)
            }
            Expr::In { field, values } => values.iter().filter_map(|v| self.postings(field, v)).union(),
            Expr::Between { field, lo, hi } => {
                if lo > hi {
                    return RoaringBitmap::new();
                }
                self.int_range(field, (Bound::Included(*lo), Bound::Included(*hi)))
            }
            Expr::Exists { field } => self.fields.get(field).map(|f| f.exists.clone()).unwrap_or_default(),
            Expr::Not(e) => &self.all - self.eval(e),
            Expr::And(es) => {
                let mut acc = self.eval(&es[0]);
                for e in &es[1..] {
                    if acc.is_empty() {
                        break;
                    }
                    acc &= self.eval(e);
                }
                acc
            }
            Expr::Or(es) => es.iter().map(|e| self.eval(e)).union(),
        }
    }

    fn equal(&self, field: &[u8], value: &Value) -> RoaringBitmap {
        self.postings(field, value).cloned().unwrap_or_default()
    }

    /// The rows where `field` holds `value`, if any.
    fn postings(&self, field: &[u8], value: &Value) -> Option<&RoaringBitmap> {
        let f = self.fields.get(field)?;
        match value {
            Value::Int(n) => f.ints.get(n),
            Value::Keyword(k) => f.keywords.get(k),
        }
    }

    fn int_range(&self, field: &[u8], range: (Bound<i64>, Bound<i64>)) -> RoaringBitmap {
        let Some(f) = self.fields.get(field) else { return RoaringBitmap::new() };
        f.ints.range(range).map(|(_, rows)| rows).union()
    }
}
