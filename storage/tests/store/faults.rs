//! Failed writes and syncs (through the fault-injecting file layer): the commit fails,
//! the batch is never visible again — not right after, not after a restart, not after a
//! power loss — earlier acknowledged writes stay, reads work. Later writes are refused
//! for good, except after a write that met a full disk: then they resume by themselves
//! once the failed write is taken back (and fail the same way while the disk is full).

use std::time::{Duration, Instant};

use futures_lite::future::{poll_once, yield_now};
use keel_storage::fault::{Effect, Injection, Op};

use super::*;

fn on(op: Op, file: Option<&str>, effect: Effect) -> Injection {
    Injection { op, nth: 1, file: file.map(str::to_string), effect }
}

/// The acknowledged state every scenario starts from: an inline value, an on-disk one,
/// and a deleted key.
async fn acknowledged_start(store: &Store) -> BTreeMap<String, Vec<u8>> {
    apply(store, vec![put("a", b"1"), put("big", &[7; 100]), put("gone", b"x")]).await;
    apply(store, vec![del("gone")]).await;
    BTreeMap::from([("a".into(), b"1".to_vec()), ("big".into(), vec![7; 100])])
}

/// Checks `store` right after a failed commit: the acknowledged state `want` (the
/// failed batch touched "a", "big", "gone" and "new"), one revert.
async fn check_taken_back(store: &Store, want: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(store.reverts(), 1);
    check(store, want).await;
    for k in ["gone", "new"] {
        assert_eq!(store.lookup(NS_KV, k.as_bytes()), Lookup::Missing, "{k}");
        assert_eq!(get(store, k).await, None, "{k}");
    }
}

/// Writes are refused for good (the failure was not a full disk met by a write).
async fn check_poisoned(store: &Store) {
    assert!(matches!(store.apply(vec![put("later", b"1")]), Err(StorageError::Poisoned)));
    assert!(matches!(store.clear_all(), Err(StorageError::Poisoned)));
    assert!(matches!(store.sync().await, Err(StorageError::Poisoned)));
    assert_eq!(get(store, "later").await, None);
}

/// Applies `muts` once the store accepts writes: while it takes back a write that met
/// a full disk, `apply` fails at once with that `Io` error (retried here for up to 5 s).
/// Returns the commit's outcome.
async fn apply_when_accepted(store: &Store, muts: Vec<Mutation>) -> Result<(), StorageError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.apply(muts.clone()) {
            Ok(commit) => return commit.await,
            Err(StorageError::Io { .. }) if Instant::now() < deadline => glommio::timer::sleep(Duration::from_millis(1)).await,
            Err(e) => return Err(e),
        }
    }
}

/// `err` says that the file system is full, in the words a client sees.
fn assert_no_space(err: &StorageError) {
    match err {
        StorageError::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}"),
        other => panic!("expected a no-space Io error: {other:?}"),
    }
    assert!(err.to_string().contains("No space left on device"), "{err}");
}

/// Reopens twice: as after a process restart (the files as they are), then after a
/// simulated power loss (the files as last synced); `want` both times, no torn tail.
async fn check_after_restarts(dir: &Path, opts: &StoreOptions, faults: &FaultFs, want: &BTreeMap<String, Vec<u8>>, absent: &[&str]) {
    let (store, report) = open_faulty(dir, opts, faults).await;
    assert_eq!(report.truncated_tail, None, "the failed round's bytes were cut exactly");
    check(&store, want).await;
    for k in absent {
        assert_eq!(get(&store, k).await, None, "{k} after a restart");
    }
    drop(store);
    faults.power_loss().await.unwrap();
    let (store, _) = open_faulty(dir, opts, faults).await;
    check(&store, want).await;
    for k in absent {
        assert_eq!(get(&store, k).await, None, "{k} after a power loss");
    }
}

