//! [`ErrorReport`] and the error handler: what happens to an error that
//! cannot be propagated (gevent's `Hub.handle_error` and `print_exception`).
//!
//! A green thread that panics, a link that panics, a greenlet or a generator
//! that misbehaves while it is dropped: each ends in one report, which goes
//! to this thread's error handler. The default handler writes the report's
//! line to stderr ([`print_error`]); [`set_error_handler`] replaces it, to
//! log the reports elsewhere, count them, or keep them out of a test's
//! output.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use super::monitor::{self, BlockingReport};

/// An error that could not be propagated, as handed to the error handler
/// (gevent's `handle_error(context, type, value, tb)`).
///
/// Its [`Display`](fmt::Display) is the line the default handler prints:
///
/// ```text
/// greenery: 'worker' (green thread 3) failed: boom
/// ```
pub struct ErrorReport<'a> {
    name: &'a str,
    what: &'a str,
    message: &'a str,
    payload: Option<&'a (dyn Any + Send)>,
    green_thread: Option<u64>,
    blocking: Option<&'a BlockingReport>,
}

impl<'a> ErrorReport<'a> {
    pub(crate) fn new(name: &'a str, what: &'a str, message: &'a str) -> Self {
        ErrorReport { name, what, message, payload: None, green_thread: None, blocking: None }
    }

    pub(crate) fn with_payload(mut self, payload: &'a (dyn Any + Send)) -> Self {
        self.payload = Some(payload);
        self
    }

    pub(crate) fn with_green_thread(mut self, id: u64) -> Self {
        self.green_thread = Some(id);
        self
    }

    pub(crate) fn with_blocking(mut self, blocking: &'a BlockingReport) -> Self {
        self.blocking = Some(blocking);
        self
    }

    /// The name of what failed: a green thread's or greenlet's name, the
    /// type name of its closure, `"hub"`, or a link's description.
    pub fn name(&self) -> &str {
        self.name
    }

    /// What happened, in a few words: `"(green thread 3) failed"`,
    /// `"panicked while being killed on drop"`, ...
    pub fn what(&self) -> &str {
        self.what
    }

    /// The panic's message (empty when there was no panic); a payload that
    /// is neither a string nor an error greenery knows reads
    /// `"Box<dyn Any>"`, as in Rust's own panic reports.
    pub fn message(&self) -> &str {
        self.message
    }

    /// The panic's payload, when the report is about one: downcast it to
    /// see what the green thread panicked with.
    pub fn payload(&self) -> Option<&(dyn Any + Send)> {
        self.payload
    }

    /// The [`id`](crate::JoinHandle::id) of the green thread that failed,
    /// when the report is about a green thread.
    pub fn green_thread(&self) -> Option<u64> {
        self.green_thread
    }

    /// What the monitor saw, when the report is about a hub that did not come
    /// back to its loop for longer than
    /// [`max_blocking_time`](crate::hub::max_blocking_time): which green
    /// thread held it, for how long, and where.
    pub fn blocking(&self) -> Option<&'a BlockingReport> {
        self.blocking
    }
}

impl fmt::Display for ErrorReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "greenery: '{}' {}", self.name, self.what)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorReport")
            .field("name", &self.name)
            .field("what", &self.what)
            .field("message", &self.message)
            .field("green_thread", &self.green_thread)
            .field("blocking", &self.blocking)
            .finish_non_exhaustive()
    }
}

/// An error handler: see [`set_error_handler`].
pub type ErrorHandler = Rc<dyn Fn(&ErrorReport<'_>)>;

thread_local! {
    static HANDLER: RefCell<Option<ErrorHandler>> = const { RefCell::new(None) };
}

/// Makes `handler` this thread's error handler (gevent's
/// `hub.handle_error = ...`); returns the one it replaces (`None` for the
/// default, [`print_error`]).
///
/// Every report of an error that cannot be propagated goes to the handler
/// of the thread it happens on: a green thread that panicked (its
/// [`JoinHandle::get`](crate::JoinHandle::get) still returns the error), a
/// link that panicked, a greenlet or generator that misbehaved while it was
/// dropped, a deadlock nobody waits to be told about. A handler that panics
/// is reported on stderr, with the report it was given.
///
/// A report of the [monitor](crate::hub::max_blocking_time) about this
/// thread's hub comes to the handler once the hub is back in its loop (the
/// default handler has it written to stderr at once, by the monitor's
/// thread, while the hub is still blocked).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use greenery::hub::{self, ErrorReport};
///
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let previous = hub::set_error_handler({
///     let seen = seen.clone();
///     move |report: &ErrorReport<'_>| seen.borrow_mut().push(report.to_string())
/// });
/// let worker = greenery::Builder::new().name("worker").spawn(|| panic!("boom"));
/// assert!(worker.get().unwrap_err().is_panic());
/// assert_eq!(*seen.borrow(), ["greenery: 'worker' (green thread 1) failed: boom"]);
/// hub::reset_error_handler(previous);
/// ```
///
/// (Rust's panic hook still prints its own message for the panic, as for any
/// panic: see [`std::panic::set_hook`]. In a test, the test harness keeps
/// that message out of a passing test's output.)
pub fn set_error_handler(handler: impl Fn(&ErrorReport<'_>) + 'static) -> Option<ErrorHandler> {
    monitor::error_handler_changed(false);
    HANDLER.with(|slot| slot.borrow_mut().replace(Rc::new(handler)))
}

/// Puts `previous` back as this thread's error handler (`None`: the
/// default, [`print_error`]); returns the one it replaces. Pass it what
/// [`set_error_handler`] returned.
pub fn reset_error_handler(previous: Option<ErrorHandler>) -> Option<ErrorHandler> {
    monitor::error_handler_changed(previous.is_none());
    HANDLER.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous))
}

/// Whether this thread's error handler is the default one.
pub(crate) fn uses_default_handler() -> bool {
    HANDLER.try_with(|slot| slot.borrow().is_none()).unwrap_or(true)
}

/// The default error handler (gevent's `print_exception`): writes the
/// report's line to stderr. A closed stderr is not an error here.
pub fn print_error(report: &ErrorReport<'_>) {
    let _ = writeln!(std::io::stderr(), "{report}");
}

/// Hands `report` to this thread's error handler.
pub(crate) fn handle(report: &ErrorReport<'_>) {
    // Not borrowed while it runs: it may report, or replace itself.
    let handler = HANDLER.try_with(|slot| slot.borrow().clone()).ok().flatten();
    let Some(handler) = handler else { return print_error(report) };
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| handler(report))) {
        print_error(report);
        let message = crate::unwind::panic_message(&*payload);
        let _ = writeln!(std::io::stderr(), "greenery: the error handler panicked on that report: {message}");
    }
}
