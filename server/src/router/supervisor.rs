//! The shard processes (DESIGN §1): one supervisor thread per shard starts
//! `keel shard` with its [`ShardConfig`] as TOML on stdin, watches it, and restarts it
//! when it dies, with exponential back-off;
//! [`Supervisor::wait_ready`] holds the startup until every shard accepts on its socket,
//! and [`Supervisor::stop`] ends them all at shutdown.
//!
//! Watching (every [`POLL`]): has the process exited? While it starts (its socket does
//! not accept yet), has it made progress (CPU time or I/O, [`Progress`]) in the last
//! `shard_timeout`? Once ready, has it missed its health checks for `shard_timeout`?
//! A check is a `PING` frame over the supervisor's own connection ([`Pinger`], one at a
//! time, every [`health::ping_interval`] I); it counts as missed once the next one is
//! due (I after it was sent) with no reply, so the shard is hung when a ping has waited
//! `shard_timeout` + I. That is later than the routers' links give up on a request
//! (`shard_timeout`), so a request sent as the shard hung gets
//! `-ERR shard N is not responding`, not a lost connection. A shard that fails either
//! check is hung: the supervisor logs why (shard number, pid, what it waited for) and
//! sends it SIGKILL (which also ends a stopped process); its exit is then handled as
//! any death, so it is restarted. Client connections handed off to it close with it.

use super::placement::Layout;
use super::datadir::shard_dir;
use super::health::{self, Pinger, Progress};
use crate::cmd::Shared;
use keel_config::Config;
use keel_shard::ShardConfig;
use rustix::process::{kill_process, Pid, Signal};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

// Every `inline_value_max` the config accepts fits a keydir record.
const _: () = assert!(keel_config::MAX_INLINE_VALUE <= keel_storage::INLINE_VALUE_CAP);
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a supervisor thread looks at its shard (exit, progress, health check).
const POLL: Duration = Duration::from_millis(20);
/// How many times in a row a shard that was never ready may be killed for making no
/// progress while starting before the startup fails.
const MAX_STALLED_FIRST_STARTS: u32 = 3;

/// The running shard processes and their supervisor threads.
pub struct Supervisor {
    /// Per shard, the pid of its running process.
    children: Arc<Mutex<Vec<Option<u32>>>>,
    /// Per shard, whether it ever accepted on its socket (a shard that exits before
    /// that fails the startup instead of being restarted).
    ever_ready: Arc<Vec<AtomicBool>>,
    /// Why the startup failed, set by a supervisor thread.
    failed: Arc<Mutex<Option<String>>>,
    /// Per shard: how its last process exited at shutdown, if one was running.
    threads: Vec<JoinHandle<Option<std::io::Result<ExitStatus>>>>,
    sockets: Vec<PathBuf>,
}

/// How [`Supervisor::wait_ready`] ended.
pub enum Startup {
    /// Every shard accepts on its socket.
    Ready,
    /// A shard could not be started (the message says which and why).
    Failed(String),
    /// A signal asked for shutdown meanwhile.
    Stopped,
}

