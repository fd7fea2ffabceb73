//! Every KV and keyspace op's replies and errors, through `Shard::exec`.

use crate::*;
use keel_protocol::Value;

#[test]
fn get_set_and_options() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["GET", "t:k"], Value::Null).await;
        check(&s, argv!["SET", "t:k", "v1"], ok()).await;
        check(&s, argv!["get", "t:k"], bulk("v1")).await;
        check(&s, argv!["SET", "t:k", "v2", "NX"], Value::Null).await;
        check(&s, argv!["GET", "t:k"], bulk("v1")).await;
        check(&s, argv!["SET", "t:k", "v2", "xx"], ok()).await;
        check(&s, argv!["GET", "t:k"], bulk("v2")).await;
        check(&s, argv!["SET", "t:new", "v", "XX"], Value::Null).await;
        check(&s, argv!["EXISTS", "t:new"], int(0)).await;
        check(&s, argv!["SET", "t:k", "v3", "GET"], bulk("v2")).await;
        check(&s, argv!["SET", "t:k", "v4", "NX", "GET"], bulk("v3")).await; // not set
        check(&s, argv!["GET", "t:k"], bulk("v3")).await;
        check(&s, argv!["SET", "t:new", "v", "GET", "XX"], Value::Null).await; // not set
        check(&s, argv!["EXISTS", "t:new"], int(0)).await;
        check(&s, argv!["SET", "t:new", "v", "GET"], Value::Null).await;
        check(&s, argv!["GET", "t:new"], bulk("v")).await;
        check(&s, argv!["SET", "t:k", "v", "NX", "XX"], err("ERR syntax error")).await;
        check(&s, argv!["SET", "t:k", "v", "BOGUS"], err("ERR syntax error")).await;
        check(&s, argv!["SET", "t:k", "v", "EX"], err("ERR syntax error")).await;
        check(&s, argv!["SET", "t:k", "v", "EX", "0"], err("ERR invalid expire time in 'set' command")).await;
        check(&s, argv!["SET", "t:k", "v5", "KEEPTTL"], ok()).await;
        check(&s, argv!["GET", "t:k"], bulk("v5")).await;
        check(&s, argv!["SET", "t:k"], err("ERR wrong number of arguments for 'set' command")).await;
        check(&s, argv!["GET"], err("ERR wrong number of arguments for 'get' command")).await;
        // Binary-safe keys and values, empty value.
        check(&s, argv!["SET", b"t:\x00\xff", b"\r\n\x00"], ok()).await;
        check(&s, argv!["GET", b"t:\x00\xff"], bulk(b"\r\n\x00")).await;
        check(&s, argv!["SET", "t:empty", ""], ok()).await;
        check(&s, argv!["GET", "t:empty"], bulk("")).await;
        check(&s, argv!["STRLEN", "t:empty"], int(0)).await;
        check(&s, argv!["TYPE", "t:empty"], simple("string")).await;
    });
}

#[test]
fn large_values_take_the_disk_path() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let big = vec![b'x'; 5000];
        check(&s, argv!["SET", "t:big", big], ok()).await;
        check(&s, argv!["GET", "t:big"], bulk(&big)).await;
        check(&s, argv!["STRLEN", "t:big"], int(5000)).await;
        check(&s, argv!["APPEND", "t:big", "yz"], int(5002)).await;
        let mut appended = big.clone();
        appended.extend_from_slice(b"yz");
        check(&s, argv!["GET", "t:big"], bulk(&appended)).await;
        check(&s, argv!["SET", "t:big", "new", "GET"], bulk(&appended)).await;
        check(&s, argv!["SET", "t:big", big], ok()).await;
        check(&s, argv!["MGET", "t:big", "t:none"], Value::Array(vec![bulk(&big), Value::Null])).await;
        // A read of a value on disk returns the value live when it ran, even if a later
        // request (not waiting for the read) overwrites the key first.
        check(&s, argv!["SET", "t:big2", vec![b'y'; 3000]], ok()).await;
        let read = s.handle(argv!["GET", "t:big"]).await;
        let mread = s.handle(argv!["MGET", "t:big2", "t:none", "t:big"]).await;
        let write = s.handle(argv!["SET", "t:big", "small"]).await;
        let write2 = s.handle(argv!["DEL", "t:big2"]).await;
        assert_eq!(write.into_value().await, ok());
        assert_eq!(write2.into_value().await, int(1));
        assert_eq!(read.into_value().await, bulk(&big));
        assert_eq!(mread.into_value().await, Value::Array(vec![bulk(vec![b'y'; 3000]), Value::Null, bulk(&big)]));
        check(&s, argv!["GET", "t:big"], bulk("small")).await;
        check(&s, argv!["SET", "t:big", &big], ok()).await;
        check(&s, argv!["GETDEL", "t:big"], bulk(&big)).await;
        check(&s, argv!["GET", "t:big"], Value::Null).await;
        // A long integer-looking value is still parsed strictly.
        check(&s, argv!["SET", "t:n", "0".repeat(40)], ok()).await;
        check(&s, argv!["INCR", "t:n"], err("ERR value is not an integer or out of range")).await;
    });
}

