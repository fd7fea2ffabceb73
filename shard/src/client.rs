//! Client connections handed to this shard by the router (DESIGN §1, "connection
//! hand-off"): a connection whose recent commands all went to this shard is passed here
//! with its socket, and the shard serves it directly, RESP in and out, without the
//! router hop.
//!
//! The shard serves a command itself when the command table says it is keyed and
//! every key it names routes to this shard (`keel_protocol::command::shard_of`), and
//! the stateless PING/ECHO. At the first request it does not serve — any other shard's key, a
//! keyspace-wide or connection command (CLIENT, HELLO, INFO, QUIT…), an unknown
//! command, wrong arity, a request over the frame limit, malformed input — it answers
//! everything before it, then passes
//! the socket back with the bytes from that request on (`MsgKind::Return`), and the
//! router carries on as if it had read them itself. Replies therefore stay in request
//! order and every error text stays the router's.
//!
//! Replies leave in request order: one that is ready while none is waiting before it is
//! encoded at once; the rest wait in order for their reads or commits. They are
//! written at the end of each batch of requests read from the socket, once 64 KiB of
//! them are encoded, and, under the shard's budget of value bytes in flight
//! (`crate::inflight`), before the next request when the shard is at the budget and
//! this connection holds replies.
//!
//! When the client closes the connection, or the shard shuts down, the shard tells the
//! router (`MsgKind::Closed`) so that CLIENT LIST and INFO forget it. If the shard dies,
//! the kernel closes its descriptors: the connections it held are closed, as a Redis
//! server's are when it dies; new connections get `-ERR shard N is unavailable` from
//! the router until it is back.

use crate::inflight::Share;
use crate::runtime::fdpass::{Channel, MessageReader};
use crate::runtime::sync::{unless, Event};
use crate::{Reply, Shard};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use keel_protocol::command::{lookup, stateless_reply, Route, Spec};
use keel_protocol::handoff::{self, Message, MsgKind};
use keel_protocol::resp::{encode, Limits, RequestParser, RespVersion};
use keel_protocol::Value;
use std::rc::Rc;

/// Bytes asked of a client socket per read.
const READ_CHUNK: usize = 16 << 10;
/// Encoded replies are written once they reach this many bytes (and at the end of each
/// batch), so a batch of large values does not gather in one buffer.
const WRITE_AT: usize = 64 << 10;
/// A reply buffer grown past this (for one reply larger than [`WRITE_AT`]) is given
/// back once written.
const OUT_KEEP: usize = 128 << 10;

/// What every handed-off connection of this shard shares.
pub(crate) struct Clients {
    pub shard: Rc<Shard>,
    /// This shard's number and the shard count, for the routing check.
    pub me: usize,
    pub n: usize,
    pub limits: Limits,
    /// The frame limit (`max_frame_len`), applied to replies here too.
    pub max_frame: usize,
    pub shutdown: Event,
    /// Tracks connection tasks for the drain at shutdown.
    pub live: Rc<crate::runtime::sync::Live>,
}

/// Serves one hand-off channel (one router executor): takes the connections it passes
/// until it closes or the shard shuts down.
pub(crate) async fn serve_channel(clients: Rc<Clients>, chan: Channel) {
    let chan = Rc::new(chan);
    let mut reader = MessageReader::default();
    loop {
        let messages = match unless(&clients.shutdown, reader.next(&chan)).await {
            None => return,
            Some(Ok(m)) => m,
            Some(Err(why)) => return tracing::debug!("hand-off channel ends: {why}"),
        };
        for (m, fd) in messages {
            let Some(fd) = fd.filter(|_| m.kind == MsgKind::Take) else {
                return tracing::warn!("hand-off channel: unexpected {:?} message from the router; closing it", m.kind);
            };
            let stream = crate::runtime::fd::tcp_stream(fd);
            let (clients, chan) = (clients.clone(), chan.clone());
            let guard = clients.live.enter();
            glommio::spawn_local(async move {
                serve(&clients, &chan, stream, m).await;
                drop(guard);
            })
            .detach();
        }
    }
}

/// How a handed-off connection ends here.
enum End {
    /// Closed (by the client, an I/O error, or shutdown).
    Closed,
    /// Back to the router, with the request bytes from the first one not served here.
    Return(Vec<u8>),
}

