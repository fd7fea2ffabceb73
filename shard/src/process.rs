//! The shard process: executor, signals, the socket listeners and shutdown.
//!
//! Start: parent-death signal → executor → open the store and rebuild the indexes →
//! remove stale socket files → bind `handoff.sock`, then `shard.sock` (from here on
//! "the socket accepts" = "ready").
//! Stop (SIGTERM, or the parent is gone; SIGINT is ignored, the router orders shutdown):
//! stop accepting, let every router connection and handed-off client connection answer
//! what it has received and flush, `Store::sync`, remove the sockets, return Ok.

use crate::shard::Shard;
use crate::runtime::sync::{Event, Live};
use crate::ShardConfig;
use anyhow::Context as _;
use glommio::net::UnixListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// glommio registers this much I/O memory per executor against RLIMIT_MEMLOCK (8 MiB on
/// these machines; glommio's default of 10 MiB fails there).
const IO_MEMORY: usize = 1 << 20;
/// How often glommio interrupts a run of ready tasks to poll its rings for new socket
/// events and completions (glommio's default is 100 ms): while tasks stay ready, it
/// bounds how long a new request waits to be noticed. Vector searches do not rely on it
/// (between slices they wait for the next poll, `runtime::poll::IoPoll`), but any other
/// run of ready tasks does. It costs KV throughput when every task is busy: GET at
/// redis-benchmark -P 16 ran at 0.73x with 1 ms and 0.89x with 2 ms of a 100 ms build
/// (bench-results/kv-structure.md).
const PREEMPT_TIMER: Duration = Duration::from_millis(2);
/// How often the executor checks the signal flag and the parent.
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// While the shard starts, how often its executor thread is interrupted (see
/// [`StartKicker`]).
const START_KICK: Duration = Duration::from_millis(20);
/// Longest wait for connections to drain at shutdown before syncing anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the shard until SIGTERM (SIGINT is left to the router) or the parent process dies; returns Ok after a
/// clean shutdown (requests received so far answered, store synced).
pub fn run(cfg: ShardConfig) -> anyhow::Result<()> {
    // Everything of this process runs on this thread: one span tags all its log lines.
    let span = tracing::info_span!("shard", id = cfg.id);
    let _entered = span.enter();
    // The process shows who it is in `ps`/`top` (and the test harness finds shards so).
    if let Err(e) = crate::sys::set_thread_name(&format!("keel-shard-{}", cfg.id)) {
        tracing::debug!("name the shard thread: {e}");
    }
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
    // Before anything touches the store: a shard that SIGTERM or SIGINT kills (rather
    // than its handler noting it) changed nothing, and the router's supervisor counts
    // such an exit at shutdown as stopped while starting.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone()).context("install SIGTERM handler")?;
    // Ctrl-C in a terminal sends SIGINT to the whole process group: the router orders the
    // shutdown (drain its clients first, then SIGTERM to the shards), so shards only note
    // SIGINT and keep serving until that SIGTERM.
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::new(AtomicBool::new(false)))
        .context("install SIGINT handler")?;
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("create shard dir {}", cfg.dir.display()))?;

    let name = format!("keel-shard-{}", cfg.id);
    let builder = |placement| LocalExecutorBuilder::new(placement).name(&name).io_memory(IO_MEMORY).preempt_timer(PREEMPT_TIMER);
    let executor = match cfg.core {
        Some(core) => builder(Placement::Fixed(core)).make().or_else(|e| {
            tracing::warn!("pin shard {} to CPU {core}: {e}; running unpinned", cfg.id);
            builder(Placement::Unbound).make()
        }),
        None => builder(Placement::Unbound).make(),
    }
    .map_err(|e| anyhow::anyhow!("start glommio executor: {e}"))?;
    let kicker = StartKicker::start()?;
    executor.run(serve(cfg, stop, parent, kicker))
}

/// Interrupts the executor's thread (this process's main thread) with a SIGURG every
/// [`START_KICK`] until dropped, which the shard does once it is ready.
///
/// Why: glommio 0.9's run loop arms its preemption timer, then runs the task queues
/// only if that timer has not fired yet; when it has, and no I/O or timer of ours is
/// pending, the executor parks in `io_uring_enter` with a task ready to run — at start,
/// the shard's main task itself, before it has armed anything that would wake the
/// ring. Under load (the thread descheduled for longer than [`PREEMPT_TIMER`] between
/// the two steps) a shard then hung at start until a signal or the supervisor's
/// progress check came (`scripts/repro-startup-hang.sh` caught it: the main thread
/// parked in `io_uring_enter`, the store not yet opened; a signal woke it). A signal
/// with a handler ends the wait with `EINTR`, which glommio takes as a wake-up. Once
/// the shard serves, its own timers (the signal poll every [`SIGNAL_POLL`], the
/// store's background tasks) bound such a park.
struct StartKicker {
    done: Arc<AtomicBool>,
}

impl StartKicker {
    fn start() -> anyhow::Result<StartKicker> {
        // A handler (a flag nobody reads), so that SIGURG is delivered instead of
        // ignored; a process-directed signal goes to the main thread when it takes it.
        signal_hook::flag::register(signal_hook::consts::SIGURG, Arc::new(AtomicBool::new(false)))
            .context("install SIGURG handler")?;
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        std::thread::Builder::new()
            .name("keel-start-kick".into())
            .spawn(move || {
                let me = rustix::process::getpid();
                while !d.load(Ordering::Relaxed) {
                    std::thread::sleep(START_KICK);
                    if !d.load(Ordering::Relaxed) {
                        let _ = rustix::process::kill_process(me, rustix::process::Signal::URG);
                    }
                }
            })
            .context("spawn the start kicker thread")?;
        Ok(StartKicker { done })
    }
}

impl Drop for StartKicker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