impl Supervisor {
    /// Starts one supervisor thread per shard; shard `i` listens on `sockets[i]`.
    /// Errors: a shard's configuration cannot be serialized (nothing is started then).
    pub fn start(shared: &Arc<Shared>, sockets: &[PathBuf], layout: &Layout) -> Result<Supervisor, String> {
        let n = sockets.len();
        let configs = (0..n as u32)
            .map(|i| shard_config(&shared.cfg, i, &sockets[i as usize], layout.shard_cpu(i)).to_toml())
            .collect::<Result<Vec<String>, String>>()?;
        let sup = Supervisor {
            children: Arc::new(Mutex::new(vec![None; n])),
            ever_ready: Arc::new((0..n).map(|_| AtomicBool::new(false)).collect()),
            failed: Arc::new(Mutex::new(None)),
            threads: Vec::with_capacity(n),
            sockets: sockets.to_vec(),
        };
        let threads = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| {
                let shard = ShardProcess {
                    id: i as u32,
                    socket: sup.sockets[i].clone(),
                    config,
                    shared: shared.clone(),
                    children: sup.children.clone(),
                    ever_ready: sup.ever_ready.clone(),
                    failed: sup.failed.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("keel-sup-{i}"))
                    .spawn(move || shard.supervise())
                    .expect("spawn supervisor thread")
            })
            .collect();
        Ok(Supervisor { threads, ..sup })
    }

    /// Waits until every shard accepts on its socket (it binds after recovery), a shard
    /// fails to start, or `shared.shutdown` is set; logs progress every 5 s.
    pub fn wait_ready(&self, shared: &Shared) -> Startup {
        let t0 = Instant::now();
        let mut last_note = Instant::now();
        loop {
            if let Some(msg) = self.failed.lock().unwrap().clone() {
                return Startup::Failed(msg);
            }
            if shared.shutdown.load(Ordering::SeqCst) {
                return Startup::Stopped;
            }
            let ready = self
                .sockets
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    let ok = std::os::unix::net::UnixStream::connect(s).is_ok();
                    if ok {
                        self.ever_ready[*i].store(true, Ordering::SeqCst);
                    }
                    ok
                })
                .count();
            if ready == self.sockets.len() {
                return Startup::Ready;
            }
            if last_note.elapsed() > Duration::from_secs(5) {
                tracing::info!("waiting for shards to recover: {ready}/{} ready after {:.0?}", self.sockets.len(), t0.elapsed());
                last_note = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets `shared.shutdown` (no more restarts), sends SIGTERM to every running shard
    /// (and SIGCONT, for a stopped one; SIGKILL after 30 s), and waits for the
    /// supervisor threads. Errors: which shards did not exit with status 0 (e.g. one whose final sync failed), and how they
    /// exited.
    pub fn stop(self, shared: &Shared) -> Result<(), String> {
        shared.shutdown.store(true, Ordering::SeqCst);
        stop_shards(&self.children);
        let exits: Vec<(usize, Option<std::io::Result<ExitStatus>>)> =
            self.threads.into_iter().map(|t| t.join().unwrap_or(None)).enumerate().collect();
        check_exits(&exits)
    }
}

/// True if a shard process ended by SIGTERM or SIGINT itself, not by its handler: it got
/// the signal while still starting, before it installed its handlers, which it does
/// before it opens its store (`keel_shard::run`), so it had served nothing and changed
/// nothing. That happens when a whole process group is signalled right after a shard
/// was (re)started.
fn stopped_while_starting(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status.signal(), Some(s) if s == Signal::TERM.as_raw() || s == Signal::INT.as_raw())
}

/// `Err` naming every shard whose last process did not exit with status 0 ("shard 0
/// exited with exit status: 1"); shards with no process running, or stopped while
/// starting ([`stopped_while_starting`]), are fine.
fn check_exits(exits: &[(usize, Option<std::io::Result<ExitStatus>>)]) -> Result<(), String> {
    let bad: Vec<String> = exits
        .iter()
        .filter_map(|(i, exit)| match exit {
            Some(Ok(status)) if status.success() || stopped_while_starting(status) => None,
            Some(Ok(status)) => Some(format!("shard {i} exited with {status}")),
            Some(Err(e)) => Some(format!("shard {i}: wait for its exit: {e}")),
            None => None,
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join(", "))
    }
}

/// Shard `i`'s configuration, from the router's: its directory and socket, its CPU (if
/// pinned), the limits it shares with the router, its store's options.
fn shard_config(cfg: &Config, i: u32, socket: &std::path::Path, core: Option<usize>) -> ShardConfig {
    ShardConfig {
        id: i,
        n_shards: cfg.shards,
        dir: shard_dir(&cfg.data_dir, i),
        socket: socket.to_owned(),
        core,
        max_bulk_len: cfg.max_bulk_len,
        client_query_buffer_limit: cfg.client_query_buffer_limit,
        max_frame_len: cfg.max_frame_len,
        databases: cfg.databases,
        inflight_bytes: usize::try_from(cfg.inflight_bytes).unwrap_or(usize::MAX),
        store: keel_storage::StoreOptions {
            durability: cfg.durability,
            segment_bytes: cfg.segment_bytes,
            inline_value_max: cfg.inline_value_max,
            cache_bytes: cfg.cache_bytes,
            ..Default::default()
        },
    }
}

/// What one supervisor thread needs.
struct ShardProcess {
    id: u32,
    /// Its `shard.sock`.
    socket: PathBuf,
    /// Its [`ShardConfig`] as TOML, written to the process's stdin at every start.
    config: String,
    shared: Arc<Shared>,
    children: Arc<Mutex<Vec<Option<u32>>>>,
    ever_ready: Arc<Vec<AtomicBool>>,
    failed: Arc<Mutex<Option<String>>>,
}

