//! Numbered databases on one shard (`keel_shard::dbs`): requests in database n touch
//! only its namespace; SWAPDB's map survives a reopen (read back from disk when it is
//! longer than the inline limit) and follows the store back when its round fails; MOVE
//! is one batch.

use super::*;
use keel_shard::dbs::{home_ns, DB_MAP_KEY, NS_DB_MAP};

async fn open_dbs(dir: &Path, databases: usize) -> Shard {
    Shard::open_with(dir, test_options(), databases).await.expect("open shard")
}

async fn check_in(s: &Shard, db: u8, argv: Vec<Vec<u8>>, expected: Value) {
    let shown: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    assert_eq!(s.exec_in(db, argv).await, expected, "db {db}: {shown:?}");
}

#[test]
fn databases_are_separate_namespaces_and_swapdb_is_durable() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        // 20 databases: the map record (20 bytes) is longer than the inline limit (16),
        // so a reopen reads it from disk.
        let s = open_dbs(dir.path(), 20).await;
        for db in [0u8, 1, 19] {
            check_in(&s, db, argv!["SET", "t:k", format!("v{db}")], ok()).await;
        }
        check_in(&s, 2, argv!["GET", "t:k"], Value::Null).await;
        check_in(&s, 19, argv!["DBSIZE"], int(1)).await;
        check_in(&s, 20, argv!["GET", "t:k"], Value::err("ERR DB index is out of range")).await;
        assert_eq!(s.store().len(home_ns(19)), 1);
        assert_eq!(s.store().len(home_ns(2)), 0);

        check_in(&s, 0, argv!["SWAPDB", "1", "19"], ok()).await;
        check_in(&s, 1, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 19, argv!["GET", "t:k"], bulk("v1")).await;
        // The keys stayed where they were; only the map changed.
        assert_eq!(s.store().get(home_ns(19), b"t:k").await.unwrap(), Some(b"v19".to_vec()));
        check_in(&s, 1, argv!["MOVE", "t:k", "2"], int(1)).await;
        check_in(&s, 2, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 2, argv!["MOVE", "t:k", "0"], int(0)).await;
        drop(s);

        let s = open_dbs(dir.path(), 20).await;
        check_in(&s, 1, argv!["GET", "t:k"], Value::Null).await;
        check_in(&s, 2, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 19, argv!["GET", "t:k"], bulk("v1")).await;
        drop(s);

        // Fewer databases configured: the map keeps the others' entries.
        let s = open_dbs(dir.path(), 4).await;
        check_in(&s, 2, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 0, argv!["SWAPDB", "0", "2"], ok()).await;
        check_in(&s, 0, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 19, argv!["GET", "t:k"], Value::err("ERR DB index is out of range")).await;
        drop(s);
        let s = open_dbs(dir.path(), 20).await;
        check_in(&s, 0, argv!["GET", "t:k"], bulk("v19")).await;
        check_in(&s, 2, argv!["GET", "t:k"], bulk("v0")).await;
        check_in(&s, 19, argv!["GET", "t:k"], bulk("v1")).await;

        // FLUSHALL empties every database and removes the map: identity again.
        check_in(&s, 0, argv!["FLUSHALL"], ok()).await;
        assert_eq!(s.store().len(NS_DB_MAP), 0);
        check_in(&s, 5, argv!["SET", "t:x", "5"], ok()).await;
        assert_eq!(s.store().len(home_ns(5)), 1);
        drop(s);
        let s = open_dbs(dir.path(), 20).await;
        check_in(&s, 5, argv!["GET", "t:x"], bulk("5")).await;
    });
}

/// A round holding a SWAPDB and a MOVE fails at its fdatasync: both fail, and the map
/// and the keys are as before (the shard reads the map again after the store took the
/// round back).
#[test]
fn a_failed_swapdb_is_taken_back() {
    use keel_storage::fault::{FaultFs, Op};
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultFs::new();
        let (store, recovery) = keel_storage::Store::open_with_faults(dir.path(), test_options(), &faults).await.unwrap();
        let s = Shard::with_store_dbs(store, recovery, 16).await.unwrap();
        check_in(&s, 1, argv!["SET", "t:a", "one"], ok()).await;
        check_in(&s, 2, argv!["SET", "t:b", "two"], ok()).await;

        faults.fail_next(Op::Sync, rustix::io::Errno::IO.raw_os_error());
        let swap = s.handle_in(0, argv!["SWAPDB", "1", "2"]).await;
        let moved = s.handle_in(1, argv!["MOVE", "t:b", "3"]).await; // after the swap, db 1 holds t:b
        for reply in [swap, moved] {
            let v = reply.into_value().await;
            assert!(matches!(&v, Value::Error(e) if e.starts_with("ERR storage: ")), "{v:?}");
        }
        check_in(&s, 1, argv!["GET", "t:a"], bulk("one")).await;
        check_in(&s, 2, argv!["GET", "t:b"], bulk("two")).await;
        check_in(&s, 3, argv!["DBSIZE"], int(0)).await;
        assert_eq!(s.store().len(NS_DB_MAP), 0);
        assert!(s.store().get(NS_DB_MAP, DB_MAP_KEY).await.unwrap().is_none());
    });
}
