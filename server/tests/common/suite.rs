//! Command checks shared by `resp2.rs` and `resp3.rs`: the same requests, with the
//! expectations that do not depend on the protocol. Protocol-specific reply shapes are
//! asserted where they differ (scores, maps) and in the two test files themselves.

use super::check::{check, err, ok, run, s, Reply};
use super::{blob, err_line, shard_of, tenants_on, text, Server};
use redis::Value;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Resp2,
    Resp3,
}

pub fn con(srv: &Server, p: Proto) -> redis::Connection {
    match p {
        Proto::Resp2 => srv.con(),
        Proto::Resp3 => srv.con3(),
    }
}

const NOT_INT: &str = "ERR value is not an integer or out of range";
const OVERFLOW: &str = "ERR increment or decrement would overflow";

pub fn connection_commands(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    check(&mut c, &["PING"], s("PONG"));
    check(&mut c, &["PING", "hello world"], s("hello world"));
    check(&mut c, &["PING", "a", "b"], err("ERR wrong number of arguments for 'ping' command"));
    check(&mut c, &["ECHO", "x y\r\nz"], s("x y\r\nz"));
    check(&mut c, &["SELECT", "0"], Reply::Ok);
    check(&mut c, &["SELECT", "16"], err("ERR DB index is out of range"));
    check(&mut c, &["SELECT", "x"], err(NOT_INT));

    let id = match ok(&mut c, &["CLIENT", "ID"]) {
        Value::Int(i) => i,
        other => panic!("CLIENT ID: {other:?}"),
    };
    assert!(id > 0, "CLIENT ID {id}");
    let mut c2 = con(srv, p);
    let id2 = match ok(&mut c2, &["CLIENT", "ID"]) {
        Value::Int(i) => i,
        other => panic!("CLIENT ID: {other:?}"),
    };
    assert_ne!(id, id2, "two connections share a client id");
    check(&mut c, &["CLIENT", "ID"], Reply::Int(id));

    check(&mut c, &["CLIENT", "GETNAME"], Reply::Nil);
    check(&mut c, &["CLIENT", "SETNAME", "worker-1"], Reply::Ok);
    check(&mut c, &["CLIENT", "GETNAME"], s("worker-1"));
    check(&mut c2, &["CLIENT", "GETNAME"], Reply::Nil);
    check(&mut c, &["CLIENT", "SETNAME", "has space"], Reply::ErrPrefix("ERR Client names cannot contain spaces".into()));
    check(&mut c, &["CLIENT", "GETNAME"], s("worker-1"));
    check(&mut c, &["CLIENT", "NOPE"], Reply::ErrPrefix("ERR unknown subcommand 'NOPE'".into()));
    // The connection survives client errors.
    check(&mut c, &["PING"], s("PONG"));
}

pub fn strings(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    check(&mut c, &["GET", "s:k"], Reply::Nil);
    check(&mut c, &["SET", "s:k", "v1"], Reply::Ok);
    check(&mut c, &["GET", "s:k"], s("v1"));

    // NX / XX / GET
    check(&mut c, &["SET", "s:k", "v2", "NX"], Reply::Nil);
    check(&mut c, &["GET", "s:k"], s("v1"));
    check(&mut c, &["SET", "s:new", "v", "XX"], Reply::Nil);
    check(&mut c, &["EXISTS", "s:new"], Reply::Int(0));
    check(&mut c, &["SET", "s:new", "n1", "NX"], Reply::Ok);
    check(&mut c, &["GET", "s:new"], s("n1"));
    check(&mut c, &["SET", "s:k", "v3", "XX"], Reply::Ok);
    check(&mut c, &["GET", "s:k"], s("v3"));
    check(&mut c, &["SET", "s:k", "v4", "GET"], s("v3"));
    check(&mut c, &["GET", "s:k"], s("v4"));
    check(&mut c, &["SET", "s:fresh", "f", "GET"], Reply::Nil);
    check(&mut c, &["GET", "s:fresh"], s("f"));
    check(&mut c, &["SET", "s:k", "v5", "nx", "xx"], err("ERR syntax error"));
    check(&mut c, &["SET", "s:k", "v5", "BOGUS"], err("ERR syntax error"));
    check(&mut c, &["GET", "s:k"], s("v4"));

    // Binary-safe keys and values, the empty value.
    let bin: Vec<u8> = (0u8..=255).chain(b"\r\n\0".iter().copied()).collect();
    let key = b"s:\x00bin\r\n".to_vec();
    check(&mut c, &[b"SET".to_vec(), key.clone(), bin.clone()], Reply::Ok);
    assert_eq!(ok(&mut c, &[b"GET".to_vec(), key.clone()]), Value::BulkString(bin.clone()));
    check(&mut c, &["SET", "s:empty", ""], Reply::Ok);
    check(&mut c, &["GET", "s:empty"], s(""));
    check(&mut c, &["STRLEN", "s:empty"], Reply::Int(0));
    check(&mut c, &["EXISTS", "s:empty"], Reply::Int(1));
    let big = "x".repeat(100_000);
    check(&mut c, &["SET", "s:big", big.as_str()], Reply::Ok);
    check(&mut c, &["GET", "s:big"], s(&big));

    // GETDEL
    check(&mut c, &["GETDEL", "s:k"], s("v4"));
    check(&mut c, &["GET", "s:k"], Reply::Nil);
    check(&mut c, &["GETDEL", "s:k"], Reply::Nil);

    // APPEND / STRLEN
    check(&mut c, &["APPEND", "s:ap", "ab"], Reply::Int(2));
    check(&mut c, &["APPEND", "s:ap", "cde"], Reply::Int(5));
    check(&mut c, &["GET", "s:ap"], s("abcde"));
    check(&mut c, &["STRLEN", "s:ap"], Reply::Int(5));
    check(&mut c, &["STRLEN", "s:missing"], Reply::Int(0));

    // TYPE
    check(&mut c, &["TYPE", "s:ap"], s("string"));
    check(&mut c, &["TYPE", "s:missing"], s("none"));

    check(&mut c, &["GET"], err("ERR wrong number of arguments for 'get' command"));
    check(&mut c, &["SET", "s:k"], err("ERR wrong number of arguments for 'set' command"));
}

