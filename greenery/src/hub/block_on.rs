//! [`block_on`]: a future, awaited from a green thread.
//!
//! # Protocol
//!
//! - The future is polled on the calling green thread, with a [`Waker`]
//!   backed by a [`Signal`]. When it is pending, the green thread parks on
//!   the hub like any other waiter; nothing else of the thread blocks.
//! - **Waking.** The waker sets the signal's `notified` flag; the first wake
//!   after a poll also wakes the parked green thread. On the hub's own
//!   thread (another green thread completing the future, a hub callback)
//!   that is a plain [`Waiter::wake`]; from any other thread it goes through
//!   the hub's [`Handle`], which runs the wake on the hub and wakes its loop.
//!   The waiter is found through a per-thread table by the signal's id, so a
//!   wake that arrives after `block_on` returned finds nothing and does
//!   nothing.
//! - **Polling again.** A green thread woken polls the future again. A
//!   future that wakes itself while it is polled (it has more to do at once)
//!   is polled again after the other ready green threads had their turn, so
//!   that it cannot starve them.
//! - **Deadlock.** The signal holds a [`Handle`]: while a future is pending,
//!   something outside may complete it, so the hub never reports a
//!   deadlock on its account.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::{Handle, Waiter, park, yield_now};

thread_local! {
    /// The waiters of this thread's green threads parked in `block_on`, by
    /// their signal's id.
    static PARKED: RefCell<HashMap<u64, Rc<Waiter>>> = RefCell::new(HashMap::new());
    /// A byte whose address tells this thread from others.
    static THREAD_MARK: u8 = const { 0 };
}

/// Runs `future` to completion on the calling green thread (or the main
/// greenlet) and returns its output, parking only this green thread while
/// the future is pending: the hub runs the others meanwhile.
///
/// The future's [`Waker`] may be called from any thread: from another green
/// thread of this hub, from a hub callback, or from a thread of another
/// runtime (a tokio reactor, a thread pool). The signature is every
/// executor's `block_on`, so the many async crates that take "any executor"
/// can run inside green threads; for crates that need tokio's reactor, see
/// the `tokio` feature's [`greenery::tokio::run`](crate::tokio).
///
/// A pending future may be woken from anywhere, so waiting for one never
/// counts as a [`Deadlock`](super::Deadlock): a future that nothing ever
/// wakes blocks its green thread forever (the others carry on).
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::task::{Context, Poll, Waker};
///
/// /// A value another thread will send, as a bare-bones future.
/// #[derive(Default)]
/// struct Slot { value: Option<u32>, waker: Option<Waker> }
/// struct Receive(Arc<Mutex<Slot>>);
///
/// impl Future for Receive {
///     type Output = u32;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         let mut slot = self.0.lock().unwrap();
///         match slot.value.take() {
///             Some(value) => Poll::Ready(value),
///             None => {
///                 slot.waker = Some(cx.waker().clone());
///                 Poll::Pending
///             }
///         }
///     }
/// }
///
/// let slot = Arc::new(Mutex::new(Slot::default()));
/// let sender = slot.clone();
/// std::thread::spawn(move || {
///     let waker = loop {
///         let mut slot = sender.lock().unwrap();
///         if let Some(waker) = slot.waker.take() {
///             slot.value = Some(42);
///             break waker;
///         }
///         drop(slot);
///         std::thread::yield_now();
///     };
///     waker.wake(); // from another OS thread
/// });
/// let ticker = greenery::spawn(|| greenery::sleep(std::time::Duration::from_millis(1)));
/// assert_eq!(greenery::block_on(Receive(slot)), 42);
/// ticker.get().unwrap(); // the hub ran other green threads meanwhile
/// ```
///
/// # Panics
///
/// When called on the hub itself (in a timer callback or a link), like any
/// blocking call.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    // Unique in the process: a wake meant for an ended `block_on` never
    // finds another's waiter.
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let signal = Arc::new(Signal {
        id,
        thread: thread_mark(),
        notified: AtomicBool::new(false),
        hub: Handle::current(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let waiter = Waiter::new();
    PARKED.with(|parked| parked.borrow_mut().insert(id, waiter.clone()));
    // However this ends (a kill or a timeout unwinds through the park, the
    // future may panic), later wakes must find nothing.
    struct Unlist(u64);
    impl Drop for Unlist {
        fn drop(&mut self) {
            let _ = PARKED.try_with(|parked| parked.borrow_mut().remove(&self.0));
        }
    }
    let _unlist = Unlist(id);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if signal.notified.swap(false, Ordering::AcqRel) {
            // Woken while it was polled: let the others run first.
            yield_now();
            continue;
        }
        park(&waiter, None);
        signal.notified.store(false, Ordering::Release);
    }
}

/// What a `block_on` future's waker holds.
struct Signal {
    id: u64,
    /// The thread of the hub the green thread parks on ([`thread_mark`]).
    thread: usize,
    /// Set by a wake; cleared by the green thread before it polls again.
    notified: AtomicBool,
    hub: Handle,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.notified.swap(true, Ordering::AcqRel) {
            return; // a wake since the last poll is on its way
        }
        if thread_mark() == self.thread {
            wake_parked(self.id);
        } else {
            let id = self.id;
            self.hub.run(move || wake_parked(id));
        }
    }
}

/// Wakes the green thread parked in the `block_on` of signal `id`, if it is
/// still there. On the hub's thread.
fn wake_parked(id: u64) {
    let waiter = PARKED.try_with(|parked| parked.borrow().get(&id).cloned()).ok().flatten();
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

/// A number that tells the calling thread from every other live thread.
fn thread_mark() -> usize {
    THREAD_MARK.with(|mark| mark as *const u8 as usize)
}
