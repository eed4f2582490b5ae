//! An [`Event`] and an [`AsyncResult`] that are `Send + Sync`: set on any
//! thread, waited for on any number of others.
//!
//! [`sync::Event`](super::Event) and [`sync::AsyncResult`](super::AsyncResult)
//! belong to one hub: they wake green threads of their own OS thread, at no
//! more cost than a few stores. These do the same across hubs (one per OS
//! thread, see [`run_on`](crate::hub::run_on)), plain OS threads and async
//! code, behind a mutex:
//!
//! - on a green thread (or a thread's main greenlet, when the thread has a
//!   hub), `wait` parks only that green thread: its hub runs the others;
//! - on a plain OS thread, it blocks the thread;
//! - in async code, `wait_async` is a future, for any executor.
//!
//! Share one through an [`Arc`](std::sync::Arc). Waiting for another thread
//! may last for ever, so a green thread waiting here never makes its hub
//! report a [`Deadlock`](crate::hub::Deadlock); the `*_timeout` forms bound
//! the wait, and a [`Timeout`](crate::Timeout) or a kill reaches a green
//! thread that waits.
//!
//! ```
//! use std::sync::Arc;
//! use greenery::sync::threadsafe::Event;
//!
//! let go = Arc::new(Event::new());
//! // Two hubs of their own threads, three green threads each, all waiting.
//! let hubs: Vec<_> = (0..2)
//!     .map(|_| {
//!         let go = go.clone();
//!         std::thread::spawn(move || {
//!             let waiters: Vec<_> = (0..3)
//!                 .map(|_| {
//!                     let go = go.clone();
//!                     greenery::spawn(move || go.wait())
//!                 })
//!                 .collect();
//!             greenery::hub::joinall(&waiters, None, true).unwrap();
//!         })
//!     })
//!     .collect();
//! go.set(); // from this thread: every waiter wakes on its own hub
//! for hub in hubs {
//!     hub.join().unwrap();
//! }
//! ```

mod async_result;
mod event;

pub use async_result::{AsyncResult, AsyncResultWait};
pub use event::{Event, EventWait};