pub fn counters(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    check(&mut c, &["INCR", "n:c"], Reply::Int(1));
    check(&mut c, &["INCRBY", "n:c", "10"], Reply::Int(11));
    check(&mut c, &["DECR", "n:c"], Reply::Int(10));
    check(&mut c, &["DECRBY", "n:c", "3"], Reply::Int(7));
    check(&mut c, &["INCRBY", "n:c", "-7"], Reply::Int(0));
    check(&mut c, &["DECR", "n:fresh"], Reply::Int(-1));
    check(&mut c, &["GET", "n:c"], s("0"));
    check(&mut c, &["SET", "n:c", "41"], Reply::Ok);
    check(&mut c, &["INCR", "n:c"], Reply::Int(42));

    // Non-integers: the stored value, and the increment argument.
    check(&mut c, &["SET", "n:s", "abc"], Reply::Ok);
    check(&mut c, &["INCR", "n:s"], err(NOT_INT));
    check(&mut c, &["DECR", "n:s"], err(NOT_INT));
    check(&mut c, &["GET", "n:s"], s("abc"));
    check(&mut c, &["SET", "n:f", "1.5"], Reply::Ok);
    check(&mut c, &["INCR", "n:f"], err(NOT_INT));
    check(&mut c, &["INCRBY", "n:c", "x"], err(NOT_INT));
    check(&mut c, &["INCRBY", "n:c", "1.0"], err(NOT_INT));
    check(&mut c, &["DECRBY", "n:c", "99999999999999999999"], err(NOT_INT));
    check(&mut c, &["GET", "n:c"], s("42"));

    // i64 overflow, both directions; the value is left as it was.
    check(&mut c, &["SET", "n:max", "9223372036854775807"], Reply::Ok);
    check(&mut c, &["INCR", "n:max"], err(OVERFLOW));
    check(&mut c, &["INCRBY", "n:max", "1"], err(OVERFLOW));
    check(&mut c, &["GET", "n:max"], s("9223372036854775807"));
    check(&mut c, &["DECRBY", "n:max", "1"], Reply::Int(9223372036854775806));
    check(&mut c, &["SET", "n:min", "-9223372036854775808"], Reply::Ok);
    check(&mut c, &["DECR", "n:min"], err(OVERFLOW));
    check(&mut c, &["DECRBY", "n:min", "5"], err(OVERFLOW));
    check(&mut c, &["INCRBY", "n:min", "-1"], err(OVERFLOW));
    check(&mut c, &["GET", "n:min"], s("-9223372036854775808"));
}

/// Keys on both shards (of 2): `n` keys per shard, interleaved a0 b0 a1 b1 ….
fn spread_keys(prefix: &str, n: usize) -> Vec<String> {
    let a = tenants_on(prefix, 0, 2, n);
    let b = tenants_on(prefix, 1, 2, n);
    a.iter().zip(&b).flat_map(|(x, y)| [format!("{x}:k"), format!("{y}:k")]).collect()
}

