//! `Store::append` (FORMAT.md "Appends"): append records carry only the appended bytes;
//! the pieces read back whole, after a reopen, across compaction (which folds a key),
//! with a crash between compaction's fold and its delete, with expiry, through the value
//! cache, and after a failed round.

use std::cell::Cell;
use std::rc::Rc;

use keel_storage::fault::{Effect, Injection, Op};
use keel_storage::{Appended, Commit, APPEND_REWRITE_MAX, BYTES_PER_PIECE, MAX_PIECES};

use super::*;

/// Appends `tail` to `key`, with no length limit; returns the new length once durable
/// and any fold it started is done.
async fn append(store: &Store, key: &str, tail: &[u8]) -> usize {
    let (len, commit) = append_now(store, key, tail).await;
    commit.await.expect("commit");
    store.wait_for_folds().await;
    len
}

/// Appends without waiting for the commit.
async fn append_now(store: &Store, key: &str, tail: &[u8]) -> (usize, Commit) {
    match store.append(NS_KV, key.as_bytes(), tail, usize::MAX).await.expect("append") {
        Appended::Len(len, commit) => (len, commit),
        Appended::TooLong => panic!("no limit was given"),
    }
}

/// `n` bytes that differ from position to position (and from `seed` to `seed`).
fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_mul(31).wrapping_add((i % 251) as u8)).collect()
}

fn pieces(store: &Store) -> usize {
    store.stats().append_pieces
}

/// An append to a value past `APPEND_REWRITE_MAX` writes one record of its own bytes
/// (header + key + tail), not the value; the value reads back whole from the pieces
/// (with no cache, so from disk), before and after a reopen; the geometric bound folds
/// the chain (one put of the whole value) once the pieces would outweigh the base.
#[test]
fn an_append_writes_only_its_bytes_and_the_value_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { cache_bytes: 0, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = bytes(1, 8192);
        apply(&store, vec![put("k", &want)]).await;
        let v0 = store.version(NS_KV, b"k");
        for i in 0..8u8 {
            let disk = store.stats().disk_bytes;
            let tail = bytes(i + 2, 1024);
            want.extend_from_slice(&tail);
            assert_eq!(append(&store, "k", &tail).await, want.len());
            assert_eq!(store.stats().disk_bytes - disk, HEADER + 1 + 1024, "append {i}: one record of the tail");
            assert_eq!(pieces(&store), i as usize + 1);
            assert_eq!(store.value_len(NS_KV, b"k"), Some(want.len()));
            assert_eq!(get(&store, "k").await, Some(want.clone()), "append {i}");
        }
        assert_ne!(store.version(NS_KV, b"k"), v0, "an append changes the version");
        // The pieces (9 KiB) pass the base (8 KiB): a piece, then the whole value is
        // written (a fold, in the background).
        let disk = store.stats().disk_bytes;
        let tail = bytes(20, 1024);
        want.extend_from_slice(&tail);
        assert_eq!(append(&store, "k", &tail).await, want.len());
        assert_eq!(store.stats().disk_bytes - disk, HEADER + 1 + 1024 + HEADER + 1 + want.len() as u64, "a piece, then one put of the value");
        assert_eq!(pieces(&store), 0);
        for i in 0..5u8 {
            let tail = bytes(30 + i, 3000);
            want.extend_from_slice(&tail);
            append(&store, "k", &tail).await;
        }
        assert_eq!(pieces(&store), 5);
        let live = store.stats().live_bytes;
        check(&store, &BTreeMap::from([("k".to_string(), want.clone())])).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!((pieces(&store), store.stats().append_chains), (5, 1), "the chain is replayed");
        assert_eq!(store.stats().live_bytes, live, "pieces count as live bytes");
        check(&store, &BTreeMap::from([("k".to_string(), want.clone())])).await;
        // A missing key is created; a small value is rewritten (no piece).
        assert_eq!(append(&store, "new", b"abc").await, 3);
        assert_eq!(append(&store, "new", b"def").await, 6);
        assert_eq!(get(&store, "new").await.as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(pieces(&store), 5);
        // Overwrite and delete drop the chain, also after a reopen.
        apply(&store, vec![put("k", b"short")]).await;
        assert_eq!((pieces(&store), store.stats().append_chains), (0, 0));
        assert_eq!(get(&store, "k").await.as_deref(), Some(&b"short"[..]));
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(pieces(&store), 0);
        assert_eq!(get(&store, "k").await.as_deref(), Some(&b"short"[..]));
    });
}

