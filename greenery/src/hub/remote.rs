//! The hub's event loop (mio) and its door to other threads: [`Handle`].

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::{Events, Poll, Registry, Token, Waker};

use super::io::Readiness;
use super::{Task, with_hub};

/// The token of the waker that other threads use to interrupt the poll.
const WAKER: Token = Token(usize::MAX);

/// What other threads share with a hub.
struct Shared {
    /// Callbacks sent from other threads, to run on the hub.
    queue: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    waker: Waker,
    /// The poller's registry, for fds (not borrowed from the poll, which the
    /// loop holds while it waits). Here, rather than in [`Remote`], so that
    /// a socket that moved to another thread can still take its fd off this
    /// poller (see `io::MovableRegistration`).
    registry: Registry,
    /// [`Handle`]s alive and blocking tasks in flight: while any exist,
    /// something outside may still wake the hub, so it is not deadlocked.
    external: AtomicUsize,
}

/// The loop's poller and the queue other threads feed.
pub(super) struct Remote {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    shared: Arc<Shared>,
}

impl Remote {
    pub(super) fn new() -> io::Result<Remote> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            waker,
            registry,
            external: AtomicUsize::new(0),
        });
        Ok(Remote { poll: RefCell::new(poll), events: RefCell::new(Events::with_capacity(1024)), shared })
    }

    pub(super) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Whether `doorbell` rings this hub.
    pub(super) fn is(&self, doorbell: &Doorbell) -> bool {
        Arc::ptr_eq(&self.shared, &doorbell.0)
    }

    /// Whether anything outside the hub's own queues can still wake it.
    pub(super) fn keeps_alive(&self) -> bool {
        self.shared.external.load(Ordering::Acquire) > 0
            || !self.shared.queue.lock().unwrap_or_else(|poison| poison.into_inner()).is_empty()
    }

    /// Waits for events for at most `timeout` (`None`: until one comes),
    /// hands each fd's readiness to `on_io`, and returns the callbacks other
    /// threads sent meanwhile.
    pub(super) fn poll(
        &self,
        timeout: Option<Duration>,
        mut on_io: impl FnMut(Token, Readiness),
    ) -> Vec<Task> {
        let mut events = self.events.borrow_mut();
        if let Err(err) = self.poll.borrow_mut().poll(&mut events, timeout)
            && err.kind() != io::ErrorKind::Interrupted
        {
            panic!("the hub's event loop failed: {err}");
        }
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let readiness = Readiness {
                readable: event.is_readable(),
                writable: event.is_writable(),
                read_closed: event.is_read_closed(),
                write_closed: event.is_write_closed(),
                error: event.is_error(),
            };
            on_io(event.token(), readiness);
        }
        let sent =
            std::mem::take(&mut *self.shared.queue.lock().unwrap_or_else(|poison| poison.into_inner()));
        sent.into_iter()
            .map(|callback| {
                let callback: Box<dyn FnOnce()> = callback;
                Task::Call(callback)
            })
            .collect()
    }

    pub(super) fn handle(&self) -> Handle {
        Handle::new(self.shared.clone())
    }

    pub(super) fn doorbell(&self) -> Doorbell {
        Doorbell(self.shared.clone())
    }
}

/// A `Send + Sync` handle to one thread's hub, for other threads: it runs
/// callbacks on that hub and wakes its loop to do so.
///
/// ```
/// use std::sync::mpsc;
///
/// let hub = greenery::hub::Handle::current();
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || {
///     // Runs on the first thread's hub, which this wakes.
///     hub.run(move || tx.send("ran on the hub").unwrap());
/// });
/// greenery::hub::spawn_blocking(move || rx.recv().unwrap()).unwrap(); // wait without blocking the hub
/// ```
///
/// While a handle exists, the hub may be woken from outside, so it does not
/// declare a [`Deadlock`](super::Deadlock); drop handles you no longer need.
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    fn new(shared: Arc<Shared>) -> Handle {
        shared.external.fetch_add(1, Ordering::AcqRel);
        Handle { shared }
    }

    /// The current thread's hub (created if need be).
    pub fn current() -> Handle {
        with_hub(|hub| hub.remote.handle())
    }

    /// Runs `callback` on the hub, soon, in the order sent. It runs on the
    /// hub itself: it must not block. To run blocking code there, spawn a
    /// green thread from it with [`spawn`](super::spawn).
    ///
    /// If the hub's thread has exited, the callback is dropped without
    /// running.
    pub fn run(&self, callback: impl FnOnce() + Send + 'static) {
        self.shared.queue.lock().unwrap_or_else(|poison| poison.into_inner()).push(Box::new(callback));
        // A failed wake means the hub's poller is gone with its thread.
        let _ = self.shared.waker.wake();
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(self.shared.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.shared.external.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The hub may be waiting only because of us: let it look again.
            let _ = self.shared.waker.wake();
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// The hub's door for callbacks from other threads, without counting as a
/// way to wake it (unlike a [`Handle`]): for wakers, which may outlive what
/// they wake (`block_on` tells the hub itself when it waits).
#[derive(Clone)]
pub(super) struct Doorbell(Arc<Shared>);

impl Doorbell {
    /// The current thread's hub's.
    pub(super) fn current() -> Doorbell {
        with_hub(|hub| Doorbell(hub.remote.shared.clone()))
    }

    /// Runs `callback` on the hub, as [`Handle::run`] does.
    pub(super) fn run(&self, callback: impl FnOnce() + Send + 'static) {
        self.0.queue.lock().unwrap_or_else(|poison| poison.into_inner()).push(Box::new(callback));
        let _ = self.0.waker.wake();
    }

    /// The hub's poller registry, usable from any thread.
    pub(super) fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Wakes the hub's loop, to look at what it was told.
    pub(super) fn wake(&self) {
        let _ = self.0.waker.wake();
    }
}

/// Counts a piece of outside work (a blocking task) as able to wake the hub
/// until the returned guard is dropped; see [`Shared::external`].
pub(super) struct ExternalWork {
    shared: Arc<Shared>,
}

impl ExternalWork {
    pub(super) fn start() -> ExternalWork {
        with_hub(|hub| {
            let shared = hub.remote.shared.clone();
            shared.external.fetch_add(1, Ordering::AcqRel);
            ExternalWork { shared }
        })
    }

    /// Runs `callback` on the hub and ends the work.
    pub(super) fn finish(self, callback: impl FnOnce() + Send + 'static) {
        self.shared.queue.lock().unwrap_or_else(|poison| poison.into_inner()).push(Box::new(callback));
        drop(self); // wakes the hub
    }
}

impl Drop for ExternalWork {
    fn drop(&mut self) {
        self.shared.external.fetch_sub(1, Ordering::AcqRel);
        let _ = self.shared.waker.wake();
    }
}
