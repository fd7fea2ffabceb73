//! Differential test: random command sequences against keel and against a real
//! `redis-server`, every reply compared byte for byte, over RESP2 and RESP3.
//!
//! The test starts keel (2 shards) and `redis-server` (its own temp dir, a free loopback
//! port, no RDB, no AOF), opens one RESP2 and one RESP3 (`HELLO 3`) connection to each,
//! then sends the same seeded stream of commands to both servers, in pipelined batches
//! of 1..=16 commands on one connection at a time, one command in ten as an inline
//! command line (quoted and escaped at random); stretches of one tenant's keys get
//! connections handed to their shard, so the shard's serving path is compared too.
//! Each reply is cut out of the byte
//! stream with keel's reply parser (`keel_protocol::resp::parse_value`, used only to
//! find where a reply ends) and the raw bytes are compared. At the end the whole
//! keyspace (MGET of every key the run touched, DBSIZE) is compared too, so a write
//! whose reply agreed but whose effect did not is still caught.
//!
//! Environment (all optional):
//! - `KEEL_DIFFTEST_SEED`: the seed (u64; default a fixed one, so CI is reproducible).
//! - `KEEL_DIFFTEST_COUNT`: commands to run (default 10,000).
//! - `KEEL_DIFFTEST_FEATURES`: comma-separated features to generate on top of
//!   [`FEATURES`] (`expiry`, `databases`), or `none` for none at all.
//! - `KEEL_DIFFTEST_KEEP_GOING=1`: list every difference, fail at the end.
//! - `KEEL_DIFFTEST_ADDR=host:port`: test the server there instead of starting keel
//!   (a release build, another branch's binary, or a second redis-server to check
//!   the generator itself, e.g. with a feature keel lacks). It is FLUSHALLed first.
//! - `REDIS_SERVER`: the redis-server binary (default `redis-server` on `PATH`;
//!   `scripts/test.sh` installs the Debian package `redis-server`).
//!
//! A difference panics with the seed, the command's index, the connection's protocol,
//! the command, both replies, the earlier commands that named its arguments, and the
//! line that replays the run.
//!
//! Not generated: commands keel does not have (the command table,
//! `protocol/src/command.rs`), and commands whose replies differ by design (HELLO,
//! CLIENT, COMMAND, CONFIG, INFO, DEBUG: server identity and counters; KEYS and SCAN:
//! order and cursors; the vector commands: keel's own). What differs on purpose is
//! listed in README "Differences from Redis".

mod common;

use common::{Scratch, Server, IO_TIMEOUT};
use keel_protocol::resp::{encode_request_args, parse_value, Limits};
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::collections::{BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command family that keel does not have on every branch yet: its commands and
/// options are generated only when it is switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feature {
    /// `SET … EX|PX|EXAT|PXAT|KEEPTTL`, `SETEX`, `PSETEX`, `GETEX`, `EXPIRE` and
    /// friends with `NX|XX|GT|LT`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`,
    /// `PERSIST`. TTLs are 1,000 s and up, so they do not run out during a run; TTL and
    /// PTTL replies are compared within a tolerance (the two servers see a command
    /// microseconds apart).
    Expiry,
    /// `SELECT 0..15`, `MOVE`, `SWAPDB`, and FLUSHDB meaning one database.
    Databases,
}

/// The features keel has (all of them now).
const FEATURES: &[Feature] = &[Feature::Expiry, Feature::Databases];

const DEFAULT_SEED: u64 = 0x6b65_656c_6469_6666; // "keeldiff"
const DEFAULT_COUNT: usize = 10_000;

#[test]
fn keel_replies_as_redis_does() {
    let cfg = RunConfig::from_env();
    eprintln!(
        "difftest: seed {} count {} features {:?} (replay: KEEL_DIFFTEST_SEED={} KEEL_DIFFTEST_COUNT={})",
        cfg.seed, cfg.count, cfg.features, cfg.seed, cfg.count
    );
    let redis = Redis::start();
    let scratch = Scratch::new();
    let (keel, keel_addr) = match std::env::var("KEEL_DIFFTEST_ADDR") {
        Ok(a) => (None, a.parse().unwrap_or_else(|e| panic!("KEEL_DIFFTEST_ADDR={a:?}: {e}"))),
        Err(_) => {
            let srv = Server::start(&scratch, &[]);
            let addr = srv.addr;
            (Some(srv), addr)
        }
    };
    let t0 = Instant::now();
    run(&cfg, keel_addr, redis.addr);
    let handoffs = info_stat(keel_addr, "shard_handoffs");
    eprintln!("difftest: {} commands agreed in {:.1?}; connections handed to a shard: {handoffs:?}", cfg.count, t0.elapsed());
    // The one-tenant stretches must have reached the shards' own serving path too.
    if keel.is_some() && cfg.count >= 5000 {
        assert!(handoffs > Some(0), "no connection was handed to a shard: the shards' serving path went untested");
    }
}

