//! What survives a simulated power loss (the fault-injecting file layer drops every
//! write that was not fdatasynced, and every file creation or removal whose directory
//! was not fsynced), per durability tier.

use std::time::{Duration, Instant};

use futures_lite::future::{poll_once, yield_now};
use keel_storage::Commit;

use super::*;

/// xorshift64*: a small deterministic generator for seeded workloads.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type State = BTreeMap<String, Vec<u8>>;

/// One logical step of the workload, as the model applies it.
enum Step {
    /// (key, `Some(value)` = put, `None` = delete), all-or-nothing.
    Batch(Vec<(String, Option<Vec<u8>>)>),
    ClearAll,
    /// APPEND (key, tail): pieces once the value passes 4 KiB, folds at times.
    Append(String, Vec<u8>),
}

fn advance(state: &State, step: &Step) -> State {
    let mut next = state.clone();
    match step {
        Step::Batch(muts) => {
            for (k, v) in muts {
                match v {
                    Some(v) => next.insert(k.clone(), v.clone()),
                    None => next.remove(k),
                };
            }
        }
        Step::ClearAll => next.clear(),
        Step::Append(k, tail) => next.entry(k.clone()).or_default().extend_from_slice(tail),
    }
    next
}

fn random_mutation(rng: &mut Rng) -> (String, Option<Vec<u8>>) {
    let k = format!("key{}", rng.below(16));
    if rng.below(4) == 0 {
        return (k, None);
    }
    let (len, byte) = (rng.below(2500) as usize, rng.below(256) as u8);
    (k, Some((0..len).map(|i| byte.wrapping_add(i as u8)).collect()))
}

/// Every live key of NS_KV with its value.
async fn read_all(store: &Store) -> State {
    let mut got = State::new();
    store
        .for_each_live(NS_KV, &mut |k, v| {
            got.insert(String::from_utf8(k.to_vec()).unwrap(), v.to_vec());
        })
        .await
        .unwrap();
    got
}

/// Tier `kernel`, seeded random workload (puts, deletes, batches, clear-alls, appends, with
/// compactions running, many commits in flight, segments of 8 KiB), cut by a power loss
/// at a random moment, five times per seed. After each power loss the store must hold
/// the state after some prefix of the steps issued, at least as long as the
/// acknowledged ones: every acknowledged write is there (or a later one that was in
/// flight), nothing that was never applied appears, and batches stay whole.
#[test]
fn kernel_acknowledged_writes_survive_power_loss() {
    let mut with_pieces = 0;
    for seed in 1..=8 {
        let tmp = tempfile::tempdir().unwrap();
        run(async {
            with_pieces += (power_loss_workload(tmp.path(), seed).await > 0) as usize;
        });
    }
    assert!(with_pieces >= 4, "only {with_pieces} of 8 seeds made append pieces");
}

/// Returns the most append pieces the store held at once (the caller checks that the
/// workload made some).
async fn power_loss_workload(dir: &Path, seed: u64) -> usize {
    let opts = StoreOptions { segment_bytes: 8192, inline_value_max: 16, compaction_dead_ratio: 0.3, durability: Durability::Kernel, ..StoreOptions::default() };
    let faults = FaultFs::new();
    let mut rng = Rng::new(seed);
    let mut state = State::new();
    let mut pieces_seen = 0;
    for cycle in 0..5 {
        let (store, _) = open_faulty(dir, &opts, &faults).await;
        assert_eq!(read_all(&store).await, state, "seed {seed} cycle {cycle}: reopened state");
        let mut steps: Vec<Step> = Vec::new();
        let mut in_flight: Vec<(usize, Commit)> = Vec::new();
        let mut compactions = Vec::new();
        let mut acked = 0; // steps 0..acked are acknowledged
        for _ in 0..20 + rng.below(60) {
            match rng.below(100) {
                50..=64 => {
                    // Fewer keys than the batches use, so that values grow past 4 KiB.
                    let k = format!("key{}", rng.below(5));
                    let (len, byte) = (1 + rng.below(4000) as usize, rng.below(256) as u8);
                    let tail: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                    match store.append(NS_KV, k.as_bytes(), &tail, usize::MAX).await.unwrap() {
                        keel_storage::Appended::Len(_, commit) => in_flight.push((steps.len(), commit)),
                        keel_storage::Appended::TooLong => unreachable!("no limit"),
                    }
                    steps.push(Step::Append(k, tail));
                    pieces_seen = pieces_seen.max(store.stats().append_pieces);
                }
                0..=49 => {
                    let n = if rng.below(4) == 0 { 2 + rng.below(5) } else { 1 };
                    // A key may repeat in a batch: the last mutation wins, in the store and the model.
                    let muts: Vec<(String, Option<Vec<u8>>)> = (0..n).map(|_| random_mutation(&mut rng)).collect();
                    let batch = muts
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => put(k, v),
                            None => del(k),
                        })
                        .collect();
                    in_flight.push((steps.len(), store.apply(batch).unwrap()));
                    steps.push(Step::Batch(muts));
                }
                65..=67 => {
                    in_flight.push((steps.len(), store.clear_all().unwrap()));
                    steps.push(Step::ClearAll);
                }
                68..=74 => {
                    let s = store.clone();
                    compactions.push(glommio::spawn_local(async move {
                        let _ = s.compact_now().await;
                    }));
                }
                _ => {
                    // Wait for the oldest commits in flight.
                    for _ in 0..rng.below(4) + 1 {
                        if in_flight.is_empty() {
                            break;
                        }
                        let (i, c) = in_flight.remove(0);
                        c.await.unwrap_or_else(|e| panic!("seed {seed}: commit of step {i}: {e}"));
                        acked = i + 1;
                    }
                }
            }
            if rng.below(3) == 0 {
                yield_now().await;
            }
        }
        // A random moment: let the committer get part of the way.
        for _ in 0..rng.below(8) {
            yield_now().await;
        }
        if rng.below(3) == 0 {
            glommio::timer::sleep(Duration::from_micros(rng.below(3000))).await;
        }
        // What is acknowledged at this instant (no await from here to the power loss).
        for (i, c) in in_flight.iter_mut() {
            match poll_once(c).await {
                Some(Ok(())) => {
                    assert_eq!(acked, *i, "seed {seed}: acknowledgements come in order");
                    acked = *i + 1;
                }
                Some(Err(e)) => panic!("seed {seed}: commit of step {i}: {e}"),
                None => break,
            }
        }
        drop(store);
        faults.power_loss().await.unwrap();
        for c in compactions {
            c.await;
        }
        drop(in_flight);

        let (store, _) = open_faulty(dir, &opts, &faults).await;
        let got = read_all(&store).await;
        drop(store);
        // The state after each prefix of the steps, from the acknowledged ones on.
        let mut candidate = state.clone();
        let mut matches = false;
        for (k, step) in steps.iter().enumerate() {
            if k >= acked && candidate == got {
                matches = true;
                break;
            }
            candidate = advance(&candidate, step);
        }
        assert!(
            matches || candidate == got,
            "seed {seed} cycle {cycle}: after the power loss the store matches no prefix of the {} steps with at least the {acked} \
             acknowledged ones; keys {:?}",
            steps.len(),
            got.keys().collect::<Vec<_>>()
        );
        state = got;
    }
    pieces_seen
}

