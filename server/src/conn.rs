//! One client connection on a router executor: read what the client sent, parse every
//! complete request (pipelining), route each one, then await the replies in order,
//! encode them for the connection's protocol (RESP2, or RESP3 after `HELLO 3`) and send
//! them back in one write.
//!
//! Malformed input gets `-ERR Protocol error: …` and the connection is closed, as
//! Redis does; nothing a client sends affects another connection.

use crate::cmd::{dispatch, ConnState, Pending, Router};
use keel_shard::sync::{unless, Event};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use keel_protocol::resp::{encode, Limits, RequestParser, RespVersion};
use keel_protocol::Value;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// Serves `stream` until the client closes it, QUIT, a protocol error, or shutdown.
pub async fn serve(rt: Rc<Router>, mut stream: TcpStream, shutdown: Event) {
    let shared = rt.shared.clone();
    let _ = stream.set_nodelay(true);
    let mut conn = ConnState {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        resp: RespVersion::Resp2,
        name: None,
        lib_name: None,
        lib_ver: None,
        addr: stream.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
        closing: false,
    };
    shared.connected_clients.fetch_add(1, Ordering::Relaxed);
    shared.total_connections.fetch_add(1, Ordering::Relaxed);
    let limits = Limits { max_bulk_len: shared.cfg.max_bulk_len, ..Limits::default() };
    let mut inbuf: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut chunk = vec![0u8; 16 << 10];
    let mut out: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut pending: Vec<(Pending, RespVersion)> = Vec::new();
    let mut parser = RequestParser::new();
    'conn: loop {
        let read = unless(&shutdown, stream.read(&mut chunk)).await;
        let n = match read {
            None | Some(Ok(0)) | Some(Err(_)) => break,
            Some(Ok(n)) => n,
        };
        inbuf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        let mut protocol_error = None;
        loop {
            match parser.parse(&inbuf[used..], &limits) {
                Ok(Some((argv, n))) => {
                    used += n;
                    if argv.is_empty() {
                        continue;
                    }
                    shared.total_commands.fetch_add(1, Ordering::Relaxed);
                    let p = dispatch(&rt, &mut conn, argv);
                    pending.push((p, conn.resp));
                    if conn.closing {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        inbuf.drain(..used);
        for (p, ver) in pending.drain(..) {
            let v = p.resolve().await;
            encode(&v, ver, &mut out);
        }
        if let Some(e) = &protocol_error {
            encode(&Value::err(format!("ERR Protocol error: {e}")), conn.resp, &mut out);
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break 'conn;
            }
            out.clear();
        }
        if protocol_error.is_some() || conn.closing {
            break;
        }
        if inbuf.capacity() > (1 << 20) && inbuf.len() < (16 << 10) {
            inbuf.shrink_to(16 << 10);
        }
    }
    let _ = stream.close().await;
    shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
}
