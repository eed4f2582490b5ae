//! [`Pool`]: a group of green threads of bounded size (gevent's `Pool`), and
//! [`SpawnError`].

use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::tracker::{Tracker, Turn, deadline};
use crate::hub::Deadlock;
use crate::{JoinError, JoinHandle};

/// A group of green threads with at most `size` members at once (gevent's
/// `Pool`): spawning into a full pool waits until a member finishes.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use greenery::sync::Pool;
///
/// let pool = Pool::new(2);
/// let running = Rc::new(Cell::new(0));
/// let most = Rc::new(Cell::new(0));
/// for _ in 0..6 {
///     let (running, most) = (running.clone(), most.clone());
///     // With two members running, this waits for one to finish.
///     pool.spawn(move || {
///         running.set(running.get() + 1);
///         most.set(most.get().max(running.get()));
///         greenery::sleep(Duration::from_millis(5));
///         running.set(running.get() - 1);
///     })
///     .unwrap();
/// }
/// pool.join().unwrap();
/// assert_eq!(most.get(), 2);
/// ```
///
/// # Slots
///
/// A pool has `size` slots. A member holds one from the moment it is spawned
/// until it finishes, however it finishes: it returns, panics, is killed
/// (even before it started), or cannot start. No slot is ever lost.
///
/// Green threads waiting for a slot ([`spawn`](Self::spawn),
/// [`spawn_timeout`](Self::spawn_timeout),
/// [`wait_available`](Self::wait_available)) get one in the order they came:
/// a slot that frees up is handed to the first in line, and a newcomer
/// (even [`try_spawn`](Self::try_spawn)) never takes a slot while others
/// wait for one. A waiter that is killed, times out, or is unwound by a
/// [`Timeout`](crate::Timeout) leaves the line; a slot already handed to it
/// goes to the next in line.
///
/// # Mapping
///
/// [`map`](Self::map), [`imap`](Self::imap) and
/// [`imap_unordered`](Self::imap_unordered) apply a function to items, one
/// member per item, never more than `size` at once (counting the pool's
/// other members). Each item gives a `Result<T, JoinError>`: an item that
/// panics (or is killed) gives an `Err` in its place, with the panic's
/// payload, and the other items carry on. [`apply`](Self::apply) runs one
/// function in the pool and waits for it.
///
/// A member that maps over its own pool competes for slots with the items it
/// waits for, its own slot held meanwhile: in a pool of size 1 it would wait
/// forever. Give nested work a pool of its own (or use `apply`, which runs
/// inline in a member).
///
/// # Sharing
///
/// Clones are handles to the same pool: a member that spawns into its own
/// pool holds a clone. Dropping every handle leaves the members running,
/// untracked, as dropping a [`JoinHandle`] does.
///
/// A pool is `!Send` and `!Sync`: its members are green threads of its
/// thread's hub, and a green thread never leaves its OS thread.
#[derive(Clone)]
pub struct Pool {
    tracker: Rc<Tracker>,
}

