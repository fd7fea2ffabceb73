//! Crash consistency with the real processes: SIGKILL one shard, or the whole process
//! group, while clients write; then check that every acknowledged write is there, that
//! no MSET is half-visible, and (one shard) that the other shard kept serving and the
//! dead shard's clients got `-ERR shard …` at once instead of hanging. Also: SIGTERM
//! under the same load (drain, exit 0, nothing acked lost) and SKEG.VSET under SIGKILL.
//!
//! Each client thread owns its keys, so the history of a key is the thread's sequence
//! of writes to it, each acked (OK reply) or unknown (error reply or lost connection:
//! applied or not). A key's final value must then be the last acked write's value or a
//! later unknown one; before any ack, absence or any unknown one.

mod common;

use common::{err_line, shard_of, tenants_on, Scratch, Server, Signal, IO_TIMEOUT};
use redis::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
/// Hard cap on each writer, whatever the test's timing.
const MAX_OPS: usize = 200_000;
const MAX_WRITE_TIME: Duration = Duration::from_secs(30);

/// One write's history entry: its value and whether it was acknowledged.
#[derive(Debug, Clone)]
struct Write {
    value: String,
    acked: bool,
}

#[derive(Debug)]
struct Op {
    start: Instant,
    end: Instant,
    shard: u32,
    /// `None` = acked; `Some(line)` = the error reply or I/O error.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Counter {
    acked: u64,
    unknown: u64,
    /// The largest value an acked INCR returned.
    max_reply: i64,
}

#[derive(Debug, Default)]
struct Log {
    sets: BTreeMap<String, Vec<Write>>,
    /// group prefix → history; the group's keys are `{prefix}:0..4`.
    msets: BTreeMap<String, Vec<Write>>,
    counters: BTreeMap<String, Counter>,
    ops: Vec<Op>,
    io_errors: Vec<String>,
    bad_replies: Vec<String>,
}

enum Target {
    Set(String),
    Mset(String),
    Incr(String),
}

fn connect(url: &str) -> redis::Connection {
    let c = redis::Client::open(url).unwrap().get_connection_with_timeout(IO_TIMEOUT).expect("connect");
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    c
}

/// A value unique to (thread, op) of about `len` bytes: `th.i:` then filler that also
/// depends on `i`, so a value read from the wrong place cannot pass for it.
fn padded(th: usize, i: usize, len: usize) -> String {
    let mut v = format!("{th}.{i}:");
    let filler = b"abcdefghijklmnopqrstuvwxyz0123456789";
    v.extend((0..len).map(|j| filler[(i + j * 7) % filler.len()] as char));
    v
}

