//! The value cache in `Store::get`: a hit does no I/O, a miss fills it, values too
//! large for it are served and never cached, and no read ever returns bytes that are
//! not the key's live value: after overwrites, deletes, clear-all, compaction and a
//! failed round taken back.

use keel_storage::fault::{Effect, Injection, Op};

use super::*;

fn with_cache(cache_bytes: u64) -> StoreOptions {
    StoreOptions { cache_bytes, ..small_segments() }
}

/// Writes a filler value and syncs, so that the values written before are no longer in
/// the RAM copy of the segment's last block and reads of them go to the file.
async fn push_out(store: &Store) {
    apply(store, vec![put("~filler", &[0xFF; 9000])]).await;
    store.sync().await.unwrap();
}

/// Where `key`'s value is in its segment file: found by searching the file for the
/// value's bytes (the tests use values of one repeated byte no other value has).
fn value_offset(dir: &Path, seg: u32, value: &[u8]) -> u64 {
    let bytes = std::fs::read(segment_path(dir, seg)).unwrap();
    bytes.windows(value.len()).position(|w| w == value).expect("the value is in the segment") as u64
}

/// A write puts its value in the cache (write-allocate): after the value's bytes on disk
/// are changed behind the store's back, a GET still returns what was written (an
/// O_DIRECT read would see the change), and counts a hit.
#[test]
fn a_written_value_is_served_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        let v = vec![0xA2; 3000];
        apply(&store, vec![put("big", &v)]).await;
        push_out(&store).await;
        flip_byte(&segment_path(tmp.path(), 1), value_offset(tmp.path(), 1, &v) + 10);
        assert!(get(&store, "big").await == Some(v.clone()), "served from the cache");
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries), (1, 0, 2), "big and the filler: {s:?}");
    });
}

/// `Store::prefetch` (a pipeline's look ahead) reads only: no hit, miss or entry is
/// counted or changed, for cached, uncached, inline and missing keys, and reads after it
/// count as before.
#[test]
fn prefetch_counts_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        let v = vec![0xA3; 3000];
        apply(&store, vec![put("big", &v), put("small", b"1")]).await;
        push_out(&store).await;
        let before = store.stats().cache;
        let keys: Vec<&[u8]> = vec![b"big", b"small", b"missing", b"~filler", b"big"];
        store.prefetch(0, &keys);
        store.prefetch(1, &keys);
        store.prefetch(0, &[]);
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries, s.used), (before.hits, before.misses, before.entries, before.used), "{s:?}");
        assert!(get(&store, "big").await == Some(v.clone()));
        assert_eq!(store.stats().cache.hits, before.hits + 1);
    });
}

/// A value read from the vLog fills the cache, and is then served from RAM: after its
/// bytes on disk are changed behind the store's back, a GET still returns what was
/// written, and the hit is counted. The first GET (after a restart: the cache starts
/// empty) is a miss.
#[test]
fn a_cached_value_is_served_without_reading_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        let v = vec![0xA1; 3000];
        apply(&store, vec![put("big", &v), put("small", b"1")]).await;
        push_out(&store).await;
        drop(store);
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        assert_eq!(store.stats().cache.entries, 0);
        assert!(get(&store, "big").await == Some(v.clone()));
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries), (0, 1, 1), "{s:?}");
        assert!(s.used > 3000 && s.used <= s.capacity, "{s:?}");
        flip_byte(&segment_path(tmp.path(), 1), value_offset(tmp.path(), 1, &v) + 10);
        assert!(get(&store, "big").await == Some(v.clone()), "served from the cache");
        assert_eq!(get(&store, "small").await, Some(b"1".to_vec()));
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries), (1, 1, 1), "small values are kept in the keydir, not the cache: {s:?}");
    });
}

