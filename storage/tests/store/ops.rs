//! SCAN, lookups, for_each_live, tiers and the smaller operations.

use super::*;

fn scan_all(store: &Store, count: usize, mut between: impl FnMut(usize)) -> Vec<Vec<u8>> {
    let (mut cursor, mut seen, mut calls) = (0, Vec::new(), 0);
    loop {
        let (next, keys) = store.scan(NS_KV, cursor, count);
        assert!(next < 1 << 48);
        seen.extend(keys);
        between(calls);
        calls += 1;
        if next == 0 {
            return seen;
        }
        cursor = next;
    }
}

#[test]
fn scan_walks_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &StoreOptions::default()).await;
        let keys: BTreeSet<Vec<u8>> = (0..1000).map(|i| format!("key:{i}").into_bytes()).collect();
        apply(&store, keys.iter().map(|k| Mutation::Put { ns: NS_KV, key: k.clone(), value: vec![] }).collect()).await;

        // No concurrent writes: exactly once.
        for count in [1, 10, 333, 5000] {
            let mut seen = scan_all(&store, count, |_| {});
            assert_eq!(seen.len(), keys.len(), "count {count}");
            seen.sort();
            assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), keys);
        }

        // Concurrent inserts and deletes of other keys: the original keys at least once.
        let writer = store.clone();
        let seen = scan_all(&store, 10, |call| {
            let muts = (0..20).map(|j| Mutation::Put { ns: NS_KV, key: format!("new:{call}:{j}").into_bytes(), value: vec![] }).collect();
            drop(writer.apply(muts).unwrap());
            if call > 5 {
                drop(writer.apply(vec![Mutation::Delete { ns: NS_KV, key: format!("new:{}:0", call - 5).into_bytes() }]).unwrap());
            }
        });
        let seen: BTreeSet<Vec<u8>> = seen.into_iter().collect();
        assert!(keys.is_subset(&seen));
        store.sync().await.unwrap();
    });
}

#[test]
fn values_in_the_append_buffer_then_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 16, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let big = vec![42u8; 10_000];
        let commit = store.apply(vec![put("small", b"tiny"), put("big", &big)]).unwrap();
        // Before the write: both from RAM.
        assert_eq!(store.lookup(NS_KV, b"small"), Lookup::InMemory(b"tiny".to_vec()));
        assert_eq!(store.lookup(NS_KV, b"big"), Lookup::InMemory(big.clone()));
        commit.await.unwrap();
        // After: both are in the value cache (the write put them there); after the
        // restart below they are read from the segment.
        assert_eq!(store.lookup(NS_KV, b"small"), Lookup::InMemory(b"tiny".to_vec()));
        assert!(store.lookup(NS_KV, b"big") == Lookup::InMemory(big.clone()));
        assert_eq!(get(&store, "big").await, Some(big.clone()));
        // Unaligned offsets and lengths read back exactly.
        for n in [1usize, 17, 4095, 4096, 4097] {
            let v: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
            apply(&store, vec![put(&format!("v{n}"), &v)]).await;
            assert_eq!(get(&store, &format!("v{n}")).await, Some(v));
        }
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(get(&store, "small").await, Some(b"tiny".to_vec()));
        assert_eq!(store.lookup(NS_KV, b"big"), Lookup::OnDisk);
        assert_eq!(get(&store, "big").await, Some(big));
    });
}

/// `reading_bytes` counts a value read from the vLog from the moment its read is issued
/// until it is returned, and a read whose future is dropped stops counting.
#[test]
fn reads_in_flight_are_counted_until_returned() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        let (a, b) = (vec![1u8; 10_000], vec![2u8; 3_000]);
        apply(&store, vec![put("a", &a), put("b", &b)]).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::OnDisk);
        assert_eq!(store.reading_bytes(), 0);
        let mut read_a = Box::pin(store.get(NS_KV, b"a"));
        let mut read_b = Box::pin(store.get(NS_KV, b"b"));
        assert!(futures_lite::future::poll_once(&mut read_a).await.is_none(), "issued, not done");
        assert_eq!(store.reading_bytes(), 10_000);
        assert!(futures_lite::future::poll_once(&mut read_b).await.is_none());
        assert_eq!(store.reading_bytes(), 13_000);
        drop(read_b);
        assert_eq!(store.reading_bytes(), 10_000, "a dropped read stops counting");
        assert_eq!(read_a.await.unwrap(), Some(a.clone()));
        assert_eq!(store.reading_bytes(), 0);
        // A hit (the read above cached it) reads nothing.
        assert_eq!(get(&store, "a").await, Some(a));
        assert_eq!(store.reading_bytes(), 0);
    });
}

