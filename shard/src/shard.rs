//! [`Shard`]: the shard's state (store + vector registry) and its protocol-neutral request
//! entry point [`Shard::handle`].

use crate::registry::{self, Registry};
use keel_protocol::command::{Cmd, Route, Spec};
use keel_protocol::Value;
use keel_storage::{Commit, Lookup, Mutation, Ns, RecoveryReport, StorageError, Store, StoreOptions};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Instant;

/// A reply still being computed (a value read from disk).
pub type LaterValue = Pin<Box<dyn Future<Output = Value>>>;

/// One shard's state. Lives on one glommio executor (`!Send`).
pub struct Shard {
    pub(crate) store: Store,
    /// The vector indexes, changed together with the keydir at `Store::apply` time. If
    /// the store takes back unacknowledged writes after a failed write or sync
    /// (`Store::reverts` counts up), they are rebuilt from the store before the next
    /// request that reads them ([`Shard::handle`]).
    pub(crate) vectors: RefCell<Registry>,
    /// The `Store::reverts` count `vectors` was built at.
    vectors_at: Cell<u64>,
    /// One rebuild of `vectors` at a time; requests that need them wait for it.
    resync: glommio::sync::Semaphore,
    /// Vector searches in progress (they scan in slices; no index is compacted
    /// meanwhile).
    pub(crate) vector_scans: Cell<usize>,
    /// Vector searches answered, originals read to re-rank them, and candidates whose
    /// original the re-rank's bound let it skip (INFO `vector_searches`,
    /// `vector_rerank_reads`, `vector_rerank_skipped`).
    pub(crate) search_counts: Cell<crate::ops::vector::SearchCounts>,
    /// The unfiltered searches in progress of each index (by uid) scanning it together,
    /// with the `Registry::epoch` their slots are from (`ops::vector`).
    pub(crate) shared_scans: RefCell<HashMap<u64, (u64, keel_index::SharedScan)>>,
    /// Bulk vector writes whose commit is in progress (`ops::vector`): when the last
    /// ends, the freed load buffers are given back to the OS.
    pub(crate) bulk_writes: std::rc::Rc<Cell<usize>>,
    /// What a vector search waits for between its slices: the executor's next I/O poll.
    pub(crate) io_poll: crate::runtime::poll::IoPoll,
    pub(crate) started: Instant,
    pub(crate) recovered_keys: usize,
    /// Which namespace holds each numbered database (SELECT, SWAPDB).
    pub(crate) dbs: crate::dbs::Databases,
    /// The budget of value bytes read and not yet sent, shared by every connection.
    pub(crate) inflight: crate::inflight::Inflight,
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

/// Whether the command reads the vector indexes (the table's vector group, and
/// KEEL.INFO's counts): those wait for a rebuild after the store took back writes.
fn reads_vectors(spec: &Spec) -> bool {
    spec.group == "vector" || spec.cmd == Cmd::KeelInfo
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
        Shard::with_store(store, recovery).await
    }

    /// [`Shard::open`] with `databases` numbered databases (the config key; at most
    /// `keel_config::MAX_DATABASES`).
    pub async fn open_with(dir: &Path, opts: StoreOptions, databases: usize) -> anyhow::Result<Shard> {
        let (store, recovery) = Store::open(dir, opts)
            .await
            .map_err(|e| anyhow::anyhow!("open store in {}: {e}", dir.display()))?;
        tracing::debug!("store in {} open; loading databases and vector indexes", dir.display());
        Shard::with_store_dbs(store, recovery, databases).await
    }

    /// The shard over a store already opened (e.g. by a test, on a fault-injecting file
    /// layer), with what its recovery found: rebuilds the vector indexes.
    /// Errors: a vector index metadata record this keel cannot read, or a failed read.
    pub async fn with_store(store: Store, recovery: RecoveryReport) -> anyhow::Result<Shard> {
        Shard::with_store_dbs(store, recovery, 16).await
    }

