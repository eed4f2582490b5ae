//! Synchronisation between green threads of one hub (gevent's `gevent.event`
//! and `gevent.lock`).
//!
//! - [`Event`]: a flag that green threads wait for until it is set.
//! - [`AsyncResult`]: a value or an error, set once, that many green threads
//!   wait for.
//! - [`Semaphore`] and [`BoundedSemaphore`]: counting semaphores with
//!   first-come, first-served wake-ups.
//! - [`Mutex`]: a lock around a value, handed to waiters in the order they
//!   came.
//! - [`RLock`]: a lock that the green thread holding it may take again.
//! - [`Condvar`]: waiting for a condition on the value of a [`Mutex`].
//!
//! Blocking here blocks only the calling green thread: it parks, and the hub
//! runs the others until it is woken. Every blocking call comes in three
//! forms: one that waits as long as it takes and returns
//! [`Deadlock`](crate::hub::Deadlock) if that would be forever (nothing is
//! left to wake it), a `*_timeout` form that also gives up when the time
//! runs out, and a `try_*` form (where it makes sense) that never blocks.
//! They can also be bounded by a [`Timeout`](crate::Timeout), and the green
//! thread can be killed while it waits: either way it unwinds out of the
//! call and gives up its place in line, and whatever had been handed to it
//! (a permit, the lock) goes to the next in line.
//!
//! These types are `!Send` and `!Sync`: a green thread never leaves its OS
//! thread, and neither do the things it waits on. To signal a green thread
//! from another OS thread, run the signalling code on its hub with
//! [`Handle`](crate::hub::Handle).

mod async_result;
mod condvar;
mod event;
mod mutex;
mod rlock;
mod semaphore;

use std::time::{Duration, Instant};

pub use async_result::{AlreadySet, AsyncResult, GetError};
pub use condvar::Condvar;
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use rlock::{NotOwner, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit, TooManyReleases};

/// The deadline `timeout` from now; `None` (no deadline) if it is too far to
/// represent.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