#[test]
fn delete_exists_mget_mset() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["MSET", "a", "1", "b", "2", "c", "3"], ok()).await;
        check(&s, argv!["MGET", "a", "x", "c", "a"], Value::Array(vec![bulk("1"), Value::Null, bulk("3"), bulk("1")])).await;
        check(&s, argv!["EXISTS", "a", "a", "x", "b"], int(3)).await;
        check(&s, argv!["DEL", "a", "a", "x"], int(1)).await;
        check(&s, argv!["DEL", "x"], int(0)).await;
        check(&s, argv!["DEL", "b", "c"], int(2)).await;
        check(&s, argv!["DBSIZE"], int(0)).await;
        check(&s, argv!["MSET", "a", "1", "b"], err("ERR wrong number of arguments for 'mset' command")).await;
        check(&s, argv!["MSET", "a", "1", "a", "2"], ok()).await;
        check(&s, argv!["GET", "a"], bulk("2")).await;
        check(&s, argv!["GETDEL", "a"], bulk("2")).await;
        check(&s, argv!["GETDEL", "a"], Value::Null).await;
        check(&s, argv!["DEL"], err("ERR wrong number of arguments for 'del' command")).await;
        check(&s, argv!["EXISTS"], err("ERR wrong number of arguments for 'exists' command")).await;
    });
}

#[test]
fn counters() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["INCR", "n"], int(1)).await;
        check(&s, argv!["INCR", "n"], int(2)).await;
        check(&s, argv!["DECR", "n"], int(1)).await;
        check(&s, argv!["INCRBY", "n", "41"], int(42)).await;
        check(&s, argv!["DECRBY", "n", "-8"], int(50)).await;
        check(&s, argv!["GET", "n"], bulk("50")).await;
        check(&s, argv!["DECR", "m"], int(-1)).await;
        check(&s, argv!["INCRBY", "n", "1.5"], err("ERR value is not an integer or out of range")).await;
        check(&s, argv!["INCRBY", "n", "+1"], err("ERR value is not an integer or out of range")).await;
        check(&s, argv!["INCRBY", "n", " 1"], err("ERR value is not an integer or out of range")).await;
        check(&s, argv!["INCRBY", "n", "01"], err("ERR value is not an integer or out of range")).await;
        for bad in ["abc", "", " 1", "1 ", "+1", "01", "-0", "1.0", "99999999999999999999"] {
            check(&s, argv!["SET", "bad", bad], ok()).await;
            check(&s, argv!["INCR", "bad"], err("ERR value is not an integer or out of range")).await;
        }
        check(&s, argv!["SET", "max", i64::MAX.to_string()], ok()).await;
        check(&s, argv!["INCR", "max"], err("ERR increment or decrement would overflow")).await;
        check(&s, argv!["GET", "max"], bulk(i64::MAX.to_string())).await;
        check(&s, argv!["SET", "min", i64::MIN.to_string()], ok()).await;
        check(&s, argv!["DECR", "min"], err("ERR increment or decrement would overflow")).await;
        check(&s, argv!["DECRBY", "n", "-9223372036854775808"], err("ERR decrement would overflow")).await;
        check(&s, argv!["INCRBY", "min", "-1"], err("ERR increment or decrement would overflow")).await;
        check(&s, argv!["INCRBY", "min", i64::MAX.to_string()], int(-1)).await;
        check(&s, argv!["INCR"], err("ERR wrong number of arguments for 'incr' command")).await;
        check(&s, argv!["INCRBY", "n"], err("ERR wrong number of arguments for 'incrby' command")).await;
    });
}

#[test]
fn append_strlen_type() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["APPEND", "k", "ab"], int(2)).await;
        check(&s, argv!["APPEND", "k", "cd"], int(4)).await;
        check(&s, argv!["GET", "k"], bulk("abcd")).await;
        check(&s, argv!["STRLEN", "k"], int(4)).await;
        check(&s, argv!["STRLEN", "missing"], int(0)).await;
        check(&s, argv!["TYPE", "k"], simple("string")).await;
        check(&s, argv!["TYPE", "missing"], simple("none")).await;
    });
}

