//! The errors of the queues and of [`Channel`](super::Channel): one type per
//! kind of call, so that a `match` lists only what that call can return.
//!
//! | call | error | variants |
//! | --- | --- | --- |
//! | `put` | [`PutError<T>`] | `Closed(T)`, `Deadlock(T)` |
//! | `put_timeout` | [`PutTimeoutError<T>`] | `TimedOut(T)`, `Closed(T)`, `Deadlock(T)` |
//! | `try_put` | [`TryPutError<T>`] | `Full(T)`, `Closed(T)` |
//! | `get`, `peek` | [`GetError`] | `Closed`, `Deadlock` |
//! | `get_timeout`, `peek_timeout` | [`GetTimeoutError`] | `TimedOut`, `Closed`, `Deadlock` |
//! | `try_get`, `try_peek` | [`TryGetError`] | `Empty`, `Closed` |
//! | `task_done` | [`TaskDoneError`] | |
//!
//! A failed put hands its value back in the error (`into_inner`): nothing
//! given to a queue is lost. `Debug` does not print the value, so the errors
//! are `Debug` (and [`Error`]) whatever `T` is.

use std::error::Error;
use std::fmt;

use crate::hub::Deadlock;

/// Why [`put`](super::Queue::put) failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue (or channel) was shut down before the value could be put.
    Closed(T),
    /// Waiting for room (or for a getter) would block forever.
    Deadlock(T),
}

/// Why [`put_timeout`](super::Queue::put_timeout) failed; the value is
/// handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The time ran out before there was room (or, on a channel, before a
    /// getter took the value).
    TimedOut(T),
    /// The queue (or channel) was shut down before the value could be put.
    Closed(T),
    /// Waiting would block forever.
    Deadlock(T),
}

/// Why [`try_put`](super::Queue::try_put) failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is full (on a channel: no getter is waiting).
    Full(T),
    /// The queue (or channel) is shut down.
    Closed(T),
}

/// Why [`get`](super::Queue::get) (or `peek`) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue (or channel) is shut down and has nothing left.
    Closed,
    /// Waiting for a value would block forever.
    Deadlock,
}

/// Why [`get_timeout`](super::Queue::get_timeout) (or `peek_timeout`) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetTimeoutError {
    /// The time ran out before a value came.
    TimedOut,
    /// The queue (or channel) is shut down and has nothing left.
    Closed,
    /// Waiting would block forever.
    Deadlock,
}

/// Why [`try_get`](super::Queue::try_get) (or `try_peek`) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryGetError {
    /// The queue is empty (on a channel: no putter is waiting).
    Empty,
    /// The queue (or channel) is shut down and has nothing left.
    Closed,
}

/// [`task_done`](super::Queue::task_done) was called more times than values
/// were put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskDoneError;

impl<T> PutError<T> {
    /// The value that could not be put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Closed(value) | PutError::Deadlock(value) => value,
        }
    }

    /// Whether the queue (or channel) was shut down.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// Whether waiting would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, PutError::Deadlock(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// The value that could not be put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::TimedOut(value)
            | PutTimeoutError::Closed(value)
            | PutTimeoutError::Deadlock(value) => value,
        }
    }

    /// Whether the time ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::TimedOut(_))
    }

    /// Whether the queue (or channel) was shut down.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutTimeoutError::Closed(_))
    }

    /// Whether waiting would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, PutTimeoutError::Deadlock(_))
    }
}

impl<T> TryPutError<T> {
    /// The value that could not be put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(value) | TryPutError::Closed(value) => value,
        }
    }

    /// Whether the queue was full (or no getter was waiting on the channel).
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue (or channel) was shut down.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPutError::Closed(_))
    }
}

impl GetTimeoutError {
    /// Whether the time ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::TimedOut)
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(err: PutError<T>) -> Self {
        match err {
            PutError::Closed(value) => PutTimeoutError::Closed(value),
            PutError::Deadlock(value) => PutTimeoutError::Deadlock(value),
        }
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(err: GetError) -> Self {
        match err {
            GetError::Closed => GetTimeoutError::Closed,
            GetError::Deadlock => GetTimeoutError::Deadlock,
        }
    }
}

const CLOSED_PUT: &str = "cannot put: the queue is shut down";
const CLOSED_GET: &str = "cannot get: the queue is shut down and empty";

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Closed(_) => f.write_str(CLOSED_PUT),
            PutError::Deadlock(_) => write!(f, "cannot put: {Deadlock}"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::TimedOut(_) => {
                f.write_str("cannot put: timed out before the value could be put")
            }
            PutTimeoutError::Closed(_) => f.write_str(CLOSED_PUT),
            PutTimeoutError::Deadlock(_) => write!(f, "cannot put: {Deadlock}"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str(
                "cannot put without waiting: the queue is full (or no getter is waiting on the channel)",
            ),
            TryPutError::Closed(_) => f.write_str(CLOSED_PUT),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Closed => f.write_str(CLOSED_GET),
            GetError::Deadlock => write!(f, "cannot get: {Deadlock}"),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::TimedOut => f.write_str("cannot get: timed out waiting for a value"),
            GetTimeoutError::Closed => f.write_str(CLOSED_GET),
            GetTimeoutError::Deadlock => write!(f, "cannot get: {Deadlock}"),
        }
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str(
                "cannot get without waiting: the queue is empty (or no putter is waiting on the channel)",
            ),
            TryGetError::Closed => f.write_str(CLOSED_GET),
        }
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

/// `Debug` names the variant and leaves the value out (`Closed(..)`), so it
/// needs no `T: Debug`.
macro_rules! debug_without_value {
    ($($error:ident { $($variant:ident),* })*) => {$(
        impl<T> fmt::Debug for $error<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($error::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)*
                }
            }
        }

        impl<T> Error for $error<T> {}
    )*};
}

debug_without_value! {
    PutError { Closed, Deadlock }
    PutTimeoutError { TimedOut, Closed, Deadlock }
    TryPutError { Full, Closed }
}

impl Error for GetError {}
impl Error for GetTimeoutError {}
impl Error for TryGetError {}
impl Error for TaskDoneError {}
