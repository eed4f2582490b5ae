//! The hub's sweep: finding green threads that stay parked, and stashing
//! their stacks; and giving back memory once green threads stop finishing.
//!
//! A green thread parked on the hub keeps at least a page of its stack
//! committed. Once it has stayed parked for a while, the hub copies the live
//! part of its stack to the heap and gives the pages back (see
//! [`stash_after`](crate::stack::stash_after)); the switch that next resumes
//! it puts them back first.
//!
//! # Protocol
//!
//! - **Parking.** A greenlet that parks joins its thread's list of parked
//!   greenlets (intrusive, in park order, kept by the greenlet module) with
//!   the sweep's current *generation*, and leaves it when its park ends. That
//!   is a few pointer writes each way; nothing is allocated.
//! - **Sweeps.** Every `stash_after`, while anything is parked, a sweep
//!   starts: it notes the generation as its *cutoff* and moves the generation
//!   on. A greenlet that parked in a generation before the cutoff parked
//!   before the previous sweep started, so it has stayed parked for at least
//!   one whole period: the sweep takes it off the list and stashes its stack.
//!   The list is in park order, so those greenlets are at its head, and the
//!   sweep stops at the first younger one. It works through them a slice per
//!   turn of the hub's loop, so that a sweep over many green threads never
//!   holds the others up for long. A greenlet is therefore stashed after
//!   between one and two periods of an unbroken park.
//! - **No keep-alive.** The list holds no references: a greenlet that is
//!   dropped leaves it. The sweep wakes nothing, so it does not count
//!   against the deadlock check, and with nothing parked the hub does not
//!   wake for it.
//! - **Memory after a burst.** Each time the hub is about to wait for
//!   events, it asks the stack pool whether a stack came back since it last
//!   asked (a flag, cleared by asking). If one did, it sets its *release
//!   time* to [`release_after`](stack::release_after) from now, so the
//!   release time moves on while green threads keep finishing. When it
//!   passes, the hub gives back what finished stacks keep and asks malloc
//!   to trim its free memory, once, and forgets the release time until a
//!   stack comes back again. Like the sweep, the release wakes nothing and
//!   does not count against the deadlock check.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::stack;

/// Greenlets stashed, at most, per turn of the hub's loop.
const SLICE: usize = 512;

pub(super) struct Sweep {
    /// The generation a greenlet that parks now belongs to.
    generation: Cell<u64>,
    /// While a sweep is in progress, the generation it stashes below.
    cutoff: Cell<Option<u64>>,
    /// When the next sweep starts; `None` while nothing is parked.
    next: Cell<Option<Instant>>,
    /// When the memory of finished stacks and malloc's free memory are
    /// given back; `None` until a stack comes back.
    release: Cell<Option<Instant>>,
}

impl Sweep {
    pub(super) fn new() -> Sweep {
        Sweep {
            generation: Cell::new(0),
            cutoff: Cell::new(None),
            next: Cell::new(None),
            release: Cell::new(None),
        }
    }

    /// Called as `greenlet` parks.
    #[inline]
    pub(super) fn parked(&self, greenlet: &Greenlet) {
        greenlet.note_parked(self.generation.get());
        if self.next.get().is_none() {
            self.schedule();
        }
    }

    #[cold]
    #[inline(never)]
    fn schedule(&self) {
        if let Some(period) = stack::stash_after() {
            self.next.set(Some(Instant::now() + period));
        }
    }

    /// How long the hub may wait for events, given that its timers let it
    /// wait `wait`: no longer than until the next sweep or release, and not
    /// at all while a sweep is in progress.
    pub(super) fn limit_wait(&self, wait: Option<Duration>, now: Instant) -> Option<Duration> {
        if self.cutoff.get().is_some() {
            return Some(Duration::ZERO);
        }
        if stack::take_returned()
            && let Some(after) = stack::release_after()
        {
            self.release.set(Some(now + after));
        }
        [self.next.get(), self.release.get()].into_iter().flatten().fold(wait, |wait, at| {
            let until = at.saturating_duration_since(now);
            Some(wait.map_or(until, |wait| wait.min(until)))
        })
    }

    /// Starts a sweep if one is due at `now`, and works through a slice of
    /// the one in progress.
    #[inline]
    pub(super) fn run(&self, now: Instant) {
        if self.cutoff.get().is_some() || self.next.get().is_some_and(|at| at <= now) {
            self.run_slice(now);
        }
        if self.release.get().is_some_and(|at| at <= now) {
            self.release_memory();
        }
    }

    /// Gives back the memory finished green threads left for the next ones
    /// (see [`release_after`](stack::release_after)).
    #[cold]
    fn release_memory(&self) {
        self.release.set(None);
        let Some(after) = stack::release_after() else { return };
        stack::release_idle(after);
        crate::sys::trim_heap();
    }

    fn run_slice(&self, now: Instant) {
        let cutoff = match self.cutoff.get() {
            Some(cutoff) => cutoff,
            None => {
                let Some(period) = stack::stash_after() else {
                    self.next.set(None); // stashing was turned off
                    return;
                };
                let cutoff = self.generation.get();
                self.generation.set(cutoff + 1);
                self.next.set(Some(now + period));
                cutoff
            }
        };
        let (_, more) = Greenlet::stash_parked_before(cutoff, SLICE);
        self.cutoff.set(more.then_some(cutoff));
        if !more && !Greenlet::any_parked() {
            self.next.set(None);
        }
    }
}
