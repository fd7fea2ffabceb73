//! One router connection: frames in, replies out (DESIGN §2).
//!
//! Four tasks share a [`Conn`]:
//! - the reader decodes request frames and runs each one's synchronous part (and the
//!   disk read of a read-modify-write command) in arrival order; an immediate reply is
//!   appended to the out buffer, a write's reply is queued behind its commit, a plain
//!   read of a value on disk is queued while its I/O is in flight;
//! - the committer awaits queued commits in order (group commit resolves them in order,
//!   so the ones behind the first are usually ready at once) and appends their replies;
//! - the fetcher does the same for queued disk reads (kept apart so that a read is not
//!   held up by an fdatasync);
//! - the writer sends whatever the out buffer holds with one socket write per wake-up,
//!   so all replies produced in one executor tick leave together.
//!
//! Under the shard's budget of value bytes in flight (`crate::inflight`), the reader
//! starts no request while the shard is at the budget and this connection holds replies
//! not yet written or reads not yet returned: it waits until its own are written.
//!
//! A malformed frame is logged and closes the connection (the router reconnects).

use crate::runtime::net::SHRINK_ABOVE;
use crate::shard::{storage_error, LaterValue, Reply, Shard};
use crate::runtime::sync::{Event, Notify};
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::UnixStream;
use keel_protocol::command::Spec;
use keel_protocol::shard::{decode_frame, decode_request_in, encode_reply, Kind};
use keel_protocol::Value;
use keel_storage::Commit;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Bytes asked of the socket per read (and the read buffer's resting size).
const READ_CHUNK: usize = 64 << 10;
/// The reader pauses while this many reply bytes wait to be written (back-pressure).
const MAX_PENDING_OUT: usize = 16 << 20;

/// A reply still on its way.
enum Pending {
    Commit { commit: Commit, ok: Value },
    Read(LaterValue),
}

impl Pending {
    async fn resolve(self) -> Value {
        match self {
            Pending::Commit { commit, ok } => match commit.await {
                Ok(()) => ok,
                Err(e) => storage_error(&e),
            },
            Pending::Read(v) => v.await,
        }
    }
}

/// Pending replies resolved in order by one task.
#[derive(Default)]
struct Queue {
    items: RefCell<VecDeque<(u64, Pending)>>,
    wake: Notify,
    /// Pushed and not yet resolved into the out buffer (`items` and the one being
    /// awaited).
    outstanding: Cell<usize>,
}

impl Queue {
    fn push(&self, req_id: u64, p: Pending) {
        self.outstanding.set(self.outstanding.get() + 1);
        let mut q = self.items.borrow_mut();
        let was_empty = q.is_empty();
        q.push_back((req_id, p));
        drop(q);
        if was_empty {
            self.wake.notify();
        }
    }
}

struct Conn {
    shard: Rc<Shard>,
    /// The frame limit (`max_frame_len`).
    max_frame: usize,
    out: RefCell<Vec<u8>>,
    /// Bytes of `out` and of the buffer the writer is writing, charged to the shard's
    /// budget of bytes in flight until written.
    held: Cell<usize>,
    commits: Queue,
    reads: Queue,
    wake_writer: Notify,
    wake_reader: Notify,
    reader_done: Cell<bool>,
    closing: Cell<bool>,
    /// Set when a socket write failed: replies are dropped, the reader stops.
    dead: Event,
}

impl Conn {
    fn new(shard: Rc<Shard>, max_frame: usize) -> Conn {
        Conn {
            shard,
            max_frame,
            out: RefCell::default(),
            held: Cell::new(0),
            commits: Queue::default(),
            reads: Queue::default(),
            wake_writer: Notify::default(),
            wake_reader: Notify::default(),
            reader_done: Cell::new(false),
            closing: Cell::new(false),
            dead: Event::default(),
        }
    }

    /// Whether this connection holds replies not yet written or reads not yet returned
    /// (what the budget of bytes in flight waits for).
    fn holds(&self) -> bool {
        self.held.get() > 0 || self.reads.outstanding.get() > 0
    }

    /// Releases `n` bytes of [`Conn::held`] (written, or dropped with a dead socket).
    fn release(&self, n: usize) {
        self.held.set(self.held.get() - n);
        self.shard.inflight.release(n);
    }

    fn push(&self, req_id: u64, v: &Value) {
        if self.dead.is_set() {
            return;
        }
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        let before = out.len();
        if let Err(e) = encode_reply(req_id, v, self.max_frame, &mut out) {
            let refused = crate::shard::reply_too_large(&e, self.max_frame);
            encode_reply(req_id, &refused, self.max_frame, &mut out).expect("a short error reply fits any frame limit");
        }
        let n = out.len() - before;
        drop(out);
        self.held.set(self.held.get() + n);
        self.shard.inflight.charge(n);
        if was_empty {
            self.wake_writer.notify();
        }
    }
}

/// Why the reader stopped.
enum End {
    Eof,
    Shutdown,
    WriterDead,
    ReadError(std::io::Error),
    Malformed(String),
}

/// Serves one router connection until it closes, breaks, sends a malformed frame, or
/// `shutdown` is set; then answers every request already received and flushes.
pub(crate) async fn serve(shard: Rc<Shard>, stream: UnixStream, shutdown: Event, max_frame: usize) {
    let (r, w) = futures_lite::io::split(stream);
    let conn = Rc::new(Conn::new(shard.clone(), max_frame));
    let writer = glommio::spawn_local(writer(conn.clone(), w));
    let committer = glommio::spawn_local(resolve_in_order(conn.clone(), |c| &c.commits));
    let fetcher = glommio::spawn_local(resolve_in_order(conn.clone(), |c| &c.reads));
    match reader(&shard, &conn, r, &shutdown).await {
        End::Eof => tracing::debug!("router connection closed"),
        End::Shutdown => tracing::debug!("router connection: shutting down"),
        End::WriterDead => {}
        End::ReadError(e) => tracing::warn!("router connection: read failed: {e}"),
        End::Malformed(e) => tracing::warn!("router connection: malformed frame ({e}); closing it"),
    }
    conn.reader_done.set(true);
    conn.commits.wake.notify();
    conn.reads.wake.notify();
    committer.await;
    fetcher.await;
    conn.closing.set(true);
    conn.wake_writer.notify();
    writer.await;
    // Not written (the socket failed): no longer in flight.
    conn.release(conn.held.get());
}

/// A request frame decoded and not yet run: its id, database, the command it resolved
/// to (or the error reply: unknown command, wrong arity) and its argv.
type Decoded = (u64, u8, Result<&'static Spec, Reply>, Vec<Vec<u8>>);

async fn reader(shard: &Shard, conn: &Conn, mut r: ReadHalf<UnixStream>, shutdown: &Event) -> End {
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut batch: Vec<Decoded> = Vec::new();
    loop {
        if shutdown.is_set() {
            return End::Shutdown;
        }
        while conn.out.borrow().len() > MAX_PENDING_OUT && !conn.dead.is_set() {
            conn.wake_reader.notified().await;
        }
        if conn.dead.is_set() {
            return End::WriterDead;
        }
        if let Err(e) = make_room(&mut buf, &mut start, &mut end, conn.max_frame) {
            return End::Malformed(e);
        }
        let read = async { Some(r.read(&mut buf[end..]).await) };
        let stop = async {
            futures_lite::future::or(shutdown.wait(), conn.dead.wait()).await;
            None
        };
        match futures_lite::future::or(read, stop).await {
            None => continue, // the loop head says which
            Some(Ok(0)) => return End::Eof,
            Some(Ok(n)) => end += n,
            Some(Err(e)) => return End::ReadError(e),
        }
        // Every whole frame read so far is decoded, the keys of the batch are looked
        // at once (their cache misses overlap: Shard::prefetch), then the requests run in
        // order.
        let mut malformed = None;
        loop {
            let (req_id, db, argv, used) = match decode_frame(&buf[start..end], conn.max_frame) {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    if frame.kind == Kind::Reply {
                        malformed = Some(format!("unexpected frame kind {:?}", frame.kind));
                        break;
                    }
                    match decode_request_in(frame.kind, frame.payload) {
                        Ok((db, argv)) => (frame.req_id, db, argv, used),
                        Err(e) => {
                            malformed = Some(e.to_string());
                            break;
                        }
                    }
                }
                Err(e) => {
                    malformed = Some(e.to_string());
                    break;
                }
            };
            start += used;
            // Looked up and arity-checked once, here: the look ahead and the run use it.
            batch.push((req_id, db, crate::shard::resolve(&argv), argv));
        }
        if let [(_, db, ..), _, ..] = batch.as_slice() {
            let db = *db;
            shard.prefetch(
                db,
                batch.iter().filter(|r| r.1 == db).filter_map(|(_, _, spec, argv)| Some((*spec.as_ref().ok()?, argv.as_slice()))),
            );
        }
        for (req_id, db, resolved, argv) in batch.drain(..) {
            // The budget (`crate::inflight`): holding replies or reads while the shard
            // is at it, wait for this connection's own to be written first.
            // (The budget first: every check samples the peak.)
            while shard.inflight.full(shard.store.reading_bytes()) && conn.holds() && !conn.dead.is_set() {
                conn.wake_reader.notified().await;
            }
            if conn.dead.is_set() {
                return End::WriterDead;
            }
            let reply = match resolved {
                Ok(spec) => shard.handle_spec(db, spec, argv).await,
                Err(reply) => reply,
            };
            match reply {
                Reply::Ready(v) => conn.push(req_id, &v),
                Reply::AfterCommit { commit, ok } => conn.commits.push(req_id, Pending::Commit { commit, ok }),
                Reply::Later(v) => conn.reads.push(req_id, Pending::Read(v)),
            }
        }
        if let Some(e) = malformed {
            return End::Malformed(e);
        }
        if start == end {
            start = 0;
            end = 0;
            if buf.len() > SHRINK_ABOVE {
                buf = vec![0u8; READ_CHUNK];
            }
        }
        // Let the committer, the writer and the store's group commit run before reading
        // more: one reply write per tick.
        futures_lite::future::yield_now().await;
    }
}

/// Ensures `buf[end..]` is not empty: moves the unread bytes to the front, or grows the
/// buffer to hold the whole frame that starts at `start` (at most `max_frame` + 4).
fn make_room(buf: &mut Vec<u8>, start: &mut usize, end: &mut usize, max_frame: usize) -> Result<(), String> {
    if *end < buf.len() {
        return Ok(());
    }
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
        if *end < buf.len() {
            return Ok(());
        }
    }
    // One frame fills the whole buffer: grow it to the frame's size.
    let want = match buf.get(..4) {
        Some(len) => 4 + u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize,
        None => READ_CHUNK,
    };
    if want > 4 + max_frame {
        return Err(format!("frame too large: {} bytes", want - 4));
    }
    let new_len = want.max(buf.len() + READ_CHUNK).min(4 + max_frame).max(buf.len() + 1);
    buf.resize(new_len, 0);
    Ok(())
}

