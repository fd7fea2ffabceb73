//! Crate-internal tests that look at internals (the undo log) while faults are injected
//! through the file layer. The fault scenarios through the public API are in
//! `tests/store/faults.rs` and `tests/store/power_loss.rs`.

use std::path::Path;

use glommio::{LocalExecutorBuilder, Placement};

use crate::fault::{Effect, FaultFs, Injection, Op};
use crate::keydir::key_hash;
use crate::store::Snapshot;
use crate::{Lookup, Mutation, Ns, StorageError, Store, StoreOptions, NS_KV};

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move { f().await })
        .expect("start executor")
        .join()
        .expect("executor thread");
}

fn put(key: &str, value: &str) -> Mutation {
    Mutation::Put { ns: NS_KV, key: key.into(), value: value.into() }
}

async fn open(dir: &Path, faults: &FaultFs) -> Store {
    Store::open_with_faults(dir, StoreOptions::default(), faults).await.expect("open").0
}

/// Puts "k" = `i` once the store accepts writes (it refuses them while it takes back a
/// write that met a full disk).
async fn write_when_accepted(store: &Store, i: usize) -> Result<(), StorageError> {
    loop {
        match store.apply(vec![put("k", &i.to_string())]) {
            Ok(c) => return c.await,
            Err(StorageError::Io { .. }) => glommio::timer::sleep(std::time::Duration::from_millis(1)).await,
            Err(e) => return Err(e),
        }
    }
}

/// Writes that meet a full disk alternate with writes that succeed: the store resumes
/// after each, and its list of failed rounds keeps only what a live commit future can
/// need: nothing once the futures made before a failure are gone.
#[test]
fn full_disk_failures_alternating_with_successes_keep_the_failed_list_short() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let faults = FaultFs::new();
        let store = open(&dir, &faults).await;
        let fail_once = |value: &str| {
            faults.fail_next(Op::Write, libc::ENOSPC);
            store.apply(vec![put("f", value)]).unwrap()
        };
        for i in 0..50 {
            let failed = fail_once("x").await;
            assert!(matches!(&failed, Err(StorageError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC)), "{failed:?}");
            write_when_accepted(&store, i).await.unwrap();
            assert_eq!(store.failed_entries(), 0, "after {} failures", i + 1);
        }
        // A future made before a failure and awaited after the resume keeps its entry.
        let held = fail_once("y");
        while store.reverts() < 51 {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        write_when_accepted(&store, 50).await.unwrap();
        assert_eq!(store.failed_entries(), 1);
        assert!(held.await.is_err());
        assert_eq!(store.failed_entries(), 0);
        assert_eq!(store.get(NS_KV, b"k").await.unwrap(), Some(b"50".to_vec()));
        assert_eq!(store.get(NS_KV, b"f").await.unwrap(), None);
        assert_eq!(store.reverts(), 51);
    });
}

#[test]
fn write_failure_poisons_the_store_and_empties_the_undo_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let faults = FaultFs::new();
        let store = open(&dir, &faults).await;
        store.apply(vec![put("a", "1")]).unwrap().await.unwrap();
        assert_eq!(store.undo_len(), 0, "an acknowledged round leaves nothing to undo");
        faults.fail_next(Op::Write, libc::EIO);
        let failed = store.apply(vec![put("b", "2"), put("a", "3")]).unwrap();
        assert_eq!(store.undo_len(), 2);
        let failed = failed.await;
        assert!(matches!(&failed, Err(StorageError::Io { source, .. }) if source.raw_os_error() == Some(libc::EIO)), "{failed:?}");
        assert_eq!(store.undo_len(), 0);
        assert_eq!(store.reverts(), 1);
        assert!(matches!(store.apply(vec![put("c", "3")]), Err(StorageError::Poisoned)));
        assert!(matches!(store.clear_all(), Err(StorageError::Poisoned)));
        assert!(matches!(store.sync().await, Err(StorageError::Poisoned)));
        // Reads still work, and show the acknowledged state.
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::InMemory(b"1".to_vec()));
        assert_eq!(store.lookup(NS_KV, b"b"), Lookup::Missing);
        drop(store);
        let store = open(&dir, &faults).await;
        assert_eq!(store.get(NS_KV, b"a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), None);
    });
}

