//! The public methods that [`Queue`](super::Queue),
//! [`LifoQueue`](super::LifoQueue) and [`PriorityQueue`](super::PriorityQueue)
//! share, written once: [`queue_api!`] implements them on a type wrapping a
//! [`Core`](super::queue_core::Core) in a field named `core`, delegating to
//! it. Only the order (the storage) differs between the three, and each
//! type's own documentation says which it is.

/// `queue_api!(Type, [bounds on T])` implements the queue methods,
/// `Default`, `Debug`, `FromIterator` and `IntoIterator for &Type` on `Type`.
macro_rules! queue_api {
    ($Queue:ident, [$($bound:tt)*]) => {
        impl<T: $($bound)*> $Queue<T> {
            /// A queue that holds at most `capacity` values:
            /// [`put`](Self::put) waits while it is full (back-pressure).
            ///
            /// # Panics
            ///
            /// If `capacity` is 0: such a queue could never hold a value
            /// (a [`Channel`](crate::sync::Channel) is the rendezvous).
            pub fn bounded(capacity: usize) -> Self {
                $Queue { core: $crate::sync::queue_core::Core::new(Some(capacity)) }
            }

            /// A queue without a limit: [`put`](Self::put) never waits.
            pub fn unbounded() -> Self {
                $Queue { core: $crate::sync::queue_core::Core::new(None) }
            }

            /// Puts `value` into the queue, waiting while the queue is full.
            /// Green threads waiting to put are served in the order they
            /// began to wait.
            ///
            /// A green thread killed while it waits here (or unwound by an
            /// expired [`Timeout`](crate::Timeout)) drops `value` as it
            /// unwinds: the value never entered the queue.
            ///
            /// # Errors
            ///
            /// Each hands `value` back:
            /// [`PutError::Closed`](crate::sync::PutError::Closed) if the
            /// queue is (or, while waiting, was) shut down;
            /// [`PutError::Deadlock`](crate::sync::PutError::Deadlock) if it
            /// is full and nothing could ever take a value out.
            ///
            /// ```
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::bounded(1);")]
            /// queue.put(1).unwrap();
            /// // Full, and no other green thread could ever make room:
            /// let err = queue.put(2).unwrap_err();
            /// assert!(err.is_deadlock());
            /// assert_eq!(err.into_inner(), 2);
            /// ```
            pub fn put(&self, value: T) -> Result<(), $crate::sync::PutError<T>> {
                self.core.put(value, None).map_err(|(stop, value)| stop.put_error(value))
            }

            /// [`put`](Self::put), waiting at most `timeout` for room.
            ///
            /// # Errors
            ///
            /// Each hands `value` back:
            /// [`PutTimeoutError::TimedOut`](crate::sync::PutTimeoutError::TimedOut)
            /// if the queue was still full when the time ran out, otherwise
            /// as for [`put`](Self::put).
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::bounded(1);")]
            /// queue.put(1).unwrap();
            /// let err = queue.put_timeout(2, Duration::from_millis(10)).unwrap_err();
            /// assert!(err.is_timeout());
            /// assert_eq!(err.into_inner(), 2);
            /// ```
            pub fn put_timeout(
                &self,
                value: T,
                timeout: ::std::time::Duration,
            ) -> Result<(), $crate::sync::PutTimeoutError<T>> {
                self.core
                    .put(value, $crate::sync::queue_core::deadline_after(timeout))
                    .map_err(|(stop, value)| stop.put_timeout_error(value))
            }

            /// Puts `value` if there is room now; never waits.
            ///
            /// # Errors
            ///
            /// Each hands `value` back:
            /// [`TryPutError::Full`](crate::sync::TryPutError::Full) if the
            /// queue is full,
            /// [`TryPutError::Closed`](crate::sync::TryPutError::Closed) if
            /// it is shut down.
            ///
            /// ```
            /// use greenery::sync::TryPutError;
            ///
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::bounded(1);")]
            /// assert_eq!(queue.try_put(1), Ok(()));
            /// assert_eq!(queue.try_put(2), Err(TryPutError::Full(2)));
            /// ```
            pub fn try_put(&self, value: T) -> Result<(), $crate::sync::TryPutError<T>> {
                self.core.try_put(value)
            }

            /// Takes the next value out of the queue, waiting while it is
            /// empty. Green threads waiting to get are served in the order
            /// they began to wait. Once the queue is shut down, `get` still
            /// hands out the values left in it, then fails.
            ///
            /// A green thread killed while it waits here (or unwound by an
            /// expired [`Timeout`](crate::Timeout)) takes nothing, even if a
            /// value was put for it just before: that value stays in the
            /// queue, for the next getter.
            ///
            /// # Errors
            ///
            /// [`GetError::Closed`](crate::sync::GetError::Closed) if the
            /// queue is shut down and empty;
            /// [`GetError::Deadlock`](crate::sync::GetError::Deadlock) if it
            /// is empty and nothing could ever put a value.
            ///
            /// ```
            /// use std::rc::Rc;
            ///
            #[doc = concat!("let queue = Rc::new(greenery::sync::", stringify!($Queue), "::unbounded());")]
            /// let producer = greenery::spawn({
            ///     let queue = queue.clone();
            ///     move || queue.put(42).unwrap()
            /// });
            /// assert_eq!(queue.get(), Ok(42)); // waits for the producer
            /// # producer.join().unwrap();
            /// ```
            pub fn get(&self) -> Result<T, $crate::sync::GetError> {
                self.core.get(None).map_err($crate::sync::queue_core::Stop::get_error)
            }

            /// [`get`](Self::get), waiting at most `timeout` for a value.
            ///
            /// # Errors
            ///
            /// [`GetTimeoutError::TimedOut`](crate::sync::GetTimeoutError::TimedOut)
            /// if the queue was still empty when the time ran out, otherwise
            /// as for [`get`](Self::get).
            ///
            /// ```
            /// use std::time::Duration;
            /// use greenery::sync::GetTimeoutError;
            ///
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::<u32>::unbounded();")]
            /// assert_eq!(queue.get_timeout(Duration::from_millis(10)), Err(GetTimeoutError::TimedOut));
            /// ```
            pub fn get_timeout(
                &self,
                timeout: ::std::time::Duration,
            ) -> Result<T, $crate::sync::GetTimeoutError> {
                self.core
                    .get($crate::sync::queue_core::deadline_after(timeout))
                    .map_err($crate::sync::queue_core::Stop::get_timeout_error)
            }

            /// Takes the next value if there is one now; never waits.
            ///
            /// # Errors
            ///
            /// [`TryGetError::Empty`](crate::sync::TryGetError::Empty) if the
            /// queue is empty;
            /// [`TryGetError::Closed`](crate::sync::TryGetError::Closed) if
            /// it is shut down and empty.
            ///
            /// ```
            /// use greenery::sync::TryGetError;
            ///
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::unbounded();")]
            /// assert_eq!(queue.try_get(), Err(TryGetError::Empty));
            /// queue.put(7).unwrap();
            /// assert_eq!(queue.try_get(), Ok(7));
            /// ```
            pub fn try_get(&self) -> Result<T, $crate::sync::TryGetError> {
                self.core.try_get()
            }

            /// A clone of the value [`get`](Self::get) would take next,
            /// waiting while the queue is empty; the value stays in the
            /// queue (gevent's `peek`).
            ///
            /// # Errors
            ///
            /// As for [`get`](Self::get).
            ///
            /// ```
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::unbounded();")]
            /// queue.put(String::from("first")).unwrap();
            /// assert_eq!(queue.peek().unwrap(), "first");
            /// assert_eq!(queue.len(), 1);
            /// ```
            pub fn peek(&self) -> Result<T, $crate::sync::GetError>
            where
                T: Clone,
            {
                self.core.peek(None).map_err($crate::sync::queue_core::Stop::get_error)
            }

            /// [`peek`](Self::peek), waiting at most `timeout` for a value.
            ///
            /// # Errors
            ///
            /// As for [`get_timeout`](Self::get_timeout).
            pub fn peek_timeout(
                &self,
                timeout: ::std::time::Duration,
            ) -> Result<T, $crate::sync::GetTimeoutError>
            where
                T: Clone,
            {
                self.core
                    .peek($crate::sync::queue_core::deadline_after(timeout))
                    .map_err($crate::sync::queue_core::Stop::get_timeout_error)
            }

            /// A clone of the value [`get`](Self::get) would take next, if
            /// there is one now; never waits.
            ///
            /// # Errors
            ///
            /// As for [`try_get`](Self::try_get).
            pub fn try_peek(&self) -> Result<T, $crate::sync::TryGetError>
            where
                T: Clone,
            {
                self.core.try_peek()
            }

            /// How many values are in the queue (gevent's `qsize`).
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether the queue holds no value.
            pub fn is_empty(&self) -> bool {
                self.core.len() == 0
            }

            /// Whether the queue is bounded and holds as many values as it
            /// can: [`put`](Self::put) would wait.
            pub fn is_full(&self) -> bool {
                self.core.is_full()
            }

            /// The most values the queue holds: `None` if it is unbounded.
            ///
            /// ```
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::bounded(2);")]
            /// assert_eq!(queue.capacity(), Some(2));
            /// queue.put(1).unwrap();
            /// queue.put(2).unwrap();
            /// assert!(queue.is_full());
            #[doc = concat!("let unbounded = greenery::sync::", stringify!($Queue), "::<u8>::unbounded();")]
            /// assert_eq!(unbounded.capacity(), None);
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                self.core.capacity()
            }

            /// Shuts the queue down (Python's `Queue.shutdown()`): every
            /// green thread waiting in it wakes up. From now on, puts fail
            /// and hand their value back; gets take what is left in the
            /// queue, then fail with `Closed`. Shutting down again does
            /// nothing.
            ///
            /// ```
            /// use greenery::sync::{GetError, PutError};
            ///
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::unbounded();")]
            /// queue.put(1).unwrap();
            /// queue.shutdown();
            /// assert_eq!(queue.put(2), Err(PutError::Closed(2)));
            /// assert_eq!(queue.get(), Ok(1));
            /// assert_eq!(queue.get(), Err(GetError::Closed));
            /// ```
            pub fn shutdown(&self) {
                self.core.shutdown();
            }

            /// Shuts the queue down and takes out every value left in it,
            /// in the order gets would have taken them (Python's
            /// `shutdown(immediate=True)`, which discards them; here they are
            /// handed to the caller). Each counts as a task done for
            /// [`join`](Self::join). Gets fail from now on.
            ///
            /// ```
            #[doc = concat!("let queue = greenery::sync::", stringify!($Queue), "::unbounded();")]
            /// queue.put(1).unwrap();
            /// assert_eq!(queue.shutdown_immediate(), [1]);
            /// assert!(queue.get().is_err());
            /// assert_eq!(queue.join(), Ok(()));
            /// ```
            pub fn shutdown_immediate(&self) -> Vec<T> {
                self.core.shutdown_immediate()
            }

            /// Whether the queue was shut down.
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }

            /// Marks one value taken from the queue as processed (gevent's
            /// `JoinableQueue.task_done`): once every value put has been
            /// marked, [`join`](Self::join) returns.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`](crate::sync::TaskDoneError) ("task_done()
            /// called too many times") if every value put was marked
            /// already.
            ///
            /// ```
            /// use std::rc::Rc;
            ///
            #[doc = concat!("let queue = Rc::new(greenery::sync::", stringify!($Queue), "::unbounded());")]
            /// let worker = greenery::spawn({
            ///     let queue = queue.clone();
            ///     move || {
            ///         while let Ok(job) = queue.get() {
            ///             let _ = job * 2; // the work
            ///             queue.task_done().unwrap();
            ///         }
            ///     }
            /// });
            /// for job in 0..10 {
            ///     queue.put(job).unwrap();
            /// }
            /// queue.join().unwrap(); // all ten were processed
            /// assert_eq!(queue.unfinished_tasks(), 0);
            /// assert!(queue.task_done().is_err());
            /// # queue.shutdown();
            /// # worker.join().unwrap();
            /// ```
            pub fn task_done(&self) -> Result<(), $crate::sync::TaskDoneError> {
                self.core.task_done()
            }

            /// Waits until every value put into the queue has been marked
            /// done with [`task_done`](Self::task_done) (gevent's
            /// `JoinableQueue.join`).
            ///
            /// # Errors
            ///
            /// [`Deadlock`](crate::hub::Deadlock) if that could never happen.
            pub fn join(&self) -> Result<(), $crate::hub::Deadlock> {
                self.core.join(None).map(|_| ())
            }

            /// [`join`](Self::join), waiting at most `timeout`; returns
            /// whether every value was marked done.
            ///
            /// # Errors
            ///
            /// [`Deadlock`](crate::hub::Deadlock) if neither could ever
            /// happen.
            pub fn join_timeout(
                &self,
                timeout: ::std::time::Duration,
            ) -> Result<bool, $crate::hub::Deadlock> {
                self.core.join($crate::sync::queue_core::deadline_after(timeout))
            }

            /// How many values were put and not yet marked done.
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished_tasks()
            }

            /// An iterator that [`get`](Self::get)s values until the queue
            /// is shut down and drained (see [`Iter`](crate::sync::Iter)).
            pub fn iter(&self) -> $crate::sync::Iter<'_, T> {
                $crate::sync::Iter::new(&self.core)
            }

            /// An iterator over the values that can be taken without
            /// waiting (see [`TryIter`](crate::sync::TryIter)).
            pub fn try_iter(&self) -> $crate::sync::TryIter<'_, T> {
                $crate::sync::TryIter::new(&self.core)
            }
        }

        /// An unbounded queue.
        impl<T: $($bound)*> Default for $Queue<T> {
            fn default() -> Self {
                Self::unbounded()
            }
        }

        /// An unbounded queue holding the values, each an unfinished task
        /// (as gevent's `JoinableQueue(items=…)`).
        impl<T: $($bound)*> FromIterator<T> for $Queue<T> {
            fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
                let queue = Self::unbounded();
                for value in values {
                    // Unbounded and not shut down: there is room.
                    let _ = queue.try_put(value);
                }
                queue
            }
        }

        impl<'a, T: $($bound)*> IntoIterator for &'a $Queue<T> {
            type Item = T;
            type IntoIter = $crate::sync::Iter<'a, T>;

            fn into_iter(self) -> $crate::sync::Iter<'a, T> {
                self.iter()
            }
        }

        impl<T: $($bound)*> ::std::fmt::Debug for $Queue<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.core.fmt_debug(stringify!($Queue), f)
            }
        }
    };
}

pub(crate) use queue_api;