/// One batch whose round hits `injections`: the commit fails with `errno` (or any `Io`
/// error when `None`), and the batch is taken back everywhere. Then, if `resumes` (a
/// full disk met by a write), a later write succeeds without reopening; otherwise
/// writes are refused.
fn check_failed_batch(injections: &[Injection], errno: Option<i32>, resumes: bool) {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut want = acknowledged_start(&store).await;
        let before = store.stats();
        for i in injections {
            faults.inject(i.clone());
        }
        let commit = store.apply(vec![put("a", b"2"), put("new", b"3"), del("big"), put("gone", b"back")]).unwrap();
        assert_eq!(get(&store, "new").await, Some(b"3".to_vec()), "visible before its ack, as always");
        match commit.await {
            Err(StorageError::Io { source, .. }) => {
                if let Some(errno) = errno {
                    assert_eq!(source.raw_os_error(), Some(errno), "{source}");
                }
            }
            other => panic!("the commit must fail with Io: {other:?}"),
        }
        assert_eq!(faults.armed(), 0, "the fault was hit");
        check_taken_back(&store, &want).await;
        let after = store.stats();
        assert_eq!(
            (after.keys_per_ns, after.segments, after.disk_bytes, after.live_bytes, after.dead_bytes),
            (before.keys_per_ns, before.segments, before.disk_bytes, before.live_bytes, before.dead_bytes),
            "the accounting is back too"
        );
        if resumes {
            apply_when_accepted(&store, vec![put("later", &[5; 100]), put("a", b"4")]).await.expect("writes resume");
            want.insert("later".into(), vec![5; 100]);
            want.insert("a".into(), b"4".to_vec());
            check(&store, &want).await;
        } else {
            check_poisoned(&store).await;
        }
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &["gone", "new"]).await;
    });
}
/// Every way a group-commit round can fail, each taken back the same way:
/// - the write fails (EIO, ENOSPC), or its bytes reach the file and it still reports
///   an error (they must be cut), or it comes back short and so does its retry;
/// - the write completes (the bytes are in the file) and its fdatasync fails (EIO,
///   ENOSPC), or the fdatasync made them durable and still reported an error (only the
///   truncation and its fdatasync keep them from coming back after a power loss).
///
/// Writes resume after the write failures that mean a full disk (ENOSPC, a short write
/// whose retry gets ENOSPC); after the others, and after every fdatasync failure, the
/// store stays poisoned.
#[test]
fn a_failed_write_or_fdatasync_is_taken_back() {
    let short_then = |errno| [on(Op::Write, None, Effect::Short), Injection { nth: 2, ..on(Op::Write, None, Effect::Fail(errno)) }];
    let cases: [(&str, &[Injection], Option<i32>, bool); 9] = [
        ("write EIO", &[on(Op::Write, None, Effect::Fail(libc::EIO))], Some(libc::EIO), false),
        ("write ENOSPC", &[on(Op::Write, None, Effect::Fail(libc::ENOSPC))], Some(libc::ENOSPC), true),
        ("write landed, then EIO", &[on(Op::Write, None, Effect::Landed(libc::EIO))], Some(libc::EIO), false),
        ("write landed, then ENOSPC", &[on(Op::Write, None, Effect::Landed(libc::ENOSPC))], Some(libc::ENOSPC), true),
        ("short write, then ENOSPC", &short_then(libc::ENOSPC), Some(libc::ENOSPC), true),
        ("short write, then EIO", &short_then(libc::EIO), Some(libc::EIO), false),
        ("fdatasync EIO", &[on(Op::Sync, None, Effect::Fail(libc::EIO))], Some(libc::EIO), false),
        ("fdatasync ENOSPC", &[on(Op::Sync, None, Effect::Fail(libc::ENOSPC))], Some(libc::ENOSPC), false),
        ("fdatasync persisted, then EIO", &[on(Op::Sync, None, Effect::Landed(libc::EIO))], Some(libc::EIO), false),
    ];
    for (name, injections, errno, resumes) in cases {
        eprintln!("case: {name}");
        check_failed_batch(injections, errno, resumes);
    }
}

