//! [`Condvar`]: waiting for a condition on a [`Mutex`]'s value
//! (`std::sync::Condvar` for green threads; Python's `threading.Condition`,
//! which gevent's monkey-patching builds on its locks).
//!
//! A wait unlocks the mutex and joins the condition variable's queue in one
//! step (nothing else runs between the two: green threads switch only when
//! one blocks), so a notification sent after the unlock cannot be missed.
//! After a wake-up it locks the mutex again, in line with everyone else.

use std::fmt;
use std::time::{Duration, Instant};

use super::mutex::{Mutex, MutexGuard};
use crate::hub::{Deadlock, WaitQueue, Wake};

/// A condition variable for green threads, used with a [`Mutex`]: a green
/// thread holding the lock [`wait`](Self::wait)s until another, having
/// changed the value, [`notify_one`](Self::notify_one)s or
/// [`notify_all`](Self::notify_all)s it.
///
/// Waiters are woken first come, first served. As with
/// `std::sync::Condvar`, a wake-up does not promise that the condition
/// holds (another green thread may have changed the value before the woken
/// one got the lock back, and a wake-up may be spurious): check it in a
/// loop, or use [`wait_while`](Self::wait_while), which does.
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::{Condvar, Mutex};
///
/// let jobs = Rc::new((Mutex::new(Vec::new()), Condvar::new()));
/// let worker = {
///     let jobs = jobs.clone();
///     greenery::spawn(move || {
///         let (queue, ready) = &*jobs;
///         let mut queue = ready.wait_while(queue.lock().unwrap(), |queue| queue.is_empty()).unwrap();
///         queue.pop()
///     })
/// };
/// greenery::yield_now(); // the worker starts, and waits
/// jobs.0.lock().unwrap().push("job");
/// jobs.1.notify_one();
/// assert_eq!(worker.get().unwrap(), Some("job"));
/// ```
///
/// A notification with nobody waiting is lost: it does not wake a later
/// waiter (use an [`Event`](super::Event) or a counter under the mutex for
/// that).
///
/// `Condvar` is `!Send` and `!Sync`: it belongs to the green threads of one
/// OS thread.
pub struct Condvar {
    waiters: WaitQueue,
}

impl Condvar {
    /// A condition variable with nobody waiting.
    pub const fn new() -> Condvar {
        Condvar { waiters: WaitQueue::new("Condvar") }
    }

    /// Unlocks the mutex of `guard`, waits for a notification, locks the
    /// mutex again (waiting in line for it), and returns the new guard.
    ///
    /// If the green thread is killed or a [`Timeout`](crate::Timeout)
    /// expires while it waits, it unwinds with the mutex unlocked; a
    /// notification it was given and could not act on goes to the next
    /// waiter.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if no notification, or no unlock of the mutex, would ever
    /// come. The mutex is then unlocked (the guard is gone: locking it again
    /// could block forever too).
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> Result<MutexGuard<'a, T>, Deadlock> {
        let (guard, _) = self.wait_until(guard, None)?;
        Ok(guard)
    }

    /// [`wait`](Self::wait), waiting at most `timeout` for the notification;
    /// also says whether one came (`false`: the time ran out). The mutex is
    /// locked again either way, which may take longer.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenery::sync::{Condvar, Mutex};
    ///
    /// let (mutex, condvar) = (Mutex::new(0), Condvar::new());
    /// let (guard, notified) = condvar.wait_timeout(mutex.lock().unwrap(), Duration::from_millis(5)).unwrap();
    /// assert!(!notified);
    /// assert_eq!(*guard, 0);
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> Result<(MutexGuard<'a, T>, bool), Deadlock> {
        self.wait_until(guard, super::deadline(timeout))
    }

    /// Waits (as [`wait`](Self::wait), again and again) while `condition`
    /// holds for the value; returns the guard once it does not. Returns at
    /// once if it does not hold to begin with.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<MutexGuard<'a, T>, Deadlock> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`wait_while`](Self::wait_while), waiting at most `timeout` in all;
    /// also says whether the condition stopped holding (`false`: the time ran
    /// out with it still holding).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<(MutexGuard<'a, T>, bool), Deadlock> {
        let deadline = super::deadline(timeout);
        while condition(&mut *guard) {
            let notified;
            (guard, notified) = self.wait_until(guard, deadline)?;
            if !notified {
                let done = !condition(&mut *guard);
                return Ok((guard, done));
            }
        }
        Ok((guard, true))
    }

    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> Result<(MutexGuard<'a, T>, bool), Deadlock> {
        let mutex: &'a Mutex<T> = MutexGuard::mutex(&guard);
        drop(guard);
        let notified = match self.waiters.wait(deadline) {
            Wake::Notified => true,
            Wake::TimedOut => false,
            Wake::Deadlock => return Err(Deadlock),
        };
        Ok((mutex.lock()?, notified))
    }

    /// Wakes the first green thread waiting, if any; returns whether there
    /// was one.
    pub fn notify_one(&self) -> bool {
        self.waiters.notify_one()
    }

    /// Wakes every green thread waiting; returns how many there were.
    pub fn notify_all(&self) -> usize {
        self.waiters.notify_all()
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").field("waiting", &self.waiters.len()).finish()
    }
}
