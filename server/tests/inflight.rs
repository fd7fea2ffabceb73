//! The shard-wide budget of value bytes read and not yet sent (`inflight_bytes`, issue
//! 14): validated at start, reported (CONFIG GET, INFO memory); many connections that
//! pipeline GETs of large values, on a tiny budget, all get their replies byte for
//! byte and in order (no deadlock), through the router and on handed-off connections;
//! a value larger than the whole budget is served; the bytes in flight return to 0 and
//! their peak stays within the budget plus one value per connection; the shard's RSS
//! stays bounded under a load that would otherwise hold hundreds of MiB of replies.

mod common;

use common::wire::req;
use common::check::info;
use common::{rss_bytes, Scratch, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The smallest budget the config accepts, used throughout: 64 KiB.
const BUDGET: u64 = 64 << 10;

/// INFO `section` as name → value.
fn field(c: &mut redis::Connection, name: &str) -> u64 {
    common::check::info_field(c, "memory", name)
}

/// Waits (up to 5 s) until INFO memory's `inflight_used_bytes` is 0: a shard releases a
/// connection's bytes right after its write completes, which the client may see first.
fn wait_nothing_in_flight(c: &mut redis::Connection) {
    let t0 = Instant::now();
    loop {
        let used = field(c, "inflight_used_bytes");
        if used == 0 {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "inflight_used_bytes still {used}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The distinct value of key `i`, `len` bytes.
fn value(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 131 + j * 7 + j / 251) as u8).collect()
}

/// `SET t:k{i} value(i, len)` for `i` in `0..n`, pipelined in groups, on one connection.
fn write_keys(c: &mut redis::Connection, n: usize, len: usize) {
    for group in (0..n).collect::<Vec<_>>().chunks(16) {
        let mut p = redis::pipe();
        for &i in group {
            p.cmd("SET").arg(format!("t:k{i}")).arg(value(i, len)).ignore();
        }
        let _: () = p.query(c).unwrap();
    }
}

/// Reads exactly `want.len()` bytes and compares them (a hang fails after the raw
/// connection's read timeout).
#[track_caller]
fn expect(s: &mut TcpStream, want: &[u8], what: &str) {
    let mut got = vec![0u8; want.len()];
    if let Err(e) = s.read_exact(&mut got) {
        panic!("{what}: reading {} bytes: {e}", want.len());
    }
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
        panic!("{what}: reply differs from byte {at} on (of {})", want.len());
    }
}

/// One client's rounds, on one connection: each writes `depths[round]` GETs (of keys
/// `t:k*`, a missing key and a small key among them) in one write, then reads every
/// reply and checks it byte for byte, in request order.
fn client(srv: &Server, who: usize, depths: &[usize], n_keys: usize, len: usize) {
    let mut s = srv.raw();
    for (round, &depth) in depths.iter().enumerate() {
        let (mut request, mut want) = (Vec::new(), Vec::new());
        for j in 0..depth {
            let pick = (who * 7919 + round * 104_729 + j * 31) % (n_keys + 2);
            if pick == n_keys {
                request.extend(req(&[b"GET", b"t:missing"]));
                want.extend_from_slice(b"$-1\r\n");
            } else if pick == n_keys + 1 {
                request.extend(req(&[b"GET", b"t:small"]));
                want.extend_from_slice(b"$5\r\nsmall\r\n");
            } else {
                request.extend(req(&[b"GET", format!("t:k{pick}").as_bytes()]));
                want.extend_from_slice(format!("${len}\r\n").as_bytes());
                want.extend(value(pick, len));
                want.extend_from_slice(b"\r\n");
            }
        }
        s.write_all(&request).unwrap();
        expect(&mut s, &want, &format!("client {who} round {round}"));
    }
}

/// `clients` threads at once, each running [`client`] with `depths`.
fn run_clients(srv: &Server, clients: usize, depths: &[usize], n_keys: usize, len: usize) {
    std::thread::scope(|scope| {
        for who in 0..clients {
            scope.spawn(move || client(srv, who, depths, n_keys, len));
        }
    });
}

/// `warm` rounds of one GET (a connection is handed to its shard after 8 single-shard
/// batches), then `rounds` rounds of `depth`.
fn depths(warm: usize, rounds: usize, depth: usize) -> Vec<usize> {
    std::iter::repeat_n(1, warm).chain(std::iter::repeat_n(depth, rounds)).collect()
}

#[test]
fn bad_inflight_bytes_exit_2_with_one_line() {
    common::assert_bad_byte_setting(
        &Scratch::new(),
        "inflight_bytes",
        "--inflight-bytes",
        &[("flag", "0"), ("flag", "65535"), ("file", "0"), ("file", "1099511627777")],
        "64 KiB ..= 1 TiB (65536 ..= 1099511627776 bytes per shard)",
        "8MiB",
    );
}

#[test]
fn default_budget_is_reported() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--shards", "2"]);
    let mut c = srv.con();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("keel-inflight-bytes").query(&mut c).unwrap();
    assert_eq!(got, vec!["keel-inflight-bytes".to_string(), "8388608".into()]);
    assert_eq!(field(&mut c, "inflight_bytes"), 2 * 8 * MIB, "summed over the shards");
    assert_eq!(field(&mut c, "inflight_used_bytes"), 0);
    srv.stop();
}

