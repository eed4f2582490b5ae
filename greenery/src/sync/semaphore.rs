//! [`Semaphore`] and [`BoundedSemaphore`] (gevent's `Semaphore` and
//! `BoundedSemaphore`), and the raw semaphore under them and under
//! [`Mutex`](super::Mutex) and [`RLock`](super::RLock).
//!
//! # Hand-off
//!
//! A released permit goes straight to the first green thread waiting, if
//! there is one: it is *handed* to it, not put back for anyone to take. Until
//! that green thread resumes, the permit is counted in `handed`, and
//! `available` stays 0, so a green thread that comes later (or the one that
//! released it, asking again) queues behind the waiters instead of barging
//! ahead of them.
//!
//! Invariants, between any two switches:
//! - green threads are parked in the queue only while `available` is 0 (a
//!   release with someone parked hands the permit over);
//! - every wake-up the queue gives out carries one handed permit, which the
//!   woken green thread takes when it resumes. If it is killed or unwound by
//!   a `Timeout` before it resumes, the queue passes the wake-up (and so the
//!   permit) on to the next in line, or, with nobody left, gives the permit
//!   back to `available`;
//! - for a bounded semaphore, `available + handed` never exceeds the bound.

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::{Deadlock, WaitQueue, Wake};

/// A counting semaphore with first-come, first-served hand-off: the engine of
/// [`Semaphore`], [`BoundedSemaphore`], [`Mutex`](super::Mutex) and
/// [`RLock`](super::RLock).
pub(super) struct RawSemaphore {
    /// Permits free for anyone to take.
    available: Cell<usize>,
    /// Permits handed to woken green threads that have not resumed yet.
    handed: Cell<usize>,
    /// The most permits there may be (a bounded semaphore's initial count).
    bound: Option<usize>,
    waiters: WaitQueue,
}

impl RawSemaphore {
    /// A semaphore of `permits`, at most `bound`, for the primitive `what`
    /// (`"Lock"`, `"Semaphore"`, ...).
    pub(super) const fn new(permits: usize, bound: Option<usize>, what: &'static str) -> RawSemaphore {
        RawSemaphore {
            available: Cell::new(permits),
            handed: Cell::new(0),
            bound,
            waiters: WaitQueue::new(what),
        }
    }

    /// Takes a free permit if there is one.
    pub(super) fn try_acquire(&self) -> bool {
        let available = self.available.get();
        if available == 0 {
            return false;
        }
        self.available.set(available - 1);
        true
    }

    /// Takes a permit, waiting for one in line until the `deadline`; returns
    /// whether it got one.
    pub(super) fn acquire(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        if self.try_acquire() {
            return Ok(true);
        }
        loop {
            match self.waiters.wait_handoff(deadline, || self.reclaim()) {
                Wake::Notified => {
                    let handed = self.handed.get();
                    if handed > 0 {
                        self.handed.set(handed - 1);
                        return Ok(true);
                    }
                    // Spurious: nothing was handed over. Wait again.
                }
                // A permit freed since the timer fired went to nobody else:
                // while anyone was parked, it would have been handed over.
                Wake::TimedOut => return Ok(self.try_acquire()),
                Wake::Deadlock => return Err(Deadlock),
            }
        }
    }

    /// A permit handed to a green thread that left without taking it, and
    /// with nobody left in line to pass it to.
    fn reclaim(&self) {
        self.handed.set(self.handed.get() - 1);
        self.available.set(self.available.get() + 1);
    }

    /// Returns a permit: hands it to the first green thread in line, or makes
    /// it available.
    ///
    /// # Errors
    ///
    /// For a bounded semaphore, if every permit is in already.
    pub(super) fn release(&self) -> Result<(), TooManyReleases> {
        if let Some(bound) = self.bound
            && self.available.get() + self.handed.get() >= bound
        {
            return Err(TooManyReleases);
        }
        if self.waiters.notify_one() {
            self.handed.set(self.handed.get() + 1);
        } else {
            self.available.set(self.available.get() + 1);
        }
        Ok(())
    }

    /// The guard of a permit just taken.
    fn permit(&self) -> SemaphorePermit<'_> {
        SemaphorePermit { semaphore: self }
    }

    /// How many permits are free.
    pub(super) fn available(&self) -> usize {
        self.available.get()
    }
}

impl fmt::Debug for RawSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSemaphore")
            .field("available", &self.available.get())
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