pub fn multi_key(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    let keys = spread_keys("mk", 3);
    assert_eq!(keys.iter().map(|k| shard_of(k, 2)).collect::<BTreeSet<_>>().len(), 2);

    let mut mset: Vec<String> = vec!["MSET".into()];
    for (i, k) in keys.iter().enumerate() {
        mset.push(k.clone());
        mset.push(format!("v{i}"));
    }
    check(&mut c, &mset, Reply::Ok);
    for (i, k) in keys.iter().enumerate() {
        check(&mut c, &["GET", k.as_str()], s(&format!("v{i}")));
    }

    // MGET keeps argument order across shards, with holes for missing keys.
    let order = [5usize, 0, 3, 2, 4, 1];
    let mut mget: Vec<String> = vec!["MGET".into()];
    let mut want = Vec::new();
    for (j, &i) in order.iter().enumerate() {
        mget.push(keys[i].clone());
        want.push(Value::BulkString(format!("v{i}").into_bytes()));
        if j % 2 == 0 {
            mget.push(format!("{}:missing", keys[i]));
            want.push(Value::Nil);
        }
    }
    assert_eq!(ok(&mut c, &mget), Value::Array(want), "{mget:?}");
    assert_eq!(ok(&mut c, &["MGET", "mk-none:1", "mk-none:2"]), Value::Array(vec![Value::Nil, Value::Nil]));

    // A later MSET overwrites, also for keys on different shards.
    check(&mut c, &["MSET", keys[0].as_str(), "w0", keys[1].as_str(), "w1", keys[0].as_str(), "w0b"], Reply::Ok);
    check(&mut c, &["GET", keys[0].as_str()], s("w0b"));
    check(&mut c, &["GET", keys[1].as_str()], s("w1"));
    check(&mut c, &["MSET", keys[0].as_str(), "x", keys[1].as_str()], err("ERR wrong number of arguments for 'mset' command"));
    check(&mut c, &["GET", keys[0].as_str()], s("w0b"));

    // EXISTS counts every argument, duplicates included.
    check(&mut c, &["EXISTS", keys[0].as_str(), keys[0].as_str(), keys[1].as_str(), "mk:nope"], Reply::Int(3));
    check(&mut c, &["EXISTS", keys[2].as_str(), keys[3].as_str(), keys[2].as_str(), keys[3].as_str()], Reply::Int(4));
    check(&mut c, &["EXISTS", "mk:nope"], Reply::Int(0));

    // DEL across shards counts keys actually removed.
    check(&mut c, &["DEL", keys[0].as_str(), keys[1].as_str(), "mk:nope", keys[2].as_str()], Reply::Int(3));
    check(&mut c, &["EXISTS", keys[0].as_str(), keys[1].as_str(), keys[2].as_str()], Reply::Int(0));
    check(&mut c, &["GET", keys[3].as_str()], s("v3"));
    check(&mut c, &["DEL", keys[0].as_str(), keys[1].as_str()], Reply::Int(0));
    check(&mut c, &["DEL", keys[3].as_str(), keys[3].as_str()], Reply::Int(1));
    check(&mut c, &["DEL"], err("ERR wrong number of arguments for 'del' command"));
}

fn string_set(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        other => panic!("expected an array of keys, got {other:?}"),
    }
}

/// Walks SCAN from cursor 0 to 0 with extra args; returns every key seen (and checks
/// that the walk ends).
pub fn scan_all(c: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut argv = vec!["SCAN".to_string(), cursor.clone()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        match ok(c, &argv) {
            Value::Array(parts) if parts.len() == 2 => {
                cursor = text(&parts[0]);
                match &parts[1] {
                    Value::Array(batch) => seen.extend(batch.iter().map(text)),
                    other => panic!("SCAN keys: {other:?}"),
                }
            }
            other => panic!("SCAN reply: {other:?}"),
        }
        if cursor == "0" {
            return seen;
        }
    }
    panic!("SCAN did not return cursor 0 within 10000 calls");
}

