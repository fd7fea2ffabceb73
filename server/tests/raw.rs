//! keel at the byte level (mini-redis `tests/server.rs` style): inline commands,
//! pipelining, partial writes, malformed input and limits, QUIT. Each check writes
//! exact bytes and compares exact reply bytes.

mod common;

use common::wire::{expect_closed, read_line, req};
use common::{rss_bytes, Scratch, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn server() -> (Scratch, Server) {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    (scratch, srv)
}

/// Reads until exactly `want.len()` bytes arrived and compares them.
#[track_caller]
fn expect(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    if let Err(e) = s.read_exact(&mut got) {
        panic!("reading {:?}: {e}", String::from_utf8_lossy(want));
    }
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Writes `req` and checks that the reply is exactly `reply`.
#[track_caller]
fn check(s: &mut TcpStream, req: &[u8], reply: &[u8]) {
    s.write_all(req).unwrap();
    expect(s, reply);
}

#[test]
fn inline_commands() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    check(&mut s, b"PING\r\n", b"+PONG\r\n");
    check(&mut s, b"ping\n", b"+PONG\r\n");
    // Empty lines are skipped.
    check(&mut s, b"\r\n\r\nPING\r\n", b"+PONG\r\n");
    check(&mut s, b"SET \"a b\" \"c d\"\r\n", b"+OK\r\n");
    check(&mut s, &req(&[b"GET", b"a b"]), b"$3\r\nc d\r\n");
    check(&mut s, b"GET \"a b\"\r\n", b"$3\r\nc d\r\n");
    check(&mut s, b"ECHO 'single quoted'\r\n", b"$13\r\nsingle quoted\r\n");
    check(&mut s, b"ECHO \"tab\\there\"\r\n", b"$8\r\ntab\there\r\n");
    check(&mut s, b"  SET   x:1    v1  \r\n", b"+OK\r\n");
    check(&mut s, b"GET x:1\r\n", b"$2\r\nv1\r\n");
    check(&mut s, b"GET x:missing\r\n", b"$-1\r\n");
    check(&mut s, b"INCR x:n\r\n", b":1\r\n");
    check(&mut s, b"NOSUCH a b\r\n", b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n");
    check(&mut s, b"GET\r\n", b"-ERR wrong number of arguments for 'get' command\r\n");
    // Unbalanced quotes are a protocol error, and the connection is closed.
    s.write_all(b"SET \"a b\r\n").unwrap();
    let line = read_line(&mut s);
    assert!(line.starts_with("-ERR Protocol error"), "{line}");
    expect_closed(&mut s);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    // 100 requests in one write, over tenants on both shards plus router-local ones.
    let mut batch = Vec::new();
    let mut want = Vec::new();
    let mut totals = std::collections::HashMap::new();
    for i in 0..100u64 {
        let tenant = format!("p{}", i % 7);
        match i % 4 {
            0 | 1 => {
                let key = format!("{tenant}:sum");
                let t = totals.entry(key.clone()).or_insert(0u64);
                *t += i;
                batch.extend(req(&[b"INCRBY", key.as_bytes(), i.to_string().as_bytes()]));
                want.extend(format!(":{t}\r\n").into_bytes());
            }
            2 => {
                let v = format!("value-{i}");
                batch.extend(req(&[b"SET", format!("{tenant}:s").as_bytes(), v.as_bytes()]));
                batch.extend(req(&[b"GET", format!("{tenant}:s").as_bytes()]));
                want.extend(b"+OK\r\n");
                want.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
            }
            _ => {
                let m = format!("echo-{i}");
                batch.extend(req(&[b"ECHO", m.as_bytes()]));
                want.extend(format!("${}\r\n{m}\r\n", m.len()).into_bytes());
            }
        }
    }
    assert!(batch.len() > 1000);
    s.write_all(&batch).unwrap();
    expect(&mut s, &want);

    // The same pipeline, inline, in one write.
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        batch.extend(format!("INCR inl{}:n\r\n", i % 3).into_bytes());
        want.extend(format!(":{}\r\n", i / 3 + 1).into_bytes());
    }
    s.write_all(&batch).unwrap();
    expect(&mut s, &want);
}

#[test]
fn requests_split_across_writes() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    let r = req(&[b"SET", b"split:k", b"hello world"]);
    for chunk in r.chunks(3) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    expect(&mut s, b"+OK\r\n");
    // Byte by byte, with a second request glued to the end of the first.
    let mut two = req(&[b"GET", b"split:k"]);
    two.extend(b"PIN");
    for b in &two {
        s.write_all(&[*b]).unwrap();
    }
    expect(&mut s, b"$11\r\nhello world\r\n");
    check(&mut s, b"G\r\n", b"+PONG\r\n");
}

