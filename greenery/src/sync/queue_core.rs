//! The waiting logic of [`Queue`](super::Queue),
//! [`LifoQueue`](super::LifoQueue) and [`PriorityQueue`](super::PriorityQueue):
//! one [`Core`] over a [`Storage`] that decides the order.
//!
//! # Invariants
//!
//! - **Values live in the storage, never in a waiter.** A put that finds
//!   room pushes its value and wakes one getter; the getter pops a value only
//!   once it runs. A getter woken but killed (or timed out) before it runs
//!   takes nothing: the value stays in the storage, and the
//!   [`WaitQueue`] passes the unused wake-up on to the next getter. A putter
//!   keeps its value until it pushes it, so one killed while blocked leaves
//!   nothing behind.
//! - **One wake-up per change.** Each push wakes every peeker (a peek
//!   leaves the value for a getter), then one getter; each pop wakes one
//!   putter. A woken waiter that finds its condition gone again (a green
//!   thread that did not have to wait took the value or the room first)
//!   waits again, at the back of the line: wake-ups may be spurious, never
//!   lost.
//! - **Shutdown** wakes every getter, putter and peeker. Puts then fail
//!   (handing the value back); gets still drain what is left, then fail.
//! - **Tasks.** `unfinished` counts values put and not yet marked done with
//!   `task_done`; when it drops to zero every joiner is woken.
//!
//! Everything is on one hub (one OS thread): plain `Cell`s and `RefCell`s,
//! never borrowed across a wait.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

use super::queue_error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
use super::queue_iter::Receive;
use crate::hub::{Deadlock, WaitQueue, Wake};

/// Where a queue keeps its values: decides which comes out next.
pub(crate) trait Storage: Default {
    type Item;
    fn push(&mut self, item: Self::Item);
    /// Takes the value that comes out next.
    fn pop(&mut self) -> Option<Self::Item>;
    /// The value that comes out next.
    fn peek(&self) -> Option<&Self::Item>;
    fn len(&self) -> usize;
}

/// Why a blocking call stopped without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    TimedOut,
    Closed,
    Deadlock,
}

impl Stop {
    /// The error for a `put` (which has no deadline), with its value.
    pub(crate) fn put_error<T>(self, value: T) -> PutError<T> {
        match self {
            Stop::Closed => PutError::Closed(value),
            Stop::Deadlock => PutError::Deadlock(value),
            Stop::TimedOut => unreachable!("a wait without a deadline timed out"),
        }
    }

    pub(crate) fn put_timeout_error<T>(self, value: T) -> PutTimeoutError<T> {
        match self {
            Stop::TimedOut => PutTimeoutError::TimedOut(value),
            Stop::Closed => PutTimeoutError::Closed(value),
            Stop::Deadlock => PutTimeoutError::Deadlock(value),
        }
    }

    pub(crate) fn get_error(self) -> GetError {
        match self {
            Stop::Closed => GetError::Closed,
            Stop::Deadlock => GetError::Deadlock,
            Stop::TimedOut => unreachable!("a wait without a deadline timed out"),
        }
    }

    pub(crate) fn get_timeout_error(self) -> GetTimeoutError {
        match self {
            Stop::TimedOut => GetTimeoutError::TimedOut,
            Stop::Closed => GetTimeoutError::Closed,
            Stop::Deadlock => GetTimeoutError::Deadlock,
        }
    }
}

/// The deadline `timeout` from now (none if it is too far to represent).
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits in `queue` until `attempt` gives an outcome, the `deadline` passes
/// or waiting would deadlock. `attempt` runs first without waiting, then
/// after every wake-up (wake-ups may be spurious).
pub(crate) fn block_on<R>(
    queue: &WaitQueue,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Option<Result<R, Stop>>,
) -> Result<R, Stop> {
    loop {
        if let Some(outcome) = attempt() {
            return outcome;
        }
        match queue.wait(deadline) {
            Wake::Notified => {}
            Wake::TimedOut => return Err(Stop::TimedOut),
            Wake::Deadlock => return Err(Stop::Deadlock),
        }
    }
}

/// A `try_get` (or `try_peek`) from the attempt a blocking call makes:
/// nothing there is `Empty`.
pub(crate) fn try_outcome<T>(attempt: Option<Result<T, Stop>>) -> Result<T, TryGetError> {
    match attempt {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) => Err(TryGetError::Closed),
        None => Err(TryGetError::Empty),
    }
}

/// A queue's state and waiting logic; the public types wrap one.
pub(crate) struct Core<S> {
    items: RefCell<S>,
    capacity: Option<usize>,
    shut_down: Cell<bool>,
    getters: WaitQueue,
    putters: WaitQueue,
    peekers: WaitQueue,
    /// Values put and not yet marked done.
    unfinished: Cell<usize>,
    joiners: WaitQueue,
}