pub fn keyspace(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    check(&mut c, &["FLUSHALL"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(0));

    let mut all = BTreeSet::new();
    for t in 0..8 {
        let mut mset = vec!["MSET".to_string()];
        for j in 0..25 {
            let k = format!("t{t}:k{j}");
            mset.push(k.clone());
            mset.push(format!("{t}-{j}"));
            all.insert(k);
        }
        check(&mut c, &mset, Reply::Ok);
    }
    let shards: BTreeSet<u32> = all.iter().map(|k| shard_of(k, 2)).collect();
    assert_eq!(shards.len(), 2, "test keys must cover both shards");
    check(&mut c, &["DBSIZE"], Reply::Int(all.len() as i64));

    // KEYS
    let t3: BTreeSet<String> = all.iter().filter(|k| k.starts_with("t3:")).cloned().collect();
    assert_eq!(string_set(&ok(&mut c, &["KEYS", "t3:*"])), t3);
    assert_eq!(string_set(&ok(&mut c, &["KEYS", "*"])), all);
    assert_eq!(string_set(&ok(&mut c, &["KEYS", "t?:k1?"])).len(), 8 * 10);
    assert!(string_set(&ok(&mut c, &["KEYS", "nomatch*"])).is_empty());

    // SCAN: the cursor walks every shard; each key turns up.
    for count in ["1", "7", "1000"] {
        let seen = scan_all(&mut c, &["COUNT", count]);
        let set: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(set, all, "SCAN COUNT {count}");
        assert!(seen.len() >= all.len());
    }
    let t1: BTreeSet<String> = all.iter().filter(|k| k.starts_with("t1:")).cloned().collect();
    let seen: BTreeSet<String> = scan_all(&mut c, &["MATCH", "t1:*", "COUNT", "5"]).into_iter().collect();
    assert_eq!(seen, t1, "SCAN MATCH t1:*");
    check(&mut c, &["SCAN", "notanumber"], Reply::ErrPrefix("ERR invalid cursor".into()));
    // The client library's own cursor iterators.
    {
        use redis::Commands;
        let seen: BTreeSet<String> = c.scan_match::<_, String>("t1:*").expect("scan_match").collect();
        assert_eq!(seen, t1, "redis-rs scan_match");
        let seen: BTreeSet<String> = c.scan::<String>().expect("scan").collect();
        assert_eq!(seen, all, "redis-rs scan");
    }

    // INFO
    let info = text(&ok(&mut c, &["INFO"]));
    assert!(info.contains("# Server\r\n"), "INFO lacks '# Server':\n{info}");
    assert!(info.contains("# Keyspace\r\n"), "INFO lacks '# Keyspace':\n{info}");
    assert!(info.contains(&format!("db0:keys={},", all.len())), "INFO keyspace:\n{info}");
    assert!(info.contains("redis_version:"), "{info}");
    let ks = text(&ok(&mut c, &["INFO", "keyspace"]));
    assert!(ks.starts_with("# Keyspace\r\n"), "INFO keyspace:\n{ks}");
    assert!(!ks.contains("# Server"), "INFO keyspace returned other sections:\n{ks}");

    // FLUSHALL empties every shard.
    check(&mut c, &["FLUSHALL"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(0));
    assert!(string_set(&ok(&mut c, &["KEYS", "*"])).is_empty());
    assert!(scan_all(&mut c, &[]).is_empty());
    for k in all.iter().take(10) {
        check(&mut c, &["GET", k.as_str()], Reply::Nil);
    }
    let info = text(&ok(&mut c, &["INFO", "keyspace"]));
    assert!(!info.contains("db0:keys="), "INFO after FLUSHALL:\n{info}");
}

/// CONFIG GET pattern → (name, value) pairs, whether the reply is a map (RESP3) or a
/// flat array (RESP2).
pub fn config_pairs(v: Value, p: Proto) -> Vec<(String, String)> {
    match (v, p) {
        (Value::Map(pairs), Proto::Resp3) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        (Value::Array(items), Proto::Resp2) => {
            assert!(items.len() % 2 == 0, "odd CONFIG GET reply {items:?}");
            items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
        }
        (other, p) => panic!("CONFIG GET reply in {p:?}: {other:?}"),
    }
}

pub fn server_commands(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    let got = config_pairs(ok(&mut c, &["CONFIG", "GET", "save"]), p);
    assert_eq!(got, vec![("save".to_string(), String::new())]);
    let mut got = config_pairs(ok(&mut c, &["CONFIG", "GET", "appendonly", "maxmemory", "databases"]), p);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("appendonly".to_string(), "yes".to_string()),
            ("databases".to_string(), "16".to_string()),
            ("maxmemory".to_string(), "0".to_string())
        ]
    );
    let got = config_pairs(ok(&mut c, &["CONFIG", "GET", "port"]), p);
    assert_eq!(got, vec![("port".to_string(), srv.addr.port().to_string())]);
    let mut got = config_pairs(ok(&mut c, &["CONFIG", "GET", "client-query-buffer-limit", "enable-debug-command"]), p);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("client-query-buffer-limit".to_string(), "1073741824".to_string()),
            ("enable-debug-command".to_string(), "no".to_string())
        ]
    );
    assert!(config_pairs(ok(&mut c, &["CONFIG", "GET", "no-such-param"]), p).is_empty());
    check(&mut c, &["CONFIG", "SET", "maxmemory", "1"], Reply::ErrPrefix("ERR".into()));

    // COMMAND
    let count = match ok(&mut c, &["COMMAND", "COUNT"]) {
        Value::Int(n) => n,
        other => panic!("COMMAND COUNT: {other:?}"),
    };
    assert!(count > 0);
    let list = string_set(&ok(&mut c, &["COMMAND", "LIST"]));
    assert_eq!(list.len() as i64, count, "COMMAND LIST vs COUNT");
    for name in ["get", "set", "mset", "scan", "skeg.vsearch"] {
        assert!(list.contains(name), "COMMAND LIST lacks {name}");
    }
    let docs = ok(&mut c, &["COMMAND", "DOCS", "get"]);
    let docs_txt = format!("{docs:?}");
    assert!(docs_txt.contains("get") && docs_txt.contains("summary"), "COMMAND DOCS get: {docs_txt}");
    match (&docs, p) {
        (Value::Map(m), Proto::Resp3) => assert_eq!(m.len(), 1, "{docs:?}"),
        (Value::Array(a), Proto::Resp2) => assert_eq!(a.len(), 2, "{docs:?}"),
        _ => panic!("COMMAND DOCS get in {p:?}: {docs:?}"),
    }
    match ok(&mut c, &["COMMAND", "INFO", "get"]) {
        Value::Array(items) => match &items[..] {
            [Value::Array(info)] => {
                assert_eq!(text(&info[0]), "get");
                assert_eq!(info[1], Value::Int(2));
            }
            other => panic!("COMMAND INFO get: {other:?}"),
        },
        other => panic!("COMMAND INFO get: {other:?}"),
    }

    // Errors, in Redis's words; the connection stays usable.
    check(&mut c, &["foo", "a"], err("ERR unknown command 'foo', with args beginning with: 'a' "));
    // As Redis: the name as the client spelled it.
    check(&mut c, &["FOO", "a", "b c"], err("ERR unknown command 'FOO', with args beginning with: 'a' 'b c' "));
    check(&mut c, &["foo"], err("ERR unknown command 'foo', with args beginning with: "));
    check(&mut c, &["GET"], err("ERR wrong number of arguments for 'get' command"));
    check(&mut c, &["get", "a", "b"], err("ERR wrong number of arguments for 'get' command"));
    check(&mut c, &["InCr"], err("ERR wrong number of arguments for 'incr' command"));
    check(&mut c, &["PING"], s("PONG"));
}

