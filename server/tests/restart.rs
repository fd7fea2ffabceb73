//! Restarting at once on the same address, as Redis and systemd users do: 20
//! kill-and-restart rounds of each kind, with clients writing throughout, and every
//! restart must come up (no `Address already in use`).
//!
//! The cause of the failures this guards against: glommio's in-flight accept holds the
//! listening socket inside io_uring, and the kernel releases it only when it tears the
//! ring down, asynchronously, a few ms after the process exits; a keel restarted in
//! that window found the old socket still listening. A graceful stop now shuts its
//! listeners down itself; after a kill, the new keel retries the address briefly
//! (`server/src/router/listen.rs`).

mod common;

use common::{Scratch, Server, Signal};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ROUNDS: usize = 20;
const CLIENTS: usize = 8;

/// `CLIENTS` threads writing SETs until `stop`, reconnecting whenever the server goes
/// away; errors are expected (the server is being killed) and ignored.
fn writers(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let req = format!("*3\r\n$3\r\nSET\r\n$8\r\nt{c}:k{:04}\r\n$1\r\nv\r\n", i % 10_000);
                        if s.write_all(req.as_bytes()).is_err() || !matches!(s.read(&mut buf), Ok(n) if n > 0) {
                            break;
                        }
                    }
                }
            })
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the rounds; `kill` stops the running server the way the kind says, and returns
/// once the router process has exited. The next server starts at once.
fn rounds(kill: impl Fn(&mut Server)) {
    let scratch = Scratch::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let args = ["--resp-addr", addr.as_str()];
    let mut srv = Server::start(&scratch, &args);
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = writers(srv.addr, stop.clone());
        std::thread::sleep(Duration::from_millis(150));
        kill(&mut srv);
        // At once: `start` panics with the log if keel exits (e.g. address in use).
        srv = Server::start(&scratch, &args);
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let log = common::read_lossy(&srv.log);
        assert!(log.contains("keel ready"), "round {round}: {}", srv.log_tail());
    }
    srv.stop();
}

#[test]
fn restart_at_once_after_killing_a_shard_then_terminating_the_group() {
    rounds(|srv| {
        common::kill(srv.shard_pid(0), Signal::KILL);
        std::thread::sleep(Duration::from_millis(100));
        common::signal_group(srv.pid, Signal::TERM);
        let status = srv.wait_exit(common::STOP_TIMEOUT).unwrap_or_else(|| panic!("keel did not stop\n{}", srv.log_tail()));
        assert_eq!(status.code(), Some(0), "{}", srv.log_tail());
    });
}

#[test]
fn restart_at_once_after_killing_the_whole_group() {
    rounds(|srv| {
        common::signal_group(srv.pid, Signal::KILL);
        srv.wait_exit(common::STOP_TIMEOUT).unwrap_or_else(|| panic!("keel did not die\n{}", srv.log_tail()));
    });
}
