//! [`PriorityQueue`]: greatest first (gevent's `PriorityQueue`, reversed).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::queue_api::queue_api;
use super::queue_core::{Core, Storage};

/// A queue between green threads that hands out the **greatest** value
/// first, as [`BinaryHeap`] does; values that compare equal come out in the
/// order they were put.
///
/// Python's `queue.PriorityQueue` and gevent's hand out the *smallest*
/// first; wrap values in [`Reverse`](std::cmp::Reverse) for that order (for
/// `(priority, job)` pairs where priority 1 comes before priority 2, say).
///
/// Everything else is as for [`Queue`](super::Queue): bounded or not,
/// waiting served in order, shutdown, tasks and
/// [`join`](PriorityQueue::join), and nothing put is ever lost.
///
/// ```
/// use std::cmp::Reverse;
/// use greenery::sync::PriorityQueue;
///
/// let greatest_first = PriorityQueue::unbounded();
/// for n in [2, 5, 1] {
///     greatest_first.put(n).unwrap();
/// }
/// assert_eq!(greatest_first.try_iter().collect::<Vec<_>>(), [5, 2, 1]);
///
/// let smallest_first = PriorityQueue::unbounded(); // Python's order
/// for (priority, job) in [(2, "later"), (1, "first"), (2, "last")] {
///     smallest_first.put((Reverse(priority), job)).unwrap();
/// }
/// let jobs: Vec<_> = smallest_first.try_iter().map(|(_, job)| job).collect();
/// assert_eq!(jobs, ["first", "later", "last"]);
/// ```
///
/// The queue is `!Send` and `!Sync`, like [`Queue`](super::Queue).
pub struct PriorityQueue<T> {
    core: Core<Heap<T>>,
}

queue_api!(PriorityQueue, [Ord]);

/// A max-heap of values, each with the number of the put that brought it:
/// among equal values the earlier put comes out first.
struct Heap<T> {
    heap: BinaryHeap<Entry<T>>,
    puts: u64,
}

struct Entry<T> {
    value: T,
    put: u64,
}

impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Greater value first; then the earlier put (a smaller number) first.
        self.value.cmp(&other.value).then_with(|| other.put.cmp(&self.put))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

impl<T: Ord> Default for Heap<T> {
    fn default() -> Self {
        Heap { heap: BinaryHeap::new(), puts: 0 }
    }
}

impl<T: Ord> Storage for Heap<T> {
    type Item = T;

    fn push(&mut self, value: T) {
        self.puts += 1;
        self.heap.push(Entry { value, put: self.puts });
    }

    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|entry| entry.value)
    }

    fn peek(&self) -> Option<&T> {
        self.heap.peek().map(|entry| &entry.value)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}