// ---- vectors ----

/// Parses a SKEG.VSEARCH reply `[id, score, id, score, …]`. The score must be a RESP3
/// double, or in RESP2 a bulk string holding a float.
pub fn hits(v: &Value, p: Proto) -> Vec<(u64, f64)> {
    let Value::Array(items) = v else { panic!("SKEG.VSEARCH reply is not an array: {v:?}") };
    assert!(items.len() % 2 == 0, "odd SKEG.VSEARCH reply {items:?}");
    items
        .chunks(2)
        .map(|pair| {
            let id = match &pair[0] {
                Value::Int(i) => *i as u64,
                Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("id {b:?}")),
                other => panic!("id {other:?}"),
            };
            let score = match (&pair[1], p) {
                (Value::Double(d), Proto::Resp3) => *d,
                (Value::BulkString(b), Proto::Resp2) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("RESP2 score is not a float: {b:?}")),
                (other, p) => panic!("score in {p:?}: {other:?}"),
            };
            (id, score)
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn search(c: &mut redis::Connection, p: Proto, index: &str, k: usize, q: &[f32]) -> Vec<(u64, f64)> {
    let argv: Vec<Vec<u8>> = vec![b"SKEG.VSEARCH".to_vec(), index.into(), k.to_string().into(), b"10".to_vec(), blob(q)];
    hits(&ok(c, &argv), p)
}

pub fn vset(c: &mut redis::Connection, index: &str, id: u64, v: &[f32]) -> redis::RedisResult<Value> {
    run(c, &[b"SKEG.VSET".to_vec(), index.into(), id.to_string().into(), blob(v)])
}

/// The SKEG.VINDEX.LIST lines.
pub fn index_list(c: &mut redis::Connection) -> Vec<String> {
    match ok(c, &["SKEG.VINDEX.LIST"]) {
        Value::Array(items) => items.iter().map(text).collect(),
        other => panic!("SKEG.VINDEX.LIST: {other:?}"),
    }
}

pub fn list_line(name: &str, dim: usize, n: usize) -> String {
    format!("name={name} dim={dim} kind=f32 metric=cosine backend=flat n_vectors={n}")
}

/// Asserts that `hits` are `want` ids in that order, with scores = cosine(query, v).
pub fn assert_hits(got: &[(u64, f64)], want: &[(u64, &[f32])], q: &[f32]) {
    let ids: Vec<u64> = got.iter().map(|h| h.0).collect();
    let want_ids: Vec<u64> = want.iter().map(|w| w.0).collect();
    assert_eq!(ids, want_ids, "result ids (best first): {got:?}");
    for ((_, score), (id, v)) in got.iter().zip(want) {
        let exact = cosine(q, v);
        assert!((score - exact).abs() < 1e-4, "id {id}: score {score}, cosine {exact}");
    }
}

pub fn vectors(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    // A second index on a tenant of the other shard, for LIST's fan-out.
    let other = tenants_on("vo", 1 - shard_of("t", 2), 2, 1).remove(0);
    let other_idx = format!("{other}:idx");
    check(&mut c, &["SKEG.VINDEX.CREATE", "t:idx", "4", "f32", "flat"], Reply::Ok);
    check(&mut c, &["SKEG.VINDEX.CREATE", other_idx.as_str(), "3", "f32", "flat"], Reply::Ok);
    let mut want_list = vec![list_line("t:idx", 4, 0), list_line(&other_idx, 3, 0)];
    want_list.sort();
    assert_eq!(index_list(&mut c), want_list);

    let v1: &[f32] = &[1.0, 0.0, 0.0, 0.0];
    let v2: &[f32] = &[0.0, 1.0, 0.0, 0.0];
    let v3: &[f32] = &[1.0, 1.0, 0.0, 0.0];
    let v4: &[f32] = &[-1.0, 0.0, 0.5, 0.0];
    vset(&mut c, "t:idx", 1, v1).unwrap_or_else(|e| panic!("SKEG.VSET: {}", err_line(&e)));
    let mut want_list = vec![list_line("t:idx", 4, 1), list_line(&other_idx, 3, 0)];
    want_list.sort();
    assert_eq!(index_list(&mut c), want_list);
    for (id, v) in [(2, v2), (3, v3), (4, v4)] {
        vset(&mut c, "t:idx", id, v).unwrap_or_else(|e| panic!("SKEG.VSET: {}", err_line(&e)));
    }
    vset(&mut c, &other_idx, 7, &[0.0, 0.0, 2.0]).unwrap();

    let q: &[f32] = &[1.0, 0.1, 0.0, 0.0];
    let got = search(&mut c, p, "t:idx", 2, q);
    assert_hits(&got, &[(1, v1), (3, v3)], q);
    assert!((got[0].1 - 0.995037).abs() < 1e-4, "{got:?}");
    let got = search(&mut c, p, "t:idx", 10, q);
    assert_hits(&got, &[(1, v1), (3, v3), (2, v2), (4, v4)], q);
    let got = search(&mut c, p, &other_idx, 5, &[0.0, 1.0, 1.0]);
    assert_hits(&got, &[(7, &[0.0, 0.0, 2.0])], &[0.0, 1.0, 1.0]);

    // Replacing an id keeps the count and changes the result.
    let v2b: &[f32] = &[1.0, 0.05, 0.0, 0.0];
    vset(&mut c, "t:idx", 2, v2b).unwrap();
    let got = search(&mut c, p, "t:idx", 2, q);
    assert_hits(&got, &[(2, v2b), (1, v1)], q);
    assert!(index_list(&mut c).contains(&list_line("t:idx", 4, 4)));

    // VDEL
    ok(&mut c, &["SKEG.VDEL", "t:idx", "2"]);
    assert!(index_list(&mut c).contains(&list_line("t:idx", 4, 3)));
    let got = search(&mut c, p, "t:idx", 10, q);
    assert_hits(&got, &[(1, v1), (3, v3), (4, v4)], q);

    // DROP
    check(&mut c, &["SKEG.VINDEX.DROP", "t:idx"], Reply::Ok);
    assert_eq!(index_list(&mut c), vec![list_line(&other_idx, 3, 1)]);
    let r = run(&mut c, &[b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), b"10".to_vec(), blob(q)]);
    assert!(r.is_err(), "search on a dropped index: {r:?}");
    // The name can be used again, empty.
    check(&mut c, &["SKEG.VINDEX.CREATE", "t:idx", "2", "f32", "flat"], Reply::Ok);
    assert!(index_list(&mut c).contains(&list_line("t:idx", 2, 0)));
    assert!(search(&mut c, p, "t:idx", 3, &[1.0, 1.0]).is_empty());

    // FLUSHALL removes vector indexes too (command table: "Removes all keys and vector
    // indexes from all shards").
    check(&mut c, &["FLUSHALL"], Reply::Ok);
    assert_eq!(index_list(&mut c), Vec::<String>::new());
}