/// A short write alone (the space was there for the rest after all) is retried and the
/// round succeeds.
#[test]
fn a_short_write_is_retried_once() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut want = acknowledged_start(&store).await;
        faults.inject(on(Op::Write, None, Effect::Short));
        let writes = faults.count(Op::Write);
        apply(&store, vec![put("long", &[3; 9000])]).await;
        assert_eq!(faults.count(Op::Write) - writes, 2, "the short write and its retry");
        assert_eq!(store.reverts(), 0);
        want.insert("long".into(), vec![3; 9000]);
        check(&store, &want).await;
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &[]).await;
    });
}

/// The user's steps (issue 15): writes until the disk is full. The write that meets it
/// fails with "No space left on device" and is never visible; while the disk stays full
/// every write fails the same way and nothing changes (reads keep working); once space
/// is freed, writes succeed without reopening — into the same segment, then across a
/// segment roll — and everything acknowledged survives a restart and a power loss.
#[test]
fn a_full_disk_fails_writes_until_space_is_freed() {
    check_full_disk(Durability::Kernel);
}

/// The same at `Relaxed` (acknowledged when written; the background sync goes on after
/// the resume).
#[test]
fn a_full_disk_fails_writes_until_space_is_freed_relaxed() {
    check_full_disk(Durability::Relaxed);
}

fn check_full_disk(durability: Durability) {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { segment_bytes: 64 << 10, inline_value_max: 16, compaction_dead_ratio: 2.0, durability, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut want = BTreeMap::new();
        for i in 0..5u8 {
            let k = format!("k{i}");
            apply(&store, vec![put(&k, &[i; 3000])]).await;
            want.insert(k, vec![i; 3000]);
        }
        let before = store.stats();
        faults.set_disk_full(true);
        let writes = faults.count(Op::Write);
        let err = apply_when_accepted(&store, vec![put("f0", &[9; 3000]), put("k0", &[9; 3000]), del("k1")]).await.unwrap_err();
        assert_no_space(&err);
        assert_eq!(faults.count(Op::Write) - writes, 2, "a short write, then the retry of the rest");
        for attempt in 0..3 {
            assert_eq!(get(&store, "f0").await, None);
            check(&store, &want).await;
            let err = apply_when_accepted(&store, vec![put(&format!("f{attempt}"), &[9; 3000]), del("k2")]).await.unwrap_err();
            assert_no_space(&err);
        }
        check(&store, &want).await;
        assert_eq!(store.reverts(), 4, "each failed write was taken back");
        let after = store.stats();
        assert_eq!(
            (after.keys_per_ns, after.segments, after.disk_bytes, after.live_bytes),
            (before.keys_per_ns, before.segments, before.disk_bytes, before.live_bytes)
        );
        faults.set_disk_full(false);
        // Space freed: the same segment first.
        apply_when_accepted(&store, vec![put("k0", &[8; 3000]), put("n0", &[8; 3000]), del("k1")]).await.expect("writes resume");
        want.insert("k0".into(), vec![8; 3000]);
        want.insert("n0".into(), vec![8; 3000]);
        want.remove("k1");
        check(&store, &want).await;
        assert_eq!(store.stats().segments, 1);
        // Then across a segment roll (about 21 records of 3000 bytes per segment).
        for i in 1..30u8 {
            let k = format!("n{i}");
            apply_when_accepted(&store, vec![put(&k, &[i; 3000])]).await.unwrap();
            want.insert(k, vec![i; 3000]);
        }
        assert!(store.stats().segments >= 2);
        check(&store, &want).await;
        store.sync().await.unwrap();
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &["f0", "f1", "f2"]).await;
    });
}

