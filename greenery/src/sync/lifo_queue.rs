//! [`LifoQueue`]: last in, first out (gevent's `LifoQueue`).

use super::queue_api::queue_api;
use super::queue_core::{Core, Storage};

/// A last-in, first-out queue (a stack) between green threads (gevent's
/// `LifoQueue`): [`get`](LifoQueue::get) takes the value put most recently.
///
/// Everything else is as for [`Queue`](super::Queue): bounded or not,
/// waiting served in order, shutdown, tasks and [`join`](LifoQueue::join),
/// and nothing put is ever lost.
///
/// ```
/// use greenery::sync::LifoQueue;
///
/// let stack = LifoQueue::unbounded();
/// for n in 1..=3 {
///     stack.put(n).unwrap();
/// }
/// assert_eq!(stack.peek(), Ok(3));
/// assert_eq!(stack.try_iter().collect::<Vec<_>>(), [3, 2, 1]);
/// ```
///
/// The queue is `!Send` and `!Sync`, like [`Queue`](super::Queue).
pub struct LifoQueue<T> {
    core: Core<Vec<T>>,
}

queue_api!(LifoQueue, []);

/// Last in, first out: in and out at the end.
impl<T> Storage for Vec<T> {
    type Item = T;

    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }

    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }

    fn peek(&self) -> Option<&T> {
        self.last()
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }
}