/// The limit: an append whose value would pass it writes nothing.
#[test]
fn an_append_past_the_limit_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &StoreOptions::default()).await;
        apply(&store, vec![put("k", &[1; 10])]).await;
        let before = store.stats().disk_bytes;
        assert!(matches!(store.append(NS_KV, b"k", &[2; 11], 20).await, Ok(Appended::TooLong)));
        assert_eq!(store.stats().disk_bytes, before);
        assert_eq!(get(&store, "k").await, Some(vec![1; 10]));
        // Exactly at the limit is fine.
        assert!(matches!(store.append(NS_KV, b"k", &[2; 10], 20).await, Ok(Appended::Len(20, _))));
    });
}

/// Many small appends never make a chain longer than `MAX_PIECES`, or one piece per
/// `BYTES_PER_PIECE` of a larger value; and large appends write O(n) bytes in all (folds
/// double the base): 200 appends of 64 KiB write well under 4× the final value, not the
/// ~200/2× of rewriting it each time.
#[test]
fn folding_bounds_the_chain_and_the_bytes_written() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = bytes(1, APPEND_REWRITE_MAX + 1000);
        apply(&store, vec![put("small", &want)]).await;
        let mut most = 0;
        for i in 0..300u32 {
            let tail = bytes(i as u8, 16);
            want.extend_from_slice(&tail);
            let (_, commit) = append_now(&store, "small", &tail).await;
            most = most.max(pieces(&store));
            commit.await.unwrap();
            store.wait_for_folds().await;
        }
        assert_eq!(most, MAX_PIECES, "chains grow to the bound and no further");
        assert_eq!(get(&store, "small").await, Some(want));
        apply(&store, vec![del("small")]).await;
        assert_eq!(pieces(&store), 0);
        // A large value may have one piece per BYTES_PER_PIECE of it: a 12 MiB value 192.
        let mut want = bytes(2, 12 << 20);
        apply(&store, vec![put("large", &want)]).await;
        let mut most = 0;
        for i in 0..300u32 {
            let tail = bytes(i as u8, 100);
            want.extend_from_slice(&tail);
            let (_, commit) = append_now(&store, "large", &tail).await;
            most = most.max(pieces(&store));
            commit.await.unwrap();
            store.wait_for_folds().await;
        }
        assert_eq!(most, (12 << 20) / BYTES_PER_PIECE as usize);
        assert_eq!(pieces(&store), 300 - most, "folded once, at the bound");
        assert_eq!(get(&store, "large").await, Some(want));
        apply(&store, vec![del("large")]).await;

        let start = store.stats().disk_bytes;
        let mut want = Vec::new();
        for i in 0..200u32 {
            let tail = bytes(i as u8, 64 << 10);
            want.extend_from_slice(&tail);
            assert_eq!(append(&store, "big", &tail).await, want.len());
        }
        let written = store.stats().disk_bytes - start;
        assert!(written < 4 * want.len() as u64, "{written} bytes written for a value of {}", want.len());
        assert!(pieces(&store) > 0);
        assert_eq!(get(&store, "big").await, Some(want.clone()));
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(get(&store, "big").await, Some(want));
    });
}

/// Builds keys with chains whose bases and pieces are spread over 64 KiB segments, with
/// overwritten filler between them; returns the expected state.
async fn chained_keys(store: &Store) -> BTreeMap<String, Vec<u8>> {
    let mut want = BTreeMap::new();
    for k in 0..4u8 {
        let key = format!("c{k}");
        let v = bytes(k, 30_000);
        apply(store, vec![put(&key, &v)]).await;
        want.insert(key, v);
    }
    for round in 0..6u8 {
        for k in 0..4u8 {
            let key = format!("c{k}");
            let tail = bytes(round * 4 + k, 4000 + k as usize);
            append(store, &key, &tail).await;
            want.get_mut(&key).unwrap().extend_from_slice(&tail);
            let filler = format!("f{}", k % 2);
            apply(store, vec![put(&filler, &bytes(round, 3000))]).await;
            want.insert(filler, bytes(round, 3000));
        }
    }
    want
}

