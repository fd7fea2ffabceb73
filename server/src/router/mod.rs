//! The router process (DESIGN §1): validates the config and the data dir, starts and
//! supervises one shard process per shard, runs one glommio executor per router thread
//! with its own SO_REUSEPORT listener and its own links to every shard, and shuts all of
//! it down in order on SIGINT/SIGTERM. [`main`] is that startup sequence; each step
//! lives in its own module:
//!
//! - [`datadir`]: create and lock the data dir, `keel.meta`, `keel.effective.toml`;
//! - [`listen`]: the SO_REUSEPORT listeners;
//! - [`placement`]: which CPU each router executor and shard runs on ([`Layout`]);
//! - [`signals`]: SIGINT/SIGTERM → the shared shutdown flag;
//! - [`supervisor`]: the shard processes (start, health checks, restart with back-off,
//!   stop), with [`health`] (health checks and startup progress);
//! - [`executor`]: one router executor's accept loop and drain.
//!
//! Exit codes: 0 after a clean shutdown; 2 for configuration problems found before
//! serving (bad flags or config file, data dir not creatable or locked, shard count
//! mismatch, address in use); 1 when a shard or an executor cannot start, or when a
//! shard exits non-zero at shutdown (the log names it and its status).

mod datadir;
mod executor;
mod health;
mod listen;
mod placement;
mod signals;
mod supervisor;

pub use placement::Layout;

use crate::cmd::Shared;
use crate::ServeArgs;
use keel_config::{Config, FileConfig, Overrides};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Instant;
use supervisor::{Startup, Supervisor};

/// The Redis version keel reports to clients (HELLO, INFO) for compatibility checks.
pub const REDIS_COMPAT_VERSION: &str = "7.4.0";

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("keel: {msg}");
    ExitCode::from(code)
}

/// Runs the server in the foreground until SIGINT/SIGTERM.
pub fn main(args: ServeArgs) -> ExitCode {
    // 1. The effective config: file, then flags, validated.
    let file = match &args.config {
        Some(p) => match FileConfig::from_file(p) {
            Ok(f) => f,
            Err(e) => return fail(2, e),
        },
        None => FileConfig::default(),
    };
    let flags = Overrides {
        data_dir: args.data_dir.clone(),
        resp_addr: args.resp_addr.clone(),
        shards: args.shards,
        durability: args.durability.clone(),
        router_threads: args.router_threads,
        shard_handoff: args.shard_handoff,
        cache_bytes: args.cache_bytes,
        inflight_bytes: args.inflight_bytes,
    };
    let mut cfg = match Config::resolve(file, flags, placement::online_cpus()) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    // 2. The data dir: created, locked, its shard count checked.
    let _lock = match datadir::create_and_lock(&cfg.data_dir) {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    // Shown in logs as an absolute path; the configured form is kept for the sockets.
    let data_dir_abs = cfg.data_dir.canonicalize().unwrap_or_else(|_| cfg.data_dir.clone());
    if let Err(e) = datadir::check_or_create(&cfg.data_dir, cfg.shards) {
        return fail(2, e);
    }
    let sockets = match datadir::shard_sockets(&cfg) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    // 3. The listeners (port 0 resolved here).
    let (listeners, port) = match listen::bind(cfg.resp_addr, cfg.router_threads) {
        Ok(l) => l,
        Err(e) => return fail(2, e),
    };
    cfg.resp_addr.set_port(port);
    datadir::write_effective_config(&cfg);
    tracing::info!(
        "keel {} starting: data dir {}, {} shards, durability {}, {} router threads",
        env!("CARGO_PKG_VERSION"),
        data_dir_abs.display(),
        cfg.shards,
        cfg.durability.as_str(),
        cfg.router_threads
    );

    // 4. Shared state, signals, the shard processes.
    let layout = Layout::for_config(&cfg, &placement::allowed_cpus());
    let shared = Arc::new(Shared {
        next_client_id: AtomicU64::new(1),
        connected_clients: AtomicUsize::new(0),
        total_connections: AtomicU64::new(0),
        total_commands: AtomicU64::new(0),
        shard_handoffs: AtomicU64::new(0),
        clients: Default::default(),
        started: Instant::now(),
        run_id: format!("{:040x}", xxhash_rust::xxh3::xxh3_128(&std::process::id().to_le_bytes()) ^ now_nanos()),
        port,
        shutdown: AtomicBool::new(false),
        shard_restarts: (0..cfg.shards).map(|_| AtomicU64::new(0)).collect(),
        cfg: cfg.clone(),
    });
    let signals = match signals::install(shared.clone()) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("cannot install signal handlers: {e}")),
    };
    let shards = match Supervisor::start(&shared, &sockets, &layout) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    match shards.wait_ready(&shared) {
        Startup::Ready => {}
        Startup::Failed(msg) => {
            let _ = shards.stop(&shared);
            return fail(1, msg);
        }
        Startup::Stopped => {
            let _ = shards.stop(&shared);
            tracing::info!("keel stopped during startup (signal)");
            return ExitCode::SUCCESS;
        }
    }

    // 5. The router executors, serving until shutdown.
    tracing::info!("{}", layout.describe(&cfg));
    let executors = match executor::spawn_all(listeners, &layout, &shared, &sockets) {
        Ok(e) => e,
        Err(e) => {
            let _ = shards.stop(&shared);
            return fail(1, e);
        }
    };
    tracing::info!(
        "keel ready: serving RESP on {} (redis-cli -p {}), data in {}, {} shards, durability {}",
        cfg.resp_addr,
        port,
        data_dir_abs.display(),
        cfg.shards,
        cfg.durability.as_str()
    );
    for h in executors {
        let _ = h.join();
    }

    // 6. Shutdown: the executors drained their clients; now the shards.
    tracing::info!("router stopped accepting and drained its clients; stopping shards");
    let stopped = shards.stop(&shared);
    signals.close();
    match stopped {
        Ok(()) => {
            tracing::info!("keel stopped: signal received, all shards synced and exited");
            ExitCode::SUCCESS
        }
        Err(which) => {
            // Their last writes may not be durable; their own log lines say why.
            tracing::error!("keel stopped: signal received, but not every shard stopped cleanly: {which}");
            ExitCode::from(1)
        }
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
