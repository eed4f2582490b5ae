//! The state shared by a [`Group`](super::Group) and a [`Pool`](super::Pool):
//! their members and, for a pool, its slots.
//!
//! # Members
//!
//! A member is a green thread spawned in the group (or added to it) that has
//! not finished. When it joins, it gets a link ([`JoinHandle::link`]) that
//! takes it out again when it finishes, whichever way: returned, panicked,
//! killed, killed before it started, or could not start. Links run on the
//! finishing green thread (or on its killer, if it never started), right
//! after its joiners are woken and before anything else runs, so nobody sees
//! a finished member. The link holds the tracker weakly: once every handle
//! to a group is gone, its members carry on untracked.
//!
//! Members are kept type-erased ([`AnyJoinHandle`]), by id, so one group
//! holds green threads of any value types. When the last member leaves,
//! `emptied` counts one more emptying and every joiner is woken: a join
//! waits for the group to be empty *at least once* since it began (gevent's
//! semantics; a member spawned meanwhile does not hold it up once it has
//! been empty).
//!
//! # Slots
//!
//! A pool of size `n` has `n` slots; each member spawned in it holds one,
//! taken before the green thread is spawned and given back by its leave
//! link. The slots not held are `free`. Green threads waiting for one stand
//! in `line`, each with a [`Ticket`] and a wait queue of its own.
//!
//! A slot given back goes to the first ticket in line, if any: it is
//! *granted* (the slot changes hands without ever being free) and its holder
//! is woken; only when nobody waits does `free` grow. Hence the invariant
//! **`free > 0` only when the line is empty**, and a newcomer takes a free
//! slot only if nobody waits before it: slots go to waiters in the order they
//! came, and a wake-up is never a false alarm.
//!
//! A waiter leaves the line however it stops waiting (got its slot, timed
//! out, was interrupted, killed or unwound by a `Timeout`). If its ticket was
//! granted and it will not use the slot (the grant raced with its timeout,
//! or it was killed after the grant but before it ran, or it only wanted to
//! see a free slot), it gives the slot back, which grants it to the next in
//! line: no slot is lost and no wake-up is wasted.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::hub::{AnyJoinHandle, Deadlock, Wait, WaitQueue, Waiter, Wake};
use crate::{JoinError, JoinHandle};

/// The deadline `timeout` from now; `None` (no deadline) if it is too far
/// to represent.
pub(super) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A member, whatever its value type.
type Member = AnyJoinHandle;

/// How a wait for a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// The caller holds a slot now.
    Acquired,
    TimedOut,
    /// The other queue it waited on woke it first.
    Interrupted,
    Deadlock,
}

/// The members of a group, and a pool's slots.
pub(super) struct Tracker {
    members: RefCell<BTreeMap<u64, Member>>,
    /// How many times the group has become empty.
    emptied: Cell<u64>,
    /// Green threads in [`join`](Self::join).
    joiners: WaitQueue,
    /// `None` for a group: no bound.
    slots: Option<Slots>,
    /// The raw link of every member (one for all, so that a member's costs
    /// no allocation): takes the finished green thread with this id out.
    leave: Rc<dyn Fn(u64)>,
}

/// A pool's slots (see the module documentation).
struct Slots {
    size: usize,
    free: Cell<usize>,
    line: RefCell<VecDeque<Rc<Ticket>>>,
}

/// A place in line for a slot.
struct Ticket {
    /// A slot was handed to this ticket's holder.
    granted: Cell<bool>,
    /// Where its holder waits: only it ever waits here.
    wake: WaitQueue,
}

impl Slots {
    fn try_acquire(&self) -> bool {
        let free = self.free.get();
        if free == 0 {
            return false;
        }
        debug_assert!(self.line.borrow().is_empty(), "a free slot while green threads wait for one");
        self.free.set(free - 1);
        true
    }

    /// Gives a slot back: to the first in line, or to the free ones.
    fn release(&self) {
        let first = self.line.borrow_mut().pop_front();
        match first {
            Some(ticket) => {
                ticket.granted.set(true);
                // It may not be parked (woken by its other queue, or its
                // deadline, this very turn): it sees the grant when it runs.
                ticket.wake.notify_one();
            }
            None => {
                debug_assert!(self.free.get() < self.size, "more slots given back than taken");
                self.free.set(self.free.get() + 1);
            }
        }
    }

