//! One router executor's connection to one shard process (DESIGN §2): requests are
//! framed with `keel_protocol::shard`, many are in flight at once, all frames queued in
//! one executor tick leave in one socket write, and replies are matched by `req_id`.
//!
//! The link reconnects by itself. While its shard is down every call is answered at
//! once with `-ERR shard N is unavailable …`; calls in flight when the connection breaks
//! get `-ERR shard N connection lost …` (their writes may or may not have been applied).
//!
//! A hung shard (stopped, stuck in a system call) keeps its socket open but answers
//! nothing. A watchdog task checks the oldest request in flight every
//! [`check_interval`] (a twentieth of `shard_timeout`, 10 ms ..= 250 ms). Its clock
//! starts once its frame is written to the socket (a large request takes a while to
//! send; while it is being sent, the link waits only on a writer that makes no
//! progress for `shard_timeout`), and it may then take `shard_timeout` plus
//! [`store_allowance`] of its size (1 s per 64 MiB, for the shard to store it). Once it
//! is overdue, the link is *not responding*: every request in
//! flight fails with `-ERR shard N is not responding` (its write may or may not be
//! applied later, if the shard wakes up), frames not yet written are dropped, and every
//! new call fails the same way at once instead of waiting out its own timeout. One
//! `PING` frame is queued as a probe; the first frame the shard sends afterwards (the
//! probe's reply or any late reply) makes the link healthy again, as does a new
//! connection (the supervisor kills a shard that misses its health checks, and the link
//! reconnects to its successor). Late replies find no slot and are dropped: `req_id`s
//! are never reused, so they cannot answer a later request.

use keel_shard::runtime::net::SHRINK_ABOVE;
use keel_shard::runtime::sync::{slot, Notify, SlotRx, SlotTx};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::UnixStream;
use glommio::timer::sleep;
use keel_protocol::shard::{decode_frame, decode_value, encode_request_in, FrameError, Kind};
use keel_protocol::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A link's read chunk and the capacity its buffers return to, bytes.
const BUF_BYTES: usize = 64 << 10;

/// A link to shard `id` over the Unix socket `socket`. Cheap to share (`Rc`).
pub struct ShardLink {
    pub id: u32,
    socket: PathBuf,
    /// The frame limit (`max_frame_len`), both ways.
    max_frame: usize,
    /// `shard_timeout`: how long a request may stay unanswered.
    timeout: Duration,
    state: RefCell<State>,
    wake_writer: Notify,
}

struct State {
    up: bool,
    /// Set when a request went unanswered for `timeout`; cleared by the next frame from
    /// the shard or a new connection.
    not_responding: bool,
    next_req: u64,
    /// Requests in flight by `req_id` (so in the order they were sent, oldest first).
    pending: BTreeMap<u64, InFlight>,
    out: Vec<u8>,
    /// Every `req_id` up to this one has been written to the socket (or dropped).
    written_upto: u64,
    /// When the writer last wrote bytes, or took up a batch.
    write_progress: Instant,
    /// The writer is in the middle of a batch (`write_progress` is only meaningful
    /// then: a request queued while the writer idles is taken up at its next turn).
    writing: bool,
}

/// A request in flight.
struct InFlight {
    reply: SlotTx<Value>,
    /// Its frame's length, bytes.
    len: usize,
    /// When its frame was completely written to the socket.
    written: Option<Instant>,
}

/// The time a request of `len` bytes gets beyond `shard_timeout` once it is written,
/// for the shard to decode and store it: 1 s per 64 MiB (a 512 MiB value gets 8 s).
pub fn store_allowance(len: usize) -> Duration {
    Duration::from_secs_f64(len as f64 / (64u64 << 20) as f64)
}

/// How often the watchdog looks at the oldest request in flight: a twentieth of
/// `timeout`, 10 ms ..= 250 ms (so an overdue request fails at most that late).
pub fn check_interval(timeout: Duration) -> Duration {
    (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(250))
}