/// Tier `kernel`: when a commit resolves, everything it wrote is durable — no write is
/// left unsynced, every segment file created is in the durable directory — with
/// single writes and with many in flight, across segment rolls.
#[test]
fn kernel_acknowledges_only_durable_writes() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { segment_bytes: 8192, inline_value_max: 16, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let check_durable = |when: &str| {
            assert_eq!(faults.unsynced_writes(), 0, "{when}: an acknowledged write is not durable");
            for id in segment_ids(tmp.path()) {
                let path = segment_path(tmp.path(), id).canonicalize().unwrap();
                assert!(faults.durable_image(&path).is_some(), "{when}: segment {id} is not durably in its directory");
            }
        };
        let mut want = BTreeMap::new();
        for i in 0..30usize {
            let (k, v) = (format!("k{}", i % 9), vec![i as u8; 700]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
            check_durable(&format!("after write {i}"));
        }
        let commits: Vec<_> = (0..30usize)
            .map(|i| {
                let (k, v) = (format!("p{i}"), vec![i as u8; 500]);
                want.insert(k.clone(), v.clone());
                store.apply(vec![put(&k, &v)]).unwrap()
            })
            .collect();
        for c in commits {
            c.await.unwrap();
        }
        check_durable("after 30 writes in flight");
        assert!(segment_ids(tmp.path()).len() > 3);
        drop(store);
        faults.power_loss().await.unwrap();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &want).await;
    });
}

/// The bound asserted for tier `relaxed`: a write acknowledged (written) at time t is
/// fdatasynced by t + 100 ms (the background sync period) + 50 ms (the sync itself and
/// timer/scheduling slack).
const RELAXED_BOUND: Duration = Duration::from_millis(150);

/// Tier `relaxed`: writes are acknowledged before they are durable, and become durable
/// within [`RELAXED_BOUND`]: checked on every sync's timestamps, and by a power loss
/// 150 ms after the last acknowledgement, which must keep every acknowledged write.
#[test]
fn relaxed_acknowledged_writes_are_durable_within_the_sync_interval() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let opts = StoreOptions { durability: Durability::Relaxed, inline_value_max: 16, ..StoreOptions::default() };
        let (faults, store) = open_fresh_faulty(tmp.path(), &opts).await;
        let mut rng = Rng::new(7);
        let mut want = BTreeMap::new();
        let started = Instant::now();
        let mut unsynced_at_ack = 0;
        let mut i = 0usize;
        while started.elapsed() < Duration::from_millis(700) {
            let (k, v) = (format!("k{}", i % 20), vec![i as u8; 1 + rng.below(600) as usize]);
            apply(&store, vec![put(&k, &v)]).await;
            want.insert(k, v);
            unsynced_at_ack += (faults.unsynced_writes() > 0) as usize;
            glommio::timer::sleep(Duration::from_millis(rng.below(25))).await;
            i += 1;
        }
        assert!(unsynced_at_ack > 0, "relaxed acknowledges before the sync");
        glommio::timer::sleep(Duration::from_millis(150)).await;
        assert_eq!(faults.oldest_unsynced_write(), None, "a write acknowledged 150 ms ago is not durable");
        let syncs = faults.syncs();
        assert!(syncs.len() >= 4, "the background sync ran ({} syncs)", syncs.len());
        for s in &syncs {
            if let Some(w) = s.oldest_write {
                let lag = s.at.duration_since(w);
                assert!(lag <= RELAXED_BOUND, "a write waited {lag:?} for its fdatasync (bound {RELAXED_BOUND:?})");
            }
        }
        drop(store);
        faults.power_loss().await.unwrap();
        let (store, _) = open_faulty(tmp.path(), &opts, &faults).await;
        check(&store, &want).await;
    });
}
