//! Panics across coroutine boundaries: payloads, recognising greenery's own
//! unwinds, and reporting errors that cannot be propagated.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::coroutine::ForcedUnwind;
use crate::generator::GeneratorExit;
use crate::greenlet::GreenletExit;
use crate::hub::report::{self, ErrorReport};

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Whether `payload` is one of the unwinds greenery starts itself to tear down a
/// suspended stack ([`ForcedUnwind`] when a coroutine is dropped,
/// [`GeneratorExit`] when a generator is closed, [`GreenletExit`] when a
/// greenlet or green thread is killed, an expired [`Timeout`](crate::Timeout)).
///
/// Code that catches panics inside a coroutine should let these through with
/// [`std::panic::resume_unwind`]; swallowing one keeps the stack alive
/// against its owner's wishes.
pub fn is_forced_unwind(payload: &(dyn Any + Send)) -> bool {
    payload.is::<ForcedUnwind>()
        || payload.is::<GeneratorExit>()
        || payload.is::<GreenletExit>()
        || crate::hub::is_timeout_expiry(payload)
}

/// The message of a panic payload, as the default panic hook would print it;
/// also the text of the unwinds greenery raises itself (an expired
/// [`Timeout`](crate::Timeout) that nothing caught, an error delivered by
/// [`JoinHandle::kill_with`](crate::JoinHandle::kill_with)).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Cow<'_, str> {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        Cow::Borrowed(message)
    } else if let Some(message) = payload.downcast_ref::<String>() {
        Cow::Borrowed(message)
    } else if let Some(error) = payload.downcast_ref::<Box<dyn Error + Send + Sync>>() {
        Cow::Owned(error.to_string())
    } else if let Some(message) = crate::hub::timeout_expiry_message(payload) {
        Cow::Owned(message)
    } else {
        Cow::Borrowed("Box<dyn Any>")
    }
}

/// Reports a panic that cannot be propagated (Python's "exception ignored").
pub(crate) fn report(name: &str, what: &str, payload: &(dyn Any + Send)) {
    let message = panic_message(payload);
    report::handle(&ErrorReport::new(name, what, &message).with_payload(payload));
}

/// Reports an error that cannot be propagated, with no panic behind it.
pub(crate) fn report_message(name: &str, what: &str) {
    report::handle(&ErrorReport::new(name, what, ""));
}

/// Installs, once per process, the panic hook that names the greenlet a
/// panic happens in.
///
/// Rust's own hook heads every report with the OS thread's name (`thread
/// 'main' panicked at ...`), which for a panic in a green thread names the
/// wrong thing. The hook installed here wraps the one it finds: for a panic
/// in a greenlet other than a thread's main greenlet, and only if the hook
/// it found is Rust's default, it prints the default's report headed with
/// the greenlet instead (`green thread 'worker' panicked at ...`); in every
/// other case it calls the hook it found, so a hook the program installed
/// keeps working (one installed later replaces this one, as usual).
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        // The hook is Rust's default now: take it too, to compare. Both boxes
        // come from the same code in std, so they share a vtable only if the
        // one we found was the default too.
        let default = panic::take_hook();
        let previous_is_default = std::ptr::eq(&*previous, &*default);
        drop(default);
        panic::set_hook(Box::new(move |info| {
            if previous_is_default && let Some((kind, name)) = panicking_greenlet() {
                print_greenlet_panic(kind, &name, info);
            } else {
                previous(info);
            }
        }));
    });
}

/// What kind of greenlet is running, and its name, unless it is a thread's
/// main greenlet (or the thread has none).
fn panicking_greenlet() -> Option<(&'static str, String)> {
    let current = crate::greenlet::current_if_any()?;
    if current.is_main() {
        return None;
    }
    let kind = if crate::hub::is_green_thread(&current) { "green thread" } else { "greenlet" };
    Some((kind, current.name().to_owned()))
}

/// Rust's default panic report, headed with the greenlet. Printed with
/// `eprint!`, so that a test harness captures it as it does the default's.
fn print_greenlet_panic(kind: &str, name: &str, info: &PanicHookInfo<'_>) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    let location = info.location().map(|at| format!(" at {at}")).unwrap_or_default();
    let message = panic_message(info.payload());
    let backtrace = std::backtrace::Backtrace::capture();
    let tail = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{backtrace}\n"),
        _ if !NOTED.swap(true, Ordering::Relaxed) => {
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n".to_owned()
        }
        _ => String::new(),
    };
    eprint!("{kind} '{name}' panicked{location}:\n{message}\n{tail}");
}
