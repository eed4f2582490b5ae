//! [`GreenFuture`]: a green thread's outcome, awaited from async code.
//!
//! # Protocol
//!
//! - [`Handle::spawn`] sends the hub a callback that spawns the green
//!   thread; its body runs the function and hands the outcome to the
//!   shared [`Outcome`] slot, then wakes the future's last waker. The slot
//!   is behind a mutex: the future lives on any thread.
//! - A green thread that is killed, or dies before it starts, leaves
//!   [`JoinError`] (killed) in the slot, through a guard that its body owns.
//! - **Cancellation.** Dropping the future before the outcome arrived kills
//!   the green thread: the drop sends the hub a callback that kills it (if
//!   it has not started yet, it never runs).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::{Handle, JoinError, JoinHandle, spawn};
use crate::GreenletExit;

/// What the future and the green thread share.
struct Outcome<T> {
    /// The outcome, until the future takes it.
    value: Option<Result<T, JoinError>>,
    /// Whether the green thread has finished (or will never run).
    done: bool,
    /// The future's waker, from its last poll.
    waker: Option<Waker>,
    /// Set by the hub once the green thread exists: kills it.
    kill: Option<Box<dyn FnOnce() + Send>>,
    /// Whether the future was dropped before the outcome arrived.
    cancelled: bool,
}

/// The outcome of a green thread spawned from any thread with
/// [`Handle::spawn`]: a [`Future`] of its value, or of why it produced none.
///
/// Dropping it before the green thread finished kills the green thread.
#[must_use = "a GreenFuture kills its green thread when dropped; await it"]
pub struct GreenFuture<T> {
    outcome: Arc<Mutex<Outcome<T>>>,
    hub: Handle,
}

impl Handle {
    /// Runs `f` in a green thread on this handle's hub and returns a future
    /// of its outcome: async code on any executor (or another thread) can
    /// run blocking-style green code and `.await` what it returns.
    ///
    /// The outcome is `Err` if `f` panicked (the payload is in the error,
    /// and nothing is reported on the hub) or if the green thread was killed
    /// or could not start. Dropping the future first kills the green thread.
    ///
    /// ```
    /// let hub = greenery::hub::Handle::current();
    /// let answer = std::thread::spawn(move || {
    ///     // Another thread (say, an executor's) awaits green code.
    ///     let future = hub.spawn(|| {
    ///         greenery::sleep(std::time::Duration::from_millis(1));
    ///         6 * 7
    ///     });
    ///     futures_lite_block_on(future)
    /// });
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut std::task::Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// // This thread's hub runs the green thread while it waits.
    /// let answer = greenery::hub::spawn_blocking(move || answer.join().unwrap()).unwrap();
    /// assert_eq!(answer.unwrap(), 42);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> GreenFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let outcome = Arc::new(Mutex::new(Outcome {
            value: None,
            done: false,
            waker: None,
            kill: None,
            cancelled: false,
        }));
        let shared = outcome.clone();
        let hub = self.clone();
        self.run(move || {
            if lock(&shared).cancelled {
                return finish(&shared, Err(JoinError::killed()));
            }
            let guard = Delivery { outcome: Some(shared.clone()) };
            let handle = spawn(move || {
                let mut guard = guard;
                let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
                    Ok(value) => Ok(value),
                    // A kill: record it, and let the unwinding go on.
                    Err(payload) if payload.is::<GreenletExit>() => {
                        guard.deliver(Err(JoinError::killed()));
                        panic::resume_unwind(payload)
                    }
                    Err(payload) => Err(JoinError::panicked(payload)),
                };
                guard.deliver(outcome);
            });
            // The handle is not `Send`: it stays on this hub, in `KEPT`,
            // and the kill reaches it through the hub's handle.
            let id = handle.id();
            handle.link(move |_| {
                let _ = KEPT.try_with(|kept| kept.borrow_mut().remove(&id));
            });
            if !handle.is_ready() {
                KEPT.with(|kept| kept.borrow_mut().insert(id, handle));
                lock(&shared).kill = Some(Box::new(move || hub.run(move || kill_kept(id))));
            }
        });
        GreenFuture { outcome, hub: self.clone() }
    }
}

thread_local! {
    /// The green threads of this thread's hub spawned for a [`GreenFuture`]
    /// and not finished yet, by id.
    static KEPT: RefCell<HashMap<u64, JoinHandle<()>>> = RefCell::new(HashMap::new());
}

/// Kills the kept green thread `id`, if it has not finished. On its hub.
fn kill_kept(id: u64) {
    // Out of the table first: killing one that never started completes it
    // on the spot, and its link takes it out of the table.
    if let Some(handle) = KEPT.with(|kept| kept.borrow_mut().remove(&id)) {
        handle.kill_async();
    }
}

/// Hands a green thread's outcome to its future; if the green thread ends
/// without doing so (killed before it ran, or unable to start), the drop
/// hands over [`JoinError`] (killed).
struct Delivery<T> {
    outcome: Option<Arc<Mutex<Outcome<T>>>>,
}

impl<T> Delivery<T> {
    fn deliver(&mut self, value: Result<T, JoinError>) {
        if let Some(outcome) = self.outcome.take() {
            finish(&outcome, value);
        }
    }
}

impl<T> Drop for Delivery<T> {
    fn drop(&mut self) {
        self.deliver(Err(JoinError::killed()));
    }
}

fn finish<T>(outcome: &Mutex<Outcome<T>>, value: Result<T, JoinError>) {
    let waker = {
        let mut outcome = lock(outcome);
        outcome.value = Some(value);
        outcome.done = true;
        outcome.kill = None;
        outcome.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn lock<T>(outcome: &Mutex<Outcome<T>>) -> std::sync::MutexGuard<'_, Outcome<T>> {
    outcome.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl<T> Future for GreenFuture<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut outcome = lock(&self.outcome);
        if let Some(value) = outcome.value.take() {
            return Poll::Ready(value);
        }
        assert!(!outcome.done, "GreenFuture polled after it returned its outcome");
        if !outcome.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            outcome.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for GreenFuture<T> {
    fn drop(&mut self) {
        let kill = {
            let mut outcome = lock(&self.outcome);
            if outcome.done {
                return;
            }
            outcome.cancelled = true;
            outcome.kill.take()
        };
        match kill {
            Some(kill) => kill(),
            // Not spawned yet: the spawning callback sees `cancelled`. Wake
            // the hub so that it looks soon.
            None => self.hub.run(|| {}),
        }
    }
}

impl<T> fmt::Debug for GreenFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = lock(&self.outcome).done;
        f.debug_struct("GreenFuture").field("done", &done).finish_non_exhaustive()
    }
}