/// A value of at most `inline_value_max` bytes is kept in the keydir, from recovery and
/// from its write on: after its bytes on disk are changed behind the store's back, a GET
/// still returns what was written, and the cache is never involved; one byte longer,
/// the value goes through the cache (a miss after the restart).
#[test]
fn a_small_value_is_served_from_the_keydir() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 4, ..with_cache(1 << 20) };
        let (store, _) = open(tmp.path(), &opts).await;
        apply(&store, vec![put("in", &[0xB4; 4]), put("out", &[0xB5; 5])]).await;
        push_out(&store).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        flip_byte(&segment_path(tmp.path(), 1), value_offset(tmp.path(), 1, &[0xB4; 4]) + 1);
        assert_eq!(get(&store, "in").await, Some(vec![0xB4; 4]), "kept in the keydir by recovery");
        assert_eq!(get(&store, "out").await, Some(vec![0xB5; 5]));
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries), (0, 1, 1), "only the 5-byte value went through the cache: {s:?}");
        apply(&store, vec![put("in", &[0xB6; 3]), put("out", &[0xB7; 2])]).await;
        assert_eq!(get(&store, "in").await, Some(vec![0xB6; 3]));
        assert_eq!(get(&store, "out").await, Some(vec![0xB7; 2]));
        let s = store.stats().cache;
        assert_eq!((s.hits, s.misses, s.entries), (0, 1, 0), "the cached 5-byte value was dropped, nothing cached: {s:?}");
    });
}

/// Overwrites (also to a value of the same length) and deletes are never hidden by
/// the cache, and drop the entry they replace.
#[test]
fn writes_are_never_hidden_by_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        for round in 0..5u8 {
            let v = vec![round; 2000];
            apply(&store, vec![put("k", &v)]).await;
            push_out(&store).await;
            assert_eq!(get(&store, "k").await, Some(v.clone()));
            assert_eq!(get(&store, "k").await, Some(v.clone()));
            assert_eq!(store.stats().cache.entries, 2, "k's and the filler's: the overwritten value's entry is gone");
        }
        apply(&store, vec![del("k")]).await;
        assert_eq!(get(&store, "k").await, None);
        assert_eq!(store.stats().cache.entries, 1, "the filler's");
        apply(&store, vec![put("k", &[9; 2000])]).await;
        push_out(&store).await;
        assert_eq!(get(&store, "k").await, Some(vec![9; 2000]));
    });
}

/// FLUSHALL (`clear_all`) empties the cache; keys written again read their new values.
#[test]
fn clear_all_empties_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(1 << 20)).await;
        apply(&store, vec![put("a", &[1; 2000]), put("b", &[2; 2000])]).await;
        push_out(&store).await;
        assert_eq!(get(&store, "a").await, Some(vec![1; 2000]));
        assert_eq!(get(&store, "b").await, Some(vec![2; 2000]));
        store.clear_all().unwrap().await.unwrap();
        assert_eq!(store.stats().cache.entries, 0);
        assert_eq!(get(&store, "a").await, None);
        apply(&store, vec![put("a", &[3; 2000])]).await;
        push_out(&store).await;
        assert_eq!(get(&store, "a").await, Some(vec![3; 2000]));
        assert_eq!(get(&store, "b").await, None);
    });
}

