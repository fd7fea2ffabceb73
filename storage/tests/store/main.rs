//! Integration tests of `keel_storage::Store`, one binary: each test runs its own glommio
//! executor (small `io_memory`: RLIMIT_MEMLOCK is 8 MiB on these machines) on a temp
//! directory. Helpers live here; tests are grouped by topic in the modules. `faults` and
//! `power_loss` put the fault-injecting file layer (`keel_storage::fault`, enabled by
//! this crate's dev-dependency on itself with the `fault-injection` feature) under the
//! store.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};

use glommio::{LocalExecutorBuilder, Placement};
use keel_storage::fault::FaultFs;
use keel_storage::{Durability, Lookup, Mutation, RecoveryReport, StorageError, Store, StoreOptions, NS_INDEX, NS_KV, NS_VECTOR};

/// Bytes of a record header and of a segment header (storage/FORMAT.md).
const HEADER: u64 = 28;
const SEGMENT_HEADER: u64 = 4096;

fn run<F: Future<Output = ()>>(f: F) {
    LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().expect("build executor").run(f);
}

fn put(key: &str, value: &[u8]) -> Mutation {
    Mutation::Put { ns: NS_KV, key: key.into(), value: value.to_vec() }
}

fn del(key: &str) -> Mutation {
    Mutation::Delete { ns: NS_KV, key: key.into() }
}

fn small_segments() -> StoreOptions {
    StoreOptions { segment_bytes: 64 << 10, inline_value_max: 16, ..StoreOptions::default() }
}

async fn open(dir: &Path, opts: &StoreOptions) -> (Store, RecoveryReport) {
    Store::open(dir, opts.clone()).await.expect("open store")
}

/// Opens the store with every file operation going through `faults`.
async fn open_faulty(dir: &Path, opts: &StoreOptions, faults: &FaultFs) -> (Store, RecoveryReport) {
    Store::open_with_faults(dir, opts.clone(), faults).await.expect("open store")
}

/// A new fault layer and a store opened on it in `dir`.
async fn open_fresh_faulty(dir: &Path, opts: &StoreOptions) -> (FaultFs, Store) {
    let faults = FaultFs::new();
    let (store, _) = open_faulty(dir, opts, &faults).await;
    (faults, store)
}

async fn apply(store: &Store, muts: Vec<Mutation>) {
    store.apply(muts).expect("apply").await.expect("commit");
}

async fn get(store: &Store, key: &str) -> Option<Vec<u8>> {
    store.get(NS_KV, key.as_bytes()).await.expect("get")
}

/// Checks that `store` holds exactly `want` in NS_KV, through `get`, `lookup`, `len`.
async fn check(store: &Store, want: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(store.len(NS_KV), want.len());
    for (k, v) in want {
        assert_eq!(get(store, k).await.as_deref(), Some(&v[..]), "key {k}");
        assert_eq!(store.value_len(NS_KV, k.as_bytes()), Some(v.len()));
        match store.lookup(NS_KV, k.as_bytes()) {
            Lookup::InMemory(got) => assert_eq!(&got, v),
            Lookup::OnDisk => {}
            Lookup::Missing => panic!("{k} missing"),
        }
    }
}

fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join("vlog").join(format!("{id:08}.vlog"))
}

fn segment_ids(dir: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir.join("vlog"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(|n| n.strip_suffix(".vlog")).and_then(|n| n.parse().ok()))
        .collect();
    ids.sort();
    ids
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

mod append;
mod cache;
mod compaction;
mod expiry;
mod faults;
mod model;
mod ops;
mod power_loss;
mod recovery;