#[test]
fn keyspace_commands() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let names = ["user:1", "user:2", "user:10", "order:1", "hello", "hallo", "h*llo"];
        for n in names {
            check(&s, argv!["SET", n, "v"], ok()).await;
        }
        check(&s, argv!["DBSIZE"], int(names.len() as i64)).await;
        keys(&s, "*", &names).await;
        keys(&s, "user:?", &["user:1", "user:2"]).await;
        keys(&s, "user:*", &["user:1", "user:2", "user:10"]).await;
        keys(&s, "h[ae]llo", &["hello", "hallo"]).await;
        keys(&s, "h[^e]llo", &["hallo", "h*llo"]).await;
        keys(&s, "h\\*llo", &["h*llo"]).await;
        keys(&s, "nothing*", &[]).await;

        // A full SCAN walk with a small COUNT returns every key.
        let mut seen = scan_all(&s, &[]).await;
        seen.sort();
        seen.dedup();
        let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.sort();
        assert_eq!(seen, want);
        let mut users = scan_all(&s, &["MATCH", "user:*"]).await;
        users.sort();
        assert_eq!(users, ["user:1", "user:10", "user:2"]);
        assert_eq!(scan_all(&s, &["TYPE", "hash"]).await, Vec::<String>::new());
        assert_eq!(scan_all(&s, &["TYPE", "STRING"]).await.len(), names.len());
        check(&s, argv!["SCAN", "abc"], err("ERR invalid cursor")).await;
        check(&s, argv!["SCAN", "0", "COUNT", "0"], err("ERR syntax error")).await;
        check(&s, argv!["SCAN", "0", "COUNT", "x"], err("ERR value is not an integer or out of range")).await;
        check(&s, argv!["SCAN", "0", "MATCH"], err("ERR syntax error")).await;

        check(&s, argv!["FLUSHALL", "NOW"], err("ERR syntax error")).await;
        check(&s, argv!["FLUSHALL", "async"], ok()).await;
        check(&s, argv!["DBSIZE"], int(0)).await;
        keys(&s, "*", &[]).await;
        check(&s, argv!["SET", "after", "flush"], ok()).await;
        check(&s, argv!["FLUSHALL"], ok()).await;
        check(&s, argv!["GET", "after"], Value::Null).await;
    });
}

#[test]
fn info_and_unknown() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["MSET", "a", "1", "b", "2"], ok()).await;
        let Value::Map(fields) = s.exec(argv!["KEEL.INFO"]).await else { panic!("KEEL.INFO is not a map") };
        let names: Vec<String> = fields
            .iter()
            .map(|(k, v)| {
                assert!(matches!(v, Value::Integer(n) if *n >= 0), "{k:?} = {v:?}");
                match k {
                    Value::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
                    other => panic!("field name {other:?}"),
                }
            })
            .collect();
        assert_eq!(
            names,
            [
                "keys", "expires", "indexes", "vectors", "vlog_segments", "vlog_disk_bytes", "vlog_live_bytes",
                "vlog_dead_bytes", "compactions", "rss_bytes", "index_memory_bytes", "keydir_bytes", "last_seq", "recovered_keys",
                "uptime_ms", "cache_bytes", "cache_used_bytes", "cache_entries", "cache_hits", "cache_misses",
                "cache_evictions", "avg_ttl", "expired_keys", "inflight_bytes", "inflight_used_bytes", "inflight_peak_bytes",
                "vector_searches", "vector_rerank_reads", "vector_rerank_skipped",
                "db0.keys", "db0.expires", "db0.avg_ttl"
            ]
        );
        assert_eq!(fields[0].1, int(2));
        assert_eq!((fields[23].1.clone(), fields[24].1.clone()), (int(8 << 20), int(0)), "inflight_bytes, inflight_used_bytes");
        assert_eq!((fields[29].1.clone(), fields[30].1.clone()), (int(2), int(0)), "db0.keys, db0.expires");
        assert!(matches!(fields[9].1, Value::Integer(n) if n > 0), "rss_bytes");
        check(&s, argv!["NOSUCH", "x"], err("ERR unknown command 'NOSUCH'")).await;
        check(&s, argv!["BAD\r\nNAME"], err("ERR unknown command 'BAD  NAME'")).await;
        check(&s, Vec::new(), err("ERR empty command")).await;
        check(&s, argv!["PING"], simple("PONG")).await;
    });
}