/// Writes until `stop`, a lost connection, or the caps. `tenants` = (name, shard).
fn writer(th: usize, url: String, tenants: Vec<(String, u32)>, stop: Arc<AtomicBool>) -> Log {
    let mut con = connect(&url);
    let mut log = Log::default();
    let t0 = Instant::now();
    for i in 0..MAX_OPS {
        if stop.load(Ordering::Relaxed) || t0.elapsed() > MAX_WRITE_TIME {
            break;
        }
        let (tenant, shard) = &tenants[i % tenants.len()];
        let round = i / 12;
        let mut cmd;
        let (target, value) = match i % 3 {
            0 => {
                // Sizes up to a few KiB: many values are too large to stay inline in
                // the keydir and are read back from the vLog.
                let value = padded(th, i, (i * 37) % 3000);
                let key = format!("{tenant}:s{th}:{}", round % 8);
                cmd = redis::cmd("SET");
                cmd.arg(&key).arg(&value);
                (Target::Set(key), value)
            }
            1 => {
                // A batch of 4 such values can span several 4 KiB blocks.
                let value = padded(th, i, (i * 53) % 1500);
                let group = format!("{tenant}:m{th}:{}", round % 4);
                cmd = redis::cmd("MSET");
                for j in 0..4 {
                    cmd.arg(format!("{group}:{j}")).arg(&value);
                }
                (Target::Mset(group), value)
            }
            _ => {
                let key = format!("{tenant}:c{th}");
                cmd = redis::cmd("INCR");
                cmd.arg(&key);
                (Target::Incr(key), String::new())
            }
        };
        let start = Instant::now();
        let r = cmd.query::<Value>(&mut con);
        let end = Instant::now();
        let error = match &r {
            Ok(_) => None,
            Err(e) if e.code().is_some() => Some(err_line(e)),
            Err(e) => Some(format!("I/O: {e}")),
        };
        let acked = error.is_none();
        match target {
            Target::Set(_) | Target::Mset(_) => {
                if let Ok(v) = &r {
                    if *v != Value::Okay {
                        let packed = cmd.get_packed_command();
                        log.bad_replies.push(format!("{} → {v:?}", String::from_utf8_lossy(&packed[..packed.len().min(80)])));
                    }
                }
                let w = Write { value, acked };
                match target {
                    Target::Set(key) => log.sets.entry(key).or_default().push(w),
                    Target::Mset(group) => log.msets.entry(group).or_default().push(w),
                    Target::Incr(_) => unreachable!(),
                }
            }
            Target::Incr(key) => {
                let ctr = log.counters.entry(key).or_default();
                match &r {
                    Ok(Value::Int(n)) => {
                        ctr.acked += 1;
                        ctr.max_reply = ctr.max_reply.max(*n);
                    }
                    Ok(v) => {
                        log.bad_replies.push(format!("INCR → {v:?}"));
                        ctr.unknown += 1;
                    }
                    Err(_) => ctr.unknown += 1,
                }
            }
        }
        let io = matches!(&r, Err(e) if e.code().is_none());
        log.ops.push(Op { start, end, shard: *shard, error });
        if io {
            log.io_errors.push(format!("thread {th} op {i}: {}", r.unwrap_err()));
            break;
        }
    }
    log
}

fn start_writers(url: &str, tenants: &[(String, u32)], stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Log>> {
    (0..THREADS)
        .map(|th| {
            let (url, stop) = (url.to_string(), stop.clone());
            // Each thread starts at another tenant, so all shards see traffic at once.
            let mut ts = tenants.to_vec();
            ts.rotate_left(th % tenants.len());
            std::thread::spawn(move || writer(th, url, ts, stop))
        })
        .collect()
}

/// Two tenants per shard (of 2), interleaved: shard 0, shard 1, shard 0, shard 1.
fn spread_tenants(prefix: &str) -> Vec<(String, u32)> {
    let a = tenants_on(prefix, 0, 2, 2);
    let b = tenants_on(prefix, 1, 2, 2);
    a.into_iter().zip(b).flat_map(|(x, y)| [(x, 0), (y, 1)]).collect()
}

/// The values a key may hold at the end, given its history (`None` = absent).
fn allowed(history: &[Write]) -> Vec<Option<String>> {
    match history.iter().rposition(|w| w.acked) {
        Some(j) => history[j..].iter().map(|w| Some(w.value.clone())).collect(),
        None => std::iter::once(None).chain(history.iter().map(|w| Some(w.value.clone()))).collect(),
    }
}

/// The last few writes of a history, for messages (values cut to their `th.i:` head).
fn tail(history: &[Write]) -> Vec<(String, bool)> {
    history[history.len().saturating_sub(4)..].iter().map(|w| (head(&Some(w.value.clone())), w.acked)).collect()
}

fn head(v: &Option<String>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let Some(p) = v.find(':') else { return format!("{v:?}") };
            let intact = v[..p]
                .split_once('.')
                .and_then(|(th, i)| Some(padded(th.parse().ok()?, i.parse().ok()?, v.len() - p - 1)))
                .is_some_and(|want| want == *v);
            format!("{}+{}B{}", &v[..p], v.len() - p - 1, if intact { "" } else { "(corrupt)" })
        }
    }
}

fn heads(vs: &[Option<String>]) -> Vec<String> {
    vs.iter().map(head).collect()
}

