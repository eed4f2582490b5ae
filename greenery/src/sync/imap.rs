//! [`Imap`] and [`ImapUnordered`]: a function mapped over items, one green
//! thread per item, in a [`Pool`](super::Pool) or a [`Group`](super::Group).
//!
//! Both are driven by their consumer: there is no feeder green thread. A
//! call to `next` starts items while the pool has free slots, then waits for
//! whichever comes first: the result it can return, or (while items remain)
//! a free slot, which it fills at once. So a slow item holds up the
//! *results* behind it (in input order), never the *work* behind it: the
//! pool keeps running up to its size. Between calls nothing new starts;
//! what was started carries on.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::iter::{Fuse, FusedIterator};
use std::rc::Rc;

use super::tracker::{Tracker, Turn};
use crate::hub::{WaitQueue, Wake};
use crate::{JoinError, JoinHandle};

/// The iterator of [`Pool::imap`](super::Pool::imap) and
/// [`Group::imap`](super::Group::imap): `f` applied to each item in a green
/// thread of its own, the results in the order of the items.
///
/// Each call to [`next`](Iterator::next) starts items while the pool has
/// free slots, and waits for the next result in order, starting more items
/// as slots free up meanwhile (a group has no bound: the first call starts
/// every item). An item whose green thread panicked or was killed gives an
/// `Err` in its place, and the others carry on.
///
/// If waiting for the next result would block forever (on the main
/// greenlet, see [`Deadlock`](crate::hub::Deadlock)), that item's result is
/// a [`JoinError`] for which [`is_deadlock`](JoinError::is_deadlock) holds:
/// its green thread (if it started) is left to itself, and iteration goes on
/// with the next item.
///
/// Results that finish ahead of a slow item wait in the iterator until
/// their turn: behind one very slow item, the rest of the items may all run
/// and wait there.
///
/// Dropping the iterator starts nothing more; the items already started
/// carry on in the pool, their results unread.
///
/// It is `!Send`: the green threads it waits for belong to its thread's hub.
pub struct Imap<T, F, I: Iterator> {
    engine: Engine<T, F, I>,
}

/// The iterator of [`Pool::imap_unordered`](super::Pool::imap_unordered)
/// and [`Group::imap_unordered`](super::Group::imap_unordered): `f` applied
/// to each item in a green thread of its own, the results in the order the
/// green threads finished.
///
/// It starts items as [`Imap`] does, and yields each result as soon as it is
/// there. If waiting for one would block forever (on the main greenlet), the
/// earliest item still running gives a [`JoinError`] for which
/// [`is_deadlock`](JoinError::is_deadlock) holds, and it is left to itself.
///
/// Dropping the iterator starts nothing more; the items already started
/// carry on in the pool, their results unread.
///
/// It is `!Send`: the green threads it waits for belong to its thread's hub.
pub struct ImapUnordered<T, F, I: Iterator> {
    engine: Engine<T, F, I>,
}

/// What [`Imap`] and [`ImapUnordered`] share.
struct Engine<T, F, I: Iterator> {
    tracker: Rc<Tracker>,
    f: Rc<F>,
    items: Fuse<I>,
    /// The next item, taken from `items` to see whether there is one.
    next_item: Option<I::Item>,
    /// The green threads started and not yet yielded, by item position.
    running: BTreeMap<u64, JoinHandle<T>>,
    started: u64,
    /// Notified whenever one of `running` finishes.
    progress: Rc<WaitQueue>,
    /// For [`ImapUnordered`]: the positions of the items whose green
    /// threads finished, in the order they did.
    finished: Option<Rc<RefCell<VecDeque<u64>>>>,
}

