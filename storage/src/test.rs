//! Crate-internal tests that need hooks (fault injection).

use std::path::Path;

use glommio::{LocalExecutorBuilder, Placement};

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

async fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).await.expect("open").0
}

#[test]
fn write_failure_poisons_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let store = open(&dir).await;
        store.apply(vec![put("a", "1")]).unwrap().await.unwrap();
        store.inject_write_failure();
        let failed = store.apply(vec![put("b", "2")]).unwrap().await;
        assert!(matches!(failed, Err(StorageError::Io { .. })), "{failed:?}");
        assert!(matches!(store.apply(vec![put("c", "3")]), Err(StorageError::Poisoned)));
        assert!(matches!(store.clear_all(), Err(StorageError::Poisoned)));
        assert!(matches!(store.sync().await, Err(StorageError::Poisoned)));
        // Reads still work.
        assert_eq!(store.lookup(NS_KV, b"a"), Lookup::InMemory(b"1".to_vec()));
        drop(store);
        // The failed batch was never acknowledged; the earlier one survives.
        let store = open(&dir).await;
        assert_eq!(store.get(NS_KV, b"a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(NS_KV, b"b").await.unwrap(), None);
    });
}
