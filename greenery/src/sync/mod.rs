//! Synchronisation between green threads of one hub (gevent's `event`,
//! `lock`, `queue` and `pool` modules): blocking one green thread switches to
//! the others, never blocks the OS thread.
//!
//! Events and locks:
//!
//! - [`Event`]: a flag that green threads wait for until it is set.
//! - [`AsyncResult`]: a value or an error, set once, that many green threads
//!   wait for ([`AsyncResultError`], [`AlreadySet`]).
//! - [`Semaphore`] and [`BoundedSemaphore`]: counting semaphores with
//!   first-come, first-served wake-ups.
//! - [`Mutex`]: a lock around a value, handed to waiters in the order they
//!   came.
//! - [`RLock`]: a lock that the green thread holding it may take again.
//! - [`Condvar`]: waiting for a condition on the value of a [`Mutex`].
//!
//! Queues:
//!
//! - [`Queue`], [`LifoQueue`], [`PriorityQueue`]: queues of values, bounded
//!   or not, in first-in-first-out, last-in-first-out or greatest-first
//!   order, with shutdown and joinable tasks (gevent's `Queue`,
//!   `JoinableQueue`, `LifoQueue`, `PriorityQueue`). Their errors hand the
//!   value back: [`PutError`], [`PutTimeoutError`], [`TryPutError`],
//!   [`GetError`], [`GetTimeoutError`], [`TryGetError`], [`TaskDoneError`].
//! - [`Channel`]: a rendezvous, where a put waits for a getter to take the
//!   value (gevent's `Channel`).
//!
//! Groups of green threads:
//!
//! - [`Group`]: a set of green threads, of any value types, that leave it as
//!   they finish; wait for all of them, kill all of them, map a function
//!   over items with one green thread per item.
//! - [`Pool`]: a group with at most a given number of members at once;
//!   spawning into a full pool waits for a free slot, first come, first
//!   served. Its errors hand the closure back: [`SpawnError`].
//! - [`Imap`] and [`ImapUnordered`]: the lazy iterators of results of
//!   [`Pool::imap`] and [`Pool::imap_unordered`] (and the same on a group).
//!
//! Blocking here blocks only the calling green thread: it parks, and the hub
//! runs the others until it is woken. Every blocking call comes in three
//! forms: one that waits as long as it takes and returns
//! [`Deadlock`](crate::hub::Deadlock) (in one form or another) if that would
//! be forever (nothing is left to wake it), a `*_timeout` form that also
//! gives up when the time runs out, and a `try_*` form (where it makes sense)
//! that never blocks. They can also be bounded by a
//! [`Timeout`](crate::Timeout), and the green thread can be killed while it
//! waits: either way it unwinds out of the call and gives up its place in
//! line, and whatever had been handed to it (a permit, the lock, a pool's
//! slot, a value) goes to the next in line. Nothing put into a queue is lost:
//! it is received, or handed back in an error.
//!
//! These types are `!Send` and `!Sync`: a green thread never leaves its OS
//! thread, and neither do the things it waits on. Between threads (hubs on
//! several cores, plain OS threads, async code), [`mpsc`] has channels whose
//! ends are `Send`: a blocking send or receive parks only the green thread
//! (or blocks a plain thread); [`threadsafe`] has an `Event` and an
//! `AsyncResult` that are `Send + Sync`, set on any thread and waited for
//! on any other, hub or not. Or the signalling code runs on the waiters'
//! hub with [`Handle`](crate::hub::Handle).

mod anywhere;
mod async_result;
mod channel;
mod condvar;
mod event;
mod group;
mod imap;
mod lifo_queue;
mod members;
pub mod mpsc;
mod mutex;
mod pool;
mod priority_queue;
mod queue;
mod queue_api;
mod queue_core;
mod queue_error;
mod queue_iter;
mod rlock;
mod semaphore;
pub mod threadsafe;
mod tracker;

use std::time::{Duration, Instant};

pub use async_result::{AlreadySet, AsyncResult, AsyncResultError};
pub use channel::Channel;
pub use condvar::Condvar;
pub use event::Event;
pub use group::Group;
pub use imap::{Imap, ImapUnordered};
pub use lifo_queue::LifoQueue;
pub use mutex::{Mutex, MutexGuard};
pub use pool::{Pool, SpawnError};
pub use priority_queue::PriorityQueue;
pub use queue::Queue;
pub use queue_error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
pub use queue_iter::{Iter, TryIter};
pub use rlock::{NotOwner, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit, TooManyReleases};

/// The deadline `timeout` from now; `None` (no deadline) if it is too far to
/// represent.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
