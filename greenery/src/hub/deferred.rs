//! Unwinding put off: a kill or a timeout that reaches a green thread while
//! it waits inside a call that cannot unwind.
//!
//! A kill ([`JoinHandle::kill`](super::JoinHandle::kill)) and an expired
//! [`Timeout`](super::Timeout) unwind the green thread from the blocking
//! call it is parked in. The blocking calls of the `patch` layer are C
//! functions (`read`, `recv`, `nanosleep`, ...) called by code that does not
//! expect them to unwind: an unwinding may not leave them. So such a call
//! catches the unwinding, puts it off here, and returns an error instead
//! (`ECANCELED` for a kill, `ETIMEDOUT` for a timeout); the unwinding
//! resumes at the green thread's next greenery blocking call
//! ([`raise_pending`], from every park), or is taken by whoever it was for
//! when the code returns first: a [`Timeout::run`](super::Timeout::run)
//! that finds its own expiry put off returns `TimedOut`, and a green thread
//! that returns with a kill put off ends killed.
//!
//! While an unwinding is put off, every further patched call of that green
//! thread returns the same error at once.

use std::cell::RefCell;

use crate::greenlet;
use crate::unwind::Payload;

thread_local! {
    /// The unwindings put off, with the greenlet each belongs to (its
    /// handle's address).
    static DEFERRED: RefCell<Vec<(usize, Payload)>> = const { RefCell::new(Vec::new()) };
}

fn current() -> usize {
    greenlet::getcurrent().addr()
}

/// Puts `payload` (a kill's or a timeout's unwinding) off for the current
/// greenlet.
#[cfg_attr(not(feature = "patch"), allow(dead_code))]
pub(crate) fn defer(payload: Payload) {
    let me = current();
    DEFERRED.with(|deferred| deferred.borrow_mut().push((me, payload)));
}

/// What the current greenlet has put off, if anything: whether it is a kill
/// (else a timeout).
#[cfg_attr(not(feature = "patch"), allow(dead_code))]
pub(crate) fn pending() -> Option<bool> {
    let me = current();
    DEFERRED
        .try_with(|deferred| {
            deferred
                .borrow()
                .iter()
                .find(|(owner, _)| *owner == me)
                .map(|(_, payload)| payload.is::<crate::GreenletExit>())
        })
        .ok()
        .flatten()
}

/// Takes what the current greenlet has put off, for which `wanted` holds.
pub(crate) fn take(wanted: impl Fn(&Payload) -> bool) -> Option<Payload> {
    if DEFERRED.try_with(|deferred| deferred.borrow().is_empty()).unwrap_or(true) {
        return None;
    }
    let me = current();
    DEFERRED
        .try_with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            let index = deferred.iter().position(|(owner, payload)| *owner == me && wanted(payload))?;
            Some(deferred.remove(index).1)
        })
        .ok()
        .flatten()
}

/// Resumes an unwinding the current greenlet put off: called where
/// unwinding is allowed (greenery's own blocking calls).
#[inline]
pub(crate) fn raise_pending() {
    if let Some(payload) = take(|_| true) {
        super::timeout::resume(payload);
    }
}