pub fn vector_errors(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    check(&mut c, &["SKEG.VINDEX.CREATE", "t:idx", "4", "f32", "flat"], Reply::Ok);
    let v1: &[f32] = &[1.0, 2.0, 3.0, 4.0];
    vset(&mut c, "t:idx", 1, v1).unwrap();
    let q: &[f32] = &[1.0, 0.0, 0.0, 0.0];
    let before_list = index_list(&mut c);
    assert_eq!(before_list, vec![list_line("t:idx", 4, 1)]);
    let before_hits = search(&mut c, p, "t:idx", 10, q);
    assert_hits(&before_hits, &[(1, v1)], q);

    let mut nan = blob(&[1.0, 0.0, 0.0, 0.0]);
    nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut inf = blob(&[1.0, 0.0, 0.0, 0.0]);
    inf[8..12].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("VSET wrong dim (3)", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), blob(&[1.0, 2.0, 3.0])]),
        ("VSET wrong dim (5)", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), blob(&[1.0; 5])]),
        ("VSET blob of 15 bytes", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), vec![0x3f; 15]]),
        ("VSET blob of 17 bytes", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), vec![0x3f; 17]]),
        ("VSET empty blob", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), vec![]]),
        ("VSET NaN component", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), nan.clone()]),
        ("VSET inf component", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), inf]),
        ("VSET zero vector", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), blob(&[0.0; 4])]),
        ("VSET NaN over an existing id", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"1".to_vec(), nan.clone()]),
        ("VSET unknown index", vec![b"SKEG.VSET".to_vec(), b"t:nope".to_vec(), b"2".to_vec(), blob(q)]),
        ("VSET id not a number", vec![b"SKEG.VSET".to_vec(), b"t:idx".to_vec(), b"x".to_vec(), blob(q)]),
        ("VSEARCH wrong dim", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), b"10".to_vec(), blob(&[1.0, 0.0])]),
        ("VSEARCH NaN query", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"2".to_vec(), b"10".to_vec(), nan]),
        ("VSEARCH unknown index", vec![b"SKEG.VSEARCH".to_vec(), b"t:nope".to_vec(), b"2".to_vec(), b"10".to_vec(), blob(q)]),
        ("VSEARCH k=0", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"0".to_vec(), b"10".to_vec(), blob(q)]),
        ("VSEARCH k=10001", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"10001".to_vec(), b"10".to_vec(), blob(q)]),
        ("VSEARCH k=-1", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"-1".to_vec(), b"10".to_vec(), blob(q)]),
        ("VSEARCH k not a number", vec![b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"two".to_vec(), b"10".to_vec(), blob(q)]),
        ("VDEL unknown index", vec![b"SKEG.VDEL".to_vec(), b"t:nope".to_vec(), b"1".to_vec()]),
        ("VINDEX.DROP unknown index", vec![b"SKEG.VINDEX.DROP".to_vec(), b"t:nope".to_vec()]),
        ("VINDEX.CREATE dim 0", vec![b"SKEG.VINDEX.CREATE".to_vec(), b"t:z".to_vec(), b"0".to_vec(), b"f32".to_vec(), b"flat".to_vec()]),
        ("VINDEX.CREATE dim not a number", vec![b"SKEG.VINDEX.CREATE".to_vec(), b"t:z".to_vec(), b"four".to_vec(), b"f32".to_vec(), b"flat".to_vec()]),
        ("VINDEX.CREATE existing name", vec![b"SKEG.VINDEX.CREATE".to_vec(), b"t:idx".to_vec(), b"4".to_vec(), b"f32".to_vec(), b"flat".to_vec()]),
    ];
    let mut failures = Vec::new();
    for (what, argv) in &cases {
        match run(&mut c, argv) {
            Err(e) if e.code().is_some() => {}
            Err(e) => failures.push(format!("{what}: not a server error reply: {e}")),
            Ok(v) => failures.push(format!("{what}: succeeded with {v:?}")),
        }
        let list = index_list(&mut c);
        if list != before_list {
            failures.push(format!("{what}: index list changed to {list:?}"));
        }
        let got = search(&mut c, p, "t:idx", 10, q);
        if got != before_hits {
            failures.push(format!("{what}: search result changed to {got:?}"));
        }
    }
    assert!(failures.is_empty(), "vector error cases:\n  {}", failures.join("\n  "));
    // k at the limit is fine.
    assert_hits(&search(&mut c, p, "t:idx", 10000, q), &[(1, v1)], q);
}

