//! [`Queue`]: first in, first out (gevent's `Queue` and `JoinableQueue`).

use std::collections::VecDeque;

use super::queue_api::queue_api;
use super::queue_core::{Core, Storage};

/// A first-in, first-out queue between green threads (gevent's
/// `gevent.queue.Queue`, joinable like its `JoinableQueue`).
///
/// - **Bounded or not.** [`Queue::bounded`] holds at most so many values:
///   [`put`](Queue::put) waits while it is full, which slows producers down
///   to the pace of consumers. [`Queue::unbounded`] never makes a put wait.
/// - **Waiting.** [`get`](Queue::get) waits while the queue is empty. Green
///   threads waiting to put, and those waiting to get, are each served in the
///   order they began to wait. (A call that finds a value, or room, takes it
///   at once, even if a waiter was woken for it and has not run yet; that
///   waiter then waits again.) Each blocking call has a `_timeout` variant
///   and a `try_` variant that never waits.
/// - **Nothing is lost.** A value put is either taken by a get or handed
///   back to the putter in the error. A getter killed while it waits takes
///   nothing (a value meant for it goes to the next getter); a putter killed
///   while it waits never put its value.
/// - **Shutdown.** [`shutdown`](Queue::shutdown) wakes every waiter; puts
///   then fail, handing the value back, and gets drain what is left, then
///   fail. Iterating (`for value in &queue`) ends there.
/// - **Tasks.** Every value put is an unfinished task until a consumer calls
///   [`task_done`](Queue::task_done); [`join`](Queue::join) waits until none
///   is left (Python's `Queue.join`).
///
/// [`LifoQueue`](super::LifoQueue) and
/// [`PriorityQueue`](super::PriorityQueue) have the same methods and take
/// values out in another order; [`Channel`](super::Channel) is the rendezvous
/// (a queue holding nothing).
///
/// Producers and consumers share it through an [`Rc`](std::rc::Rc):
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::Queue;
///
/// let queue = Rc::new(Queue::bounded(4));
/// let producers: Vec<_> = (0..3)
///     .map(|p| {
///         let queue = queue.clone();
///         greenery::spawn(move || {
///             for n in 0..10 {
///                 queue.put(p * 100 + n).unwrap(); // waits while 4 are queued
///             }
///         })
///     })
///     .collect();
/// let consumer = greenery::spawn({
///     let queue = queue.clone();
///     move || queue.iter().count() // until shut down and drained
/// });
/// greenery::hub::joinall(&producers, None, false).unwrap();
/// queue.shutdown();
/// assert_eq!(consumer.get().unwrap(), 30);
/// ```
///
/// The queue is `!Send` and `!Sync`: it belongs to the hub of its thread,
/// whose green threads it wakes (another thread reaches them through a
/// [`Handle`](crate::hub::Handle)).
pub struct Queue<T> {
    core: Core<VecDeque<T>>,
}

queue_api!(Queue, []);

/// First in, first out: in at the back, out at the front.
impl<T> Storage for VecDeque<T> {
    type Item = T;

    fn push(&mut self, item: T) {
        self.push_back(item);
    }

    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }

    fn peek(&self) -> Option<&T> {
        self.front()
    }

    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}
