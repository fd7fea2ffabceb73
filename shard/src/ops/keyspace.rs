//! Keyspace commands, answered for this shard only (the router fans out and merges):
//! DBSIZE, KEYS, SCAN, FLUSHALL, and the internal KEEL.INFO and KEEL.DEBUG.

use crate::args::{parse_cursor, parse_i64, upper, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::glob::Glob;
use crate::shard::{storage_error, Reply, Shard};
use keel_protocol::Value;
use keel_storage::NS_KV;

/// Shard-local SCAN cursors are below 2^48 (the router keeps the shard in the high bits).
const CURSOR_LIMIT: u64 = 1 << 48;

/// `DBSIZE`
pub fn dbsize(shard: &Shard) -> Reply {
    Value::Integer(shard.store.len(NS_KV) as i64).into()
}

/// `KEYS pattern`
pub fn keys(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let glob = Glob::new(&argv[1]);
    let keys = shard.store.keys_where(NS_KV, &mut |k| glob.matches(k));
    Value::Array(keys.into_iter().map(Value::Bulk).collect()).into()
}

/// Parsed SCAN arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct ScanArgs<'a> {
    pub cursor: u64,
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    /// False when a TYPE other than `string` was asked for (nothing can match).
    pub type_matches: bool,
}

/// `cursor [MATCH pattern] [COUNT n] [TYPE t]`
pub fn parse_scan(args: &[Vec<u8>]) -> Result<ScanArgs<'_>, &'static str> {
    let Some(cursor) = args.first().and_then(|c| parse_cursor(c)).filter(|&c| c < CURSOR_LIMIT) else {
        return Err("ERR invalid cursor");
    };
    let mut out = ScanArgs { cursor, pattern: None, count: 10, type_matches: true };
    let mut i = 1;
    while i < args.len() {
        let Some(arg) = args.get(i + 1) else { return Err(ERR_SYNTAX) };
        let mut buf = [0u8; 8];
        match upper(&args[i], &mut buf).unwrap_or(b"") {
            b"MATCH" => out.pattern = Some(arg),
            b"COUNT" => match parse_i64(arg) {
                None => return Err(ERR_NOT_INTEGER),
                Some(n) if n < 1 => return Err(ERR_SYNTAX),
                Some(n) => out.count = usize::try_from(n).unwrap_or(usize::MAX),
            },
            b"TYPE" => out.type_matches = arg.eq_ignore_ascii_case(b"string"),
            _ => return Err(ERR_SYNTAX),
        }
        i += 2;
    }
    Ok(out)
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]` → `[next_cursor, [keys…]]` with
/// shard-local cursors.
pub fn scan(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let a = match parse_scan(&argv[1..]) {
        Ok(a) => a,
        Err(e) => return Reply::err(e),
    };
    let (next, mut keys) = shard.store.scan(NS_KV, a.cursor, a.count);
    if !a.type_matches {
        keys.clear();
    } else if let Some(p) = a.pattern {
        let glob = Glob::new(p);
        if !glob.matches_all() {
            keys.retain(|k| glob.matches(k));
        }
    }
    let keys = Value::Array(keys.into_iter().map(Value::Bulk).collect());
    Value::Array(vec![Value::Bulk(next.to_string().into_bytes()), keys]).into()
}

/// `FLUSHALL [ASYNC | SYNC]`: every key of this shard, vector indexes included.
pub fn flushall(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    match argv.len() {
        1 => {}
        2 if argv[1].eq_ignore_ascii_case(b"ASYNC") || argv[1].eq_ignore_ascii_case(b"SYNC") => {}
        _ => return Reply::err(ERR_SYNTAX),
    }
    match shard.store.clear_all() {
        Ok(commit) => {
            shard.vectors.borrow_mut().by_name.clear();
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `KEEL.INFO`: this shard's counters as a map of name → integer.
pub fn info(shard: &Shard) -> Reply {
    let st = shard.store.stats();
    let reg = shard.vectors.borrow();
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let (_, avg_ttl) = shard.store.expires(NS_KV);
    let fields: [(&str, u64); 16] = [
        ("keys", st.keys_per_ns[NS_KV as usize] as u64),
        ("expires", st.expires_per_ns[NS_KV as usize] as u64),
        ("indexes", reg.by_name.len() as u64),
        ("vectors", reg.n_vectors() as u64),
        ("vlog_segments", st.segments as u64),
        ("vlog_disk_bytes", st.disk_bytes),
        ("vlog_live_bytes", st.live_bytes),
        ("vlog_dead_bytes", st.dead_bytes),
        ("compactions", st.compactions),
        ("rss_bytes", crate::sys::rss_bytes()),
        ("index_memory_bytes", reg.memory_bytes() as u64),
        ("last_seq", st.last_seq),
        ("recovered_keys", shard.recovered_keys as u64),
        ("uptime_ms", shard.started.elapsed().as_millis() as u64),
        ("avg_ttl", avg_ttl),
        ("expired_keys", st.expired_keys),
    ];
    Value::Map(fields.iter().map(|&(k, v)| (Value::bulk(k), Value::Integer(clamp(v)))).collect()).into()
}

/// `KEEL.DEBUG PANIC`: panics this shard's executor (the router sends it for `DEBUG
/// PANIC-SHARD key` when `enable_debug_command` is set), to test what a panic does: the
/// process logs it and exits non-zero, and the router's supervisor restarts it.
pub fn debug(argv: Vec<Vec<u8>>) -> Reply {
    if argv[1].eq_ignore_ascii_case(b"PANIC") {
        panic!("KEEL.DEBUG PANIC: a panic requested with DEBUG PANIC-SHARD");
    }
    Reply::err(ERR_SYNTAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn check(a: &[&str], expected: Result<(u64, Option<&str>, usize, bool), &str>) {
        let a = args(a);
        let got = parse_scan(&a).map(|s| (s.cursor, s.pattern.map(|p| String::from_utf8(p.to_vec()).unwrap()), s.count, s.type_matches));
        let expected = expected.map(|(c, p, n, t)| (c, p.map(str::to_string), n, t));
        assert_eq!(got, expected, "{a:?}");
    }

    #[test]
    fn scan_arguments() {
        check(&["0"], Ok((0, None, 10, true)));
        check(&["17", "MATCH", "a*", "COUNT", "100"], Ok((17, Some("a*"), 100, true)));
        check(&["0", "count", "5", "match", "x", "type", "STRING"], Ok((0, Some("x"), 5, true)));
        check(&["0", "TYPE", "hash"], Ok((0, None, 10, false)));
        check(&["x"], Err("ERR invalid cursor"));
        check(&["-1"], Err("ERR invalid cursor"));
        check(&["281474976710656"], Err("ERR invalid cursor"));
        check(&["0", "COUNT"], Err(ERR_SYNTAX));
        check(&["0", "COUNT", "0"], Err(ERR_SYNTAX));
        check(&["0", "COUNT", "x"], Err(ERR_NOT_INTEGER));
        check(&["0", "LIMIT", "1"], Err(ERR_SYNTAX));
    }
}
