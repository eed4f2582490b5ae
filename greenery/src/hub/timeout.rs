//! [`Timeout`] and [`with_timeout`]: bounding how long green-thread code may
//! block (gevent's `Timeout`). What an expired timeout does to the code it
//! bounds is documented on [`Timeout`], where users read it.

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::timer::TimerId;
use super::with_hub;
use crate::greenlet;

/// The unwinding payload of an expired timeout; caught by the code that set
/// it.
pub(crate) struct TimeoutExpired {
    id: u64,
    after: Duration,
}

impl fmt::Debug for TimeoutExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeoutExpired")
    }
}

/// What the hub throws into the timed-out greenlet; its park turns it into
/// the unwinding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeoutSignal {
    id: u64,
    after: Duration,
}

thread_local! {
    /// The timeout whose expiry this thread last started to unwind for, until
    /// its [`Timeout::run`] catches it: a guard dropped while that unwinding
    /// passes it was not caught below it.
    static UNWINDING: Cell<Option<u64>> = const { Cell::new(None) };
}

impl TimeoutSignal {
    /// Unwinds the current greenlet for this timeout.
    pub(crate) fn raise(self) -> ! {
        UNWINDING.set(Some(self.id));
        panic::resume_unwind(Box::new(TimeoutExpired { id: self.id, after: self.after }))
    }
}

/// Resumes an unwinding that was put off (see `deferred`): a timeout's
/// expiry is marked as unwinding again, as [`TimeoutSignal::raise`] does.
pub(crate) fn resume(payload: crate::unwind::Payload) -> ! {
    if let Some(expired) = payload.downcast_ref::<TimeoutExpired>() {
        UNWINDING.set(Some(expired.id));
    }
    panic::resume_unwind(payload)
}

/// Whether a panic payload is an expired [`Timeout`]'s unwinding.
pub(crate) fn is_timeout_expiry(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<TimeoutExpired>()
}

/// What to say about an expired timeout's unwinding that nothing caught.
pub(crate) fn timeout_expiry_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload.downcast_ref::<TimeoutExpired>().map(|expired| uncaught_message(expired.after))
}

fn uncaught_message(after: Duration) -> String {
    format!(
        "a timeout of {after:?} expired and nothing caught it: run the code it bounds with \
         `greenery::with_timeout(duration, || ...)` or `Timeout::run`, which return \
         `Err(TimedOut)` when it expires"
    )
}

/// The time ran out before the code finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimedOut {
    after: Duration,
}

impl TimedOut {
    /// How long the timeout was.
    pub fn duration(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.after)
    }
}

impl Error for TimedOut {}

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// A timeout for the current green thread (or the main greenlet): once
/// started, if it is still pending when its time is up, the green thread is
/// unwound from whatever blocking call it is in (see
/// [What expiry does](#what-expiry-does)).
///
/// [`with_timeout`] is the usual way to use one. The guard form starts a
/// timeout, lets the code run, and cancels it (dropping it cancels it too):
///
/// ```
/// use std::time::Duration;
/// use greenery::hub::{Timeout, TimedOut};
///
/// let mut timeout = Timeout::new(Duration::from_millis(20));
/// let outcome = timeout.run(|| {
///     greenery::sleep(Duration::from_secs(10)); // unwound after 20 ms
///     "finished"
/// });
/// assert_eq!(outcome, Err(TimedOut::from(Duration::from_millis(20))));
/// assert!(!timeout.is_pending());
/// ```
///
/// A `Timeout` is `!Send`: once started, it is a timer on its thread's hub,
/// aimed at the green thread that started it.
///
/// # What expiry does
///
/// A timeout that expires *unwinds* the timed-out code from the blocking call
/// it is parked in, the way dropping a future cancels it in async Rust: the
/// blocking call does not return, destructors run up to the code that set the
/// timeout, and that code gets [`TimedOut`]. Code that keeps an invariant
/// across a blocking call (takes two items from a queue and must put them
/// back together, say) must restore it in a destructor, or run that stretch
/// without a timeout.
///
/// Timeouts nest: each has an identity, and the unwinding of one stops at the
/// code that set it, so an inner timeout firing never trips an outer one.
/// Code between the blocking call and the timeout's owner must not swallow
/// the unwinding (see [`is_forced_unwind`](crate::is_forced_unwind)); if it
/// does, the timeout is lost, as a bare `except:` loses one in gevent.
///
/// A guard started with [`start`](Self::start) or
/// [`start_new`](Self::start_new) catches nothing: its expiry unwinds the
/// code up to whoever catches it ([`run`](Self::run) and [`with_timeout`]
/// catch their own). One that nothing catches is reported through the
/// hub's error handler ([`set_error_handler`](super::set_error_handler)):
/// "a timeout of 20ms expired and nothing caught it", with how to catch it.
/// In a green thread, that is its failure; in the main greenlet, the report
/// is made as the unwinding passes the guard (the process then exits as from
/// any unwinding `main`, with status 101).
#[derive(Debug)]
pub struct Timeout {
    id: u64,
    duration: Duration,
    timer: Option<TimerId>,
    /// `!Send` and `!Sync`: a started timeout is a timer on its thread's hub,
    /// aimed at the green thread that started it.
    _on_its_hub: PhantomData<*const ()>,
}