/// Compaction never copies a base or piece alone: it folds the key (one put of the whole
/// value) and the chain goes; the values stay, also after a reopen, and the live byte
/// accounting stays exact (every live byte of a compacted segment moved).
#[test]
fn compaction_folds_chained_keys() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.0, ..small_segments() };
        let (store, _) = open(tmp.path(), &StoreOptions { compaction_dead_ratio: 2.0, ..opts.clone() }).await;
        let want = chained_keys(&store).await;
        assert_eq!(pieces(&store), 24);
        check(&store, &want).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(pieces(&store), 24);
        assert!(store.compact_now().await.unwrap() > 0);
        assert_eq!(pieces(&store), 0, "every chain had a piece in a compacted segment");
        check(&store, &want).await;
        let live = store.stats().live_bytes;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(pieces(&store), 0);
        assert_eq!(store.stats().live_bytes, live);
        check(&store, &want).await;
    });
}

/// A crash after compaction folded keys and before its deletes reached the disk: the
/// old bases and pieces are found again beside the folded puts; replay (an append only
/// extends an older current value, the newer fold wins) gives the same values.
#[test]
fn a_crash_between_a_compactions_fold_and_its_delete_is_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 0.0, ..small_segments() };
        let (store, _) = open(tmp.path(), &StoreOptions { compaction_dead_ratio: 2.0, ..opts.clone() }).await;
        let mut want = chained_keys(&store).await;
        store.sync().await.unwrap();
        let before = segment_ids(tmp.path());
        for id in &before {
            std::fs::copy(segment_path(tmp.path(), *id), saved.path().join(format!("{id:08}.vlog"))).unwrap();
        }
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert!(store.compact_now().await.unwrap() > 0);
        // Appends after the fold, as pieces of the folded value.
        for k in 0..2u8 {
            let key = format!("c{k}");
            let tail = bytes(99 + k, 5000);
            append(&store, &key, &tail).await;
            want.get_mut(&key).unwrap().extend_from_slice(&tail);
        }
        assert_eq!(pieces(&store), 2);
        drop(store);
        let after = segment_ids(tmp.path());
        for id in before.iter().filter(|id| !after.contains(id)) {
            std::fs::copy(saved.path().join(format!("{id:08}.vlog")), segment_path(tmp.path(), *id)).unwrap();
        }
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
        assert_eq!(pieces(&store), 2, "only the pieces after the folds are live");
        store.compact_now().await.unwrap();
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}

/// APPEND keeps the key's expiry time (on disk too: the base's record holds it); an
/// expired chained key is gone, also after a reopen.
#[test]
fn appends_keep_the_expiry_time() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        const T0: u64 = 1_700_000_000_000;
        let t = Rc::new(Cell::new(T0));
        let clock = || -> keel_storage::Clock {
            let t = t.clone();
            Rc::new(move || t.get())
        };
        let opts = StoreOptions::default();
        let (store, _) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
        let mut want = bytes(1, 10_000);
        apply(&store, vec![Mutation::PutExpiring { ns: NS_KV, key: b"k".to_vec(), value: want.clone(), expire_at: T0 + 1000 }]).await;
        for i in 0..3 {
            let tail = bytes(i, 2000);
            want.extend_from_slice(&tail);
            append(&store, "k", &tail).await;
        }
        assert_eq!(pieces(&store), 3);
        assert_eq!(store.expire_at(NS_KV, b"k"), Some(T0 + 1000));
        drop(store);
        let (store, _) = Store::open_with_clock(tmp.path(), opts.clone(), clock()).await.unwrap();
        assert_eq!(store.expire_at(NS_KV, b"k"), Some(T0 + 1000));
        assert_eq!(get(&store, "k").await, Some(want));
        t.set(T0 + 1000);
        assert_eq!(get(&store, "k").await, None);
        assert_eq!(store.value_len(NS_KV, b"k"), None);
        // An append to the expired key starts a new value, without a TTL.
        assert_eq!(append(&store, "k", b"fresh").await, 5);
        assert_eq!(store.expire_at(NS_KV, b"k"), Some(0));
        assert_eq!(pieces(&store), 0);
        drop(store);
        let (store, _) = Store::open_with_clock(tmp.path(), opts, clock()).await.unwrap();
        assert_eq!(get(&store, "k").await.as_deref(), Some(&b"fresh"[..]));
    });
}

