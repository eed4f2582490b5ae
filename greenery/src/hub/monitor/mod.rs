//! The monitor: one background thread per process that notices a hub that
//! stopped coming back to its loop, and says which green thread holds it and
//! where (gevent's monitor thread and `max_blocking_time`).
//!
//! A green thread that calls something that blocks the OS thread
//! (`std::thread::sleep`, a blocking client, a long computation) freezes every
//! other green thread of its hub. Nothing in the hub can notice: it is not
//! running. The monitor, on a thread of its own, can.
//!
//! # Protocol
//!
//! - **The hub's side.** Each hub keeps a *beat* in a thread-local atomic: it
//!   adds 2 each time it hands the thread to a task (resumes, starts or
//!   kills a green thread, runs a callback), and sets bit 0 while it waits
//!   for events in its poller. Beside it, a count of what would want the hub
//!   back: the live green threads, and the main greenlet while it is parked.
//!   Both are plain loads and stores by the hub's thread (no read-modify-write
//!   instruction, no system call, no clock read), on a cache line the monitor
//!   only reads.
//! - **Registration.** A hub registers with the process's list of hubs as it
//!   is made, and leaves it as it is dropped or as its thread exits
//!   (whichever comes first). The list is what the monitor watches and what
//!   [`dump`](super::dump) asks.
//! - **Watching.** The monitor wakes every tenth of the threshold (at least
//!   every millisecond, at most every 100 ms) and reads each hub's beat. A
//!   beat that has not moved, is not waiting for events, and has stayed so for
//!   the threshold, while something would want the hub back, is a *stall*.
//!   Each stall is reported once: the next report needs the beat to move
//!   first.
//! - **Where it is stuck.** For a stall, the monitor sends the hub's thread a
//!   signal (`capture`); the handler copies the interrupted registers and the
//!   top of the stack into a buffer, and the name and record of the running
//!   greenlet, and does nothing else. The monitor then unwinds that copy with
//!   the DWARF unwind tables of the loaded modules (`framehop`) and names
//!   the frames with their debug info (`backtrace`), on its own thread.
//! - **The report.** It is an [`ErrorReport`] carrying a [`BlockingReport`].
//!   If the hub's thread uses the default error handler, the monitor writes
//!   it to stderr at once, while the hub is still blocked. If the thread
//!   installed a handler of its own ([`set_error_handler`](super::set_error_handler)),
//!   which only that thread may call, the hub hands the report to it as soon
//!   as it comes back to its loop (the monitor wakes the hub for it).
//! - **The signal's side effects.** The handler runs for a few microseconds,
//!   once per stall, on a thread that is already misbehaving. A system call
//!   it interrupts is restarted if the kernel restarts it after a handler with
//!   `SA_RESTART` (`read`, `write`, `accept`, ... on sockets without a
//!   timeout); others (`poll`, `epoll_wait`, `nanosleep`, socket calls with a
//!   timeout) return `EINTR`, which std's sleep and well-behaved code retry,
//!   as they must for any signal.

mod backtrace;
mod capture;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::remote::Doorbell;
use super::report::{self, ErrorReport};
use crate::greenlet::Greenlet;

// ------------------------------------------------------------ the hub's side

/// What a hub's thread publishes for the monitor; see the module
/// documentation.
struct Pulse {
    /// 2 per task handed the thread; bit 0 while waiting for events.
    beat: AtomicU64,
    /// Live green threads, plus 1 while the main greenlet is parked.
    waiting: AtomicUsize,
}

thread_local! {
    /// No destructor: it lives as long as its thread, and reaching it is a
    /// plain thread-local access.
    static PULSE: Pulse = const { Pulse { beat: AtomicU64::new(0), waiting: AtomicUsize::new(0) } };
}

/// The hub hands the thread to a task.
#[inline]
pub(super) fn beat() {
    PULSE.with(|pulse| pulse.beat.store(pulse.beat.load(Ordering::Relaxed) + 2, Ordering::Relaxed));
}

