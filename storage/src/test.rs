//! Crate-internal tests that look at internals (the undo log) while faults are injected
//! through the file layer. The fault scenarios through the public API are in
//! `tests/store/faults.rs` and `tests/store/power_loss.rs`.

use std::path::Path;

use glommio::{LocalExecutorBuilder, Placement};

use crate::fault::{FaultFs, Op};
use crate::{Lookup, Mutation, StorageError, Store, StoreOptions, NS_KV};

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