/// The cache keeps a chained value's base (its bytes do not change) and a read caches
/// the whole value under its newest piece; an append drops that whole-value entry (no
/// copy of the value per append), and a lookup puts the value together from the cached
/// base and pieces still in RAM; an overwrite drops both; nothing stale is ever read.
#[test]
fn the_cache_follows_appends() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let (store, _) = open(tmp.path(), &StoreOptions::default()).await;
        let mut want = bytes(1, 10_000);
        apply(&store, vec![put("k", &want)]).await;
        for i in 0..2 {
            let tail = bytes(i, 3000);
            want.extend_from_slice(&tail);
            append(&store, "k", &tail).await;
        }
        assert_eq!(pieces(&store), 2);
        assert_eq!(store.stats().cache.entries, 1, "the base, written");
        assert_eq!(get(&store, "k").await, Some(want.clone()));
        assert_eq!(store.stats().cache.entries, 2, "the base and the whole value");
        assert_eq!(store.lookup(NS_KV, b"k"), Lookup::InMemory(want.clone()));
        drop(store);
        let (store, _) = open(tmp.path(), &StoreOptions::default()).await;
        assert_eq!(store.lookup(NS_KV, b"k"), Lookup::OnDisk, "not cached after a reopen");
        assert_eq!(get(&store, "k").await, Some(want.clone()));
        let s = store.stats().cache;
        assert_eq!((s.entries, s.misses), (1, 1), "one read, one miss, the whole value cached");
        assert_eq!(store.lookup(NS_KV, b"k"), Lookup::InMemory(want.clone()));
        let tail = bytes(7, 100);
        want.extend_from_slice(&tail);
        append(&store, "k", &tail).await;
        assert_eq!(pieces(&store), 3);
        assert_eq!(store.stats().cache.entries, 0, "the whole value's entry is gone");
        assert_eq!(get(&store, "k").await, Some(want.clone()));
        assert_eq!(store.lookup(NS_KV, b"k"), Lookup::InMemory(want.clone()));
        let other = bytes(9, 100); // past inline_value_max: cached
        apply(&store, vec![put("k", &other)]).await;
        assert_eq!(store.lookup(NS_KV, b"k"), Lookup::InMemory(other.clone()));
        assert_eq!(store.stats().cache.entries, 1, "the new value only");
        assert_eq!(get(&store, "k").await, Some(other));
    });
}

/// A round holding an append fails: the piece is taken back (value, length, chain,
/// live bytes), writes are refused, and neither a restart nor a power loss brings the
/// piece back.
#[test]
fn a_failed_round_takes_an_append_back() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions::default();
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut base = bytes(1, 10_000);
        apply(&store, vec![put("k", &base)]).await;
        let tail = bytes(2, 2000);
        append(&store, "k", &tail).await;
        base.extend_from_slice(&tail);
        let want = BTreeMap::from([("k".to_string(), base.clone())]);
        let before = store.stats();
        faults.inject(Injection { op: Op::Sync, nth: 1, file: None, effect: Effect::Landed(libc::EIO) });
        let (len, commit) = append_now(&store, "k", &bytes(3, 2000)).await;
        assert_eq!(len, 14_000);
        assert_eq!(store.value_len(NS_KV, b"k"), Some(14_000), "visible before its ack");
        assert!(commit.await.is_err());
        assert_eq!(store.reverts(), 1);
        let after = store.stats();
        assert_eq!((after.append_pieces, after.live_bytes, after.disk_bytes), (before.append_pieces, before.live_bytes, before.disk_bytes));
        // The base's entry stays (its bytes are acknowledged).
        assert_eq!((before.cache.entries, after.cache.entries), (1, 1));
        check(&store, &want).await;
        assert!(matches!(store.append(NS_KV, b"k", b"x", usize::MAX).await, Err(StorageError::Poisoned)));
        drop(store);
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &want).await;
        drop(store);
        faults.power_loss().await.unwrap();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &want).await;
        assert_eq!(pieces(&store), 1);
    });
}

