//! [`settrace`]: a hook called on every switch (Python greenlet's tracing).

use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use super::{Greenlet, THREAD};

/// What a tracer is told about.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A switch (including a greenlet starting, and one finishing and
    /// returning to its parent).
    Switch,
    /// A [`throw`](Greenlet::throw) (or a kill) arriving.
    Throw,
}

/// A trace function: called with the event, the greenlet switched from
/// (the origin) and the greenlet switched to (the target), on the target's
/// stack just after the switch.
pub type Tracer = Rc<dyn Fn(Event, &Greenlet, &Greenlet)>;

thread_local! {
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
}

/// Sets this thread's trace function (`None` removes it) and returns the
/// previous one (Python greenlet's `settrace`).
///
/// gevent's blocking monitor is built on this: counting switches from a
/// second thread shows when a greenlet has held the thread for too long.
/// With no tracer set, a switch pays for one predictable branch.
///
/// A tracer that panics is removed, and the panic continues in the greenlet
/// that was switched to.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use greenery::greenlet::{self, Event, Greenlet};
///
/// let switches = Rc::new(Cell::new(0));
/// let counter = switches.clone();
/// greenlet::settrace(Some(Rc::new(move |event, _from: &Greenlet, _to: &Greenlet| {
///     if event == Event::Switch {
///         counter.set(counter.get() + 1);
///     }
/// })));
/// Greenlet::new(|_| ()).switch(()).unwrap(); // in, and back out when it ends
/// greenlet::settrace(None);
/// assert_eq!(switches.get(), 2);
/// ```
pub fn settrace(tracer: Option<Tracer>) -> Option<Tracer> {
    let tracing = tracer.is_some();
    let previous = TRACER.with(|slot| slot.replace(tracer));
    THREAD.with(|thread| {
        thread.tracing.set(tracing);
        thread.slow.set(true); // the next switch works out whether it must stay set
    });
    previous
}

/// This thread's trace function, if any (Python greenlet's `gettrace`).
pub fn gettrace() -> Option<Tracer> {
    TRACER.with(|slot| slot.borrow().clone())
}

/// Calls the tracer, if it is still set.
pub(super) fn call(event: Event, origin: &Greenlet, target: &Greenlet) {
    let Some(tracer) = gettrace() else { return };
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| tracer(event, origin, target))) {
        settrace(None);
        panic::resume_unwind(payload);
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Event::Switch => "switch",
            Event::Throw => "throw",
        })
    }
}