    /// Waits in line for a slot, until the `deadline`, or until `also` is
    /// notified.
    fn acquire(&self, deadline: Option<Instant>, also: Option<&WaitQueue>) -> Turn {
        if self.try_acquire() {
            return Turn::Acquired;
        }
        let ticket = Rc::new(Ticket { granted: Cell::new(false), wake: WaitQueue::new("Pool slot") });
        self.line.borrow_mut().push_back(ticket.clone());
        // However we leave (a kill or a `Timeout` unwinds through here), we
        // leave the line, and a slot granted to us but not taken goes on.
        struct Leave<'a> {
            slots: &'a Slots,
            ticket: &'a Rc<Ticket>,
            taken: bool,
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                if self.ticket.granted.get() {
                    if !self.taken {
                        self.slots.release();
                    }
                } else {
                    self.slots.line.borrow_mut().retain(|queued| !Rc::ptr_eq(queued, self.ticket));
                }
            }
        }
        let mut leave = Leave { slots: self, ticket: &ticket, taken: false };
        loop {
            let wake = match also {
                None => ticket.wake.wait(deadline),
                Some(other) => {
                    let what = Wait::Primitive("Pool slot", std::ptr::from_ref(self).addr());
                    WaitQueue::wait_any(&[&ticket.wake, other], &Waiter::new(), what, deadline)
                }
            };
            // A grant wins over whatever else woke us.
            if ticket.granted.get() {
                leave.taken = true;
                return Turn::Acquired;
            }
            match wake {
                Wake::Notified if also.is_some() => return Turn::Interrupted,
                Wake::Notified => {} // only a grant notifies our own queue
                Wake::TimedOut => return Turn::TimedOut,
                Wake::Deadlock => return Turn::Deadlock,
            }
        }
    }
}

impl Tracker {
    /// A group (`size` `None`) or a pool of `size` slots.
    pub(super) fn new(size: Option<usize>) -> Rc<Tracker> {
        Rc::new_cyclic(|tracker: &Weak<Tracker>| {
            let tracker = tracker.clone();
            Tracker {
                members: RefCell::new(BTreeMap::new()),
                emptied: Cell::new(0),
                joiners: WaitQueue::new("Group.join"),
                slots: size.map(|size| Slots {
                    size,
                    free: Cell::new(size),
                    line: RefCell::new(VecDeque::new()),
                }),
                // A pool's members hold slots; a group's do not.
                leave: Rc::new(move |id| {
                    if let Some(tracker) = tracker.upgrade() {
                        tracker.leave(id, tracker.slots.is_some());
                    }
                }),
            }
        })
    }

    pub(super) fn len(&self) -> usize {
        self.members.borrow().len()
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.members.borrow().contains_key(&id)
    }

    /// The pool's size (`usize::MAX` for a group).
    pub(super) fn size(&self) -> usize {
        self.slots.as_ref().map_or(usize::MAX, |slots| slots.size)
    }

    /// The slots nobody holds (`usize::MAX` for a group).
    pub(super) fn free_count(&self) -> usize {
        self.slots.as_ref().map_or(usize::MAX, |slots| slots.free.get())
    }

    /// Takes a free slot if there is one (always, for a group).
    pub(super) fn try_acquire(&self) -> bool {
        self.slots.as_ref().is_none_or(Slots::try_acquire)
    }

    /// Waits for a slot (at once, for a group), until the `deadline` or
    /// until `also` is notified.
    pub(super) fn acquire(&self, deadline: Option<Instant>, also: Option<&WaitQueue>) -> Turn {
        match &self.slots {
            None => Turn::Acquired,
            Some(slots) => slots.acquire(deadline, also),
        }
    }

    /// Waits, in line with the spawners, until a slot is free for the
    /// caller, and leaves it free; returns whether one was before the
    /// `deadline`.
    pub(super) fn wait_available(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        let Some(slots) = &self.slots else { return Ok(true) };
        if slots.free.get() > 0 {
            return Ok(true);
        }
        match slots.acquire(deadline, None) {
            Turn::Acquired => {
                slots.release();
                Ok(true)
            }
            Turn::TimedOut | Turn::Interrupted => Ok(false),
            Turn::Deadlock => Err(Deadlock),
        }
    }