/// The hub starts (`true`) or stops waiting for events.
#[inline]
pub(super) fn polling(waiting: bool) {
    PULSE.with(|pulse| {
        let beat = pulse.beat.load(Ordering::Relaxed);
        pulse.beat.store(if waiting { beat | 1 } else { (beat | 1) + 1 }, Ordering::Relaxed);
    });
}

/// A green thread was born (`1`) or ended (`-1`), or the main greenlet
/// parked or resumed.
#[inline]
pub(super) fn waiting_changed(delta: isize) {
    PULSE.with(|pulse| {
        let count = pulse.waiting.load(Ordering::Relaxed);
        pulse.waiting.store(count.wrapping_add_signed(delta), Ordering::Relaxed);
    });
}

/// Whether the monitor left a report for this hub's error handler.
#[inline]
pub(super) fn report_pending(watch: &Watch) -> bool {
    watch.pending.load(Ordering::Relaxed)
}

/// Hands the report the monitor left to this thread's error handler.
#[cold]
pub(super) fn deliver_pending(watch: &Watch) {
    watch.pending.store(false, Ordering::Relaxed);
    let report = lock(&watch.report).take();
    if let Some(report) = report {
        report::handle(&report.error_report());
    }
}

/// This thread's error handler became the default one (`true`) or one of
/// the program's.
pub(super) fn error_handler_changed(default: bool) {
    let _ = WATCH.try_with(|watch| {
        if let Some(registration) = &*watch.borrow() {
            registration.0.default_handler.store(default, Ordering::Relaxed);
        }
    });
}

// ------------------------------------------------------------ the hubs

/// A hub, as the monitor and the dump see it.
pub(crate) struct Watch {
    pulse: PulseRef,
    /// The process the hub was made in: a child made by `fork` inherits the
    /// list, but not the threads of the hubs its parent had.
    pid: u32,
    /// The hub's thread, for signals (its kernel thread id) and reports.
    tid: libc::pid_t,
    thread: String,
    doorbell: Doorbell,
    /// The addresses of the hub's greenlet and of its thread's main
    /// greenlet, to tell them from green threads in a report.
    hub_greenlet: usize,
    main_greenlet: usize,
    /// Whether the thread uses the default error handler.
    default_handler: AtomicBool,
    /// A report for the thread's own handler, and whether one is there.
    report: Mutex<Option<BlockingReport>>,
    pending: AtomicBool,
    /// The monitor's view of the beat: see [`Seen`].
    seen: Mutex<Seen>,
}

/// The hub thread's [`Pulse`], from another thread.
struct PulseRef(*const Pulse);

// SAFETY: the pointer is only dereferenced while the watch is registered
// (under `HUBS`'s lock) and made in this process (a child made by `fork`
// has copies of its parent's watches, whose threads it does not have), and
// a watch leaves the list before its thread exits (`WATCH`'s destructor),
// so the thread-local it points to is alive; its fields are atomics.
unsafe impl Send for PulseRef {}
// SAFETY: as above.
unsafe impl Sync for PulseRef {}

/// What the monitor last saw of a hub.
struct Seen {
    beat: u64,
    /// When it first saw this beat.
    since: Instant,
    /// Whether this beat was reported already.
    reported: bool,
}

impl Watch {
    /// The hub's thread, as reports name it.
    pub(super) fn thread_name(&self) -> &str {
        &self.thread
    }

    pub(super) fn tid(&self) -> libc::pid_t {
        self.tid
    }

    pub(super) fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    /// How long the hub has been busy without coming back to its loop, as
    /// the monitor last saw it; `None` if it is waiting for events or was
    /// busy for less than a sampling period.
    pub(super) fn busy_for(&self) -> Option<Duration> {
        let seen = lock(&self.seen);
        (seen.beat & 1 == 0).then(|| seen.since.elapsed()).filter(|busy| !busy.is_zero())
    }
}

/// The hubs of the process.
static HUBS: Mutex<Vec<Arc<Watch>>> = Mutex::new(Vec::new());

/// Locks `mutex`; the monitor's locks guard plain data, which a panic
/// elsewhere cannot leave half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This thread's registered hub; leaves the list when the thread exits.
struct Registration(Arc<Watch>);

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&HUBS).retain(|watch| !Arc::ptr_eq(watch, &self.0));
    }
}