#[test]
fn undo_log_drains_as_rounds_are_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let faults = FaultFs::new();
        let store = open(&dir, &faults).await;
        let commits: Vec<_> = (0..100).map(|i| store.apply(vec![put(&format!("k{i}"), "v")]).unwrap()).collect();
        assert_eq!(store.undo_len(), 100);
        for c in commits {
            c.await.unwrap();
        }
        assert_eq!(store.undo_len(), 0);
        // forget_where logs only while something is unacknowledged.
        store.forget_where(NS_KV, &mut |k| k == b"k1");
        assert_eq!(store.undo_len(), 0);
        let c = store.clear_all().unwrap();
        store.forget_where(NS_KV, &mut |_| true);
        assert_eq!(store.undo_len(), 2, "the keydir before clear_all, its tombstone bytes");
        c.await.unwrap();
        assert_eq!(store.undo_len(), 0);
        assert_eq!(store.reverts(), 0);
    });
}

fn del(key: &str) -> Mutation {
    Mutation::Delete { ns: NS_KV, key: key.into() }
}

/// After a revert: every keydir entry is the one of `before`, and so are the live and
/// tombstone bytes of `before`'s segments; a segment started since has none (it is
/// dropped when the files are cut back).
fn assert_reverted_to(store: &Store, before: &Snapshot) {
    let after = store.snapshot();
    assert_eq!(after.entries, before.entries, "the keydir is the acknowledged one");
    assert_eq!(after.ttls, before.ttls, "the expiry times are the acknowledged ones");
    assert_eq!(after.chains, before.chains, "the append pieces are the acknowledged ones");
    for (id, live, tomb) in &after.segs {
        match before.segs.iter().find(|(b, ..)| b == id) {
            Some(b) => assert_eq!(&(*id, *live, *tomb), b, "segment {id}'s live and tombstone bytes"),
            None => assert_eq!((*live, *tomb), (0, 0), "segment {id}, started by the failed round"),
        }
    }
}

/// Real keys whose 48-bit bucket hashes collide (found by a search over `k{i}`): the undo
/// log names a put's key by its bucket and its position there, not by its bytes.
const COLLIDING: [(&str, &str); 2] = [("k52782211", "k91622924"), ("k56577472", "k118284703")];

#[test]
fn revert_finds_keys_whose_bucket_hashes_collide() {
    for (a, b) in COLLIDING {
        assert_eq!(key_hash(a.as_bytes()), key_hash(b.as_bytes()), "{a} and {b} share a bucket");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let [(a1, b1), (a2, b2)] = COLLIDING;
        let faults = FaultFs::new();
        let store = open(&dir, &faults).await;
        // Acknowledged: a1 alone in its bucket, a2 and b2 sharing one.
        store.apply(vec![put(a1, "1"), put(a2, "x"), put(b2, "y")]).unwrap().await.unwrap();
        let before = store.snapshot();
        faults.fail_next(Op::Write, libc::EIO);
        // One round: b1 joins a1's bucket, both change several times, a1 goes and comes
        // back; b2 goes, a2 changes, b2 comes back.
        let batches = vec![
            vec![put(b1, "2")],
            vec![put(a1, "3"), put(b1, "4")],
            vec![del(a1)],
            vec![put(a1, "5"), put(b1, "6")],
            vec![del(b2), put(a2, "z")],
            vec![put(a2, "w"), put(b2, "v")],
        ];
        let commits: Vec<_> = batches.into_iter().map(|b| store.apply(b).unwrap()).collect();
        assert_eq!(store.lookup(NS_KV, b2.as_bytes()), Lookup::InMemory(b"v".to_vec()));
        for c in commits {
            assert!(c.await.is_err());
        }
        assert_eq!(store.reverts(), 1);
        assert_reverted_to(&store, &before);
        assert_eq!(store.lookup(NS_KV, a1.as_bytes()), Lookup::InMemory(b"1".to_vec()));
        assert_eq!(store.lookup(NS_KV, b1.as_bytes()), Lookup::Missing);
        assert_eq!(store.lookup(NS_KV, a2.as_bytes()), Lookup::InMemory(b"x".to_vec()));
        assert_eq!(store.lookup(NS_KV, b2.as_bytes()), Lookup::InMemory(b"y".to_vec()));
        store.rolled_back().await;
    });
}

