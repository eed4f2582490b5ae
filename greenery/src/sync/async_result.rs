//! [`AsyncResult`]: a value or an error, set once, that green threads wait
//! for (gevent's `AsyncResult`).
//!
//! The outcome lives in a [`OnceCell`]: once set it never changes, so
//! [`peek`](AsyncResult::peek) can lend it out for as long as the
//! `AsyncResult` lives, and waiters need no count of sets: after any wake-up
//! they check whether it is set.

use std::cell::OnceCell;
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::{Deadlock, WaitQueue, Wake};

/// A value or an error that is set once and that any number of green
/// threads can wait for (gevent's `AsyncResult`): a one-shot future for
/// green threads.
///
/// [`set`](Self::set) or [`set_error`](Self::set_error) fills it and wakes
/// every waiter; [`get`](Self::get) waits for it and returns a clone of the
/// value, or the error. Waiting for it and borrowing it is
/// [`wait`](Self::wait) (gevent's `wait`, which returns the value); looking
/// without waiting is
/// [`peek`](Self::peek) (a borrow) or [`try_get`](Self::try_get) (a clone).
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::{AsyncResult, AsyncResultError};
///
/// let answer: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
/// let readers: Vec<_> = (0..2)
///     .map(|_| {
///         let answer = answer.clone();
///         greenery::spawn(move || answer.get())
///     })
///     .collect();
/// greenery::spawn({
///     let answer = answer.clone();
///     move || answer.set(42).unwrap()
/// });
/// for reader in readers {
///     assert_eq!(reader.get().unwrap(), Ok(42));
/// }
///
/// let failed: AsyncResult<u32, String> = AsyncResult::new();
/// failed.set_error("no answer".to_string()).unwrap();
/// assert_eq!(failed.get(), Err(AsyncResultError::Failed("no answer".to_string())));
/// ```
///
/// # Why `get` returns `Result<T, AsyncResultError<E>>`
///
/// The outcome is itself a `Result<T, E>`, and waiting for it can fail too
/// ([`Deadlock`]). `get` folds the two failures into one error,
/// [`AsyncResultError`], so the common case is a single `?` (as
/// [`JoinHandle::get`](crate::JoinHandle::get) folds a deadlock into its
/// `JoinError`), while a `match` still tells the stored error
/// ([`AsyncResultError::Failed`]) from the deadlock. The value and the error are
/// cloned for each caller, since many green threads may get them; for types
/// that are not `Clone`, store an `Rc`, borrow with [`peek`](Self::peek),
/// or take them with [`into_inner`](Self::into_inner).
///
/// `AsyncResult` is `!Send` and `!Sync`: it belongs to the green threads of
/// one OS thread.
pub struct AsyncResult<T, E> {
    outcome: OnceCell<Result<T, E>>,
    waiters: WaitQueue,
}

impl<T, E> AsyncResult<T, E> {
    /// An `AsyncResult` with nothing set.
    pub const fn new() -> AsyncResult<T, E> {
        AsyncResult { outcome: OnceCell::new(), waiters: WaitQueue::new("AsyncResult") }
    }

    /// Sets the value, and wakes every green thread waiting (in the order
    /// they began to wait).
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `value`, if a value or an error was set
    /// already; that one stays.
    ///
    /// ```
    /// let result: greenery::sync::AsyncResult<&str, ()> = greenery::sync::AsyncResult::new();
    /// assert!(result.set("first").is_ok());
    /// assert_eq!(result.set("second").unwrap_err().into_inner(), "second");
    /// assert_eq!(result.peek(), Some(&Ok("first")));
    /// ```
    pub fn set(&self, value: T) -> Result<(), AlreadySet<T>> {
        if self.is_ready() {
            return Err(AlreadySet(value));
        }
        self.fill(Ok(value));
        Ok(())
    }

    /// Sets the error (gevent's `set_exception`), and wakes every green
    /// thread waiting.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `error`, if a value or an error was set
    /// already; that one stays.
    pub fn set_error(&self, error: E) -> Result<(), AlreadySet<E>> {
        if self.is_ready() {
            return Err(AlreadySet(error));
        }
        self.fill(Err(error));
        Ok(())
    }

