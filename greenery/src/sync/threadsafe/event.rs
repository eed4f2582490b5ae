//! [`Event`]: a flag that green threads of any hub, plain threads and
//! futures wait for.
//!
//! # Protocol
//!
//! The flag, a count of its sets and the wakers of the waiting futures live
//! behind one mutex. A waiting future notes the count on its first poll and
//! is done once the flag is set or the count moved: a `set` then `clear`
//! between two polls still ends the wait, as for
//! [`sync::Event`](crate::sync::Event). `set` takes the wakers under the
//! lock and wakes them after releasing it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::sync::anywhere::{Wakers, wait_anywhere};

/// A flag that can be set from any thread and waited for on any thread
/// (the `Send + Sync` form of [`sync::Event`](crate::sync::Event)): see the
/// [module documentation](super).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use greenery::sync::threadsafe::Event;
///
/// let done = Arc::new(Event::new());
/// let worker = std::thread::spawn({
///     let done = done.clone();
///     move || done.set()
/// });
/// // This thread's main greenlet waits; its hub would run green threads meanwhile.
/// done.wait();
/// assert!(done.is_set());
/// done.clear();
/// assert!(!done.wait_timeout(Duration::from_millis(1)));
/// worker.join().unwrap();
/// ```
pub struct Event {
    state: Mutex<State>,
}

struct State {
    flag: bool,
    /// How many times the flag was set.
    sets: u64,
    wakers: Wakers,
}

impl Event {
    /// An event whose flag is not set.
    pub fn new() -> Event {
        Event { state: Mutex::new(State { flag: false, sets: 0, wakers: Wakers::default() }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sets the flag and wakes every waiter, on whichever thread it waits.
    pub fn set(&self) {
        let mut state = self.lock();
        state.flag = true;
        state.sets += 1;
        let wakers = state.wakers.take();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Clears the flag: later waits wait for the next [`set`](Self::set).
    pub fn clear(&self) {
        self.lock().flag = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.lock().flag
    }

    /// Waits until the flag is set (returns at once if it is): parks the
    /// green thread on a thread with a hub, blocks a plain thread.
    pub fn wait(&self) {
        wait_anywhere(self.wait_async(), None).unwrap_or_else(|()| unreachable!("no deadline"));
    }

    /// As [`wait`](Self::wait), giving up after `timeout`; whether the flag
    /// was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(timeout);
        wait_anywhere(self.wait_async(), deadline).is_ok()
    }

    /// A future of [`wait`](Self::wait), for async code on any executor.
    pub fn wait_async(&self) -> EventWait<'_> {
        EventWait { event: self, id: Wakers::id(), seen: None }
    }
}

/// The future of [`Event::wait_async`]: ready once the flag is set.
#[must_use = "a future does nothing unless polled"]
pub struct EventWait<'a> {
    event: &'a Event,
    id: u64,
    /// The count of sets at the first poll.
    seen: Option<u64>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.event.lock();
        let seen = *self.seen.get_or_insert(state.sets);
        if state.flag || state.sets != seen {
            state.wakers.remove(self.id);
            return Poll::Ready(());
        }
        state.wakers.register(self.id, cx.waker());
        Poll::Pending
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if self.seen.is_some() {
            self.event.lock().wakers.remove(self.id);
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Event").field("set", &state.flag).field("waiting", &state.wakers.len()).finish()
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait").finish_non_exhaustive()
    }
}