impl Pool {
    /// A pool of `size` slots, empty.
    ///
    /// # Panics
    ///
    /// If `size` is 0: nothing could ever run in the pool, and every
    /// [`spawn`](Self::spawn) would wait forever. (gevent allows it, for
    /// pools used only to wait on; a [`Group`](super::Group) tracks green
    /// threads without a bound.)
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "a pool of size 0 could never run anything: a pool needs at least one slot");
        Pool { tracker: Tracker::new(Some(size)) }
    }

    /// The most members the pool has at once.
    pub fn size(&self) -> usize {
        self.tracker.size()
    }

    /// How many slots are free: how many green threads could be spawned
    /// without waiting.
    pub fn free_count(&self) -> usize {
        self.tracker.free_count()
    }

    /// Whether every slot is taken: [`spawn`](Self::spawn) would wait.
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Spawns `f` in a green thread of the pool, waiting first for a free
    /// slot if the pool is full (gevent's `Pool.spawn`); the caller waits in
    /// line with other spawners (see [Slots](#slots)).
    ///
    /// A caller killed (or unwound by a [`Timeout`](crate::Timeout)) while it
    /// waits drops `f` unrun and takes no slot.
    ///
    /// ```
    /// use greenery::sync::Pool;
    ///
    /// let pool = Pool::new(4);
    /// let answer = pool.spawn(|| 6 * 7).unwrap();
    /// assert!(pool.contains(&answer));
    /// assert_eq!(answer.get().unwrap(), 42);
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SpawnError`] for which [`is_deadlock`](SpawnError::is_deadlock)
    /// holds if no slot could ever free up (the pool's members all wait
    /// forever); it hands `f` back.
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_until(f, None)
    }

    /// [`spawn`](Self::spawn), waiting at most `timeout` for a free slot.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenery::sync::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let sleeper = pool.spawn(|| greenery::sleep(Duration::from_secs(5))).unwrap();
    /// let err = pool.spawn_timeout(|| "too late", Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// let f = err.into_inner(); // the closure, back
    /// assert_eq!(f(), "too late");
    /// sleeper.kill().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SpawnError`], handing `f` back, for which
    /// [`is_timeout`](SpawnError::is_timeout) holds if no slot came in
    /// time, or [`is_deadlock`](SpawnError::is_deadlock) if none ever could.
    pub fn spawn_timeout<F, T>(&self, f: F, timeout: Duration) -> Result<JoinHandle<T>, SpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_until(f, deadline(timeout))
    }

    fn spawn_until<F, T>(
        &self,
        f: F,
        deadline: Option<std::time::Instant>,
    ) -> Result<JoinHandle<T>, SpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.tracker.acquire(deadline, None) {
            Turn::Acquired => Ok(self.tracker.spawn_holding(f)),
            Turn::TimedOut | Turn::Interrupted => Err(SpawnError { closure: f, kind: Kind::TimedOut }),
            Turn::Deadlock => Err(SpawnError { closure: f, kind: Kind::Deadlock }),
        }
    }

    /// Spawns `f` in the pool if a slot is free, without waiting.
    ///
    /// ```
    /// use greenery::sync::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let first = pool.try_spawn(|| 1).unwrap();
    /// let err = pool.try_spawn(|| 2).unwrap_err();
    /// assert!(err.is_full());
    /// assert_eq!(err.to_string(), "the pool is full: no free slot to spawn in");
    /// assert_eq!(first.get().unwrap(), 1);
    /// assert!(pool.try_spawn(|| 3).is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SpawnError`] for which [`is_full`](SpawnError::is_full) holds if
    /// no slot is free (or green threads already wait for one); it hands `f`
    /// back.
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.tracker.try_acquire() {
            Ok(self.tracker.spawn_holding(f))
        } else {
            Err(SpawnError { closure: f, kind: Kind::Full })
        }
    }

    /// Blocks until a slot is free for the caller, and leaves it free
    /// (gevent's `wait_available`): waits in line with the spawners, and when
    /// its turn comes the slot goes on to the next in line, if any. A
    /// [`try_spawn`](Self::try_spawn) right after it (with nothing else
    /// waiting) succeeds.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if no slot could ever free up.
    pub fn wait_available(&self) -> Result<(), Deadlock> {
        self.tracker.wait_available(None).map(|_| ())
    }

    /// [`wait_available`](Self::wait_available), waiting at most `timeout`;
    /// returns whether a slot was free for the caller in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenery::sync::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let member = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    /// assert_eq!(pool.wait_available_timeout(Duration::ZERO), Ok(false));
    /// assert_eq!(pool.wait_available_timeout(Duration::from_secs(10)), Ok(true));
    /// assert!(member.is_ready());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if no slot could ever free up, nor the time pass.
    pub fn wait_available_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.tracker.wait_available(deadline(timeout))
    }

    /// Runs `f` in a member and waits for its value (gevent's `apply`),
    /// waiting first for a slot as [`spawn`](Self::spawn) does.
    ///
    /// Called from a member of this pool, it runs `f` at once, on the
    /// caller's own green thread (as gevent does): waiting for a slot there
    /// could wait forever, for the caller's own slot. A panic in `f` is the
    /// `Err` either way; a kill or a [`Timeout`](crate::Timeout) goes on
    /// unwinding the caller.
    ///
    /// If the caller is killed or unwound while it waits for the value, the
    /// member carries on.
    ///
    /// ```
    /// use greenery::sync::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let inner = pool.clone();
    /// // The member runs the inner `apply` itself: it holds the only slot.
    /// let nested = pool.apply(move || inner.apply(|| 21).unwrap() * 2);
    /// assert_eq!(nested.unwrap(), 42);
    /// ```
    ///
    /// # Errors
    ///
    /// [`JoinError`] if `f` panicked (with its payload), its green thread
    /// was killed, or waiting would never end.
    pub fn apply<F, T>(&self, f: F) -> Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.tracker.apply(f)
    }
}

super::members::member_methods!(
    Pool,
    "pool",
    "Pool::new(3)",
    "never more than `size` at once (counting the pool's other members)"
);

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("members", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}

/// A [`Pool`] could not spawn a closure; the error hands it back
/// ([`into_inner`](Self::into_inner)).
pub struct SpawnError<F> {
    closure: F,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    TimedOut,
    Deadlock,
}

impl<F> SpawnError<F> {
    /// Whether the pool was full ([`Pool::try_spawn`]).
    pub fn is_full(&self) -> bool {
        self.kind == Kind::Full
    }

    /// Whether no slot freed up in time ([`Pool::spawn_timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::TimedOut
    }

    /// Whether no slot could ever free up: waiting would have blocked
    /// forever ([`Deadlock`]).
    pub fn is_deadlock(&self) -> bool {
        self.kind == Kind::Deadlock
    }

    /// The closure that was not spawned.
    pub fn into_inner(self) -> F {
        self.closure
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Full => f.write_str("the pool is full: no free slot to spawn in"),
            Kind::TimedOut => f.write_str("timed out waiting for a free slot in the pool"),
            Kind::Deadlock => write!(f, "no slot of the pool can ever free up: {Deadlock}"),
        }
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpawnError({self})")
    }
}

impl<F> Error for SpawnError<F> {}