    /// [`Shard::with_store`] with `databases` numbered databases (1 ..=
    /// `keel_config::MAX_DATABASES`). Errors also: a bad database map record.
    pub async fn with_store_dbs(store: Store, recovery: RecoveryReport, databases: usize) -> anyhow::Result<Shard> {
        anyhow::ensure!((1..=keel_config::MAX_DATABASES).contains(&databases), "invalid databases {databases}");
        let dbs = crate::dbs::Databases::load(&store, databases).await?;
        let (vectors, rebuilt) = registry::rebuild(&store).await?;
        let io_poll = crate::runtime::poll::IoPoll::new().map_err(|e| anyhow::anyhow!("make the I/O poll socket pair: {e}"))?;
        match &recovery.truncated_tail {
            Some((file, offset)) => {
                tracing::warn!("recovery truncated a torn write at the tail of {file} at offset {offset}")
            }
            None => tracing::debug!("recovery found no torn tail"),
        }
        tracing::info!(
            "recovered {} keys ({} KV, {} with a TTL; {} expired while down, removed) from {} segments / {} records; \
             {} vector indexes with {} vectors ({} records of dropped indexes forgotten, {} bad vectors skipped)",
            recovery.live_keys,
            store.len(keel_storage::NS_KV),
            store.expires(keel_storage::NS_KV).0,
            recovery.expired_keys,
            recovery.segments,
            recovery.records,
            rebuilt.indexes,
            rebuilt.vectors,
            rebuilt.orphans_forgotten,
            rebuilt.bad_vectors,
        );
        Ok(Shard {
            vectors_at: Cell::new(store.reverts()),
            store,
            vectors: RefCell::new(vectors),
            resync: glommio::sync::Semaphore::new(1),
            vector_scans: Cell::new(0),
            search_counts: Cell::default(),
            shared_scans: RefCell::new(HashMap::new()),
            bulk_writes: std::rc::Rc::default(),
            io_poll,
            started: Instant::now(),
            recovered_keys: recovery.live_keys,
            dbs,
            inflight: crate::inflight::Inflight::default(),
        })
    }

    /// The store (e.g. for stats).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Searches that are members of a shared scan of an index now (for tests: a search
    /// that ends, or whose future is dropped, leaves it).
    #[doc(hidden)]
    pub fn shared_scan_members(&self) -> usize {
        self.shared_scans.borrow().values().map(|(_, shared)| shared.len()).sum()
    }

    /// The budget of value bytes read and not yet sent (`inflight_bytes`; default
    /// [`crate::inflight::DEFAULT_INFLIGHT_BYTES`]) and what is in flight.
    pub fn inflight(&self) -> &crate::inflight::Inflight {
        &self.inflight
    }

    /// Sets the budget of value bytes read and not yet sent, bytes (the config key
    /// `inflight_bytes`, range-checked there).
    pub fn set_inflight_bytes(&self, bytes: usize) {
        self.inflight.set_limit(bytes);
    }

    /// Runs one request in database 0: [`Shard::handle_in`].
    pub async fn handle(&self, argv: Vec<Vec<u8>>) -> Reply {
        self.handle_in(0, argv).await
    }

    /// Runs one request in database `db`: looks `argv[0]` up in the command table,
    /// checks the arity there (the only check: ops rely on it) and the database, and runs
    /// the op. The synchronous part and any disk read happen before this returns; a
    /// write's durability wait is left in the returned [`Reply`]. Keys in `argv` must all
    /// belong to this shard (the router splits multi-key commands). Never panics on any
    /// input.
    pub async fn handle_in(&self, db: u8, argv: Vec<Vec<u8>>) -> Reply {
        match resolve(&argv) {
            Ok(spec) => self.handle_spec(db, spec, argv).await,
            Err(reply) => reply,
        }
    }

    /// [`Shard::handle_in`] for a request already [`resolve`]d to `spec`: checks the
    /// database and runs the op.
    pub(crate) async fn handle_spec(&self, db: u8, spec: &'static Spec, argv: Vec<Vec<u8>>) -> Reply {
        if db as usize >= self.dbs.count() {
            return Reply::err(crate::dbs::ERR_DB_RANGE);
        }
        self.run(db, spec, argv).await
    }

