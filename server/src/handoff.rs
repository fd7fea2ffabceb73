//! Connection hand-off, router side (DESIGN §1): a connection whose commands all go to
//! one shard is passed, socket and all, to that shard process, which then serves it
//! without the router hop (`keel_shard`'s `client` module). The shard passes it back at
//! the first command it does not serve itself; this executor then resumes it
//! ([`crate::conn::resume`]) with the request bytes the shard had read.
//!
//! Each router executor keeps one hand-off channel per shard (a Unix stream socket to
//! `shard-III/handoff.sock`, messages `keel_protocol::handoff`, the socket descriptor
//! as `SCM_RIGHTS`), reconnected by [`run_channel`] whenever the shard restarts. The
//! connections it handed to a shard stay in the client registry (CLIENT LIST,
//! `connected_clients`) until the shard returns them or reports them closed; when the
//! channel breaks (the shard died, taking their sockets with it) they are forgotten.
//!
//! Why: a request the router forwards costs two more socket operations and a
//! cross-process wake-up each way; for a connection that only ever talks to one shard,
//! they buy nothing. Measured in bench-results/kv.md ("Connection hand-off").

use crate::clients::ClientInfo;
use crate::cmd::{ConnState, Router};
use glommio::net::TcpStream;
use keel_protocol::handoff::{self, Message, MsgKind};
use keel_shard::runtime::fdpass::{Channel, MessageReader, Sent};
use keel_shard::runtime::sync::{unless, Event, Live};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One router executor's hand-off state.
pub struct Handoffs {
    /// Per shard: the channel, while connected.
    chans: Vec<RefCell<Option<Rc<Channel>>>>,
    /// Connections this executor handed to a shard: client id → (shard, registry entry).
    held: RefCell<HashMap<u64, (usize, Arc<ClientInfo>)>>,
}

impl Handoffs {
    /// No channels yet, for `n` shards.
    pub fn new(n: usize) -> Handoffs {
        Handoffs { chans: (0..n).map(|_| RefCell::new(None)).collect(), held: RefCell::new(HashMap::new()) }
    }
}

/// Offers the connection to shard `s`. `Ok` = the shard has it (the caller must not
/// touch the socket again); `Err` gives it back when the channel is down or full.
/// Call only between batches: every reply written, nothing buffered.
pub async fn offer(rt: &Router, stream: TcpStream, conn: ConnState, s: usize) -> Result<(), (TcpStream, ConnState)> {
    let Some(chan) = rt.handoffs.chans[s].borrow().clone() else { return Err((stream, conn)) };
    let id = conn.info.id;
    let mut msg = Vec::with_capacity(handoff::HEADER);
    handoff::encode(&Message { kind: MsgKind::Take, client_id: id, resp: conn.resp, commands: 0, db: conn.db, data: Vec::new() }, &mut msg);
    // Registered before sending: the shard's return is read by this executor's
    // channel task, which cannot run before this task yields.
    rt.handoffs.held.borrow_mut().insert(id, (s, conn.info.clone()));
    match chan.try_send(&msg, Some(keel_shard::runtime::fd::borrow(&stream))).await {
        Ok(Sent::All) => {
            tracing::trace!("client {id} handed to shard {s}");
            rt.shared.shard_handoffs.fetch_add(1, Ordering::Relaxed);
            drop(stream); // the shard has its own descriptor now
            Ok(())
        }
        Ok(Sent::Full) => {
            rt.handoffs.held.borrow_mut().remove(&id);
            Err((stream, conn))
        }
        Err(e) => {
            // The shard may or may not have received the socket; if it did, both serve
            // it for a moment until the broken channel makes the shard close its copy.
            tracing::debug!("hand-off channel to shard {s}: {e}");
            rt.handoffs.held.borrow_mut().remove(&id);
            Err((stream, conn))
        }
    }
}

/// Keeps this executor's hand-off channel to shard `s` connected until shutdown, and
/// takes back the connections the shard returns or reports closed.
pub async fn run_channel(rt: Rc<Router>, s: usize, path: PathBuf, shutdown: Event, live: Rc<Live>) {
    let mut backoff = Duration::from_millis(20);
    while !shutdown.is_set() {
        let chan = match std::os::unix::net::UnixStream::connect(&path).and_then(Channel::new) {
            Ok(c) => Rc::new(c),
            Err(_) => {
                // The shard is (re)starting; the link reports that to clients.
                unless(&shutdown, glommio::timer::sleep(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        tracing::debug!("router executor {}: hand-off channel to shard {s} connected", rt.me);
        *rt.handoffs.chans[s].borrow_mut() = Some(chan.clone());
        let why = serve_channel(&rt, &chan, &shutdown, &live).await;
        *rt.handoffs.chans[s].borrow_mut() = None;
        let lost: Vec<u64> =
            rt.handoffs.held.borrow().iter().filter(|(_, (at, _))| *at == s).map(|(id, _)| *id).collect();
        if !lost.is_empty() {
            tracing::warn!("hand-off channel to shard {s} closed ({why}); its {} connection(s) are gone", lost.len());
        }
        for id in lost {
            forget(&rt, id, 0);
        }
    }
}

/// Reads the channel until it closes; returns why it ended.
async fn serve_channel(rt: &Rc<Router>, chan: &Channel, shutdown: &Event, live: &Rc<Live>) -> String {
    let mut reader = MessageReader::default();
    loop {
        let messages = match unless(shutdown, reader.next(chan)).await {
            None => return "shutdown".into(),
            Some(Ok(m)) => m,
            Some(Err(why)) => return why,
        };
        for (m, fd) in messages {
            match (m.kind, fd) {
                (MsgKind::Closed, _) => forget(rt, m.client_id, m.commands),
                (MsgKind::Return, Some(fd)) => {
                    let Some((_, info)) = rt.handoffs.held.borrow_mut().remove(&m.client_id) else {
                        tracing::warn!("shard returned unknown client {}; closing it", m.client_id);
                        continue;
                    };
                    rt.shared.total_commands.fetch_add(m.commands, Ordering::Relaxed);
                    let conn = ConnState { resp: m.resp, db: m.db, closing: false, streak: Default::default(), info };
                    let stream = keel_shard::runtime::fd::tcp_stream(fd);
                    let (rt, sd, guard) = (rt.clone(), shutdown.clone(), live.enter());
                    glommio::spawn_local(async move {
                        crate::conn::resume(rt, stream, conn, sd, m.data).await;
                        drop(guard);
                    })
                    .detach();
                }
                (kind, _) => return format!("unexpected {kind:?} message from the shard"),
            }
        }
    }
}

/// A handed-off connection is closed: drop it from the registry and the counts.
fn forget(rt: &Router, id: u64, commands: u64) {
    if rt.handoffs.held.borrow_mut().remove(&id).is_some() {
        rt.shared.total_commands.fetch_add(commands, Ordering::Relaxed);
        rt.shared.clients.remove(id);
        rt.shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
    }
}
