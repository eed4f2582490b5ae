//! [`AsyncResult`]: a value or an error, set once on any thread, that green
//! threads of any hub, plain threads and futures wait for.
//!
//! # Protocol
//!
//! The outcome lives in a [`OnceLock`]: once set it never changes, so it can
//! be lent out for as long as the `AsyncResult` lives. The wakers of the
//! waiting futures are behind a mutex. A setter stores the outcome first,
//! then takes the wakers under the lock; a future looks at the outcome,
//! and if it is not there, looks again under the lock before leaving its
//! waker. Either the setter's lock comes first, and it takes the waker, or
//! the future's does, and it sees the outcome: no wake-up is lost.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::sync::AlreadySet;
use crate::sync::anywhere::{Wakers, wait_anywhere};

/// A value or an error, set once from any thread, that any number of
/// waiters on any threads wait for (the `Send + Sync` form of
/// [`sync::AsyncResult`](crate::sync::AsyncResult)): a one-shot result
/// between hubs. See the [module documentation](super).
///
/// ```
/// use std::sync::Arc;
/// use greenery::sync::threadsafe::AsyncResult;
///
/// let answer: Arc<AsyncResult<u64, String>> = Arc::new(AsyncResult::new());
/// // Hub 1 sets it; hub 0's three green threads wait for it.
/// let results = greenery::hub::run_on(2, |hub| {
///     if hub == 1 {
///         answer.set((1..=10).sum()).unwrap();
///         return 0;
///     }
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let answer = answer.clone();
///             greenery::spawn(move || answer.get().unwrap())
///         })
///         .collect();
///     waiters.into_iter().map(|waiter| waiter.get().unwrap()).sum()
/// });
/// assert_eq!(results, [165, 0]);
/// ```
pub struct AsyncResult<T, E> {
    outcome: OnceLock<Result<T, E>>,
    wakers: Mutex<Wakers>,
}

impl<T, E> AsyncResult<T, E> {
    /// An `AsyncResult` with nothing set.
    pub fn new() -> AsyncResult<T, E> {
        AsyncResult { outcome: OnceLock::new(), wakers: Mutex::new(Wakers::default()) }
    }

    fn wakers(&self) -> MutexGuard<'_, Wakers> {
        self.wakers.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sets the value and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `value`, if a value or an error was set
    /// already (by this thread or another); that one stays.
    pub fn set(&self, value: T) -> Result<(), AlreadySet<T>> {
        self.set_result(Ok(value)).map_err(|AlreadySet(outcome)| {
            AlreadySet(outcome.unwrap_or_else(|_| unreachable!("an Ok was passed")))
        })
    }

    /// Sets the error and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `error`, if a value or an error was set
    /// already; that one stays.
    pub fn set_error(&self, error: E) -> Result<(), AlreadySet<E>> {
        self.set_result(Err(error)).map_err(|AlreadySet(outcome)| match outcome {
            Err(error) => AlreadySet(error),
            Ok(_) => unreachable!("an Err was passed"),
        })
    }

    /// Sets the outcome, a value or an error, and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `outcome`, if a value or an error was set
    /// already; that one stays.
    pub fn set_result(&self, outcome: Result<T, E>) -> Result<(), AlreadySet<Result<T, E>>> {
        self.outcome.set(outcome).map_err(AlreadySet)?;
        let wakers = self.wakers().take();
        for waker in wakers {
            waker.wake();
        }
        Ok(())
    }

    /// Whether a value or an error has been set.
    pub fn is_ready(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Whether a value (not an error) has been set.
    pub fn is_successful(&self) -> bool {
        matches!(self.outcome.get(), Some(Ok(_)))
    }

    /// The outcome if it is set, without waiting: a borrow. Once set it
    /// never changes.
    pub fn peek(&self) -> Option<&Result<T, E>> {
        self.outcome.get()
    }

    /// Waits until a value or an error is set, and lends it: parks the green
    /// thread on a thread with a hub, blocks a plain thread.
    pub fn wait(&self) -> &Result<T, E> {
        wait_anywhere(self.wait_async(), None).unwrap_or_else(|()| unreachable!("no deadline"))
    }

    /// As [`wait`](Self::wait), giving up after `timeout`: `None` if nothing
    /// was set in time.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<&Result<T, E>> {
        let deadline = Instant::now().checked_add(timeout);
        wait_anywhere(self.wait_async(), deadline).ok()
    }

    /// A future of [`wait`](Self::wait), for async code on any executor.
    pub fn wait_async(&self) -> AsyncResultWait<'_, T, E> {
        AsyncResultWait { result: self, id: Wakers::id(), registered: false }
    }

    /// The outcome, if one was set, taking the `AsyncResult` apart.
    pub fn into_inner(self) -> Option<Result<T, E>> {
        self.outcome.into_inner()
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Waits until a value or an error is set, and returns a clone of it.
    ///
    /// # Errors
    ///
    /// A clone of the error, if an error was set.
    pub fn get(&self) -> Result<T, E> {
        self.wait().clone()
    }

    /// [`get`](Self::get), waiting at most `timeout`; `None` if nothing was
    /// set in time.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        self.wait_timeout(timeout).cloned()
    }

    /// A clone of the outcome if it is set, without waiting.
    pub fn try_get(&self) -> Option<Result<T, E>> {
        self.outcome.get().cloned()
    }
}

/// The future of [`AsyncResult::wait_async`]: ready with a borrow of the
/// outcome once it is set.
#[must_use = "a future does nothing unless polled"]
pub struct AsyncResultWait<'a, T, E> {
    result: &'a AsyncResult<T, E>,
    id: u64,
    /// Whether a waker of ours may be in the list.
    registered: bool,
}

impl<'a, T, E> Future for AsyncResultWait<'a, T, E> {
    type Output = &'a Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'a Result<T, E>> {
        let result = self.result;
        if let Some(outcome) = result.outcome.get() {
            return Poll::Ready(outcome);
        }
        let mut wakers = result.wakers();
        // Set since the look above? Its setter took the wakers already, or
        // is about to, under the lock we hold; see the protocol.
        if let Some(outcome) = result.outcome.get() {
            return Poll::Ready(outcome);
        }
        wakers.register(self.id, cx.waker());
        drop(wakers);
        self.registered = true;
        Poll::Pending
    }
}

impl<T, E> Drop for AsyncResultWait<'_, T, E> {
    fn drop(&mut self) {
        if self.registered {
            self.result.wakers().remove(self.id);
        }
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> AsyncResult<T, E> {
        AsyncResult::new()
    }
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("outcome", &self.outcome.get())
            .field("waiting", &self.wakers().len())
            .finish()
    }
}

impl<T, E> fmt::Debug for AsyncResultWait<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResultWait").finish_non_exhaustive()
    }
}