/// Namespaces other than the KV one, `for_each_live` and `forget_where` see chained
/// values whole (the shard's MOVE and index rebuilds read values this way).
#[test]
fn for_each_live_and_forget_where_see_chained_values() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { cache_bytes: 0, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = bytes(1, 9000);
        apply(&store, vec![Mutation::Put { ns: NS_INDEX, key: b"a".to_vec(), value: want.clone() }, put("plain", b"p")]).await;
        let tail = bytes(2, 5000);
        match store.append(NS_INDEX, b"a", &tail, usize::MAX).await.unwrap() {
            Appended::Len(n, c) => {
                assert_eq!(n, 14_000);
                c.await.unwrap();
            }
            Appended::TooLong => unreachable!(),
        }
        want.extend_from_slice(&tail);
        let mut seen = Vec::new();
        store.for_each_live(NS_INDEX, &mut |k, v| seen.push((k.to_vec(), v.to_vec()))).await.unwrap();
        assert_eq!(seen, vec![(b"a".to_vec(), want)]);
        assert_eq!(pieces(&store), 1);
        assert_eq!(store.forget_where(NS_INDEX, &mut |_| true), 1);
        assert_eq!((pieces(&store), store.stats().append_chains), (0, 0));
        assert_eq!(store.get(NS_INDEX, b"a").await.unwrap(), None);
        assert_eq!(store.stats().live_bytes, 10 + 5 + 1, "only \"plain\" (a batch entry) is live");
        // Clear-all drops chains too, for good.
        apply(&store, vec![put("c", &bytes(3, 8000))]).await;
        append(&store, "c", &bytes(4, 5000)).await;
        assert_eq!(pieces(&store), 1);
        store.clear_all().unwrap().await.unwrap();
        assert_eq!((pieces(&store), store.stats().live_bytes), (0, 0));
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!((pieces(&store), store.len(NS_KV)), (0, 0));
    });
}

/// Appends that come while a fold reads the value are kept in RAM by the fold and
/// written with it: one put of the whole value, no chain left, nothing lost, also after
/// a reopen; an overwrite during a fold makes it give up.
#[test]
fn appends_during_a_fold_are_folded_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { cache_bytes: 0, ..StoreOptions::default() };
        let (store, _) = open(tmp.path(), &opts).await;
        let mut want = bytes(1, 8192);
        apply(&store, vec![put("k", &want)]).await;
        let mut commits = Vec::new();
        // The third piece makes the pieces outweigh the base: a fold is claimed; the
        // appends after it (no await in between) add to it.
        for i in 0..12u8 {
            let tail = bytes(i, 3000);
            want.extend_from_slice(&tail);
            let (len, commit) = append_now(&store, "k", &tail).await;
            assert_eq!(len, want.len());
            commits.push(commit);
        }
        assert_eq!(pieces(&store), 12);
        for c in commits {
            c.await.unwrap();
        }
        store.wait_for_folds().await;
        assert_eq!(pieces(&store), 0, "the fold took every piece");
        assert_eq!(get(&store, "k").await, Some(want.clone()));
        // Nobody waits for a fold's put: made durable by the next sync (or round).
        store.sync().await.unwrap();
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        assert_eq!(pieces(&store), 0);
        assert_eq!(get(&store, "k").await, Some(want.clone()));
        // A fold claimed, then the key overwritten before it runs: it writes nothing.
        for i in 0..3u8 {
            let _commit = append_now(&store, "k", &bytes(i, 20_000)).await;
        }
        apply(&store, vec![put("k", b"new")]).await;
        store.wait_for_folds().await;
        assert_eq!(get(&store, "k").await.as_deref(), Some(&b"new"[..]));
        assert_eq!(pieces(&store), 0);
    });
}

