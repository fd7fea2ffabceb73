//! keel-shard integration tests, one binary (qdrant style): `ops` drives
//! `Shard::handle` on a temp-dir store inside a glommio executor; `process` runs the
//! whole shard process (`keel_shard::run`) and talks frames to its socket.

/// Builds an argv from anything byte-like: `argv!["SET", "k", blob]`.
macro_rules! argv {
    ($($a:expr),* $(,)?) => { vec![$(AsRef::<[u8]>::as_ref(&$a).to_vec()),*] };
}

mod databases;
mod expiry;
mod ops;
mod process;
mod vectors;

use glommio::{LocalExecutorBuilder, Placement};
use keel_protocol::Value;
use keel_shard::Shard;
use keel_storage::StoreOptions;
use std::future::Future;
use std::path::Path;

/// Runs `f` on a fresh glommio executor on this thread (1 MiB of io_memory: the
/// locked-memory limit is 8 MiB here).
pub fn on_executor<Fut: Future<Output = ()>>(f: impl FnOnce() -> Fut) {
    let ex = LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().expect("start executor");
    ex.run(f());
}

/// Small `inline_value_max` so that longer values take the on-disk read path.
pub fn test_options() -> StoreOptions {
    StoreOptions { inline_value_max: 16, segment_bytes: 1 << 20, ..StoreOptions::default() }
}

pub async fn open(dir: &Path) -> Shard {
    Shard::open(dir, test_options()).await.expect("open shard")
}

/// Runs one request and compares the reply.
pub async fn check(shard: &Shard, argv: Vec<Vec<u8>>, expected: Value) {
    let shown: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned()).collect();
    let got = shard.exec(argv).await;
    assert_eq!(got, expected, "reply to {shown:?}");
}

pub fn ok() -> Value {
    Value::ok()
}

pub fn bulk(s: impl AsRef<[u8]>) -> Value {
    Value::bulk(s)
}

pub fn int(n: i64) -> Value {
    Value::Integer(n)
}

pub fn err(s: &str) -> Value {
    Value::err(s)
}

pub fn simple(s: &str) -> Value {
    Value::Simple(s.to_string())
}

/// Little-endian f32 blob.
pub fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
