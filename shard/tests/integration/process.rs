//! The whole shard process: `keel_shard::run` on a thread, frames over its socket,
//! SIGTERM for a clean stop.

use crate::*;
use keel_protocol::shard::{decode_frame, decode_value, encode_request, Kind, DEFAULT_MAX_FRAME as MAX};
use keel_protocol::Value;
use keel_shard::ShardConfig;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn connect(socket: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(e) if Instant::now() > deadline => panic!("shard socket never accepted: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads reply frames until `n` have arrived; returns them by req_id.
fn read_replies(s: &mut UnixStream, n: usize) -> HashMap<u64, Value> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut out = HashMap::new();
    while out.len() < n {
        let got = s.read(&mut chunk).expect("read replies");
        assert!(got > 0, "shard closed the connection after {} of {n} replies", out.len());
        buf.extend_from_slice(&chunk[..got]);
        let mut used = 0;
        while let Some((frame, len)) = decode_frame(&buf[used..], MAX).expect("valid reply frame") {
            assert_eq!(frame.kind, Kind::Reply);
            let v = decode_value(frame.payload).expect("valid reply value");
            assert!(out.insert(frame.req_id, v).is_none(), "duplicate req_id {}", frame.req_id);
            used += len;
        }
        buf.drain(..used);
    }
    out
}

#[test]
fn serves_frames_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shard.sock");
    std::fs::write(&socket, b"stale").unwrap();
    let cfg = ShardConfig {
        id: 0,
        n_shards: 1,
        dir: dir.path().join("shard-000"),
        socket: socket.clone(),
        core: None,
        store: test_options(),
        max_bulk_len: 512 << 20,
        client_query_buffer_limit: 1 << 30,
        max_frame_len: MAX,
        databases: 16,
        inflight_bytes: 8 << 20,
    };
    let shard = std::thread::spawn(move || keel_shard::run(cfg));

    // Pipelined: 200 SET/GET pairs in one write; every request answered once, by req_id,
    // and a GET sees the SET before it.
    let mut a = connect(&socket);
    let mut b = connect(&socket);
    let mut out = Vec::new();
    for i in 0..200u64 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        encode_request(2 * i + 1, &[b"SET", k.as_bytes(), v.as_bytes()], MAX, &mut out).unwrap();
        encode_request(2 * i + 2, &[b"GET", k.as_bytes()], MAX, &mut out).unwrap();
    }
    a.write_all(&out).unwrap();
    // A second connection works at the same time.
    let mut small = Vec::new();
    encode_request(7, &[b"INCR", b"counter"], MAX, &mut small).unwrap();
    b.write_all(&small).unwrap();
    let replies = read_replies(&mut a, 400);
    for i in 0..200u64 {
        assert_eq!(replies[&(2 * i + 1)], Value::ok());
        assert_eq!(replies[&(2 * i + 2)], Value::bulk(format!("v{i}")));
    }
    assert_eq!(read_replies(&mut b, 1)[&7], Value::Integer(1));

    // A frame split across writes is reassembled; a big one grows the buffer.
    let big = vec![b'x'; 300_000];
    let mut out = Vec::new();
    encode_request(1000, &[b"SET", b"big", &big], MAX, &mut out).unwrap();
    encode_request(1001, &[b"STRLEN", b"big"], MAX, &mut out).unwrap();
    for piece in out.chunks(4096) {
        a.write_all(piece).unwrap();
    }
    let replies = read_replies(&mut a, 2);
    assert_eq!(replies[&1000], Value::ok());
    assert_eq!(replies[&1001], Value::Integer(300_000));

    // Pipelined read of a value on disk, then overwrite, then read again: each read
    // sees the value live when it was received.
    let mut out = Vec::new();
    encode_request(1100, &[b"GET", b"big"], MAX, &mut out).unwrap();
    encode_request(1101, &[b"SET", b"big", b"small"], MAX, &mut out).unwrap();
    encode_request(1102, &[b"GET", b"big"], MAX, &mut out).unwrap();
    encode_request(1103, &[b"APPEND", b"big", b"!"], MAX, &mut out).unwrap();
    a.write_all(&out).unwrap();
    let replies = read_replies(&mut a, 4);
    assert_eq!(replies[&1100], Value::Bulk(big.clone()));
    assert_eq!(replies[&1101], Value::ok());
    assert_eq!(replies[&1102], Value::bulk("small"));
    assert_eq!(replies[&1103], Value::Integer(6));

    // A malformed frame (a reply kind sent to the shard) closes that connection only.
    let mut bad = Vec::new();
    bad.extend_from_slice(&9u32.to_le_bytes());
    bad.extend_from_slice(&1u64.to_le_bytes());
    bad.push(Kind::Reply as u8);
    b.write_all(&bad).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(b.read(&mut byte).expect("EOF, not a timeout"), 0);
    let mut out = Vec::new();
    encode_request(2000, &[b"DBSIZE"], MAX, &mut out).unwrap();
    a.write_all(&out).unwrap();
    assert_eq!(read_replies(&mut a, 1)[&2000], Value::Integer(202));

    // SIGTERM: clean stop, socket removed, data durable.
    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
    let result = shard.join().expect("shard thread");
    assert!(result.is_ok(), "run: {result:?}");
    assert!(!socket.exists(), "socket file left behind");
    assert_eq!(a.read(&mut byte).expect("EOF after shutdown"), 0);

    let data = dir.path().join("shard-000");
    on_executor(|| async {
        let s = open(&data).await;
        check(&s, argv!["DBSIZE"], int(202)).await;
        check(&s, argv!["GET", "k199"], bulk("v199")).await;
        check(&s, argv!["GET", "counter"], bulk("1")).await;
    });
}
