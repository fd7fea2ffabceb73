use super::*;

/// Parses `input` and compares its canonical form.
fn check(input: &str, canonical: &str) {
    let filter = Filter::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(filter.to_string(), canonical, "{input:?}");
    // The canonical form is a fixed point.
    assert_eq!(Filter::parse(canonical).unwrap(), filter, "{canonical:?}");
}

/// Parses `input`, expecting an error at `pos` whose message contains `msg`.
fn check_err(input: &str, pos: usize, msg: &str) {
    match Filter::parse(input) {
        Ok(f) => panic!("{input:?} parsed as {f}"),
        Err(e) => {
            assert_eq!(e.pos, pos, "{input:?}: {e}");
            assert!(e.msg.contains(msg), "{input:?}: {e:?} should say {msg:?}");
            assert_eq!(e.to_string(), format!("filter error at position {pos}: {}", e.msg));
        }
    }
}

fn same(a: &str, b: &str) {
    assert_eq!(Filter::parse(a).unwrap(), Filter::parse(b).unwrap(), "{a:?} vs {b:?}");
}

#[test]
fn every_operator() {
    check("a = 1", "a = 1");
    check("a=1", "a = 1");
    check("a != x", "a != x");
    check("a!=x", "a != x");
    check("a > 1", "a > 1");
    check("a >= -5", "a >= -5");
    check("a>=-5", "a >= -5");
    check("a < 0", "a < 0");
    check("a <= 9223372036854775807", "a <= 9223372036854775807");
    check("a IN (1, x, \"y z\")", "a IN (1, x, \"y z\")");
    check("a IN(1)", "a IN (1)");
    check("a BETWEEN -1 AND 5", "a BETWEEN -1 AND 5");
    check("a EXISTS", "a EXISTS");
    check("NOT a = 1", "NOT a = 1");
    check("NOT NOT a EXISTS", "NOT NOT a EXISTS");
    check("a = 1 AND b = 2", "(a = 1 AND b = 2)");
    check("a = 1 OR b = 2", "(a = 1 OR b = 2)");
}

#[test]
fn precedence() {
    check("a=1 OR b=2 AND c=3", "(a = 1 OR (b = 2 AND c = 3))");
    check("a=1 AND b=2 OR c=3", "((a = 1 AND b = 2) OR c = 3)");
    check("(a=1 OR b=2) AND c=3", "((a = 1 OR b = 2) AND c = 3)");
    check("NOT a=1 AND b=2", "(NOT a = 1 AND b = 2)");
    check("NOT a=1 OR b=2", "(NOT a = 1 OR b = 2)");
    check("NOT (a=1 AND b=2)", "NOT (a = 1 AND b = 2)");
    check("a=1 AND b=2 AND c=3", "(a = 1 AND b = 2 AND c = 3)");
    check("a=1 OR b=2 OR c=3 AND d=4", "(a = 1 OR b = 2 OR (c = 3 AND d = 4))");
    check("((a = 1))", "a = 1");
    check("a BETWEEN 1 AND 2 AND b = 3", "(a BETWEEN 1 AND 2 AND b = 3)");
    check("a = 1 AND NOT b = 2 OR c EXISTS", "((a = 1 AND NOT b = 2) OR c EXISTS)");
}

#[test]
fn keywords_any_case() {
    same("a in (1) and b between 1 and 2 or not c exists", "a IN (1) AND b BETWEEN 1 AND 2 OR NOT c EXISTS");
    same("a In (1) AnD b ExIsTs", "a IN (1) AND b EXISTS");
}

#[test]
fn quoting() {
    same("lang = \"en\"", "lang = en");
    same("n = \"42\"", "n = 42");
    same("\"lang\" = en", "lang = en");
    check("\"my field\" = \"a \\\"b\\\" \\\\ c\"", "\"my field\" = \"a \\\"b\\\" \\\\ c\"");
    check("\"and\" = \"or\"", "\"and\" = \"or\"");
    check("a = \"\"", "a = \"\"");
    check("a = \"(x, y)\"", "a = \"(x, y)\"");
    check("a = 2024-01-01", "a = 2024-01-01");
    check("a.b-c_D = x/y:z", "a.b-c_D = x/y:z");
    check("a > \"7\"", "a > 7");
    let f = Filter::parse("n = 007 AND m = 7").unwrap();
    assert_eq!(
        f.expr(),
        &Expr::And(vec![
            Expr::Cmp { field: b"n"[..].into(), op: CmpOp::Eq, value: kw("007") },
            Expr::Cmp { field: b"m"[..].into(), op: CmpOp::Eq, value: Value::Int(7) },
        ])
    );
}

