//! The router process (DESIGN §1): validates the config and the data dir, starts and
//! supervises one shard process per shard, runs one glommio executor per router thread
//! with its own SO_REUSEPORT listener and its own links to every shard, and shuts all of
//! it down in order on SIGINT/SIGTERM.
//!
//! Exit codes: 0 after a clean shutdown; 2 for configuration problems found before
//! serving (bad flags or config file, data dir not creatable or locked, shard count
//! mismatch, address in use); 1 when a shard cannot start.

use crate::cmd::{Router, Shared};
use crate::link::ShardLink;
use keel_shard::sync::{Event, Live};
use crate::ServeArgs;
use glommio::{LocalExecutorBuilder, Placement};
use keel_config::{Config, FileConfig, Overrides};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Redis version keel reports to clients (HELLO, INFO) for compatibility checks.
pub const REDIS_COMPAT_VERSION: &str = "7.4.0";

/// Maps the config tier onto the storage tier.
pub fn storage_durability(d: keel_config::Durability) -> keel_storage::Durability {
    match d {
        keel_config::Durability::Relaxed => keel_storage::Durability::Relaxed,
        keel_config::Durability::Kernel => keel_storage::Durability::Kernel,
        keel_config::Durability::Power => keel_storage::Durability::Power,
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("keel: {msg}");
    ExitCode::from(code)
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Runs the server in the foreground until SIGINT/SIGTERM.
pub fn main(args: ServeArgs) -> ExitCode {
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
    };
    let mut cfg = match Config::resolve(file, flags, online_cpus()) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = std::fs::create_dir_all(&cfg.data_dir) {
        return fail(2, format!("cannot create data dir {}: {e}", cfg.data_dir.display()));
    }
    // Shown in logs as an absolute path; the configured form is kept for the sockets.
    let data_dir_abs = cfg.data_dir.canonicalize().unwrap_or_else(|_| cfg.data_dir.clone());
    let _lock = match lock_data_dir(&cfg.data_dir) {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = crate::meta::check_or_create(&cfg.data_dir, cfg.shards) {
        return fail(2, e);
    }
    let sockets: Vec<PathBuf> = (0..cfg.shards).map(|i| shard_dir(&cfg.data_dir, i).join("shard.sock")).collect();
    for s in &sockets {
        if s.as_os_str().len() >= 100 {
            return fail(2, format!("data dir path too long for a Unix socket: {} (keep it under ~80 bytes)", s.display()));
        }
    }
    // Probe the address without SO_REUSEPORT so that a port held by anyone is reported.
    let port = match std::net::TcpListener::bind(cfg.resp_addr) {
        Ok(l) => l.local_addr().map(|a| a.port()).unwrap_or(cfg.resp_addr.port()),
        Err(e) => return fail(2, format!("cannot listen on {}: {e}", cfg.resp_addr)),
    };
    cfg.resp_addr.set_port(port);
    let mut listeners = Vec::new();
    for _ in 0..cfg.router_threads {
        match reuseport_listener(cfg.resp_addr) {
            Ok(l) => listeners.push(l),
            Err(e) => return fail(2, format!("cannot listen on {}: {e}", cfg.resp_addr)),
        }
    }
    let _ = std::fs::write(cfg.data_dir.join("keel.effective.toml"), cfg.to_toml());
    tracing::info!(
        "keel {} starting: data dir {}, {} shards, durability {}, {} router threads",
        env!("CARGO_PKG_VERSION"),
        data_dir_abs.display(),
        cfg.shards,
        cfg.durability.as_str(),
        cfg.router_threads
    );

    let cpus = allowed_cpus();
    let placement = Layout::for_config(&cfg, &cpus);
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
    let signals = match install_signals(shared.clone()) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("cannot install signal handlers: {e}")),
    };

    let children: Arc<Mutex<Vec<Option<u32>>>> = Arc::new(Mutex::new(vec![None; cfg.shards as usize]));
    let ever_ready: Arc<Vec<AtomicBool>> = Arc::new((0..cfg.shards).map(|_| AtomicBool::new(false)).collect());
    let startup_failed = Arc::new(Mutex::new(None::<String>));
    let mut supervisors = Vec::new();
    for i in 0..cfg.shards {
        let (shared, children, ever_ready, failed) = (shared.clone(), children.clone(), ever_ready.clone(), startup_failed.clone());
        let socket = sockets[i as usize].clone();
        supervisors.push(std::thread::Builder::new().name(format!("keel-sup-{i}")).spawn(move || supervise(i, socket, shared, children, ever_ready, failed)).expect("spawn supervisor thread"));
    }

    // Wait for every shard to accept on its socket (it binds after recovery).
    let t0 = Instant::now();
    let mut last_note = Instant::now();
    loop {
        if let Some(msg) = startup_failed.lock().unwrap().clone() {
            shared.shutdown.store(true, Ordering::SeqCst);
            stop_shards(&children);
            return fail(1, msg);
        }
        if shared.shutdown.load(Ordering::SeqCst) {
            stop_shards(&children);
            for s in supervisors {
                let _ = s.join();
            }
            tracing::info!("keel stopped during startup (signal)");
            return ExitCode::SUCCESS;
        }
        let ready = sockets.iter().enumerate().filter(|(i, s)| {
            let ok = std::os::unix::net::UnixStream::connect(s).is_ok();
            if ok {
                ever_ready[*i].store(true, Ordering::SeqCst);
            }
            ok
        }).count();
        if ready == sockets.len() {
            break;
        }
        if last_note.elapsed() > Duration::from_secs(5) {
            tracing::info!("waiting for shards to recover: {ready}/{} ready after {:.0?}", sockets.len(), t0.elapsed());
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    tracing::info!("{}", placement.describe(&cfg));
    let mut executors = Vec::new();
    for (t, listener) in listeners.into_iter().enumerate() {
        let pin = match placement.router_cpu(t) {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let sh = shared.clone();
        let sockets = sockets.clone();
        let fd = listener.into_raw_fd();
        let handle = LocalExecutorBuilder::new(pin)
            .name(&format!("keel-router-{t}"))
            .io_memory(512 << 10)
            .spawn(move || async move {
                // SAFETY: `fd` is a listening TCP socket we own; ownership moves here.
                let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
                serve_executor(t, listener, sh, sockets).await
            });
        match handle {
            Ok(h) => executors.push(h),
            Err(e) => {
                shared.shutdown.store(true, Ordering::SeqCst);
                stop_shards(&children);
                return fail(1, format!("cannot start router executor {t}: {e}"));
            }
        }
    }
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
    tracing::info!("router stopped accepting and drained its clients; stopping shards");
    stop_shards(&children);
    for s in supervisors {
        let _ = s.join();
    }
    signals.close();
    tracing::info!("keel stopped: signal received, all shards synced and exited");
    ExitCode::SUCCESS
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Where executors run. DESIGN §7 pins executors only when each gets a core; keel
/// refines that: router executor `i` and shard `i` deliberately share CPU `i` (they hand
/// requests to each other, so sharing a core turns a cross-core wake-up into a plain
/// context switch). That layout is used when the router threads and the shards each
/// fit the allowed CPUs; otherwise nothing is pinned. Measured on the 2-core machine:
/// bench-results/kv.md ("Placement").
#[derive(Clone, Debug)]
pub struct Layout {
    /// CPU ids by index (the process's allowed CPUs, ascending); empty = unpinned.
    cpus: Vec<usize>,
    /// How many CPUs the process may use.
    allowed: usize,
}

impl Layout {
    /// The layout for `cfg` on the `allowed` CPU ids (ascending).
    pub fn for_config(cfg: &Config, allowed: &[usize]) -> Layout {
        let fits = cfg.router_threads <= allowed.len() && cfg.shards as usize <= allowed.len();
        Layout { cpus: if fits { allowed.to_vec() } else { Vec::new() }, allowed: allowed.len() }
    }

    /// Router executor `i` and shard `i` share a pinned CPU.
    pub fn colocated(&self) -> bool {
        !self.cpus.is_empty()
    }

    /// The CPU router executor `t` is pinned to, if any.
    pub fn router_cpu(&self, t: usize) -> Option<usize> {
        self.cpus.get(t).copied()
    }

    /// The CPU shard `i` is pinned to (passed as `keel shard --core`), if any.
    pub fn shard_cpu(&self, i: u32) -> Option<usize> {
        self.cpus.get(i as usize).copied()
    }

    fn describe(&self, cfg: &Config) -> String {
        if self.colocated() {
            format!(
                "placement: router executor i and shard i pinned together on CPU i (CPUs {:?})",
                &self.cpus[..cfg.router_threads.max(cfg.shards as usize)]
            )
        } else {
            format!(
                "placement: unpinned ({} router threads and {} shards do not each fit the {} allowed CPUs)",
                cfg.router_threads, cfg.shards, self.allowed
            )
        }
    }
}

/// The CPUs this process may run on (sched_getaffinity), ascending; `0..online` if that
/// call fails.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect();
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    (0..online_cpus()).collect()
}

/// `data-dir/shard-III`.
pub fn shard_dir(data_dir: &Path, i: u32) -> PathBuf {
    data_dir.join(format!("shard-{i:03}"))
}

fn lock_data_dir(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let path = dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot create lock file {}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!("data dir {} is in use by another keel process", dir.display()));
    }
    Ok(f)
}

fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

fn install_signals(shared: Arc<Shared>) -> std::io::Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let handle = signals.handle();
    std::thread::Builder::new().name("keel-signals".into()).spawn(move || {
        for sig in signals.forever() {
            tracing::info!("received signal {sig}: shutting down (stop accepting, drain, sync)");
            shared.shutdown.store(true, Ordering::SeqCst);
        }
    })?;
    Ok(handle)
}

