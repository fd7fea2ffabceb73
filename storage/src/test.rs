//! Crate-internal tests that inject faults through the file layer. The fault scenarios
//! through the public API are in `tests/store/`.

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
fn write_failure_poisons_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let faults = FaultFs::new();
        let store = open(&dir, &faults).await;
        store.apply(vec![put("a", "1")]).unwrap().await.unwrap();
        faults.fail_next(Op::Write, libc::EIO);
        let failed = store.apply(vec![put("b", "2")]).unwrap().await;
        assert!(matches!(&failed, Err(StorageError::Io { source, .. }) if source.raw_os_error() == Some(libc::EIO)), "{failed:?}");
        assert!(matches!(store.apply(vec![put("c", "3")]), Err(StorageError::Poisoned)));
        assert!(matches!(store.clear_all(), Err(StorageError::Poisoned)));
        assert!(matches!(store.sync().await, Err(StorageError::Poisoned)));
        // Reads still work.
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::InMemory(b"1".to_vec()));
        drop(store);
        // The failed batch was never acknowledged; the earlier one survives.
        let store = open(&dir, &faults).await;
        assert_eq!(store.get(NS_KV, b"a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), None);
    });
}