impl<S: Storage> Core<S> {
    /// # Panics
    ///
    /// If `capacity` is `Some(0)`: such a queue could never hold a value.
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        assert!(
            capacity != Some(0),
            "a queue bounded to 0 values could never hold one: use a Channel for a rendezvous"
        );
        Core {
            items: RefCell::new(S::default()),
            capacity,
            shut_down: Cell::new(false),
            getters: WaitQueue::new("Queue.get"),
            putters: WaitQueue::new("Queue.put"),
            peekers: WaitQueue::new("Queue.peek"),
            unfinished: Cell::new(0),
            joiners: WaitQueue::new("Queue.join"),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    pub(crate) fn is_full(&self) -> bool {
        self.capacity.is_some_and(|capacity| self.len() >= capacity)
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut_down.get()
    }

    /// Pushes `value` if there is room; hands it back otherwise.
    fn push(&self, value: S::Item) -> Result<(), S::Item> {
        if self.is_full() {
            return Err(value);
        }
        self.items.borrow_mut().push(value);
        self.unfinished.set(self.unfinished.get() + 1);
        // Peekers first: they run first, and see the value before a getter
        // takes it.
        self.peekers.notify_all();
        self.getters.notify_one();
        Ok(())
    }

    fn pop(&self) -> Option<S::Item> {
        let value = self.items.borrow_mut().pop()?;
        self.putters.notify_one();
        Some(value)
    }

    /// Puts `value`, waiting for room until `deadline`; hands it back with
    /// the reason if it could not.
    pub(crate) fn put(&self, value: S::Item, deadline: Option<Instant>) -> Result<(), (Stop, S::Item)> {
        let mut value = Some(value);
        let outcome = block_on(&self.putters, deadline, || {
            if self.shut_down.get() {
                return Some(Err(Stop::Closed));
            }
            match self.push(value.take().expect("the value is put once")) {
                Ok(()) => Some(Ok(())),
                Err(back) => {
                    value = Some(back);
                    None
                }
            }
        });
        outcome.map_err(|stop| (stop, value.take().expect("a value not put is still here")))
    }

    pub(crate) fn try_put(&self, value: S::Item) -> Result<(), TryPutError<S::Item>> {
        if self.shut_down.get() {
            return Err(TryPutError::Closed(value));
        }
        self.push(value).map_err(TryPutError::Full)
    }

    /// Takes the next value, waiting for one until `deadline`.
    pub(crate) fn get(&self, deadline: Option<Instant>) -> Result<S::Item, Stop> {
        block_on(&self.getters, deadline, || self.attempt_get())
    }

    fn attempt_get(&self) -> Option<Result<S::Item, Stop>> {
        match self.pop() {
            Some(value) => Some(Ok(value)),
            None if self.shut_down.get() => Some(Err(Stop::Closed)),
            None => None,
        }
    }

    pub(crate) fn try_get(&self) -> Result<S::Item, TryGetError> {
        try_outcome(self.attempt_get())
    }

    /// A clone of the next value, waiting for one until `deadline`.
    pub(crate) fn peek(&self, deadline: Option<Instant>) -> Result<S::Item, Stop>
    where
        S::Item: Clone,
    {
        block_on(&self.peekers, deadline, || self.attempt_peek())
    }

    fn attempt_peek(&self) -> Option<Result<S::Item, Stop>>
    where
        S::Item: Clone,
    {
        match self.items.borrow().peek() {
            Some(value) => Some(Ok(value.clone())),
            None if self.shut_down.get() => Some(Err(Stop::Closed)),
            None => None,
        }
    }

    pub(crate) fn try_peek(&self) -> Result<S::Item, TryGetError>
    where
        S::Item: Clone,
    {
        try_outcome(self.attempt_peek())
    }

    pub(crate) fn shutdown(&self) {
        self.shut_down.set(true);
        self.getters.notify_all();
        self.putters.notify_all();
        self.peekers.notify_all();
    }

    /// Shuts down and takes every value left, in the order gets would have
    /// (each counts as a task done).
    pub(crate) fn shutdown_immediate(&self) -> Vec<S::Item> {
        self.shut_down.set(true);
        let mut left = Vec::with_capacity(self.len());
        loop {
            let value = self.items.borrow_mut().pop();
            match value {
                Some(value) => left.push(value),
                None => break,
            }
        }
        // `task_done` may have run ahead of the gets: never below zero.
        self.unfinished.set(self.unfinished.get().saturating_sub(left.len()));
        if self.unfinished.get() == 0 {
            self.joiners.notify_all();
        }
        self.shutdown();
        left
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let unfinished = self.unfinished.get().checked_sub(1).ok_or(TaskDoneError)?;
        self.unfinished.set(unfinished);
        if unfinished == 0 {
            self.joiners.notify_all();
        }
        Ok(())
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        self.unfinished.get()
    }

    /// Waits until every value put was marked done; `Ok(false)` if the
    /// deadline passed first.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        let outcome = block_on(&self.joiners, deadline, || (self.unfinished.get() == 0).then_some(Ok(())));
        match outcome {
            Ok(()) => Ok(true),
            Err(Stop::TimedOut) => Ok(false),
            Err(_) => Err(Deadlock),
        }
    }

    /// The fields of the queue's `Debug`.
    pub(crate) fn fmt_debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .field("unfinished_tasks", &self.unfinished.get())
            .field("shut_down", &self.shut_down.get())
            .finish()
    }
}

impl<S: Storage> Receive<S::Item> for Core<S> {
    fn receive(&self) -> Result<S::Item, GetError> {
        self.get(None).map_err(Stop::get_error)
    }

    fn try_receive(&self) -> Result<S::Item, TryGetError> {
        self.try_get()
    }
}
