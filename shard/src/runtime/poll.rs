//! [`IoPoll`]: yield until the executor has polled its rings, so that long-running work
//! cut into slices lets the requests that arrived meanwhile in.
//!
//! glommio 0.9 runs ready tasks until its preempt timer fires or no task is ready, and
//! only then submits the I/O its tasks queued and reaps what completed: a socket read
//! queued by an idle connection is not even submitted before that, so a request that
//! arrives while tasks stay ready (a vector search that yields between slices with
//! `yield_now` stays ready) waits up to one preempt-timer period (2 ms on a shard) to
//! be noticed. [`IoPoll::next`] instead makes the caller not ready until the next poll.
//!
//! How: one background task per executor, the ticker, arms an io_uring `peek` on an
//! empty socket (queued, not yet submitted: glommio submits at its next poll), then
//! writes one byte to the socket's peer. When the executor next polls, the `peek` is
//! submitted, finds the byte and completes in that same poll; the ticker then reads the
//! byte back and wakes every caller that waited for this round. (A plain `peek` at a
//! socket that already holds data would not do: glommio first tries a non-blocking
//! `recv`, which succeeds without any poll.) One round costs one `io_uring` submission
//! and two socket system calls, shared by every task that waited in it; once every
//! slice-cutting task waits, no task is ready and the executor polls at once.

use super::sync::Notify;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::UnixStream;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Waits for the executor's next I/O poll (see the module docs). One per executor;
/// cheap to share by reference.
pub struct IoPoll {
    state: Rc<RefCell<State>>,
    /// Asks the ticker for a round.
    wanted: Notify,
}

#[derive(Default)]
struct State {
    /// Rounds completed so far.
    round: u64,
    /// Tasks waiting for the end of the round in progress.
    waiters: Vec<Waker>,
    /// The ticker's socket failed: [`IoPoll::next`] is a plain yield from then on.
    broken: bool,
}

impl IoPoll {
    /// Makes the socket pair and spawns the ticker on the current executor (the one
    /// that will use it). Errors: `socketpair` failed.
    pub fn new() -> std::io::Result<IoPoll> {
        let (writer, reader) = UnixStream::pair().map_err(std::io::Error::from)?;
        let state = Rc::new(RefCell::new(State::default()));
        let wanted = Notify::default();
        glommio::spawn_local(ticker(writer, reader, state.clone(), wanted.clone())).detach();
        Ok(IoPoll { state, wanted })
    }

    /// Resolves at the end of the current or the next round of the executor's polls of
    /// its rings (a waiter that comes after a round's peek completed but before the
    /// ticker ran is woken by that round): every task that was ready has run, and the
    /// I/O queued and completed meanwhile (new requests' socket reads, disk reads) has
    /// been submitted and reaped — at worst one round (one search slice) late.
    pub fn next(&self) -> Next<'_> {
        Next { poll: self, round: None }
    }
}

/// The future of [`IoPoll::next`].
pub struct Next<'p> {
    poll: &'p IoPoll,
    /// The round that was in progress at the first poll.
    round: Option<u64>,
}

impl Future for Next<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.poll.state.borrow_mut();
        match self.round {
            Some(r) if state.round > r => return Poll::Ready(()),
            Some(_) => {}
            None if state.broken => {
                // A plain yield: ready again at once, behind the tasks ready now.
                drop(state);
                self.round = Some(u64::MAX);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            None => {
                let round = state.round;
                self.round = Some(round);
                self.poll.wanted.notify();
            }
        }
        if self.round == Some(u64::MAX) {
            return Poll::Ready(()); // the second poll of a plain yield
        }
        state.waiters.push(cx.waker().clone());
        Poll::Pending
    }
}

/// Runs rounds while tasks want them (see the module docs).
async fn ticker(mut writer: UnixStream, mut reader: UnixStream, state: Rc<RefCell<State>>, wanted: Notify) {
    let mut byte = [0u8; 1];
    loop {
        wanted.notified().await;
        let done = {
            let mut peek = std::pin::pin!(reader.peek(&mut byte));
            // Queues the peek (the socket is empty, so its non-blocking try fails).
            match futures_lite::future::poll_once(&mut peek).await {
                Some(r) => r.map(|_| ()),
                None => match writer.write_all(&[1]).await {
                    Ok(()) => peek.await.map(|_| ()),
                    Err(e) => Err(e.into()),
                },
            }
        };
        let done = match done {
            Ok(()) => reader.read_exact(&mut byte).await,
            Err(e) => Err(std::io::Error::from(e)),
        };
        let waiters = {
            let mut s = state.borrow_mut();
            s.round += 1;
            if let Err(e) = &done {
                tracing::warn!("I/O poll socket failed ({e}); searches yield without waiting for a poll");
                s.broken = true;
            }
            std::mem::take(&mut s.waiters)
        };
        for w in waiters {
            w.wake();
        }
        if done.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement};
    use std::cell::Cell;

    fn run<T>(f: impl Future<Output = T>) -> T {
        LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().expect("start executor").run(f)
    }

    /// A task waiting for a socket read whose data has arrived is woken only by a poll.
    /// While another task stays ready (yielding), no poll happens (the test executor's
    /// preempt timer is glommio's 100 ms); `IoPoll::next` lets that poll happen.
    #[test]
    fn next_lets_the_executor_reap_io_a_yield_does_not() {
        run(async {
            let (mut tx, rx) = UnixStream::pair().unwrap();
            let got = Rc::new(Cell::new(false));
            let reader = glommio::spawn_local({
                let got = got.clone();
                async move {
                    let mut one = [0u8; 1];
                    rx.peek(&mut one).await.unwrap();
                    got.set(true);
                }
            });
            futures_lite::future::yield_now().await; // the reader queues its peek
            tx.write_all(&[7]).await.unwrap();
            for _ in 0..100 {
                futures_lite::future::yield_now().await;
            }
            assert!(!got.get(), "yields alone do not poll (else this test shows nothing)");
            let poll = IoPoll::new().unwrap();
            poll.next().await;
            assert!(got.get(), "the peek completed at the poll next() waited for");
            reader.await;
            // Rounds keep working, and several waiters share one.
            let (a, b) = (poll.next(), poll.next());
            futures_lite::future::zip(a, b).await;
            poll.next().await;
        });
    }
}
