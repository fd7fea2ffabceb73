//! A hung shard (issue 15, "A hung shard"): a shard process that stops answering
//! (SIGSTOP here; a stuck disk or a deadlock look the same from outside) must not hang
//! its clients or stall the other shards. With `shard_timeout` = 1 s: a request to its
//! keys fails after the timeout with `-ERR shard N is not responding`, keyspace-wide
//! commands that need it fail the same way, the other shard's keys are served meanwhile,
//! and the supervisor kills the shard (it missed its health checks) and restarts it with
//! every acknowledged write. A shard stuck while starting is killed and started again.
//! Config: `shard_timeout` is validated.

mod common;

use common::{err_line, run_keel, tenants_on, Scratch, Server, Signal};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `shard_timeout` of these tests.
const TIMEOUT: Duration = Duration::from_millis(1000);

/// A config file with `shard_timeout` = [`TIMEOUT`].
fn config(scratch: &Scratch) -> String {
    let p = scratch.path().join("keel.toml");
    std::fs::write(&p, format!("shard_timeout = {}\n", TIMEOUT.as_millis())).unwrap();
    p.display().to_string()
}

/// Sends SIGCONT to a stopped shard when dropped (also when the test fails), so no
/// stopped process is left behind: the server's own `Drop` then kills the group.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.0) {
            // It may be gone already (killed by the supervisor): nothing to resume.
            let _ = rustix::process::kill_process(p, Signal::CONT);
        }
    }
}

/// `GET key` as RESP bytes.
fn get_cmd(key: &str) -> Vec<u8> {
    format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
}

/// Reads one line-shaped reply (simple string, error, integer) through its `\r\n`.
fn read_line(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
        }
        out.push(b[0]);
    }
    Ok(out)
}

/// Keys on shard `shard` of 2, one per tenant.
fn keys_on(prefix: &str, shard: u32, n: usize) -> Vec<String> {
    tenants_on(prefix, shard, 2, n).into_iter().map(|t| format!("{t}:k")).collect()
}

