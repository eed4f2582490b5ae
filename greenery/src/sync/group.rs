//! [`Group`]: a set of green threads that leave it as they finish (gevent's
//! `Group`).

use std::fmt;
use std::rc::Rc;

use super::tracker::Tracker;
use crate::{JoinError, JoinHandle};

/// A set of running green threads, of any value types, to wait for or kill
/// together (gevent's `Group`). A green thread is a *member* from the moment
/// it is spawned in the group (or added to it) until it finishes, however it
/// finishes: it leaves the group by itself.
///
/// ```
/// use std::time::Duration;
/// use greenery::sync::Group;
///
/// let group = Group::new();
/// let number = group.spawn(|| 42);
/// let word = group.spawn(|| {
///     greenery::sleep(Duration::from_millis(5));
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
    /// use greenery::sync::Group;
    ///
    /// let group = Group::new();
    /// let outsider = greenery::spawn(|| "spawned elsewhere");
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

    /// Runs `f` in a new member and waits for its value (gevent's `apply`).
    ///
    /// Called from a member of this group, it runs `f` at once, on the
    /// caller's own green thread (as gevent does). A panic in `f` is the
    /// `Err` either way; a kill or a [`Timeout`](crate::Timeout) goes on
    /// unwinding the caller. If the caller is killed or unwound while it
    /// waits for the value, the member carries on.
    ///
    /// ```
    /// use greenery::sync::Group;
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
}

super::members::member_methods!(
    Group,
    "group",
    "Group::new()",
    "all at once (a group has no bound: give it no endless iterator)"
);

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
