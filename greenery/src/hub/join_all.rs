//! Waiting for many green threads: [`joinall`], [`killall`], [`wait_any`]
//! (gevent's `joinall`, `killall`, `wait` and `iwait`), and
//! [`JoinAllError`].

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use super::{Deadlock, JoinHandle, Wait, WaitQueue, Waiter, Wake};

/// Why [`joinall`] stopped waiting without every green thread finished.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinAllError {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Deadlock,
    Failed { index: usize, id: u64, name: String, error: String },
}

impl JoinAllError {
    /// Whether waiting would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self.kind, Kind::Deadlock)
    }

    /// With `raise_error`: the position, among the handles given, of the
    /// green thread that failed (look at its error with
    /// [`JoinHandle::exception`]).
    pub fn failed(&self) -> Option<usize> {
        match self.kind {
            Kind::Failed { index, .. } => Some(index),
            Kind::Deadlock => None,
        }
    }
}

impl From<Deadlock> for JoinAllError {
    fn from(_: Deadlock) -> JoinAllError {
        JoinAllError { kind: Kind::Deadlock }
    }
}

impl fmt::Display for JoinAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Deadlock => write!(f, "{Deadlock}"),
            Kind::Failed { index, id, name, error } => {
                write!(
                    f,
                    "green thread '{name}' (green thread {id}, handle {index} of joinall) failed: {error}"
                )
            }
        }
    }
}

impl fmt::Debug for JoinAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinAllError({self})")
    }
}

impl Error for JoinAllError {}

/// Waits for the green threads in `handles` to finish (gevent's
/// `joinall(greenlets, timeout, raise_error)`), at most `timeout` if it is
/// `Some`; returns those that finished, in the order they finished.
///
/// With `raise_error`, it stops at the first one that fails (panics, or is
/// killed with an error; a kill is a normal end) and returns an error naming
/// it.
///
/// ```
/// use std::time::Duration;
/// use greenery::hub::joinall;
///
/// let quick = greenery::spawn(|| 1);
/// let slow = greenery::spawn(|| greenery::sleep(Duration::from_secs(10)));
/// let done = joinall([&quick], None, false).unwrap();
/// assert_eq!(done.len(), 1);
/// let slow_ones = [&slow];
/// let done = joinall(slow_ones, Some(Duration::from_millis(5)), false).unwrap();
/// assert!(done.is_empty()); // the time ran out
/// slow.kill().unwrap();
/// # let previous = greenery::hub::set_error_handler(|_| {});
/// let failing = greenery::spawn(|| -> u32 { panic!("boom") });
/// let never = greenery::spawn(|| -> u32 { greenery::sleep(Duration::from_secs(10)); 0 });
/// let err = joinall([&failing, &never], None, true).unwrap_err();
/// assert_eq!(err.failed(), Some(0));
/// # never.kill().unwrap();
/// # greenery::hub::reset_error_handler(previous);
/// ```
///
/// # Errors
///
/// [`JoinAllError`]: one failed (with `raise_error`), or waiting would block
/// forever (without a timeout, none of them could ever finish).
pub fn joinall<'a, T: 'a>(
    handles: impl IntoIterator<Item = &'a JoinHandle<T>>,
    timeout: Option<Duration>,
    raise_error: bool,
) -> Result<Vec<&'a JoinHandle<T>>, JoinAllError> {
    let handles: Vec<&JoinHandle<T>> = handles.into_iter().collect();
    let deadline = timeout.map(|timeout| Instant::now().checked_add(timeout).unwrap_or_else(far_future));
    loop {
        if raise_error && let Some((index, handle)) = first_failure(&handles) {
            let error = handle.exception().map(|err| err.to_string()).unwrap_or_default();
            return Err(JoinAllError {
                kind: Kind::Failed { index, id: handle.id(), name: handle.name().to_owned(), error },
            });
        }
        let queues: Vec<&WaitQueue> =
            handles.iter().filter(|handle| !handle.is_ready()).map(|handle| handle.joiners()).collect();
        if queues.is_empty() {
            break;
        }
        let waiter = Waiter::new();
        match WaitQueue::wait_any(&queues, &waiter, Wait::JoinAny(queues.len()), deadline) {
            Wake::Notified => {}
            Wake::TimedOut => break,
            Wake::Deadlock => return Err(Deadlock.into()),
        }
    }
    let mut done: Vec<&JoinHandle<T>> = handles.into_iter().filter(|handle| handle.is_ready()).collect();
    done.sort_by_key(|handle| handle.finish_order());
    Ok(done)
}