/// Compaction moves a cached entry with its value: after the segment is deleted the
/// value is still a hit, and overwrites after the move are seen.
#[test]
fn compaction_moves_cached_values_with_their_records() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.1, ..with_cache(1 << 20) };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for i in 0..40u8 {
            let (k, v) = (format!("k{i}"), vec![i; 1500]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        // Half of them overwritten: their old records are dead.
        for i in (0..40u8).step_by(2) {
            let (k, v) = (format!("k{i}"), vec![100 + i; 1500]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        push_out(&store).await;
        want.insert("~filler".into(), vec![0xFF; 9000]);
        check(&store, &want).await; // fills the cache
        let before = store.stats().cache;
        assert!(before.entries >= 40, "{before:?}");
        assert!(store.compact_now().await.unwrap() > 0);
        let moved = store.stats().cache;
        assert_eq!(moved.entries, before.entries, "the entries moved, none was dropped");
        check(&store, &want).await;
        let after = store.stats().cache;
        assert_eq!(after.misses, moved.misses, "every read after the move hit the cache");
        for i in 0..40u8 {
            let (k, v) = (format!("k{i}"), vec![200 - i; 1500]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
        }
        push_out(&store).await;
        check(&store, &want).await;
    });
}

/// Values whose cost passes an eighth of the budget are read from the vLog every time
/// and never cached; the budget is never exceeded however many values are read.
#[test]
fn large_values_bypass_the_cache_and_the_budget_holds() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &with_cache(64 << 10)).await;
        apply(&store, vec![put("huge", &[7; 9000])]).await;
        push_out(&store).await; // its 9000-byte filler is not cached either
        for _ in 0..3 {
            assert!(get(&store, "huge").await == Some(vec![7; 9000]));
        }
        let s = store.stats().cache;
        assert_eq!((s.entries, s.misses, s.hits), (0, 3, 0), "{s:?}");
        for i in 0..100u8 {
            apply(&store, vec![put(&format!("k{i}"), &[i; 1000])]).await;
        }
        push_out(&store).await;
        for round in 0..3 {
            for i in 0..100u8 {
                assert_eq!(get(&store, &format!("k{i}")).await, Some(vec![i; 1000]), "round {round}");
                let s = store.stats().cache;
                assert!(s.used <= s.capacity, "{s:?}");
            }
        }
        let s = store.stats().cache;
        assert!(s.evictions > 0 && s.entries > 20, "{s:?}");
    });
}

/// The case a cache keyed by place needs the revert for. One record (sequence number
/// s) holds "a" and "b", values of the same length. "a" is cached. Compaction copies
/// both to the active segment — "a" at place P, "b" after it — moving "a"'s cache entry
/// to (P, s); the copies' round fails (full disk) and is taken back, the file cut back
/// before P. Then "a" is forgotten and compaction runs again: this time "b"'s copy lands
/// at P, with the same sequence number s. A GET of "b" must return "b"'s bytes, not
/// "a"'s: the revert must have dropped the entry at P.
#[test]
fn a_failed_round_taken_back_leaves_no_stale_entry() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { segment_bytes: 8192, inline_value_max: 16, compaction_dead_ratio: 0.0, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        // Segment 1: the record of a, b, x (4096 + 4059 bytes); the filler does not fit.
        let (va, vb) = (vec![0xAA; 2000], vec![0xBB; 2000]);
        apply(&store, vec![put("a", &va), put("b", &vb), put("x", b"1")]).await;
        apply(&store, vec![put("filler", &[1; 500])]).await; // seals segment 1
        apply(&store, vec![del("x")]).await; // dead bytes in segment 1
        assert_eq!(store.stats().segments, 2);
        assert!(get(&store, "a").await == Some(va.clone()));
        assert_eq!(store.stats().cache.entries, 3, "a, b and the filler, cached when written");

        faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Fail(libc::ENOSPC) });
        assert!(store.compact_now().await.is_err(), "the copies' round fails");
        assert_eq!(store.reverts(), 1);
        // Wait until the files are cut back and writes resume.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.sync().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "writes did not resume");
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(get(&store, "a").await == Some(va.clone()), "read from segment 1 again");

        assert_eq!(store.forget_where(NS_KV, &mut |k| k == b"a"), 1);
        assert_eq!(store.compact_now().await.unwrap(), 1);
        push_out(&store).await;
        let got = get(&store, "b").await.unwrap();
        assert!(got == vb, "b read {} bytes of {:#x}: a stale cache entry", got.len(), got[0]);
        assert_eq!(get(&store, "filler").await, Some(vec![1; 500]));
    });
}