/// xorshift64*: the randomized tests' generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    /// 1 to 4 puts and deletes over 40 keys in two namespaces; values of 0 to 150 bytes
    /// (short and longer values alike; the lengths once chose where a value was kept).
    fn batch(&mut self) -> Vec<Mutation> {
        (0..1 + self.below(4))
            .map(|_| {
                let (ns, key) = (self.below(2) as Ns, format!("k{}", self.below(40)).into_bytes());
                if self.below(4) == 0 {
                    Mutation::Delete { ns, key }
                } else {
                    let len = [self.below(23), self.below(41), self.below(151)][self.below(3) as usize] as usize;
                    let value = vec![self.below(256) as u8; len];
                    match self.below(3) {
                        // A TTL far ahead (nothing expires during the test): set, changed,
                        // or removed again by a later put or delete.
                        0 => Mutation::PutExpiring { ns, key, value, expire_at: 4_000_000_000_000 + self.below(5) },
                        _ => Mutation::Put { ns, key, value },
                    }
                }
            })
            .collect()
    }

    /// An APPEND of 300 to 2000 bytes to one of six of the batches' keys: pieces once a
    /// value passes 4 KiB, folds (rewrites) at times.
    async fn append(&mut self, store: &Store) -> Result<crate::Commit, StorageError> {
        let (ns, key) = (self.below(2) as Ns, format!("k{}", self.below(3)).into_bytes());
        let tail = vec![self.below(256) as u8; 300 + self.below(1700) as usize];
        match store.append(ns, &key, &tail, usize::MAX).await? {
            crate::Appended::Len(_, commit) => Ok(commit),
            crate::Appended::TooLong => unreachable!("no limit"),
        }
    }

    /// A `forget_where` predicate: keys ending in one digit.
    fn forget(&mut self) -> impl FnMut(&[u8]) -> bool {
        let d = b'0' + self.below(10) as u8;
        move |k: &[u8]| k.last() == Some(&d)
    }
}

/// One random history: acknowledged rounds of puts, overwrites, deletes, `forget_where`,
/// `clear_all` and compactions, then a round that fails with more of each, compaction's
/// moves and writes in it together. With 2-bit bucket hashes, most keys share a bucket,
/// many at a position of 15 or more. After the failure the keydir and the segments'
/// accounting are exactly the acknowledged ones.
async fn revert_scenario(dir: &Path, seed: u64) {
    crate::keydir::TEST_HASH_MASK.with(|m| m.set(0b11));
    let opts = StoreOptions { segment_bytes: 8192, compaction_dead_ratio: 0.0, ..StoreOptions::default() };
    let faults = FaultFs::new();
    let store = Store::open_with_faults(dir, opts.clone(), &faults).await.expect("open").0;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut commits = Vec::new();
    let steps = 40 + rng.below(160);
    for step in 0..steps {
        match rng.below(40) {
            0 => commits.push(store.clear_all().unwrap()),
            1 | 2 => {
                store.forget_where(1, &mut rng.forget());
            }
            // Not in the second half, so that the failed round has segments to compact.
            3 | 4 if step < steps / 2 => {
                store.compact_now().await.unwrap();
            }
            5..=9 => {
                for c in commits.drain(..) {
                    c.await.unwrap();
                }
            }
            10..=24 => commits.push(rng.append(&store).await.unwrap()),
            _ => commits.push(store.apply(rng.batch()).unwrap()),
        }
    }
    for c in commits.drain(..) {
        c.await.unwrap();
    }
    store.wait_for_folds().await;
    store.sync().await.unwrap();
    let before = store.snapshot();
    if !before.chains.is_empty() {
        SCENARIOS_WITH_PIECES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    // The failed window: writes (round R1, whose fdatasync happens and then fails),
    // compaction's copies (appended while R1 is in flight) and more writes after them,
    // some overwriting keys compaction just moved.
    faults.inject(Injection { op: Op::Sync, nth: 1, file: None, effect: Effect::Landed(libc::EIO) });
    let mut commits: Vec<_> = (0..1 + rng.below(10)).map(|_| store.apply(rng.batch()).unwrap()).collect();
    let compaction = {
        let store = store.clone();
        glommio::spawn_local(async move { store.compact_now().await })
    };
    for _ in 0..10_000 {
        glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
        if store.unwritten_bytes() > 0 || store.reverts() > 0 {
            break;
        }
    }
    for _ in 0..rng.below(30) {
        match rng.below(30) {
            0 => commits.extend(store.clear_all().ok()),
            // Only before the failure: a poisoned store's `forget_where` (nothing is
            // unacknowledged any more) belongs to no round.
            1 | 2 if store.reverts() == 0 => {
                store.forget_where(1, &mut rng.forget());
            }
            3..=8 => commits.extend(rng.append(&store).await.ok()),
            _ => commits.extend(store.apply(rng.batch()).ok()),
        }
    }
    for c in commits {
        assert!(c.await.is_err(), "seed {seed}: nothing after the failure is acknowledged");
    }
    // (A segment with nothing left to copy is deleted without a sync: that can succeed.)
    let _ = compaction.await;
    assert_eq!(store.reverts(), 1, "seed {seed}");
    assert_reverted_to(&store, &before);
    store.rolled_back().await;
    if seed.is_multiple_of(4) {
        // A restart finds the same entries, but for those of namespace 1 dropped by
        // `forget_where` (found again, as documented).
        drop(store);
        let store = Store::open_with_faults(dir, opts, &faults).await.expect("reopen").0;
        let ns0 = |s: &Snapshot| s.entries.iter().filter(|(ns, ..)| *ns == 0).cloned().collect::<Vec<_>>();
        assert_eq!(ns0(&store.snapshot()), ns0(&before), "seed {seed}: after a restart");
        let ttls0 = |s: &Snapshot| s.ttls.iter().filter(|(ns, ..)| *ns == 0).cloned().collect::<Vec<_>>();
        assert_eq!(ttls0(&store.snapshot()), ttls0(&before), "seed {seed}: expiry times after a restart");
        let chains0 = |s: &Snapshot| s.chains.iter().filter(|(ns, ..)| *ns == 0).cloned().collect::<Vec<_>>();
        assert_eq!(chains0(&store.snapshot()), chains0(&before), "seed {seed}: append pieces after a restart");
    }
}

/// Scenarios whose acknowledged state had append pieces (the test checks it has some).
static SCENARIOS_WITH_PIECES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn revert_restores_the_acknowledged_keydir_exactly() {
    for seed in 1..=100 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        run(move || async move { revert_scenario(&dir, seed).await });
    }
    let n = SCENARIOS_WITH_PIECES.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n >= 15, "only {n} of 100 scenarios had append pieces when the round failed");
}

