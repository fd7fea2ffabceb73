use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Evaluates `filter` on `index` and compares with the expected rows.
fn check(index: &PostingIndex, filter: &str, expected: &[u32]) {
    let rows = index.evaluate(&Filter::parse(filter).unwrap());
    assert_eq!(rows.iter().collect::<Vec<_>>(), expected, "{filter:?}");
}

#[test]
fn evaluates_each_operator() {
    let mut index = PostingIndex::new();
    let rows = [
        fields(&[("lang", kw("en")), ("n", Value::Int(1))]),
        fields(&[("lang", kw("fr")), ("n", Value::Int(5)), ("n", Value::Int(50))]),
        fields(&[("lang", kw("en")), ("lang", kw("de"))]),
        Fields::new(),
        fields(&[("n", kw("many"))]),
    ];
    for (row, f) in rows.iter().enumerate() {
        index.insert(row as u32 * 10, f);
    }
    assert_eq!(index.len(), 5);
    check(&index, "lang = en", &[0, 20]);
    check(&index, "lang != en", &[10, 30, 40]);
    check(&index, "lang IN (de, fr)", &[10, 20]);
    check(&index, "n > 1", &[10]);
    check(&index, "n >= 1", &[0, 10]);
    check(&index, "n < 5", &[0]);
    check(&index, "n <= 5", &[0, 10]);
    check(&index, "n BETWEEN 2 AND 49", &[10]);
    check(&index, "n BETWEEN 49 AND 2", &[]);
    check(&index, "n = many", &[40]);
    check(&index, "n EXISTS", &[0, 10, 40]);
    check(&index, "NOT n EXISTS", &[20, 30]);
    check(&index, "lang = en AND n = 1", &[0]);
    check(&index, "lang = fr OR n = many OR nope EXISTS", &[10, 40]);
    check(&index, "n > 9223372036854775807 OR n < -9223372036854775808", &[]);

    assert!(index.remove(10, &rows[1]));
    assert!(!index.remove(10, &rows[1]));
    check(&index, "n > 1", &[]);
    check(&index, "lang != en", &[30, 40]);
    for (row, f) in rows.iter().enumerate() {
        index.remove(row as u32 * 10, f);
    }
    assert!(index.is_empty());
    assert_eq!(index.memory_bytes(), PostingIndex::new().memory_bytes());
}

#[test]
fn memory_grows_with_content() {
    let mut index = PostingIndex::new();
    let empty = index.memory_bytes();
    for row in 0..1000u32 {
        index.insert(row, &fields(&[("n", Value::Int(i64::from(row % 10))), ("k", kw("v"))]));
    }
    assert!(index.memory_bytes() > empty + 1000, "{}", index.memory_bytes());
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![(-3i64..=3).prop_map(Value::Int), prop::sample::select(vec!["x", "y", "z"]).prop_map(kw)]
}

fn name() -> impl Strategy<Value = Box<[u8]>> {
    prop::sample::select(NAMES.to_vec()).prop_map(|n| n.as_bytes().into())
}

fn row_fields() -> impl Strategy<Value = Fields> {
    prop::collection::vec((name(), value()), 0..6).prop_map(Fields::from_pairs)
}

fn expr() -> impl Strategy<Value = Expr> {
    let op = prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]);
    let leaf = prop_oneof![
        (name(), op, value(), -4i64..=4).prop_map(|(field, op, value, n)| {
            let value = if matches!(op, CmpOp::Eq | CmpOp::Ne) { value } else { Value::Int(n) };
            Expr::Cmp { field, op, value }
        }),
        (name(), prop::collection::vec(value(), 1..4)).prop_map(|(field, values)| Expr::In { field, values }),
        (name(), -4i64..=4, -4i64..=4).prop_map(|(field, lo, hi)| Expr::Between { field, lo, hi }),
        name().prop_map(|field| Expr::Exists { field }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u32, Fields),
    Remove(u32),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0u32..40, row_fields()).prop_map(|(r, f)| Op::Insert(r, f)),
        1 => (0u32..40).prop_map(Op::Remove),
    ];
    prop::collection::vec(op, 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The canonical text parses back to the same tree.
    #[test]
    fn display_round_trips(e in expr()) {
        let text = e.to_string();
        let parsed = Filter::parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(parsed.expr(), &e, "{}", text);
    }

    /// After any inserts and removes, `evaluate` is exactly the rows whose fields
    /// `matches` accepts.
    #[test]
    fn evaluate_equals_matches(ops in ops(), filters in prop::collection::vec(expr(), 1..6)) {
        let mut index = PostingIndex::new();
        let mut model: BTreeMap<u32, Fields> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(row, f) => {
                    if let Some(old) = model.remove(&row) {
                        index.remove(row, &old);
                    }
                    index.insert(row, &f);
                    model.insert(row, f);
                }
                Op::Remove(row) => {
                    let removed = model.remove(&row);
                    prop_assert_eq!(index.remove(row, removed.as_ref().unwrap_or(&Fields::new())), removed.is_some());
                }
            }
        }
        prop_assert_eq!(index.len(), model.len() as u64);
        for e in filters {
            let filter = Filter { expr: e };
            let want: Vec<u32> = model.iter().filter(|(_, f)| filter.matches(f)).map(|(r, _)| *r).collect();
            let got: Vec<u32> = index.evaluate(&filter).iter().collect();
            prop_assert_eq!(got, want, "{}", filter);
        }
    }
}