#[test]
fn malformed_resp_closes_only_that_connection() {
    let (_d, srv) = server();
    let mut other = srv.raw();
    check(&mut other, &req(&[b"SET", b"o:k", b"1"]), b"+OK\r\n");

    for bad in [&b"*1\r\n$x\r\n"[..], b"*x\r\n", b"*2\r\n$3\r\nGET\r\n:1\r\n", b"*1\r\n$+3\r\nGET\r\n", b"*1\r\n$-5\r\n"] {
        let mut s = srv.raw();
        // A good request before the bad one in the same write is still answered.
        let mut bytes = req(&[b"INCR", b"o:n"]);
        bytes.extend_from_slice(bad);
        s.write_all(&bytes).unwrap();
        let first = read_line(&mut s);
        assert!(first.starts_with(':'), "{first}");
        let line = read_line(&mut s);
        assert!(line.starts_with("-ERR Protocol error"), "{:?} → {line}", String::from_utf8_lossy(bad));
        expect_closed(&mut s);
        // The other client never noticed.
        check(&mut other, &req(&[b"INCR", b"o:k"]), b":2\r\n");
        check(&mut other, &req(&[b"DECR", b"o:k"]), b":1\r\n");
    }
    check(&mut other, &req(&[b"GET", b"o:n"]), b"$1\r\n5\r\n");
}

#[test]
fn oversized_lengths_are_refused_without_allocating() {
    let (_d, srv) = server();
    let mut other = srv.raw();
    check(&mut other, b"PING\r\n", b"+PONG\r\n");
    let rss_before = rss_bytes(srv.pid);
    for bad in [
        &b"*1\r\n$99999999999\r\n"[..],
        b"*1\r\n$536870913\r\n",            // 512 MiB + 1: over proto-max-bulk-len
        b"*99999999999\r\n",
        b"*1\r\n$18446744073709551616\r\n", // u64 overflow
        b"*2147483648\r\n",
    ] {
        let mut s = srv.raw();
        s.write_all(bad).unwrap();
        let line = read_line(&mut s);
        assert!(line.starts_with("-ERR Protocol error"), "{:?} → {line}", String::from_utf8_lossy(bad));
        expect_closed(&mut s);
        check(&mut other, b"PING\r\n", b"+PONG\r\n");
    }
    // An over-long inline line (no newline in sight) is refused too, not buffered forever.
    // (64 KiB + 1 bytes, so that the server has read everything when it refuses and
    // closes with a FIN, not a reset that could discard its error reply.)
    let mut s = srv.raw();
    let junk = vec![b'a'; (64 << 10) + 1];
    s.write_all(&junk).unwrap();
    let line = read_line(&mut s);
    assert!(line.starts_with("-ERR Protocol error"), "{line}");
    expect_closed(&mut s);

    let rss_after = rss_bytes(srv.pid);
    assert!(
        rss_after < rss_before + (64 << 20),
        "router RSS grew from {rss_before} to {rss_after} bytes on refused requests"
    );
    check(&mut other, &req(&[b"SET", b"o:k", b"v"]), b"+OK\r\n");
    check(&mut other, &req(&[b"GET", b"o:k"]), b"$1\r\nv\r\n");
}

#[test]
fn a_slow_client_does_not_block_others() {
    let (_d, srv) = server();
    // A client stuck in the middle of a large bulk string…
    let mut slow = srv.raw();
    slow.write_all(b"*3\r\n$3\r\nSET\r\n$6\r\nslow:k\r\n$100000\r\nabc").unwrap();
    // …while another client works normally.
    let mut other = srv.raw();
    let t0 = Instant::now();
    for i in 0..50 {
        check(&mut other, &req(&[b"SET", format!("fast:{i}").as_bytes(), b"x"]), b"+OK\r\n");
    }
    assert!(t0.elapsed() < Duration::from_secs(15));
    // The slow client finishes its request and gets its reply.
    slow.write_all(&vec![b'z'; 100_000 - 3]).unwrap();
    slow.write_all(b"\r\n").unwrap();
    expect(&mut slow, b"+OK\r\n");
    check(&mut slow, &req(&[b"STRLEN", b"slow:k"]), b":100000\r\n");
}

#[test]
fn quit_replies_ok_then_closes() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    check(&mut s, &req(&[b"SET", b"q:k", b"v"]), b"+OK\r\n");
    // Requests pipelined after QUIT are not executed.
    let mut bytes = req(&[b"QUIT"]);
    bytes.extend(req(&[b"SET", b"q:k", b"after-quit"]));
    s.write_all(&bytes).unwrap();
    expect(&mut s, b"+OK\r\n");
    expect_closed(&mut s);
    let mut s = srv.raw();
    check(&mut s, &req(&[b"GET", b"q:k"]), b"$1\r\nv\r\n");
    check(&mut s, b"QUIT\r\n", b"+OK\r\n");
    expect_closed(&mut s);
}