/// Resolves the pending replies of one queue in order and sends them; returns once the
/// reader is done and the queue is empty.
async fn resolve_in_order(conn: Rc<Conn>, queue: fn(&Conn) -> &Queue) {
    loop {
        let next = queue(&conn).items.borrow_mut().pop_front();
        match next {
            Some((req_id, p)) => {
                let v = p.resolve().await;
                conn.push(req_id, &v);
                let q = queue(&conn);
                q.outstanding.set(q.outstanding.get() - 1);
            }
            None if conn.reader_done.get() => return,
            None => queue(&conn).wake.notified().await,
        }
    }
}

async fn writer(conn: Rc<Conn>, mut w: WriteHalf<UnixStream>) {
    let mut spare: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        if conn.out.borrow().is_empty() {
            if conn.closing.get() {
                break;
            }
            conn.wake_writer.notified().await;
            continue;
        }
        std::mem::swap(&mut *conn.out.borrow_mut(), &mut spare);
        if let Err(e) = w.write_all(&spare).await {
            tracing::warn!("router connection: write failed: {e}");
            conn.dead.set();
            conn.out.borrow_mut().clear();
            conn.release(conn.held.get());
            conn.wake_reader.notify();
            return;
        }
        conn.release(spare.len());
        spare.clear();
        if spare.capacity() > SHRINK_ABOVE {
            spare = Vec::with_capacity(READ_CHUNK);
        }
        conn.wake_reader.notify();
    }
    let _ = w.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_room_compacts_then_grows() {
        let mut buf = vec![0u8; 8];
        let (mut s, mut e) = (3, 8);
        make_room(&mut buf, &mut s, &mut e, 1 << 20).unwrap();
        assert_eq!((s, e, buf.len()), (0, 5, 8));

        // A frame header announcing 100 bytes fills the buffer: grow to hold it.
        let mut buf = vec![0u8; 8];
        buf[..4].copy_from_slice(&100u32.to_le_bytes());
        let (mut s, mut e) = (0, 8);
        make_room(&mut buf, &mut s, &mut e, 1 << 20).unwrap();
        assert!(buf.len() >= 104);

        let mut buf = vec![0u8; 8];
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (mut s, mut e) = (0, 8);
        assert!(make_room(&mut buf, &mut s, &mut e, 1 << 20).is_err());
    }
}