thread_local! {
    static WATCH: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

/// Registers this thread's new hub; returns its watch.
pub(super) fn register_hub(hub_greenlet: &Greenlet, main: &Greenlet, doorbell: Doorbell) -> Arc<Watch> {
    let thread = std::thread::current();
    let watch = Arc::new(Watch {
        pulse: PulseRef(PULSE.with(std::ptr::from_ref)),
        pid: std::process::id(),
        tid: capture::gettid(),
        thread: thread.name().map_or_else(|| format!("{:?}", thread.id()), str::to_owned),
        doorbell,
        hub_greenlet: hub_greenlet.address(),
        main_greenlet: main.address(),
        default_handler: AtomicBool::new(report::uses_default_handler()),
        report: Mutex::new(None),
        pending: AtomicBool::new(false),
        seen: Mutex::new(Seen { beat: u64::MAX, since: Instant::now(), reported: false }),
    });
    lock(&HUBS).push(watch.clone());
    WATCH.with(|slot| *slot.borrow_mut() = Some(Registration(watch.clone())));
    if max_blocking_time().is_some() {
        start_monitor();
    }
    wake_monitor();
    watch
}

/// Takes this thread's hub off the list (it is being dropped).
pub(super) fn unregister_hub() {
    let registration = WATCH.try_with(|slot| slot.borrow_mut().take()).ok().flatten();
    drop(registration);
}

/// The hubs of the process, at this moment (in a child made by `fork`,
/// only those made in the child).
pub(super) fn hubs() -> Vec<Arc<Watch>> {
    let pid = std::process::id();
    lock(&HUBS).iter().filter(|watch| watch.pid == pid).cloned().collect()
}

/// This thread's hub's watch, if it has a hub.
pub(super) fn this_hub() -> Option<Arc<Watch>> {
    WATCH.try_with(|slot| slot.borrow().as_ref().map(|registration| registration.0.clone())).ok().flatten()
}

// ------------------------------------------------------------ the threshold

/// `THRESHOLD` before anything read or set it.
const UNSET: u64 = 0;
/// `THRESHOLD` when the monitor is off.
const OFF: u64 = u64::MAX;
/// The threshold when neither the environment nor the program sets one.
const DEFAULT: Duration = Duration::from_secs(1);
/// The smallest threshold.
const MIN_THRESHOLD: Duration = Duration::from_millis(1);

/// The threshold in nanoseconds, [`UNSET`] or [`OFF`].
static THRESHOLD: AtomicU64 = AtomicU64::new(UNSET);

fn encode(threshold: Option<Duration>) -> u64 {
    match threshold {
        None => OFF,
        Some(threshold) => {
            u64::try_from(threshold.max(MIN_THRESHOLD).as_nanos()).unwrap_or(OFF - 1).min(OFF - 1)
        }
    }
}

/// The threshold `GREENERY_MAX_BLOCKING_TIME` asks for: `off`, or a whole
/// number of milliseconds. Anything else is reported on stderr and the
/// default is used.
fn from_environment() -> Option<Duration> {
    let Some(value) = std::env::var_os("GREENERY_MAX_BLOCKING_TIME") else { return Some(DEFAULT) };
    match parse_threshold(&value.to_string_lossy()) {
        Ok(threshold) => threshold,
        Err(()) => {
            eprintln!(
                "greenery: GREENERY_MAX_BLOCKING_TIME={value:?} is neither `off` nor a whole number of \
                 milliseconds; using {} ms",
                DEFAULT.as_millis()
            );
            Some(DEFAULT)
        }
    }
}

fn parse_threshold(value: &str) -> Result<Option<Duration>, ()> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(()),
    }
}