#[test]
fn restart_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    on_executor(|| async {
        let s = open(&path).await;
        check(&s, argv!["MSET", "a", "1", "b", "2"], ok()).await;
        check(&s, argv!["SET", "big", vec![b'z'; 3000]], ok()).await;
        check(&s, argv!["INCRBY", "n", "7"], int(7)).await;
        check(&s, argv!["DEL", "b"], int(1)).await;
        s.sync().await.unwrap();
    });
    on_executor(|| async {
        let s = open(&path).await;
        check(&s, argv!["DBSIZE"], int(3)).await;
        check(&s, argv!["GET", "a"], bulk("1")).await;
        check(&s, argv!["GET", "b"], Value::Null).await;
        check(&s, argv!["GET", "big"], bulk(vec![b'z'; 3000])).await;
        check(&s, argv!["INCR", "n"], int(8)).await;
        let Value::Map(fields) = s.exec(argv!["KEEL.INFO"]).await else { panic!() };
        assert_eq!(fields[13], (bulk("recovered_keys"), int(3)));
    });
}

async fn keys(s: &keel_shard::Shard, pattern: &str, want: &[&str]) {
    let Value::Array(got) = s.exec(argv!["KEYS", pattern]).await else { panic!("KEYS reply") };
    let mut got: Vec<Value> = got;
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let mut want: Vec<Value> = want.iter().map(bulk).collect();
    want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, want, "KEYS {pattern}");
}

/// Walks SCAN with COUNT 2 from cursor 0 until it returns 0; returns all keys seen.
async fn scan_all(s: &keel_shard::Shard, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut argv = argv!["SCAN", cursor, "COUNT", "2"];
        argv.extend(extra.iter().map(|e| e.as_bytes().to_vec()));
        let Value::Array(parts) = s.exec(argv).await else { panic!("SCAN reply") };
        let [Value::Bulk(next), Value::Array(keys)] = &parts[..] else { panic!("SCAN reply shape {parts:?}") };
        for k in keys {
            let Value::Bulk(k) = k else { panic!("SCAN key {k:?}") };
            seen.push(String::from_utf8(k.clone()).unwrap());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("SCAN did not finish");
}

/// APPEND to a value past 4 KiB writes only the appended bytes (an append record; the
/// store's piece count shows it), and every command that reads the value sees it whole:
/// GET, MGET, STRLEN, SET … GET, GETEX, EXPIRE (which writes it back whole, as one put),
/// MOVE, GETDEL; the TTL is kept; a reopened shard reads the same. (The 512 MiB limit is
/// the store's `TooLong`, tested there with a small limit.)
#[test]
fn appends_to_large_values_are_pieces_every_reader_sees_whole() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let mut want = vec![b'a'; 6000];
        check(&s, argv!["SET", "t:k", want.clone(), "EX", "1000"], ok()).await;
        for i in 0..4u8 {
            let tail = vec![b'0' + i; 1000];
            want.extend_from_slice(&tail);
            check(&s, argv!["APPEND", "t:k", tail], int(want.len() as i64)).await;
        }
        assert_eq!(s.store().stats().append_pieces, 4, "4 append records, no rewrite");
        check(&s, argv!["GET", "t:k"], bulk(&want)).await;
        check(&s, argv!["STRLEN", "t:k"], int(10_000)).await;
        check(&s, argv!["MGET", "t:k", "t:none"], Value::Array(vec![bulk(&want), Value::Null])).await;
        check(&s, argv!["TTL", "t:k"], int(1000)).await;
        drop(s);
        let s = open(dir.path()).await;
        assert_eq!(s.store().stats().append_pieces, 4);
        check(&s, argv!["GET", "t:k"], bulk(&want)).await;
        check(&s, argv!["TTL", "t:k"], int(1000)).await;
        check(&s, argv!["GETEX", "t:k", "PERSIST"], bulk(&want)).await;
        assert_eq!(s.store().stats().append_pieces, 0, "GETEX wrote the value back whole");
        check(&s, argv!["TTL", "t:k"], int(-1)).await;
        check(&s, argv!["APPEND", "t:k", vec![b'z'; 3000]], int(13_000)).await;
        want.extend_from_slice(&[b'z'; 3000]);
        assert_eq!(s.store().stats().append_pieces, 1);
        check(&s, argv!["MOVE", "t:k", "1"], int(1)).await;
        assert_eq!(s.exec_in(1, argv!["GET", "t:k"]).await, bulk(&want));
        check(&s, argv!["EXISTS", "t:k"], int(0)).await;
        assert_eq!(s.exec_in(1, argv!["APPEND", "t:k", vec![b'x'; 2000]]).await, int(15_000));
        want.extend_from_slice(&[b'x'; 2000]);
        assert_eq!(s.exec_in(1, argv!["GETDEL", "t:k"]).await, bulk(&want));
        assert_eq!(s.exec_in(1, argv!["EXISTS", "t:k"]).await, int(0));
        assert_eq!(s.store().stats().append_chains, 0);
    });
}