/// 16 connections pipelining 40 GETs of 40 KiB values (a 1 MiB cache: most are disk
/// reads) against a 64 KiB budget, through the router's link (`shard_handoff = false`)
/// and then on connections handed off to the shard: every reply arrives, byte for byte,
/// in order; afterwards nothing is in flight, and the peak stayed within the budget plus
/// one value per connection (without the budget it would be ~25 MiB).
#[test]
fn pipelining_connections_get_every_reply_in_order_with_a_tiny_budget() {
    const CLIENTS: usize = 16;
    const LEN: usize = 40 << 10;
    const KEYS: usize = 120;
    for handoff in ["false", "true"] {
        let scratch = Scratch::new();
        let srv = Server::start(
            &scratch,
            &["--shards", "1", "--inflight-bytes", "65536", "--cache-bytes", "1048576", "--shard-handoff", handoff],
        );
        let mut c = srv.con();
        write_keys(&mut c, KEYS, LEN);
        let _: () = redis::cmd("SET").arg("t:small").arg("small").query(&mut c).unwrap();
        assert_eq!(field(&mut c, "inflight_bytes"), BUDGET);
        // With hand-off on, the connections are the shard's after the shallow rounds.
        run_clients(&srv, CLIENTS, &depths(9, 6, 40), KEYS, LEN);
        wait_nothing_in_flight(&mut c);
        let peak = field(&mut c, "inflight_peak_bytes");
        let per_value = LEN as u64 + 64;
        eprintln!("handoff {handoff}: inflight_peak_bytes {peak}");
        assert!(peak >= BUDGET, "handoff {handoff}: the budget was reached: peak {peak}");
        assert!(
            peak <= BUDGET + (CLIENTS as u64 + 2) * per_value,
            "handoff {handoff}: peak {peak} over the budget + one value per connection"
        );
        let stats = info(&mut c, "stats");
        assert!(stats["cache_misses"].parse::<u64>().unwrap() > 1000, "mostly disk reads: {stats:?}");
        srv.stop();
    }
}

/// A value of 1 MiB, 16 times the budget, is served: alone, pipelined 8 deep on one
/// connection, and to 4 connections at once, through the router and handed off.
#[test]
fn a_value_larger_than_the_budget_is_served() {
    const LEN: usize = 1 << 20;
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--shards", "1", "--inflight-bytes", "65536", "--cache-bytes", "1048576"]);
    let mut c = srv.con();
    write_keys(&mut c, 2, LEN);
    let _: () = redis::cmd("SET").arg("t:small").arg("small").query(&mut c).unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("t:k1").query(&mut c).unwrap();
    assert!(got == value(1, LEN), "GET of a value larger than the budget");
    // Through the router, then handed off.
    run_clients(&srv, 4, &depths(0, 4, 8), 2, LEN);
    run_clients(&srv, 4, &depths(9, 4, 8), 2, LEN);
    wait_nothing_in_flight(&mut c);
    srv.stop();
}

/// 24 connections pipelining 24 GETs of 256 KiB values each (never cached: the cache is
/// 1 MiB): 144 MiB of replies asked for at once. With a 1 MiB budget the shard's RSS
/// stays within 64 MiB of its RSS before the load.
#[test]
fn rss_stays_bounded_under_pipelined_large_reads() {
    const CLIENTS: usize = 24;
    const LEN: usize = 256 << 10;
    const KEYS: usize = 64;
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--shards", "1", "--inflight-bytes", "1048576", "--cache-bytes", "1048576"]);
    let mut c = srv.con();
    write_keys(&mut c, KEYS, LEN);
    let _: () = redis::cmd("SET").arg("t:small").arg("small").query(&mut c).unwrap();
    let shard = srv.shard_pid(0);
    // Warm up every path once (one client, shallow), then let freed pages go back.
    run_clients(&srv, 1, &depths(9, 2, 2), KEYS, LEN);
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_bytes(shard);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while !done.load(Ordering::Relaxed) {
                max = max.max(rss_bytes(shard));
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        })
    };
    // Handed off after the shallow rounds, then the deep ones (a second run, for the
    // router's link: hand-off is per connection, so new connections start there).
    run_clients(&srv, CLIENTS, &depths(9, 2, 24), KEYS, LEN);
    run_clients(&srv, CLIENTS, &depths(0, 2, 24), KEYS, LEN);
    done.store(true, Ordering::Relaxed);
    let max = sampler.join().unwrap();
    eprintln!("shard RSS {} MiB before the load, at most {} MiB during it", before / MIB, max / MIB);
    assert!(
        max <= before + 64 * MIB,
        "shard RSS went from {} MiB to {} MiB under the load",
        before / MIB,
        max / MIB
    );
    wait_nothing_in_flight(&mut c);
    srv.stop();
}