/// The copies' write round fails while compaction waits for a fold's read, and the
/// store resumes before that read completes: the copy is taken back, so its key points
/// into the compacted segment again, which must then stay. Segment 1 holds chained
/// "c"'s base, live "e" (copied) and dead "d"; "c"'s pieces are in segment 2, whose
/// first read (the fold's) is held 300 ms while the copy's write fails. Every value
/// reads back ("segment file is missing" for "e" if segment 1 went), also after a
/// reopen. Fails on the code before compaction checked for a revert.
#[test]
fn compaction_keeps_its_segment_when_a_round_is_taken_back_during_a_fold() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 2.0, cache_bytes: 0, ..small_segments() };
        let faults = keel_storage::fault::FaultFs::new();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        let mut want = BTreeMap::new();
        for (k, v) in [("c", bytes(1, 30_000)), ("e", bytes(2, 1000)), ("d", bytes(3, 1000))] {
            apply(&store, vec![put(k, &v)]).await;
            want.insert(k.to_string(), v);
        }
        // Fill segment 1 up, so that what follows goes to segment 2.
        apply(&store, vec![put("f1", &bytes(4, 50_000))]).await;
        apply(&store, vec![put("f2", &bytes(5, 20_000))]).await;
        want.insert("f1".into(), bytes(4, 50_000));
        want.insert("f2".into(), bytes(5, 20_000));
        assert!(store.stats().segments >= 2);
        let seg2 = store.stats().segments as u32;
        // Segment 2: "d" again (so segment 1 has dead bytes) and two pieces of "c".
        apply(&store, vec![put("d", &bytes(6, 1000))]).await;
        want.insert("d".into(), bytes(6, 1000));
        for n in 0..2u8 {
            let tail = bytes(10 + n, 4000);
            append(&store, "c", &tail).await;
            want.get_mut("c").unwrap().extend_from_slice(&tail);
        }
        assert_eq!(pieces(&store), 2);
        // Seal segment 2 and sync, so the pieces are read from its file.
        apply(&store, vec![put("g", &bytes(7, 60_000))]).await;
        want.insert("g".into(), bytes(7, 60_000));
        store.sync().await.unwrap();
        check(&store, &want).await;
        drop(store);
        let opts = StoreOptions { compaction_dead_ratio: 0.0, ..opts };
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        let seg2_name = format!("{seg2:08}.vlog");
        faults.inject(Injection { op: Op::Read, nth: 1, file: Some(seg2_name), effect: Effect::Delay(std::time::Duration::from_millis(300)) });
        faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Fail(libc::ENOSPC) });
        let _ = store.compact_now().await;
        assert!(store.reverts() >= 1, "the copy's round failed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.sync().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "writes did not resume");
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        store.wait_for_folds().await;
        check(&store, &want).await;
        store.compact_now().await.unwrap();
        check(&store, &want).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}