/// How [`ShardProcess::watch`] saw a process end.
struct Ended {
    status: std::io::Result<ExitStatus>,
    /// Set when the supervisor killed it as hung: why.
    killed: Option<Hung>,
}

/// Why a shard was killed as hung.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hung {
    /// It made no progress for `shard_timeout` while starting.
    Starting,
    /// It missed its health checks for `shard_timeout` (a ping waited `shard_timeout` +
    /// one ping interval).
    Unhealthy,
}

impl ShardProcess {
    /// Restarts the shard whenever it exits, with exponential back-off (50 ms doubling
    /// to 5 s, reset after 30 s of uptime), until shutdown. A shard that exits before it
    /// was ever ready fails startup instead of looping, unless it was killed for making
    /// no progress while starting (a hang, not an answer): that is retried up to
    /// [`MAX_STALLED_FIRST_STARTS`] times. Returns how the process running at shutdown
    /// exited (`None` if none was).
    fn supervise(self) -> Option<std::io::Result<ExitStatus>> {
        let i = self.id;
        let cfg = &self.shared.cfg;
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                *self.failed.lock().unwrap() = Some(format!("cannot find own executable: {e}"));
                return None;
            }
        };
        let mut backoff = Duration::from_millis(50);
        let mut stalled_first_starts = 0;
        loop {
            let started = Instant::now();
            let mut child: Child = match Command::new(&exe).arg("shard").stdin(Stdio::piped()).spawn() {
                Ok(c) => c,
                Err(e) => {
                    *self.failed.lock().unwrap() = Some(format!("cannot start shard {i}: {e}"));
                    return None;
                }
            };
            // Dropping stdin closes it: the shard reads to its end. A shard that died
            // before reading is reported by `wait` below.
            if let Some(mut stdin) = child.stdin.take() {
                if let Err(e) = stdin.write_all(self.config.as_bytes()) {
                    tracing::warn!("shard {i}: write its configuration: {e}");
                }
            }
            self.children.lock().unwrap()[i as usize] = Some(child.id());
            tracing::info!("shard {i} started as pid {} (data in {})", child.id(), shard_dir(&cfg.data_dir, i).display());
            let Ended { status, killed } = self.watch(&mut child);
            self.children.lock().unwrap()[i as usize] = None;
            if self.shared.shutdown.load(Ordering::SeqCst) {
                match &status {
                    Ok(s) if s.success() => tracing::info!("shard {i} exited: {s}"),
                    Ok(s) if stopped_while_starting(s) => {
                        tracing::warn!("shard {i} was stopped by {s} while still starting (before it opened its store)")
                    }
                    Ok(s) => tracing::error!("shard {i} exited at shutdown with {s}; see its log lines above"),
                    Err(e) => tracing::error!("shard {i}: wait for its exit: {e}"),
                }
                return Some(status);
            }
            if !self.ever_ready[i as usize].load(Ordering::SeqCst) {
                if killed == Some(Hung::Starting) && stalled_first_starts + 1 < MAX_STALLED_FIRST_STARTS {
                    stalled_first_starts += 1;
                    tracing::warn!(
                        "shard {i} stalled before it was ever ready; starting it again (try {} of {MAX_STALLED_FIRST_STARTS})",
                        stalled_first_starts + 1
                    );
                    std::thread::sleep(backoff);
                    continue;
                }
                let why = match killed {
                    Some(_) => format!("made no progress for {:?} (shard_timeout) while starting; killed", cfg.shard_timeout()),
                    None => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                };
                *self.failed.lock().unwrap() = Some(format!("shard {i} failed to start ({why}); see its log lines above"));
                return None;
            }
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(50);
            }
            self.shared.shard_restarts[i as usize].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "shard {i} died ({}); restarting in {backoff:?}; its requests get -ERR meanwhile",
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if self.shared.shutdown.load(Ordering::SeqCst) {
                return None;
            }
        }
    }

    /// Waits for `child` to exit, every [`POLL`] checking on it (see the module docs);
    /// kills it (SIGKILL) when it is hung. After shutdown began it only waits:
    /// [`Supervisor::stop`] ends the shards.
    fn watch(&self, child: &mut Child) -> Ended {
        let (i, pid) = (self.id, child.id());
        let timeout = self.shared.cfg.shard_timeout();
        let interval = health::ping_interval(timeout);
        let mut killed = None;
        // Starting: the last change of its counters. Ready: its health checks.
        let mut progress = (Progress::of(pid), Instant::now());
        let mut pinger: Option<Pinger> = None;
        let mut ready = false;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ended { status: Ok(status), killed },
                Ok(None) => {}
                Err(e) => return Ended { status: Err(e), killed },
            }
            if killed.is_some() || self.shared.shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(POLL);
                continue;
            }
            let hung = if !ready {
                match Pinger::connect(&self.socket, POLL) {
                    Ok(p) => {
                        ready = true;
                        self.ever_ready[i as usize].store(true, Ordering::SeqCst);
                        pinger = Some(p);
                        None
                    }
                    Err(_) => {
                        let now = Progress::of(pid);
                        if now != progress.0 {
                            progress = (now, Instant::now());
                        }
                        std::thread::sleep(POLL);
                        (progress.1.elapsed() >= timeout).then_some(Hung::Starting)
                    }
                }
            } else {
                match pinger.as_mut().map(|p| p.step(interval)) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        // The shard closed it (it is exiting: `try_wait` sees it next),
                        // or the stream broke: connect again, the check restarts.
                        tracing::debug!("shard {i}: health check connection: {e}");
                        pinger = None;
                        std::thread::sleep(POLL);
                    }
                    None => match Pinger::connect(&self.socket, POLL) {
                        Ok(p) => pinger = Some(p),
                        Err(e) => {
                            tracing::debug!("shard {i}: health check connect: {e}");
                            std::thread::sleep(POLL);
                        }
                    },
                }
                pinger.as_ref().is_some_and(|p| p.overdue() >= timeout + interval).then_some(Hung::Unhealthy)
            };
            if let Some(why) = hung {
                match why {
                    Hung::Starting => tracing::error!(
                        "shard {i} (pid {pid}) made no progress (CPU time, I/O) for {timeout:?} (shard_timeout) while starting; killing it (SIGKILL) to restart it"
                    ),
                    Hung::Unhealthy => tracing::error!(
                        "shard {i} (pid {pid}) missed its health checks for {timeout:?} (shard_timeout): no reply to a PING sent {:?} ago; killing it (SIGKILL) to restart it",
                        pinger.as_ref().map_or(Duration::ZERO, |p| p.overdue())
                    ),
                }
                signal(pid, Signal::KILL);
                killed = Some(why);
            }
        }
    }
}

