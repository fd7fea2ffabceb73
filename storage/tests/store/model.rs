//! Random operation sequences against a `BTreeMap` model, with restarts and
//! compactions in between.

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
            let (mut store, _) = open(tmp.path(), &opts).await;
            let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for step in steps {
                match step {
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
            }
            drop(store);
            let (store, _) = open(tmp.path(), &opts).await;
            check(&store, &model).await;
            let stats = store.stats();
            let live: u64 = model.iter().map(|(k, v)| k.len() as u64 + v.len() as u64).sum();
            assert!(stats.live_bytes >= live, "{stats:?}");
        });
    }
}
