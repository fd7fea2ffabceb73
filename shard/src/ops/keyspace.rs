//! Keyspace commands, answered for this shard only (the router fans out and merges):
//! DBSIZE, KEYS, SCAN, FLUSHDB, FLUSHALL, SWAPDB, MOVE (keyed: one shard), and the
//! internal KEEL.INFO and KEEL.DEBUG. Each runs in the request's database, whose keys
//! live in the namespace `Shard::dbs` maps it to (`crate::dbs`).

use crate::args::{parse_cursor, parse_i64, upper, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::dbs::{DB_MAP_KEY, ERR_DB_RANGE, NS_DB_MAP};
use crate::glob::Glob;
use crate::shard::{storage_error, Reply, Shard};
use keel_protocol::num::{parse_db_index, DbIndexError};
use keel_protocol::Value;
use keel_storage::{Mutation, Ns};

/// Shard-local SCAN cursors are below 2^48 (the router keeps the shard in the high bits).
const CURSOR_LIMIT: u64 = 1 << 48;

/// `DBSIZE`
pub fn dbsize(shard: &Shard, ns: Ns) -> Reply {
    Value::Integer(shard.store.len(ns) as i64).into()
}

/// `KEYS pattern`
pub fn keys(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    let glob = Glob::new(&argv[1]);
    let keys = shard.store.keys_where(ns, &mut |k| glob.matches(k));
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
pub fn scan(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    let a = match parse_scan(&argv[1..]) {
        Ok(a) => a,
        Err(e) => return Reply::err(e),
    };
    let (next, mut keys) = shard.store.scan(ns, a.cursor, a.count);
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

/// The optional `ASYNC | SYNC` of FLUSHDB and FLUSHALL (both flush at once in keel).
fn flush_mode_ok(argv: &[Vec<u8>]) -> bool {
    match argv.len() {
        1 => true,
        2 => argv[1].eq_ignore_ascii_case(b"ASYNC") || argv[1].eq_ignore_ascii_case(b"SYNC"),
        _ => false,
    }
}

/// `FLUSHALL [ASYNC | SYNC]`: every key of every database of this shard, vector
/// indexes included (one clear-all record); the database map goes back to the identity.
pub fn flushall(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if !flush_mode_ok(&argv) {
        return Reply::err(ERR_SYNTAX);
    }
    match shard.store.clear_all() {
        Ok(commit) => {
            shard.vectors.borrow_mut().by_name.clear();
            shard.dbs.reset();
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `FLUSHDB [ASYNC | SYNC]`: every key of the request's database on this shard
/// (`Store::clear_ns`); other databases and the vector indexes stay.
pub fn flushdb(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    if !flush_mode_ok(&argv) {
        return Reply::err(ERR_SYNTAX);
    }
    match shard.store.clear_ns(ns) {
        Ok(commit) => Reply::AfterCommit { commit, ok: Value::ok() },
        Err(e) => storage_error(&e).into(),
    }
}

/// `SWAPDB index1 index2`: swaps the two databases' namespaces in this shard's map and
/// writes the map (one put; no key is touched). Errors in Redis's order: the first
/// index not an `int` (`ERR invalid first DB index`), the second (`… second …`), then
/// either out of range.
pub fn swapdb(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let count = shard.dbs.count();
    let mut dbs = [0u8; 2];
    let mut in_range = true;
    for (i, which) in ["first", "second"].into_iter().enumerate() {
        match parse_db_index(&argv[1 + i], count) {
            Ok(db) => dbs[i] = db,
            Err(DbIndexError::OutOfRange) => in_range = false,
            Err(e) => return Reply::err(e.text(Some(&format!("ERR invalid {which} DB index")))),
        }
    }
    if !in_range {
        return Reply::err(ERR_DB_RANGE);
    }
    let [a, b] = dbs;
    if a == b {
        return Value::ok().into();
    }
    let map = shard.dbs.swapped(a, b);
    match shard.store.apply(vec![Mutation::Put { ns: NS_DB_MAP, key: DB_MAP_KEY.to_vec(), value: map.clone() }]) {
        Ok(commit) => {
            shard.dbs.set(map);
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `MOVE key db` from the request's database `db`: 1 if the key moved, 0 if it is
/// missing here or exists in the target database. One batch (delete in the source
/// namespace, put in the target), so a crash leaves the key in exactly one of them.
/// Errors as Redis: a non-integer or out-of-range target, then the same database.
pub async fn move_key(shard: &Shard, db: u8, mut argv: Vec<Vec<u8>>) -> Reply {
    let to = match parse_db_index(&argv[2], shard.dbs.count()) {
        Ok(to) => to,
        Err(e) => return Reply::err(e.text(None)),
    };
    if to == db {
        return Reply::err("ERR source and destination objects are the same");
    }
    let key = argv.swap_remove(1);
    loop {
        let (from_ns, to_ns) = (shard.dbs.ns(db), shard.dbs.ns(to));
        // The live value (read again if the key was written while the read waited for
        // the disk).
        let value = match crate::ops::expire::read_for_rewrite(shard, from_ns, &key).await {
            Ok(Some(v)) => v,
            Ok(None) => return Value::Integer(0).into(),
            Err(e) => return e.into(),
        };
        // Other requests ran during the read: go again if the map changed.
        if shard.dbs.ns(db) != from_ns || shard.dbs.ns(to) != to_ns {
            continue;
        }
        if shard.store.contains(to_ns, &key) {
            return Value::Integer(0).into();
        }
        // The key keeps its TTL, as in Redis.
        let at = shard.store.expire_at(from_ns, &key).unwrap_or(0);
        let put = crate::ops::expire::put_expiring(to_ns, key.clone(), value, at, shard.store.now_ms());
        let muts = vec![Mutation::Delete { ns: from_ns, key }, put];
        return shard.write(muts, Value::Integer(1));
    }
}

/// `KEEL.INFO`: this shard's counters as a map of name → integer.
pub fn info(shard: &Shard) -> Reply {
    let st = shard.store.stats();
    let reg = shard.vectors.borrow();
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    // Per database: (db, keys, keys with a TTL, their mean TTL in ms).
    let per_db: Vec<(u8, usize, usize, u64)> = (0..shard.dbs.count() as u8)
        .map(|db| {
            let ns = shard.dbs.ns(db);
            let (expires, avg_ttl) = shard.store.expires(ns);
            (db, shard.store.len(ns), expires, avg_ttl)
        })
        .collect();
    let searches = shard.search_counts.get();
    let fields: [(&str, u64); 29] = [
        ("keys", per_db.iter().map(|&(_, n, _, _)| n as u64).sum()),
        ("expires", per_db.iter().map(|&(_, _, e, _)| e as u64).sum()),
        ("indexes", reg.by_name.len() as u64),
        ("vectors", reg.n_vectors() as u64),
        ("vlog_segments", st.segments as u64),
        ("vlog_disk_bytes", st.disk_bytes),
        ("vlog_live_bytes", st.live_bytes),
        ("vlog_dead_bytes", st.dead_bytes),
        ("compactions", st.compactions),
        ("rss_bytes", crate::sys::rss_bytes()),
        ("index_memory_bytes", reg.memory_bytes() as u64),
        ("keydir_bytes", st.keydir_bytes as u64),
        ("last_seq", st.last_seq),
        ("recovered_keys", shard.recovered_keys as u64),
        ("uptime_ms", shard.started.elapsed().as_millis() as u64),
        ("cache_bytes", st.cache.capacity),
        ("cache_used_bytes", st.cache.used),
        ("cache_entries", st.cache.entries),
        ("cache_hits", st.cache.hits),
        ("cache_misses", st.cache.misses),
        ("cache_evictions", st.cache.evictions),
        ("avg_ttl", per_db.first().map_or(0, |d| d.3)),
        ("expired_keys", st.expired_keys),
        ("inflight_bytes", shard.inflight.limit() as u64),
        ("inflight_used_bytes", shard.inflight.used(shard.store.reading_bytes()) as u64),
        ("inflight_peak_bytes", shard.inflight.peak() as u64),
        ("vector_searches", searches.searches),
        ("vector_rerank_reads", searches.rerank_reads),
        ("vector_rerank_skipped", searches.rerank_skipped),
    ];
    let mut map: Vec<(Value, Value)> = fields.iter().map(|&(k, v)| (Value::bulk(k), Value::Integer(clamp(v)))).collect();
    // Per non-empty database: `dbN.keys`, `dbN.expires` and `dbN.avg_ttl`, for the
    // router's `dbN:keys=…,expires=…,avg_ttl=…` keyspace lines.
    for (db, n, expires, avg_ttl) in per_db.into_iter().filter(|&(_, n, _, _)| n > 0) {
        map.push((Value::bulk(format!("db{db}.keys")), Value::Integer(clamp(n as u64))));
        map.push((Value::bulk(format!("db{db}.expires")), Value::Integer(clamp(expires as u64))));
        map.push((Value::bulk(format!("db{db}.avg_ttl")), Value::Integer(clamp(avg_ttl))));
    }
    Value::Map(map).into()
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