/// Waits until every key in `keys` reads back as `value_of(key)`, retrying while the
/// shard is restarting; panics after `within`.
fn wait_for_values(srv: &Server, keys: &[String], value_of: impl Fn(&str) -> String, within: Duration) {
    let deadline = Instant::now() + within;
    let mut c = srv.con();
    for k in keys {
        loop {
            match redis::cmd("GET").arg(k).query::<Option<String>>(&mut c) {
                Ok(v) => {
                    assert_eq!(v, Some(value_of(k)), "acknowledged {k} after the restart\n{}", srv.log_tail());
                    break;
                }
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "{k} not served again within {within:?}: {e}\n{}",
                        srv.log_tail()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Waits until shard `id` runs as a process other than every pid in `not`; returns it.
fn wait_new_pid(srv: &Server, id: u32, not: &[i32], within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(&(_, pid)) = srv.shard_pids().iter().find(|(i, p)| *i == id && !not.contains(p)) {
            return pid;
        }
        assert!(Instant::now() < deadline, "shard {id} not restarted within {within:?}\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the router's log contains `text`; panics after `within`.
fn wait_log(srv: &Server, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !common::read_lossy(&srv.log).contains(text) {
        assert!(Instant::now() < deadline, "the log never said {text:?}\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the client of the other shard saw while shard 1 was stopped.
struct Served {
    ops: usize,
    slowest: Duration,
    errors: Vec<String>,
}

/// SETs (each key to the value it already has) and GETs on shard-0 keys until `stop`, through the router (a new connection
/// every 4 commands, before it could be handed to the shard).
fn serve_other_shard(srv_url: String, keys: Vec<String>, stop: Arc<AtomicBool>) -> Served {
    let mut served = Served { ops: 0, slowest: Duration::ZERO, errors: Vec::new() };
    let client = redis::Client::open(srv_url).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let mut c = client.get_connection_with_timeout(common::IO_TIMEOUT).unwrap();
        c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        for k in keys.iter().cycle().skip(served.ops % keys.len()).take(2) {
            let t0 = Instant::now();
            let set: redis::RedisResult<String> = redis::cmd("SET").arg(k).arg(format!("value of {k}")).query(&mut c);
            let get: redis::RedisResult<String> = redis::cmd("GET").arg(k).query(&mut c);
            served.slowest = served.slowest.max(t0.elapsed() / 2);
            served.ops += 2;
            for r in [set.map(|_| ()), get.map(|_| ())] {
                if let Err(e) = r {
                    served.errors.push(err_line(&e));
                }
            }
        }
    }
    served
}

#[test]
fn a_stopped_shard_fails_its_requests_in_time_and_is_restarted_with_its_data() {
    let scratch = Scratch::new();
    let cfg = config(&scratch);
    let srv = Server::start(&scratch, &["--config", &cfg]);
    let (on1, on0) = (keys_on("hung", 1, 20), keys_on("fine", 0, 20));
    let value = |k: &str| format!("value of {k}");
    let mut c = srv.con();
    for k in on1.iter().chain(&on0) {
        let _: () = redis::cmd("SET").arg(k).arg(value(k)).query(&mut c).unwrap();
    }
    // A connection handed to shard 1 before it hangs (12 commands on one tenant).
    let mut handed = srv.raw();
    for _ in 0..12 {
        handed.write_all(&get_cmd(&on1[0])).unwrap();
        let mut header = [0u8; 1];
        handed.read_exact(&mut header).unwrap();
        assert_eq!(&header, b"$");
        read_line(&mut handed).unwrap();
        read_line(&mut handed).unwrap();
    }
    let (mut get1, mut dbsize, mut again, mut pipe) = (srv.raw(), srv.raw(), srv.raw(), srv.raw());

    let (victim, bystander) = (srv.shard_pid(1), srv.shard_pid(0));
    let _resume = Resume(victim);
    let stop_other = Arc::new(AtomicBool::new(false));
    let other = {
        let (url, keys, stop) = (srv.url(), on0.clone(), stop_other.clone());
        std::thread::spawn(move || serve_other_shard(url, keys, stop))
    };
    common::kill(victim, Signal::STOP);
    let t0 = Instant::now();

    // A GET of its key and a DBSIZE (which needs every shard) fail after the timeout.
    get1.write_all(&get_cmd(&on1[1])).unwrap();
    dbsize.write_all(b"*1\r\n$6\r\nDBSIZE\r\n").unwrap();
    // A pipeline across both shards: its replies keep their order, the hung shard's
    // in its place.
    pipe.write_all(&[get_cmd(&on0[0]), get_cmd(&on1[3]), get_cmd(&on0[1])].concat()).unwrap();
    let reply = read_line(&mut get1).unwrap();
    let waited = t0.elapsed();
    assert_eq!(String::from_utf8_lossy(&reply), "-ERR shard 1 is not responding\r\n", "{}", srv.log_tail());
    assert!(waited >= TIMEOUT, "failed after {waited:?}, before shard_timeout");
    assert!(waited < TIMEOUT + Duration::from_millis(1500), "failed only after {waited:?}\n{}", srv.log_tail());
    assert_eq!(String::from_utf8_lossy(&read_line(&mut dbsize).unwrap()), "-ERR shard 1 is not responding\r\n");
    let bulk = |v: String| format!("${}\r\n{v}\r\n", v.len());
    let want = format!("{}-ERR shard 1 is not responding\r\n{}", bulk(value(&on0[0])), bulk(value(&on0[1])));
    let mut got = vec![0u8; want.len()];
    pipe.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), want);
    // The next request to it does not wait out another timeout: it fails at once (not
    // responding, or unavailable if the supervisor has killed the shard meanwhile).
    let t1 = Instant::now();
    again.write_all(&get_cmd(&on1[2])).unwrap();
    let reply = String::from_utf8_lossy(&read_line(&mut again).unwrap()).into_owned();
    assert!(
        reply == "-ERR shard 1 is not responding\r\n"
            || reply.starts_with("-ERR shard 1 is unavailable")
            || reply.starts_with("-ERR shard 1 connection lost"),
        "{reply:?}"
    );
    assert!(t1.elapsed() < TIMEOUT / 2, "a request to a shard known not to respond waited {:?}", t1.elapsed());
    // More of them on the same connection are answered too: it is not handed to the
    // hung shard (12 batches to one shard would hand it over otherwise).
    for i in 0..12 {
        again.write_all(&get_cmd(&on1[2])).unwrap();
        let reply =
            read_line(&mut again).unwrap_or_else(|e| panic!("request {i} after the timeout: {e}\n{}", srv.log_tail()));
        assert!(reply.starts_with(b"-ERR shard 1 "), "{:?}", String::from_utf8_lossy(&reply));
    }

    // The supervisor kills it (it missed its health checks) and starts a new one.
    let restarted = wait_new_pid(&srv, 1, &[victim], Duration::from_secs(20));
    assert!(common::wait_gone(victim, Duration::from_secs(10)), "the stopped shard (pid {victim}) still exists");
    let log = common::read_lossy(&srv.log);
    assert!(
        log.contains(&format!("shard 1 (pid {victim}) missed its health checks for 1s (shard_timeout)")),
        "{}",
        srv.log_tail()
    );
    assert!(log.contains("shard 1 is not responding: a request waited 1s (shard_timeout)"), "{}", srv.log_tail());
    assert!(!log.contains("shard 0 (pid"), "shard 0 must not be killed\n{}", srv.log_tail());
    assert_eq!(srv.shard_pid(0), bystander, "shard 0 must keep running");

    // Meanwhile shard 0's keys were served, without errors or long waits.
    stop_other.store(true, Ordering::SeqCst);
    let served = other.join().unwrap();
    assert!(served.errors.is_empty(), "shard 0 failed requests while shard 1 hung: {:?}", served.errors);
    assert!(served.ops >= 20, "only {} requests to shard 0 while shard 1 hung", served.ops);
    assert!(
        served.slowest < Duration::from_millis(500),
        "a shard-0 request took {:?} while shard 1 hung",
        served.slowest
    );

    // The connection that shard 1 held is closed with it (EOF or reset), not hung.
    handed.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = handed.write_all(&get_cmd(&on1[0]));
    match read_line(&mut handed) {
        Ok(got) => panic!("a connection held by the killed shard answered {:?}", String::from_utf8_lossy(&got)),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the connection held by the hung shard hung too: {e}"
        ),
    }

    // Every acknowledged write is there after the restart, and shard 1 serves again.
    wait_for_values(&srv, &on1, value, Duration::from_secs(30));
    wait_for_values(&srv, &on0, value, Duration::from_secs(5));
    assert_eq!(srv.shard_pid(1), restarted);
    let n: i64 = redis::cmd("DBSIZE").query(&mut srv.con()).unwrap();
    assert_eq!(n, 40);
    srv.stop();
}

/// Makes shard `id`'s next start block: its O_DIRECT probe file (the first file a shard
/// writes, `shard-III/.keel-direct-io-probe`) becomes a FIFO, whose opening for writing
/// blocks until a reader comes, as on a disk that stopped answering. Returns the path.
fn block_next_start(data_dir: &Path, id: u32) -> PathBuf {
    let fifo = data_dir.join(format!("shard-{id:03}")).join(".keel-direct-io-probe");
    let _ = std::fs::remove_file(&fifo);
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", fifo.display());
    fifo
}

#[test]
fn a_shard_stuck_while_restarting_is_killed_and_started_again() {
    let scratch = Scratch::new();
    let cfg = config(&scratch);
    let srv = Server::start(&scratch, &["--config", &cfg]);
    let keys = keys_on("stuck", 1, 10);
    let mut c = srv.con();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg("kept").query(&mut c).unwrap();
    }
    let fifo = block_next_start(&srv.data_dir, 1);
    let first = srv.shard_pid(1);
    common::kill(first, Signal::KILL);
    // The new process blocks opening the FIFO; it makes no progress for 1 s.
    let stuck = wait_new_pid(&srv, 1, &[first], Duration::from_secs(20));
    wait_log(&srv, &format!("shard 1 (pid {stuck}) made no progress (CPU time, I/O) for 1s (shard_timeout) while starting; killing it (SIGKILL)"), Duration::from_secs(20));
    std::fs::remove_file(&fifo).unwrap();
    assert!(common::wait_gone(stuck, Duration::from_secs(10)), "the stuck shard (pid {stuck}) was not killed");
    wait_for_values(&srv, &keys, |_| "kept".to_string(), Duration::from_secs(30));
    let now = srv.shard_pid(1);
    assert!(now != first && now != stuck, "shard 1 must run as a new process");
    srv.stop();
}

/// At the first start there is no earlier process to fall back on: a shard that stalls
/// on every try is given up after 3 tries and keel exits 1 saying why, instead of
/// hanging.
#[test]
fn a_shard_that_never_gets_ready_fails_the_startup_after_three_tries() {
    let scratch = Scratch::new();
    let cfg = config(&scratch);
    let srv = Server::start(&scratch, &["--config", &cfg]);
    srv.stop();
    block_next_start(&scratch.data_dir(), 1);
    let data = scratch.data_dir().display().to_string();
    let out = run_keel(&[
        "--config",
        &cfg,
        "--data-dir",
        &data,
        "--resp-addr",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--router-threads",
        "1",
    ]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("keel: shard 1 failed to start (made no progress for 1s (shard_timeout) while starting; killed)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.matches("while starting; killing it (SIGKILL)").count(), 3, "{}", out.stderr);
    assert!(out.stderr.contains("try 3 of 3"), "{}", out.stderr);
}

#[test]
fn bad_shard_timeouts_exit_2_with_one_line() {
    let scratch = Scratch::new();
    let cfg = scratch.path().join("keel.toml");
    let data = scratch.data_dir().display().to_string();
    for (value, says) in [
        ("0", "invalid shard_timeout 0: expected 100 ..= 3600000 (milliseconds)"),
        ("99", "invalid shard_timeout 99: expected 100 ..= 3600000 (milliseconds)"),
        ("3600001", "invalid shard_timeout 3600001: expected 100 ..= 3600000 (milliseconds)"),
        ("-5", "shard_timeout"),
        ("\"5s\"", "shard_timeout"),
        ("1.5", "shard_timeout"),
    ] {
        std::fs::write(&cfg, format!("shard_timeout = {value}\n")).unwrap();
        let cfg_s = cfg.display().to_string();
        let out =
            run_keel(&["--config", &cfg_s, "--data-dir", &data, "--resp-addr", "127.0.0.1:0", "--router-threads", "1"]);
        assert_eq!(out.code(), Some(2), "shard_timeout = {value}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", out.stderr);
        assert!(lines[0].starts_with("keel: ") && lines[0].contains(says), "shard_timeout = {value}: {:?}", lines[0]);
    }
    assert!(!scratch.data_dir().join("keel.meta").exists(), "nothing may start on a bad config");
}

/// SIGTERM while a shard is stopped (before the supervisor killed it): the router
/// resumes it (SIGCONT after SIGTERM), so it syncs and exits and keel exits 0 at once,
/// not after the 30 s SIGKILL deadline.
#[test]
fn sigterm_while_a_shard_is_stopped_exits_0() {
    let scratch = Scratch::new();
    let cfg = config(&scratch);
    let srv = Server::start(&scratch, &["--config", &cfg]);
    let key = &keys_on("paused", 1, 1)[0];
    let _: () = redis::cmd("SET").arg(key).arg("v").query(&mut srv.con()).unwrap();
    let victim = srv.shard_pid(1);
    let _resume = Resume(victim);
    common::kill(victim, Signal::STOP);
    let t0 = Instant::now();
    srv.stop();
    assert!(t0.elapsed() < Duration::from_secs(20), "stopping took {:?}", t0.elapsed());
}