#[test]
fn errors_name_positions() {
    check_err("", 0, "expected a field name, NOT or '('");
    check_err("   ", 3, "expected a field name");
    check_err("a =", 3, "expected a value after '='");
    check_err("lang = ", 7, "expected a value after '='");
    check_err("a == 1", 3, "expected a value after '='");
    check_err("a = 1 AND", 9, "expected a field name, NOT or '(' after AND");
    check_err("a = 1 OR", 8, "after OR");
    check_err("NOT", 3, "after NOT");
    check_err("(a = 1", 6, "expected ')' to close the '(' at position 0");
    check_err("(a = 1 b", 7, "expected ')' to close the '(' at position 0");
    check_err("a = 1)", 5, "unexpected ')'");
    check_err("()", 1, "expected a field name");
    check_err("a IN ()", 6, "IN needs at least one value");
    check_err("a IN 1", 5, "expected '(' after IN");
    check_err("a IN (1, 2", 10, "expected ',' or ')' in IN list");
    check_err("a IN (1 2)", 8, "expected ',' or ')' in IN list");
    check_err("a IN (1,)", 8, "expected a value after ',' in IN");
    check_err("a ~ 1", 2, "expected an operator");
    check_err("a", 1, "expected an operator");
    check_err("a ! 1", 2, "unexpected '!'");
    check_err("a = \"en", 4, "unterminated quoted string");
    check_err("a = \"en\\", 4, "unterminated quoted string");
    check_err("a = \"x\\n\"", 6, "unknown escape");
    check_err("a = 1 b = 2", 6, "expected AND, OR or the end of the filter");
    check_err("a > x", 4, "expected an integer after '>'");
    check_err("a <= 1.5", 5, "expected an integer after '<='");
    check_err("a BETWEEN 1 2", 12, "expected AND after BETWEEN's lower bound");
    check_err("a BETWEEN x AND 2", 10, "expected an integer after BETWEEN");
    check_err("a BETWEEN 1 AND", 15, "expected a value after BETWEEN");
    check_err("a = AND", 4, "quote a keyword");
    check_err("AND = 1", 0, "expected a field name");
    check_err("a/b = 1", 0, "bare field name");
}

#[test]
fn nesting_and_length_capped() {
    let ok = format!("{}a = 1{}", "(".repeat(MAX_FILTER_DEPTH), ")".repeat(MAX_FILTER_DEPTH));
    check(&ok, "a = 1");
    let deep = format!("{}a = 1{}", "(".repeat(MAX_FILTER_DEPTH + 1), ")".repeat(MAX_FILTER_DEPTH + 1));
    check_err(&deep, MAX_FILTER_DEPTH, "nested deeper than 64");
    let nots = format!("{}a = 1", "NOT ".repeat(MAX_FILTER_DEPTH + 1));
    check_err(&nots, 4 * MAX_FILTER_DEPTH, "nested deeper than 64");
    // A hostile depth far past the cap is refused just as fast, without recursion.
    let hostile = "(".repeat(MAX_FILTER_LEN);
    check_err(&hostile, MAX_FILTER_DEPTH, "nested deeper");
    let long = format!("a = {}", "x".repeat(MAX_FILTER_LEN));
    check_err(&long, MAX_FILTER_LEN, "longer than");
}

#[test]
fn bytes_input() {
    let f = Filter::parse(&b"a = \xff\xfe"[..]).unwrap();
    assert_eq!(f.expr(), &Expr::Cmp { field: b"a"[..].into(), op: CmpOp::Eq, value: Value::Keyword(b"\xff\xfe"[..].into()) });
}