/// A round that fills segment 1 past the block its acknowledged end is in, then meets
/// a full disk when writing the next segment: the round is taken back, and writes
/// resume in segment 1, whose last partial block is read back from the file (the RAM
/// copy of the tail had moved past it), then roll to segment 2 again.
#[test]
fn writes_resume_in_the_old_segment_after_a_full_disk_in_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        // Records of 30 + 2000 bytes: acknowledged end 4096 + 2 × 2030 = 8156 (block 1);
        // the failed round fills segment 1 to 16276 (block 3) and starts segment 2.
        let opts = StoreOptions { segment_bytes: 16 << 10, inline_value_max: 16, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let value = |i: u8| vec![i; 2000];
        let mut want = BTreeMap::new();
        for i in 0..2u8 {
            apply(&store, vec![put(&format!("k{i}"), &value(i))]).await;
            want.insert(format!("k{i}"), value(i));
        }
        faults.inject(on(Op::Write, Some("00000002.vlog"), Effect::Fail(libc::ENOSPC)));
        let commits: Vec<_> = (2..7u8).map(|i| store.apply(vec![put(&format!("k{i}"), &value(i))]).unwrap()).collect();
        assert_eq!(store.stats().segments, 2);
        for c in commits {
            assert_no_space(&c.await.unwrap_err());
        }
        assert_eq!(faults.armed(), 0, "the fault was hit");
        check(&store, &want).await;
        for i in 2..7u8 {
            apply_when_accepted(&store, vec![put(&format!("k{i}"), &value(i + 10))]).await.expect("writes resume");
            want.insert(format!("k{i}"), value(i + 10));
            check(&store, &want).await;
        }
        assert_eq!(segment_ids(tmp.path()), vec![1, 2]);
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &[]).await;
    });
}

/// A commit future first polled after its round failed and the store resumed (and a
/// later round was acknowledged) still fails: its write was taken back.
#[test]
fn a_commit_polled_only_after_the_resume_still_fails() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut want = acknowledged_start(&store).await;
        faults.fail_next(Op::Write, libc::ENOSPC);
        let unpolled = store.apply(vec![put("new", b"1")]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.reverts() == 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        apply_when_accepted(&store, vec![put("later", b"2")]).await.expect("writes resume");
        want.insert("later".into(), b"2".to_vec());
        assert_no_space(&unpolled.await.unwrap_err());
        check(&store, &want).await;
        assert_eq!(get(&store, "new").await, None);
    });
}

/// A failed fdatasync (here with ENOSPC) poisons the store for good: the page cache's
/// state is unknown after it, so freeing space does not bring writes back.
#[test]
fn a_failed_fdatasync_poisons_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let want = acknowledged_start(&store).await;
        faults.fail_next(Op::Sync, libc::ENOSPC);
        assert!(store.apply(vec![put("new", b"1")]).unwrap().await.is_err());
        for _ in 0..5 {
            glommio::timer::sleep(Duration::from_millis(20)).await;
            check_poisoned(&store).await;
        }
        check(&store, &want).await;
        assert_eq!(get(&store, "new").await, None);
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &["new"]).await;
    });
}

/// Segments of 8 KiB (three 1000-byte records each), compacted at `dead_ratio`.
fn segments_of_8k(dead_ratio: f64) -> StoreOptions {
    StoreOptions { segment_bytes: 8192, inline_value_max: 16, compaction_dead_ratio: dead_ratio, ..StoreOptions::default() }
}

