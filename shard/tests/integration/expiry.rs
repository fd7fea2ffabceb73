//! Expiry through `Shard::exec` on a clock the test moves: the commands' effects on
//! TTLs (what keeps, replaces or removes one), expired keys in every read and count,
//! KEEL.INFO's expiry fields, and TTLs across a reopen.

use super::*;
use keel_protocol::Value;
use std::cell::Cell;
use std::rc::Rc;

const T0: u64 = 1_700_000_000_000;

fn set_clock(s: &keel_shard::Shard, t: &Rc<Cell<u64>>) {
    let t = t.clone();
    s.store().set_clock(Rc::new(move || t.get()));
}

async fn info_field(s: &keel_shard::Shard, name: &str) -> i64 {
    let Value::Map(fields) = s.exec(argv!["KEEL.INFO"]).await else { panic!("KEEL.INFO is not a map") };
    fields.iter().find_map(|(k, v)| (k == &Value::bulk(name)).then(|| if let Value::Integer(n) = v { *n } else { panic!() })).unwrap()
}

#[test]
fn commands_keep_replace_or_remove_ttls_as_redis() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let t = Rc::new(Cell::new(T0));
        set_clock(&s, &t);
        check(&s, argv!["SET", "k", "1", "EX", "100"], ok()).await;
        check(&s, argv!["PTTL", "k"], int(100_000)).await;
        check(&s, argv!["PEXPIRETIME", "k"], int((T0 + 100_000) as i64)).await;
        check(&s, argv!["EXPIRETIME", "k"], int(((T0 + 100_000) / 1000) as i64)).await;
        // INCR, APPEND and SET KEEPTTL keep it.
        check(&s, argv!["INCR", "k"], int(2)).await;
        check(&s, argv!["APPEND", "k", "0"], int(2)).await;
        check(&s, argv!["SET", "k", "30", "KEEPTTL"], ok()).await;
        check(&s, argv!["PTTL", "k"], int(100_000)).await;
        // TTL rounds to the nearest second.
        t.set(T0 + 500);
        check(&s, argv!["TTL", "k"], int(100)).await;
        t.set(T0 + 501);
        check(&s, argv!["TTL", "k"], int(99)).await;
        // SET replaces it, MSET and PERSIST remove it.
        check(&s, argv!["SET", "k", "v", "PX", "5000"], ok()).await;
        check(&s, argv!["PTTL", "k"], int(5000)).await;
        check(&s, argv!["MSET", "k", "w"], ok()).await;
        check(&s, argv!["TTL", "k"], int(-1)).await;
        check(&s, argv!["PEXPIRE", "k", "300"], int(1)).await;
        check(&s, argv!["PERSIST", "k"], int(1)).await;
        check(&s, argv!["PERSIST", "k"], int(0)).await;
        check(&s, argv!["TTL", "k"], int(-1)).await;
        // GT / LT with no TTL: infinite.
        check(&s, argv!["EXPIRE", "k", "10", "GT"], int(0)).await;
        check(&s, argv!["EXPIRE", "k", "10", "LT"], int(1)).await;
        check(&s, argv!["EXPIRE", "k", "10", "XX", "GT"], int(0)).await;
        check(&s, argv!["EXPIRE", "k", "11", "XX", "GT"], int(1)).await;
        check(&s, argv!["EXPIRE", "k", "12", "NX"], int(0)).await;
        // GETEX on a large value (on disk) rewrites it with the new time.
        let big = vec![b'x'; 5000];
        check(&s, argv!["SET", "big", &big], ok()).await;
        check(&s, argv!["GETEX", "big", "PXAT", (T0 + 9000).to_string()], bulk(&big)).await;
        check(&s, argv!["PEXPIRETIME", "big"], int((T0 + 9000) as i64)).await;
        check(&s, argv!["DBSIZE"], int(2)).await;
        assert_eq!(info_field(&s, "expires").await, 2);
        // Time passes: "k" (11 s) goes, "big" (9 s) goes first.
        t.set(T0 + 9000);
        check(&s, argv!["DBSIZE"], int(1)).await;
        check(&s, argv!["GET", "big"], Value::Null).await;
        check(&s, argv!["STRLEN", "big"], int(0)).await;
        check(&s, argv!["TTL", "big"], int(-2)).await;
        check(&s, argv!["EXPIRE", "big", "10"], int(0)).await;
        check(&s, argv!["SET", "big", "new", "XX"], Value::Null).await;
        check(&s, argv!["SET", "big", "new", "NX", "GET"], Value::Null).await;
        check(&s, argv!["TTL", "big"], int(-1)).await;
        t.set(T0 + 20_000);
        check(&s, argv!["EXISTS", "k", "big"], int(1)).await;
        check(&s, argv!["KEYS", "*"], Value::Array(vec![bulk("big")])).await;
        assert_eq!(info_field(&s, "expires").await, 0);
        assert!(info_field(&s, "expired_keys").await >= 2);
    });
}

#[test]
fn ttls_survive_a_reopen_of_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let far = 4_000_000_000_000u64;
    on_executor(|| async {
        let s = open(dir.path()).await;
        check(&s, argv!["SET", "a", "1", "PXAT", far.to_string()], ok()).await;
        check(&s, argv!["SETEX", "b", "1000", "2"], ok()).await;
        check(&s, argv!["PSETEX", "c", "1", "3"], ok()).await;
        check(&s, argv!["PEXPIREAT", "b", (far + 1).to_string()], int(1)).await;
        s.sync().await.unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    on_executor(|| async {
        let s = open(dir.path()).await;
        check(&s, argv!["PEXPIRETIME", "a"], int(far as i64)).await;
        check(&s, argv!["PEXPIRETIME", "b"], int((far + 1) as i64)).await;
        check(&s, argv!["EXISTS", "c"], int(0)).await;
        check(&s, argv!["DBSIZE"], int(2)).await;
    });
}