    /// Spawns `f` as a member; the caller holds a slot for it (see
    /// [`acquire`](Self::acquire)).
    pub(super) fn spawn_holding<F, T>(self: &Rc<Self>, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_named(f, None)
    }

    /// [`spawn_holding`](Self::spawn_holding), naming the green thread.
    pub(super) fn spawn_named<F, T>(self: &Rc<Self>, f: F, name: Option<&'static str>) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let handle = crate::hub::spawn_with(f, name.map(Cow::Borrowed), None);
        self.track(&handle);
        handle
    }

    /// Makes a running green thread a member (a group's `add`); returns
    /// whether it was not one and has not finished.
    pub(super) fn add<T: 'static>(self: &Rc<Self>, handle: &JoinHandle<T>) -> bool {
        debug_assert!(self.slots.is_none(), "a pool's members hold slots");
        if handle.is_ready() || self.contains(handle.id()) {
            return false;
        }
        self.track(handle);
        true
    }

    /// Makes `handle` a member, which leaves as it finishes (a pool's
    /// giving its slot back).
    fn track<T: 'static>(self: &Rc<Self>, handle: &JoinHandle<T>) {
        self.members.borrow_mut().insert(handle.id(), handle.erased());
        handle.raw_link_shared(&self.leave);
    }

    fn leave(&self, id: u64, holds_slot: bool) {
        let member = self.members.borrow_mut().remove(&id);
        let emptied = member.is_some() && self.members.borrow().is_empty();
        drop(member); // outside the borrow
        if emptied {
            self.emptied.set(self.emptied.get() + 1);
            self.joiners.notify_all();
        }
        if holds_slot && let Some(slots) = &self.slots {
            slots.release();
        }
    }

    /// Waits until the group has been empty at least once since the call,
    /// or the `deadline`; returns whether it was.
    pub(super) fn join(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        let start = self.emptied.get();
        let done = || self.emptied.get() != start || self.members.borrow().is_empty();
        while !done() {
            match self.joiners.wait(deadline) {
                Wake::Notified => {}
                Wake::TimedOut => return Ok(done()),
                Wake::Deadlock => return Err(Deadlock),
            }
        }
        Ok(true)
    }

    /// The members, the running green thread (if a member) apart.
    fn members(&self) -> (Vec<Member>, Option<Member>) {
        let mut me = None;
        let mut others = Vec::new();
        for member in self.members.borrow().values() {
            if member.is_current() {
                me = Some(member.clone());
            } else {
                others.push(member.clone());
            }
        }
        (others, me)
    }

    /// Kills every member, the caller (if a member) last, and waits until
    /// they are dead; members that join meanwhile are killed too.
    pub(super) fn kill(&self) -> Result<(), Deadlock> {
        loop {
            let (others, me) = self.members();
            if others.is_empty() {
                if let Some(me) = me {
                    me.kill_async(); // unwinds the caller
                }
                return Ok(());
            }
            for member in &others {
                member.kill_async();
            }
            for member in &others {
                member.join()?;
            }
        }
    }

    /// Asks for every member to be killed, the caller (if a member) last.
    pub(super) fn kill_async(&self) {
        let (others, me) = self.members();
        for member in &others {
            member.kill_async();
        }
        if let Some(me) = me {
            me.kill_async(); // unwinds the caller
        }
    }

    /// Whether the running green thread is a member.
    pub(super) fn current_is_member(&self) -> bool {
        self.members.borrow().values().any(|member| member.is_current())
    }

    /// Runs `f` in a new member and waits for its value; inline if the
    /// caller is a member already.
    pub(super) fn apply<F, T>(self: &Rc<Self>, f: F) -> Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.current_is_member() {
            return match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(value) => Ok(value),
                Err(payload) if crate::is_forced_unwind(&*payload) => panic::resume_unwind(payload),
                Err(payload) => Err(JoinError::panicked(payload)),
            };
        }
        match self.acquire(None, None) {
            Turn::Acquired => self.spawn_holding(f).get(),
            Turn::TimedOut | Turn::Interrupted | Turn::Deadlock => Err(JoinError::deadlock()),
        }
    }
}