/// SIGTERM to every running shard, then SIGCONT (a stopped shard would otherwise hold
/// its SIGTERM until the SIGKILL; resumed, it syncs and exits as the others do; a
/// running one ignores SIGCONT); SIGKILL after 30 s.
fn stop_shards(children: &Mutex<Vec<Option<u32>>>) {
    let pids: Vec<u32> = children.lock().unwrap().iter().flatten().copied().collect();
    for &pid in &pids {
        signal(pid, Signal::TERM);
        signal(pid, Signal::CONT);
    }
    let t0 = Instant::now();
    while children.lock().unwrap().iter().any(|c| c.is_some()) {
        if t0.elapsed() > Duration::from_secs(30) {
            for pid in children.lock().unwrap().iter().flatten() {
                tracing::error!("shard pid {pid} did not stop in 30 s; killing it");
                signal(*pid, Signal::KILL);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig` to the child process `pid` (one the supervisor started and has not
/// reaped); a failure (it exited meanwhile) is logged.
fn signal(pid: u32, sig: Signal) {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return };
    if let Err(e) = kill_process(p, sig) {
        tracing::debug!("signal {sig:?} to shard pid {pid}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::check_exits;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn shutdown_names_the_shards_that_did_not_exit_0() {
        let exit = |code: i32| Some(Ok(ExitStatus::from_raw(code << 8)));
        assert_eq!(check_exits(&[(0, exit(0)), (1, None), (2, exit(0))]), Ok(()));
        assert_eq!(check_exits(&[(0, exit(0)), (1, exit(1))]), Err("shard 1 exited with exit status: 1".to_string()));
        // SIGTERM (15) or SIGINT (2) before the shard's handlers exist: it was starting.
        let signalled = |sig: i32| Some(Ok(ExitStatus::from_raw(sig)));
        assert_eq!(check_exits(&[(0, signalled(15)), (1, signalled(2))]), Ok(()));
        let killed = signalled(9);
        assert_eq!(
            check_exits(&[(0, exit(1)), (1, killed)]),
            Err("shard 0 exited with exit status: 1, shard 1 exited with signal: 9 (SIGKILL)".to_string())
        );
    }
}
