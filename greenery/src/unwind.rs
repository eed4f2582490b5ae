//! Panics across coroutine boundaries: payloads, recognising greenery's own
//! unwinds, and reporting errors that cannot be propagated.

use std::any::Any;
use std::io::Write;

use crate::coroutine::ForcedUnwind;
use crate::generator::GeneratorExit;
use crate::greenlet::GreenletExit;

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

/// The message of a panic payload, as the default panic hook would print it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "Box<dyn Any>"
    }
}

/// Reports a panic that cannot be propagated (Python's "exception ignored").
pub(crate) fn report(name: &str, what: &str, payload: &(dyn Any + Send)) {
    report_message(name, &format!("{what}: {}", panic_message(payload)));
}

/// Writes one report line to stderr; a closed stderr is not an error here.
pub(crate) fn report_message(name: &str, what: &str) {
    let _ = writeln!(std::io::stderr(), "greenery: '{name}' {what}");
}