async fn serve(cfg: ShardConfig, stop: Arc<AtomicBool>, parent: u32, kicker: StartKicker) -> anyhow::Result<()> {
    let shutdown = Event::default();
    glommio::spawn_local(watch_signals(stop, parent, shutdown.clone())).detach();

    let shard = Rc::new(Shard::open_with(&cfg.dir, cfg.store.clone(), cfg.databases).await?);
    shard.set_inflight_bytes(cfg.inflight_bytes);
    if shutdown.is_set() {
        return finish(&cfg, &shard).await;
    }
    let handoff_socket = handoff_socket_path(&cfg.socket);
    remove_stale(&handoff_socket)?;
    let handoff = std::os::unix::net::UnixListener::bind(&handoff_socket)
        .with_context(|| format!("bind socket {}", handoff_socket.display()))?;
    remove_stale(&cfg.socket)?;
    let listener =
        UnixListener::bind(&cfg.socket).map_err(|e| anyhow::anyhow!("bind socket {}: {e}", cfg.socket.display()))?;
    tracing::info!(
        "shard {}/{} ready on {} (connection hand-off on {})",
        cfg.id,
        cfg.n_shards,
        cfg.socket.display(),
        handoff_socket.display()
    );
    drop(kicker);

    let live = Rc::new(Live::default());
    let clients = Rc::new(crate::client::Clients {
        shard: shard.clone(),
        me: cfg.id as usize,
        n: cfg.n_shards as usize,
        limits: keel_protocol::resp::Limits {
            max_bulk_len: cfg.max_bulk_len,
            max_request_len: cfg.client_query_buffer_limit,
            ..Default::default()
        },
        max_frame: cfg.max_frame_len,
        shutdown: shutdown.clone(),
        live: live.clone(),
    });
    let handoffs = glommio::spawn_local(accept_handoff_channels(handoff, handoff_socket, clients));
    loop {
        let accepted = crate::runtime::sync::unless(&shutdown, listener.accept()).await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                tracing::debug!("router connected");
                let (shard, shutdown, guard, max_frame) = (shard.clone(), shutdown.clone(), live.enter(), cfg.max_frame_len);
                glommio::spawn_local(async move {
                    crate::conn::serve(shard, stream, shutdown, max_frame).await;
                    drop(guard);
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
    handoffs.await;
    tracing::info!("shard {} shutting down: draining {} connection(s)", cfg.id, live.count());
    let drained = glommio::timer::timeout(DRAIN_TIMEOUT, async {
        live.all_done().await;
        Ok(())
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shard {}: {} connection(s) still busy after {DRAIN_TIMEOUT:?}; syncing anyway", cfg.id, live.count());
    }
    finish(&cfg, &shard).await
}

async fn finish(cfg: &ShardConfig, shard: &Shard) -> anyhow::Result<()> {
    shard.sync().await.map_err(|e| anyhow::anyhow!("sync store at shutdown: {e}"))?;
    for path in [cfg.socket.clone(), handoff_socket_path(&cfg.socket)] {
        if let Err(e) = remove_socket(&path) {
            tracing::warn!("remove socket {}: {e}", path.display());
        }
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

/// The hand-off socket beside a shard's request socket: `shard-III/handoff.sock`.
pub fn handoff_socket_path(socket: &Path) -> PathBuf {
    socket.with_file_name("handoff.sock")
}

/// Removes the socket file at `path`; a missing one is fine.
fn remove_socket(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Removes a stale socket file at `path` before binding. Errors: it exists and cannot
/// be removed.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    remove_socket(path).with_context(|| format!("remove stale socket {}", path.display()))
}

/// Accepts hand-off channels (one per router executor) until shutdown.
///
/// glommio's Unix streams do not expose their descriptors, and a channel needs its own
/// for `sendmsg`/`recvmsg`; so a plain thread blocks in `accept` on a std listener and
/// passes each accepted socket to the executor over a socket pair (itself a
/// [`crate::runtime::fdpass::Channel`]). The thread sleeps in `accept` between router
/// (re)connections and ends with the process.
async fn accept_handoff_channels(
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    clients: Rc<crate::client::Clients>,
) {
    let (tx, rx) = match std::os::unix::net::UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return tracing::error!("connection hand-off disabled: socket pair: {e}"),
    };
    let rx = match crate::runtime::fdpass::Channel::new(rx) {
        Ok(c) => c,
        Err(e) => return tracing::error!("connection hand-off disabled: {e}"),
    };
    let spawned = std::thread::Builder::new().name("keel-handoff-accept".into()).spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    use std::os::fd::AsFd;
                    if let Err(e) = crate::runtime::fdpass::send_blocking(&tx, &[1], conn.as_fd()) {
                        tracing::warn!("hand-off acceptor: {e}");
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("accept on {}: {e}", path.display());
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    });
    if let Err(e) = spawned {
        return tracing::error!("connection hand-off disabled: cannot start its acceptor thread: {e}");
    }
    let (mut buf, mut fds) = (Vec::new(), std::collections::VecDeque::new());
    loop {
        match crate::runtime::sync::unless(&clients.shutdown, rx.recv(&mut buf, &mut fds)).await {
            None | Some(Ok(0)) => break,
            Some(Err(e)) => {
                tracing::warn!("hand-off acceptor: {e}");
                break;
            }
            Some(Ok(_)) => {}
        }
        buf.clear();
        for fd in fds.drain(..) {
            match crate::runtime::fdpass::Channel::new(fd.into()) {
                Ok(chan) => {
                    tracing::debug!("router hand-off channel connected");
                    glommio::spawn_local(crate::client::serve_channel(clients.clone(), chan)).detach();
                }
                Err(e) => tracing::warn!("hand-off channel: {e}"),
            }
        }
    }
}