/// Serves one client until it closes, shutdown, or a request this shard does not serve.
async fn serve(clients: &Clients, chan: &Channel, mut stream: TcpStream, m: Message) {
    let client_id = m.client_id;
    tracing::trace!("client {client_id}: taken over from the router");
    let resp = m.resp;
    // The connection's selected database: SELECT is the router's, so it stays as the
    // router sent it and goes back with the connection.
    let db = m.db;
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let shard = &clients.shard;
    let mut out = Outgoing {
        resp,
        max_frame: clients.max_frame,
        buf: Vec::with_capacity(READ_CHUNK),
        queued: Vec::new(),
        share: shard.inflight.share(),
        in_buf: 0,
    };
    let mut batch: Vec<(Batched, Vec<Vec<u8>>)> = Vec::new();
    let mut served: u64 = 0;
    // Keeps its place in a long request across reads; on a return the router parses
    // from the request's first byte with a parser of its own.
    let mut parser = RequestParser::new();
    let end = 'conn: loop {
        let n = match crate::runtime::net::read(&stream, &mut chunk, &clients.shutdown).await {
            None | Some(Ok(0)) | Some(Err(_)) => break End::Closed,
            Some(Ok(n)) => n,
        };
        inbuf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        let mut give_back = false;
        // Every whole request read so far, up to the first this shard does not serve;
        // then they run in order (after one look ahead at their keys).
        loop {
            match parser.parse(&inbuf[used..], &clients.limits) {
                Ok(Some((argv, n))) => {
                    if argv.is_empty() {
                        used += n;
                        continue;
                    }
                    match local(clients, db, &argv) {
                        Local::No => {
                            give_back = true;
                            break;
                        }
                        Local::Reply(v) => batch.push((Err(v), argv)),
                        Local::Shard(spec) => batch.push((Ok(spec), argv)),
                    }
                    used += n;
                    served += 1;
                }
                Ok(None) => break,
                // Malformed: the router answers it (same error text) and closes.
                Err(_) => {
                    give_back = true;
                    break;
                }
            }
        }
        if batch.len() > 1 {
            clients.shard.prefetch(
                db,
                batch.iter().filter_map(|(l, argv)| l.as_ref().ok().map(|spec| (*spec, argv.as_slice()))),
            );
        }
        for (l, argv) in batch.drain(..) {
            match l {
                Ok(spec) => {
                    // The budget (`crate::inflight`): holding replies while the shard is
                    // at it, answer them before starting another request.
                    // (Checked first: every check samples the peak.)
                    let full = shard.inflight.full(shard.store.reading_bytes());
                    if full && out.holds() {
                        if !out.flush(&mut stream).await {
                            break 'conn End::Closed;
                        }
                    } else if out.buf.len() >= WRITE_AT && !out.write(&mut stream).await {
                        break 'conn End::Closed;
                    }
                    out.push(shard.run(db, spec, argv).await);
                }
                Err(v) => out.push(Reply::Ready(v)),
            }
        }
        if !out.flush(&mut stream).await {
            break 'conn End::Closed;
        }
        if give_back {
            break End::Return(inbuf.split_off(used));
        }
        inbuf.drain(..used);
        if inbuf.capacity() > crate::runtime::net::SHRINK_ABOVE && inbuf.len() < READ_CHUNK {
            inbuf.shrink_to(READ_CHUNK);
        }
    };
    drop(out);
    let (kind, data) = match end {
        End::Closed => (MsgKind::Closed, Vec::new()),
        End::Return(rest) => (MsgKind::Return, rest),
    };
    let mut msg = Vec::with_capacity(handoff::HEADER + data.len());
    handoff::encode(&Message { kind, client_id, resp, commands: served, db, data }, &mut msg);
    tracing::trace!("client {client_id}: {kind:?} after {served} command(s)");
    let fd = (kind == MsgKind::Return).then(|| crate::runtime::fd::borrow(&stream));
    if let Err(e) = chan.send(&msg, fd).await {
        // The router is gone (shutdown or crash): nobody to return the client to.
        tracing::debug!("client {client_id}: hand-off channel broken ({e}); closing the connection");
    }
    if kind == MsgKind::Closed {
        let _ = stream.close().await;
    }
    // On a return the router holds the socket now; dropping ours closes only this
    // process's descriptor.
}

/// A request read and not yet run, with its argv: the spec to run, or the reply already
/// made (PING, ECHO).
type Batched = Result<&'static Spec, Value>;

