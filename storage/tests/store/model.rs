//! Random operation sequences against a `BTreeMap` model, with restarts and
//! compactions in between, and key expiry on a clock the test moves (a put with a TTL,
//! and time passing: expired keys must vanish, through restarts and compactions, and
//! never come back).

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Put(u8, usize, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<usize>)>),
    /// Several applies in flight at once, awaited together.
    Pipelined(Vec<(u8, Option<usize>)>),
    ClearAll,
    Reopen,
    Compact,
    /// Put with a TTL of this many ms.
    PutExpiring(u8, usize, u8, u64),
    /// The clock moves on by this many ms.
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0..24u8, 0..3000usize, any::<u8>()).prop_map(|(k, n, b)| Step::Put(k, n, b)),
        4 => (0..24u8).prop_map(Step::Delete),
        3 => prop::collection::vec((0..24u8, prop::option::of(0..1500usize)), 1..6).prop_map(Step::Batch),
        2 => prop::collection::vec((0..24u8, prop::option::of(0..1500usize)), 1..12).prop_map(Step::Pipelined),
        1 => Just(Step::ClearAll),
        2 => Just(Step::Reopen),
        2 => Just(Step::Compact),
        5 => (0..24u8, 0..3000usize, any::<u8>(), 1..400u64).prop_map(|(k, n, b, t)| Step::PutExpiring(k, n, b, t)),
        3 => (0..300u64).prop_map(Step::Advance),
    ]
}

fn value(n: usize, b: u8) -> Vec<u8> {
    (0..n).map(|i| b.wrapping_add(i as u8)).collect()
}

fn key(k: u8) -> String {
    format!("key{k}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(steps in prop::collection::vec(step(), 1..60), relaxed in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        run(async {
            let opts = StoreOptions {
                segment_bytes: 16 << 10,
                inline_value_max: 64,
                compaction_dead_ratio: 0.3,
                durability: if relaxed { Durability::Relaxed } else { Durability::Kernel },
                // Small, so that reads go through hits, misses and evictions.
                cache_bytes: 64 << 10,
            };
            let clock = std::rc::Rc::new(std::cell::Cell::new(1_000_000u64));
            let now = { let c = clock.clone(); move || -> keel_storage::Clock { let c = c.clone(); std::rc::Rc::new(move || c.get()) } };
            let open = |dir: &Path, opts: &StoreOptions| { let clock = now(); let (dir, opts) = (dir.to_owned(), opts.clone()); async move { Store::open_with_clock(&dir, opts, clock).await.expect("open store") } };
            let (mut store, _) = open(tmp.path(), &opts).await;
            let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            // Keys of the model with a TTL: their expiry time.
            let mut ttls: BTreeMap<String, u64> = BTreeMap::new();
            for step in steps {
                if !matches!(step, Step::PutExpiring(..) | Step::Advance(_)) {
                    // Every other step writes without a TTL or removes.
                    match &step {
                        Step::Put(k, ..) | Step::Delete(k) => { ttls.remove(&key(*k)); }
                        Step::Batch(ops) | Step::Pipelined(ops) => ops.iter().for_each(|(k, _)| { ttls.remove(&key(*k)); }),
                        Step::ClearAll => ttls.clear(),
                        _ => {}
                    }
                }
                match step {
                    Step::PutExpiring(k, n, b, t) => {
                        let expire_at = clock.get() + t;
                        apply(&store, vec![Mutation::PutExpiring { ns: NS_KV, key: key(k).into(), value: value(n, b), expire_at }]).await;
                        model.insert(key(k), value(n, b));
                        ttls.insert(key(k), expire_at);
                    }
                    Step::Advance(ms) => {
                        clock.set(clock.get() + ms);
                        let now = clock.get();
                        let gone: Vec<String> = ttls.iter().filter(|(_, &at)| at <= now).map(|(k, _)| k.clone()).collect();
                        for k in gone {
                            ttls.remove(&k);
                            model.remove(&k);
                        }
                    }
                    Step::Put(k, n, b) => {
                        apply(&store, vec![put(&key(k), &value(n, b))]).await;
                        model.insert(key(k), value(n, b));
                    }
                    Step::Delete(k) => {
                        apply(&store, vec![del(&key(k))]).await;
                        model.remove(&key(k));
                    }
                    Step::Batch(ops) => {
                        let muts = ops.iter().map(|(k, v)| match v {
                            Some(n) => put(&key(*k), &value(*n, *k)),
                            None => del(&key(*k)),
                        }).collect();
                        apply(&store, muts).await;
                        for (k, v) in ops {
                            match v {
                                Some(n) => model.insert(key(k), value(n, k)),
                                None => model.remove(&key(k)),
                            };
                        }
                    }
                    Step::Pipelined(ops) => {
                        let mut commits = Vec::new();
                        for (k, v) in ops {
                            let m = match v {
                                Some(n) => put(&key(k), &value(n, k)),
                                None => del(&key(k)),
                            };
                            commits.push(store.apply(vec![m]).unwrap());
                            match v {
                                Some(n) => model.insert(key(k), value(n, k)),
                                None => model.remove(&key(k)),
                            };
                        }
                        check(&store, &model).await;
                        for c in commits {
                            c.await.unwrap();
                        }
                    }
                    Step::ClearAll => {
                        store.clear_all().unwrap().await.unwrap();
                        model.clear();
                    }
                    Step::Reopen => {
                        drop(store);
                        let (s, report) = open(tmp.path(), &opts).await;
                        assert_eq!(report.truncated_tail, None);
                        store = s;
                    }
                    Step::Compact => {
                        store.compact_now().await.unwrap();
                    }
                }
                check(&store, &model).await;
                for k in model.keys() {
                    assert_eq!(store.expire_at(NS_KV, k.as_bytes()), Some(ttls.get(k).copied().unwrap_or(0)), "{k}");
                }
                assert_eq!(store.expires(NS_KV).0, ttls.len());
            }
            drop(store);
            let (store, _) = open(tmp.path(), &opts).await;
            check(&store, &model).await;
            // Expired keys stay gone however far the clock moves and whatever compaction
            // drops; the others keep their TTLs.
            clock.set(clock.get() + 1000);
            for k in ttls.keys() {
                model.remove(k);
            }
            store.expire_now();
            store.sync().await.unwrap();
            while store.compact_now().await.unwrap() > 0 {}
            drop(store);
            let (store, _) = open(tmp.path(), &opts).await;
            check(&store, &model).await;
            assert_eq!(store.expires(NS_KV).0, 0);
            let stats = store.stats();
            let live: u64 = model.iter().map(|(k, v)| k.len() as u64 + v.len() as u64).sum();
            assert!(stats.live_bytes >= live, "{stats:?}");
        });
    }
}
