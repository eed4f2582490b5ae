//! Synchronisation between green threads of one hub (gevent's `queue`,
//! `event` and `lock` modules): blocking one green thread switches to the
//! others, never blocks the OS thread.
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
//! Every type here is `!Send` and `!Sync`: it wakes green threads of its
//! own thread's hub, and a green thread never leaves its OS thread. Another
//! thread reaches them through a [`Handle`](crate::hub::Handle).

mod channel;
mod lifo_queue;
mod priority_queue;
mod queue;
mod queue_api;
mod queue_core;
mod queue_error;
mod queue_iter;

pub use channel::Channel;
pub use lifo_queue::LifoQueue;
pub use priority_queue::PriorityQueue;
pub use queue::Queue;
pub use queue_error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
pub use queue_iter::{Iter, TryIter};