/// A data dir written by format version 1 (segment header version 1, kinds 1–4) opens
/// unchanged; the first write after it goes to a new segment of the current version (3),
/// never into the version 1 segment, and both read back after a restart.
#[test]
fn a_version_1_segment_is_read_and_writing_continues_in_a_current_version_segment() {
    use crate::vlog::record::{encode, segment_header_of_version, Op};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("vlog")).unwrap();
    let mut seg = segment_header_of_version(1, 1);
    encode(&mut seg, 1, &[Op::Put { ns: 0, key: b"a", value: b"1" }], |_, _, _| {});
    encode(&mut seg, 2, &[Op::Put { ns: 0, key: b"b", value: b"2" }, Op::Delete { ns: 0, key: b"a" }], |_, _, _| {});
    encode(&mut seg, 3, &[Op::Put { ns: 0, key: b"c", value: &[9; 300] }], |_, _, _| {});
    seg.resize(seg.len().next_multiple_of(4096), 0);
    let v1 = dir.join("vlog/00000001.vlog");
    std::fs::write(&v1, &seg).unwrap();
    let version = |p: &Path| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap());
    run(move || async move {
        let (store, report) = Store::open(&dir, StoreOptions::default()).await.unwrap();
        assert_eq!((report.records, report.live_keys), (3, 2));
        assert!(!store.contains(NS_KV, b"a"));
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.get(NS_KV, b"c").await.unwrap(), Some(vec![9; 300]));
        assert_eq!(store.stats().last_seq, 3);
        let far = 4_000_000_000_000;
        store.apply(vec![Mutation::PutExpiring { ns: NS_KV, key: b"d".to_vec(), value: b"4".to_vec(), expire_at: far }]).unwrap().await.unwrap();
        store.apply(vec![put("e", "5")]).unwrap().await.unwrap();
        assert_eq!(std::fs::read(&v1).unwrap(), seg, "the version 1 segment is not written to");
        let v2 = dir.join("vlog/00000002.vlog");
        assert_eq!((version(&v1), version(&v2)), (1, 3));
        drop(store);
        let (store, report) = Store::open(&dir, StoreOptions::default()).await.unwrap();
        assert_eq!((report.segments, report.live_keys), (2, 4));
        assert_eq!(store.expire_at(NS_KV, b"d"), Some(far));
        assert_eq!(store.expire_at(NS_KV, b"b"), Some(0));
        assert_eq!(store.get(NS_KV, b"e").await.unwrap(), Some(b"5".to_vec()));
        // Compacting the version 1 segment copies its live records into version 3.
        store.apply(vec![del("c")]).unwrap().await.unwrap();
        drop(store);
        let opts = StoreOptions { compaction_dead_ratio: 0.0, ..StoreOptions::default() };
        let (store, _) = Store::open(&dir, opts.clone()).await.unwrap();
        assert!(store.compact_now().await.unwrap() >= 1);
        assert!(!v1.exists());
        drop(store);
        let (store, _) = Store::open(&dir, opts).await.unwrap();
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), Some(b"2".to_vec()));
        assert!(!store.contains(NS_KV, b"c"));
        assert_eq!(store.expire_at(NS_KV, b"d"), Some(far));
    });
}