impl ShardLink {
    /// Creates the link and spawns its connection and watchdog tasks on the current
    /// executor; `max_frame` is the frame limit (`max_frame_len`), `timeout` is
    /// `shard_timeout`.
    pub fn start(id: u32, socket: PathBuf, max_frame: usize, timeout: Duration) -> Rc<ShardLink> {
        let link = Rc::new(ShardLink {
            id,
            socket,
            max_frame,
            timeout,
            state: RefCell::new(State {
                up: false,
                not_responding: false,
                next_req: 1,
                pending: BTreeMap::new(),
                out: Vec::with_capacity(BUF_BYTES),
                written_upto: 0,
                write_progress: Instant::now(),
                writing: false,
            }),
            wake_writer: Notify::default(),
        });
        let l = link.clone();
        glommio::spawn_local(async move { l.run().await }).detach();
        let l = link.clone();
        glommio::spawn_local(async move { l.watchdog().await }).detach();
        link
    }

    /// True while the link is connected.
    pub fn is_up(&self) -> bool {
        self.state.borrow().up
    }

    /// True while the link is connected and its shard answers (not *not responding*).
    pub fn is_healthy(&self) -> bool {
        let st = self.state.borrow();
        st.up && !st.not_responding
    }

    /// Sends `argv` (any byte-like arguments, e.g. the client's `Vec<Vec<u8>>` as is) to
    /// the shard; the returned future resolves to its reply. A request whose frame would
    /// exceed the frame limit is not sent: it resolves to `-ERR request too large …`.
    /// A request unanswered for `shard_timeout`, and every call while the link is not
    /// responding, resolves to `-ERR shard N is not responding`.
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
        if st.not_responding {
            drop(st);
            tx.send(self.not_responding_error());
            return rx;
        }
        let req_id = st.next_req;
        let was_empty = st.out.is_empty();
        let before = st.out.len();
        if let Err(FrameError::TooLarge(n)) = encode_request_in(req_id, db, argv, self.max_frame, &mut st.out) {
            drop(st);
            tx.send(Value::err(format!(
                "ERR request too large: its {n} bytes exceed max_frame_len ({} bytes)",
                self.max_frame
            )));
            return rx;
        }
        st.next_req += 1;
        let len = st.out.len() - before;
        st.pending.insert(req_id, InFlight { reply: tx, len, written: None });
        drop(st);
        if was_empty {
            self.wake_writer.notify();
        }
        rx
    }

    fn not_responding_error(&self) -> Value {
        Value::err(format!("ERR shard {} is not responding", self.id))
    }

    /// Every [`check_interval`]: if the oldest request in flight is overdue (written
    /// `timeout` + [`store_allowance`] ago, or not yet written and the writer stuck for
    /// `timeout`), the link becomes not responding ([`Self::give_up`]). Only the oldest
    /// is looked at: the shard commits writes in order, so a later one waits for it.
    async fn watchdog(self: Rc<Self>) {
        let every = check_interval(self.timeout);
        loop {
            sleep(every).await;
            let overdue = {
                let st = self.state.borrow();
                st.up
                    && !st.not_responding
                    && st.pending.first_key_value().is_some_and(|(_, r)| match r.written {
                        Some(at) => at.elapsed() >= self.timeout + store_allowance(r.len),
                        None => st.writing && st.write_progress.elapsed() >= self.timeout,
                    })
            };
            if overdue {
                self.give_up();
            }
        }
    }

    /// Marks the link not responding: fails every request in flight, drops the frames
    /// not yet written (whole frames only: the writer took the ones it is writing), and
    /// queues one `PING` probe (its `req_id` has no slot; any frame that comes back
    /// makes the link healthy again).
    fn give_up(&self) {
        let pending = {
            let mut st = self.state.borrow_mut();
            st.not_responding = true;
            st.out.clear();
            let probe_id = st.next_req;
            st.next_req += 1;
            encode_request_in(probe_id, 0, &[b"PING"], self.max_frame, &mut st.out).expect("PING fits any frame limit");
            std::mem::take(&mut st.pending)
        };
        self.wake_writer.notify();
        tracing::warn!(
            "shard {} is not responding: a request waited {:?} (shard_timeout) for its reply; failing its {} request(s) in flight and new ones until it answers again",
            self.id,
            self.timeout,
            pending.len()
        );
        for (_, r) in pending {
            r.reply.send(self.not_responding_error());
        }
    }

    async fn run(self: Rc<Self>) {
        let mut backoff = Duration::from_millis(20);
        loop {
            match UnixStream::connect(&self.socket).await {
                Ok(stream) => {
                    backoff = Duration::from_millis(20);
                    {
                        let mut st = self.state.borrow_mut();
                        st.up = true;
                        st.not_responding = false;
                    }
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
            st.not_responding = false;
            st.writing = false;
            st.out.clear();
            std::mem::take(&mut st.pending)
        };
        for (_, r) in pending {
            let tx = r.reply;
            tx.send(Value::err(format!(
                "ERR shard {} connection lost ({reason}); the command may or may not have been applied",
                self.id
            )));
        }
    }

    async fn reader(&self, mut r: futures_lite::io::ReadHalf<UnixStream>) -> String {
        let mut buf: Vec<u8> = Vec::with_capacity(BUF_BYTES);
        let mut chunk = vec![0u8; BUF_BYTES];
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
                        let (tx, woke) = {
                            let mut st = self.state.borrow_mut();
                            let woke = std::mem::take(&mut st.not_responding);
                            (st.pending.remove(&frame.req_id), woke)
                        };
                        if woke {
                            tracing::warn!("shard {} answers again", self.id);
                        }
                        // None: a late reply to a request that timed out, or the probe.
                        if let Some(r) = tx {
                            r.reply.send(v);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("bad frame: {e}"),
                }
            }
            buf.drain(..used);
            if buf.capacity() > SHRINK_ABOVE && buf.len() < BUF_BYTES {
                buf.shrink_to(BUF_BYTES);
            }
        }
    }

    async fn writer(&self, mut w: futures_lite::io::WriteHalf<UnixStream>) -> String {
        let mut spare: Vec<u8> = Vec::with_capacity(BUF_BYTES);
        loop {
            if self.state.borrow().out.is_empty() {
                self.wake_writer.notified().await;
                continue;
            }
            // The batch holds every request up to `last` not yet written.
            let last = {
                let mut st = self.state.borrow_mut();
                std::mem::swap(&mut st.out, &mut spare);
                st.write_progress = Instant::now();
                st.writing = true;
                st.next_req - 1
            };
            let mut at = 0;
            while at < spare.len() {
                match w.write(&spare[at..]).await {
                    Ok(0) => return "write: the socket took no bytes".into(),
                    Ok(n) => {
                        at += n;
                        if at < spare.len() {
                            self.state.borrow_mut().write_progress = Instant::now();
                        }
                    }
                    Err(e) => return format!("write: {e}"),
                }
            }
            let mut st = self.state.borrow_mut();
            st.writing = false;
            let now = Instant::now();
            let from = st.written_upto + 1;
            if from <= last {
                for (_, r) in st.pending.range_mut(from..=last) {
                    r.written = Some(now);
                }
                st.written_upto = last;
            }
            drop(st);
            spare.clear();
            if spare.capacity() > SHRINK_ABOVE {
                spare = Vec::with_capacity(BUF_BYTES);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::poll_once;
    use glommio::net::UnixListener;
    use glommio::{LocalExecutorBuilder, Placement};
    use keel_protocol::shard::{decode_request, encode_reply};

    /// The fake shard's side: reads request frames from `s` until it holds `n` in all.
    async fn read_requests(s: &mut UnixStream, buf: &mut Vec<u8>, n: usize) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut used = 0;
            while let Some((frame, len)) = decode_frame(&buf[used..], 1 << 20).unwrap() {
                got.push((frame.req_id, decode_request(frame.payload).unwrap()));
                used += len;
            }
            buf.drain(..used);
            if got.len() >= n {
                return got;
            }
            let k = s.read(&mut chunk).await.unwrap();
            assert!(k > 0, "the link closed its connection");
            buf.extend_from_slice(&chunk[..k]);
        }
    }

    async fn reply(s: &mut UnixStream, req_id: u64, v: &Value) {
        let mut out = Vec::new();
        encode_reply(req_id, v, 1 << 20, &mut out).unwrap();
        s.write_all(&out).await.unwrap();
    }

    fn argv(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|a| a.as_bytes().to_vec()).collect()
    }

    /// Runs `test` on an executor with a link (shard `id`, frame limit `max_frame`, a
    /// 100 ms `shard_timeout`) that is up, and the fake shard's end of its connection.
    fn with_link<F, Fut>(id: u32, max_frame: usize, test: F)
    where
        F: FnOnce(Rc<ShardLink>, UnixStream) -> Fut + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.sock");
        LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(512 << 10)
            .make()
            .unwrap()
            .run(async move {
                let listener = UnixListener::bind(&path).unwrap();
                let link = ShardLink::start(id, path.clone(), max_frame, Duration::from_millis(100));
                let shard = listener.accept().await.unwrap();
                while !link.is_up() {
                    sleep(Duration::from_millis(1)).await;
                }
                test(link, shard).await;
            });
    }

    /// A shard that reads requests but does not answer: the requests in flight fail
    /// after the timeout, later calls fail at once (no wait), a probe is sent, and a
    /// late reply makes the link healthy again without answering a later request.
    #[test]
    fn a_silent_shard_times_out_then_fails_fast_until_it_answers() {
        with_link(7, 1 << 20, |link, mut shard| async move {
            let not_responding = Value::err("ERR shard 7 is not responding");
            // Two pipelined requests, unanswered.
            let (a, b) = (link.call(&argv("GET a")), link.call(&argv("GET b")));
            assert_eq!(a.await, not_responding);
            assert_eq!(b.await, not_responding);
            assert!(!link.is_healthy());
            // Fails fast: the reply is there before anything else runs.
            assert_eq!(poll_once(link.call(&argv("GET c"))).await, Some(not_responding.clone()));
            // The shard got GET a, GET b, then the probe (GET c was never sent).
            let mut buf = Vec::new();
            let got = read_requests(&mut shard, &mut buf, 3).await;
            let names: Vec<Vec<Vec<u8>>> = got.iter().map(|(_, a)| a.clone()).collect();
            assert_eq!(names, vec![argv("GET a"), argv("GET b"), argv("PING")]);
            // The shard wakes up: a late reply to GET a. The link is healthy again and
            // the late value answers nothing.
            reply(&mut shard, got[0].0, &Value::bulk("late a")).await;
            while !link.is_healthy() {
                sleep(Duration::from_millis(1)).await;
            }
            let d = link.call(&argv("GET d"));
            let next = read_requests(&mut shard, &mut buf, 1).await;
            assert_eq!(next[0].1, argv("GET d"));
            reply(&mut shard, got[2].0, &Value::Simple("PONG".into())).await;
            reply(&mut shard, next[0].0, &Value::bulk("d")).await;
            assert_eq!(d.await, Value::bulk("d"));
        });
    }

    /// A shard that stops reading while a large request is being written: the writer
    /// makes no progress, and the request fails after the timeout although its frame
    /// was never completely sent.
    #[test]
    fn a_write_that_makes_no_progress_times_out() {
        with_link(3, 64 << 20, |link, shard| async move {
            let _shard = shard; // kept open, never read
            let big = vec![b'v'; 16 << 20];
            let set = link.call(&[&b"SET"[..], b"k", &big]);
            assert_eq!(set.await, Value::err("ERR shard 3 is not responding"));
            assert!(!link.is_healthy());
        });
    }

    #[test]
    fn large_requests_get_time_to_be_stored() {
        assert_eq!(store_allowance(0), Duration::ZERO);
        assert_eq!(store_allowance(64 << 20), Duration::from_secs(1));
        assert_eq!(store_allowance(512 << 20), Duration::from_secs(8));
    }
}