#[test]
fn for_each_live_reads_every_vector() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { segment_bytes: 1 << 20, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let vector = |id: u64| -> Vec<u8> { (0..1536).map(|i| (id as usize * 31 + i) as u8).collect() };
        let key = |id: u64| -> Vec<u8> { [7u64.to_le_bytes(), id.to_le_bytes()].concat() };
        let mut commits = Vec::new();
        for chunk in 0..50u64 {
            let muts = (0..100).map(|j| Mutation::Put { ns: NS_VECTOR, key: key(chunk * 100 + j), value: vector(chunk * 100 + j) }).collect();
            commits.push(store.apply(muts).unwrap());
        }
        for c in commits {
            c.await.unwrap();
        }
        // Some overwritten, some deleted, some small ones inline.
        apply(&store, (0..100).map(|id| Mutation::Delete { ns: NS_VECTOR, key: key(id) }).collect()).await;
        apply(&store, vec![Mutation::Put { ns: NS_VECTOR, key: key(5000), value: b"small".to_vec() }]).await;
        drop(store);

        let (store, _) = open(tmp.path(), &opts).await;
        let mut seen = BTreeMap::new();
        store
            .for_each_live(NS_VECTOR, &mut |k, v| {
                assert!(seen.insert(k.to_vec(), v.to_vec()).is_none(), "each key once");
            })
            .await
            .unwrap();
        assert_eq!(seen.len(), 4901);
        assert_eq!(seen[&key(5000)], b"small");
        for id in 100..5000 {
            assert_eq!(seen[&key(id)], vector(id), "vector {id}");
        }
        let mut none = 0;
        store.for_each_live(NS_KV, &mut |_, _| none += 1).await.unwrap();
        assert_eq!(none, 0);
    });
}

#[test]
fn relaxed_durability_acknowledges_and_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { durability: Durability::Relaxed, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for i in 0..100 {
            let (k, v) = (format!("k{i}"), vec![i as u8; 900]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        glommio::timer::sleep(std::time::Duration::from_millis(250)).await;
        store.sync().await.unwrap();
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}

#[test]
fn forget_and_keys_where() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &StoreOptions::default()).await;
        apply(&store, (0..10u8).map(|i| Mutation::Put { ns: NS_VECTOR, key: vec![i], value: vec![i] }).collect()).await;
        let mut odd = store.keys_where(NS_VECTOR, &mut |k| k[0] % 2 == 1);
        odd.sort();
        assert_eq!(odd, (0..10u8).filter(|i| i % 2 == 1).map(|i| vec![i]).collect::<Vec<_>>());
        assert_eq!(store.forget_where(NS_VECTOR, &mut |k| k[0] % 2 == 1), 5);
        assert_eq!(store.len(NS_VECTOR), 5);
        assert!(!store.contains(NS_VECTOR, &[3]));
        assert_eq!(store.stats().keys_per_ns, [0, 0, 5]);
    });
}

#[test]
fn records_larger_than_a_segment_get_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = small_segments();
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("a", b"1")]).await;
        let huge = vec![3u8; 200 << 10];
        apply(&store, vec![put("huge", &huge), put("b", b"2")]).await;
        apply(&store, vec![put("c", b"3")]).await;
        assert_eq!(segment_ids(tmp.path()), vec![1, 2, 3]);
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(get(&store, "huge").await, Some(huge));
        assert_eq!(get(&store, "c").await, Some(b"3".to_vec()));
    });
}

