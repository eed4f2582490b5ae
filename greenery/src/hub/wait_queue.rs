//! [`WaitQueue`]: the FIFO queue of parked greenlets under every blocking
//! primitive.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use super::{Wait, Waiter, Wake, park};

/// Greenlets waiting for something, woken first come, first served.
///
/// The queue holds [`Waiter`]s, never pointers into the waiting greenlets'
/// stacks: a greenlet that gives up (times out, or is killed and unwinds)
/// takes its waiter out as it leaves. A greenlet that was woken but leaves
/// before it could act on it (it was killed, or timed out in the same turn)
/// passes the wake-up on to the next in line, so no wake-up is lost.
pub(crate) struct WaitQueue {
    waiters: RefCell<VecDeque<Rc<Waiter>>>,
    /// What the primitive it belongs to is, for [`dump`](super::dump):
    /// `"Event"`, `"Queue.get"`, ...
    what: &'static str,
}

impl WaitQueue {
    /// A queue of the primitive `what` (`"Event"`, `"Queue.get"`, ...).
    pub(crate) const fn new(what: &'static str) -> Self {
        WaitQueue { waiters: RefCell::new(VecDeque::new()), what }
    }

    /// What a greenlet parked here waits on.
    fn primitive(&self) -> Wait {
        Wait::Primitive(self.what, std::ptr::from_ref(self).addr())
    }

    /// Parks the current greenlet at the back of the queue until a
    /// `notify`, the `deadline`, or a deadlock.
    ///
    /// Wake-ups can be spurious (a passed-on one may find the condition gone
    /// again): callers check their condition in a loop.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Wake {
        self.wait_as(self.primitive(), deadline, || {})
    }

    /// [`wait`](Self::wait), for something that is better described as
    /// `what` than as the queue's primitive (the end of a green thread).
    pub(crate) fn wait_for(&self, what: Wait, deadline: Option<Instant>) -> Wake {
        self.wait_as(what, deadline, || {})
    }

    /// [`wait`](Self::wait) for a hand-off, where whoever notifies hands
    /// something over to the greenlet it wakes (a permit, a lock) instead of
    /// leaving it for anyone to take.
    ///
    /// A greenlet woken this way that leaves without acting on it (it is
    /// killed, or a `Timeout` unwinds it, before it resumed) passes the
    /// wake-up on to the next in line, as with `wait`; if nobody is left to
    /// pass it to, `unclaimed` is called to take back what was handed over.
    pub(crate) fn wait_handoff(&self, deadline: Option<Instant>, unclaimed: impl FnOnce()) -> Wake {
        self.wait_as(self.primitive(), deadline, unclaimed)
    }

    fn wait_as(&self, what: Wait, deadline: Option<Instant>, unclaimed: impl FnOnce()) -> Wake {
        let waiter = Waiter::new();
        self.waiters.borrow_mut().push_back(waiter.clone());
        struct Leave<'a, F: FnOnce()> {
            queue: &'a WaitQueue,
            waiter: &'a Rc<Waiter>,
            acted: Cell<bool>,
            unclaimed: Option<F>,
        }
        impl<F: FnOnce()> Drop for Leave<'_, F> {
            fn drop(&mut self) {
                let was_queued = self.queue.remove(self.waiter);
                if !was_queued && !self.acted.get() && self.waiter.reason.get() == Wake::Notified {
                    // Woken, but leaving without acting on it: the wake-up
                    // goes to the next in line or, with nobody left, what
                    // came with it is taken back.
                    if !self.queue.notify_one()
                        && let Some(unclaimed) = self.unclaimed.take()
                    {
                        unclaimed();
                    }
                }
            }
        }
        let leave =
            Leave { queue: self, waiter: &waiter, acted: Cell::new(false), unclaimed: Some(unclaimed) };
        let reason = park(&waiter, what, deadline);
        leave.acted.set(reason == Wake::Notified);
        reason
    }

    /// Parks the current greenlet in several queues at once, with one waiter,
    /// until one of them wakes it (or the deadline passes, or a deadlock). It
    /// leaves every queue before returning. `what` says what the queues
    /// are, for [`dump`](super::dump).
    pub(crate) fn wait_any(
        queues: &[&WaitQueue],
        waiter: &Rc<Waiter>,
        what: Wait,
        deadline: Option<Instant>,
    ) -> Wake {
        for queue in queues {
            queue.waiters.borrow_mut().push_back(waiter.clone());
        }
        struct Leave<'a> {
            queues: &'a [&'a WaitQueue],
            waiter: &'a Rc<Waiter>,
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                for queue in self.queues {
                    queue.remove(self.waiter);
                }
            }
        }
        let _leave = Leave { queues, waiter };
        park(waiter, what, deadline)
    }

    /// Takes `waiter` out of the queue; returns whether it was there.
    fn remove(&self, waiter: &Rc<Waiter>) -> bool {
        let mut waiters = self.waiters.borrow_mut();
        match waiters.iter().position(|queued| Rc::ptr_eq(queued, waiter)) {
            Some(index) => {
                waiters.remove(index);
                true
            }
            None => false,
        }
    }

    /// Wakes the first greenlet still waiting; returns whether there was one.
    pub(crate) fn notify_one(&self) -> bool {
        loop {
            let Some(waiter) = self.waiters.borrow_mut().pop_front() else { return false };
            if waiter.wake() {
                return true;
            }
        }
    }

    /// Wakes every greenlet waiting; returns how many.
    pub(crate) fn notify_all(&self) -> usize {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().filter(|waiter| waiter.wake()).count()
    }

    /// How many greenlets are waiting.
    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().iter().filter(|waiter| waiter.is_parked()).count()
    }
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitQueue").field("waiting", &self.len()).finish()
    }
}
