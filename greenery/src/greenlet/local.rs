//! [`GreenletLocal`]: a value per greenlet (Python's `gr_context`).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::{Inner, current_inner};

/// A greenlet's local values, keyed by the address of their
/// [`GreenletLocal`]. A new greenlet has none.
#[derive(Default)]
pub(super) struct Locals(RefCell<Vec<(usize, Rc<dyn Any>)>>);

/// A value of which every greenlet has its own copy, made on first use in
/// that greenlet (Python greenlet's `gr_context`, and what thread-locals are
/// to threads).
///
/// Declare one as a `static`; [`with`](Self::with) reaches the running
/// greenlet's copy. Put a `Cell` or `RefCell` inside to change it.
///
/// ```
/// use std::cell::Cell;
/// use greenery::greenlet::{Greenlet, GreenletLocal};
///
/// static REQUEST_ID: GreenletLocal<Cell<u32>> = GreenletLocal::new(|| Cell::new(0));
///
/// REQUEST_ID.with(|id| id.set(7)); // the main greenlet's copy
/// let child = Greenlet::new(|_| REQUEST_ID.with(|id| id.get()));
/// // A new greenlet starts with a fresh copy.
/// assert_eq!(child.switch(()).unwrap().downcast::<u32>().ok(), Some(0));
/// assert_eq!(REQUEST_ID.with(|id| id.get()), 7);
/// ```
///
/// A greenlet's copies are dropped when the greenlet is.
pub struct GreenletLocal<T: 'static> {
    init: fn() -> T,
}

// SAFETY: a `GreenletLocal` holds only its initialiser (a plain function
// pointer); the values live in the greenlets of each thread and are only
// ever reached from that thread, like `std::thread::LocalKey`'s.
unsafe impl<T: 'static> Sync for GreenletLocal<T> {}

impl<T: 'static> GreenletLocal<T> {
    /// A greenlet-local value, made with `init` in each greenlet that uses
    /// it.
    pub const fn new(init: fn() -> T) -> Self {
        GreenletLocal { init }
    }

    /// Calls `f` with the running greenlet's copy, making it first if this
    /// greenlet has none yet.
    ///
    /// # Panics
    ///
    /// While the thread is being torn down.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: the running greenlet is alive while it runs, and its
        // locals are only touched from this thread.
        let inner: &Inner = unsafe { &*current_inner() };
        let key = self as *const Self as usize;
        let found = inner.locals.0.borrow().iter().find(|(k, _)| *k == key).map(|(_, value)| value.clone());
        let value = match found {
            Some(value) => value,
            None => {
                // Made outside any borrow: `init` may use other locals.
                let value: Rc<dyn Any> = Rc::new((self.init)());
                inner.locals.0.borrow_mut().push((key, value.clone()));
                value
            }
        };
        f(value.downcast_ref::<T>().expect("a greenlet-local holds its own type"))
    }
}

impl<T: 'static> fmt::Debug for GreenletLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenletLocal").finish_non_exhaustive()
    }
}
