//! The shard process: executor, signals, the socket listener and shutdown.
//!
//! Start: parent-death signal → executor → open the store and rebuild the indexes →
//! remove a stale socket file → bind (from here on "the socket accepts" = "ready").
//! Stop (SIGTERM, or the parent is gone; SIGINT is ignored, the router orders shutdown): stop accepting, let every connection
//! answer what it has received and flush, `Store::sync`, remove the socket, return Ok.

use crate::shard::Shard;
use crate::sync::{Event, Notify};
use crate::ShardConfig;
use anyhow::Context as _;
use glommio::net::UnixListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// glommio registers this much I/O memory per executor against RLIMIT_MEMLOCK (8 MiB on
/// these machines; glommio's default of 10 MiB fails there).
const IO_MEMORY: usize = 1 << 20;
/// How often the executor checks the signal flag and the parent.
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// Longest wait for connections to drain at shutdown before syncing anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the shard until SIGTERM (SIGINT is left to the router) or the parent process dies; returns Ok after a
/// clean shutdown (requests received so far answered, store synced).
pub fn run(cfg: ShardConfig) -> anyhow::Result<()> {
    // Everything of this process runs on this thread: one span tags all its log lines.
    let span = tracing::info_span!("shard", id = cfg.id);
    let _entered = span.enter();
    let parent = std::os::unix::process::parent_id();
    if let Err(e) = crate::sys::set_parent_death_signal() {
        tracing::warn!("set parent-death signal: {e}");
    }
    if std::os::unix::process::parent_id() != parent {
        tracing::info!("shard {}: parent exited during start; not starting", cfg.id);
        return Ok(());
    }
    if let Err(e) = crate::sys::raise_memlock_limit() {
        tracing::debug!("raise RLIMIT_MEMLOCK: {e}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone()).context("install SIGTERM handler")?;
    // Ctrl-C in a terminal sends SIGINT to the whole process group: the router orders the
    // shutdown (drain its clients first, then SIGTERM to the shards), so shards only note
    // SIGINT and keep serving until that SIGTERM.
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::new(AtomicBool::new(false)))
        .context("install SIGINT handler")?;
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("create shard dir {}", cfg.dir.display()))?;

    let name = format!("keel-shard-{}", cfg.id);
    let builder = |placement| LocalExecutorBuilder::new(placement).name(&name).io_memory(IO_MEMORY);
    let executor = match cfg.core {
        Some(core) => builder(Placement::Fixed(core)).make().or_else(|e| {
            tracing::warn!("pin shard {} to CPU {core}: {e}; running unpinned", cfg.id);
            builder(Placement::Unbound).make()
        }),
        None => builder(Placement::Unbound).make(),
    }
    .map_err(|e| anyhow::anyhow!("start glommio executor: {e}"))?;
    executor.run(serve(cfg, stop, parent))
}

async fn serve(cfg: ShardConfig, stop: Arc<AtomicBool>, parent: u32) -> anyhow::Result<()> {
    let shutdown = Event::default();
    glommio::spawn_local(watch_signals(stop, parent, shutdown.clone())).detach();

    let shard = Rc::new(Shard::open(&cfg.dir, cfg.store.clone()).await?);
    if shutdown.is_set() {
        return finish(&cfg, &shard).await;
    }
    match std::fs::remove_file(&cfg.socket) {
        Ok(()) => tracing::debug!("removed stale socket {}", cfg.socket.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale socket {}", cfg.socket.display())),
    }
    let listener =
        UnixListener::bind(&cfg.socket).map_err(|e| anyhow::anyhow!("bind socket {}: {e}", cfg.socket.display()))?;
    tracing::info!("shard {}/{} ready on {}", cfg.id, cfg.n_shards, cfg.socket.display());

    let active = Rc::new(Cell::new(0usize));
    let all_closed = Notify::default();
    loop {
        let accepted = crate::sync::unless(&shutdown, listener.accept()).await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                tracing::debug!("router connected");
                active.set(active.get() + 1);
                let (shard, shutdown, active, all_closed) = (shard.clone(), shutdown.clone(), active.clone(), all_closed.clone());
                glommio::spawn_local(async move {
                    crate::conn::serve(shard, stream, shutdown).await;
                    active.set(active.get() - 1);
                    if active.get() == 0 {
                        all_closed.notify();
                    }
                })
                .detach();
            }
            Some(Err(e)) => {
                // e.g. EMFILE: back off instead of spinning.
                tracing::warn!("accept on {}: {e}", cfg.socket.display());
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    tracing::info!("shard {} shutting down: draining {} connection(s)", cfg.id, active.get());
    let drained = glommio::timer::timeout(DRAIN_TIMEOUT, async {
        while active.get() > 0 {
            all_closed.notified().await;
        }
        Ok(())
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shard {}: {} connection(s) still busy after {DRAIN_TIMEOUT:?}; syncing anyway", cfg.id, active.get());
    }
    finish(&cfg, &shard).await
}

async fn finish(cfg: &ShardConfig, shard: &Shard) -> anyhow::Result<()> {
    shard.sync().await.map_err(|e| anyhow::anyhow!("sync store at shutdown: {e}"))?;
    match std::fs::remove_file(&cfg.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("remove socket {}: {e}", cfg.socket.display()),
    }
    tracing::info!("shard {} stopped cleanly", cfg.id);
    Ok(())
}

/// Turns SIGTERM (a flag set by the signal handler) or the parent's exit into
/// the `shutdown` event.
async fn watch_signals(stop: Arc<AtomicBool>, parent: u32, shutdown: Event) {
    loop {
        glommio::timer::sleep(SIGNAL_POLL).await;
        if stop.load(Ordering::Relaxed) {
            tracing::info!("signal received: shutting down");
            break;
        }
        if std::os::unix::process::parent_id() != parent {
            tracing::info!("parent process exited: shutting down");
            break;
        }
    }
    shutdown.set();
}
