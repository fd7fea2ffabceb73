//! Cost of the write path: `Store::apply` (the synchronous part: encode, keydir update)
//! and the whole write with its group commit, at tier `relaxed` so that fdatasync does
//! not hide the CPU cost. Plain `Instant` timing, no harness:
//! `cargo bench -p keel-storage --bench apply` prints the median of 7 runs per case.
//!
//! Cases: single puts of 16-byte keys (inline in the keydir) with 8-byte values,
//! 1000 commits in flight at a time (`KEEL_BENCH_IN_FLIGHT` changes that); overwrites
//! of the same 10,000 keys; batches of 10 puts; batches of 10 overwrites of 100,000 keys
//! (what `redis-benchmark -t mset -r 100000` does to a shard: a keydir larger than the
//! caches, nearly every put replaces an entry). `KEEL_BENCH_CASE=<part of a name>` runs
//! only the matching cases; `KEEL_BENCH_WRITES` sets the mutations per run (default
//! 200,000).

use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use keel_storage::{Durability, Mutation, Store, StoreOptions, NS_KV};

const RUNS: usize = 7;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn in_flight() -> usize {
    env_or("KEEL_BENCH_IN_FLIGHT", 1000)
}

fn writes() -> usize {
    env_or("KEEL_BENCH_WRITES", 200_000)
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// One run: (time inside `apply`, total time) for `KEEL_BENCH_WRITES` mutations.
async fn run_case(batch: usize, distinct: usize) -> (Duration, Duration) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let opts = StoreOptions { durability: Durability::Relaxed, compaction_dead_ratio: 2.0, ..StoreOptions::default() };
    let (store, _) = Store::open(tmp.path(), opts).await.expect("open store");
    let mut in_apply = Duration::ZERO;
    let started = Instant::now();
    let in_flight = in_flight();
    let writes = writes();
    let mut commits = Vec::with_capacity(in_flight);
    let mut i = 0;
    while i < writes {
        let muts: Vec<Mutation> =
            (i..i + batch).map(|j| Mutation::Put { ns: NS_KV, key: key(j % distinct), value: b"value:01".to_vec() }).collect();
        let t = Instant::now();
        commits.push(store.apply(muts).expect("apply"));
        in_apply += t.elapsed();
        i += batch;
        if commits.len() == in_flight {
            for c in commits.drain(..) {
                c.await.expect("commit");
            }
        }
    }
    for c in commits.drain(..) {
        c.await.expect("commit");
    }
    let total = started.elapsed();
    store.sync().await.expect("sync");
    (in_apply, total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("build executor")
        .run(async {
            let only = std::env::var("KEEL_BENCH_CASE").unwrap_or_default();
            let writes = writes();
            let cases = [
                ("put, new keys", 1, writes),
                ("put, 10k keys overwritten", 1, 10_000),
                ("batch of 10", 10, writes),
                ("batch of 10, 100k keys overwritten", 10, 100_000),
            ];
            for (name, batch, distinct) in cases {
                if !name.contains(only.as_str()) {
                    continue;
                }
                let mut apply = Vec::new();
                let mut total = Vec::new();
                for _ in 0..RUNS {
                    let (a, t) = run_case(batch, distinct).await;
                    apply.push(a);
                    total.push(t);
                }
                let per = |d: Duration| d.as_nanos() as f64 / writes as f64;
                println!("{name:36} apply {:7.1} ns/mutation   total {:7.1} ns/mutation", per(median(apply)), per(median(total)));
            }
        });
}
