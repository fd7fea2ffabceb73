//! Tiny single-executor synchronisation primitives (`Rc`-based, `!Send`): a latched
//! event, a re-armable wake-up, and a one-shot slot (one reply for one request). Shared
//! by the shard and the router (`keel-server` uses them through `keel_shard::runtime::sync`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A latched event: once set, every current and future `wait` resolves.
#[derive(Clone, Default)]
pub struct Event(Rc<RefCell<(bool, Vec<Waker>)>>);

impl Event {
    /// Sets the event and wakes every waiter; idempotent.
    pub fn set(&self) {
        let wakers = {
            let mut s = self.0.borrow_mut();
            s.0 = true;
            std::mem::take(&mut s.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// True once [`set`](Self::set) was called.
    pub fn is_set(&self) -> bool {
        self.0.borrow().0
    }

    /// Resolves once the event is set.
    pub fn wait(&self) -> EventWait {
        EventWait(self.clone())
    }
}

/// The future of [`Event::wait`].
pub struct EventWait(Event);

impl Future for EventWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = (self.0).0.borrow_mut();
        if s.0 {
            return Poll::Ready(());
        }
        if !s.1.iter().any(|w| w.will_wake(cx.waker())) {
            s.1.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Runs `f` until `stop` is set: `Some(output)` if `f` finished first, `None` once `stop`
/// is set (then `f` is dropped, e.g. an accept or a read is abandoned).
pub async fn unless<T>(stop: &Event, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        stop.wait().await;
        None
    })
    .await
}

/// A re-armable wake-up for one waiting task (e.g. "the reply buffer is non-empty").
#[derive(Clone, Default)]
pub struct Notify(Rc<RefCell<(bool, Option<Waker>)>>);

impl Notify {
    /// Wakes the waiting task, or lets its next `notified` resolve at once.
    pub fn notify(&self) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Resolves after the next (or an already pending) `notify`, consuming it.
    pub fn notified(&self) -> Notified {
        Notified(self.clone())
    }
}

/// The future of [`Notify::notified`].
pub struct Notified(Notify);

impl Future for Notified {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = (self.0).0.borrow_mut();
        if s.0 {
            s.0 = false;
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

struct SlotInner<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The sending half of a one-shot slot.
pub struct SlotTx<T>(Rc<RefCell<SlotInner<T>>>);

/// The receiving half: a future resolving to the value.
pub struct SlotRx<T>(Rc<RefCell<SlotInner<T>>>);

/// A one-shot slot: the sender fills it once, the receiver awaits it.
pub fn slot<T>() -> (SlotTx<T>, SlotRx<T>) {
    let inner = Rc::new(RefCell::new(SlotInner { value: None, waker: None }));
    (SlotTx(inner.clone()), SlotRx(inner))
}

impl<T> SlotTx<T> {
    /// Stores the value and wakes the receiver.
    pub fn send(self, v: T) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.value = Some(v);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for SlotRx<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.0.borrow_mut();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Counts running tasks, so that shutdown can wait until they are all done.
#[derive(Default)]
pub struct Live {
    n: Cell<usize>,
    zero: Notify,
}

/// One running task of a [`Live`]; dropping it ends the task's count.
pub struct LiveGuard(Rc<Live>);

impl Live {
    /// Counts one more task until the guard is dropped.
    pub fn enter(self: &Rc<Self>) -> LiveGuard {
        self.n.set(self.n.get() + 1);
        LiveGuard(self.clone())
    }

    /// Tasks running now.
    pub fn count(&self) -> usize {
        self.n.get()
    }

    /// Resolves once no task is running.
    pub async fn all_done(&self) {
        while self.n.get() > 0 {
            self.zero.notified().await;
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let n = self.0.n.get() - 1;
        self.0.n.set(n);
        if n == 0 {
            self.0.zero.notify();
        }
    }
}