/// A round that seals segment 1 (one record still fits in it) and starts segment 2
/// (the next record does not), hit by `injection`: both records are taken back,
/// segment 2 is removed, segment 1 is cut back to its acknowledged end.
fn check_failed_roll(injection: Injection) {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        // Header 4096 + records of 28 + 2 + 1000 bytes: three fit in 8192, a fourth rolls.
        let opts = segments_of_8k(2.0);
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let value = |i: u8| vec![i; 1000];
        apply(&store, vec![put("k0", &value(0))]).await;
        apply(&store, vec![put("k1", &value(1))]).await;
        let want = BTreeMap::from([("k0".into(), value(0)), ("k1".into(), value(1))]);
        faults.inject(injection);
        let fits = store.apply(vec![put("k2", &value(2))]).unwrap();
        let rolls = store.apply(vec![put("k3", &value(3)), put("k0", &value(9))]).unwrap();
        assert_eq!(store.stats().segments, 2);
        assert!(fits.await.is_err());
        assert!(rolls.await.is_err());
        assert_eq!(faults.armed(), 0, "the fault was hit");
        assert_eq!(store.reverts(), 1);
        check(&store, &want).await;
        assert_eq!(get(&store, "k2").await, None);
        assert_eq!(get(&store, "k3").await, None);
        assert_eq!(store.stats().segments, 1);
        // The rollback runs in the committer task, after the commits failed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while segment_ids(tmp.path()) != [1] && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(segment_ids(tmp.path()), vec![1], "the new segment is removed");
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &["k2", "k3"]).await;
        assert_eq!(segment_ids(tmp.path()), vec![1], "the removal was made durable");
    });
}

/// Segment 1 is written and synced in that round; the write to segment 2 fails.
#[test]
fn failed_write_to_the_new_segment_takes_back_the_whole_round() {
    check_failed_roll(on(Op::Write, Some("00000002.vlog"), Effect::Fail(libc::EIO)));
}

#[test]
fn failed_fdatasync_of_the_sealed_segment_takes_back_the_round() {
    check_failed_roll(on(Op::Sync, Some("00000001.vlog"), Effect::Fail(libc::ENOSPC)));
}

/// Segment 2 is fully written and synced; only the directory fsync fails.
#[test]
fn failed_directory_fsync_after_creating_a_segment_takes_back_the_round() {
    check_failed_roll(on(Op::DirSync, None, Effect::Fail(libc::EIO)));
}

#[test]
fn fdatasync_of_the_new_segment_that_persisted_then_failed_takes_back_the_round() {
    check_failed_roll(on(Op::Sync, Some("00000002.vlog"), Effect::Landed(libc::EIO)));
}

/// Segment 1 with three 1000-byte values, two of them overwritten in segment 2, so
/// segment 1 is two-thirds dead; then compaction copies "k3" into segment 2 and its
/// forced round hits `injection`.
fn check_failed_compaction(injection: Injection) {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = segments_of_8k(0.5);
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        for k in ["k1", "k2", "k3"] {
            apply(&store, vec![put(k, &[1; 1000])]).await;
        }
        for k in ["k1", "k2"] {
            apply(&store, vec![put(k, &[2; 1000])]).await;
        }
        assert_eq!(segment_ids(tmp.path()), vec![1, 2]);
        let want = BTreeMap::from([("k1".into(), vec![2; 1000]), ("k2".into(), vec![2; 1000]), ("k3".into(), vec![1; 1000])]);
        // A read of k3 (in segment 1) issued before compaction moves it.
        let reader = store.clone();
        let mut read_before = Box::pin(async move { reader.get(NS_KV, b"k3").await });
        let early = poll_once(&mut read_before).await;
        faults.inject(injection);
        assert!(matches!(store.compact_now().await, Err(StorageError::Io { .. })));
        assert_eq!(faults.armed(), 0, "the fault was hit");
        assert_eq!(store.reverts(), 1);
        assert_eq!(store.stats().compactions, 0);
        let read_before = match early {
            Some(r) => r,
            None => read_before.await,
        };
        assert_eq!(read_before.unwrap(), Some(vec![1; 1000]));
        check(&store, &want).await; // k3 is read from segment 1 again
        assert_eq!(segment_ids(tmp.path()), vec![1, 2], "segment 1 is kept");
        drop(store);
        check_after_restarts(tmp.path(), &opts, &faults, &want, &[]).await;
    });
}

#[test]
fn failed_fdatasync_in_compactions_copy_round_keeps_the_old_segment() {
    check_failed_compaction(on(Op::Sync, None, Effect::Fail(libc::EIO)));
}

#[test]
fn failed_write_in_compactions_copy_round_keeps_the_old_segment() {
    check_failed_compaction(on(Op::Write, None, Effect::Landed(libc::ENOSPC)));
}

