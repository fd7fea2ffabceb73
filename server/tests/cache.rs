//! The shard value cache through the real binary: `cache_bytes` is validated at start
//! (one line, exit 2) and reported (CONFIG GET, INFO memory); a SET puts its value
//! there and GETs hit it (INFO stats); every write command, a
//! FLUSHALL and compaction leave no stale value behind; a value too large for the cache
//! is served from the vLog and never cached.

mod common;

use common::check::info;
use common::{Scratch, Server};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// INFO `section` as name → value.
fn field(c: &mut redis::Connection, section: &str, name: &str) -> u64 {
    common::check::info_field(c, section, name)
}

fn get(c: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(c).unwrap()
}

/// Writes a 20 KiB value and waits for the write, so that the values written before it
/// are no longer in the RAM copy of the segment's last block: their GETs go to the
/// cache or the disk.
fn push_out(c: &mut redis::Connection) {
    let _: () = redis::cmd("SET").arg("t:~filler").arg(vec![b'~'; 20 << 10]).query(c).unwrap();
}

/// Starts keel with one shard (the counters are then that shard's) and the config
/// file `toml`.
fn start(scratch: &Scratch, toml: &str) -> Server {
    let cfg = scratch.path().join("keel.toml");
    std::fs::write(&cfg, toml).unwrap();
    Server::start(scratch, &["--shards", "1", "--config", cfg.to_str().unwrap()])
}

#[test]
fn bad_cache_bytes_exit_2_with_one_line() {
    common::assert_bad_byte_setting(
        &Scratch::new(),
        "cache_bytes",
        "--cache-bytes",
        &[("flag", "0"), ("flag", "1048575"), ("file", "0"), ("file", "100"), ("file", "1099511627777")],
        "1 MiB ..= 1 TiB (1048576 ..= 1099511627776 bytes per shard)",
        "32MiB",
    );
}

#[test]
fn budget_is_reported_and_a_set_value_is_a_hit() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--shards", "2", "--cache-bytes", "8388608"]);
    let mut c = srv.con();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("keel-cache-bytes").query(&mut c).unwrap();
    assert_eq!(got, vec!["keel-cache-bytes".to_string(), "8388608".into()]);
    assert_eq!(field(&mut c, "memory", "cache_bytes"), 2 * 8388608, "summed over the shards");
    assert_eq!(field(&mut c, "memory", "cache_used_bytes"), 0);
    let v = vec![b'v'; 1024];
    let _: () = redis::cmd("SET").arg("t:k").arg(&v).query(&mut c).unwrap();
    push_out(&mut c);
    for _ in 0..3 {
        assert_eq!(get(&mut c, "t:k"), Some(v.clone()));
    }
    let stats = info(&mut c, "stats");
    assert_eq!((stats["cache_misses"].as_str(), stats["cache_hits"].as_str()), ("0", "3"), "the SET cached it: {stats:?}");
    assert_eq!(stats["cache_evictions"], "0");
    let used = field(&mut c, "memory", "cache_used_bytes");
    assert!((1024 + 20480..1024 + 20480 + 1024).contains(&used), "a 1 KiB and a 20 KiB value and their bookkeeping: {used}");
    assert_eq!(field(&mut c, "memory", "cache_entries"), 2);
    srv.stop();
}