/// How long a hub may go without coming back to its loop before the monitor
/// reports it (gevent's `max_blocking_time`); `None` when the monitor is off.
///
/// Unless [`set_max_blocking_time`] changed it, it comes from the
/// environment variable `GREENERY_MAX_BLOCKING_TIME`: a number of
/// milliseconds, or `off` (or `0`); without it, 1 second.
///
/// ```
/// // The default, unless the environment says otherwise.
/// if std::env::var_os("GREENERY_MAX_BLOCKING_TIME").is_none() {
///     assert_eq!(greenery::hub::max_blocking_time(), Some(std::time::Duration::from_secs(1)));
/// }
/// ```
pub fn max_blocking_time() -> Option<Duration> {
    let mut threshold = THRESHOLD.load(Ordering::Relaxed);
    if threshold == UNSET {
        let read = encode(from_environment());
        threshold = match THRESHOLD.compare_exchange(UNSET, read, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => read,
            Err(set) => set, // set meanwhile: that wins
        };
    }
    (threshold != OFF).then(|| Duration::from_nanos(threshold))
}

/// Sets how long a hub may go without coming back to its loop before the
/// monitor reports it, for every hub of the process; `None` turns the
/// monitor off. Returns the previous setting. Thresholds under a millisecond
/// count as a millisecond.
///
/// The report goes to the blocked hub's error handler (see
/// [`set_error_handler`](super::set_error_handler)) and carries a
/// [`BlockingReport`]: which green thread held the hub, for how long, and
/// where it was.
///
/// ```
/// use std::time::Duration;
/// use greenery::hub;
///
/// let previous = hub::set_max_blocking_time(Some(Duration::from_millis(200)));
/// assert_eq!(hub::max_blocking_time(), Some(Duration::from_millis(200)));
/// hub::set_max_blocking_time(previous);
/// ```
pub fn set_max_blocking_time(threshold: Option<Duration>) -> Option<Duration> {
    let previous = max_blocking_time();
    THRESHOLD.store(encode(threshold), Ordering::Relaxed);
    if threshold.is_some() && !lock(&HUBS).is_empty() {
        start_monitor();
    }
    wake_monitor();
    previous
}

// ------------------------------------------------------------ the monitor thread

/// The write end of the monitor's wake-up pipe (-1 before it starts): a
/// byte wakes it. Written from signal handlers too ([`request_dump`]).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// A dump was asked for by a signal.
static DUMP_ASKED: AtomicBool = AtomicBool::new(false);

/// The monitor thread of this process: its process id (a child made by
/// `fork` has no monitor thread, though it inherits this) and its pipe.
struct Monitor {
    pid: u32,
    _wake_write: OwnedFd,
}

static MONITOR: Mutex<Option<Monitor>> = Mutex::new(None);

/// Starts the monitor thread, unless this process has one.
pub(super) fn start_monitor() {
    let mut monitor = lock(&MONITOR);
    if monitor.as_ref().is_some_and(|monitor| monitor.pid == std::process::id()) {
        return;
    }
    match spawn_monitor() {
        Ok(started) => *monitor = Some(started),
        Err(err) => eprintln!("greenery: cannot start the monitor thread: {err}"),
    }
}

fn spawn_monitor() -> io::Result<Monitor> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    std::thread::Builder::new().name("greenery-monitor".into()).spawn(move || run(read))?;
    WAKE_FD.store(write.as_raw_fd(), Ordering::Release);
    Ok(Monitor { pid: std::process::id(), _wake_write: write })
}

/// Wakes the monitor thread, if there is one, to look at the hubs and the
/// threshold again. Async-signal-safe: an atomic load and a `write`.
fn wake_monitor() {
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: writes one byte from a live local; a full pipe (EAGAIN)
        // already holds a wake-up, and a closed fd only fails.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Asks the monitor thread for a [`dump`](super::dump) on stderr.
/// Async-signal-safe: an atomic store and a `write` (see [`wake_monitor`]).
pub(super) fn request_dump() {
    DUMP_ASKED.store(true, Ordering::Release);
    wake_monitor();
}

/// How often the monitor looks at the hubs.
fn period(threshold: Duration) -> Duration {
    (threshold / 10).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// The monitor thread.
fn run(wake: OwnedFd) {
    loop {
        let threshold = max_blocking_time();
        let timeout = threshold.filter(|_| !lock(&HUBS).is_empty()).map(period);
        wait_readable(&wake, timeout);
        if DUMP_ASKED.swap(false, Ordering::AcqRel) {
            super::dump::dump();
        }
        if let Some(threshold) = max_blocking_time() {
            look(threshold);
        }
    }
}

/// Waits until `fd` is readable (then empties it) or `timeout` passes.
fn wait_readable(fd: &OwnedFd, timeout: Option<Duration>) {
    let mut poll = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = timeout.map_or(-1, |timeout| i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX));
    // SAFETY: one pollfd, from a live local.
    if unsafe { libc::poll(&mut poll, 1, ms) } > 0 {
        let mut bytes = [0u8; 64];
        // SAFETY: reads into a live local buffer of that size; the fd is
        // non-blocking.
        while unsafe { libc::read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) } > 0 {}
    }
}