#[test]
fn probe_direct_io_succeeds_on_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        keel_storage::probe_direct_io(tmp.path()).await.unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "the probe file is removed");
    });
}

/// The server's default data dir is the relative `./data`: a relative path must work
/// (glommio's `Directory::open` rejects relative paths with EBADF).
#[test]
fn relative_dir_works() {
    let tmp = tempfile::tempdir_in(".").unwrap();
    let rel = Path::new(".").join(tmp.path().file_name().unwrap()).join("shard-000");
    assert!(rel.is_relative());
    run(async {
        let (store, _) = open(&rel, &StoreOptions::default()).await;
        apply(&store, vec![put("a", b"1")]).await;
        store.sync().await.unwrap();
    });
    run(async {
        let (store, report) = open(&rel, &StoreOptions::default()).await;
        assert_eq!(report.live_keys, 1);
        assert_eq!(get(&store, "a").await.as_deref(), Some(&b"1"[..]));
    });
}

/// FLUSHDB's `clear_ns`: one namespace emptied (in one batch or several), the others
/// untouched, and so it stays after a restart and after compaction.
#[test]
fn clear_ns_removes_one_namespace_durably() {
    for batch_bytes in [keel_storage::CLEAR_NS_BATCH_BYTES, 100] {
        let tmp = tempfile::tempdir().unwrap();
        run(async {
            let opts = StoreOptions { compaction_dead_ratio: 0.0, ..small_segments() };
            let (store, _) = open(tmp.path(), &opts).await;
            const DB: u8 = 7;
            let mut want = BTreeMap::new();
            for i in 0..50 {
                let (k, v) = (format!("k{i}"), vec![i as u8; 1 + i * 40]);
                apply(&store, vec![put(&k, &v), Mutation::Put { ns: DB, key: k.clone().into_bytes(), value: b"other".to_vec() }]).await;
                want.insert(k, v);
            }
            store.clear_ns_batched(DB, batch_bytes).unwrap().await.unwrap();
            assert_eq!(store.len(DB), 0);
            assert_eq!(store.scan(DB, 0, 100), (0, vec![]));
            check(&store, &want).await;
            // A key put back after the clear survives it.
            apply(&store, vec![Mutation::Put { ns: DB, key: b"k3".to_vec(), value: b"back".to_vec() }]).await;
            // Clearing an empty namespace writes nothing and succeeds.
            store.clear_ns(200).unwrap().await.unwrap();
            drop(store);
            let (store, _) = open(tmp.path(), &opts).await;
            check(&store, &want).await;
            assert_eq!(store.len(DB), 1);
            assert_eq!(store.get(DB, b"k3").await.unwrap(), Some(b"back".to_vec()));
            store.compact_now().await.unwrap();
            drop(store);
            let (store, _) = open(tmp.path(), &opts).await;
            check(&store, &want).await;
            assert_eq!(store.keys_where(DB, &mut |_| true), vec![b"k3".to_vec()]);
        });
    }
}

/// `Store::version` tells a caller whether a key was written while it awaited a read,
/// also after a reopen (when the keydir keeps no sequence numbers): every write changes
/// it, a read does not, a missing key has none.
#[test]
fn version_changes_with_every_write_also_after_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("k", b"one")]).await;
        store.sync().await.unwrap();
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        let v1 = store.version(NS_KV, b"k").expect("live");
        assert_eq!(get(&store, "k").await, Some(b"one".to_vec()));
        assert_eq!(store.version(NS_KV, b"k"), Some(v1), "a read changes nothing");
        apply(&store, vec![put("k", b"two")]).await;
        let v2 = store.version(NS_KV, b"k").expect("live");
        assert_ne!(v1, v2, "a write changes the version");
        apply(&store, vec![put("k", b"two")]).await;
        assert_ne!(store.version(NS_KV, b"k"), Some(v2), "also a write of the same bytes");
        assert_eq!(store.version(NS_KV, b"missing"), None);
    });
}
