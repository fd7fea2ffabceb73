//! Shared harness for the integration tests: start the real `keel` binary on a free
//! loopback port with a short temporary data dir, talk to it, stop or kill it.
//!
//! Every server runs in its own process group (router + shard processes), so a test
//! can SIGKILL all of it at once and `Drop` never leaves processes behind. The router's
//! stderr goes to a log file whose tail is printed when a test fails.

#![allow(dead_code)]

/// The command-family tests every protocol runs: one `#[test]` per family, each on its
/// own server, calling the `suite` function of the same purpose with `$proto`.
#[allow(unused_macros)]
macro_rules! protocol_suite {
    ($proto:expr) => {
        #[test]
        fn connection_commands() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::connection_commands(&srv, $proto);
        }
        #[test]
        fn strings() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::strings(&srv, $proto);
        }
        #[test]
        fn counters() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::counters(&srv, $proto);
        }
        #[test]
        fn multi_key_commands_across_shards() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::multi_key(&srv, $proto);
        }
        #[test]
        fn keyspace_commands_fan_out() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::keyspace(&srv, $proto);
        }
        #[test]
        fn server_commands() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::server_commands(&srv, $proto);
        }
        #[test]
        fn vectors() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::vectors(&srv, $proto);
        }
        #[test]
        fn databases() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::databases(&srv, $proto);
        }
        #[test]
        fn vector_errors_change_nothing() {
            let scratch = common::Scratch::new();
            let srv = common::Server::start(&scratch, &[]);
            common::suite::vector_errors(&srv, $proto);
        }
    };
}

pub mod check;
pub mod suite;
pub mod wire;

pub use rustix::process::Signal;
use rustix::process::{kill_process, kill_process_group, Pid};
use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to come up (shards recover before they accept). Generous:
/// tests run in parallel on a 2-core machine, in debug builds.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Read/write timeout on client connections: a request that hangs fails the test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub fn keel_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keel")
}

/// A short temporary directory `/tmp/keel-XXXXXX` (Unix socket paths under the data
/// dir must stay below 100 bytes). The data dir is `<scratch>/d`.
pub struct Scratch {
    dir: tempfile::TempDir,
    starts: Cell<u32>,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new().prefix("keel-").tempdir_in("/tmp").expect("create temp dir in /tmp");
        Scratch { dir, starts: Cell::new(0) }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The data dir used by [`Server::start`].
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("d")
    }

    fn next_log(&self) -> PathBuf {
        let n = self.starts.get() + 1;
        self.starts.set(n);
        self.dir.path().join(format!("keel-{n}.log"))
    }
}

/// A running `keel` router (and its shards).
pub struct Server {
    child: Option<Child>,
    /// The router's pid (= its process group id).
    pub pid: i32,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Starts keel on `scratch`'s data dir with `--resp-addr 127.0.0.1:0`,
    /// `--router-threads 1` and `--shards 2` unless `args` gives them; waits until PING answers and every
    /// shard link is up (DBSIZE succeeds).
    pub fn start(scratch: &Scratch, args: &[&str]) -> Server {
        Server::start_with_data_dir(scratch, &scratch.data_dir(), args)
    }

    /// As [`start`](Self::start) with `data_dir` as the data dir.
    pub fn start_with_data_dir(scratch: &Scratch, data_dir: &Path, args: &[&str]) -> Server {
        let data_dir = data_dir.to_owned();
        let log = scratch.next_log();
        let mut all: Vec<String> = vec!["--data-dir".into(), data_dir.display().to_string()];
        if !args.contains(&"--resp-addr") {
            all.extend(["--resp-addr".into(), "127.0.0.1:0".into()]);
        }
        if !args.contains(&"--router-threads") {
            all.extend(["--router-threads".into(), "1".into()]);
        }
        if !args.contains(&"--shards") {
            all.extend(["--shards".into(), "2".into()]);
        }
        all.extend(args.iter().map(|s| s.to_string()));
        let child = spawn_keel(&all, &log);
        let pid = child.id() as i32;
        let mut s = Server { child: Some(child), pid, addr: "127.0.0.1:1".parse().unwrap(), data_dir, log };
        s.addr = s.wait_ready();
        s
    }

    /// As [`start`](Self::start) but without `--data-dir`, run from `scratch`'s directory:
    /// the default, relative data dir `./data` (what the README's run command uses).
    pub fn start_default_data_dir(scratch: &Scratch) -> Server {
        let log = scratch.next_log();
        let all: Vec<String> =
            ["--resp-addr", "127.0.0.1:0", "--router-threads", "1", "--shards", "2"].iter().map(|s| s.to_string()).collect();
        let child = spawn_keel_in(&all, &log, Some(scratch.path()));
        let pid = child.id() as i32;
        let data_dir = scratch.path().join("data");
        let mut s = Server { child: Some(child), pid, addr: "127.0.0.1:1".parse().unwrap(), data_dir, log };
        s.addr = s.wait_ready();
        s
    }

