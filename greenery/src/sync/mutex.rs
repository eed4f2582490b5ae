//! [`Mutex`]: a lock around a value for green threads (gevent's `Semaphore(1)`
//! used as a lock, with the value it guards).
//!
//! The lock is a [`RawSemaphore`] with one permit, so it is handed to the
//! green threads waiting for it in the order they came. The value sits in a
//! `RefCell`; the guard holds its `RefMut`. Whoever holds the permit is the
//! only one that borrows the cell, so the borrow never fails.
//!
//! # No poisoning
//!
//! A guard gives the lock back however its scope ends, a panic included,
//! and the lock is not *poisoned*: the next [`lock`](Mutex::lock) succeeds
//! and sees the value as the panicking code left it. Green threads unwind
//! routinely (a kill, an expired `Timeout`: cancellation, as dropping a
//! future is in async Rust), and those unwindings must release the lock
//! without ceremony; a panic is the green thread's own failure, reported
//! through its `JoinHandle`. `tokio::sync::Mutex` and `parking_lot::Mutex`
//! decide the same way.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::semaphore::RawSemaphore;
use crate::hub::Deadlock;

/// A mutual-exclusion lock around a value, for green threads: one green
/// thread at a time reaches the value, through the [`MutexGuard`] that
/// [`lock`](Self::lock) returns. A green thread that finds it locked waits,
/// and the lock is handed to waiters first come, first served: when it is
/// unlocked, the first in line gets it, even if another green thread asks
/// before that one resumes.
///
/// Unlike `std::sync::Mutex`, waiting does not block the OS thread, and the
/// guard may be held across blocking calls (sleeps, I/O, other locks) while
/// other green threads run.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use greenery::sync::Mutex;
///
/// let log = Rc::new(Mutex::new(Vec::new()));
/// let writers: Vec<_> = (0..3)
///     .map(|n| {
///         let log = log.clone();
///         greenery::spawn(move || {
///             let mut log = log.lock().unwrap();
///             log.push(n);
///             greenery::sleep(Duration::from_millis(1)); // others wait meanwhile
///             log.push(n);
///         })
///     })
///     .collect();
/// greenery::hub::joinall(&writers, None, false).unwrap();
/// assert_eq!(*log.lock().unwrap(), [0, 0, 1, 1, 2, 2]);
/// ```
///
/// # Poisoning
///
/// There is none: a guard dropped by a panic, a kill or an expired
/// [`Timeout`](crate::Timeout) unlocks the mutex, and the next `lock` sees
/// the value as it was left. Code that must not leave the value half
/// changed restores it in a destructor (see the module documentation for
/// the reasons).
///
/// `Mutex` is `!Send` and `!Sync`: it belongs to the green threads of one OS
/// thread.
pub struct Mutex<T: ?Sized> {
    raw: RawSemaphore,
    value: RefCell<T>,
}

/// Access to the value of a locked [`Mutex`]; dropping it unlocks the mutex
/// (handing it to the first green thread waiting, if any).
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    value: RefMut<'a, T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex around `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex { raw: RawSemaphore::new(1, Some(1), "Mutex"), value: RefCell::new(value) }
    }

    /// The value, taking the mutex apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting in line if another green thread holds it.
    ///
    /// Locking a mutex that the current green thread holds already waits
    /// forever (it is not reentrant; see [`RLock`](super::RLock)): in the
    /// main greenlet with nothing else to run, that is a [`Deadlock`].
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it would never be unlocked.
    ///
    /// ```
    /// let mutex = greenery::sync::Mutex::new(1);
    /// let guard = mutex.lock().unwrap();
    /// assert_eq!(mutex.lock().err(), Some(greenery::hub::Deadlock));
    /// drop(guard);
    /// ```
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, Deadlock> {
        self.raw.acquire(None)?;
        Ok(self.guard())
    }

    /// [`lock`](Self::lock), waiting at most `timeout`; `None` if the time
    /// ran out first.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it would never be unlocked, nor the time pass.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<MutexGuard<'_, T>>, Deadlock> {
        self.lock_until(super::deadline(timeout))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Result<Option<MutexGuard<'_, T>>, Deadlock> {
        Ok(self.raw.acquire(deadline)?.then(|| self.guard()))
    }

    /// Locks the mutex if it is free, without waiting. It is not free while
    /// it is being handed to a green thread that waited for it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_acquire().then(|| self.guard())
    }

    /// Whether the mutex is locked (or being handed to a waiting green
    /// thread).
    pub fn is_locked(&self) -> bool {
        self.raw.available() == 0
    }

    /// The value, without locking: `&mut self` proves nobody holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The guard of a lock just taken.
    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard { mutex: self, value: self.value.borrow_mut() }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.value.try_borrow() {
            // Unlocked: nobody borrows the value.
            Ok(value) if !self.is_locked() => d.field("value", &&*value),
            _ => d.field("value", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (to lock it again after a
    /// [`Condvar`](super::Condvar) wait).
    pub(super) fn mutex(guard: &Self) -> &'a Mutex<T> {
        guard.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // The `RefMut` is dropped right after this, before any switch (a
        // release only queues the woken green thread), so the next holder
        // never finds the cell borrowed.
        let released = self.mutex.raw.release();
        debug_assert!(released.is_ok(), "a mutex guard unlocked an unlocked mutex");
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.value, f)
    }
}