/// An `INFO stats` counter of the server at `addr` (on a connection of its own), if it
/// has it.
fn info_stat(addr: SocketAddr, name: &str) -> Option<u64> {
    let mut c = Conn::open(addr, 2);
    c.send(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n");
    let reply = c.reply();
    let text = String::from_utf8_lossy(&reply);
    let prefix = format!("{name}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// What the run generates: seed, length, features.
struct RunConfig {
    seed: u64,
    count: usize,
    features: Vec<Feature>,
    /// Report every difference and fail at the end instead of at the first (a hand
    /// run's survey; after the first, the two keyspaces may differ and so may more).
    keep_going: bool,
}

impl RunConfig {
    fn from_env() -> RunConfig {
        let num = |name: &str, default: u64| match std::env::var(name) {
            Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")),
            Err(_) => default,
        };
        let mut features = FEATURES.to_vec();
        if let Ok(list) = std::env::var("KEEL_DIFFTEST_FEATURES") {
            for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match f {
                    "none" => features.clear(),
                    "expiry" if !features.contains(&Feature::Expiry) => features.push(Feature::Expiry),
                    "databases" if !features.contains(&Feature::Databases) => features.push(Feature::Databases),
                    "expiry" | "databases" => {}
                    other => panic!("KEEL_DIFFTEST_FEATURES: unknown feature {other:?} (expiry, databases, none)"),
                }
            }
        }
        RunConfig {
            seed: num("KEEL_DIFFTEST_SEED", DEFAULT_SEED),
            count: num("KEEL_DIFFTEST_COUNT", DEFAULT_COUNT as u64) as usize,
            features,
            keep_going: std::env::var("KEEL_DIFFTEST_KEEP_GOING").is_ok_and(|v| v == "1"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The run: same batches to both servers, replies compared.

/// How two replies to one command must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// Byte for byte.
    Exact,
    /// Integer replies (`:n`): equal, or both ≥ 0 and at most this far apart (TTL,
    /// PTTL, EXPIRETIME, PEXPIRETIME of a relative expiry). Anything else byte for byte.
    IntWithin(i64),
}

/// One generated command.
struct Cmd {
    argv: Vec<Vec<u8>>,
    /// The inline command line sent instead of a multibulk request (with its CRLF), if
    /// this one goes inline.
    inline: Option<Vec<u8>>,
    compare: Compare,
}

impl Cmd {
    /// The request's bytes on the wire.
    fn encode(&self, out: &mut Vec<u8>) {
        match &self.inline {
            Some(line) => out.extend_from_slice(line),
            None => encode_request_args(&self.argv, out),
        }
    }

    /// The arguments, and the inline line if it went inline.
    fn show(&self) -> String {
        match &self.inline {
            Some(line) => format!("{} (sent inline: {})", show_argv(&self.argv), show(line)),
            None => show_argv(&self.argv),
        }
    }
}

/// One command that was run, for the failure message.
struct Done {
    index: usize,
    proto: u8,
    cmd: Cmd,
    reply: Vec<u8>,
}

fn run(cfg: &RunConfig, keel_addr: SocketAddr, redis_addr: SocketAddr) {
    let mut gen = Gen::new(cfg.seed, &cfg.features);
    // [RESP2, RESP3] connections to each server.
    let mut keel = [Conn::open(keel_addr, 2), Conn::open(keel_addr, 3)];
    let mut redis = [Conn::open(redis_addr, 2), Conn::open(redis_addr, 3)];
    for c in keel.iter_mut().take(1).chain(redis.iter_mut().take(1)) {
        c.send(b"*1\r\n$8\r\nFLUSHALL\r\n");
        let r = c.reply();
        assert_eq!(r, b"+OK\r\n", "FLUSHALL at {}: {}", c.addr, show(&r));
    }
    let mut history: VecDeque<Done> = VecDeque::new();
    let mut index = 0;
    let mut differences = 0;
    while index < cfg.count {
        let which = gen.rng.random_range(0..2usize);
        let size = if gen.rng.random_bool(0.6) { 1 } else { gen.rng.random_range(2..=16usize) }.min(cfg.count - index);
        let batch: Vec<Cmd> = (0..size).map(|_| gen.command()).collect();
        let mut bytes = Vec::new();
        for c in &batch {
            c.encode(&mut bytes);
        }
        keel[which].send(&bytes);
        redis[which].send(&bytes);
        for c in batch {
            let ours = keel[which].reply();
            let theirs = redis[which].reply();
            if !agree(c.compare, &ours, &theirs) {
                if !cfg.keep_going {
                    fail(cfg, index, which as u8 + 2, &c, &ours, &theirs, &history);
                }
                differences += 1;
                eprintln!("difference #{index} RESP{}: {}\n  keel:  {}\n  redis: {}", which + 2, c.show(), show(&ours), show(&theirs));
            }
            history.push_back(Done { index, proto: which as u8 + 2, cmd: c, reply: ours });
            if history.len() > 400 {
                history.pop_front();
            }
            index += 1;
        }
    }
    // The whole keyspace, so that a write whose reply agreed but whose effect differed
    // is caught: every key this run named, in every database it could have used.
    let keys: Vec<Vec<u8>> = gen.keys_seen.iter().cloned().collect();
    let dbs: Vec<u32> = if cfg.features.contains(&Feature::Databases) { (0..16).collect() } else { vec![0] };
    for db in dbs {
        let mut checks: Vec<Vec<Vec<u8>>> = Vec::new();
        if cfg.features.contains(&Feature::Databases) {
            checks.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
        }
        checks.push(vec![b"DBSIZE".to_vec()]);
        for chunk in keys.chunks(64) {
            let mut argv = vec![b"MGET".to_vec()];
            argv.extend(chunk.iter().cloned());
            checks.push(argv);
        }
        for argv in checks {
            let cmd = Cmd { argv, inline: None, compare: Compare::Exact };
            let mut bytes = Vec::new();
            cmd.encode(&mut bytes);
            keel[0].send(&bytes);
            redis[0].send(&bytes);
            let (ours, theirs) = (keel[0].reply(), redis[0].reply());
            if ours != theirs {
                if !cfg.keep_going {
                    fail(cfg, index, 2, &cmd, &ours, &theirs, &history);
                }
                differences += 1;
                eprintln!("difference #{index} RESP2: {}\n  keel:  {}\n  redis: {}", cmd.show(), show(&ours), show(&theirs));
            }
            index += 1;
        }
    }
    assert_eq!(differences, 0, "{differences} differences (KEEL_DIFFTEST_KEEP_GOING: listed above)");
}

fn agree(how: Compare, ours: &[u8], theirs: &[u8]) -> bool {
    if ours == theirs {
        return true;
    }
    let Compare::IntWithin(tol) = how else { return false };
    let int = |r: &[u8]| -> Option<i64> { std::str::from_utf8(r.strip_prefix(b":")?.strip_suffix(b"\r\n")?).ok()?.parse().ok() };
    match (int(ours), int(theirs)) {
        (Some(a), Some(b)) => a >= 0 && b >= 0 && (a - b).abs() <= tol,
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn fail(cfg: &RunConfig, index: usize, proto: u8, cmd: &Cmd, ours: &[u8], theirs: &[u8], history: &VecDeque<Done>) -> ! {
    // The earlier commands that named one of this command's arguments (its keys), and
    // the last few whatever they were: enough to see how the state came about.
    let args: BTreeSet<&[u8]> = cmd.argv.iter().skip(1).map(Vec::as_slice).collect();
    let mut lines = Vec::new();
    for (k, d) in history.iter().enumerate() {
        let related = d.cmd.argv.iter().skip(1).any(|a| args.contains(a.as_slice()));
        let recent = k + 8 >= history.len();
        let global = matches!(d.cmd.argv[0].to_ascii_uppercase().as_slice(), b"FLUSHALL" | b"FLUSHDB" | b"SELECT" | b"SWAPDB");
        if related || recent || global {
            lines.push(format!("  #{:<6} RESP{} {}  ->  {}", d.index, d.proto, d.cmd.show(), show(&d.reply)));
        }
    }
    panic!(
        "keel and redis-server differ at command #{index} (seed {seed}, RESP{proto}):\n  command: {cmd}\n  keel:    {ours}\n  redis:   {theirs}\n  (first different byte: {at})\n\
         earlier commands on these arguments (and the last few; replies are keel's, which agreed):\n{hist}\n\
         replay: KEEL_DIFFTEST_SEED={seed} KEEL_DIFFTEST_COUNT={count} KEEL_DIFFTEST_FEATURES={feats} cargo test -p keel-server --test difftest",
        cmd = cmd.show(),
        at = ours.iter().zip(theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len())),
        ours = show(ours),
        theirs = show(theirs),
        hist = lines.join("\n"),
        seed = cfg.seed,
        count = index + 1,
        feats = if cfg.features.is_empty() {
            "none".to_string()
        } else {
            cfg.features.iter().map(|f| format!("{f:?}").to_lowercase()).collect::<Vec<_>>().join(",")
        },
    );
}

/// Bytes as an escaped, quoted string (`"SET\r\n"`); over 300 bytes, the first 120
/// and the last 60 around `…[N bytes]…`.
fn show(b: &[u8]) -> String {
    let esc = |b: &[u8]| b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(char::from).collect::<String>();
    if b.len() > 300 {
        format!("\"{}…[{} bytes]…{}\"", esc(&b[..120]), b.len(), esc(&b[b.len() - 60..]))
    } else {
        format!("\"{}\"", esc(b))
    }
}

fn show_argv(argv: &[Vec<u8>]) -> String {
    argv.iter().map(|a| show(a)).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// Connections and the redis-server process.

/// A client connection that reads whole replies as raw bytes.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    addr: SocketAddr,
}

impl Conn {
    /// Connects; for `proto` 3 sends `HELLO 3` and drops its reply (server name,
    /// version and client id differ by design).
    fn open(addr: SocketAddr, proto: u8) -> Conn {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut c = Conn { s, buf: Vec::new(), addr };
        if proto == 3 {
            c.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
            let r = c.reply();
            assert!(r.starts_with(b"%"), "HELLO 3 at {addr}: {}", show(&r));
        }
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap_or_else(|e| panic!("write to {}: {e}", self.addr));
    }

    /// The next whole reply, its exact bytes.
    fn reply(&mut self) -> Vec<u8> {
        loop {
            match parse_value(&self.buf, &Limits::default()) {
                Ok(Some((_, used))) => return self.buf.drain(..used).collect(),
                Ok(None) => {}
                Err(e) => panic!("unparsable reply from {}: {e:?} in {}", self.addr, show(&self.buf)),
            }
            let mut chunk = [0u8; 16384];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("{} closed the connection; unread {}", self.addr, show(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read from {}: {e}; unread {}", self.addr, show(&self.buf)),
            }
        }
    }
}

/// A `redis-server` of this test: no persistence, its own temp dir, a free loopback
/// port; killed when dropped.
struct Redis {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = tempfile::Builder::new().prefix("keel-redis-").tempdir_in("/tmp").expect("temp dir");
        // A port another process takes between our probe and redis-server's bind makes
        // redis-server exit: try again with another.
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("probe a free port").port();
            let log = dir.path().join(format!("redis-{attempt}.log"));
            let mut child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {bin:?}: {e}. The differential test needs redis-server 7 (Debian package redis-server; scripts/test.sh installs it)")
                });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_ready(&mut child, addr) {
                return Redis { child, addr, log, _dir: dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("difftest: redis-server on port {port} did not come up:\n{}", common::log_tail(&log));
        }
        panic!("redis-server did not start in 5 attempts");
    }
}

/// True once `child` (a redis-server at `addr`) answers PING; false if it exited or
/// 20 s passed.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut b = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- redis-server log {} ----\n{}", self.log.display(), common::log_tail(&self.log));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The generator.

/// What a generated command does (each op picks its own arguments).
#[derive(Clone, Copy, Debug)]
enum Op {
    Set,
    Get,
    Getdel,
    Append,
    Strlen,
    Type,
    Exists,
    Del,
    Unlink,
    Mget,
    Mset,
    Incr,
    Decr,
    Incrby,
    Decrby,
    Dbsize,
    Flushall,
    Flushdb,
    Ping,
    Echo,
    /// `SELECT 0` and invalid indexes; with [`Feature::Databases`] also 1..=15.
    Select,
    /// A known command with a wrong number of arguments.
    WrongArity,
    /// A name no server knows (and keel's internal `KEEL.*` commands).
    Unknown,
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX|XX|GT|LT.
    Expire,
    /// TTL, PTTL.
    Ttl,
    /// EXPIRETIME, PEXPIRETIME.
    Expiretime,
    Persist,
    /// SETEX, PSETEX.
    Setex,
    Getex,
    Move,
    Swapdb,
}

/// Every op with its weight (per mille, roughly) and the feature it needs; a feature's
/// commands are generated only when it is on ([`FEATURES`]).
const OPS: &[(Op, u32, Option<Feature>)] = &[
    (Op::Set, 140, None),
    (Op::Get, 100, None),
    (Op::Getdel, 25, None),
    (Op::Append, 40, None),
    (Op::Strlen, 25, None),
    (Op::Type, 25, None),
    (Op::Exists, 40, None),
    (Op::Del, 40, None),
    (Op::Unlink, 20, None),
    (Op::Mget, 50, None),
    (Op::Mset, 50, None),
    (Op::Incr, 50, None),
    (Op::Decr, 25, None),
    (Op::Incrby, 50, None),
    (Op::Decrby, 30, None),
    (Op::Dbsize, 20, None),
    (Op::Flushall, 2, None),
    (Op::Flushdb, 2, None),
    (Op::Ping, 10, None),
    (Op::Echo, 10, None),
    (Op::Select, 10, None),
    (Op::WrongArity, 30, None),
    (Op::Unknown, 15, None),
    (Op::Expire, 60, Some(Feature::Expiry)),
    (Op::Ttl, 50, Some(Feature::Expiry)),
    (Op::Expiretime, 15, Some(Feature::Expiry)),
    (Op::Persist, 15, Some(Feature::Expiry)),
    (Op::Setex, 20, Some(Feature::Expiry)),
    (Op::Getex, 20, Some(Feature::Expiry)),
    (Op::Move, 25, Some(Feature::Databases)),
    (Op::Swapdb, 5, Some(Feature::Databases)),
];

/// Redis 7.0's arity of each command the generator can send (negative: at least that
/// many), for [`Op::WrongArity`].
const ARITY: &[(&str, i32, Option<Feature>)] = &[
    ("get", 2, None),
    ("set", -3, None),
    ("getdel", 2, None),
    ("append", 3, None),
    ("strlen", 2, None),
    ("type", 2, None),
    ("exists", -2, None),
    ("del", -2, None),
    ("unlink", -2, None),
    ("mget", -2, None),
    ("mset", -3, None),
    ("incr", 2, None),
    ("decr", 2, None),
    ("incrby", 3, None),
    ("decrby", 3, None),
    ("dbsize", 1, None),
    ("ping", -1, None),
    ("echo", 2, None),
    ("select", 2, None),
    ("expire", -3, Some(Feature::Expiry)),
    ("pexpire", -3, Some(Feature::Expiry)),
    ("expireat", -3, Some(Feature::Expiry)),
    ("pexpireat", -3, Some(Feature::Expiry)),
    ("ttl", 2, Some(Feature::Expiry)),
    ("pttl", 2, Some(Feature::Expiry)),
    ("expiretime", 2, Some(Feature::Expiry)),
    ("pexpiretime", 2, Some(Feature::Expiry)),
    ("persist", 2, Some(Feature::Expiry)),
    ("setex", 4, Some(Feature::Expiry)),
    ("psetex", 4, Some(Feature::Expiry)),
    ("getex", -2, Some(Feature::Expiry)),
    ("move", 3, Some(Feature::Databases)),
    ("swapdb", 3, Some(Feature::Databases)),
];

/// Integers at and past the edges of i64, and texts that are not integers to Redis
/// (`string2ll`: no spaces, no `+`, no leading zeros, no `-0`).
const EDGE_INTS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775806",
    "-9223372036854775808",
    "-9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "4611686018427387904",
    "-4611686018427387904",
];
const NOT_INTS: &[&str] = &[
    "",
    "abc",
    "1.5",
    "1.0",
    "1e3",
    "0x1A",
    "+1",
    "-0",
    "01",
    "00",
    " 1",
    "1 ",
    "-",
    "+",
    "1a",
    "\u{0}1",
    "\t1",
    "99999999999999999999999",
    "nan",
    "inf",
];

struct Gen {
    rng: XorShiftRng,
    features: Vec<Feature>,
    ops: Vec<(Op, u32)>,
    total: u32,
    /// Every key a command named, for the closing keyspace comparison.
    keys_seen: BTreeSet<Vec<u8>>,
    /// A stretch of commands whose keys are all of one tenant: (tenant, commands
    /// left). Its batches all go to one shard, so keel hands the connection to that
    /// shard (`server/src/streak.rs`) and the shard's own serving path answers them.
    focus: Option<(u32, u32)>,
}

impl Gen {
    fn new(seed: u64, features: &[Feature]) -> Gen {
        let on = |f: Option<Feature>| f.is_none_or(|f| features.contains(&f));
        let ops: Vec<(Op, u32)> = OPS.iter().filter(|(_, _, f)| on(*f)).map(|&(op, w, _)| (op, w)).collect();
        let total = ops.iter().map(|(_, w)| w).sum();
        Gen { rng: XorShiftRng::seed_from_u64(seed), features: features.to_vec(), ops, total, keys_seen: BTreeSet::new(), focus: None }
    }

    fn has(&self, f: Feature) -> bool {
        self.features.contains(&f)
    }

    fn pct(&mut self, p: u32) -> bool {
        self.rng.random_range(0..100) < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.rng.random_range(0..xs.len())]
    }

    /// A command name in random case (`SET`, `set`, `sEt`).
    fn name(&mut self, n: &str) -> Vec<u8> {
        match self.rng.random_range(0..10) {
            0..6 => n.to_ascii_uppercase().into_bytes(),
            6..8 => n.to_ascii_lowercase().into_bytes(),
            _ => n.bytes().map(|c| if self.rng.random_bool(0.5) { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect(),
        }
    }

    /// A key from a small space (so commands meet each other's keys), mostly `tN:kM`
    /// over six tenants (both shards), some without a tenant separator, some odd
    /// (empty, binary, 300 and 5,000 bytes long).
    fn key(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        let k = if let Some((t, _)) = self.focus {
            if r.random_bool(0.8) {
                format!("t{t}:k{}", r.random_range(0..5)).into_bytes()
            } else {
                format!("t{t}:a:{}", r.random_range(0..3)).into_bytes()
            }
        } else {
            match r.random_range(0..100) {
                0..75 => format!("t{}:k{}", r.random_range(0..6), r.random_range(0..5)).into_bytes(),
                75..85 => format!("k{}", r.random_range(0..4)).into_bytes(),
                85..92 => format!("t{}:a:{}", r.random_range(0..6), r.random_range(0..3)).into_bytes(),
                92..96 => format!(":k{}", r.random_range(0..2)).into_bytes(),
                96..98 => Vec::new(),
                98 => b"t1:\x00\r\n\xff".to_vec(),
                _ => {
                    let mut k = format!("t{}:", r.random_range(0..6)).into_bytes();
                    k.resize(k.len() + [300, 5000][r.random_range(0..2)], b'L');
                    k
                }
            }
        };
        self.keys_seen.insert(k.clone());
        k
    }

    fn keys(&mut self, max: usize) -> Vec<Vec<u8>> {
        let n = self.rng.random_range(1..=max);
        (0..n).map(|_| self.key()).collect()
    }

    /// A value: mostly integers (so the counters meet them), edge and non-integers,
    /// text, binary, empty, sometimes a few KiB.
    fn value(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..100) {
            0..40 => self.rng.random_range(-20i64..1000).to_string().into_bytes(),
            40..48 => self.pick(EDGE_INTS).as_bytes().to_vec(),
            48..58 => self.pick(NOT_INTS).as_bytes().to_vec(),
            58..60 => self.pick(&["é", "naïve", "日本語", "€1"]).as_bytes().to_vec(),
            60..88 => {
                let n = self.rng.random_range(1..=12);
                (0..n).map(|_| *self.pick(b"abcdefghijklmnopqrstuvwxyz0123456789")).collect()
            }
            88..95 => {
                let n = self.rng.random_range(1..=20);
                (0..n).map(|_| *self.pick(b"\x00\r\n\xff ab\"'\\")).collect()
            }
            95..98 => Vec::new(),
            _ => {
                // Longer values (which the cache or the vLog serve alike); now and then
                // past 64 KiB.
                let n = if self.pct(80) { self.rng.random_range(100..=5000) } else { self.rng.random_range(60_000..=70_000) };
                let c = *self.pick(b"xyz");
                vec![c; n]
            }
        }
    }

    /// An INCRBY/DECRBY argument: small, at the edges of i64, or not an integer.
    fn delta(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..100) {
            0..70 => self.rng.random_range(-100i64..=100).to_string().into_bytes(),
            70..88 => self.pick(EDGE_INTS).as_bytes().to_vec(),
            _ => self.pick(NOT_INTS).as_bytes().to_vec(),
        }
    }

    /// A TTL in seconds (or ms with `ms`) long enough to outlive the run, or a bad one.
    fn ttl(&mut self, ms: bool) -> Vec<u8> {
        let scale = if ms { 1000 } else { 1 };
        match self.rng.random_range(0..100) {
            0..85 => (self.rng.random_range(1000i64..100_000) * scale).to_string().into_bytes(),
            85..90 => self.pick(&["0", "-1", "-100"]).as_bytes().to_vec(),
            90..95 => self.pick(EDGE_INTS).as_bytes().to_vec(),
            _ => self.pick(NOT_INTS).as_bytes().to_vec(),
        }
    }

    /// A Unix time (seconds, or ms with `ms`) far ahead, in the past, or bad.
    fn unix_time(&mut self, ms: bool) -> Vec<u8> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let now = if ms { now.as_millis() as i64 } else { now.as_secs() as i64 };
        let scale = if ms { 1000 } else { 1 };
        match self.rng.random_range(0..100) {
            0..80 => (now + self.rng.random_range(1000i64..100_000) * scale).to_string().into_bytes(),
            80..88 => self.pick(&["1", "0", "-1"]).as_bytes().to_vec(),
            88..94 => self.pick(EDGE_INTS).as_bytes().to_vec(),
            _ => self.pick(NOT_INTS).as_bytes().to_vec(),
        }
    }

    /// A database index: mostly valid (0..=15), sometimes out of range or not a number.
    fn db(&mut self) -> Vec<u8> {
        if self.pct(85) {
            self.rng.random_range(0..16).to_string().into_bytes()
        } else {
            self.pick(&["16", "-1", "x", "", "1.5", "99999999999999999999", "9223372036854775807"]).as_bytes().to_vec()
        }
    }

    /// The next command.
    fn command(&mut self) -> Cmd {
        match &mut self.focus {
            Some((_, left)) if *left > 0 => *left -= 1,
            _ => {
                self.focus = None;
                if self.rng.random_range(0..1000) < 10 {
                    self.focus = Some((self.rng.random_range(0..6), self.rng.random_range(40..120)));
                }
            }
        }
        let mut w = self.rng.random_range(0..self.total);
        let op = self
            .ops
            .iter()
            .find(|(_, weight)| {
                if w < *weight {
                    true
                } else {
                    w -= weight;
                    false
                }
            })
            .unwrap()
            .0;
        let mut compare = Compare::Exact;
        let argv = match op {
            Op::Set => self.set(),
            Op::Get | Op::Getdel | Op::Strlen | Op::Type | Op::Incr | Op::Decr => {
                let n = match op {
                    Op::Get => "get",
                    Op::Getdel => "getdel",
                    Op::Strlen => "strlen",
                    Op::Type => "type",
                    Op::Incr => "incr",
                    _ => "decr",
                };
                vec![self.name(n), self.key()]
            }
            Op::Append => vec![self.name("append"), self.key(), self.value()],
            Op::Incrby | Op::Decrby => {
                let n = if matches!(op, Op::Incrby) { "incrby" } else { "decrby" };
                vec![self.name(n), self.key(), self.delta()]
            }
            Op::Exists | Op::Del | Op::Unlink | Op::Mget => {
                let n = match op {
                    Op::Exists => "exists",
                    Op::Del => "del",
                    Op::Unlink => "unlink",
                    _ => "mget",
                };
                let mut argv = vec![self.name(n)];
                argv.extend(self.keys(8));
                argv
            }
            Op::Mset => {
                let mut argv = vec![self.name("mset")];
                for _ in 0..self.rng.random_range(1..=6) {
                    argv.push(self.key());
                    argv.push(self.value());
                }
                argv
            }
            Op::Dbsize => vec![self.name("dbsize")],
            Op::Flushall | Op::Flushdb => {
                let mut argv = vec![self.name(if matches!(op, Op::Flushall) { "flushall" } else { "flushdb" })];
                match self.rng.random_range(0..10) {
                    0 => argv.push(self.name("sync")),
                    1 => argv.push(self.name("async")),
                    2 => argv.push(b"now".to_vec()),
                    _ => {}
                }
                argv
            }
            Op::Ping => {
                let mut argv = vec![self.name("ping")];
                if self.pct(50) {
                    argv.push(self.value());
                }
                argv
            }
            Op::Echo => vec![self.name("echo"), self.value()],
            Op::Select => {
                let db = if self.has(Feature::Databases) || self.pct(40) { self.db() } else { b"0".to_vec() };
                // Without databases keel has only 0: the other valid indexes are not sent.
                let db = if !self.has(Feature::Databases) && (1..16).any(|i| db == i.to_string().as_bytes()) { b"0".to_vec() } else { db };
                vec![self.name("select"), db]
            }
            Op::WrongArity => self.wrong_arity(),
            Op::Unknown => {
                let name = self.pick(&["nosuch", "gett", "sett", "keel.info", "keel.debug", "foo.bar", "x", "getx", "zzzz"]).to_string();
                let mut argv = vec![self.name(&name)];
                for _ in 0..self.rng.random_range(0..5) {
                    let mut a = if self.pct(20) { vec![b'a'; 100] } else { self.value() };
                    // ASCII only: keel's error replies are text, so bytes that are not
                    // UTF-8 come back as U+FFFD where Redis echoes them raw, and Redis
                    // may cut a character in two at its 128-byte budget (README
                    // "Differences from Redis").
                    for b in a.iter_mut().filter(|b| !b.is_ascii()) {
                        *b = b'~';
                    }
                    argv.push(a);
                }
                argv
            }
            Op::Expire => {
                let (n, ms, at) =
                    *self.pick(&[("expire", false, false), ("pexpire", true, false), ("expireat", false, true), ("pexpireat", true, true)]);
                let t = if at { self.unix_time(ms) } else { self.ttl(ms) };
                let mut argv = vec![self.name(n), self.key(), t];
                for _ in 0..self.rng.random_range(0..=2) {
                    let flag = *self.pick(&["nx", "xx", "gt", "lt", "bogus"]);
                    argv.push(self.name(flag));
                }
                argv
            }
            Op::Ttl => {
                let ms = self.pct(50);
                compare = Compare::IntWithin(if ms { 3000 } else { 2 });
                vec![self.name(if ms { "pttl" } else { "ttl" }), self.key()]
            }
            Op::Expiretime => {
                let ms = self.pct(50);
                compare = Compare::IntWithin(if ms { 3000 } else { 2 });
                vec![self.name(if ms { "pexpiretime" } else { "expiretime" }), self.key()]
            }
            Op::Persist => vec![self.name("persist"), self.key()],
            Op::Setex => {
                let ms = self.pct(50);
                vec![self.name(if ms { "psetex" } else { "setex" }), self.key(), self.ttl(ms), self.value()]
            }
            Op::Getex => {
                let mut argv = vec![self.name("getex"), self.key()];
                match self.rng.random_range(0..7) {
                    0 => {}
                    1 => argv.extend([self.name("ex"), self.ttl(false)]),
                    2 => argv.extend([self.name("px"), self.ttl(true)]),
                    3 => argv.extend([self.name("exat"), self.unix_time(false)]),
                    4 => argv.extend([self.name("pxat"), self.unix_time(true)]),
                    5 => argv.push(self.name("persist")),
                    _ => argv.extend([self.name("ex"), self.ttl(false), self.name("persist")]),
                }
                argv
            }
            Op::Move => vec![self.name("move"), self.key(), self.db()],
            Op::Swapdb => vec![self.name("swapdb"), self.db(), self.db()],
        };
        // Inline lines stay well under 64 KiB: keel refuses a longer one, Redis only if
        // 64 KiB of it arrive before its newline (README "Differences from Redis").
        let inline = if self.pct(10) { Some(self.inline(&argv)).filter(|line| line.len() <= 60_000) } else { None };
        Cmd { argv, inline, compare }
    }

    /// `argv` as an inline command line (the quoting of Redis's `sdssplitargs`, which
    /// `keel_protocol::resp::split_inline` follows): each argument bare when it can be,
    /// else in single or double quotes,
    /// with the escapes chosen at random (`\n` or `\x0a`, `\xAB` or `\xab`).
    fn inline(&mut self, argv: &[Vec<u8>]) -> Vec<u8> {
        let mut line = Vec::new();
        for (i, a) in argv.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            let bare = !a.is_empty() && a.iter().all(|&c| c.is_ascii_graphic() && !b"\"'\\".contains(&c));
            let single = !a.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0 | b'\\'));
            match self.rng.random_range(0..3) {
                0 if bare => line.extend_from_slice(a),
                1 if single => {
                    line.push(b'\'');
                    for &c in a {
                        if c == b'\'' {
                            line.push(b'\\');
                        }
                        line.push(c);
                    }
                    line.push(b'\'');
                }
                _ => {
                    line.push(b'"');
                    for &c in a {
                        let named = match c {
                            b'\n' => Some(b'n'),
                            b'\r' => Some(b'r'),
                            b'\t' => Some(b't'),
                            0x07 => Some(b'a'),
                            0x08 => Some(b'b'),
                            _ => None,
                        };
                        match named {
                            Some(n) if self.pct(50) => line.extend_from_slice(&[b'\\', n]),
                            _ if c == b'"' || c == b'\\' => line.extend_from_slice(&[b'\\', c]),
                            _ if (0x20..0x7f).contains(&c) => line.push(c),
                            _ => {
                                let hex = if self.pct(50) { format!("\\x{c:02x}") } else { format!("\\x{c:02X}") };
                                line.extend_from_slice(hex.as_bytes());
                            }
                        }
                    }
                    line.push(b'"');
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        line
    }

    /// `SET k v` with a random set of options, some conflicting, some repeated, some
    /// unknown; with [`Feature::Expiry`] also EX|PX|EXAT|PXAT|KEEPTTL.
    fn set(&mut self) -> Vec<Vec<u8>> {
        let mut argv = vec![self.name("set"), self.key(), self.value()];
        let n = match self.rng.random_range(0..10) {
            0..5 => 0,
            5..8 => 1,
            8 => 2,
            _ => 3,
        };
        for _ in 0..n {
            let expiry = self.has(Feature::Expiry);
            match self.rng.random_range(0..if expiry { 10 } else { 7 }) {
                0 | 1 => argv.push(self.name("nx")),
                2 | 3 => argv.push(self.name("xx")),
                4 | 5 => argv.push(self.name("get")),
                6 => argv.push(self.pick(&[&b"bogus"[..], b"", b"N", b"NXX"]).to_vec()),
                7 => {
                    let ms = self.pct(50);
                    argv.extend([self.name(if ms { "px" } else { "ex" }), self.ttl(ms)]);
                }
                8 => {
                    // Not in the past: Redis 7.0 keeps such a key (already expired, counted
                    // by DBSIZE until it is reclaimed), keel deletes it at once (README,
                    // "Differences from Redis").
                    let ms = self.pct(50);
                    let t = loop {
                        let t = self.unix_time(ms);
                        if !matches!(t.as_slice(), b"1" | b"0" | b"-1") {
                            break t;
                        }
                    };
                    argv.extend([self.name(if ms { "pxat" } else { "exat" }), t]);
                }
                _ => argv.push(self.name("keepttl")),
            }
        }
        argv
    }

    /// A known command with too few or too many arguments.
    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        let table: Vec<(&str, i32)> =
            ARITY.iter().filter(|(_, _, f)| f.is_none_or(|f| self.features.contains(&f))).map(|&(n, a, _)| (n, a)).collect();
        loop {
            let (name, arity) = *self.pick(&table);
            let argc = if arity > 0 {
                // Exactly `arity`: one of 1..=arity+2 but not it (PING's -1 is no limit,
                // but more than 2 is refused: handled below).
                let a = arity as usize;
                let mut c = self.rng.random_range(1..=a + 2);
                if c == a {
                    c = a + 1;
                }
                c
            } else if name == "ping" {
                self.rng.random_range(3..=5)
            } else if name == "mset" && self.pct(50) {
                // An odd number of key/value arguments.
                2 * self.rng.random_range(1..=3) + 2
            } else {
                let min = (-arity) as usize;
                if min <= 1 {
                    continue;
                }
                self.rng.random_range(1..min)
            };
            let mut argv = vec![self.name(name)];
            for _ in 1..argc {
                argv.push(self.key());
            }
            return argv;
        }
    }
}
