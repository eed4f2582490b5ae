//! [`RLock`]: a lock that the green thread holding it may take again
//! (gevent's `RLock`, `parking_lot::ReentrantMutex` for green threads).
//!
//! Under it is a [`RawSemaphore`] with one permit, taken by the first hold of
//! a green thread and given back (handed to the next in line) by its last
//! release. Beside it: the owner (the greenlet that took the permit) and
//! its count of holds.
//!
//! A hold is released by a guard's drop or by [`RLock::release`]. Each time
//! a green thread takes the lock from free, the lock's `generation` goes up,
//! and a guard remembers the generation it was made in: a guard whose holds
//! were all released by hand (the lock has moved on since, or is free) finds
//! another generation, or no holds, and releases nothing. So mixing guards
//! and explicit releases can never release someone else's hold.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::semaphore::RawSemaphore;
use crate::greenlet::{self, Greenlet};
use crate::hub::Deadlock;

/// A reentrant lock for green threads (gevent's `RLock`): the green thread
/// that holds it may lock it again without waiting, and it is unlocked when
/// every hold has been released. Other green threads wait in line for it, as
/// for a [`Mutex`](super::Mutex).
///
/// It guards a value, as `parking_lot::ReentrantMutex` does, but gives only
/// shared access (`&T`: several guards of the same green thread may exist at
/// once): put a `Cell` or `RefCell` inside to change it. `RLock<()>` (the
/// default) is a bare lock.
///
/// ```
/// use std::cell::RefCell;
/// use greenery::sync::RLock;
///
/// let log = RLock::new(RefCell::new(Vec::new()));
/// fn record(log: &RLock<RefCell<Vec<&'static str>>>, line: &'static str) {
///     log.lock().unwrap().borrow_mut().push(line);
/// }
/// let outer = log.lock().unwrap();
/// record(&log, "nested"); // locks it again: no wait
/// outer.borrow_mut().push("outer");
/// assert_eq!(log.hold_count(), 1);
/// drop(outer);
/// assert!(!log.is_locked());
/// assert_eq!(log.into_inner().into_inner(), ["nested", "outer"]);
/// ```
///
/// gevent's explicit `acquire()` and `release()` are here too, for holds
/// that do not fit a scope: [`acquire`](Self::acquire) takes a hold without a
/// guard, and [`release`](Self::release) gives back one hold of the current
/// green thread, failing with [`NotOwner`] if it holds none.
///
/// A guard releases its hold however its scope ends (a panic, a kill, an
/// expired [`Timeout`](crate::Timeout)); there is no poisoning, as for
/// [`Mutex`](super::Mutex). A hold taken with `acquire` and never released
/// stays, even after its green thread has died: the lock is then never free
/// again (as in gevent).
///
/// `RLock` is `!Send` and `!Sync`: it belongs to the green threads of one OS
/// thread, and its owner is one of them.
pub struct RLock<T: ?Sized = ()> {
    raw: RawSemaphore,
    owner: RefCell<Option<Greenlet>>,
    holds: Cell<usize>,
    generation: Cell<u64>,
    value: T,
}

/// A hold on an [`RLock`], with shared access to its value; dropping it
/// releases the hold (and the lock, if it was the last).
#[must_use = "dropping the guard releases the hold at once"]
pub struct RLockGuard<'a, T: ?Sized> {
    lock: &'a RLock<T>,
    generation: u64,
}

impl<T> RLock<T> {
    /// An unlocked reentrant lock around `value`.
    pub const fn new(value: T) -> RLock<T> {
        RLock {
            raw: RawSemaphore::new(1, Some(1), "RLock"),
            owner: RefCell::new(None),
            holds: Cell::new(0),
            generation: Cell::new(0),
            value,
        }
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: ?Sized> RLock<T> {
    /// Takes a hold: at once if the current green thread holds the lock
    /// already, else waiting in line for it.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if another green thread holds it and would never release
    /// it.
    pub fn lock(&self) -> Result<RLockGuard<'_, T>, Deadlock> {
        self.acquire()?;
        Ok(self.guard())
    }

    /// [`lock`](Self::lock), waiting at most `timeout`; `None` if the time
    /// ran out first.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it would never be released, nor the time pass.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<RLockGuard<'_, T>>, Deadlock> {
        Ok(self.acquire_timeout(timeout)?.then(|| self.guard()))
    }