/// A counting semaphore for green threads (gevent's `Semaphore`): it holds
/// permits, [`acquire`](Self::acquire) takes one (waiting for one if there
/// are none left), and dropping the [`SemaphorePermit`] gives it back.
///
/// Waiting green threads get permits in the order they asked: a released
/// permit is handed straight to the first in line, so a green thread that
/// asks later cannot take it first, even if it runs before the woken one
/// resumes.
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::Semaphore;
///
/// // At most two downloads at once.
/// let slots = Rc::new(Semaphore::new(2));
/// let running = Rc::new(std::cell::Cell::new(0));
/// let downloads: Vec<_> = (0..5)
///     .map(|_| {
///         let (slots, running) = (slots.clone(), running.clone());
///         greenery::spawn(move || {
///             let _permit = slots.acquire().unwrap();
///             running.set(running.get() + 1);
///             assert!(running.get() <= 2);
///             greenery::sleep(std::time::Duration::from_millis(1)); // the download
///             running.set(running.get() - 1);
///         })
///     })
///     .collect();
/// greenery::hub::joinall(&downloads, None, false).unwrap();
/// assert_eq!(slots.available_permits(), 2);
/// ```
///
/// For gevent's `acquire()` … `release()` pairs that do not fit a scope,
/// keep the permit with [`SemaphorePermit::forget`] and give it back with
/// [`release`](Self::release). Unlike a [`BoundedSemaphore`], a `Semaphore`
/// takes any number of releases, each adding a permit.
///
/// `Semaphore` is `!Send` and `!Sync`: it belongs to the green threads of
/// one OS thread.
pub struct Semaphore {
    raw: RawSemaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore { raw: RawSemaphore::new(permits, None, "Semaphore") }
    }

    /// Takes a permit, waiting in line for one if there are none.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if none would ever come.
    ///
    /// ```
    /// use greenery::sync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(1);
    /// let permit = semaphore.acquire().unwrap();
    /// assert_eq!(semaphore.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, Deadlock> {
        self.raw.acquire(None)?;
        Ok(self.raw.permit())
    }

    /// [`acquire`](Self::acquire), waiting at most `timeout`; `None` if the
    /// time ran out first.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if no permit would ever come, nor the time pass.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenery::sync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(0);
    /// assert!(semaphore.acquire_timeout(Duration::from_millis(5)).unwrap().is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit<'_>>, Deadlock> {
        Ok(self.raw.acquire(super::deadline(timeout))?.then(|| self.raw.permit()))
    }

    /// Takes a permit if one is free, without waiting. A permit that has been
    /// handed to a waiting green thread is not free.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_acquire().then(|| self.raw.permit())
    }

    /// Adds a permit: hands it to the first green thread waiting, if any.
    /// Use it to give back a permit kept with [`SemaphorePermit::forget`].
    ///
    /// ```
    /// use greenery::sync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(1);
    /// semaphore.acquire().unwrap().forget(); // gevent's acquire()
    /// assert_eq!(semaphore.available_permits(), 0);
    /// semaphore.release(); // gevent's release()
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn release(&self) {
        // Unbounded: cannot fail.
        let _ = self.raw.release();
    }

    /// How many permits are free now.
    pub fn available_permits(&self) -> usize {
        self.raw.available()
    }
}

impl Default for Semaphore {
    /// A semaphore with one permit (gevent's default).
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.raw.available())
            .field("waiting", &self.raw.waiters.len())
            .finish()
    }
}

/// A [`Semaphore`] that cannot be released more often than it was acquired
/// (gevent's `BoundedSemaphore`): its [`release`](Self::release) fails once
/// every permit is in, catching a release too many.
///
/// ```
/// use greenery::sync::{BoundedSemaphore, TooManyReleases};
///
/// let semaphore = BoundedSemaphore::new(1);
/// semaphore.acquire().unwrap().forget();
/// assert_eq!(semaphore.release(), Ok(()));
/// assert_eq!(semaphore.release(), Err(TooManyReleases));
/// ```
///
/// A [`SemaphorePermit`] dropped when every permit is in already (another
/// permit was released twice, once by hand) puts nothing back: the count
/// never goes above the bound.
///
/// `BoundedSemaphore` is `!Send` and `!Sync`: it belongs to the green
/// threads of one OS thread.
pub struct BoundedSemaphore {
    raw: RawSemaphore,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, and never more.
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore { raw: RawSemaphore::new(permits, Some(permits), "BoundedSemaphore") }
    }

    /// Takes a permit, waiting in line for one if there are none; see
    /// [`Semaphore::acquire`].
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if none would ever come.
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, Deadlock> {
        self.raw.acquire(None)?;
        Ok(self.raw.permit())
    }

    /// [`acquire`](Self::acquire), waiting at most `timeout`; `None` if the
    /// time ran out first.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if no permit would ever come, nor the time pass.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit<'_>>, Deadlock> {
        Ok(self.raw.acquire(super::deadline(timeout))?.then(|| self.raw.permit()))
    }

    /// Takes a permit if one is free, without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_acquire().then(|| self.raw.permit())
    }

    /// Gives back a permit kept with [`SemaphorePermit::forget`]: hands it to
    /// the first green thread waiting, if any.
    ///
    /// # Errors
    ///
    /// [`TooManyReleases`] if every permit is in already; nothing changes.
    pub fn release(&self) -> Result<(), TooManyReleases> {
        self.raw.release()
    }

    /// How many permits are free now.
    pub fn available_permits(&self) -> usize {
        self.raw.available()
    }

    /// How many permits the semaphore holds when none is taken.
    pub fn max_permits(&self) -> usize {
        self.raw.bound.unwrap_or(usize::MAX)
    }
}

impl Default for BoundedSemaphore {
    /// A semaphore with one permit (gevent's default).
    fn default() -> BoundedSemaphore {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.raw.available())
            .field("max", &self.max_permits())
            .field("waiting", &self.raw.waiters.len())
            .finish()
    }
}

/// A permit taken from a [`Semaphore`] or a [`BoundedSemaphore`]; dropping
/// it gives it back (to the first green thread waiting, if any).
///
/// It is given back however the scope ends: normally, by a panic, or by the
/// unwinding of a kill or an expired [`Timeout`](crate::Timeout).
#[must_use = "dropping the permit gives it back at once"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a RawSemaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: dropping it no longer gives it back, and
    /// [`Semaphore::release`] or [`BoundedSemaphore::release`] does it
    /// later.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // A bounded semaphore that is full already had this permit given
        // back by hand: nothing to give.
        let _ = self.semaphore.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// A [`BoundedSemaphore`] was released more often than it was acquired
/// (gevent's "Semaphore released too many times").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TooManyReleases;

impl fmt::Display for TooManyReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times: every permit is in already")
    }
}

impl Error for TooManyReleases {}