/// Compaction that succeeds deletes a segment a read still holds: the read completes.
#[test]
fn a_read_in_flight_survives_compaction_deleting_its_segment() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = segments_of_8k(0.5);
        let (_faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        for (k, v) in [("k1", 1), ("k2", 1), ("k3", 1), ("k1", 2), ("k2", 2)] {
            apply(&store, vec![put(k, &[v; 1000])]).await;
        }
        let reader = store.clone();
        let mut read = Box::pin(async move { reader.get(NS_KV, b"k3").await });
        let early = poll_once(&mut read).await;
        assert_eq!(store.compact_now().await.unwrap(), 1);
        assert_eq!(segment_ids(tmp.path()), vec![2]);
        let got = match early {
            Some(r) => r,
            None => read.await,
        };
        assert_eq!(got.unwrap(), Some(vec![1; 1000]));
        assert_eq!(get(&store, "k3").await, Some(vec![1; 1000]));
    });
}

/// Writes issued one after another across several rounds while a sync fails: every
/// commit up to some point succeeds, every later one fails, and the store (then and
/// after restarts) holds exactly the state of the successful prefix.
#[test]
fn every_write_after_a_failed_round_fails_and_is_taken_back() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { segment_bytes: 8192, inline_value_max: 16, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        faults.inject(Injection { op: Op::Sync, nth: 4, file: None, effect: Effect::Fail(libc::EIO) });
        let mut commits = Vec::new();
        let mut states = vec![BTreeMap::new()];
        for i in 0..40usize {
            let mut next = states.last().unwrap().clone();
            let k = format!("k{}", i % 7);
            let m = if i % 5 == 4 {
                next.remove(&k);
                del(&k)
            } else {
                let v = vec![i as u8; 300 + i * 10];
                next.insert(k.clone(), v.clone());
                put(&k, &v)
            };
            commits.push(store.apply(vec![m]).unwrap());
            states.push(next);
            if i % 3 == 2 {
                // Lets the committer start a round (it yields once itself first).
                for _ in 0..3 {
                    yield_now().await;
                }
            }
        }
        let mut acked = 0;
        for (i, c) in commits.into_iter().enumerate() {
            match c.await {
                Ok(()) => {
                    assert_eq!(acked, i, "no success after a failure");
                    acked = i + 1;
                }
                Err(StorageError::Io { .. }) => {}
                Err(e) => panic!("commit {i}: {e}"),
            }
        }
        assert!(acked > 0 && acked < 40, "some rounds succeeded, then one failed ({acked} acknowledged)");
        let want = &states[acked];
        check(&store, want).await;
        drop(store);
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, want).await;
        drop(store);
        faults.power_loss().await.unwrap();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, want).await;
    });
}

/// `Relaxed`: writes are acknowledged when written; a failed background sync poisons
/// the store but does not take them back (they were acknowledged). They survive a
/// restart (the process dying); after a power loss they are gone, which is the tier's
/// documented limit.
#[test]
fn relaxed_background_sync_failure_keeps_acknowledged_writes() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { durability: Durability::Relaxed, inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let synced = BTreeMap::from([("a".into(), b"1".to_vec())]);
        apply(&store, vec![put("a", b"1")]).await;
        store.sync().await.unwrap();
        faults.fail_next(Op::Sync, libc::EIO);
        apply(&store, vec![put("b", &[2; 100]), put("a", b"3")]).await;
        let acked = BTreeMap::from([("a".into(), b"3".to_vec()), ("b".into(), vec![2; 100])]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.apply(vec![]).is_ok() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(store.apply(vec![put("c", b"1")]), Err(StorageError::Poisoned)));
        assert_eq!(store.reverts(), 0, "nothing unacknowledged to take back");
        check(&store, &acked).await;
        drop(store);
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &acked).await;
        drop(store);
        faults.power_loss().await.unwrap();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &synced).await;
    });
}
