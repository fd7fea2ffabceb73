//! One router executor's connection to one shard process (DESIGN §2): requests are
//! framed with `keel_protocol::shard`, many are in flight at once, all frames queued in
//! one executor tick leave in one socket write, and replies are matched by `req_id`.
//!
//! The link reconnects by itself. While its shard is down every call is answered at
//! once with `-ERR shard N is unavailable …`; calls in flight when the connection breaks
//! get `-ERR shard N connection lost …` (their writes may or may not have been applied).

use keel_shard::runtime::sync::{slot, Notify, SlotRx, SlotTx};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::UnixStream;
use glommio::timer::sleep;
use keel_protocol::shard::{decode_frame, decode_value, encode_request_in, FrameError, Kind};
use keel_protocol::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// A link to shard `id` over the Unix socket `socket`. Cheap to share (`Rc`).
pub struct ShardLink {
    pub id: u32,
    socket: PathBuf,
    /// The frame limit (`max_frame_len`), both ways.
    max_frame: usize,
    state: RefCell<State>,
    wake_writer: Notify,
}

struct State {
    up: bool,
    next_req: u64,
    pending: HashMap<u64, SlotTx<Value>>,
    out: Vec<u8>,
}

impl ShardLink {
    /// Creates the link and spawns its connection task on the current executor;
    /// `max_frame` is the frame limit (`max_frame_len`).
    pub fn start(id: u32, socket: PathBuf, max_frame: usize) -> Rc<ShardLink> {
        let link = Rc::new(ShardLink {
            id,
            socket,
            max_frame,
            state: RefCell::new(State { up: false, next_req: 1, pending: HashMap::new(), out: Vec::with_capacity(64 << 10) }),
            wake_writer: Notify::default(),
        });
        let l = link.clone();
        glommio::spawn_local(async move { l.run().await }).detach();
        link
    }

    /// True while the link is connected.
    pub fn is_up(&self) -> bool {
        self.state.borrow().up
    }

    /// Sends `argv` (any byte-like arguments, e.g. the client's `Vec<Vec<u8>>` as is) to
    /// the shard; the returned future resolves to its reply. A request whose frame would
    /// exceed the frame limit is not sent: it resolves to `-ERR request too large …`.
    pub fn call<A: AsRef<[u8]>>(&self, argv: &[A]) -> SlotRx<Value> {
        self.call_in(0, argv)
    }

    /// [`ShardLink::call`] for a command that runs in database `db` (the connection's
    /// SELECT; the frame carries it, one byte for any database but 0).
    pub fn call_in<A: AsRef<[u8]>>(&self, db: u8, argv: &[A]) -> SlotRx<Value> {
        let (tx, rx) = slot();
        let mut st = self.state.borrow_mut();
        if !st.up {
            drop(st);
            tx.send(Value::err(format!("ERR shard {} is unavailable (restarting), retry later", self.id)));
            return rx;
        }
        let req_id = st.next_req;
        let was_empty = st.out.is_empty();
        if let Err(FrameError::TooLarge(n)) = encode_request_in(req_id, db, argv, self.max_frame, &mut st.out) {
            drop(st);
            tx.send(Value::err(format!(
                "ERR request too large: its {n} bytes exceed max_frame_len ({} bytes)",
                self.max_frame
            )));
            return rx;
        }
        st.next_req += 1;
        st.pending.insert(req_id, tx);
        drop(st);
        if was_empty {
            self.wake_writer.notify();
        }
        rx
    }

    async fn run(self: Rc<Self>) {
        let mut backoff = Duration::from_millis(20);
        loop {
            match UnixStream::connect(&self.socket).await {
                Ok(stream) => {
                    backoff = Duration::from_millis(20);
                    self.state.borrow_mut().up = true;
                    tracing::debug!("router link to shard {} connected", self.id);
                    let (r, w) = futures_lite::io::split(stream);
                    let reason = futures_lite::future::or(self.reader(r), self.writer(w)).await;
                    self.fail_all(&reason);
                    tracing::warn!("router link to shard {} lost: {reason}", self.id);
                }
                Err(_) => {
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    fn fail_all(&self, reason: &str) {
        let pending = {
            let mut st = self.state.borrow_mut();
            st.up = false;
            st.out.clear();
            std::mem::take(&mut st.pending)
        };
        for (_, tx) in pending {
            tx.send(Value::err(format!(
                "ERR shard {} connection lost ({reason}); the command may or may not have been applied",
                self.id
            )));
        }
    }

    async fn reader(&self, mut r: futures_lite::io::ReadHalf<UnixStream>) -> String {
        let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match r.read(&mut chunk).await {
                Ok(0) => return "shard closed the connection".into(),
                Ok(n) => n,
                Err(e) => return format!("read: {e}"),
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut used = 0;
            loop {
                match decode_frame(&buf[used..], self.max_frame) {
                    Ok(Some((frame, n))) => {
                        used += n;
                        if frame.kind != Kind::Reply {
                            return "unexpected frame kind from shard".into();
                        }
                        let v = match decode_value(frame.payload) {
                            Ok(v) => v,
                            Err(e) => return format!("bad reply frame: {e}"),
                        };
                        let tx = self.state.borrow_mut().pending.remove(&frame.req_id);
                        if let Some(tx) = tx {
                            tx.send(v);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("bad frame: {e}"),
                }
            }
            buf.drain(..used);
        }
    }

    async fn writer(&self, mut w: futures_lite::io::WriteHalf<UnixStream>) -> String {
        let mut spare: Vec<u8> = Vec::with_capacity(64 << 10);
        loop {
            if self.state.borrow().out.is_empty() {
                self.wake_writer.notified().await;
                continue;
            }
            std::mem::swap(&mut self.state.borrow_mut().out, &mut spare);
            if let Err(e) = w.write_all(&spare).await {
                return format!("write: {e}");
            }
            spare.clear();
        }
    }
}
