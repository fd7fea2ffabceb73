//! One client connection on a router executor: read what the client sent, parse every
//! complete request (pipelining), route each one, then await the replies in order,
//! encode them for the connection's protocol (RESP2, or RESP3 after `HELLO 3`) and send
//! them back in one write.
//!
//! Malformed input gets `-ERR Protocol error: …` and the connection is closed, as
//! Redis does; nothing a client sends affects another connection.
//!
//! Between two batches a connection may be handed to the shard its commands go to
//! (`crate::handoff`), which may later give it back; [`resume`] then continues it on
//! this executor. With hand-off off it stays on the executor that accepted it.

use keel_shard::runtime::net::SHRINK_ABOVE;
use crate::cmd::{dispatch, ConnState, Pending, Router};
use keel_shard::runtime::sync::Event;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use keel_protocol::resp::{encode, Limits, RequestParser, RespVersion};
use keel_protocol::Value;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// A connection's read chunk and the capacity its buffers return to, bytes.
const BUF_BYTES: usize = 16 << 10;
/// A connection whose read buffer grew to this size carried large requests: when it
/// closes or is handed to its shard, the router gives the freed memory back
/// (`alloc::release_freed`).
const LARGE_REQUESTS: usize = 256 << 10;

/// Serves a newly accepted `stream` until the client closes it, QUIT, a protocol error,
/// shutdown, or a hand-off to its shard.
pub async fn serve(rt: Rc<Router>, stream: TcpStream, shutdown: Event) {
    let shared = rt.shared.clone();
    let _ = stream.set_nodelay(true);
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let info = std::sync::Arc::new(crate::clients::ClientInfo::new(id, addr, laddr));
    shared.clients.add(info.clone());
    let conn = ConnState {
        resp: RespVersion::Resp2,
        db: 0,
        closing: false,
        streak: Default::default(),
        info,
    };
    shared.connected_clients.fetch_add(1, Ordering::Relaxed);
    shared.total_connections.fetch_add(1, Ordering::Relaxed);
    resume(rt, stream, conn, shutdown, Vec::new()).await;
}

/// Serves a connection with its state: a new one, or one a shard returned (`crate::handoff`) with the request bytes it read but did not serve
/// (`unread`, starting at a request boundary).
pub async fn resume(rt: Rc<Router>, mut stream: TcpStream, mut conn: ConnState, shutdown: Event, unread: Vec<u8>) {
    let shared = rt.shared.clone();
    let limits = Limits {
        max_bulk_len: shared.cfg.max_bulk_len,
        max_request_len: shared.cfg.client_query_buffer_limit,
        ..Limits::default()
    };
    let mut have_unread = !unread.is_empty();
    let mut inbuf: Vec<u8> = unread;
    inbuf.reserve(BUF_BYTES);
    let mut chunk = vec![0u8; BUF_BYTES];
    let mut out: Vec<u8> = Vec::with_capacity(BUF_BYTES);
    let mut pending: Vec<(Pending, RespVersion)> = Vec::new();
    let mut parser = RequestParser::new();
    // Whether the connection carried large requests (a bulk load): their freed buffers
    // are given back when it leaves (`alloc::release_freed`).
    let mut large = false;
    'conn: loop {
        if !std::mem::take(&mut have_unread) {
            let read = keel_shard::runtime::net::read(&stream, &mut chunk, &shutdown).await;
            let n = match read {
                None | Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => n,
            };
            inbuf.extend_from_slice(&chunk[..n]);
            large |= inbuf.capacity() >= LARGE_REQUESTS;
        }
        conn.info.touch();
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
            if out.capacity() > SHRINK_ABOVE {
                out = Vec::with_capacity(BUF_BYTES);
            }
        }
        if protocol_error.is_some() || conn.closing {
            break;
        }
        // Between batches with nothing buffered, a connection may be handed to its
        // shard: no request or reply can be lost. Never to a shard that is not
        // responding: the router could not answer for it any more.
        let bound_to = conn
            .streak
            .end_batch()
            .filter(|&s| inbuf.is_empty() && shared.cfg.shard_handoff && rt.links[s].is_healthy());
        if let Some(s) = bound_to {
            match crate::handoff::offer(&rt, stream, conn, s).await {
                Ok(()) => {
                    if large {
                        drop((inbuf, out));
                        crate::alloc::release_freed();
                    }
                    return;
                }
                Err(back) => (stream, conn) = back,
            }
        }
        if inbuf.capacity() > SHRINK_ABOVE && inbuf.len() < BUF_BYTES {
            inbuf.shrink_to(BUF_BYTES);
        }
    }
    let _ = stream.close().await;
    shared.clients.remove(conn.info.id);
    shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
    if large {
        drop((inbuf, out, chunk, pending, parser));
        crate::alloc::release_freed();
    }
}