    /// Before a batch of requests in database `db` runs (a pipeline read in one go):
    /// [`Store::prefetch`] of the keys of its single-key commands (`spec`, `argv` pairs
    /// that passed the arity check), so that their cache misses overlap instead of
    /// coming one request after another.
    pub(crate) fn prefetch<'a>(&self, db: u8, batch: impl Iterator<Item = (&'static Spec, &'a [Vec<u8>])>) {
        const MAX: usize = 32;
        let mut keys: [&[u8]; MAX] = [&[]; MAX];
        let mut n = 0;
        for (spec, argv) in batch {
            if n == MAX {
                break;
            }
            if spec.route == Route::Key && spec.first_key == 1 {
                if let Some(key) = argv.get(1) {
                    keys[n] = key;
                    n += 1;
                }
            }
        }
        if n > 1 && (db as usize) < self.dbs.count() {
            self.store.prefetch(self.dbs.ns(db), &keys[..n]);
        }
    }

    /// Runs the op of `spec`, whose arity `argv` satisfies, in database `db` (below the
    /// database count; also the entry of a handed-off connection's requests, checked by
    /// the client module). Commands that read the vector indexes first wait for their
    /// rebuild if the store took back writes, and every command waits for the database
    /// map to be read again then (a SWAPDB may have been taken back).
    pub(crate) async fn run(&self, db: u8, spec: &'static Spec, argv: Vec<Vec<u8>>) -> Reply {
        if self.dbs.stale(&self.store) {
            // Boxed: a rare path, kept out of every request's future.
            if let Err(e) = Box::pin(self.dbs.reload(&self.store)).await {
                tracing::error!("{e}");
                return Reply::err(format!("ERR storage: {e}"));
            }
        }
        if self.store.reverts() != self.vectors_at.get() && reads_vectors(spec) {
            // Boxed: a rare path, kept out of every request's future.
            if let Err(e) = Box::pin(self.resync_vectors()).await {
                tracing::error!("{e:#}");
                return Reply::err(format!("ERR storage: {e:#}"));
            }
        }
        crate::ops::run(self, db, spec, argv).await
    }

    /// Rebuilds the vector indexes from the store after it took back unacknowledged
    /// writes (their vectors were upserted at `apply` time). Requests that read the
    /// indexes and arrive meanwhile wait for it. Errors: the rebuild failed (it is tried
    /// again by the next request that reads the indexes).
    async fn resync_vectors(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.resync.acquire_permit(1).await.map_err(|e| anyhow::anyhow!("wait for a vector index rebuild: {e}"))?;
        let reverts = self.store.reverts();
        if reverts == self.vectors_at.get() {
            return Ok(()); // done by the request we waited for
        }
        let (vectors, rebuilt) = registry::rebuild(&self.store)
            .await
            .map_err(|e| e.context("rebuild vector indexes after the store took back a failed write"))?;
        tracing::warn!(
            "rebuilt {} vector indexes with {} vectors after the store took back unacknowledged writes",
            rebuilt.indexes,
            rebuilt.vectors
        );
        let mut vectors = vectors;
        let mut current = self.vectors.borrow_mut();
        vectors.epoch = current.epoch + 1; // searches in progress start over
        *current = vectors;
        self.vectors_at.set(reverts);
        Ok(())
    }

    /// [`Shard::handle`] followed by the durability wait: the reply value.
    pub async fn exec(&self, argv: Vec<Vec<u8>>) -> Value {
        self.handle(argv).await.into_value().await
    }

    /// [`Shard::handle_in`] followed by the durability wait: the reply value.
    pub async fn exec_in(&self, db: u8, argv: Vec<Vec<u8>>) -> Value {
        self.handle_in(db, argv).await.into_value().await
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

/// Looks `argv[0]` up in the command table and checks the arity there (the only arity
/// check: ops rely on it). Errors: the reply to an empty request, an unknown command
/// (`-ERR unknown command 'x'`) or a wrong argument count (Redis's text).
pub(crate) fn resolve(argv: &[Vec<u8>]) -> Result<&'static Spec, Reply> {
    let Some(name) = argv.first() else {
        return Err(Reply::err("ERR empty command"));
    };
    let Some(spec) = keel_protocol::command::lookup(name) else {
        return Err(Reply::err(format!("ERR unknown command '{}'", crate::args::show(name))));
    };
    if !spec.arity_ok(argv.len()) {
        return Err(spec.arity_error().into());
    }
    Ok(spec)
}
