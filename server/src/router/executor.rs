//! One router executor (DESIGN §1): a glommio `LocalExecutor` on its own thread (pinned
//! per [`Layout`]) with its own SO_REUSEPORT listener, its own links to every shard and,
//! with hand-off on, its own hand-off channel to every shard. It accepts and serves
//! connections until shutdown, then stops accepting and drains them.

use super::placement::Layout;
use crate::cmd::{Router, Shared};
use crate::link::ShardLink;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use keel_shard::runtime::sync::{Event, Live};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// I/O memory glommio registers per router executor (against RLIMIT_MEMLOCK, DESIGN §7).
const IO_MEMORY: usize = 512 << 10;
/// How often an executor checks the shared shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// Longest wait for connections to drain at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts one executor thread per listener (`keel-router-T`), executor `t` on
/// `listeners[t]`, talking to the shards on `sockets`. Errors: a thread cannot be
/// started (the message names which); those already started stop at shutdown.
pub fn spawn_all(
    listeners: Vec<std::net::TcpListener>,
    layout: &Layout,
    shared: &Arc<Shared>,
    sockets: &[PathBuf],
) -> Result<Vec<ExecutorJoinHandle<()>>, String> {
    let mut executors = Vec::with_capacity(listeners.len());
    for (t, listener) in listeners.into_iter().enumerate() {
        let pin = match layout.router_cpu(t) {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let (shared, sockets) = (shared.clone(), sockets.to_vec());
        // A second descriptor of the listener, to shut it down at the end (see `serve`).
        let closer = listener.try_clone().map_err(|e| format!("cannot start router executor {t}: duplicate its listener: {e}"))?;
        let handle = LocalExecutorBuilder::new(pin).name(&format!("keel-router-{t}")).io_memory(IO_MEMORY).spawn(
            move || async move { serve(t, keel_shard::runtime::fd::tcp_listener(listener), closer, shared, sockets).await },
        );
        executors.push(handle.map_err(|e| format!("cannot start router executor {t}: {e}"))?);
    }
    Ok(executors)
}

/// Executor `me`: accepts on `listener` until shutdown, then waits (up to
/// [`DRAIN_TIMEOUT`]) for its connections to finish. `closer` is another descriptor of
/// the same listening socket.
async fn serve(
    me: usize,
    listener: glommio::net::TcpListener,
    closer: std::net::TcpListener,
    shared: Arc<Shared>,
    sockets: Vec<PathBuf>,
) {
    let links: Vec<Rc<ShardLink>> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| ShardLink::start(i as u32, s.clone(), shared.cfg.max_frame_len, shared.cfg.shard_timeout()))
        .collect();
    // Wait (briefly) for the links to come up so the first clients are not refused.
    let t0 = Instant::now();
    while links.iter().any(|l| !l.is_up()) && t0.elapsed() < Duration::from_secs(5) {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let n = links.len();
    let rt = Rc::new(Router { links, shared: shared.clone(), me, handoffs: crate::handoff::Handoffs::new(n) });
    let shutdown = Event::default();
    let sd = shutdown.clone();
    let sh = shared.clone();
    glommio::spawn_local(async move {
        while !sh.shutdown.load(Ordering::SeqCst) {
            glommio::timer::sleep(SHUTDOWN_POLL).await;
        }
        sd.set();
    })
    .detach();
    let live = Rc::new(Live::default());
    let channels: Vec<_> = if shared.cfg.shard_handoff {
        sockets
            .iter()
            .enumerate()
            .map(|(s, path)| {
                let path = keel_shard::handoff_socket_path(path);
                glommio::spawn_local(crate::handoff::run_channel(rt.clone(), s, path, shutdown.clone(), live.clone()))
            })
            .collect()
    } else {
        Vec::new()
    };
    loop {
        let accepted = keel_shard::runtime::sync::unless(&shutdown, listener.accept()).await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                let (rt, sd, guard) = (rt.clone(), shutdown.clone(), live.enter());
                glommio::spawn_local(async move {
                    crate::conn::serve(rt, stream, sd).await;
                    drop(guard);
                })
                .detach();
            }
            Some(Err(e)) => {
                tracing::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    // Closing the descriptor is not enough to free the port: the accept that glommio
    // had in flight holds the socket inside io_uring, and the kernel releases that
    // only when it tears the ring down, asynchronously, a few ms after the process
    // exits, so a keel restarted at once found the old socket still listening
    // (`Address already in use`). shutdown(2) acts on the socket itself: it stops
    // listening now, whoever holds it.
    if let Err(e) = socket2::SockRef::from(&closer).shutdown(std::net::Shutdown::Both) {
        tracing::warn!("shut down the listener of router executor {me}: {e}");
    }
    drop(closer);
    drop(listener);
    for c in channels {
        c.await;
    }
    let _ = glommio::timer::timeout(DRAIN_TIMEOUT, async {
        live.all_done().await;
        Ok(())
    })
    .await;
}