    /// Takes a hold if the lock is free or the current green thread holds it
    /// already, without waiting.
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        self.try_acquire().then(|| self.guard())
    }

    /// Takes a hold without a guard (gevent's `acquire()`): give it back
    /// with [`release`](Self::release).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if another green thread holds the lock and would never
    /// release it.
    ///
    /// ```
    /// let lock: greenery::sync::RLock = Default::default(); // RLock<()>
    /// lock.acquire().unwrap();
    /// lock.acquire().unwrap();
    /// assert_eq!(lock.hold_count(), 2);
    /// lock.release().unwrap();
    /// lock.release().unwrap();
    /// assert!(lock.release().is_err()); // no hold left
    /// ```
    pub fn acquire(&self) -> Result<(), Deadlock> {
        self.acquire_until(None).map(|_| ())
    }

    /// [`acquire`](Self::acquire), waiting at most `timeout`; returns whether
    /// it took a hold.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if the lock would never be released, nor the time pass.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.acquire_until(super::deadline(timeout))
    }

    /// Takes a hold without a guard if the lock is free or the current green
    /// thread holds it already, without waiting; returns whether it did.
    pub fn try_acquire(&self) -> bool {
        if self.add_hold() {
            return true;
        }
        if !self.raw.try_acquire() {
            return false;
        }
        self.take_ownership();
        true
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        if self.add_hold() {
            return Ok(true);
        }
        if !self.raw.acquire(deadline)? {
            return Ok(false);
        }
        self.take_ownership();
        Ok(true)
    }

    /// One more hold, if the current green thread owns the lock.
    fn add_hold(&self) -> bool {
        if !self.is_owned() {
            return false;
        }
        self.holds.set(self.holds.get() + 1);
        true
    }

    /// The first hold, once the permit is taken.
    fn take_ownership(&self) {
        *self.owner.borrow_mut() = Some(greenlet::getcurrent());
        self.holds.set(1);
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    /// Releases one hold of the current green thread, taken with
    /// [`acquire`](Self::acquire) (gevent's `release()`); the lock is free
    /// once every hold is released, and goes to the first green thread
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`NotOwner`] if the current green thread holds no hold on the lock
    /// (it is free, or held by another); nothing changes.
    pub fn release(&self) -> Result<(), NotOwner> {
        if !self.is_owned() {
            return Err(NotOwner);
        }
        self.release_hold();
        Ok(())
    }

    /// Releases one hold of the owner.
    fn release_hold(&self) {
        let holds = self.holds.get() - 1;
        self.holds.set(holds);
        if holds == 0 {
            let owner = self.owner.borrow_mut().take();
            let released = self.raw.release();
            debug_assert!(released.is_ok());
            drop(owner); // after the hand-off: dropping a greenlet may run code
        }
    }

    /// Whether the lock is held (or being handed to a waiting green thread).
    pub fn is_locked(&self) -> bool {
        self.raw.available() == 0
    }

    /// Whether the current green thread holds the lock (gevent's
    /// `_is_owned`).
    pub fn is_owned(&self) -> bool {
        self.owner.borrow().as_ref().is_some_and(Greenlet::is_current)
    }

    /// How many holds the green thread that holds the lock has on it (0 if
    /// it is free).
    pub fn hold_count(&self) -> usize {
        self.holds.get()
    }

    /// The value, without locking: `&mut self` proves nobody holds it.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// The guard of a hold just taken.
    fn guard(&self) -> RLockGuard<'_, T> {
        RLockGuard { lock: self, generation: self.generation.get() }
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> RLock<T> {
        RLock::new(T::default())
    }
}

impl<T> From<T> for RLock<T> {
    fn from(value: T) -> RLock<T> {
        RLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.owner.borrow().as_ref().map(Greenlet::name))
            .field("holds", &self.holds.get())
            .field("value", &&self.value)
            .finish()
    }
}

impl<T: ?Sized> Deref for RLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T: ?Sized> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        // Its hold may have been released by hand already (see the module
        // documentation).
        if self.lock.generation.get() == self.generation && self.lock.holds.get() > 0 {
            self.lock.release_hold();
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.lock.value, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.lock.value, f)
    }
}

/// [`RLock::release`] was called by a green thread that holds no hold on the
/// lock (Python's "cannot release un-acquired lock").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotOwner;

impl fmt::Display for NotOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot release un-acquired lock: the current green thread holds no hold on this RLock")
    }
}

impl Error for NotOwner {}