/// One look at every hub: finds the stalls, and reports each.
fn look(threshold: Duration) {
    let mut stalls = Vec::new();
    {
        let hubs = lock(&HUBS);
        let now = Instant::now();
        let pid = std::process::id();
        for watch in hubs.iter().filter(|watch| watch.pid == pid) {
            // SAFETY: the threads of this process's registered watches are
            // alive (see `PulseRef`), and we hold the list's lock.
            let pulse = unsafe { &*watch.pulse.0 };
            let beat = pulse.beat.load(Ordering::Relaxed);
            let mut seen = lock(&watch.seen);
            if beat != seen.beat {
                *seen = Seen { beat, since: now, reported: false };
                continue;
            }
            let blocked_for = now.saturating_duration_since(seen.since);
            if beat & 1 == 1 || seen.reported || blocked_for < threshold {
                continue;
            }
            if pulse.waiting.load(Ordering::Relaxed) == 0 {
                continue; // nothing would run if it came back
            }
            seen.reported = true;
            drop(seen);
            // Under the list's lock: the thread cannot leave (and exit)
            // while its registers are taken.
            let sample = capture::take(watch.tid);
            stalls.push((watch.clone(), blocked_for, sample));
        }
    }
    for (watch, blocked_for, sample) in stalls {
        let report = BlockingReport::new(&watch, blocked_for, threshold, sample);
        deliver(&watch, report);
    }
}

/// Writes `report` to stderr now, if the hub's thread uses the default error
/// handler; otherwise leaves it for the hub, and wakes the hub for it.
fn deliver(watch: &Watch, report: BlockingReport) {
    if watch.default_handler.load(Ordering::Relaxed) {
        report::print_error(&report.error_report());
        return;
    }
    *lock(&watch.report) = Some(report);
    watch.pending.store(true, Ordering::Release);
    watch.doorbell.wake();
}

// ------------------------------------------------------------ the report

/// A hub that has not come back to its loop for longer than
/// [`max_blocking_time`]: what the monitor saw. Its
/// [`ErrorReport`] goes to the blocked thread's error handler
/// ([`ErrorReport::blocking`]).
///
/// Its [`Display`](fmt::Display), and the report's, read:
///
/// ```text
/// greenery: 'fetch' (green thread 3, spawned at src/main.rs:12:5) has blocked the hub of
/// thread 'main' for 1.00 s: no other green thread of that thread runs until it gives the hub
/// back (threshold 1 s, GREENERY_MAX_BLOCKING_TIME). It is at:
///    0: clock_nanosleep
///    1: std::thread::sleep
///              at library/std/src/thread/mod.rs:892:5
///    2: app::fetch
///              at src/main.rs:14:9
///    ...
/// ```
pub struct BlockingReport {
    thread: String,
    name: String,
    green_thread: Option<u64>,
    spawned_at: Option<&'static Location<'static>>,
    blocked_for: Duration,
    what: String,
    message: String,
    backtrace: String,
}