fn as_opt_string(v: &Value) -> Option<String> {
    match v {
        Value::Nil => None,
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Checks every thread's history against the server's final state; returns the
/// problems found (empty = consistent).
fn verify(con: &mut redis::Connection, logs: &[Log]) -> Vec<String> {
    let mut bad = Vec::new();
    let (mut n_sets, mut n_groups, mut n_ctrs) = (0, 0, 0);
    for log in logs {
        for (key, history) in &log.sets {
            n_sets += 1;
            let got: Value = redis::cmd("GET").arg(key).query(con).expect("GET");
            let got = as_opt_string(&got);
            let ok = allowed(history);
            if !ok.contains(&got) {
                bad.push(format!("SET {key}: holds {}, allowed {:?} (history ends {:?})", head(&got), heads(&ok), tail(history)));
            }
        }
        for (group, history) in &log.msets {
            n_groups += 1;
            let mut c = redis::cmd("MGET");
            for j in 0..4 {
                c.arg(format!("{group}:{j}"));
            }
            let got: Vec<Value> = c.query(con).expect("MGET");
            let got: Vec<Option<String>> = got.iter().map(as_opt_string).collect();
            if got.iter().any(|v| *v != got[0]) {
                bad.push(format!("MSET {group}: half-visible, keys hold {:?} (history ends {:?})", heads(&got), tail(history)));
                continue;
            }
            let ok = allowed(history);
            if !ok.contains(&got[0]) {
                bad.push(format!("MSET {group}: holds {}, allowed {:?}", head(&got[0]), heads(&ok)));
            }
        }
        for (key, ctr) in &log.counters {
            n_ctrs += 1;
            let got: Option<i64> = redis::cmd("GET").arg(key).query(con).expect("GET counter");
            let n = got.unwrap_or(0);
            let low = (ctr.acked as i64).max(ctr.max_reply);
            let high = (ctr.acked + ctr.unknown) as i64;
            if n < low || n > high {
                bad.push(format!("INCR {key}: holds {n}, expected {low}..={high} ({ctr:?})"));
            }
        }
    }
    assert!(n_sets > 0 && n_groups > 0 && n_ctrs > 0, "the writers wrote nothing");
    bad
}

fn acked_ops(logs: &[Log]) -> usize {
    logs.iter().flat_map(|l| &l.ops).filter(|o| o.error.is_none()).count()
}

#[test]
fn shard_sigkill_under_writes_loses_no_acked_write() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let tenants = spread_tenants("ck");
    let victim = 1u32;
    let survivor = 0u32;
    let probe_key = format!("{}:probe", tenants.iter().find(|t| t.1 == victim).unwrap().0);
    assert_eq!(shard_of(&probe_key, 2), victim);
    let victim_pid = srv.shard_pid(victim);

    let stop = Arc::new(AtomicBool::new(false));
    let handles = start_writers(&srv.url(), &tenants, &stop);
    std::thread::sleep(Duration::from_millis(800));

    common::kill(victim_pid, Signal::KILL);
    let killed_at = Instant::now();
    assert!(common::wait_gone(victim_pid, Duration::from_secs(10)), "shard pid {victim_pid} survived SIGKILL");

    // Wait until the router has restarted the shard and routes to it again.
    let mut probe = srv.con();
    let mut probe_errors = Vec::new();
    let recovered_at = loop {
        match redis::cmd("SET").arg(&probe_key).arg("x").query::<Value>(&mut probe) {
            Ok(_) => break Instant::now(),
            Err(e) => probe_errors.push(err_line(&e)),
        }
        if killed_at.elapsed() > Duration::from_secs(40) {
            stop.store(true, Ordering::Relaxed);
            panic!("shard {victim} not back 40 s after SIGKILL; last errors {:?}\n{}", probe_errors.iter().rev().take(3).collect::<Vec<_>>(), srv.log_tail());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<Log> = handles.into_iter().map(|h| h.join().expect("writer panicked")).collect();

    let new_pid = srv.shard_pid(victim);
    assert_ne!(new_pid, victim_pid, "shard {victim} was not restarted");

    // The clients' view of the outage.
    let io: Vec<&String> = logs.iter().flat_map(|l| &l.io_errors).collect();
    assert!(io.is_empty(), "client connections broke or timed out while a shard was down: {io:?}");
    let bad: Vec<&String> = logs.iter().flat_map(|l| &l.bad_replies).collect();
    assert!(bad.is_empty(), "unexpected replies: {bad:?}");
    let ops: Vec<&Op> = logs.iter().flat_map(|l| &l.ops).collect();
    let survivor_errors: Vec<&&Op> = ops.iter().filter(|o| o.shard == survivor && o.error.is_some()).collect();
    assert!(survivor_errors.is_empty(), "requests to the surviving shard failed: {survivor_errors:?}");
    let victim_errors: Vec<&&Op> = ops.iter().filter(|o| o.shard == victim && o.error.is_some()).collect();
    assert!(!victim_errors.is_empty(), "no client saw shard {victim} down (probe saw {} errors)", probe_errors.len());
    let prefix = format!("ERR shard {victim} ");
    for o in &victim_errors {
        let e = o.error.as_ref().unwrap();
        assert!(e.starts_with(&prefix), "request to the dead shard failed with {e:?}, expected '{prefix}…'");
        assert!(o.end - o.start < Duration::from_secs(5), "request to the dead shard took {:?} to fail", o.end - o.start);
    }
    for e in &probe_errors {
        assert!(e.starts_with(&prefix), "probe: {e:?}");
    }
    let served_during_outage = ops
        .iter()
        .filter(|o| o.shard == survivor && o.error.is_none() && o.start >= killed_at && o.end <= recovered_at)
        .count();
    assert!(
        served_during_outage > 0,
        "shard {survivor} served no request during shard {victim}'s outage ({:?}); {} errors on the victim",
        recovered_at - killed_at,
        victim_errors.len()
    );
    let victim_after = ops.iter().filter(|o| o.shard == victim && o.error.is_none() && o.start >= recovered_at).count();
    assert!(victim_after > 0, "no client write reached shard {victim} after it came back");
    eprintln!(
        "shard outage {:?}: {} acked ops, {} errors on shard {victim}, {} served by shard {survivor} meanwhile",
        recovered_at - killed_at,
        acked_ops(&logs),
        victim_errors.len(),
        served_during_outage
    );

    let mut c = srv.con();
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(info.contains("shard_restarts:1\r\n"), "INFO persistence:\n{info}");
    let problems = verify(&mut c, &logs);
    assert!(problems.is_empty(), "{} inconsistencies after a shard crash:\n  {}", problems.len(), problems.join("\n  "));
    drop(c);
    srv.stop();
}

/// SIGKILL of router and shards at once while 4 clients write; restart on the same
/// data dir; every acked write is there and no MSET is half-visible.
fn group_sigkill(durability: &str) {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--durability", durability]);
    let tenants = spread_tenants("cg");
    let stop = Arc::new(AtomicBool::new(false));
    let handles = start_writers(&srv.url(), &tenants, &stop);
    std::thread::sleep(Duration::from_millis(1200));
    srv.kill9();
    // The writers end on their broken connections; the flag is a backstop.
    let t0 = Instant::now();
    while handles.iter().any(|h| !h.is_finished()) && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<Log> = handles.into_iter().map(|h| h.join().expect("writer panicked")).collect();

    let bad: Vec<&String> = logs.iter().flat_map(|l| &l.bad_replies).collect();
    assert!(bad.is_empty(), "unexpected replies: {bad:?}");
    // Before the kill, nothing failed: every error is the kill itself (a lost
    // connection, or the router noticing a shard die a moment before it dies itself).
    let server_errors: Vec<&String> = logs
        .iter()
        .flat_map(|l| &l.ops)
        .filter_map(|o| o.error.as_ref())
        .filter(|e| !e.starts_with("I/O") && !e.starts_with("ERR shard "))
        .collect();
    assert!(server_errors.is_empty(), "error replies before the kill: {server_errors:?}");
    let acked = acked_ops(&logs);
    assert!(acked > 20, "too few acked writes ({acked}) to test anything");

    let srv = Server::start(&scratch, &["--durability", durability]);
    let mut c = srv.con();
    let problems = verify(&mut c, &logs);
    assert!(
        problems.is_empty(),
        "{} inconsistencies after SIGKILL of the process group at {durability} ({acked} acked ops):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    eprintln!("group SIGKILL at {durability}: {acked} acked ops all present");
    // The recovered server keeps working, and a graceful restart after the crash
    // recovery (torn tail truncated, new writes appended) finds the same state.
    let big = padded(9, 9, 5000);
    let _: () = redis::cmd("SET").arg("after:crash").arg(&big).query(&mut c).unwrap();
    drop(c);
    srv.stop();
    let srv = Server::start(&scratch, &["--durability", durability]);
    let mut c = srv.con();
    let problems = verify(&mut c, &logs);
    assert!(problems.is_empty(), "{} inconsistencies after the second restart:\n  {}", problems.len(), problems.join("\n  "));
    let got: Option<String> = redis::cmd("GET").arg("after:crash").query(&mut c).unwrap();
    assert_eq!(got.as_deref().map(|v| head(&Some(v.to_string()))), Some(head(&Some(big))));
    drop(c);
    srv.stop();
}

#[test]
fn group_sigkill_at_kernel_loses_no_acked_write() {
    group_sigkill("kernel");
}

#[test]
fn group_sigkill_at_relaxed_loses_no_acked_write() {
    // DESIGN §3: relaxed acks survive the keel process being killed (not an OS crash).
    group_sigkill("relaxed");
}

/// SIGTERM while 4 clients write: the router drains and exits 0, and every acked write
/// is there after the restart.
#[test]
fn sigterm_under_writes_exits_0_and_keeps_acked_writes() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let tenants = spread_tenants("cs");
    let stop = Arc::new(AtomicBool::new(false));
    let handles = start_writers(&srv.url(), &tenants, &stop);
    std::thread::sleep(Duration::from_millis(800));
    srv.stop();
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<Log> = handles.into_iter().map(|h| h.join().expect("writer panicked")).collect();
    let acked = acked_ops(&logs);
    assert!(acked > 20, "too few acked writes ({acked})");
    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let problems = verify(&mut srv.con(), &logs);
    assert!(problems.is_empty(), "{} inconsistencies after SIGTERM under load:\n  {}", problems.len(), problems.join("\n  "));
    srv.stop();
}

/// A deterministic vector per id (no two ids share a direction).
fn vector_of(id: u64) -> Vec<f32> {
    let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// SKEG.VSET under SIGKILL of the process group: after the restart the index holds
/// every acked vector (found as its own nearest neighbour, score 1) and no more vectors
/// than were sent.
#[test]
fn vector_writes_survive_group_sigkill() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let index = format!("{}:vec", tenants_on("cv", 1, 2, 1)[0]);
    let mut c = srv.con();
    let _: () = redis::cmd("SKEG.VINDEX.CREATE").arg(&index).arg(8).arg("f32").arg("flat").query(&mut c).unwrap();
    drop(c);
    let url = srv.url();
    let handles: Vec<_> = (0..2u64)
        .map(|th| {
            let (url, index) = (url.clone(), index.clone());
            std::thread::spawn(move || {
                let mut con = connect(&url);
                let (mut acked, mut unknown) = (Vec::new(), Vec::new());
                let t0 = Instant::now();
                for n in 0..MAX_OPS as u64 {
                    if t0.elapsed() > MAX_WRITE_TIME {
                        break;
                    }
                    let id = th * 1_000_000 + n;
                    let blob = common::blob(&vector_of(id));
                    match redis::cmd("SKEG.VSET").arg(&index).arg(id).arg(blob).query::<Value>(&mut con) {
                        Ok(_) => acked.push(id),
                        Err(e) => {
                            unknown.push(id);
                            if e.code().is_none() {
                                break; // the server is gone
                            }
                        }
                    }
                }
                (acked, unknown)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    srv.kill9();
    let results: Vec<(Vec<u64>, Vec<u64>)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let acked: Vec<u64> = results.iter().flat_map(|r| r.0.clone()).collect();
    let unknown = results.iter().map(|r| r.1.len()).sum::<usize>();
    assert!(acked.len() > 10, "too few acked VSETs ({})", acked.len());

    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let mut c = srv.con();
    let list: Vec<String> = redis::cmd("SKEG.VINDEX.LIST").query(&mut c).unwrap();
    let n: usize = list
        .iter()
        .find(|l| l.starts_with(&format!("name={index} ")))
        .and_then(|l| l.rsplit("n_vectors=").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("index {index} missing after restart: {list:?}"));
    assert!(
        n >= acked.len() && n <= acked.len() + unknown,
        "index holds {n} vectors; {} were acked, {unknown} unknown",
        acked.len()
    );
    // Each one is a search: check the last acked ids of each writer (the ones a lost
    // tail would drop) and every 10th of the rest; the count above covers them all.
    let last: Vec<u64> = results.iter().flat_map(|r| r.0.iter().rev().take(100).copied()).collect();
    let sample: Vec<u64> = acked.iter().copied().filter(|id| id % 10 == 0 || last.contains(id)).collect();
    let mut missing = Vec::new();
    for &id in &sample {
        let q = vector_of(id);
        let reply: Vec<String> = redis::cmd("SKEG.VSEARCH").arg(&index).arg(1).arg(10).arg(common::blob(&q)).query(&mut c).unwrap();
        let ok = reply.len() == 2 && reply[0] == id.to_string() && (reply[1].parse::<f64>().unwrap_or(0.0) - 1.0).abs() < 1e-4;
        if !ok {
            missing.push((id, reply));
        }
    }
    assert!(missing.is_empty(), "{} of {} acked vectors checked not found after restart: {:?}", missing.len(), sample.len(), &missing[..missing.len().min(5)]);
    eprintln!("vector SIGKILL: {} acked VSETs, {n} vectors after restart, {} checked by search", acked.len(), sample.len());
    drop(c);
    srv.stop();
}

/// A connection handed to a shard (12 commands on one of its tenants, so the shard
/// serves it directly) is closed when that shard dies, as a Redis client's is when its
/// server dies; the router forgets it (connected_clients), and after the restart the
/// tenant is served again, on a new connection and once more through a hand-off.
#[test]
fn a_handed_off_connection_closes_with_its_shard_and_is_forgotten() {
    use std::io::{Read, Write};
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--durability", "kernel"]);
    let tenant = &tenants_on("hk", 1, 2, 1)[0];
    let set = |s: &mut std::net::TcpStream, key: &str| {
        let cmd = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
        s.write_all(cmd.as_bytes()).and_then(|_| {
            let mut got = [0u8; 5];
            s.read_exact(&mut got).map(|_| got)
        })
    };
    let mut c = srv.raw();
    for i in 0..12 {
        assert_eq!(&set(&mut c, &format!("{tenant}:k{i}")).unwrap(), b"+OK\r\n");
    }
    let mut watcher = srv.con();
    let stat = |w: &mut redis::Connection, section: &str, name: &str| -> u64 {
        let text: String = redis::cmd("INFO").arg(section).query(w).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap().to_string();
        line[name.len() + 1..].trim().parse().unwrap()
    };
    let handed = stat(&mut watcher, "stats", "shard_handoffs");
    assert!(handed >= 1, "12 single-tenant commands must hand the connection to its shard");
    assert_eq!(stat(&mut watcher, "clients", "connected_clients"), 2);

    let pid = srv.shard_pid(1);
    common::kill(pid, Signal::KILL);
    assert!(common::wait_gone(pid, Duration::from_secs(10)), "shard pid {pid} survived SIGKILL");
    // The handed-off connection is closed: EOF or reset, not a hang.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match set(&mut c, &format!("{tenant}:after-kill")) {
        Ok(got) => panic!("a connection held by a dead shard answered {:?}", String::from_utf8_lossy(&got)),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the connection hung instead of closing: {e}"
        ),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(&mut watcher, "clients", "connected_clients") != 1 {
        assert!(Instant::now() < deadline, "the router still counts the dead shard's connection");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Back after the restart: a new connection is served, and handed off again.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut d = loop {
        let mut d = srv.raw();
        if matches!(set(&mut d, &format!("{tenant}:probe")), Ok(got) if &got == b"+OK\r\n") {
            break d;
        }
        assert!(Instant::now() < deadline, "shard 1 not back 40 s after SIGKILL\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    };
    for i in 0..12 {
        assert_eq!(&set(&mut d, &format!("{tenant}:k{i}")).unwrap(), b"+OK\r\n");
    }
    assert!(stat(&mut watcher, "stats", "shard_handoffs") > handed, "the restarted shard must take connections again");
    srv.stop();
}
