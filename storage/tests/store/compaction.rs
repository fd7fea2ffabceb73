//! Compaction, deletes and clear-all across compaction and restarts.

use super::*;

#[test]
fn overwrites_are_reclaimed_by_compaction_and_newest_values_survive() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.5, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for round in 0..10u8 {
            for i in 0..20 {
                let (k, v) = (format!("key{i}"), vec![round; 1500 + i]);
                apply(&store, vec![put(&k, &v)]).await;
                want.insert(k, v);
            }
        }
        let before = store.stats();
        assert!(before.dead_bytes > before.live_bytes * 5, "{before:?}");
        let compacted = store.compact_now().await.unwrap();
        assert!(compacted > 0);
        let after = store.stats();
        assert_eq!(after.compactions, compacted as u64);
        assert!(after.disk_bytes < before.disk_bytes / 2, "{before:?} → {after:?}");
        assert!(segment_ids(tmp.path()).len() < before.segments);
        check(&store, &want).await;
        drop(store);

        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
        assert_eq!(store.stats().live_bytes, after.live_bytes);
    });
}

#[test]
fn crash_between_compaction_copy_and_delete_is_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.3, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for round in 0..6u8 {
            for i in 0..30 {
                let k = format!("key{i}");
                let phase = (i + round as usize) % 7;
                if phase == 0 {
                    apply(&store, vec![del(&k)]).await;
                    want.remove(&k);
                } else {
                    let v = vec![round; 700 + i];
                    apply(&store, vec![put(&k, &v)]).await;
                    want.insert(k, v);
                }
            }
        }
        store.sync().await.unwrap();
        let before = segment_ids(tmp.path());
        for id in &before {
            std::fs::copy(segment_path(tmp.path(), *id), saved.path().join(format!("{id:08}.vlog"))).unwrap();
        }
        assert!(store.compact_now().await.unwrap() > 0);
        drop(store);
        // Put the deleted segments back, as if the unlinks had not reached the disk.
        let after = segment_ids(tmp.path());
        for id in before.iter().filter(|id| !after.contains(id)) {
            std::fs::copy(saved.path().join(format!("{id:08}.vlog")), segment_path(tmp.path(), *id)).unwrap();
        }
        let (store, report) = open(tmp.path(), &opts).await;
        let union: BTreeSet<u32> = before.iter().chain(&after).copied().collect();
        assert_eq!(report.segments, union.len());
        check(&store, &want).await;
        // And compacting again converges to the same content.
        store.compact_now().await.unwrap();
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}

#[test]
fn background_compaction_runs_and_closing_during_it_is_safe() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.5, ..small_segments() };
        let mut want = BTreeMap::new();
        let (store, _) = open(tmp.path(), &opts).await;
        for round in 0..8u8 {
            for i in 0..20 {
                let (k, v) = (format!("key{i}"), vec![round; 2000]);
                apply(&store, vec![put(&k, &v)]).await;
                want.insert(k, v);
            }
        }
        // The background task looks every second.
        let started = std::time::Instant::now();
        while store.stats().compactions == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "no background compaction");
            glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
        }
        check(&store, &want).await;
        // Close at various points of the next background pass, reopen at once.
        let mut store = store;
        for attempt in 0..3u64 {
            for i in 0..20 {
                let (k, v) = (format!("key{i}"), vec![attempt as u8 + 100; 2000]);
                apply(&store, vec![put(&k, &v)]).await;
                want.insert(k, v);
            }
            glommio::timer::sleep(std::time::Duration::from_millis(990 + attempt * 7)).await;
            drop(store);
            store = open(tmp.path(), &opts).await.0;
            check(&store, &want).await;
        }
    });
}

#[test]
fn deletes_survive_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.5, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        // Segment 1: 100 small keys to delete, mostly big values that stay live.
        for i in 0..100 {
            apply(&store, vec![put(&format!("doomed{i}"), b"x")]).await;
        }
        for i in 0..14 {
            let (k, v) = (format!("keep{i}"), vec![i as u8; 4000]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        // The deletes, mixed with values that are overwritten later (dead).
        for i in 0..100 {
            apply(&store, vec![del(&format!("doomed{i}")), put(&format!("junk{}", i % 10), &[0; 600])]).await;
        }
        for i in 0..10 {
            apply(&store, vec![put(&format!("junk{i}"), &[1; 3000])]).await;
            want.insert(format!("junk{i}"), vec![1; 3000]);
        }
        for i in 0..20 {
            apply(&store, vec![put(&format!("pad{i}"), &[2; 3000])]).await;
            want.insert(format!("pad{i}"), vec![2; 3000]);
        }
        let segs_before = segment_ids(tmp.path());
        assert!(segs_before.len() >= 3);
        store.compact_now().await.unwrap();
        let segs_after = segment_ids(tmp.path());
        assert!(segs_after.contains(&1), "segment 1 is mostly live and stays: {segs_after:?}");
        assert!(!segs_after.contains(&2), "segment 2 (tombstones + junk) was compacted: {segs_after:?}");
        check(&store, &want).await;
        drop(store);

        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
        assert!(!store.contains(NS_KV, b"doomed5"), "no resurrection");
        // Once the old puts are gone too, the tombstones can go.
        for i in 0..14 {
            apply(&store, vec![del(&format!("keep{i}"))]).await;
            want.remove(&format!("keep{i}"));
        }
        for i in 0..30 {
            apply(&store, vec![put(&format!("pad{i}"), &[3; 3000])]).await;
            want.insert(format!("pad{i}"), vec![3; 3000]);
        }
        store.compact_now().await.unwrap();
        assert!(!segment_ids(tmp.path()).contains(&1));
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}

#[test]
fn clear_all_removes_everything_durably() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.5, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        for i in 0..60 {
            apply(&store, vec![put(&format!("old{i}"), &[9; 2000])]).await;
        }
        apply(&store, vec![Mutation::Put { ns: NS_INDEX, key: b"idx".to_vec(), value: b"meta".to_vec() }]).await;
        store.clear_all().unwrap().await.unwrap();
        assert_eq!(store.len(NS_KV) + store.len(NS_INDEX), 0);
        assert_eq!(store.scan(NS_KV, 0, 100), (0, vec![]));
        let mut want = BTreeMap::new();
        for i in 0..40 {
            let (k, v) = (format!("new{i}"), vec![5; 2000]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        apply(&store, vec![put("old3", b"back")]).await;
        want.insert("old3".into(), b"back".to_vec());
        drop(store);

        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
        assert_eq!(store.len(NS_INDEX), 0);
        store.compact_now().await.unwrap();
        assert!(!segment_ids(tmp.path()).contains(&1));
        check(&store, &want).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
        assert_eq!(store.len(NS_INDEX), 0);
    });
}
