//! The hub's sweep: finding green threads that stay parked, and stashing
//! their stacks.
//!
//! A green thread parked on the hub keeps at least a page of its stack
//! committed. Once it has stayed parked for a while, the hub copies the live
//! part of its stack to the heap and gives the pages back
//! ([`stack::Stash`](crate::stack)); the switch that next resumes it puts
//! them back first. See [`stash_after`](crate::stack::stash_after) for how
//! to tune or turn it off.
//!
//! # Protocol
//!
//! - **Listing.** A green thread that parks (and is not listed already) is
//!   appended to the `listed` entries, with its park count (odd while
//!   parked: see `Greenlet::note_parked`). Listing costs a push; a thread
//!   that parks again and again is listed once.
//! - **Sweeps.** Every `stash_after` (only while something is listed) the
//!   hub takes the listed entries and examines them, a slice per turn of its
//!   loop, so that a sweep over many threads never holds up the others for
//!   long. An entry whose thread is gone, or not parked now, is dropped. An
//!   entry seen at the previous sweep whose thread is parked with the same
//!   count has been parked ever since: its stack is stashed, and the entry
//!   dropped. Any other entry is noted as seen, with its count, for the next
//!   sweep. A thread is therefore stashed after between one and two periods
//!   of an unbroken park.
//! - **No keep-alive.** Entries hold weak handles: the sweep never keeps a
//!   green thread alive, and it is not something that can wake one, so it
//!   does not count against the deadlock check. With nothing listed, the hub
//!   does not wake for it.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, WeakGreenlet};
use crate::stack;

/// Entries examined per turn of the hub's loop.
const SLICE: usize = 1024;

/// The listed entries are pruned (of threads gone or awake) when they grow
/// past this, and past twice what the last pruning kept.
const PRUNE_AT_LEAST: usize = 4096;

struct Entry {
    greenlet: WeakGreenlet,
    /// Its park count when listed or last examined.
    parks: u32,
    /// Whether `parks` was read at a sweep (rather than when listed).
    seen: bool,
}

pub(super) struct Sweep {
    listed: RefCell<Vec<Entry>>,
    /// The entries of the sweep in progress, not yet examined.
    examining: RefCell<Vec<Entry>>,
    /// When the next sweep starts; `None` while nothing is listed.
    next: Cell<Option<Instant>>,
    prune_at: Cell<usize>,
}

impl Sweep {
    pub(super) fn new() -> Sweep {
        Sweep {
            listed: RefCell::new(Vec::new()),
            examining: RefCell::new(Vec::new()),
            next: Cell::new(None),
            prune_at: Cell::new(PRUNE_AT_LEAST),
        }
    }

    /// Called as `greenlet` parks.
    #[inline]
    pub(super) fn parked(&self, greenlet: &Greenlet) {
        greenlet.note_parked();
        if greenlet.list() {
            self.list(greenlet);
        }
    }

    #[cold]
    #[inline(never)]
    fn list(&self, greenlet: &Greenlet) {
        let Some(period) = stack::stash_after() else {
            greenlet.unlist();
            return;
        };
        let len = {
            let mut listed = self.listed.borrow_mut();
            listed.push(Entry { greenlet: greenlet.downgrade(), parks: greenlet.parks(), seen: false });
            listed.len()
        };
        if self.next.get().is_none() {
            self.next.set(Some(Instant::now() + period));
        }
        if len >= self.prune_at.get() {
            self.prune();
        }
    }

    /// Drops the listed entries of threads that are gone or not parked.
    fn prune(&self) {
        let mut listed = self.listed.borrow_mut();
        listed.retain_mut(|entry| match entry.greenlet.upgrade() {
            Some(greenlet) if greenlet.parks() % 2 == 1 => {
                if greenlet.parks() != entry.parks {
                    entry.parks = greenlet.parks();
                    entry.seen = false;
                }
                true
            }
            Some(greenlet) => {
                greenlet.unlist();
                false
            }
            None => false,
        });
        self.prune_at.set(PRUNE_AT_LEAST.max(2 * listed.len()));
    }

    /// How long the hub may wait for events, given that its timers let it
    /// wait `wait`: no longer than until the next sweep, and not at all
    /// while a sweep is in progress.
    pub(super) fn limit_wait(&self, wait: Option<Duration>, now: Instant) -> Option<Duration> {
        if !self.examining.borrow().is_empty() {
            return Some(Duration::ZERO);
        }
        match self.next.get() {
            Some(at) => {
                let until = at.saturating_duration_since(now);
                Some(wait.map_or(until, |wait| wait.min(until)))
            }
            None => wait,
        }
    }

    /// Starts a sweep if one is due, and examines a slice of the one in
    /// progress.
    #[inline]
    pub(super) fn run(&self, now: Instant) {
        if self.next.get().is_some_and(|at| at <= now) || !self.examining.borrow().is_empty() {
            self.run_slice(now);
        }
    }

    fn run_slice(&self, now: Instant) {
        if self.examining.borrow().is_empty() {
            match self.next.get() {
                Some(at) if at <= now => {}
                _ => return,
            }
            let Some(period) = stack::stash_after() else {
                self.forget_all();
                return;
            };
            let listed = std::mem::take(&mut *self.listed.borrow_mut());
            *self.examining.borrow_mut() = listed;
            self.next.set(Some(now + period));
        }
        let mut to_stash = Vec::new();
        for _ in 0..SLICE {
            let Some(mut entry) = self.examining.borrow_mut().pop() else { break };
            let Some(greenlet) = entry.greenlet.upgrade() else { continue };
            let parks = greenlet.parks();
            if parks % 2 == 0 {
                greenlet.unlist();
            } else if entry.seen && parks == entry.parks {
                greenlet.unlist();
                to_stash.push(greenlet);
            } else {
                entry.parks = parks;
                entry.seen = true;
                self.listed.borrow_mut().push(entry);
            }
        }
        if !to_stash.is_empty() {
            Greenlet::stash_all(&to_stash);
        }
        if self.examining.borrow().is_empty() {
            let listed = self.listed.borrow().len();
            self.prune_at.set(PRUNE_AT_LEAST.max(2 * listed));
            if listed == 0 {
                self.next.set(None);
            }
        }
    }

    /// Stashing was turned off: drops every entry.
    fn forget_all(&self) {
        let listed = std::mem::take(&mut *self.listed.borrow_mut());
        for entry in listed {
            if let Some(greenlet) = entry.greenlet.upgrade() {
                greenlet.unlist();
            }
        }
        self.next.set(None);
    }
}
