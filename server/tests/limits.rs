//! No client input kills a process: every size limit is an error reply (checked before
//! allocating), on the router and on a shard serving a handed-off connection alike, and
//! a panic for any other reason ends the process that panicked, logged, for its
//! supervisor to restart.

mod common;

use common::wire::{expect_closed, read_line as line, req};
use common::{Scratch, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `r` and returns the first line of the reply.
fn ask(s: &mut TcpStream, r: &[u8]) -> String {
    s.write_all(r).unwrap();
    line(s)
}

/// Reads a bulk reply's body after its `$len` line.
fn bulk_body(s: &mut TcpStream, len_line: &str) -> Vec<u8> {
    let n: usize = len_line.strip_prefix('$').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a bulk: {len_line}"));
    let mut body = vec![0u8; n + 2];
    s.read_exact(&mut body).unwrap();
    body.truncate(n);
    body
}

fn start_with(scratch: &Scratch, toml: &str) -> Server {
    let cfg = scratch.path().join("keel.toml");
    std::fs::write(&cfg, toml).unwrap();
    Server::start(scratch, &["--config", &cfg.display().to_string()])
}

/// Every limit, with small limits so the test stays cheap: the request frame
/// (`max_frame_len`, 64 KiB) and the reply frame (same limit) give errors and keep the
/// connection; the per-connection request limit (`client_query_buffer_limit`, 1 MiB)
/// gives a protocol error and closes it, as do over-long bulk strings. The same on a
/// connection the shard serves. Nothing restarts.
#[test]
fn every_limit_is_an_error_reply_on_router_and_shard() {
    let scratch = Scratch::new();
    let srv = start_with(&scratch, "max_frame_len = 65536\nclient_query_buffer_limit = 1048576\nmax_bulk_len = 2097152\n");
    let pids = srv.shard_pids();
    let t = &common::tenants_on("lim", 0, 2, 1)[0];
    let key = |k: &str| format!("{t}:{k}").into_bytes();
    let x40k = vec![b'x'; 40 << 10];
    // The frame sizes: 9 + 4 + 4 per argument + the arguments (request); 9 + the value
    // (reply: array 5, two bulks of 5 + 40960).
    let too_large_request =
        format!("-ERR request too large: its {} bytes exceed max_frame_len (65536 bytes)", 9 + 4 + 12 + 3 + key("big").len() + (100 << 10));
    let too_large_reply = "-ERR reply too large: its 81944 bytes exceed max_frame_len (65536 bytes)";
    let limited = "-ERR Protocol error: request exceeds client_query_buffer_limit of 1048576 bytes";

    let mut s = srv.raw();
    // A request frame over the limit: refused, nothing stored, the connection goes on.
    assert_eq!(ask(&mut s, &req(&[b"SET", &key("big"), &vec![b'x'; 100 << 10]])), too_large_request);
    assert_eq!(ask(&mut s, &req(&[b"EXISTS", &key("big")])), ":0");
    // A reply frame over the limit (two values that fit, one MGET that does not).
    assert_eq!(ask(&mut s, &req(&[b"SET", &key("a"), &x40k])), "+OK");
    assert_eq!(ask(&mut s, &req(&[b"SET", &key("b"), &x40k])), "+OK");
    assert_eq!(ask(&mut s, &req(&[b"MGET", &key("a"), &key("b")])), too_large_reply);
    let len = ask(&mut s, &req(&[b"GET", &key("a")]));
    assert_eq!(bulk_body(&mut s, &len), x40k);

    // The same on a connection handed to the shard (10 single-shard batches first).
    for i in 0..10 {
        assert_eq!(ask(&mut s, &req(&[b"SET", &key(&format!("w{i}")), b"v"])), "+OK");
    }
    assert_eq!(ask(&mut s, &req(&[b"MGET", &key("a"), &key("b")])), too_large_reply);
    assert_eq!(ask(&mut s, &req(&[b"SET", &key("big"), &vec![b'x'; 100 << 10]])), too_large_request);
    assert_eq!(ask(&mut s, &req(&[b"STRLEN", &key("a")])), ":40960");
    // The request limit, announced by one argument's header: error, then closed.
    s.write_all(b"*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$2000000\r\n").unwrap();
    assert_eq!(line(&mut s), limited);
    expect_closed(&mut s);

    // Many arguments adding up past the request limit, on the router.
    let mut s = srv.raw();
    let chunk = vec![b'y'; 1000];
    let mut many: Vec<&[u8]> = vec![b"MSET"];
    for _ in 0..600 {
        many.push(&chunk);
        many.push(&chunk);
    }
    s.write_all(&req(&many)).unwrap();
    assert_eq!(line(&mut s), limited);
    expect_closed(&mut s);
    // A bulk string over max_bulk_len.
    let mut s = srv.raw();
    s.write_all(b"*2\r\n$3\r\nGET\r\n$2097153\r\n").unwrap();
    assert_eq!(line(&mut s), "-ERR Protocol error: invalid bulk length");
    expect_closed(&mut s);

    // Nothing died or restarted.
    let mut s = srv.raw();
    assert_eq!(ask(&mut s, b"PING\r\n"), "+PONG");
    assert_eq!(ask(&mut s, &req(&[b"DBSIZE"])), ":12");
    assert_eq!(srv.shard_pids(), pids, "no shard may have restarted");
    srv.stop();
}

/// The case under the default limits: `SET` of a 100 MiB key and a 512 MiB
/// value is valid in Redis, and in keel (the default frame limit holds any request the
/// default 1 GiB request limit lets through); it used to panic the router executor.
#[test]
fn a_612_mib_set_under_default_limits_is_stored() {
    let scratch = Scratch::new();
    // A shard decodes and stores one request on its one thread; with 612 MiB in a debug
    // build on a busy machine that takes longer than the default shard_timeout (5 s),
    // and the supervisor would take it for a hung shard (README "A hung shard").
    let cfg = scratch.path().join("keel.toml");
    std::fs::write(&cfg, "shard_timeout = 120000\n").unwrap();
    let srv = Server::start(&scratch, &["--config", &cfg.display().to_string()]);
    let pids = srv.shard_pids();
    let mut s = srv.raw();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut key = vec![b'k'; 100 << 20];
    key[..2].copy_from_slice(b"t:");
    let value = vec![b'v'; 512 << 20];
    assert_eq!(ask(&mut s, &req(&[b"SET", &key, &value])), "+OK");
    drop(value);
    assert_eq!(ask(&mut s, &req(&[b"STRLEN", &key])), ":536870912");
    assert_eq!(ask(&mut s, &req(&[b"DEL", &key])), ":1");
    assert_eq!(ask(&mut s, b"PING\r\n"), "+PONG");
    assert_eq!(srv.shard_pids(), pids, "no shard may have restarted");
    srv.stop();
}

fn wait_for_log(srv: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !common::read_lossy(&srv.log).contains(what) {
        assert!(Instant::now() < deadline, "the log never said {what:?}\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A panic ends the process that panicked, with status 70 and a log line naming the
/// thread and what happens next: a shard is restarted by the router (its data intact),
/// the router exits (its shards stop with it) for systemd to restart.
#[test]
fn a_panic_ends_its_process_and_the_log_says_which() {
    let scratch = Scratch::new();
    let mut srv = start_with(&scratch, "enable_debug_command = true\n");
    let t = &common::tenants_on("pan", 1, 2, 1)[0];
    let key = format!("{t}:k").into_bytes();
    let mut s = srv.raw();
    assert_eq!(ask(&mut s, &req(&[b"SET", &key, b"kept"])), "+OK");
    let before = srv.shard_pid(1);

    // A shard's panic: its in-flight request fails, the shard is restarted.
    let reply = ask(&mut s, &req(&[b"DEBUG", b"PANIC-SHARD", &key]));
    assert!(reply.starts_with("-ERR shard 1 connection lost"), "{reply}");
    wait_for_log(&srv, "shard 1: thread main panicked at");
    wait_for_log(&srv, "KEEL.DEBUG PANIC: a panic requested with DEBUG PANIC-SHARD");
    wait_for_log(&srv, "exiting with status 70 (the router restarts it)");
    wait_for_log(&srv, "shard 1 died (exit status: 70); restarting");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = ask(&mut s, &req(&[b"GET", &key]));
        if got == "$4" {
            assert_eq!(bulk_body(&mut s, &got), b"kept");
            break;
        }
        assert!(Instant::now() < deadline, "shard 1 did not come back: {got}\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(srv.shard_pid(1), before, "shard 1 must be a new process");

    // A router executor's panic: the whole router exits 70, its shards follow.
    let shards = srv.shard_pids();
    s.write_all(&req(&[b"DEBUG", b"PANIC"])).unwrap();
    expect_closed(&mut s);
    let status = srv.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("keel did not exit\n{}", srv.log_tail()));
    assert_eq!(status.code(), Some(70), "{status:?}\n{}", srv.log_tail());
    let log = common::read_lossy(&srv.log);
    assert!(log.contains("router: thread keel-router-0"), "{}", srv.log_tail());
    assert!(log.contains("DEBUG PANIC requested by client"), "{}", srv.log_tail());
    for (id, pid) in shards {
        assert!(common::wait_gone(pid, Duration::from_secs(30)), "shard {id} outlived its router\n{}", srv.log_tail());
    }
}
