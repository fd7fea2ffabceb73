//! [`Shard`]: the shard's state (store + vector registry) and its protocol-neutral request
//! entry point [`Shard::handle`].

use crate::registry::{self, Registry};
use keel_protocol::Value;
use keel_storage::{Commit, Lookup, Mutation, Ns, StorageError, Store, StoreOptions};
use std::cell::RefCell;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Instant;

/// A reply still being computed (a value read from disk).
pub type LaterValue = Pin<Box<dyn Future<Output = Value>>>;

/// One shard's state. Lives on one glommio executor (`!Send`).
pub struct Shard {
    pub(crate) store: Store,
    pub(crate) vectors: RefCell<Registry>,
    pub(crate) started: Instant,
    pub(crate) recovered_keys: usize,
}

/// The outcome of one request.
pub enum Reply {
    /// The reply is known now.
    Ready(Value),
    /// A write: send `ok` once `commit` resolves (the batch is durable at the store's
    /// tier), or `-ERR storage: …` if it fails.
    AfterCommit { commit: Commit, ok: Value },
    /// A read whose value is on its way from disk. The read already fixed *which* value
    /// it returns (the one live when the request ran), so later requests may run before
    /// it resolves.
    Later(LaterValue),
}

impl Reply {
    pub(crate) fn err(msg: impl Into<String>) -> Reply {
        Reply::Ready(Value::err(msg))
    }

    /// Waits for the commit, if any, and returns the reply value.
    pub async fn into_value(self) -> Value {
        match self {
            Reply::Ready(v) => v,
            Reply::AfterCommit { commit, ok } => match commit.await {
                Ok(()) => ok,
                Err(e) => storage_error(&e),
            },
            Reply::Later(v) => v.await,
        }
    }
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        Reply::Ready(v)
    }
}

/// The reply sent instead of one whose frame would exceed the frame limit
/// (`max_frame_len`), on router connections and handed-off ones alike.
pub(crate) fn reply_too_large(e: &keel_protocol::shard::FrameError, max_frame: usize) -> Value {
    let size = match e {
        keel_protocol::shard::FrameError::TooLarge(n) => n.to_string(),
        other => other.to_string(),
    };
    tracing::warn!("a reply of {size} bytes exceeds max_frame_len ({max_frame} bytes); sending an error instead");
    Value::err(format!("ERR reply too large: its {size} bytes exceed max_frame_len ({max_frame} bytes)"))
}

/// `-ERR storage: <error>`, logged where it becomes a reply.
pub(crate) fn storage_error(e: &StorageError) -> Value {
    match e {
        StorageError::Poisoned => tracing::debug!("write refused: {e}"),
        _ => tracing::error!("storage operation failed: {e}"),
    }
    Value::err(format!("ERR storage: {e}"))
}

impl Shard {
    /// Opens (or creates) the store in `dir`, replays it and rebuilds the vector indexes.
    pub async fn open(dir: &Path, opts: StoreOptions) -> anyhow::Result<Shard> {
        let (store, recovery) = Store::open(dir, opts)
            .await
            .map_err(|e| anyhow::anyhow!("open store in {}: {e}", dir.display()))?;
        let (vectors, rebuilt) = registry::rebuild(&store).await?;
        match &recovery.truncated_tail {
            Some((file, offset)) => {
                tracing::warn!("recovery truncated a torn write at the tail of {file} at offset {offset}")
            }
            None => tracing::debug!("recovery found no torn tail"),
        }
        tracing::info!(
            "recovered {} keys ({} KV) from {} segments / {} records; {} vector indexes with {} vectors \
             ({} records of dropped indexes forgotten, {} bad vectors skipped)",
            recovery.live_keys,
            store.len(keel_storage::NS_KV),
            recovery.segments,
            recovery.records,
            rebuilt.indexes,
            rebuilt.vectors,
            rebuilt.orphans_forgotten,
            rebuilt.bad_vectors,
        );
        Ok(Shard {
            store,
            vectors: RefCell::new(vectors),
            started: Instant::now(),
            recovered_keys: recovery.live_keys,
        })
    }

    /// The store (e.g. for stats).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs one request: looks `argv[0]` up in the command table, checks the arity there
    /// (the only check: ops rely on it) and runs the op. The synchronous part and any
    /// disk read happen before this returns; a write's durability wait is left in the
    /// returned [`Reply`]. Keys in `argv` must all belong to this shard (the router
    /// splits multi-key commands). Never panics on any input.
    pub async fn handle(&self, argv: Vec<Vec<u8>>) -> Reply {
        let Some(name) = argv.first() else {
            return Reply::err("ERR empty command");
        };
        let Some(spec) = keel_protocol::command::lookup(name) else {
            return Reply::err(format!("ERR unknown command '{}'", crate::args::show(name)));
        };
        if !spec.arity_ok(argv.len()) {
            return spec.arity_error().into();
        }
        crate::ops::run(self, spec, argv).await
    }

    /// [`Shard::handle`] followed by the durability wait: the reply value.
    pub async fn exec(&self, argv: Vec<Vec<u8>>) -> Value {
        self.handle(argv).await.into_value().await
    }

    /// Writes out everything buffered and fdatasyncs (shutdown).
    pub async fn sync(&self) -> Result<(), StorageError> {
        self.store.sync().await
    }

    /// Reads a live value from RAM or, if need be, from disk, before returning: for
    /// read-modify-write commands, which must not let a later request overtake them.
    pub(crate) async fn read(&self, ns: Ns, key: &[u8]) -> Result<Option<Vec<u8>>, Value> {
        match self.store.lookup(ns, key) {
            Lookup::Missing => Ok(None),
            Lookup::InMemory(v) => Ok(Some(v)),
            Lookup::OnDisk => self.store.get(ns, key).await.map_err(|e| storage_error(&e)),
        }
    }

    /// Starts reading a live value without waiting for the disk: `Ok(v)` when it is in RAM
    /// (or the read finished at once), else a future resolving to `map(value)`.
    ///
    /// The read is polled once here, so `Store::get` has looked the key up and issued
    /// its I/O for the value live *now*; writes that run before the future resolves do
    /// not change what it returns (the record stays readable through the segment file
    /// handle the read holds, even if compaction deletes the file meanwhile).
    pub(crate) async fn start_read(
        &self,
        ns: Ns,
        key: Vec<u8>,
        map: fn(Option<Vec<u8>>) -> Value,
    ) -> Result<Value, LaterValue> {
        match self.store.lookup(ns, &key) {
            Lookup::Missing => Ok(map(None)),
            Lookup::InMemory(v) => Ok(map(Some(v))),
            Lookup::OnDisk => {
                let store = self.store.clone();
                let mut read: LaterValue = Box::pin(async move {
                    match store.get(ns, &key).await {
                        Ok(v) => map(v),
                        Err(e) => storage_error(&e),
                    }
                });
                match futures_lite::future::poll_once(&mut read).await {
                    Some(v) => Ok(v),
                    None => Err(read),
                }
            }
        }
    }

    /// Applies `muts` as one all-or-nothing batch; the reply is `ok` once it is durable.
    pub(crate) fn write(&self, muts: Vec<Mutation>, ok: Value) -> Reply {
        match self.store.apply(muts) {
            Ok(commit) => Reply::AfterCommit { commit, ok },
            Err(e) => Reply::Ready(storage_error(&e)),
        }
    }
}
