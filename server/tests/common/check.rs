//! `check(con, argv, expected)`: run one command and compare its reply, in the
//! reading order of the Redis docs (command first, then what it answers).

use redis::Value;

/// An expected reply. String-like variants match bulk, simple and verbatim strings, so
/// one expectation serves RESP2 and RESP3.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    Nil,
    Int(i64),
    Str(String),
    /// The exact error line, e.g. `ERR syntax error`.
    Err(String),
    /// An error line starting with this text.
    ErrPrefix(String),
}

pub fn s(x: &str) -> Reply {
    Reply::Str(x.to_string())
}

pub fn err(x: &str) -> Reply {
    Reply::Err(x.to_string())
}

/// Runs `argv` and returns the raw reply (server errors as `Err`).
pub fn run<A: AsRef<[u8]>>(con: &mut redis::Connection, argv: &[A]) -> redis::RedisResult<Value> {
    let mut c = redis::cmd(std::str::from_utf8(argv[0].as_ref()).expect("command name is UTF-8"));
    for a in &argv[1..] {
        c.arg(a.as_ref());
    }
    c.query::<Value>(con)
}

/// Runs `argv`, panicking on an error reply.
pub fn ok<A: AsRef<[u8]>>(con: &mut redis::Connection, argv: &[A]) -> Value {
    run(con, argv).unwrap_or_else(|e| panic!("{} failed: {}", show(argv), super::err_line(&e)))
}

/// Runs `argv` and asserts the reply matches `expected`.
#[track_caller]
pub fn check<A: AsRef<[u8]>>(con: &mut redis::Connection, argv: &[A], expected: Reply) {
    let got = run(con, argv);
    let good = match (&expected, &got) {
        (Reply::Ok, Ok(Value::Okay)) => true,
        (Reply::Ok, Ok(Value::SimpleString(s))) => s == "OK",
        (Reply::Nil, Ok(Value::Nil)) => true,
        (Reply::Int(i), Ok(Value::Int(j))) => i == j,
        (Reply::Str(want), Ok(Value::BulkString(b))) => want.as_bytes() == b.as_slice(),
        (Reply::Str(want), Ok(Value::SimpleString(s))) => want == s,
        (Reply::Str(want), Ok(Value::VerbatimString { text, .. })) => want == text,
        (Reply::Str(want), Ok(Value::Okay)) => want == "OK",
        (Reply::Err(want), Err(e)) => *want == super::err_line(e),
        (Reply::ErrPrefix(want), Err(e)) => super::err_line(e).starts_with(want.as_str()),
        _ => false,
    };
    if !good {
        let got = match got {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error {:?}", super::err_line(&e)),
        };
        panic!("{}\n  expected {expected:?}\n  got      {got}", show(argv));
    }
}

/// `SET k v` style rendering of argv for failure messages.
pub fn show<A: AsRef<[u8]>>(argv: &[A]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.as_ref();
            match std::str::from_utf8(a) {
                Ok(s) if s.len() <= 64 && s.chars().all(|c| !c.is_control()) => s.to_string(),
                _ => format!("<{} bytes>", a.len()),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// INFO `section` as field → value (every `name:value` line).
pub fn info(con: &mut redis::Connection, section: &str) -> std::collections::BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

/// The integer field `name` of INFO `section`; panics if it is missing.
pub fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> u64 {
    let m = info(con, section);
    m.get(name).unwrap_or_else(|| panic!("INFO {section} has no {name}: {m:?}")).parse().unwrap()
}