impl<T, F, I> Engine<T, F, I>
where
    T: 'static,
    F: Fn(I::Item) -> T + 'static,
    I: Iterator,
    I::Item: 'static,
{
    fn new(tracker: Rc<Tracker>, f: F, items: I, ordered: bool) -> Self {
        Engine {
            tracker,
            f: Rc::new(f),
            items: items.fuse(),
            next_item: None,
            running: BTreeMap::new(),
            started: 0,
            progress: Rc::new(WaitQueue::new("imap")),
            finished: (!ordered).then(|| Rc::new(RefCell::new(VecDeque::new()))),
        }
    }

    fn has_next_item(&mut self) -> bool {
        if self.next_item.is_none() {
            self.next_item = self.items.next();
        }
        self.next_item.is_some()
    }

    /// Starts the next item; the caller holds a slot for it.
    fn start_next(&mut self) {
        let item = self.next_item.take().expect("an item to start");
        let f = self.f.clone();
        // Named after the mapped function, not this wrapper.
        let name = std::any::type_name::<F>();
        let handle = self.tracker.spawn_named(move || f(item), Some(name));
        let position = self.started;
        self.started += 1;
        let progress = self.progress.clone();
        let finished = self.finished.clone();
        handle.raw_link(move || {
            if let Some(finished) = &finished {
                finished.borrow_mut().push_back(position);
            }
            progress.notify_one();
        });
        self.running.insert(position, handle);
    }

    /// The next result, if it is there.
    fn take_finished(&mut self) -> Option<Result<T, JoinError>> {
        match &self.finished {
            None => {
                let first = self.running.first_entry()?;
                first.get().is_ready().then(|| first.remove().get())
            }
            Some(finished) => loop {
                let position = finished.borrow_mut().pop_front()?;
                // Not there if it was given up for a deadlock.
                if let Some(handle) = self.running.remove(&position) {
                    return Some(handle.get());
                }
            },
        }
    }

    fn next(&mut self) -> Option<Result<T, JoinError>> {
        loop {
            while self.has_next_item() && self.tracker.try_acquire() {
                self.start_next();
            }
            if let Some(result) = self.take_finished() {
                return Some(result);
            }
            let more = self.has_next_item();
            if !more && self.running.is_empty() {
                return None;
            }
            let progress = self.progress.clone();
            let wake = if more {
                // The pool is full: wait for a slot, or for one of ours.
                let also = (!self.running.is_empty()).then_some(&*progress);
                match self.tracker.acquire(None, also) {
                    Turn::Acquired => {
                        self.start_next();
                        continue;
                    }
                    Turn::Interrupted | Turn::TimedOut => Wake::Notified,
                    Turn::Deadlock => Wake::Deadlock,
                }
            } else {
                progress.wait(None)
            };
            if wake == Wake::Deadlock {
                // Nothing will ever finish: give up the earliest item.
                match self.running.first_entry() {
                    Some(first) => drop(first.remove()),
                    None => drop(self.next_item.take()),
                }
                return Some(Err(JoinError::deadlock()));
            }
        }
    }

    /// Each item gives exactly one result.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.running.len() + usize::from(self.next_item.is_some());
        let (low, high) = self.items.size_hint();
        (low.saturating_add(known), high.and_then(|high| high.checked_add(known)))
    }
}

/// The constructor and the iterator traits of `$name`, a wrapper of an
/// [`Engine`] whose results come in item order if `$ordered`.
macro_rules! engine_iterator {
    ($name:ident, $ordered:literal) => {
        impl<T, F, I> $name<T, F, I>
        where
            T: 'static,
            F: Fn(I::Item) -> T + 'static,
            I: Iterator,
            I::Item: 'static,
        {
            pub(super) fn new(tracker: Rc<Tracker>, f: F, items: I) -> Self {
                $name { engine: Engine::new(tracker, f, items, $ordered) }
            }
        }

        impl<T, F, I> Iterator for $name<T, F, I>
        where
            T: 'static,
            F: Fn(I::Item) -> T + 'static,
            I: Iterator,
            I::Item: 'static,
        {
            type Item = Result<T, JoinError>;

            fn next(&mut self) -> Option<Self::Item> {
                self.engine.next()
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.engine.size_hint()
            }
        }

        impl<T, F, I> FusedIterator for $name<T, F, I>
        where
            T: 'static,
            F: Fn(I::Item) -> T + 'static,
            I: Iterator,
            I::Item: 'static,
        {
        }

        impl<T, F, I: Iterator> fmt::Debug for $name<T, F, I> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("started", &self.engine.started)
                    .field("unread", &self.engine.running.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

engine_iterator!(Imap, true);
engine_iterator!(ImapUnordered, false);
