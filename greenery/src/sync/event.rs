//! [`Event`]: a flag that green threads wait for (gevent's `Event`).
//!
//! Besides the flag, the event counts its [`set`](Event::set)s. A waiter
//! notes the count when it parks and, when woken, returns success if the
//! count moved: it was set meanwhile, whether or not it has been cleared
//! since. A wake-up with the count unchanged is spurious (a wake-up passed
//! on by a waiter that was killed before it could resume) and the waiter
//! parks again.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::{Deadlock, WaitQueue, Wake};

/// A flag that green threads can wait for: [`wait`](Self::wait) blocks until
/// it is [`set`](Self::set), which wakes every waiter at once (gevent's
/// `Event`).
///
/// A green thread woken by `set` returns from `wait` successfully even if
/// the flag was [`clear`](Self::clear)ed again before it resumed: it was
/// set while the green thread waited, and that is what it waited for.
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::Event;
///
/// let ready = Rc::new(Event::new());
/// let waiters: Vec<_> = (0..3)
///     .map(|n| {
///         let ready = ready.clone();
///         greenery::spawn(move || {
///             ready.wait().unwrap();
///             n
///         })
///     })
///     .collect();
/// greenery::yield_now(); // they start, and wait
/// ready.set();
/// let woken: Vec<i32> = waiters.into_iter().map(|w| w.get().unwrap()).collect();
/// assert_eq!(woken, [0, 1, 2]);
/// ```
///
/// Waiting for an event that nothing can set any more is a
/// [`Deadlock`]:
///
/// ```
/// let never = greenery::sync::Event::new();
/// assert_eq!(never.wait(), Err(greenery::hub::Deadlock));
/// ```
///
/// `Event` is `!Send` and `!Sync`: it belongs to the green threads of one OS
/// thread.
pub struct Event {
    flag: Cell<bool>,
    /// How many times it was set.
    sets: Cell<u64>,
    waiters: WaitQueue,
}

impl Event {
    /// An event, not set.
    pub const fn new() -> Event {
        Event { flag: Cell::new(false), sets: Cell::new(0), waiters: WaitQueue::new("Event") }
    }

    /// Sets the flag, and wakes every green thread waiting for it (they
    /// resume in the order they began to wait). Green threads that wait from
    /// now on return at once, until it is [`clear`](Self::clear)ed.
    pub fn set(&self) {
        self.flag.set(true);
        self.sets.set(self.sets.get().wrapping_add(1));
        self.waiters.notify_all();
    }

    /// Clears the flag: green threads that wait from now on block until it
    /// is set again. Those already woken by a [`set`](Self::set) still
    /// return successfully.
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Blocks until the flag is set; returns at once if it is set already.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if nothing could ever set it.
    pub fn wait(&self) -> Result<(), Deadlock> {
        self.wait_until(None).map(|_| ())
    }

    /// Blocks until the flag is set or `timeout` has passed; returns whether
    /// it was set (gevent's `wait(timeout)`).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if nothing could ever set it, nor the time pass.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = greenery::sync::Event::new();
    /// assert_eq!(event.wait_timeout(Duration::from_millis(5)), Ok(false));
    /// event.set();
    /// assert_eq!(event.wait_timeout(Duration::from_millis(5)), Ok(true));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.wait_until(super::deadline(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        if self.is_set() {
            return Ok(true);
        }
        let seen = self.sets.get();
        loop {
            match self.waiters.wait(deadline) {
                Wake::Notified if self.sets.get() != seen => return Ok(true),
                Wake::Notified => {} // spurious: wait again
                Wake::TimedOut => return Ok(self.is_set() || self.sets.get() != seen),
                Wake::Deadlock => return Err(Deadlock),
            }
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
        f.debug_struct("Event").field("set", &self.is_set()).field("waiting", &self.waiters.len()).finish()
    }
}
