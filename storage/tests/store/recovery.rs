//! Round trips, restarts, torn tails and corruption.

use super::*;

#[test]
fn put_get_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!((report.segments, report.records, report.live_keys), (1, 0, 0));
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::Missing);
        apply(&store, vec![put("a", b"1"), put("b", b"22")]).await;
        apply(&store, vec![put("a", b"111")]).await;
        assert_eq!(get(&store, "a").await, Some(b"111".to_vec()));
        assert!(store.contains(NS_KV, b"b"));
        assert!(!store.contains(NS_INDEX, b"b"), "namespaces are separate");
        apply(&store, vec![del("b")]).await;
        assert_eq!(get(&store, "b").await, None);
        assert_eq!(store.value_len(NS_KV, b"b"), None);
        // An empty batch and an empty value.
        apply(&store, vec![]).await;
        apply(&store, vec![put("empty", b"")]).await;
        assert_eq!(get(&store, "empty").await, Some(vec![]));
        assert_eq!(store.stats().last_seq, 4);
        drop(store);

        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!((report.records, report.live_keys, report.truncated_tail), (4, 2, None));
        check(&store, &BTreeMap::from([("a".into(), b"111".to_vec()), ("empty".into(), vec![])])).await;
        apply(&store, vec![put("c", b"3")]).await;
        assert_eq!(store.stats().last_seq, 5, "sequence numbers continue after a restart");
    });
}

#[test]
fn batch_with_corrupt_byte_at_the_tail_is_dropped_whole() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("a", b"1")]).await;
        apply(&store, vec![put("b", b"2"), put("c", b"3"), del("a")]).await;
        drop(store);
        // The batch starts after the 30-byte put; corrupt the value of "c" inside it.
        let batch_off = SEGMENT_HEADER + HEADER + 2;
        let path = segment_path(tmp.path(), 1);
        let c_value = batch_off + HEADER + 4 + (10 + 2) + 10 + 1;
        assert_eq!(std::fs::read(&path).unwrap()[c_value as usize], b'3');
        flip_byte(&path, c_value);

        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!(report.truncated_tail, Some((path.display().to_string(), batch_off)));
        check(&store, &BTreeMap::from([("a".into(), b"1".to_vec())])).await;
        // Writing after the truncation works and survives another restart.
        apply(&store, vec![put("d", b"4")]).await;
        drop(store);
        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!(report.truncated_tail, None);
        check(&store, &BTreeMap::from([("a".into(), b"1".to_vec()), ("d".into(), b"4".to_vec())])).await;
    });
}

#[test]
fn batch_with_corrupt_byte_in_the_middle_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("a", b"1")]).await;
        apply(&store, vec![put("b", b"2"), put("c", b"3")]).await;
        apply(&store, vec![put("e", b"5")]).await;
        drop(store);
        let batch_off = SEGMENT_HEADER + HEADER + 2;
        let path = segment_path(tmp.path(), 1);
        flip_byte(&path, batch_off + HEADER + 5);

        match Store::open(tmp.path(), opts.clone()).await {
            Err(StorageError::Corrupt { file, offset, reason }) => {
                assert_eq!(file, path.display().to_string());
                assert_eq!(offset, batch_off);
                assert!(reason.contains("CRC"), "{reason}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a corrupt store"),
        }
    });
}

#[test]
fn zeroed_record_header_followed_by_records_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        for i in 0..3 {
            apply(&store, vec![put(&format!("k{i}"), b"v")]).await;
        }
        drop(store);
        // Zero the header of the second record (each is 28 + 2 + 1 bytes).
        let path = segment_path(tmp.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = (SEGMENT_HEADER + HEADER + 3) as usize;
        bytes[second..second + HEADER as usize].fill(0);
        std::fs::write(&path, bytes).unwrap();
        match Store::open(tmp.path(), opts.clone()).await {
            Err(StorageError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, second as u64);
                assert!(reason.contains("valid record follows"), "{reason}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a corrupt store"),
        }
    });
}

#[test]
fn corruption_in_a_sealed_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 2.0, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        for i in 0..40 {
            apply(&store, vec![put(&format!("k{i}"), &[7u8; 4000])]).await;
        }
        drop(store);
        assert!(segment_ids(tmp.path()).len() >= 3);
        // The last record of segment 1 (sealed) loses its last byte of value.
        let path = segment_path(tmp.path(), 1);
        let len = std::fs::read(&path).unwrap().iter().rposition(|&b| b != 0).unwrap() as u64;
        flip_byte(&path, len);
        match Store::open(tmp.path(), opts.clone()).await {
            Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, path.display().to_string()),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a corrupt store"),
        }
        // Garbage after the end of a sealed segment's data is corruption too.
        flip_byte(&path, len);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] = 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(Store::open(tmp.path(), opts.clone()).await, Err(StorageError::Corrupt { .. })));
    });
}

#[test]
fn torn_tail_is_truncated_and_writing_continues() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for i in 0..10 {
            let (k, v) = (format!("key{i}"), vec![i as u8; 1000]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        drop(store);
        // Cut the last record (key9: 28 + 4 + 1000 bytes) in the middle.
        let last_off = SEGMENT_HEADER + 9 * (HEADER + 4 + 1000);
        let path = segment_path(tmp.path(), 1);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(last_off + 500).unwrap();
        want.remove("key9");

        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!(report.truncated_tail, Some((path.display().to_string(), last_off)));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last_off);
        check(&store, &want).await;
        for i in 9..12 {
            let (k, v) = (format!("key{i}"), vec![i as u8 + 100; 3000]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        drop(store);
        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!(report.truncated_tail, None);
        check(&store, &want).await;
    });
}

#[test]
fn torn_header_of_the_newest_segment_is_reinitialized() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = small_segments();
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("a", &[1; 5000])]).await;
        drop(store);
        // A crash right after creating the next segment leaves an empty file.
        std::fs::write(segment_path(tmp.path(), 2), b"").unwrap();
        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!(report.truncated_tail, Some((segment_path(tmp.path(), 2).display().to_string(), 0)));
        assert_eq!(get(&store, "a").await, Some(vec![1; 5000]));
        apply(&store, vec![put("b", b"2")]).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(get(&store, "b").await, Some(b"2".to_vec()));
    });
}

#[test]
fn reopen_rebuilds_the_keydir_over_many_segments() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 2.0, ..small_segments() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        let mut commits = Vec::new();
        for i in 0..500u32 {
            let (k, v) = (format!("key{i}"), vec![(i % 251) as u8; (i as usize * 37) % 2000]);
            // Many applies in flight at once: group commit batches them.
            commits.push(store.apply(vec![put(&k, &v)]).unwrap());
            want.insert(k, v);
        }
        apply(&store, vec![Mutation::Put { ns: NS_VECTOR, key: vec![1; 16], value: vec![2; 1536] }]).await;
        for c in commits {
            c.await.unwrap();
        }
        assert!(store.commit_rounds() < 50, "group commit: {} rounds for 501 applies", store.commit_rounds());
        let stats = store.stats();
        assert!(stats.segments > 5, "{stats:?}");
        assert_eq!(stats.keys_per_ns, [500, 0, 1]);
        drop(store);

        let (store, report) = open(tmp.path(), &opts).await;
        assert_eq!((report.live_keys, report.records), (501, 501));
        assert_eq!(report.segments, stats.segments);
        check(&store, &want).await;
        assert_eq!(store.get(NS_VECTOR, &[1; 16]).await.unwrap(), Some(vec![2; 1536]));
        let after = store.stats();
        assert_eq!((after.live_bytes, after.disk_bytes), (stats.live_bytes, stats.disk_bytes));
    });
}