/// The keyspace lines (`dbN:…`) of INFO keyspace, in order.
pub fn keyspace_lines(c: &mut redis::Connection) -> Vec<String> {
    let info = text(&ok(c, &["INFO", "keyspace"]));
    info.lines().filter(|l| l.starts_with("db")).map(str::to_string).collect()
}

/// Numbered databases (issue 15): keys isolated per database on every shard and tenant;
/// DBSIZE, KEYS, SCAN, EXISTS per database; MOVE and SWAPDB as Redis; FLUSHDB clears one
/// database, FLUSHALL all; INFO keyspace has one line per non-empty database; CLIENT
/// INFO / LIST show `db=`; bad input gets Redis's texts and changes nothing.
pub fn databases(srv: &Server, p: Proto) {
    let mut c = con(srv, p);
    let mut other = con(srv, p);
    check(&mut c, &["FLUSHALL"], Reply::Ok);
    // Tenants on both shards; the same key names in databases 0, 1 and 15.
    let tenants: Vec<String> = tenants_on("dba", 0, 2, 2).into_iter().chain(tenants_on("dbb", 1, 2, 2)).collect();
    let keys: Vec<String> = tenants.iter().flat_map(|t| (0..5).map(move |i| format!("{t}:k{i}"))).collect();
    for db in ["0", "1", "15"] {
        check(&mut c, &["SELECT", db], Reply::Ok);
        for k in &keys {
            check(&mut c, &["SET", k.as_str(), &format!("{db}:{k}")], Reply::Ok);
        }
    }
    check(&mut c, &["SET", "only1", "x"], Reply::Ok); // in db 15
    for (db, n) in [("0", keys.len()), ("1", keys.len()), ("15", keys.len() + 1), ("2", 0)] {
        check(&mut c, &["SELECT", db], Reply::Ok);
        check(&mut c, &["DBSIZE"], Reply::Int(n as i64));
        assert_eq!(string_set(&ok(&mut c, &["KEYS", "*"])).len(), n, "KEYS * in db {db}");
        assert_eq!(scan_all(&mut c, &["COUNT", "3"]).into_iter().collect::<BTreeSet<_>>().len(), n, "SCAN in db {db}");
        if n > 0 {
            for k in &keys {
                check(&mut c, &["GET", k.as_str()], s(&format!("{db}:{k}")));
            }
        } else {
            check(&mut c, &["GET", keys[0].as_str()], Reply::Nil);
        }
    }
    // MGET / EXISTS / DEL across shards stay in the selected database.
    check(&mut c, &["SELECT", "1"], Reply::Ok);
    let mget: Vec<&str> = ["MGET", keys[0].as_str(), keys[keys.len() - 1].as_str()].to_vec();
    match ok(&mut c, &mget) {
        Value::Array(v) => assert_eq!(v.iter().map(text).collect::<Vec<_>>(), vec![format!("1:{}", keys[0]), format!("1:{}", keys[keys.len() - 1])]),
        other => panic!("MGET {other:?}"),
    }
    check(&mut c, &["DEL", keys[0].as_str(), keys[keys.len() - 1].as_str()], Reply::Int(2));
    check(&mut c, &["EXISTS", keys[0].as_str(), keys[1].as_str()], Reply::Int(1));
    check(&mut other, &["EXISTS", keys[0].as_str(), keys[keys.len() - 1].as_str()], Reply::Int(2));

    // INFO keyspace: one line per non-empty database, in order.
    let n = keys.len();
    assert_eq!(
        keyspace_lines(&mut other),
        vec![
            format!("db0:keys={n},expires=0,avg_ttl=0"),
            format!("db1:keys={},expires=0,avg_ttl=0", n - 2),
            format!("db15:keys={},expires=0,avg_ttl=0", n + 1)
        ]
    );

    // CLIENT INFO and CLIENT LIST show the selected database.
    check(&mut c, &["SELECT", "15"], Reply::Ok);
    assert!(text(&ok(&mut c, &["CLIENT", "INFO"])).contains(" db=15 "));
    assert!(text(&ok(&mut other, &["CLIENT", "INFO"])).contains(" db=0 "));
    let list = text(&ok(&mut other, &["CLIENT", "LIST"]));
    assert!(list.contains(" db=15 ") && list.contains(" db=0 "), "{list}");

    // MOVE: 1 when moved, 0 when missing here or present there; errors as Redis.
    check(&mut c, &["MOVE", "only1", "3"], Reply::Int(1));
    check(&mut c, &["EXISTS", "only1"], Reply::Int(0));
    check(&mut c, &["MOVE", "only1", "3"], Reply::Int(0));
    check(&mut c, &["MOVE", keys[2].as_str(), "0"], Reply::Int(0)); // exists in db 0
    check(&mut c, &["GET", keys[2].as_str()], s(&format!("15:{}", keys[2])));
    check(&mut c, &["MOVE", keys[2].as_str(), "15"], err("ERR source and destination objects are the same"));
    check(&mut c, &["MOVE", keys[2].as_str(), "16"], err("ERR DB index is out of range"));
    check(&mut c, &["MOVE", "nokey", "99"], err("ERR DB index is out of range"));
    check(&mut c, &["MOVE", keys[2].as_str(), "x"], err(NOT_INT));
    check(&mut c, &["SELECT", "3"], Reply::Ok);
    check(&mut c, &["GET", "only1"], s("x"));
    check(&mut c, &["DBSIZE"], Reply::Int(1));

    // SWAPDB: every shard's databases 1 and 3 trade places, for every connection.
    check(&mut other, &["SELECT", "1"], Reply::Ok);
    check(&mut other, &["SWAPDB", "1", "3"], Reply::Ok);
    check(&mut c, &["GET", "only1"], Reply::Nil); // c is in db 3, which now has db 1's keys
    check(&mut c, &["GET", keys[1].as_str()], s(&format!("1:{}", keys[1])));
    check(&mut c, &["DBSIZE"], Reply::Int(n as i64 - 2));
    check(&mut other, &["DBSIZE"], Reply::Int(1));
    check(&mut other, &["GET", "only1"], s("x"));
    check(&mut other, &["SWAPDB", "0", "0"], Reply::Ok);
    for (argv, e) in [
        (["SWAPDB", "0", "16"], "ERR DB index is out of range"),
        (["SWAPDB", "-1", "0"], "ERR DB index is out of range"),
        (["SWAPDB", "x", "1"], "ERR invalid first DB index"),
        (["SWAPDB", "1", "x"], "ERR invalid second DB index"),
        (["SWAPDB", "99", "x"], "ERR invalid second DB index"),
    ] {
        check(&mut other, &argv, err(e));
    }
    check(&mut other, &["SWAPDB", "1"], err("ERR wrong number of arguments for 'swapdb' command"));
    check(&mut other, &["GET", "only1"], s("x")); // nothing changed

    // FLUSHDB clears the selected database only; FLUSHALL every one.
    check(&mut c, &["FLUSHDB", "x"], err("ERR syntax error"));
    check(&mut c, &["FLUSHDB"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(0));
    check(&mut other, &["DBSIZE"], Reply::Int(1));
    check(&mut c, &["SELECT", "0"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(n as i64));
    check(&mut c, &["FLUSHDB", "ASYNC"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(0));
    assert_eq!(keyspace_lines(&mut c), vec![format!("db1:keys=1,expires=0,avg_ttl=0"), format!("db15:keys={},expires=0,avg_ttl=0", n)]);
    check(&mut c, &["FLUSHALL"], Reply::Ok);
    assert!(keyspace_lines(&mut c).is_empty());
    check(&mut other, &["DBSIZE"], Reply::Int(0));
    check(&mut c, &["SELECT", "15"], Reply::Ok);
    check(&mut c, &["DBSIZE"], Reply::Int(0));
}