/// Every value goes through the cache, counters included (`inline_value_max = 0`: no
/// value is kept in the keydir). Each write command changes a cached value; the next GET (and the one
/// after, a hit) returns the new value.
#[test]
fn no_write_command_leaves_a_stale_value() {
    let scratch = Scratch::new();
    let srv = start(&scratch, "inline_value_max = 0\n");
    let mut c = srv.con();
    // Caches `key`'s current value (two GETs: a miss then a hit, or two hits) and
    // checks it is `want`.
    let cached = |c: &mut redis::Connection, key: &str, want: Option<&[u8]>| {
        push_out(c);
        for _ in 0..2 {
            assert_eq!(get(c, key).as_deref(), want, "{key}");
        }
    };
    let cmd = |c: &mut redis::Connection, argv: &[&str]| -> redis::Value {
        let mut r = redis::cmd(argv[0]);
        for a in &argv[1..] {
            r.arg(*a);
        }
        r.query(c).unwrap()
    };

    cmd(&mut c, &["SET", "t:s", "first"]);
    cached(&mut c, "t:s", Some(b"first"));
    cmd(&mut c, &["SET", "t:s", "again"]); // same length, new bytes
    cached(&mut c, "t:s", Some(b"again"));
    cmd(&mut c, &["SET", "t:s", "third", "XX", "GET"]);
    cached(&mut c, "t:s", Some(b"third"));
    cmd(&mut c, &["APPEND", "t:s", "+more"]);
    cached(&mut c, "t:s", Some(b"third+more"));
    cmd(&mut c, &["MSET", "t:s", "mset", "t:o", "other"]);
    cached(&mut c, "t:s", Some(b"mset"));
    cmd(&mut c, &["SET", "t:n", "10"]);
    cached(&mut c, "t:n", Some(b"10"));
    cmd(&mut c, &["INCR", "t:n"]);
    cached(&mut c, "t:n", Some(b"11"));
    cmd(&mut c, &["INCRBY", "t:n", "89"]);
    cached(&mut c, "t:n", Some(b"100"));
    cmd(&mut c, &["DECR", "t:n"]);
    cached(&mut c, "t:n", Some(b"99"));
    cmd(&mut c, &["DECRBY", "t:n", "9"]);
    cached(&mut c, "t:n", Some(b"90"));
    cmd(&mut c, &["DEL", "t:n"]);
    cached(&mut c, "t:n", None);
    cmd(&mut c, &["SET", "t:n", "12"]);
    cached(&mut c, "t:n", Some(b"12"));
    cmd(&mut c, &["UNLINK", "t:n"]);
    cached(&mut c, "t:n", None);
    cmd(&mut c, &["SET", "t:n", "13"]);
    cached(&mut c, "t:n", Some(b"13"));
    assert_eq!(cmd(&mut c, &["GETDEL", "t:n"]), redis::Value::BulkString(b"13".to_vec()));
    cached(&mut c, "t:n", None);
    cmd(&mut c, &["SET", "t:n", "14", "NX"]);
    cached(&mut c, "t:n", Some(b"14"));
    cached(&mut c, "t:o", Some(b"other"));
    cmd(&mut c, &["FLUSHALL"]);
    cached(&mut c, "t:o", None);
    cached(&mut c, "t:s", None);
    cmd(&mut c, &["SET", "t:o", "after flush"]);
    cached(&mut c, "t:o", Some(b"after flush"));
    // MGET reads through the cache too.
    let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg("t:o").arg("t:s").query(&mut c).unwrap();
    assert_eq!(got, vec![Some(b"after flush".to_vec()), None]);
    let hits = field(&mut c, "stats", "cache_hits");
    assert!(hits >= 15, "the second GET of each value hit the cache: {hits}");
    srv.stop();
}

/// Values whose cost passes an eighth of the budget (here 1 MiB: 128 KiB) are read from
/// the vLog every time and never cached; smaller ones are.
#[test]
fn values_too_large_for_the_cache_are_served_from_the_vlog() {
    let scratch = Scratch::new();
    let srv = start(&scratch, "cache_bytes = 1048576\n");
    let mut c = srv.con();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let _: () = redis::cmd("SET").arg("t:big").arg(&big).query(&mut c).unwrap();
    push_out(&mut c);
    for _ in 0..3 {
        assert_eq!(get(&mut c, "t:big"), Some(big.clone()));
    }
    assert_eq!(field(&mut c, "memory", "cache_entries"), 1, "only the 20 KiB filler: {:?}", info(&mut c, "memory"));
    let stats = info(&mut c, "stats");
    assert_eq!((stats["cache_misses"].as_str(), stats["cache_hits"].as_str()), ("3", "0"), "{stats:?}");
    srv.stop();
}

/// Compaction moves records while their values are cached: every value read after it
/// (and after later overwrites) is the live one, and the budget holds under eviction.
#[test]
fn compaction_and_eviction_serve_live_values() {
    let scratch = Scratch::new();
    let srv = start(&scratch, "cache_bytes = 1048576\nsegment_bytes = 1048576\n");
    let mut c = srv.con();
    let value = |k: usize, round: usize| -> Vec<u8> { format!("{k}:{round}:").into_bytes().into_iter().cycle().take(5000).collect() };
    let mut want = BTreeMap::new();
    for round in 0..4 {
        for k in 0..300 {
            let _: () = redis::cmd("SET").arg(format!("t:{k}")).arg(value(k, round)).query(&mut c).unwrap();
            want.insert(k, value(k, round));
        }
        // Read them all, twice over in part, so that the cache fills and evicts.
        for k in (0..300).chain(0..50) {
            assert_eq!(get(&mut c, &format!("t:{k}")).as_ref(), Some(&want[&k]), "round {round} key {k}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while field(&mut c, "persistence", "vlog_compactions") == 0 {
        assert!(Instant::now() < deadline, "no compaction: {:?}", info(&mut c, "persistence"));
        std::thread::sleep(Duration::from_millis(100));
    }
    for k in (0..300).chain(0..300) {
        assert_eq!(get(&mut c, &format!("t:{k}")).as_ref(), Some(&want[&k]), "after compaction, key {k}");
    }
    for k in 0..300 {
        let _: () = redis::cmd("SET").arg(format!("t:{k}")).arg(value(k, 9)).query(&mut c).unwrap();
        want.insert(k, value(k, 9));
    }
    push_out(&mut c);
    for k in (0..300).chain(0..300) {
        assert_eq!(get(&mut c, &format!("t:{k}")).as_ref(), Some(&want[&k]), "after overwrites, key {k}");
    }
    let m = info(&mut c, "memory");
    let (budget, used): (u64, u64) = (m["cache_bytes"].parse().unwrap(), m["cache_used_bytes"].parse().unwrap());
    assert!(used <= budget && used > budget / 2, "{m:?}");
    assert!(field(&mut c, "stats", "cache_evictions") > 0);
    srv.stop();
}