impl BlockingReport {
    fn new(
        watch: &Watch,
        blocked_for: Duration,
        threshold: Duration,
        sample: capture::Outcome,
    ) -> BlockingReport {
        let (greenlet, backtrace) = match sample {
            Ok(sample) => {
                let backtrace = backtrace::describe(&sample);
                (Some(sample.greenlet), backtrace)
            }
            Err(why) => (None, format!("   (no backtrace: {why})\n")),
        };
        let (name, who, green_thread, spawned_at) = match &greenlet {
            None => ("?".to_owned(), "(a greenlet that could not be told)".to_owned(), None, None),
            Some(running) if running.address == watch.hub_greenlet => (
                "hub".to_owned(),
                "(a callback on the hub: a timer, a link or a task sent from another thread)".to_owned(),
                None,
                None,
            ),
            Some(running) if running.address == watch.main_greenlet => {
                ("main".to_owned(), "(the main greenlet)".to_owned(), None, None)
            }
            Some(running) if running.id == 0 || running.id == super::record::MAIN => {
                (running.name.clone(), "(a greenlet)".to_owned(), None, None)
            }
            Some(running) => {
                let at = running.spawned_at.map(|at| format!(", spawned at {at}")).unwrap_or_default();
                (
                    running.name.clone(),
                    format!("(green thread {}{at})", running.id),
                    Some(running.id),
                    running.spawned_at,
                )
            }
        };
        let what =
            format!("{who} has blocked the hub of thread '{}' for {}", watch.thread, seconds(blocked_for));
        let message = format!(
            "no other green thread of that thread runs until it gives the hub back (threshold {}, \
             GREENERY_MAX_BLOCKING_TIME). It is at:\n{}",
            seconds(threshold),
            backtrace.trim_end()
        );
        BlockingReport {
            thread: watch.thread.clone(),
            name,
            green_thread,
            spawned_at,
            blocked_for,
            what,
            message,
            backtrace,
        }
    }

    fn error_report(&self) -> ErrorReport<'_> {
        let report = ErrorReport::new(&self.name, &self.what, &self.message).with_blocking(self);
        match self.green_thread {
            Some(id) => report.with_green_thread(id),
            None => report,
        }
    }

    /// The name of the blocked hub's OS thread (its id, as `ThreadId(3)`,
    /// if it has no name).
    pub fn thread_name(&self) -> &str {
        &self.thread
    }

    /// The name of what was running: the green thread's, `"main"` for the
    /// thread's main greenlet, `"hub"` for a callback on the hub, or a
    /// greenlet's.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The [`id`](crate::JoinHandle::id) of the green thread that was
    /// running, if a green thread was.
    pub fn green_thread(&self) -> Option<u64> {
        self.green_thread
    }

    /// Where that green thread was spawned.
    pub fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.spawned_at
    }

    /// How long the hub had not come back to its loop when the monitor
    /// reported it (at least this long: the monitor looks every tenth of
    /// the threshold).
    pub fn blocked_for(&self) -> Duration {
        self.blocked_for
    }

    /// Where the thread was, innermost frame first, one frame per line
    /// (`   3: app::fetch`, then an `at file:line:column` line when the debug
    /// info tells), or why it could not be told.
    pub fn backtrace(&self) -> &str {
        &self.backtrace
    }
}

impl fmt::Display for BlockingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' {}: {}", self.name, self.what, self.message)
    }
}

impl fmt::Debug for BlockingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingReport")
            .field("thread", &self.thread)
            .field("name", &self.name)
            .field("green_thread", &self.green_thread)
            .field("blocked_for", &self.blocked_for)
            .finish_non_exhaustive()
    }
}

/// A duration as reports write it: `1.25 s`, `40 ms`.
pub(super) fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_the_environment() {
        assert_eq!(parse_threshold("off"), Ok(None));
        assert_eq!(parse_threshold(" OFF "), Ok(None));
        assert_eq!(parse_threshold("0"), Ok(None));
        assert_eq!(parse_threshold("250"), Ok(Some(Duration::from_millis(250))));
        assert_eq!(parse_threshold("1.5"), Err(()));
        assert_eq!(parse_threshold("soon"), Err(()));
    }

    #[test]
    fn durations_in_reports() {
        assert_eq!(seconds(Duration::from_millis(40)), "40 ms");
        assert_eq!(seconds(Duration::from_secs(1)), "1 s");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25 s");
    }
}