/// Restarts shard `i` whenever it exits, with exponential back-off (50 ms doubling to
/// 5 s, reset after 30 s of uptime), until shutdown. A shard that exits before it was
/// ever ready fails startup instead of looping.
fn supervise(
    i: u32,
    socket: PathBuf,
    shared: Arc<Shared>,
    children: Arc<Mutex<Vec<Option<u32>>>>,
    ever_ready: Arc<Vec<AtomicBool>>,
    failed: Arc<Mutex<Option<String>>>,
) {
    let cfg = &shared.cfg;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            *failed.lock().unwrap() = Some(format!("cannot find own executable: {e}"));
            return;
        }
    };
    let layout = Layout::for_config(cfg, &allowed_cpus());
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut cmd = Command::new(&exe);
        cmd.arg("shard")
            .arg("--id").arg(i.to_string())
            .arg("--shards").arg(cfg.shards.to_string())
            .arg("--dir").arg(shard_dir(&cfg.data_dir, i))
            .arg("--socket").arg(&socket)
            .arg("--durability").arg(cfg.durability.as_str())
            .arg("--segment-bytes").arg(cfg.segment_bytes.to_string())
            .arg("--inline-value-max").arg(cfg.inline_value_max.to_string())
            .arg("--max-bulk-len").arg(cfg.max_bulk_len.to_string());
        if let Some(cpu) = layout.shard_cpu(i) {
            cmd.arg("--core").arg(cpu.to_string());
        }
        let started = Instant::now();
        let mut child: Child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                *failed.lock().unwrap() = Some(format!("cannot start shard {i}: {e}"));
                return;
            }
        };
        children.lock().unwrap()[i as usize] = Some(child.id());
        tracing::info!("shard {i} started as pid {} (data in {})", child.id(), shard_dir(&cfg.data_dir, i).display());
        let status = child.wait();
        children.lock().unwrap()[i as usize] = None;
        if shared.shutdown.load(Ordering::SeqCst) {
            tracing::info!("shard {i} exited: {status:?}");
            return;
        }
        if !ever_ready[i as usize].load(Ordering::SeqCst) {
            *failed.lock().unwrap() = Some(format!(
                "shard {i} failed to start ({}); see its log lines above",
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            ));
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(50);
        }
        shared.shard_restarts[i as usize].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "shard {i} died ({}); restarting in {backoff:?}; its requests get -ERR meanwhile",
            status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
        );
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// SIGTERM to every running shard; SIGKILL after 30 s.
fn stop_shards(children: &Mutex<Vec<Option<u32>>>) {
    let pids: Vec<u32> = children.lock().unwrap().iter().flatten().copied().collect();
    for &pid in &pids {
        // SAFETY: sending a signal to a child pid we started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let t0 = Instant::now();
    while children.lock().unwrap().iter().any(|c| c.is_some()) {
        if t0.elapsed() > Duration::from_secs(30) {
            for pid in children.lock().unwrap().iter().flatten() {
                tracing::error!("shard pid {pid} did not stop in 30 s; killing it");
                // SAFETY: as above.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn serve_executor(me: usize, listener: glommio::net::TcpListener, shared: Arc<Shared>, sockets: Vec<PathBuf>) {
    let links: Vec<Rc<ShardLink>> = sockets.iter().enumerate().map(|(i, s)| ShardLink::start(i as u32, s.clone())).collect();
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
            glommio::timer::sleep(Duration::from_millis(50)).await;
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
        let accepted = keel_shard::sync::unless(&shutdown, listener.accept()).await;
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
    drop(listener);
    for c in channels {
        c.await;
    }
    let _ = glommio::timer::timeout(Duration::from_secs(10), async {
        live.all_done().await;
        Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(router_threads: usize, shards: u32) -> Config {
        let flags = Overrides { router_threads: Some(router_threads), shards: Some(shards), ..Overrides::default() };
        Config::resolve(FileConfig::default(), flags, 2).unwrap()
    }

    #[test]
    fn router_executor_i_and_shard_i_share_the_ith_allowed_cpu() {
        let l = Layout::for_config(&cfg(2, 2), &[3, 5]);
        assert!(l.colocated());
        assert_eq!((l.router_cpu(0), l.router_cpu(1)), (Some(3), Some(5)));
        assert_eq!((l.shard_cpu(0), l.shard_cpu(1)), (Some(3), Some(5)));
        let l = Layout::for_config(&cfg(1, 2), &[0, 1]);
        assert_eq!((l.router_cpu(0), l.shard_cpu(1)), (Some(0), Some(1)));
    }

    #[test]
    fn nothing_is_pinned_when_either_side_does_not_fit() {
        for (t, s) in [(3, 2), (2, 3)] {
            let l = Layout::for_config(&cfg(t, s), &[0, 1]);
            assert!(!l.colocated(), "{t} router threads, {s} shards on 2 CPUs");
            assert_eq!((l.router_cpu(0), l.shard_cpu(0)), (None, None));
        }
    }
}
