//! Key expiry on a clock the test moves: TTLs through restarts, lazy and active
//! removal, counts without expired keys, and no resurrection of an older version when
//! compaction drops an expired record.

use super::*;
use std::cell::Cell;
use std::rc::Rc;

/// A clock the test moves, starting at `start` ms.
fn manual_clock(start: u64) -> (Rc<Cell<u64>>, impl Fn() -> keel_storage::Clock) {
    let t = Rc::new(Cell::new(start));
    let t2 = t.clone();
    (t, move || -> keel_storage::Clock {
        let t = t2.clone();
        Rc::new(move || t.get())
    })
}

fn put_ex(key: &str, value: &[u8], expire_at: u64) -> Mutation {
    Mutation::PutExpiring { ns: NS_KV, key: key.into(), value: value.to_vec(), expire_at }
}

const T0: u64 = 1_700_000_000_000;

#[test]
fn ttls_survive_restarts_and_expired_keys_are_dropped_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (t, clock) = manual_clock(T0);
        let opts = StoreOptions::default();
        let (store, _) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
        apply(&store, vec![put_ex("a", b"1", T0 + 1000), put_ex("b", b"2", T0 + 5000), put("c", b"3")]).await;
        // A TTL changed, one removed by a plain put, one kept by a put with the same time.
        apply(&store, vec![put_ex("c", b"3", T0 + 9000)]).await;
        apply(&store, vec![put("b", b"22")]).await;
        assert_eq!(store.expire_at(NS_KV, b"a"), Some(T0 + 1000));
        assert_eq!(store.expire_at(NS_KV, b"b"), Some(0));
        assert_eq!(store.expire_at(NS_KV, b"missing"), None);
        assert_eq!(store.expires(NS_KV).0, 2);
        drop(store);

        let (store, report) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
        assert_eq!(report.expired_keys, 0);
        assert_eq!(store.expire_at(NS_KV, b"a"), Some(T0 + 1000));
        assert_eq!(store.expire_at(NS_KV, b"b"), Some(0));
        assert_eq!(store.expire_at(NS_KV, b"c"), Some(T0 + 9000));
        assert_eq!(store.expires(NS_KV), (2, 5000));
        drop(store);

        // "a" expires while the store is closed: dropped (and counted) at open, for good.
        t.set(T0 + 1000);
        let (store, report) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
        assert_eq!(report.expired_keys, 1);
        assert_eq!(store.stats().expired_keys, 1);
        check(&store, &BTreeMap::from([("b".into(), b"22".to_vec()), ("c".into(), b"3".to_vec())])).await;
        store.sync().await.unwrap();
        drop(store);
        t.set(T0);
        let (store, report) = Store::open_with_clock(tmp.path(), opts, clock()).await.unwrap();
        assert_eq!(report.expired_keys, 0);
        assert!(!store.contains(NS_KV, b"a"), "the removal at open was durable (a tombstone), also for an earlier clock");
    });
}

#[test]
fn expired_keys_are_invisible_at_once_and_removed_lazily() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (t, clock) = manual_clock(T0);
        let (store, _) = Store::open_with_clock(tmp.path(), StoreOptions::default(), clock()).await.unwrap();
        let big = vec![7u8; 10_000]; // on disk, not inline
        apply(&store, vec![put_ex("a", b"1", T0 + 10), put_ex("big", &big, T0 + 10), put_ex("c", b"3", T0 + 20), put("d", b"4")]).await;
        assert_eq!((store.len(NS_KV), store.expires(NS_KV).0), (4, 3));
        t.set(T0 + 10);
        // Counted and listed without them before anything removes them.
        assert_eq!((store.len(NS_KV), store.expires(NS_KV).0), (2, 1));
        assert_eq!(store.stats().keys_per_ns[0], 2);
        let mut keys = store.keys_where(NS_KV, &mut |_| true);
        keys.sort();
        assert_eq!(keys, vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(store.scan(NS_KV, 0, 100).1.len(), 2);
        assert_eq!(store.stats().expired_keys, 0, "nothing read them yet");
        // A read that meets an expired key removes it (no await in between: the active
        // cycle cannot have run).
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::Missing);
        assert_eq!(store.stats().expired_keys, 1);
        assert_eq!(store.get(NS_KV, b"big").await.unwrap(), None);
        assert_eq!(store.value_len(NS_KV, b"big"), None);
        assert_eq!(store.stats().expired_keys, 2);
        assert_eq!(store.expire_at(NS_KV, b"c"), Some(T0 + 20));
        // The active cycle removes the rest once due.
        t.set(T0 + 20);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.stats().expired_keys < 3 {
            assert!(std::time::Instant::now() < deadline, "the active cycle removes c");
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store.expires(NS_KV), (0, 0));
        check(&store, &BTreeMap::from([("d".into(), b"4".to_vec())])).await;
    });
}