    /// Sets the outcome, a value or an error, and wakes every green thread
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`AlreadySet`], holding `outcome`, if a value or an error was set
    /// already; that one stays.
    pub fn set_result(&self, outcome: Result<T, E>) -> Result<(), AlreadySet<Result<T, E>>> {
        if self.is_ready() {
            return Err(AlreadySet(outcome));
        }
        self.fill(outcome);
        Ok(())
    }

    /// Stores the outcome (nothing is set yet) and wakes the waiters.
    fn fill(&self, outcome: Result<T, E>) {
        let stored = self.outcome.set(outcome);
        debug_assert!(stored.is_ok());
        self.waiters.notify_all();
    }

    /// Whether a value or an error has been set.
    pub fn is_ready(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Whether a value (not an error) has been set.
    pub fn is_successful(&self) -> bool {
        matches!(self.outcome.get(), Some(Ok(_)))
    }

    /// The outcome if it is set, without waiting: a borrow, for any `T` and
    /// `E`. Once set it never changes.
    pub fn peek(&self) -> Option<&Result<T, E>> {
        self.outcome.get()
    }

    /// Blocks until a value or an error is set, and lends it (gevent's
    /// `wait`, which returns the value); returns at once if one is set.
    /// (gevent's `wait` returns `None` when an error was set; this lends the
    /// error.)
    ///
    /// ```
    /// use std::rc::Rc;
    /// use greenery::sync::AsyncResult;
    ///
    /// let result: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
    /// greenery::spawn({
    ///     let result = result.clone();
    ///     move || result.set(7).unwrap()
    /// });
    /// assert_eq!(result.wait(), Ok(&Ok(7)));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if nothing could ever set one.
    pub fn wait(&self) -> Result<&Result<T, E>, Deadlock> {
        self.wait_until(None)?;
        Ok(self.outcome.get().expect("waited until it was set"))
    }

    /// Blocks until a value or an error is set or `timeout` has passed, and
    /// lends it; `None` if the time ran out first (gevent's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let result: greenery::sync::AsyncResult<u8, ()> = greenery::sync::AsyncResult::new();
    /// assert_eq!(result.wait_timeout(Duration::from_millis(5)), Ok(None));
    /// result.set_error(()).unwrap();
    /// assert_eq!(result.wait_timeout(Duration::from_millis(5)), Ok(Some(&Err(()))));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if nothing could ever set one, nor the time pass.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<&Result<T, E>>, Deadlock> {
        self.wait_until(super::deadline(timeout))?;
        Ok(self.outcome.get())
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        while !self.is_ready() {
            match self.waiters.wait(deadline) {
                Wake::Notified => {}
                Wake::TimedOut => return Ok(self.is_ready()),
                Wake::Deadlock => return Err(Deadlock),
            }
        }
        Ok(true)
    }

    /// The outcome, if one was set, taking the `AsyncResult` apart.
    pub fn into_inner(self) -> Option<Result<T, E>> {
        self.outcome.into_inner()
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Blocks until a value or an error is set, and returns a clone of it.
    ///
    /// # Errors
    ///
    /// [`AsyncResultError::Failed`] with a clone of the error, if an error was set;
    /// [`AsyncResultError::Deadlock`] if nothing could ever set one.
    pub fn get(&self) -> Result<T, AsyncResultError<E>> {
        self.wait_until(None)?;
        self.cloned()
    }

    /// [`get`](Self::get), waiting at most `timeout`; `Ok(None)` if the time
    /// ran out first.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let result: greenery::sync::AsyncResult<u8, ()> = greenery::sync::AsyncResult::new();
    /// assert_eq!(result.get_timeout(Duration::from_millis(5)), Ok(None));
    /// result.set(7).unwrap();
    /// assert_eq!(result.get_timeout(Duration::from_millis(5)), Ok(Some(7)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, AsyncResultError<E>> {
        if !self.wait_until(super::deadline(timeout))? {
            return Ok(None);
        }
        self.cloned().map(Some)
    }

    /// A clone of the outcome if it is set, without waiting (gevent's
    /// `get_nowait`, which raises `Timeout` where this returns `None`).
    pub fn try_get(&self) -> Option<Result<T, E>> {
        self.outcome.get().cloned()
    }

    fn cloned(&self) -> Result<T, AsyncResultError<E>> {
        match self.outcome.get() {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(error)) => Err(AsyncResultError::Failed(error.clone())),
            None => unreachable!("waited until it was set"),
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
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

/// Why [`AsyncResult::get`] returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsyncResultError<E> {
    /// The `AsyncResult` was set to this error (a clone of it).
    Failed(E),
    /// Nothing could ever set the `AsyncResult`: waiting would block forever.
    Deadlock,
}

impl<E> AsyncResultError<E> {
    /// The error that was set, if that is what this is.
    pub fn into_failed(self) -> Option<E> {
        match self {
            AsyncResultError::Failed(error) => Some(error),
            AsyncResultError::Deadlock => None,
        }
    }

    /// Whether waiting would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, AsyncResultError::Deadlock)
    }
}

impl<E> From<Deadlock> for AsyncResultError<E> {
    fn from(_: Deadlock) -> AsyncResultError<E> {
        AsyncResultError::Deadlock
    }
}

/// Shows the error that was set as it is (its message is the message), or
/// the deadlock.
impl<E: fmt::Display> fmt::Display for AsyncResultError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncResultError::Failed(error) => error.fmt(f),
            AsyncResultError::Deadlock => Deadlock.fmt(f),
        }
    }
}

/// Transparent: the error that was set stands for itself, so its source is
/// this one's.
impl<E: Error> Error for AsyncResultError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AsyncResultError::Failed(error) => error.source(),
            AsyncResultError::Deadlock => None,
        }
    }
}

/// An [`AsyncResult`] was set already: it holds the value (or error) that
/// was passed in and not stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlreadySet<V>(pub V);

impl<V> AlreadySet<V> {
    /// The value that was not stored.
    pub fn into_inner(self) -> V {
        self.0
    }
}

impl<V> fmt::Debug for AlreadySet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlreadySet(..)")
    }
}

impl<V> fmt::Display for AlreadySet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the AsyncResult is set already: a value or an error is set only once")
    }
}

impl<V> Error for AlreadySet<V> {}
