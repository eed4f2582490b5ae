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
//!   The waiter is found through a per-thread table by its place and the
//!   place's generation, so a wake that arrives after `block_on` returned
//!   finds nothing and does nothing.
//! - **Polling again.** A green thread woken polls the future again. A
//!   future that wakes itself while it is polled (it has more to do at once)
//!   is polled again after the other ready green threads had their turn, so
//!   that it cannot starve them.
//! - **Deadlock.** While a green thread waits in `block_on`, the hub does
//!   not report a deadlock ([`waiting`]): the future may be completed from
//!   another thread.
//! - **Signals** are reused: one that no waker refers to any more when its
//!   `block_on` returns is kept for the thread's next one, with its waiter
//!   (if the next one is on the same greenlet).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::remote::Doorbell;
use super::{Waiter, park, yield_now};

thread_local! {
    /// This thread's green threads parked in `block_on`.
    static PARKED: RefCell<Parked> = const { RefCell::new(Parked { entries: Vec::new(), free: Vec::new() }) };
    /// A signal that no waker refers to any more, and a waiter, kept for the
    /// next `block_on` of this thread.
    static SPARE: RefCell<Option<(Arc<Signal>, Rc<Waiter>)>> = const { RefCell::new(None) };
    /// How many of this thread's green threads wait in `block_on`.
    static WAITING: Cell<usize> = const { Cell::new(0) };
    /// A byte whose address tells this thread from others.
    static THREAD_MARK: u8 = const { 0 };
}

/// The waiters of a thread's green threads in `block_on`, in places that
/// a signal names by index and generation (so that a wake for a place that
/// was reused finds nothing).
struct Parked {
    entries: Vec<(u64, Option<Rc<Waiter>>)>,
    free: Vec<usize>,
}

/// The generation of the next place taken, in any thread.
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Parked {
    fn insert(&mut self, waiter: Rc<Waiter>) -> (usize, u64) {
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        match self.free.pop() {
            Some(index) => {
                self.entries[index] = (generation, Some(waiter));
                (index, generation)
            }
            None => {
                self.entries.push((generation, Some(waiter)));
                (self.entries.len() - 1, generation)
            }
        }
    }

    fn remove(&mut self, index: usize) {
        self.entries[index] = (0, None);
        self.free.push(index);
    }

    fn get(&self, index: usize, generation: u64) -> Option<&Rc<Waiter>> {
        match self.entries.get(index) {
            Some((at, Some(waiter))) if *at == generation => Some(waiter),
            _ => None,
        }
    }
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
/// the `tokio` feature's `greenery::tokio::run`.
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
    let (signal, waiter) = Signal::take();
    // However this ends (a kill or a timeout unwinds through the park, the
    // future may panic), later wakes must find nothing, and the signal goes
    // back to the spare place if no waker kept it.
    struct Done(Option<(Arc<Signal>, Rc<Waiter>)>);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Some((signal, waiter)) = self.0.take() {
                Signal::put_back(signal, waiter);
            }
        }
    }
    let done = Done(Some((signal.clone(), waiter.clone())));
    let waker = Waker::from(signal);
    let signal = &done.0.as_ref().expect("kept until the end").0;
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if signal.notified.load(Ordering::Acquire) {
            // Woken while it was polled: let the others run first.
            signal.notified.store(false, Ordering::Relaxed);
            yield_now();
            continue;
        }
        // While it waits, the future may be completed from another thread:
        // the hub must not report a deadlock ([`waiting`]).
        WAITING.with(|waiting| waiting.set(waiting.get() + 1));
        struct Waited;
        impl Drop for Waited {
            fn drop(&mut self) {
                let _ = WAITING.try_with(|waiting| waiting.set(waiting.get() - 1));
            }
        }
        let waited = Waited;
        park(&waiter, super::Wait::BlockOn, None);
        drop(waited);
        signal.notified.store(false, Ordering::Relaxed);
    }
}

/// Whether a green thread of this thread waits in [`block_on`]: something
/// outside the hub may then wake it, so the hub is not deadlocked.
pub(super) fn waiting() -> bool {
    WAITING.with(|waiting| waiting.get() > 0)
}

/// What a `block_on` future's waker holds.
struct Signal {
    /// The waiter's place in [`PARKED`], and the place's generation.
    index: AtomicUsize,
    generation: AtomicU64,
    /// The thread of the hub the green thread parks on ([`thread_mark`]).
    thread: usize,
    /// Set by a wake; cleared by the green thread before it polls again.
    notified: AtomicBool,
    door: Doorbell,
}

impl Signal {
    /// A signal and a waiter for a new `block_on` of the current greenlet:
    /// the spare ones if there are (the waiter if it is the current
    /// greenlet's), its place in [`PARKED`] taken.
    fn take() -> (Arc<Signal>, Rc<Waiter>) {
        let spare = SPARE.with(|spare| spare.borrow_mut().take());
        let (signal, waiter) = match spare {
            Some((signal, waiter)) => {
                let waiter = if waiter.is_current_greenlet() { waiter } else { Waiter::new() };
                (signal, waiter)
            }
            None => {
                let signal = Arc::new(Signal {
                    index: AtomicUsize::new(0),
                    generation: AtomicU64::new(0),
                    thread: thread_mark(),
                    notified: AtomicBool::new(false),
                    door: Doorbell::current(),
                });
                (signal, Waiter::new())
            }
        };
        let (index, generation) = PARKED.with(|parked| parked.borrow_mut().insert(waiter.clone()));
        // No other reference to the signal exists (a spare one had none
        // left), so nothing reads these meanwhile.
        signal.index.store(index, Ordering::Relaxed);
        signal.generation.store(generation, Ordering::Relaxed);
        signal.notified.store(false, Ordering::Relaxed);
        (signal, waiter)
    }

    /// Frees the signal's place in [`PARKED`], and keeps the signal and the
    /// waiter for the next `block_on` if no waker still refers to the
    /// signal.
    fn put_back(signal: Arc<Signal>, waiter: Rc<Waiter>) {
        let index = signal.index.load(Ordering::Relaxed);
        let _ = PARKED.try_with(|parked| parked.borrow_mut().remove(index));
        // Wakers are the only other references (there are no weak ones): one
        // left is ours.
        if Arc::strong_count(&signal) == 1 {
            let _ = SPARE.try_with(|spare| *spare.borrow_mut() = Some((signal, waiter)));
        }
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.notified.load(Ordering::Acquire) || self.notified.swap(true, Ordering::AcqRel) {
            return; // a wake since the last poll is on its way
        }
        let (index, generation) =
            (self.index.load(Ordering::Relaxed), self.generation.load(Ordering::Relaxed));
        if thread_mark() == self.thread {
            wake_parked(index, generation);
        } else {
            self.door.run(move || wake_parked(index, generation));
        }
    }
}

/// Wakes the green thread parked in the `block_on` whose waiter has place
/// `index` in `generation`, if it is still there. On the hub's thread.
fn wake_parked(index: usize, generation: u64) {
    let waiter = PARKED.try_with(|parked| parked.borrow().get(index, generation).cloned()).ok().flatten();
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

/// A number that tells the calling thread from every other live thread.
fn thread_mark() -> usize {
    THREAD_MARK.with(|mark| mark as *const u8 as usize)
}