/// The resurrection hazard (storage/FORMAT.md "Expiry"): "k" without a TTL in segment
/// 1, then "k" with a TTL in segment 2. Once it expires, compaction drops segment 2's
/// record; the removal's tombstone keeps segment 1's older "k" dead after a restart.
/// Both ways a removal happens: by the expiry (active or `expire_now`), and by
/// compaction itself meeting the expired record first.
#[test]
fn an_expired_key_does_not_come_back_when_compaction_drops_its_record() {
    for compaction_first in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        run(async {
            let (t, clock) = manual_clock(T0);
            let opts = StoreOptions { segment_bytes: 64 << 10, inline_value_max: 16, compaction_dead_ratio: 0.5, ..StoreOptions::default() };
            let (store, _) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
            let filler = vec![1u8; 1000];
            // Segment 1: "k" = old, and live filler (segment 1 stays below the ratio).
            apply(&store, vec![put("k", b"old")]).await;
            for i in 0..70 {
                apply(&store, vec![put(&format!("keep{i}"), &filler)]).await;
            }
            // Segment 2: "k" with a TTL, and filler that is then deleted (segment 2 dead).
            apply(&store, vec![put_ex("k", b"new", T0 + 100)]).await;
            for i in 0..70 {
                apply(&store, vec![put(&format!("drop{i}"), &filler)]).await;
            }
            for i in 0..70 {
                apply(&store, vec![del(&format!("drop{i}"))]).await;
            }
            assert!(segment_ids(tmp.path()).len() >= 3, "{:?}", segment_ids(tmp.path()));
            t.set(T0 + 100);
            if !compaction_first {
                assert_eq!(store.expire_now(), 1);
            }
            store.sync().await.unwrap();
            let compacted = store.compact_now().await.unwrap();
            assert!(compacted >= 1);
            assert!(segment_ids(tmp.path()).contains(&1), "segment 1 (the old k) stays");
            assert!(!segment_ids(tmp.path()).contains(&2), "segment 2 (k's expiring record) is gone");
            assert_eq!(store.stats().expired_keys, 1);
            drop(store);
            let (store, _) = Store::open_with_clock(tmp.path(), opts, clock()).await.unwrap();
            assert_eq!(store.get(NS_KV, b"k").await.unwrap(), None, "compaction_first = {compaction_first}");
            assert_eq!(store.len(NS_KV), 70);
        });
    }
}

/// A batch mixing puts with and without TTLs and deletes is one record; recovery gives
/// each key the time of its own entry.
#[test]
fn batches_carry_expiry_times_per_entry() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (_t, clock) = manual_clock(T0);
        let (store, _) = Store::open_with_clock(tmp.path(), StoreOptions::default(), clock()).await.unwrap();
        apply(&store, vec![put_ex("a", b"1", T0 + 7), put("b", b"2"), put_ex("c", b"", T0 + 9), del("zz")]).await;
        drop(store);
        let (store, report) = Store::open_with_clock(tmp.path(), StoreOptions::default(), clock()).await.unwrap();
        assert_eq!(report.records, 1);
        assert_eq!(store.expire_at(NS_KV, b"a"), Some(T0 + 7));
        assert_eq!(store.expire_at(NS_KV, b"b"), Some(0));
        assert_eq!(store.expire_at(NS_KV, b"c"), Some(T0 + 9));
        assert_eq!(get(&store, "c").await, Some(vec![]));
    });
}

/// While the store takes back a write that met a full disk (and refuses writes), an
/// expired key is still invisible though it cannot be removed; once writes resume, the
/// next expiry removes it, and nothing about it is lost or revived by a restart.
#[test]
fn expired_keys_stay_invisible_while_writes_are_refused_and_go_once_they_resume() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (t, clock) = manual_clock(T0);
        let faults = FaultFs::new();
        let opts = StoreOptions::default();
        let (store, _) = Store::open_with_faults_and_clock(tmp.path(), opts.clone(), &faults, clock()).await.unwrap();
        apply(&store, vec![put("k", b"old")]).await;
        apply(&store, vec![put_ex("k", b"new", T0 + 10), put_ex("other", b"x", T0 + 1000)]).await;
        faults.fail_next(keel_storage::fault::Op::Write, libc::ENOSPC);
        let failed = store.apply(vec![put_ex("other", b"y", T0 + 5)]).unwrap();
        t.set(T0 + 10);
        // The unacknowledged write is visible until its round fails ...
        assert!(failed.await.is_err());
        // ... and then taken back, expiry time included.
        assert_eq!(store.expire_at(NS_KV, b"other"), Some(T0 + 1000));
        assert!(!store.contains(NS_KV, b"k"), "expired, whether or not it could be removed");
        assert_eq!(store.len(NS_KV), 1);
        // Writes resume by themselves; then the expiry removes "k" for good.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match store.apply(vec![put("probe", b"1")]) {
                Ok(c) => {
                    c.await.unwrap();
                    break;
                }
                Err(_) => {
                    assert!(std::time::Instant::now() < deadline, "writes resume");
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
        store.expire_now();
        store.sync().await.unwrap();
        assert_eq!(store.stats().expired_keys, 1);
        drop(store);
        let (store, report) = Store::open_with_faults_and_clock(tmp.path(), opts, &faults, clock()).await.unwrap();
        assert_eq!(report.expired_keys, 0, "the removal was durable");
        assert_eq!(get(&store, "k").await, None);
        assert_eq!(store.expire_at(NS_KV, b"other"), Some(T0 + 1000));
        assert_eq!(get(&store, "other").await, Some(b"x".to_vec()));
    });
}
