//! [`Group`]: a set of green threads that leave it as they finish (gevent's
//! `Group`).

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::imap::{Imap, ImapUnordered};
use super::tracker::{Tracker, deadline};
use crate::hub::Deadlock;
use crate::{JoinError, JoinHandle};

/// A set of running green threads, of any value types, to wait for or kill
/// together (gevent's `Group`). A green thread is a *member* from the moment
/// it is spawned in the group (or added to it) until it finishes, however it
/// finishes: it leaves the group by itself.
///
/// ```
/// use std::time::Duration;
/// use sprig::sync::Group;
///
/// let group = Group::new();
/// let number = group.spawn(|| 42);
/// let word = group.spawn(|| {
///     sprig::sleep(Duration::from_millis(5));
///     "forty-two"
/// });
/// assert_eq!(group.len(), 2);
/// group.join().unwrap();
/// assert!(group.is_empty());
/// assert_eq!((number.get().unwrap(), word.get().unwrap()), (42, "forty-two"));
/// ```
///
/// A group has no bound: [`spawn`](Self::spawn) never waits, and
/// [`map`](Self::map) and its kin start every item at once. A
/// [`Pool`](super::Pool) is a group with a bound.
///
/// # Mapping
///
/// [`map`](Self::map), [`imap`](Self::imap) and
/// [`imap_unordered`](Self::imap_unordered) apply a function to items, one
/// member per item. Each item gives a `Result<T, JoinError>`: an item that
/// panics (or is killed) gives an `Err` in its place, with the panic's
/// payload, and the other items carry on. [`apply`](Self::apply) runs one
/// function in the group and waits for it.
///
/// # Sharing
///
/// Clones are handles to the same group: a member that spawns into its own
/// group holds a clone. Dropping every handle leaves the members running,
/// untracked, as dropping a [`JoinHandle`] does.
///
/// A group is `!Send` and `!Sync`: its members are green threads of its
/// thread's hub, and a green thread never leaves its OS thread.
#[derive(Clone)]
pub struct Group {
    tracker: Rc<Tracker>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group { tracker: Tracker::new(None) }
    }

    /// Spawns `f` in a green thread that is a member of the group until it
    /// finishes (gevent's `Group.spawn`); never waits.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.tracker.spawn_holding(f)
    }

    /// Makes an existing green thread a member until it finishes (gevent's
    /// `Group.add`); returns whether it was added: `false` if it has
    /// finished already, or is a member already.
    ///
    /// ```
    /// use sprig::sync::Group;
    ///
    /// let group = Group::new();
    /// let outsider = sprig::spawn(|| "spawned elsewhere");
    /// assert!(group.add(&outsider));
    /// assert!(!group.add(&outsider));
    /// let number = group.spawn(|| 7); // another value type, same group
    /// group.join().unwrap();
    /// assert!(!group.contains(&outsider));
    /// assert!(!group.add(&outsider)); // finished
    /// assert_eq!(number.get().unwrap(), 7);
    /// ```
    pub fn add<T: 'static>(&self, handle: &JoinHandle<T>) -> bool {
        self.tracker.add(handle)
    }

    /// How many members are running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether no member is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `handle`'s green thread is a member: it was spawned in (or
    /// added to) this group and has not finished.
    pub fn contains<T>(&self, handle: &JoinHandle<T>) -> bool {
        self.tracker.contains(handle.id())
    }

    /// Blocks until the group has been empty at least once since the call
    /// (gevent's `join`): members spawned meanwhile may still be running
    /// when it returns. Called from a member, it waits for that member too:
    /// forever.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if the group never could be empty.
    pub fn join(&self) -> Result<(), Deadlock> {
        self.tracker.join(None).map(|_| ())
    }

    /// [`join`](Self::join), waiting at most `timeout`; returns whether the
    /// group was empty in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sprig::sync::Group;
    ///
    /// let group = Group::new();
    /// group.spawn(|| sprig::sleep(Duration::from_secs(10)));
    /// assert_eq!(group.join_timeout(Duration::from_millis(5)), Ok(false));
    /// group.kill().unwrap();
    /// assert_eq!(group.join_timeout(Duration::ZERO), Ok(true));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could be empty, nor the time pass.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.tracker.join(deadline(timeout))
    }

    /// Kills every member and waits until they are dead (gevent's `kill`);
    /// members that join meanwhile are killed too. Called from a member, it
    /// kills that member last, once the others are dead: it unwinds the
    /// caller and does not return.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if a member cannot die (see [`JoinHandle::kill`]).
    pub fn kill(&self) -> Result<(), Deadlock> {
        self.tracker.kill()
    }

    /// Asks for every member to be killed, and returns at once (gevent's
    /// `kill(block=False)`); see [`JoinHandle::kill_async`]. Called from a
    /// member, it kills that member last: it unwinds the caller.
    pub fn kill_async(&self) {
        self.tracker.kill_async();
    }

    /// Runs `f` in a new member and waits for its value (gevent's `apply`).
    ///
    /// Called from a member of this group, it runs `f` at once, on the
    /// caller's own green thread (as gevent does). A panic in `f` is the
    /// `Err` either way; a kill or a [`Timeout`](crate::Timeout) goes on
    /// unwinding the caller. If the caller is killed or unwound while it
    /// waits for the value, the member carries on.
    ///
    /// ```
    /// use sprig::sync::Group;
    ///
    /// let group = Group::new();
    /// assert_eq!(group.apply(|| 6 * 7).unwrap(), 42);
    /// let err = group.apply(|| -> u32 { panic!("no answer") }).unwrap_err();
    /// assert!(err.is_panic());
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

    /// Applies `f` to every item, each in a member of its own, all at once,
    /// and returns the results in the order of the items ([`imap`](Self::imap),
    /// collected).
    ///
    /// ```
    /// use sprig::sync::Group;
    ///
    /// let group = Group::new();
    /// let lengths = group.map(|word: &str| word.len(), ["one", "three", "seven"]);
    /// let lengths: Vec<usize> = lengths.into_iter().map(Result::unwrap).collect();
    /// assert_eq!(lengths, [3, 5, 5]);
    /// ```
    pub fn map<A, T, F, I>(&self, f: F, items: I) -> Vec<Result<T, JoinError>>
    where
        F: Fn(A) -> T + 'static,
        I: IntoIterator<Item = A>,
        A: 'static,
        T: 'static,
    {
        self.imap(f, items).collect()
    }

    /// Applies `f` to every item, each in a member of its own: see [`Imap`].
    /// The first call to `next` starts every item (a group has no bound: give
    /// it no endless iterator); the results come in the order of the items.
    pub fn imap<A, T, F, I>(&self, f: F, items: I) -> Imap<T, F, I::IntoIter>
    where
        F: Fn(A) -> T + 'static,
        I: IntoIterator<Item = A>,
        A: 'static,
        T: 'static,
    {
        Imap::new(self.tracker.clone(), f, items.into_iter())
    }

    /// [`imap`](Self::imap) with the results in the order the items
    /// finished: see [`ImapUnordered`].
    pub fn imap_unordered<A, T, F, I>(&self, f: F, items: I) -> ImapUnordered<T, F, I::IntoIter>
    where
        F: Fn(A) -> T + 'static,
        I: IntoIterator<Item = A>,
        A: 'static,
        T: 'static,
    {
        ImapUnordered::new(self.tracker.clone(), f, items.into_iter())
    }
}

impl Default for Group {
    fn default() -> Group {
        Group::new()
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("members", &self.len()).finish()
    }
}
