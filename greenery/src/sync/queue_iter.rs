//! [`Iter`] and [`TryIter`]: iterating over what a queue or a
//! [`Channel`](super::Channel) hands out.

use std::fmt;
use std::iter::FusedIterator;

use super::queue_error::{GetError, TryGetError};

/// What the iterators need from a queue or a channel.
pub(crate) trait Receive<T> {
    /// A blocking get.
    fn receive(&self) -> Result<T, GetError>;
    /// A get that never blocks.
    fn try_receive(&self) -> Result<T, TryGetError>;
}

/// A blocking iterator over the values of a queue or a channel: each `next`
/// is a `get`. It ends once the queue is shut down and drained.
///
/// It also ends if waiting for the next value would block forever (nothing
/// is left that could put one; only the main greenlet is told this, see
/// [`Deadlock`](crate::hub::Deadlock)). [`deadlocked`](Iter::deadlocked) says
/// whether that is why it ended.
///
/// Made by `iter` (e.g. [`Queue::iter`](super::Queue::iter)) or by a `for`
/// loop over a reference to the queue:
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::Queue;
///
/// let queue = Rc::new(Queue::bounded(2));
/// let producer = greenery::spawn({
///     let queue = queue.clone();
///     move || {
///         for n in 1..=5 {
///             queue.put(n).unwrap(); // waits while two are in the queue
///         }
///         queue.shutdown(); // ends the loop below, once it has the five
///     }
/// });
/// let mut sum = 0;
/// for n in &*queue {
///     sum += n;
/// }
/// assert_eq!(sum, 15);
/// producer.join().unwrap();
/// ```
pub struct Iter<'a, T> {
    source: &'a dyn Receive<T>,
    deadlocked: bool,
}

impl<'a, T> Iter<'a, T> {
    pub(crate) fn new(source: &'a dyn Receive<T>) -> Self {
        Iter { source, deadlocked: false }
    }

    /// Whether the iteration ended because waiting for the next value would
    /// have blocked forever, rather than because the queue was shut down and
    /// drained.
    pub fn deadlocked(&self) -> bool {
        self.deadlocked
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.deadlocked {
            return None;
        }
        match self.source.receive() {
            Ok(value) => Some(value),
            Err(GetError::Closed) => None,
            Err(GetError::Deadlock) => {
                self.deadlocked = true;
                None
            }
        }
    }
}

/// Once shut down and drained, a queue stays so; a deadlock is remembered.
impl<T> FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("deadlocked", &self.deadlocked).finish_non_exhaustive()
    }
}

/// An iterator over the values a queue or a channel can hand out without
/// waiting: each `next` is a `try_get`. It ends at the first value that is
/// not there (it may yield more later, if values were put since).
///
/// ```
/// let queue = greenery::sync::Queue::unbounded();
/// queue.put('a').unwrap();
/// queue.put('b').unwrap();
/// assert_eq!(queue.try_iter().collect::<String>(), "ab");
/// assert!(queue.is_empty());
/// ```
pub struct TryIter<'a, T> {
    source: &'a dyn Receive<T>,
}

impl<'a, T> TryIter<'a, T> {
    pub(crate) fn new(source: &'a dyn Receive<T>) -> Self {
        TryIter { source }
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.source.try_receive().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").finish_non_exhaustive()
    }
}
