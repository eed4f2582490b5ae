//! Panics across coroutine boundaries: payloads, recognising greenery's own
//! unwinds, and reporting errors that cannot be propagated.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;

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