impl From<Duration> for TimedOut {
    fn from(after: Duration) -> TimedOut {
        TimedOut { after }
    }
}

impl Timeout {
    /// A timeout of `duration`, not started.
    pub fn new(duration: Duration) -> Timeout {
        let id = NEXT_ID.with(|next| next.replace(next.get() + 1));
        Timeout { id, duration, timer: None, _on_its_hub: PhantomData }
    }

    /// A timeout of `duration`, started now.
    pub fn start_new(duration: Duration) -> Timeout {
        let mut timeout = Timeout::new(duration);
        timeout.start();
        timeout
    }

    /// Starts (or restarts) the timeout for the current green thread: it
    /// fires `duration` from now.
    pub fn start(&mut self) {
        self.cancel();
        let owner = greenlet::getcurrent();
        let (id, after) = (self.id, self.duration);
        let deadline = Instant::now() + self.duration;
        self.timer = Some(with_hub(|hub| {
            hub.call_at(
                deadline,
                Box::new(move || {
                    if !owner.is_dead() {
                        // Raised at its pending switch; its park unwinds.
                        let _ = owner.throw(TimeoutSignal { id, after });
                    }
                }),
            )
        }));
    }

    /// Cancels the timeout if it is pending.
    pub fn cancel(&mut self) {
        if let Some(timer) = self.timer.take() {
            with_hub(|hub| hub.cancel_timer(timer));
        }
    }

    /// Whether the timeout is started and has neither fired nor been
    /// cancelled.
    pub fn is_pending(&self) -> bool {
        self.timer.is_some()
    }

    /// The timeout's duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether `payload` is this timeout's unwinding (for code that catches
    /// panics itself and must let other timeouts through).
    pub fn is_expiry_of(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        payload.downcast_ref::<TimeoutExpired>().is_some_and(|expired| expired.id == self.id)
    }

    /// Starts the timeout, runs `f`, and cancels the timeout: returns what
    /// `f` returned, or [`TimedOut`] if the timeout fired first.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if `f` was unwound by this timeout. Panics (and other
    /// timeouts' unwinding) continue.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, TimedOut> {
        self.start();
        // An expiry put off by a call that could not unwind (see
        // `deferred`) counts as one that unwound `f`.
        let outcome = panic::catch_unwind(AssertUnwindSafe(f)).and_then(|value| {
            super::deferred::take(|payload| self.is_expiry_of(&**payload)).map_or(Ok(value), Err)
        });
        let fired = self.timer.is_some() && outcome.as_ref().err().is_some_and(|p| self.is_expiry_of(&**p));
        if let Some(timer) = self.timer.take() {
            with_hub(|hub| hub.cancel_timer(timer));
        }
        match outcome {
            Ok(value) => Ok(value),
            Err(payload) if fired || self.is_expiry_of(&*payload) => {
                UNWINDING.set(None); // caught
                Err(TimedOut { after: self.duration })
            }
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            // Not on a torn-down thread: its hub and timers are gone.
            let _ = super::HUB.try_with(|_| with_hub(|hub| hub.cancel_timer(timer)));
        }
        // Its own expiry unwinds past it: nothing below caught it. A green
        // thread reports it when it ends; anywhere else (the main greenlet,
        // where an unwinding `main` exits silently), say it here.
        if std::thread::panicking()
            && UNWINDING.try_with(Cell::get).ok().flatten() == Some(self.id)
            && let Some(current) = greenlet::try_getcurrent()
            && !super::is_green_thread(&current)
        {
            UNWINDING.set(None);
            crate::unwind::report_message(current.name(), &uncaught_message(self.duration));
        }
    }
}

/// Runs `f` with a timeout of `duration` (gevent's `with_timeout`): returns
/// what `f` returned, or [`TimedOut`] if it was still blocked when the time
/// ran out (it is unwound from its blocking call).
///
/// ```
/// use std::time::Duration;
///
/// let quick = greenery::with_timeout(Duration::from_secs(1), || 1 + 1);
/// assert_eq!(quick, Ok(2));
/// let slow = greenery::with_timeout(Duration::from_millis(10), || greenery::sleep(Duration::from_secs(5)));
/// assert!(slow.is_err());
/// ```
///
/// # Errors
///
/// [`TimedOut`], as above.
pub fn with_timeout<R>(duration: Duration, f: impl FnOnce() -> R) -> Result<R, TimedOut> {
    Timeout::new(duration).run(f)
}