/// A handed-off connection's replies on their way out, in request order, and its share
/// of the shard's budget of bytes in flight.
struct Outgoing<'a> {
    resp: RespVersion,
    max_frame: usize,
    /// Encoded replies not yet written.
    buf: Vec<u8>,
    /// Replies not yet encoded, in request order; the first is a read or a commit still
    /// on its way (a ready reply with nothing queued before it goes straight to `buf`).
    queued: Vec<Reply>,
    /// What this connection holds: every reply value once it exists (a ready one when
    /// pushed, a read or commit once resolved), until written.
    share: Share<'a>,
    /// The part of `share` encoded into `buf`.
    in_buf: usize,
}

impl Outgoing<'_> {
    /// Whether any reply is not yet written (its reads in flight count in the shard's
    /// budget through the store).
    fn holds(&self) -> bool {
        !self.buf.is_empty() || !self.queued.is_empty()
    }

    /// Takes the reply of the next request: encoded now if it is ready and nothing
    /// waits before it, else queued.
    fn push(&mut self, r: Reply) {
        match r {
            Reply::Ready(v) => {
                let n = keel_protocol::shard::value_len(&v);
                self.share.charge(n);
                if self.queued.is_empty() {
                    self.encode(&v, n);
                } else {
                    self.queued.push(Reply::Ready(v));
                }
            }
            r => self.queued.push(r),
        }
    }

    /// Encodes `v`, whose shard frame encoding is `n` bytes (charged), into `buf`: the
    /// same reply limit as through the router, whose frames carry replies.
    fn encode(&mut self, v: &Value, n: usize) {
        let framed = 9 + n;
        if framed > self.max_frame {
            let e = keel_protocol::shard::FrameError::TooLarge(framed);
            encode(&crate::shard::reply_too_large(&e, self.max_frame), self.resp, &mut self.buf);
        } else {
            encode(v, self.resp, &mut self.buf);
        }
        self.in_buf += n;
    }

    /// Waits for every queued reply in order and writes them all (in pieces of about
    /// [`WRITE_AT`] bytes); `false` if a write failed (the connection is done).
    async fn flush(&mut self, stream: &mut TcpStream) -> bool {
        let mut queued = std::mem::take(&mut self.queued);
        for r in queued.drain(..) {
            let charged = matches!(r, Reply::Ready(_));
            let v = r.into_value().await;
            let n = keel_protocol::shard::value_len(&v);
            if !charged {
                self.share.charge(n);
            }
            self.encode(&v, n);
            drop(v);
            if self.buf.len() >= WRITE_AT && !self.write(stream).await {
                return false;
            }
        }
        self.queued = queued;
        self.write(stream).await
    }

    /// Writes the encoded replies and releases their bytes; `false` if the write failed.
    async fn write(&mut self, stream: &mut TcpStream) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        if stream.write_all(&self.buf).await.is_err() {
            return false;
        }
        self.buf.clear();
        self.share.release(std::mem::take(&mut self.in_buf));
        if self.buf.capacity() > OUT_KEEP {
            self.buf = Vec::with_capacity(READ_CHUNK);
        }
        true
    }
}

/// Whether this shard answers a request of a handed-off connection.
enum Local {
    /// Run it on this shard (its arity is checked).
    Shard(&'static Spec),
    /// Answered without the store (PING, ECHO).
    Reply(Value),
    /// Give the connection back to the router.
    No,
}

/// Decided by the command table alone: keyed commands whose keys all route here, and
/// stateless ones; everything else (and a wrong argument count, whose error text is the
/// router's to give) goes back.
fn local(clients: &Clients, db: u8, argv: &[Vec<u8>]) -> Local {
    let Some(spec) = lookup(&argv[0]) else { return Local::No };
    // The router refuses a request whose frame would pass the frame limit; so must the
    // shard, or a request's fate would depend on where its connection happens to be.
    // (A frame in a database other than 0 carries one byte more.)
    let frame_len = keel_protocol::shard::request_frame_len(argv) + usize::from(db != 0);
    if !spec.arity_ok(argv.len()) || frame_len > clients.max_frame || db as usize >= clients.shard.dbs.count() {
        return Local::No;
    }
    match spec.route {
        Route::Anywhere => Local::Reply(stateless_reply(spec, argv)),
        Route::Key | Route::Keys(_) if spec.single_shard(argv, clients.n) == Some(clients.me) => Local::Shard(spec),
        _ => Local::No,
    }
}