    fn wait_ready(&mut self) -> SocketAddr {
        let t0 = Instant::now();
        let addr = loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.child = None;
                panic!("keel exited during startup with {status:?}\n{}", self.log_tail());
            }
            if let Some(a) = find_ready_addr(&read_lossy(&self.log)) {
                break a;
            }
            if t0.elapsed() > START_TIMEOUT {
                panic!("keel did not log 'serving RESP on' within {START_TIMEOUT:?}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // PING is answered by the router; DBSIZE needs every shard link.
        loop {
            let ok = (|| -> redis::RedisResult<()> {
                let mut c = connect(&format!("redis://{addr}/"))?;
                let pong: String = redis::cmd("PING").query(&mut c)?;
                assert_eq!(pong, "PONG");
                let _: i64 = redis::cmd("DBSIZE").query(&mut c)?;
                Ok(())
            })();
            if ok.is_ok() {
                return addr;
            }
            if t0.elapsed() > START_TIMEOUT {
                panic!("keel at {addr} not answering PING + DBSIZE within {START_TIMEOUT:?}: {ok:?}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// A RESP2 connection.
    pub fn con(&self) -> redis::Connection {
        connect(&self.url()).unwrap_or_else(|e| panic!("connect to keel: {e}\n{}", self.log_tail()))
    }

    /// A RESP3 connection (the client sends `HELLO 3`).
    pub fn con3(&self) -> redis::Connection {
        connect(&format!("redis://{}/?protocol=resp3", self.addr))
            .unwrap_or_else(|e| panic!("connect to keel (resp3): {e}\n{}", self.log_tail()))
    }

    /// A raw TCP connection with read/write timeouts.
    pub fn raw(&self) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect raw");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// The shard processes as (shard id, pid), sorted by id.
    pub fn shard_pids(&self) -> Vec<(u32, i32)> {
        shard_children(self.pid)
    }

    /// The pid of shard `id`; panics if it is not running.
    pub fn shard_pid(&self, id: u32) -> i32 {
        self.shard_pids()
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("shard {id} not running; shards: {:?}\n{}", self.shard_pids(), self.log_tail()))
    }

    /// SIGTERM to the router; asserts it exits 0 in time and that its shards are gone.
    pub fn stop(mut self) {
        self.signal_stop(Signal::TERM);
    }

    /// As [`stop`] with SIGINT.
    pub fn stop_sigint(mut self) {
        self.signal_stop(Signal::INT);
    }

    fn signal_stop(&mut self, sig: Signal) {
        let shards = self.shard_pids();
        kill(self.pid, sig);
        let status = self.wait_exit(STOP_TIMEOUT);
        match status {
            Some(st) if st.code() == Some(0) => {}
            other => panic!("keel did not exit 0 after signal {sig:?}: {other:?}\n{}", self.log_tail()),
        }
        for (id, pid) in shards {
            assert!(wait_gone(pid, Duration::from_secs(10)), "shard {id} (pid {pid}) still running after the router exited\n{}", self.log_tail());
        }
    }

    /// Waits for the router to exit; `None` on timeout (the process is then left running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(st);
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL to the whole process group (router and shards); waits until all are gone.
    pub fn kill9(mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        let shards = self.shard_pids();
        if let Some(mut child) = self.child.take() {
            kill_group(self.pid);
            let _ = child.wait();
        }
        for (_, pid) in shards {
            wait_gone(pid, Duration::from_secs(10));
        }
    }

    /// The last lines of the router's log (it includes the shards' output).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_group();
        }
        if std::thread::panicking() {
            eprintln!("---- keel log {} ----\n{}", self.log.display(), self.log_tail());
        }
    }
}

fn spawn_keel(args: &[String], log: &Path) -> Child {
    spawn_keel_in(args, log, None)
}

fn spawn_keel_in(args: &[String], log: &Path, cwd: Option<&Path>) -> Child {
    let f = File::create(log).expect("create log file");
    let mut cmd = Command::new(keel_bin());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("KEEL_LOG")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .process_group(0)
        .spawn()
        .expect("spawn keel")
}

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let c = redis::Client::open(url)?.get_connection_with_timeout(IO_TIMEOUT)?;
    c.set_read_timeout(Some(IO_TIMEOUT))?;
    c.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(c)
}

fn find_ready_addr(log: &str) -> Option<SocketAddr> {
    let at = log.find("serving RESP on ")? + "serving RESP on ".len();
    let tok: String = log[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    tok.parse().ok()
}

pub fn read_lossy(p: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(p) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn log_tail(p: &Path) -> String {
    let text = read_lossy(p);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(60);
    lines[from..].join("\n")
}

/// The result of running keel to completion.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Exit {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Checks that each of `bad` values of a byte-size setting — `key` in the config file,
/// `--flag` on the command line (`("flag" | "file", value)` pairs) — makes keel exit 2
/// with the one line `keel: invalid KEY VALUE: expected RANGE`, and that a value with a
/// unit suffix (`unit_value`, e.g. `32MiB`: the setting takes bytes) is refused too,
/// creating nothing.
pub fn assert_bad_byte_setting(scratch: &Scratch, key: &str, flag: &str, bad: &[(&str, &str)], range: &str, unit_value: &str) {
    let data = scratch.data_dir().display().to_string();
    let cfg = scratch.path().join("keel.toml");
    let cfg_s = cfg.display().to_string();
    for &(how, bad) in bad {
        let mut args = vec!["--data-dir", &data, "--resp-addr", "127.0.0.1:0", "--router-threads", "1"];
        if how == "flag" {
            args.extend([flag, bad]);
        } else {
            std::fs::write(&cfg, format!("{key} = {bad}\n")).unwrap();
            args.extend(["--config", &cfg_s]);
        }
        let out = run_keel(&args);
        assert_eq!(out.code(), Some(2), "{how} {bad}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines, vec![format!("keel: invalid {key} {bad}: expected {range}")], "{how} {bad}");
    }
    let out = run_keel(&["--data-dir", &data, flag, unit_value]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(!scratch.data_dir().exists(), "a refused start creates nothing");
}

/// Runs keel with exactly `args`, expecting it to exit on its own within 60 s (config
/// errors, `--help`). Kills it and panics if it is still running then.
pub fn run_keel(args: &[&str]) -> Exit {
    run_keel_with_stdin(args, None)
}

/// As [`run_keel`], with `stdin` as its standard input (`None`: empty).
pub fn run_keel_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Exit {
    let scratch_out = tempfile::Builder::new().prefix("keel-o").tempdir_in("/tmp").unwrap();
    let out_p = scratch_out.path().join("out");
    let err_p = scratch_out.path().join("err");
    let mut child = Command::new(keel_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap())
        .process_group(0)
        .spawn()
        .expect("spawn keel");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        // The process may exit before reading all of it; that is its answer.
        let _ = pipe.write_all(input);
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > START_TIMEOUT {
            kill_group(child.id() as i32);
            let _ = child.wait();
            panic!("keel {args:?} did not exit within {START_TIMEOUT:?}; stderr:\n{}", read_lossy(&err_p));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Exit { status, stdout: read_lossy(&out_p), stderr: read_lossy(&err_p) }
}

/// Sends `sig` to `pid` (a process this test started); panics if that fails.
pub fn kill(pid: i32, sig: Signal) {
    let p = Pid::from_raw(pid).expect("a real pid");
    kill_process(p, sig).unwrap_or_else(|e| panic!("signal {sig:?} to pid {pid}: {e}"));
}

/// SIGKILL to the process group `pgid` (a server this test started, in its own group).
pub fn kill_group(pgid: i32) {
    signal_group(pgid, Signal::KILL);
}

/// `sig` to the process group `pgid` (a server this test started, in its own group).
pub fn signal_group(pgid: i32, sig: Signal) {
    let p = Pid::from_raw(pgid).expect("a real pgid");
    let _ = kill_process_group(p, sig);
}

/// Children of `parent` that run `keel shard`, as (shard id I, pid). A shard names its
/// thread `keel-shard-I` (`/proc/PID/comm`) once it read its configuration.
pub fn shard_children(parent: i32) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Some((state, ppid)) = proc_state(pid) else { continue };
        if ppid != parent || state == 'Z' {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let argv: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if argv.get(1).map(String::as_str) != Some("shard") {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if let Some(id) = comm.trim_end().strip_prefix("keel-shard-").and_then(|s| s.parse().ok()) {
            out.push((id, pid));
        }
    }
    out.sort();
    out
}

/// (state, ppid) from /proc/PID/stat.
fn proc_state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True once `pid` no longer runs (gone or a zombie); false after `timeout`.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        match proc_state(pid) {
            None | Some(('Z', _)) | Some(('X', _)) => return true,
            _ => {}
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Resident set size of `pid`, bytes.
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// DESIGN §1: tenant = key bytes before the first ':' (whole key if none);
/// shard = xxh3_64(tenant) % n.
pub fn shard_of(key: &str, n_shards: u32) -> u32 {
    let tenant = key.split(':').next().unwrap_or(key);
    (xxhash_rust::xxh3::xxh3_64(tenant.as_bytes()) % n_shards as u64) as u32
}

/// `count` tenant names (`{prefix}0`, `{prefix}1`, …) that land on shard `shard` of `n`.
pub fn tenants_on(prefix: &str, shard: u32, n: u32, count: usize) -> Vec<String> {
    (0..).map(|i| format!("{prefix}{i}")).filter(|t| shard_of(t, n) == shard).take(count).collect()
}

/// Little-endian f32 blob, as SKEG.VSET / SKEG.VSEARCH take it.
pub fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The server's error line for a failed request: `CODE detail` (e.g. `ERR syntax error`).
pub fn err_line(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

/// The text of a string-like reply (bulk, simple, verbatim, OK).
pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Okay => "OK".into(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}