/// Recovery's rule for an append record (FORMAT.md "Appends"): it extends the key's
/// current value iff the key has one and that value is older than the record. In a log
/// the store wrote, every record newer than a piece lies after it (pieces are never
/// copied), so the rule only ever says "extend"; this hand-made log breaks that on
/// purpose to show the guard: a piece older than the put before it, and a piece of a
/// key with no value, are ignored; pieces newer than their base extend it in order.
#[test]
fn recovery_applies_an_append_only_to_an_older_current_value() {
    use crate::vlog::record::{encode, encode_append, segment_header, Op};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("vlog")).unwrap();
    let mut seg = segment_header(1);
    encode(&mut seg, 1, &[Op::Put { ns: 0, key: b"a", value: b"base" }], |_, _, _| {});
    encode_append(&mut seg, 2, 0, b"a", b"+one");
    encode_append(&mut seg, 3, 0, b"a", b"+two");
    encode(&mut seg, 5, &[Op::Put { ns: 0, key: b"b", value: b"new" }], |_, _, _| {});
    encode_append(&mut seg, 4, 0, b"b", b"+older");
    encode_append(&mut seg, 6, 0, b"nobody", b"+orphan");
    seg.resize(seg.len().next_multiple_of(4096), 0);
    std::fs::write(dir.join("vlog/00000001.vlog"), &seg).unwrap();
    run(move || async move {
        let (store, report) = Store::open(&dir, StoreOptions::default()).await.unwrap();
        assert_eq!((report.records, report.live_keys), (6, 2));
        assert_eq!(store.get(NS_KV, b"a").await.unwrap(), Some(b"base+one+two".to_vec()));
        assert_eq!(store.value_len(NS_KV, b"a"), Some(12));
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), Some(b"new".to_vec()));
        assert!(!store.contains(NS_KV, b"nobody"));
        assert_eq!((store.stats().append_chains, store.stats().append_pieces), (1, 2));
    });
}

/// A data dir whose newest segment is of format version 2: the first append goes to a
/// new version 3 segment, never into the version 2 one (which cannot hold kind 6).
#[test]
fn an_append_after_a_version_2_segment_starts_a_version_3_segment() {
    use crate::vlog::record::{encode, segment_header_of_version, Op};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("vlog")).unwrap();
    let mut seg = segment_header_of_version(1, 2);
    encode(&mut seg, 1, &[Op::Put { ns: 0, key: b"a", value: &[7; 8000] }], |_, _, _| {});
    seg.resize(seg.len().next_multiple_of(4096), 0);
    let v2 = dir.join("vlog/00000001.vlog");
    std::fs::write(&v2, &seg).unwrap();
    let version = |p: &Path| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap());
    run(move || async move {
        let (store, _) = Store::open(&dir, StoreOptions::default()).await.unwrap();
        match store.append(NS_KV, b"a", &[8; 100], usize::MAX).await.unwrap() {
            crate::Appended::Len(n, c) => {
                assert_eq!(n, 8100);
                c.await.unwrap();
            }
            crate::Appended::TooLong => unreachable!(),
        }
        assert_eq!(store.stats().append_pieces, 1);
        assert_eq!(std::fs::read(&v2).unwrap(), seg, "the version 2 segment is not written to");
        assert_eq!(version(&dir.join("vlog/00000002.vlog")), 3);
        drop(store);
        let (store, _) = Store::open(&dir, StoreOptions::default()).await.unwrap();
        let mut want = vec![7; 8000];
        want.extend([8; 100]);
        assert_eq!(store.get(NS_KV, b"a").await.unwrap(), Some(want));
    });
}