/// The first of `handles` to have failed, in the order they finished.
fn first_failure<'a, T>(handles: &[&'a JoinHandle<T>]) -> Option<(usize, &'a JoinHandle<T>)> {
    let failed =
        handles.iter().enumerate().filter(|(_, handle)| handle.is_ready() && !handle.is_successful());
    failed.min_by_key(|(_, handle)| handle.finish_order()).map(|(index, handle)| (index, *handle))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Kills every green thread in `handles`, then waits until all are dead
/// (gevent's `killall(greenlets, timeout=...)`), at most `timeout` if it is
/// `Some`; returns whether they all died in time.
///
/// ```
/// use std::time::Duration;
///
/// let sleepers: Vec<_> = (0..3).map(|_| greenery::spawn(|| greenery::sleep(Duration::from_secs(10)))).collect();
/// assert_eq!(greenery::hub::killall(&sleepers, None), Ok(true));
/// assert!(sleepers.iter().all(|s| s.is_killed() && s.is_successful()));
/// ```
///
/// # Errors
///
/// [`Deadlock`] if one of them cannot die and there is no timeout.
pub fn killall<'a, T: 'static>(
    handles: impl IntoIterator<Item = &'a JoinHandle<T>>,
    timeout: Option<Duration>,
) -> Result<bool, Deadlock> {
    let handles: Vec<&JoinHandle<T>> = handles.into_iter().collect();
    for handle in &handles {
        handle.kill_async();
    }
    match joinall(handles.iter().copied(), timeout, false) {
        Ok(done) => Ok(done.len() == handles.len()),
        Err(_) => Err(Deadlock),
    }
}

/// Blocks until one of `handles` has finished, and returns its index (the
/// one that finished first, if several have). Repeated over the handles not
/// yet taken, this visits them in the order they finished (gevent's `wait`
/// and `iwait`).
///
/// ```
/// // Each green thread yields to the hub `turns` times before it returns.
/// let mut handles: Vec<_> = [3u32, 1, 2]
///     .into_iter()
///     .map(|turns| {
///         greenery::spawn(move || {
///             (0..turns).for_each(|_| greenery::yield_now());
///             turns
///         })
///     })
///     .collect();
/// let mut order = Vec::new();
/// while !handles.is_empty() {
///     let first = greenery::hub::wait_any(&handles).unwrap();
///     order.push(handles.swap_remove(first).get().unwrap());
/// }
/// assert_eq!(order, [1, 2, 3]);
/// ```
///
/// # Errors
///
/// [`Deadlock`] if none of them ever could finish. An empty slice is a
/// deadlock too: nothing would ever end the wait.
pub fn wait_any<T>(handles: &[JoinHandle<T>]) -> Result<usize, Deadlock> {
    loop {
        let finished = handles.iter().enumerate().filter(|(_, handle)| handle.is_ready());
        if let Some((index, _)) = finished.min_by_key(|(_, handle)| handle.finish_order()) {
            return Ok(index);
        }
        if handles.is_empty() {
            return Err(Deadlock);
        }
        let waiter = Waiter::new();
        let queues: Vec<&WaitQueue> = handles.iter().map(JoinHandle::joiners).collect();
        if WaitQueue::wait_any(&queues, &waiter, Wait::JoinAny(queues.len()), None) == Wake::Deadlock {
            return Err(Deadlock);
        }
    }
}