/// A decoded reply, for the few checks that look inside aggregates.
#[derive(Debug, PartialEq)]
enum Raw {
    Line(char, String),
    Bulk(Option<Vec<u8>>),
    Agg(char, Vec<Raw>),
}

fn read_value(s: &mut TcpStream) -> Raw {
    let line = read_line(s);
    let (kind, rest) = line.split_at(1);
    let kind = kind.chars().next().unwrap();
    match kind {
        '$' | '=' => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Raw::Bulk(None);
            }
            let mut b = vec![0u8; n as usize + 2];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b[n as usize..], b"\r\n");
            b.truncate(n as usize);
            Raw::Bulk(Some(b))
        }
        '*' | '~' | '>' => {
            let n: usize = rest.parse().unwrap();
            Raw::Agg(kind, (0..n).map(|_| read_value(s)).collect())
        }
        '%' => {
            let n: usize = rest.parse().unwrap();
            Raw::Agg(kind, (0..2 * n).map(|_| read_value(s)).collect())
        }
        _ => Raw::Line(kind, rest.to_string()),
    }
}

/// The value after key `name` in a flat key/value aggregate.
fn field<'a>(items: &'a [Raw], name: &str) -> Option<&'a Raw> {
    items.chunks(2).find(|kv| kv[0] == Raw::Bulk(Some(name.as_bytes().to_vec()))).map(|kv| &kv[1])
}

#[test]
fn resp3_encoding_after_hello_3() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    check(&mut s, &req(&[b"GET", b"r:nope"]), b"$-1\r\n");
    s.write_all(&req(&[b"HELLO", b"3"])).unwrap();
    match read_value(&mut s) {
        Raw::Agg('%', items) => assert_eq!(field(&items, "proto"), Some(&Raw::Line(':', "3".into())), "{items:?}"),
        other => panic!("HELLO 3 must reply with a RESP3 map: {other:?}"),
    }
    check(&mut s, &req(&[b"GET", b"r:nope"]), b"_\r\n");
    check(&mut s, &req(&[b"SET", b"r:k", b"v"]), b"+OK\r\n");
    check(&mut s, &req(&[b"CONFIG", b"GET", b"databases"]), b"%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
    s.write_all(&req(&[b"HELLO", b"2"])).unwrap();
    match read_value(&mut s) {
        Raw::Agg('*', items) => assert_eq!(field(&items, "proto"), Some(&Raw::Line(':', "2".into())), "{items:?}"),
        other => panic!("HELLO 2 must reply with a RESP2 array: {other:?}"),
    }
    check(&mut s, &req(&[b"GET", b"r:nope"]), b"$-1\r\n");
    check(&mut s, &req(&[b"CONFIG", b"GET", b"databases"]), b"*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
}

/// An INFO stats counter, read on `s`.
fn info_stat(s: &mut TcpStream, name: &str) -> u64 {
    s.write_all(&req(&[b"INFO", b"stats"])).unwrap();
    let Raw::Bulk(Some(text)) = read_value(s) else { panic!("INFO must reply with a bulk string") };
    let text = String::from_utf8(text).unwrap();
    let prefix = format!("{name}:");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in {text}"));
    line[prefix.len()..].trim().parse().unwrap()
}

/// With hand-off off (`--shard-handoff false`) a connection stays on the router
/// executor that accepted it: with two router executors and two shards, a connection
/// working on a tenant of shard 0, then of shard 1, and so on, is served correctly
/// throughout (state, order, RESP3), nothing is handed to a shard, and open connections
/// close at shutdown.
#[test]
fn with_handoff_off_connections_stay_on_the_router_and_keep_their_state() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--router-threads", "2", "--shard-handoff", "false"]);
    alternate_tenants_and_keep_state(&srv);
    let mut s = srv.raw();
    assert_eq!(info_stat(&mut s, "shard_handoffs"), 0, "hand-off is off");
    drop(s);
    idle_connections_close_at_shutdown(srv);
}

/// Connection hand-off (server/src/handoff.rs, shard/src/client.rs): the same
/// alternating connection is handed to shard 0, given back at its first shard-1
/// command, handed to shard 1, and so on; its state and replies survive every trip.
#[test]
fn connections_are_handed_to_their_shard_and_back_and_keep_their_state() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--router-threads", "2"]);
    alternate_tenants_and_keep_state(&srv);
    let mut s = srv.raw();
    let handoffs = info_stat(&mut s, "shard_handoffs");
    assert!(handoffs >= 4, "four single-tenant rounds must each have been handed to their shard (shard_handoffs = {handoffs})");
    drop(s);
    idle_connections_close_at_shutdown(srv);
}