/// A chained key expires while compaction waits for its fold's read, and the copy's
/// write meanwhile fails for good (EIO: writes are refused from then on, so the expired
/// key cannot be removed): compaction fails instead of spinning in its fold loop
/// without an await (which hung the shard's thread), reads still work, and a reopen
/// drops the expired key and keeps the rest. The store runs on a thread of its own
/// with a deadline, so that a spin fails this test instead of hanging the run.
#[test]
fn a_fold_gives_up_when_an_expired_key_cannot_be_removed() {
    const T0: u64 = 1_700_000_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let store_thread = std::thread::spawn(move || {
        run(async move {
            let t = Rc::new(Cell::new(T0));
            let t2 = t.clone();
            let clock = move || -> keel_storage::Clock {
                let t = t2.clone();
                Rc::new(move || t.get())
            };
            let opts = StoreOptions { compaction_dead_ratio: 2.0, cache_bytes: 0, ..small_segments() };
            let faults = keel_storage::fault::FaultFs::new();
            let (store, _) = Store::open_with_faults_and_clock(&dir, opts.clone(), &faults, clock()).await.unwrap();
            let c_expires = T0 + 10_000;
            apply(&store, vec![Mutation::PutExpiring { ns: NS_KV, key: b"c".to_vec(), value: bytes(1, 30_000), expire_at: c_expires }]).await;
            apply(&store, vec![put("e", &bytes(2, 1000)), put("d", &bytes(3, 1000))]).await;
            apply(&store, vec![put("f1", &bytes(4, 50_000))]).await;
            apply(&store, vec![put("f2", &bytes(5, 20_000))]).await;
            let seg_of_pieces = store.stats().segments as u32;
            apply(&store, vec![put("d", &bytes(6, 1000))]).await;
            for n in 0..2u8 {
                append(&store, "c", &bytes(10 + n, 4000)).await;
            }
            assert_eq!(pieces(&store), 2);
            assert_eq!(store.expire_at(NS_KV, b"c"), Some(c_expires), "APPEND keeps the expiry time");
            apply(&store, vec![put("g", &bytes(7, 60_000))]).await;
            store.sync().await.unwrap();
            drop(store);

            let opts = StoreOptions { compaction_dead_ratio: 0.0, ..opts };
            let (store, _) = Store::open_with_faults_and_clock(&dir, opts.clone(), &faults, clock()).await.unwrap();
            faults.inject(Injection {
                op: Op::Read,
                nth: 1,
                file: Some(format!("{seg_of_pieces:08}.vlog")),
                effect: Effect::Delay(std::time::Duration::from_millis(300)),
            });
            faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Fail(libc::EIO) });
            // "c" expires while the fold's read is held.
            let t3 = t.clone();
            glommio::spawn_local(async move {
                glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                t3.set(c_expires + 1);
            })
            .detach();
            assert!(store.compact_now().await.is_err(), "writes are refused for good");
            assert_eq!(get(&store, "c").await, None, "expired");
            assert_eq!(get(&store, "e").await, Some(bytes(2, 1000)));
            drop(store);
            let (store, _) = Store::open_with_clock(&dir, opts, clock()).await.unwrap();
            assert_eq!(get(&store, "c").await, None);
            for (k, v) in [("e", bytes(2, 1000)), ("d", bytes(6, 1000)), ("f1", bytes(4, 50_000)), ("g", bytes(7, 60_000))] {
                assert_eq!(get(&store, k).await, Some(v), "{k}");
            }
        });
        done_tx.send(()).unwrap();
    });
    match done_rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the store's thread hung (a fold loop that spins without an await)"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::panic::resume_unwind(store_thread.join().unwrap_err()),
    }
}

/// A failed round takes back the newest append of a key that keeps earlier pieces, and
/// the only append of another key: the values, their lengths (STRLEN) and the piece and
/// chain counts are the acknowledged ones again.
#[test]
fn a_failed_append_taken_back_leaves_the_earlier_pieces_exact() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { compaction_dead_ratio: 2.0, cache_bytes: 0, ..small_segments() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut want = bytes(1, 30_000);
        apply(&store, vec![put("c", &want), put("o", &bytes(4, 30_000))]).await;
        let tail = bytes(2, 4000);
        append(&store, "c", &tail).await;
        want.extend_from_slice(&tail);
        assert_eq!((store.stats().append_chains, pieces(&store)), (1, 1));
        faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Fail(libc::ENOSPC) });
        let (_, c2) = append_now(&store, "c", &bytes(3, 4000)).await;
        let (_, o1) = append_now(&store, "o", &bytes(5, 4000)).await;
        assert_eq!((store.stats().append_chains, pieces(&store)), (2, 3));
        assert!(c2.await.is_err() && o1.await.is_err(), "the appends' round fails");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.sync().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "writes did not resume");
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!((store.stats().append_chains, pieces(&store)), (1, 1), "the failed pieces were taken back, and o's chain with its only piece");
        let want = BTreeMap::from([("c".to_string(), want), ("o".to_string(), bytes(4, 30_000))]);
        check(&store, &want).await;
        drop(store);
        let (store, _) = open(tmp.path(), &opts).await;
        check(&store, &want).await;
    });
}