/// While a shard serves a handed-off connection: a request split across writes is
/// served; a pipeline mixing the shard's keys with another shard's, PING, a multi-key
/// command and a keyspace command is answered in order (the shard answers its part,
/// the router the rest); malformed input gets the router's protocol error and closes.
#[test]
fn a_handed_off_connection_keeps_pipelines_in_order_and_errors_exact() {
    let (_d, srv) = server();
    let a = &common::tenants_on("hoa", 0, 2, 1)[0];
    let b = &common::tenants_on("hob", 1, 2, 1)[0];
    let mut s = srv.raw();
    // A key of the other shard, so that serving it on the wrong shard would show.
    check(&mut s, &req(&[b"SET", format!("{b}:one").as_bytes(), b"1"]), b"+OK\r\n");
    let warm = |s: &mut TcpStream| {
        for i in 0..10 {
            check(s, &req(&[b"SET", format!("{a}:k{i}").as_bytes(), format!("v{i}").as_bytes()]), b"+OK\r\n");
        }
    };
    warm(&mut s);
    let r = req(&[b"SET", format!("{a}:split").as_bytes(), b"hello"]);
    for chunk in r.chunks(5) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    expect(&mut s, b"+OK\r\n");
    let mut batch = Vec::new();
    batch.extend(req(&[b"GET", format!("{a}:k1").as_bytes()]));
    batch.extend(req(&[b"PING"]));
    batch.extend(req(&[b"EXISTS", format!("{a}:k1").as_bytes(), format!("{a}:k2").as_bytes(), format!("{a}:nope").as_bytes()]));
    batch.extend(req(&[b"MGET", format!("{a}:k1").as_bytes(), format!("{b}:one").as_bytes()]));
    batch.extend(req(&[b"GET", format!("{b}:none").as_bytes()]));
    batch.extend(req(&[b"DBSIZE"]));
    batch.extend(req(&[b"GET", format!("{a}:split").as_bytes()]));
    s.write_all(&batch).unwrap();
    expect(&mut s, b"$2\r\nv1\r\n+PONG\r\n:2\r\n*2\r\n$2\r\nv1\r\n$1\r\n1\r\n$-1\r\n:12\r\n$5\r\nhello\r\n");
    warm(&mut s);
    let mut bad = req(&[b"INCR", format!("{a}:n").as_bytes()]);
    bad.extend_from_slice(b"*1\r\n$x\r\n");
    s.write_all(&bad).unwrap();
    expect(&mut s, b":1\r\n");
    let line = read_line(&mut s);
    assert!(line.starts_with("-ERR Protocol error"), "{line}");
    expect_closed(&mut s);

    // A client that hangs up while its shard serves it.
    let mut u = srv.raw();
    warm(&mut u);
    drop(u);

    let mut t = srv.raw();
    let handoffs = info_stat(&mut t, "shard_handoffs");
    assert!(handoffs >= 3, "the connections must have been handed to shard 0 three times (shard_handoffs = {handoffs})");
    // Both closed connections are forgotten: the one the router got back, and the one
    // the shard reported closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        t.write_all(&req(&[b"INFO", b"clients"])).unwrap();
        let Raw::Bulk(Some(text)) = read_value(&mut t) else { panic!("INFO must reply with a bulk string") };
        if String::from_utf8_lossy(&text).contains("connected_clients:1\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&text));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connection commands sent to a handed-off connection go back to the router and take
/// effect there: HELLO 3 switches the protocol (and the shard then answers in RESP3),
/// QUIT replies +OK and closes.
#[test]
fn hello_and_quit_on_a_handed_off_connection() {
    let (_d, srv) = server();
    let a = &common::tenants_on("hq", 1, 2, 1)[0];
    let mut s = srv.raw();
    let warm = |s: &mut TcpStream| {
        for i in 0..10 {
            check(s, &req(&[b"SET", format!("{a}:k{i}").as_bytes(), b"v"]), b"+OK\r\n");
        }
    };
    warm(&mut s);
    check(&mut s, &req(&[b"GET", format!("{a}:missing").as_bytes()]), b"$-1\r\n");
    s.write_all(&req(&[b"HELLO", b"3"])).unwrap();
    assert!(matches!(read_value(&mut s), Raw::Agg('%', _)), "HELLO 3 must reply with a RESP3 map");
    warm(&mut s);
    check(&mut s, &req(&[b"GET", format!("{a}:missing").as_bytes()]), b"_\r\n");
    check(&mut s, &req(&[b"QUIT"]), b"+OK\r\n");
    expect_closed(&mut s);
    let mut t = srv.raw();
    let handoffs = info_stat(&mut t, "shard_handoffs");
    assert!(handoffs >= 2, "the connection must have been handed off before HELLO and before QUIT (shard_handoffs = {handoffs})");
}

/// Works on a tenant of shard 0, then shard 1, then 0 and 1 again on one connection
/// (RESP3, named), checking every reply, the name, the id and the client count.
fn alternate_tenants_and_keep_state(srv: &Server) {
    let a = &common::tenants_on("mva", 0, 2, 1)[0];
    let b = &common::tenants_on("mvb", 1, 2, 1)[0];
    let mut s = srv.raw();
    s.write_all(&req(&[b"HELLO", b"3", b"SETNAME", b"mover"])).unwrap();
    assert!(matches!(read_value(&mut s), Raw::Agg('%', _)));
    s.write_all(&req(&[b"CLIENT", b"ID"])).unwrap();
    let Raw::Line(':', id) = read_value(&mut s) else { panic!("CLIENT ID must be an integer") };
    for (round, tenant) in [a, b, a, b].into_iter().enumerate() {
        for i in 0..24 {
            let key = format!("{tenant}:k{i}");
            let val = format!("r{round}v{i}");
            check(&mut s, &req(&[b"SET", key.as_bytes(), val.as_bytes()]), b"+OK\r\n");
        }
        // A pipeline of 24 GETs in one write, answered in order.
        let mut batch = Vec::new();
        let mut want = Vec::new();
        for i in 0..24 {
            batch.extend(req(&[b"GET", format!("{tenant}:k{i}").as_bytes()]));
            let v = format!("r{round}v{i}");
            want.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
        }
        s.write_all(&batch).unwrap();
        expect(&mut s, &want);
        // RESP3 null: the protocol survived.
        check(&mut s, &req(&[b"GET", format!("{tenant}:missing").as_bytes()]), b"_\r\n");
    }
    check(&mut s, &req(&[b"CLIENT", b"GETNAME"]), b"$5\r\nmover\r\n");
    check(&mut s, &req(&[b"CLIENT", b"ID"]), format!(":{id}\r\n").as_bytes());
    s.write_all(&req(&[b"INFO", b"clients"])).unwrap();
    let Raw::Bulk(Some(text)) = read_value(&mut s) else { panic!("INFO must reply with a bulk string") };
    assert!(String::from_utf8_lossy(&text).contains("connected_clients:1\r\n"), "{}", String::from_utf8_lossy(&text));
}

/// Connections still open at shutdown, after 12 commands each on one tenant (so handed
/// off, when hand-off is on), are drained and closed: SIGTERM exits 0 in time (`Server::stop`
/// asserts it) and every client reads EOF.
fn idle_connections_close_at_shutdown(srv: Server) {
    let b = &common::tenants_on("mvb", 1, 2, 1)[0];
    let mut idle: Vec<TcpStream> = (0..4).map(|_| srv.raw()).collect();
    for (n, c) in idle.iter_mut().enumerate() {
        for i in 0..12 {
            check(c, &req(&[b"SET", format!("{b}:idle{n}:{i}").as_bytes(), b"v"]), b"+OK\r\n");
        }
    }
    srv.stop();
    for c in &mut idle {
        expect_closed(c);
    }
}

/// `CLIENT LIST [TYPE t] [ID id …]` as text, read on `s`.
fn client_list(s: &mut TcpStream, opts: &[&[u8]]) -> String {
    let mut argv: Vec<&[u8]> = vec![b"CLIENT", b"LIST"];
    argv.extend_from_slice(opts);
    s.write_all(&req(&argv)).unwrap();
    match read_value(s) {
        // RESP2: a bulk string; RESP3: a verbatim string `txt:<text>`.
        Raw::Bulk(Some(text)) => {
            let text = String::from_utf8(text).unwrap();
            text.strip_prefix("txt:").map(str::to_string).unwrap_or(text)
        }
        other => panic!("CLIENT LIST must reply with a bulk string: {other:?}"),
    }
}

fn client_id(s: &mut TcpStream) -> String {
    s.write_all(&req(&[b"CLIENT", b"ID"])).unwrap();
    let Raw::Line(':', id) = read_value(s) else { panic!("CLIENT ID must be an integer") };
    id
}

/// CLIENT LIST shows every connection of every router executor, with the fields Redis
/// uses, filters by ID and TYPE, and forgets a connection once it closed.
#[test]
fn client_list_shows_every_connection() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--router-threads", "2"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    check(&mut a, &req(&[b"CLIENT", b"SETNAME", b"alpha"]), b"+OK\r\n");
    check(&mut b, &req(&[b"CLIENT", b"SETNAME", b"beta"]), b"+OK\r\n");
    check(&mut b, &req(&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"rawtest"]), b"+OK\r\n");
    let (ia, ib) = (client_id(&mut a), client_id(&mut b));
    let all = client_list(&mut a, &[]);
    let line_of = |text: &str, id: &str| text.lines().find(|l| l.starts_with(&format!("id={id} "))).map(str::to_string);
    let la = line_of(&all, &ia).unwrap_or_else(|| panic!("no line for client {ia} in {all}"));
    let lb = line_of(&all, &ib).unwrap_or_else(|| panic!("no line for client {ib} in {all}"));
    assert!(la.contains(" name=alpha ") && la.contains(" db=0 ") && la.contains(" resp=2 "), "{la}");
    assert!(lb.contains(" name=beta ") && lb.contains(" lib-name=rawtest "), "{lb}");
    assert!(la.contains(" addr=127.0.0.1:") && la.contains(" age=") && la.contains(" idle="), "{la}");
    let only_b = client_list(&mut a, &[b"ID", ib.as_bytes()]);
    assert_eq!(only_b.lines().count(), 1, "{only_b}");
    assert!(line_of(&only_b, &ib).is_some(), "{only_b}");
    assert_eq!(client_list(&mut a, &[b"TYPE", b"pubsub"]), "");
    assert_eq!(client_list(&mut a, &[b"TYPE", b"normal"]).lines().count(), 2);
    check(&mut a, &req(&[b"CLIENT", b"LIST", b"TYPE", b"nope"]), b"-ERR Unknown client type 'nope'\r\n");
    check(&mut a, &req(&[b"CLIENT", b"LIST", b"ID", b"x"]), b"-ERR Invalid client ID\r\n");
    // HELLO 3 shows in the caller's own line.
    s_hello3(&mut a);
    let info = {
        a.write_all(&req(&[b"CLIENT", b"INFO"])).unwrap();
        match read_value(&mut a) {
            // A RESP3 verbatim string: `=<len>\r\ntxt:<text>`.
            Raw::Bulk(Some(t)) => String::from_utf8(t).unwrap().strip_prefix("txt:").expect("verbatim format txt").to_string(),
            other => panic!("CLIENT INFO under RESP3: {other:?}"),
        }
    };
    assert!(info.starts_with(&format!("id={ia} ")) && info.contains(" resp=3 "), "{info}");
    drop(b);
    let t0 = Instant::now();
    loop {
        let now = client_list(&mut a, &[]);
        if line_of(&now, &ib).is_none() {
            assert_eq!(now.lines().count(), 1, "{now}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "client {ib} still listed 5 s after it closed: {now}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(a);
    srv.stop();
}

fn s_hello3(s: &mut TcpStream) {
    s.write_all(&req(&[b"HELLO", b"3"])).unwrap();
    assert!(matches!(read_value(s), Raw::Agg('%', _)));
}

/// The command table (protocol/src/command.rs) alone decides how a request is routed
/// and whether its argument count is right, on the router and on a shard serving a
/// handed-off connection alike: the same requests get the same bytes both ways.
#[test]
fn the_command_table_routes_and_checks_arity_on_router_and_shard() {
    let (_d, srv) = server();
    let a = &common::tenants_on("cta", 0, 2, 1)[0];
    let b = &common::tenants_on("ctb", 1, 2, 1)[0];
    let key = |t: &str, k: &str| format!("{t}:{k}").into_bytes();
    let same_replies_either_way = |s: &mut TcpStream| {
        // Keyed commands of shard 0 (served by the shard once the connection is there).
        check(s, &req(&[b"MSET", &key(a, "x"), b"1", &key(a, "z"), b"2"]), b"+OK\r\n");
        check(s, &req(&[b"UNLINK", &key(a, "x"), &key(a, "nope")]), b":1\r\n");
        check(s, &req(&[b"ECHO", b"hi"]), b"$2\r\nhi\r\n");
        check(s, &req(&[b"PING", b"a", b"b"]), b"-ERR wrong number of arguments for 'ping' command\r\n");
        // Wrong argument counts, from the table (MSET's pairs come whole).
        check(s, &req(&[b"MSET", &key(a, "x"), b"1", &key(a, "y")]), b"-ERR wrong number of arguments for 'mset' command\r\n");
        check(s, &req(&[b"GET"]), b"-ERR wrong number of arguments for 'get' command\r\n");
        check(s, &req(&[b"INCRBY", &key(a, "n")]), b"-ERR wrong number of arguments for 'incrby' command\r\n");
        // Internal commands are not the clients'.
        check(s, &req(&[b"KEEL.INFO"]), b"-ERR unknown command 'KEEL.INFO', with args beginning with: \r\n");
        check(s, &req(&[b"keel.debug", b"panic"]), b"-ERR unknown command 'keel.debug', with args beginning with: 'panic' \r\n");
        // Split across shards and merged by the table's merge kind.
        check(s, &req(&[b"MSET", &key(a, "m"), b"1", &key(b, "m"), b"2"]), b"+OK\r\n");
        check(s, &req(&[b"MGET", &key(b, "m"), &key(a, "nope"), &key(a, "m")]), b"*3\r\n$1\r\n2\r\n$-1\r\n$1\r\n1\r\n");
        check(s, &req(&[b"UNLINK", &key(a, "m"), &key(b, "m"), &key(b, "nope")]), b":2\r\n");
        check(s, &req(&[b"DEL", &key(a, "z")]), b":1\r\n");
    };
    let mut s = srv.raw();
    same_replies_either_way(&mut s);
    check(&mut s, &req(&[b"COMMAND", b"INFO", b"keel.info", b"unlink"]), &{
        let mut want = b"*2\r\n*-1\r\n*10\r\n$6\r\nunlink\r\n:-2\r\n".to_vec();
        want.extend_from_slice(b"*2\r\n+write\r\n+fast\r\n:1\r\n:-1\r\n:1\r\n*1\r\n+@generic\r\n*0\r\n*0\r\n*0\r\n");
        want
    });
    // SKEG.VINDEX.CREATE's kind and backend are optional (the table's arity says so).
    check(&mut s, &req(&[b"SKEG.VINDEX.CREATE", &key(a, "v"), b"3"]), b"+OK\r\n");
    check(&mut s, &req(&[b"SKEG.VINDEX.CREATE", &key(a, "w"), b"3", b"f32", b"flat", b"x"]), b"-ERR syntax error\r\n");
    check(
        &mut s,
        &req(&[b"DEBUG", b"PANIC"]),
        b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n",
    );

    let handed_before = info_stat(&mut s, "shard_handoffs");
    for i in 0..10 {
        check(&mut s, &req(&[b"SET", &key(a, &format!("warm{i}")), b"v"]), b"+OK\r\n");
    }
    same_replies_either_way(&mut s);
    let handed = info_stat(&mut s, "shard_handoffs") - handed_before;
    // Handed to shard 0 after the warm-up, which then served the keyed commands and
    // ECHO and gave the connection back at the first wrong argument count.
    assert_eq!(handed, 1, "the connection must have been handed to shard 0 once (shard_handoffs grew by {handed})");
}

/// Differences the differential test (`difftest.rs`) found, pinned byte for byte to
/// what redis-server 7.0 replies.
#[test]
fn error_texts_as_redis_for_nul_bytes_and_out_of_range_integers() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    // An unknown command's arguments are C strings in Redis's text: each ends at its
    // first NUL, and the 128-byte budget counts what was shown.
    check(
        &mut s,
        &req(&[b"nosuch", b"a\0b", &[b'x'; 120], b"yyyyyyyy", b"z"]),
        format!("-ERR unknown command 'nosuch', with args beginning with: 'a' '{}' 'y' \r\n", "x".repeat(120)).as_bytes(),
    );
    check(&mut s, &req(&[b"no\0such", b"\0"]), b"-ERR unknown command 'no', with args beginning with: '' \r\n");
    // SELECT: an integer outside a C int is its own error, before the database check.
    let range = b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n";
    check(&mut s, &req(&[b"SELECT", b"2147483648"]), range);
    check(&mut s, &req(&[b"SELECT", b"-2147483649"]), range);
    check(&mut s, &req(&[b"SELECT", b"9223372036854775807"]), range);
    check(&mut s, &req(&[b"SELECT", b"2147483647"]), b"-ERR DB index is out of range\r\n");
    check(&mut s, &req(&[b"SELECT", b"9223372036854775808"]), b"-ERR value is not an integer or out of range\r\n");
}

/// Databases, byte for byte as redis-server 7.0 answers: bad SELECT, MOVE and SWAPDB
/// input gets Redis's error texts and changes nothing.
#[test]
fn database_errors_are_redis_texts() {
    let (_d, srv) = server();
    let mut s = srv.raw();
    check(&mut s, &req(&[b"SET", b"t:k", b"v"]), b"+OK\r\n");
    for (argv, reply) in [
        (&[&b"SELECT"[..], b"16"][..], &b"-ERR DB index is out of range\r\n"[..]),
        (&[b"SELECT", b"-1"], b"-ERR DB index is out of range\r\n"),
        (&[b"SELECT", b"x"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"SELECT", b"1.5"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"SELECT", b"99999999999999999999"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"SELECT", b"9999999999"], b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"),
        (&[b"SELECT", b"2147483647"], b"-ERR DB index is out of range\r\n"),
        (&[b"MOVE", b"t:k", b"-2147483649"], b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"),
        (&[b"SWAPDB", b"9999999999", b"0"], b"-ERR invalid first DB index\r\n"),
        (&[b"SWAPDB", b"0", b"2147483648"], b"-ERR invalid second DB index\r\n"),
        (&[b"SWAPDB", b"99", b"x"], b"-ERR invalid second DB index\r\n"),
        (&[b"MOVE", b"t:k", b"99"], b"-ERR DB index is out of range\r\n"),
        (&[b"MOVE", b"t:nokey", b"16"], b"-ERR DB index is out of range\r\n"),
        (&[b"MOVE", b"t:k", b"x"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"MOVE", b"t:k", b"0"], b"-ERR source and destination objects are the same\r\n"),
        (&[b"MOVE", b"t:k"], b"-ERR wrong number of arguments for 'move' command\r\n"),
        (&[b"SWAPDB", b"0", b"99"], b"-ERR DB index is out of range\r\n"),
        (&[b"SWAPDB", b"-1", b"0"], b"-ERR DB index is out of range\r\n"),
        (&[b"SWAPDB", b"x", b"1"], b"-ERR invalid first DB index\r\n"),
        (&[b"SWAPDB", b"1", b"x"], b"-ERR invalid second DB index\r\n"),
        (&[b"SWAPDB", b"1"], b"-ERR wrong number of arguments for 'swapdb' command\r\n"),
        (&[b"FLUSHDB", b"x"], b"-ERR syntax error\r\n"),
        (&[b"SWAPDB", b"0", b"0"], b"+OK\r\n"),
        (&[b"SELECT", b"15"], b"+OK\r\n"),
        (&[b"DBSIZE"], b":0\r\n"),
        (&[b"SELECT", b"0"], b"+OK\r\n"),
        (&[b"GET", b"t:k"], b"$1\r\nv\r\n"),
        (&[b"DBSIZE"], b":1\r\n"),
    ] {
        check(&mut s, &req(argv), reply);
    }
}

/// The selected database moves with the connection: a connection in database 5 (RESP3)
/// is handed to its shard after ≥ 8 single-shard batches, writes and MOVEs there in
/// database 5, comes back at another shard's key still in database 5, SELECTs 7 (the
/// router's), is handed off again and works in database 7. Another connection sees
/// every key in the database it was written to and nowhere else.
#[test]
fn the_selected_database_survives_hand_off_to_a_shard_and_back() {
    let (_d, srv) = server();
    let a = &common::tenants_on("hdb", 0, 2, 1)[0];
    let b = &common::tenants_on("hdb", 1, 2, 1)[0];
    let mut s = srv.raw();
    s_hello3(&mut s);
    let mut o = srv.raw();
    let before = info_stat(&mut o, "shard_handoffs");
    check(&mut s, &req(&[b"SELECT", b"5"]), b"+OK\r\n");
    for i in 0..12 {
        check(&mut s, &req(&[b"SET", format!("{a}:k{i}").as_bytes(), b"in5"]), b"+OK\r\n");
    }
    let after = info_stat(&mut o, "shard_handoffs");
    assert!(after > before, "12 single-shard batches must hand the connection to its shard (shard_handoffs {before} → {after})");
    // On the shard: MOVE from database 5 to 6, and a missing key in database 5.
    check(&mut s, &req(&[b"MOVE", format!("{a}:k0").as_bytes(), b"6"]), b":1\r\n");
    check(&mut s, &req(&[b"GET", format!("{a}:k0").as_bytes()]), b"_\r\n");
    check(&mut s, &req(&[b"GET", format!("{a}:k1").as_bytes()]), b"$3\r\nin5\r\n");
    // Another shard's key: back to the router, still in database 5.
    check(&mut s, &req(&[b"SET", format!("{b}:k").as_bytes(), b"b5"]), b"+OK\r\n");
    check(&mut s, &req(&[b"GET", format!("{a}:k2").as_bytes()]), b"$3\r\nin5\r\n");
    s.write_all(&req(&[b"CLIENT", b"INFO"])).unwrap();
    let Raw::Bulk(Some(line)) = read_value(&mut s) else { panic!("CLIENT INFO must reply with a bulk string") };
    assert!(String::from_utf8_lossy(&line).contains(" db=5 "), "{}", String::from_utf8_lossy(&line));
    // SELECT on a handed-off connection goes to the router; the next hand-off carries 7.
    for i in 0..10 {
        check(&mut s, &req(&[b"GET", format!("{a}:k{i}").as_bytes()]), if i == 0 { b"_\r\n" } else { b"$3\r\nin5\r\n" });
    }
    check(&mut s, &req(&[b"SELECT", b"7"]), b"+OK\r\n");
    for i in 0..12 {
        check(&mut s, &req(&[b"SET", format!("{a}:j{i}").as_bytes(), b"in7"]), b"+OK\r\n");
    }
    check(&mut s, &req(&[b"GET", format!("{a}:k1").as_bytes()]), b"_\r\n");
    assert!(info_stat(&mut o, "shard_handoffs") >= after + 2, "handed off again in databases 5 and 7");

    // Seen from another connection, each key is where it was written.
    for (db, sizes) in [(b"0", 0), (b"5", 11 + 1), (b"6", 1), (b"7", 12)] {
        check(&mut o, &req(&[b"SELECT", db]), b"+OK\r\n");
        check(&mut o, &req(&[b"DBSIZE"]), format!(":{sizes}\r\n").as_bytes());
    }
    check(&mut o, &req(&[b"SELECT", b"6"]), b"+OK\r\n");
    check(&mut o, &req(&[b"GET", format!("{a}:k0").as_bytes()]), b"$3\r\nin5\r\n");
    check(&mut o, &req(&[b"SELECT", b"5"]), b"+OK\r\n");
    check(&mut o, &req(&[b"GET", format!("{b}:k").as_bytes()]), b"$2\r\nb5\r\n");
}
