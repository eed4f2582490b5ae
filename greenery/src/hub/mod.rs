//! The hub: green threads, timers and waiting, on an event loop, one per OS
//! thread (gevent's hub).
//!
//! Code that blocks (waits for a green thread, sleeps, waits on an event or a
//! queue) does not block the OS thread: it switches to the hub, a greenlet
//! that runs the event loop and switches to whichever green thread is ready.
//! There is no runtime to build: the hub is created the first time a thread
//! needs one, and the thread's own code is the main greenlet.
//!
//! ```
//! let workers: Vec<_> = (1..=3u64).map(|n| greenery::spawn(move || {
//!     greenery::sleep(std::time::Duration::from_millis(10 * n));
//!     n * n
//! })).collect();
//! let results: Vec<u64> = workers.into_iter().map(|w| w.get().unwrap()).collect();
//! assert_eq!(results, [1, 4, 9]); // the three ran at once, in about 30 ms
//! ```
//!
//! # Blocking calls
//!
//! Green threads take turns on one OS thread: a green thread runs until it
//! blocks in one of greenery's calls (a sleep, a join, a queue, a lock, a
//! socket of [`net`](crate::net)), which switches to the hub. A function that
//! blocks the OS thread instead, such as `std::thread::sleep`, a blocking
//! client (std's `TcpStream`, a database driver's blocking API), or a long
//! computation, never switches: while it runs, **every green thread of the
//! thread is frozen**, timers and [`Timeout`]s included. Use greenery's
//! cooperative versions ([`sleep`], [`net`](crate::net),
//! [`process`](crate::process)), run the blocking call on a thread pool
//! with [`spawn_blocking`], or break a long computation up with
//! [`yield_now`].
//!
//! The monitor reports such a call once it holds the hub for longer than
//! [`max_blocking_time`] (1 s unless `GREENERY_MAX_BLOCKING_TIME` or
//! [`set_max_blocking_time`] says otherwise): which green thread, for how
//! long, and a backtrace of where it is ([`BlockingReport`]). [`dump`]
//! shows every green thread of every hub, and what each waits for.
//!
//! # gevent's API in greenery
//!
//! | gevent | greenery |
//! |---|---|
//! | `gevent.spawn(f)`, `spawn_later(s, f)` | [`spawn`], [`spawn_later`], [`Builder::spawn`](crate::Builder::spawn) for a name and a stack size |
//! | `Greenlet(f)`, `g.start()`, `g.start_later(s)` | [`JoinHandle::new`], [`JoinHandle::start`], [`JoinHandle::start_later`] |
//! | `g.join()`, `g.get()`, `g.value`, `g.exception`, `g.ready()`, `g.successful()`, `g.dead` | see [`JoinHandle`], whose table lists them all |
//! | a kill is a normal end (`successful()`, no `exception`) | the same; [`JoinHandle::is_killed`] tells it apart |
//! | `g.link(cb)` runs at the next turn of the hub, in link order | the same ([`JoinHandle::link`], `link_value`, `link_exception`, `unlink`); a link runs on the hub, so it must not block |
//! | `joinall(gs, timeout, raise_error)` → the finished ones | [`joinall`]`(handles, timeout, raise_error)` → `Ok(finished)`, in the order they finished; [`JoinAllError`] names the one that failed |
//! | `killall(gs, timeout=...)` | [`killall`]`(handles, timeout)` → whether all died in time |
//! | `wait(objects)`, `iwait` | [`wait_any`] |
//! | `sleep(s)`, `sleep(0)`, `idle()` | [`sleep`], [`yield_now`], [`idle`] |
//! | `Timeout(s)`, `with_timeout(s, f)` | [`Timeout`], [`with_timeout`]; an expiry that nothing catches is reported with how to catch it |
//! | `LoopExit` | [`Deadlock`], returned by the main greenlet's blocking call |
//! | `hub.handle_error`, `hub.print_exception` | [`set_error_handler`], [`print_error`]: one handler per thread, for every report |
//! | `hub.threadpool.spawn(f)` | [`spawn_blocking`] |
//! | `hub.loop.run_callback_threadsafe(f)` | [`Handle::run`] |
//! | the monitor thread, `max_blocking_time` | [`max_blocking_time`], [`set_max_blocking_time`], `GREENERY_MAX_BLOCKING_TIME`; reports carry a [`BlockingReport`] |
//! | `print_run_info()`, `format_run_info()` | [`dump`], [`format_dump`], [`dump_on_signal`] |
//!
//! # Protocol
//!
//! - **Who switches to whom.** A green thread (or the main greenlet) that
//!   blocks *parks*: it leaves a *waiter* with whatever will wake it (a
//!   primitive's wait queue, a timer) and switches to the hub. Only the hub
//!   switches to green threads, and only to resume one that was woken (or to
//!   start, yield to or kill one). Green threads are greenlets whose parent
//!   is the hub: one that finishes switches back to the hub.
//! - **Waking.** Waking a waiter does not switch: it marks the waiter woken
//!   and appends it to the hub's run queue. A waiter is woken at most once
//!   per park; waking one that already gave up (timed out, killed) does
//!   nothing and says so, and the primitive wakes the next.
//! - **Order.** The run queue is FIFO: green threads run in the order they
//!   were woken, spawned, or yielded; timers due at the same time fire in the
//!   order they were set.
//! - **Fairness.** Each turn of the loop runs only the tasks that were queued
//!   when the turn began (what they queue runs next turn). When the run queue
//!   is empty, or at the latest after 64 tasks, the loop polls for I/O
//!   (without waiting, if the run queue is not empty) and fires due timers.
//!   A long chain of ready green threads therefore cannot starve I/O or
//!   timers, and green threads that yield to each other do not pay a system
//!   call per switch.
//! - **I/O.** Sockets and other fds are registered with the loop's poller;
//!   a green thread waits for one as the `hub::io` module (crate-private)
//!   documents: try the system call, and park only if it would block.
//! - **Deadlock.** If the run queue is empty and no timer, I/O, other thread
//!   or blocking task can ever wake anything, nothing will ever run again. The
//!   hub then wakes the main greenlet, if it is waiting, with
//!   [`Deadlock`]: its blocking call returns that error ("this would block
//!   forever"), gevent's `LoopExit`, instead of hanging.
//! - **Inside the hub.** Timer callbacks and other hub tasks run on the hub
//!   itself and must not block; a blocking call there panics with a message
//!   saying so (gevent's `BlockingSwitchOutError`).
//! - **Idle memory.** Green threads that stay parked for
//!   [`stash_after`](crate::stack::stash_after) have their stacks stashed:
//!   the used part is copied to the heap and the pages given back, and the
//!   switch that resumes one puts them back first. The hub finds them with
//!   a sweep every period, over a list of parked green threads kept in park
//!   order, a slice per turn of its loop; the sweep wakes nothing and keeps
//!   nothing alive.
//!   Once no green thread has finished for
//!   [`release_after`](crate::stack::release_after), the hub gives back
//!   the memory that finished ones left for reuse (stack pages, malloc's
//!   free memory): after a burst, the process returns to about its
//!   memory before it.
//! - **Watching.** Each time the loop hands the thread to a task, and
//!   around each wait for events, it stores a counter that the process's
//!   monitor thread reads (the `monitor` module); each green thread has a
//!   record of who spawned it and what it is parked on, which [`dump`]
//!   reads (the `record` module). Both cost a few plain stores.
//! - **Threads.** Each OS thread has its own hub. Handles to green threads
//!   are `!Send`; [`Handle`] is the `Send` way to run something on another
//!   thread's hub, and it wakes that hub's loop. A green thread never moves
//!   to another OS thread: its thread-locals are never seen from two
//!   threads. [`run_on`] runs one hub per core; channels between them are in
//!   [`sync::mpsc`](crate::sync::mpsc).

mod block_on;
mod blocking;
pub(crate) mod deferred;
mod dump;
mod green_future;
pub(crate) mod io;
mod join_all;
mod join_error;
mod join_handle;
mod link;
mod monitor;
mod record;
mod remote;
pub(crate) mod report;
mod run_on;
mod sweep;
mod thread;
mod timeout;
mod timer;
mod wait_queue;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use block_on::block_on;
pub use blocking::spawn_blocking;
pub use dump::{DumpOnSignal, dump, dump_on_signal, format_dump};
pub use green_future::GreenFuture;
pub use join_all::{JoinAllError, joinall, killall, wait_any};
pub use join_error::JoinError;
pub use join_handle::JoinHandle;
pub use link::LinkId;
pub use monitor::{BlockingReport, max_blocking_time, set_max_blocking_time};
pub use remote::Handle;
pub use report::{ErrorHandler, ErrorReport, print_error, reset_error_handler, set_error_handler};
pub use run_on::{cores, run_on};
pub use thread::{spawn, spawn_later};
pub use timeout::{TimedOut, Timeout, with_timeout};

pub(crate) use timeout::{is_timeout_expiry, timeout_expiry_message};

pub(crate) use join_handle::AnyJoinHandle;
pub(crate) use record::{Record, Wait};
pub(crate) use thread::{make as make_green_thread, spawn_with};
pub(crate) use wait_queue::WaitQueue;

use crate::greenlet::{self, Greenlet};
use timer::{TimerId, Timers};

/// A blocking call would never return: nothing left can wake what it waits
/// for (gevent's `LoopExit`).
///
/// Its `Debug` carries the explanation, so that `unwrap()` shows it:
///
/// ```
/// let shown = format!("{:?}", greenery::hub::Deadlock);
/// assert!(shown.starts_with("Deadlock: this would block forever"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadlock;

impl fmt::Debug for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Deadlock: {self}")
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "this would block forever: deadlock (every green thread is waiting, and no timer, \
             I/O, other thread or blocking task is left to wake one)",
        )
    }
}

impl Error for Deadlock {}

/// Why a parked greenlet was resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// [`Waiter::wake`] was called.
    Notified,
    /// The deadline passed.
    TimedOut,
    /// Nothing can ever wake it.
    Deadlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitState {
    /// Not parked (new, or resumed).
    Idle,
    Parked,
    /// Woken, in the run queue.
    Woken,
}

/// A parked greenlet, as the things that may wake it hold it.
///
/// A primitive keeps an `Rc<Waiter>` in its wait queue; the hub keeps one in
/// its run queue once it is woken, and in a timer while a deadline is set.
/// None of them points into the waiting greenlet's stack, so a waiter that is
/// killed or times out leaves nothing dangling: it is just stale, and waking
/// it does nothing.
pub(crate) struct Waiter {
    greenlet: Greenlet,
    state: Cell<WaitState>,
    reason: Cell<Wake>,
}

impl Waiter {
    /// A waiter for the current greenlet.
    pub(crate) fn new() -> Rc<Waiter> {
        Rc::new(Waiter {
            greenlet: greenlet::getcurrent(),
            state: Cell::new(WaitState::Idle),
            reason: Cell::new(Wake::Notified),
        })
    }

    /// Wakes the waiter if it is parked: it will resume with
    /// [`Wake::Notified`]. Returns whether it was parked (a waiter that gave
    /// up, or was woken already, is left alone).
    pub(crate) fn wake(self: &Rc<Self>) -> bool {
        self.wake_with(Wake::Notified)
    }

    fn wake_with(self: &Rc<Self>, reason: Wake) -> bool {
        if self.state.get() != WaitState::Parked {
            return false;
        }
        self.state.set(WaitState::Woken);
        self.reason.set(reason);
        with_hub(|hub| hub.ready.borrow_mut().push_back(Task::Resume(self.clone())));
        true
    }

    /// Whether the waiter is the current greenlet's.
    pub(crate) fn is_current_greenlet(&self) -> bool {
        self.greenlet.is_current()
    }

    /// Whether the waiter is parked and has not been woken.
    pub(crate) fn is_parked(&self) -> bool {
        self.state.get() == WaitState::Parked
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter").field("greenlet", &self.greenlet).field("state", &self.state.get()).finish()
    }
}

/// Work for the hub's loop.
enum Task {
    /// Resume a woken waiter.
    Resume(Rc<Waiter>),
    /// Start a green thread (or tell it that it cannot start).
    Start(Greenlet, Rc<dyn thread::StartFailure>),
    /// Run a callback on the hub.
    Call(Box<dyn FnOnce()>),
    /// Kill a green thread.
    Kill(Greenlet),
    /// Kill a green thread with an error ([`JoinHandle::kill_with`]).
    Throw(Greenlet, thread::KillSignal),
}

/// What a timer does when it fires.
enum TimerAction {
    Wake(Rc<Waiter>, Wake),
    Call(Box<dyn FnOnce()>),
}

/// The hub of one OS thread.
pub(crate) struct Hub {
    greenlet: Greenlet,
    main: Greenlet,
    ready: RefCell<VecDeque<Task>>,
    timers: RefCell<Timers<TimerAction>>,
    /// Waiters to wake when the run queue is next empty ([`idle`]).
    idlers: RefCell<Vec<Rc<Waiter>>>,
    /// The main greenlet's waiter while it is parked: the one to tell about a
    /// deadlock.
    main_waiter: RefCell<Option<Rc<Waiter>>>,
    remote: remote::Remote,
    /// Registered fds and the green threads waiting on them.
    io: io::IoTable,
    /// Green threads spawned on this hub, for their small ids.
    spawned: Cell<u64>,
    /// Green threads that stay parked, to stash.
    sweep: sweep::Sweep,
    /// The process that made the hub: a forked child has a copy of the hub
    /// but shares its poller with the parent, and must not park on it.
    #[cfg_attr(not(feature = "patch"), allow(dead_code))]
    pid: u32,
    /// When the loop last polled: the time parks record as their start.
    now: Cell<Instant>,
    /// What the monitor and the dump see of this hub.
    watch: Arc<monitor::Watch>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        monitor::unregister_hub();
    }
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's hub, creating it on first use.
///
/// # Panics
///
/// While the thread is being torn down.
pub(crate) fn with_hub<R>(f: impl FnOnce(&Rc<Hub>) -> R) -> R {
    let hub = HUB.with(|slot| slot.borrow().clone()).unwrap_or_else(create_hub);
    f(&hub)
}

/// Whether this thread has a hub that is not being torn down.
pub(crate) fn has_hub() -> bool {
    existing_hub().is_some()
}

/// Whether the running code may park: this thread has a hub of this
/// process (not a forked child's copy of its parent's), and the code does
/// not run on the hub itself (its loop, a timer callback, a link).
#[cfg_attr(not(feature = "patch"), allow(dead_code))]
pub(crate) fn may_park() -> bool {
    existing_hub().is_some_and(|hub| !hub.is_current() && hub.pid == std::process::id())
}

/// Runs `callback` on the hub at its next turn, between green threads (it
/// must not block).
#[cfg(feature = "tls")]
pub(crate) fn call_soon(callback: Box<dyn FnOnce()>) {
    with_hub(|hub| hub.schedule(Task::Call(callback)));
}

/// This thread's hub, if it has one and is not being torn down.
fn existing_hub() -> Option<Rc<Hub>> {
    HUB.try_with(|slot| slot.borrow().clone()).ok().flatten()
}

/// Whether the running greenlet is this thread's hub (a timer callback, a
/// link, or another hub task is running).
pub(crate) fn is_on_hub() -> bool {
    existing_hub().is_some_and(|hub| hub.is_current())
}

/// Whether `greenlet` is one of this thread's green threads (its parent is
/// the hub).
pub(crate) fn is_green_thread(greenlet: &Greenlet) -> bool {
    existing_hub().is_some_and(|hub| greenlet.parent().is_some_and(|parent| parent == hub.greenlet))
}

#[cold]
fn create_hub() -> Rc<Hub> {
    // The hub's parent is the thread's main greenlet, whichever greenlet
    // first needs it.
    let mut main = greenlet::getcurrent();
    while let Some(parent) = main.parent() {
        main = parent;
    }
    crate::unwind::install_panic_hook();
    let hub_greenlet = crate::Builder::new()
        .name("hub")
        .greenlet(|_| run_loop())
        .unwrap_or_else(|err| panic!("cannot start the hub: {err}"));
    hub_greenlet.set_parent(&main).expect("the main greenlet is no descendant of the hub");
    let remote =
        remote::Remote::new().unwrap_or_else(|err| panic!("cannot create the hub's event loop: {err}"));
    let watch = monitor::register_hub(&hub_greenlet, &main, remote.doorbell());
    main.record().set_main();
    let hub = Rc::new(Hub {
        greenlet: hub_greenlet,
        main,
        ready: RefCell::new(VecDeque::new()),
        timers: RefCell::new(Timers::new()),
        idlers: RefCell::new(Vec::new()),
        main_waiter: RefCell::new(None),
        remote,
        io: io::IoTable::new(),
        spawned: Cell::new(0),
        sweep: sweep::Sweep::new(),
        pid: std::process::id(),
        now: Cell::new(Instant::now()),
        watch,
    });
    HUB.with(|slot| *slot.borrow_mut() = Some(hub.clone()));
    hub
}

impl Hub {
    fn is_current(&self) -> bool {
        self.greenlet.is_current()
    }

    fn schedule(&self, task: Task) {
        self.ready.borrow_mut().push_back(task);
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.spawned.get() + 1;
        self.spawned.set(id);
        id
    }

    /// Sets a timer that runs `callback` on the hub at `deadline`.
    pub(crate) fn call_at(&self, deadline: Instant, callback: Box<dyn FnOnce()>) -> TimerId {
        self.timers.borrow_mut().insert(deadline, TimerAction::Call(callback))
    }

    pub(crate) fn cancel_timer(&self, id: TimerId) {
        let action = self.timers.borrow_mut().cancel(id);
        drop(action); // outside the borrow: dropping a callback may run code
    }
}

/// Parks the current greenlet until `waiter` is woken, the `deadline` (if
/// any) passes, or nothing can wake it any more.
///
/// `waiter` must be the current greenlet's (from [`Waiter::new`]), already
/// placed wherever it will be woken from; `what` says what that is (for
/// [`dump`]).
///
/// If the greenlet is killed while parked, this unwinds (with the kill's
/// payload) and the waiter is left stale.
///
/// # Panics
///
/// When called on the hub itself (from a hub callback): the hub cannot wait
/// for itself.
pub(crate) fn park(waiter: &Rc<Waiter>, what: Wait, deadline: Option<Instant>) -> Wake {
    park_until(waiter, what, deadline, PastDeadline::TimesOut)
}

/// What [`park_until`] does with a deadline that has already passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PastDeadline {
    /// Returns [`Wake::TimedOut`] at once, without letting anything run: a
    /// zero timeout is a check, not a wait.
    TimesOut,
    /// Switches to the hub anyway (a sleep always lets the others run).
    Yields,
}

fn park_until(waiter: &Rc<Waiter>, what: Wait, deadline: Option<Instant>, past: PastDeadline) -> Wake {
    deferred::raise_pending();
    let hub = with_hub(Rc::clone);
    if hub.is_current() {
        panic!(
            "a blocking call ran on the hub (in a timer callback or link?): the hub cannot wait for itself"
        );
    }
    debug_assert!(waiter.greenlet.is_current());
    if past == PastDeadline::TimesOut && deadline.is_some_and(|at| at <= Instant::now()) {
        return Wake::TimedOut;
    }
    waiter.state.set(WaitState::Parked);
    hub.sweep.parked(&waiter.greenlet);
    waiter.greenlet.record().parked(what, hub.now.get(), deadline);
    let timer = deadline
        .map(|at| hub.timers.borrow_mut().insert(at, TimerAction::Wake(waiter.clone(), Wake::TimedOut)));
    let is_main = waiter.greenlet.is_main();
    if is_main {
        *hub.main_waiter.borrow_mut() = Some(waiter.clone());
        monitor::waiting_changed(1);
    }
    // Whatever happens at the switch (a kill unwinds through it), the waiter
    // must end up idle and its timer gone.
    struct Cleanup<'a> {
        waiter: &'a Waiter,
        timer: Option<TimerId>,
        is_main: bool,
    }
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            self.waiter.state.set(WaitState::Idle);
            self.waiter.greenlet.note_resumed();
            self.waiter.greenlet.record().resumed();
            if self.is_main {
                monitor::waiting_changed(-1);
            }
            // During thread teardown the hub may be gone, and its timers
            // with it.
            if let Some(hub) = existing_hub() {
                if let Some(timer) = self.timer {
                    hub.cancel_timer(timer);
                }
                if self.is_main {
                    hub.main_waiter.borrow_mut().take();
                }
            }
        }
    }
    let _cleanup = Cleanup { waiter, timer, is_main };
    let hub_greenlet = hub.greenlet.clone();
    drop(hub); // a parked greenlet must not keep the hub alive
    // The hub resumes us with `()`; why it did is in the waiter. An expired
    // timeout, or a kill with an error, is thrown in instead: unwind for it
    // (after the cleanup).
    if let Err(greenlet::Thrown(value)) = hub_greenlet.switch(()) {
        drop(_cleanup);
        raise_thrown(value);
    }
    waiter.reason.get()
}

/// Unwinds for what the hub throws into a parked green thread: an expired
/// timeout, or a kill with an error. Anything else thrown at a blocking call
/// is ignored.
#[cold]
fn raise_thrown(value: greenlet::Value) {
    let value = match value.downcast::<timeout::TimeoutSignal>() {
        Ok(signal) => signal.raise(),
        Err(value) => value,
    };
    if let Ok(thread::KillSignal(payload)) = value.downcast::<thread::KillSignal>() {
        std::panic::resume_unwind(payload);
    }
}

/// Lets every other ready green thread run, then carries on (gevent's
/// `sleep(0)`).
pub fn yield_now() {
    deferred::raise_pending();
    let waiter = Waiter::new();
    waiter.state.set(WaitState::Parked);
    waiter.wake();
    // However the switch ends (a kill unwinds through it), the queued resume
    // must be left stale.
    struct Settle<'a>(&'a Waiter);
    impl Drop for Settle<'_> {
        fn drop(&mut self) {
            self.0.state.set(WaitState::Idle);
        }
    }
    let settle = Settle(&waiter);
    let hub = with_hub(|hub| hub.greenlet.clone());
    // An expired timeout (or a kill with an error) is thrown in, as into a
    // park.
    if let Err(greenlet::Thrown(value)) = hub.switch(()) {
        drop(settle);
        raise_thrown(value);
    }
}

/// Blocks the current green thread for `duration`; other green threads run
/// meanwhile. A zero duration is [`yield_now`].
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        return yield_now();
    }
    let waiter = Waiter::new();
    park_until(&waiter, Wait::Sleep, Some(Instant::now() + duration), PastDeadline::Yields);
}

/// Blocks until the hub has nothing else to run: every ready green thread has
/// run and blocked again (gevent's `idle`).
///
/// # Errors
///
/// [`Deadlock`] if nothing else could ever run.
pub fn idle() -> Result<(), Deadlock> {
    let waiter = Waiter::new();
    with_hub(|hub| hub.idlers.borrow_mut().push(waiter.clone()));
    match park(&waiter, Wait::Idle, None) {
        Wake::Deadlock => Err(Deadlock),
        _ => Ok(()),
    }
}

/// Tasks the hub runs, at most, between two polls for I/O and timers while
/// ready tasks keep coming. Polling costs a system call, so a loop busy with
/// green threads that yield to each other polls only every so often; a loop
/// that runs out of ready tasks polls at once.
const TASKS_PER_POLL: usize = 64;

/// Runs the tasks that were ready when it was called (what they make ready
/// waits for the next call); returns how many it ran.
fn run_ready(hub: &Hub) -> usize {
    let batch = hub.ready.borrow().len();
    for _ in 0..batch {
        let Some(task) = hub.ready.borrow_mut().pop_front() else { break };
        monitor::beat();
        match task {
            Task::Resume(waiter) => {
                // It may have been killed since it was woken.
                if waiter.state.get() == WaitState::Woken && !waiter.greenlet.is_dead() {
                    let _ = waiter.greenlet.switch(());
                }
            }
            Task::Start(green, failure) => thread::start(&green, failure),
            Task::Call(callback) => callback(),
            Task::Kill(green) => {
                let _ = green.kill();
            }
            Task::Throw(green, signal) => {
                if !green.is_dead() {
                    let _ = green.throw(signal);
                }
            }
        }
    }
    batch
}

/// Run-queue entries the hub keeps room for once its queue is empty: a burst
/// that made many green threads ready at once (thousands of connections
/// answered in one turn) does not leave its run queue's memory behind,
/// about 30 bytes per green thread of the burst.
const READY_KEPT: usize = 1024;

/// Gives back the room of an empty run queue beyond [`READY_KEPT`] entries
/// (four times that, before it bothers).
fn shrink_ready(hub: &Hub) {
    let mut ready = hub.ready.borrow_mut();
    if ready.is_empty() && ready.capacity() > 4 * READY_KEPT {
        ready.shrink_to(READY_KEPT);
    }
}

/// The hub's loop; see the module documentation.
fn run_loop() {
    let mut since_poll = 0;
    loop {
        let Some(hub) = existing_hub() else { return };
        since_poll += run_ready(&hub);
        let busy = !hub.ready.borrow().is_empty();
        if busy && since_poll < TASKS_PER_POLL {
            continue;
        }
        since_poll = 0;
        if !busy {
            shrink_ready(&hub);
            let idlers = std::mem::take(&mut *hub.idlers.borrow_mut());
            for idler in idlers {
                idler.wake();
            }
        }
        let now = Instant::now();
        let wait = if !hub.ready.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            hub.timers.borrow_mut().next_deadline().map(|at| at.saturating_duration_since(now))
        };
        if wait.is_none() && !hub.remote.keeps_alive() && !hub.io.has_waiters() && !block_on::waiting() {
            // Nothing can ever run again (the sweep wakes nothing).
            report_deadlock(&hub);
            continue;
        }
        let wait = hub.sweep.limit_wait(wait, now);
        let idle = wait != Some(Duration::ZERO);
        if idle {
            monitor::polling(true);
        }
        let remote_tasks = hub.remote.poll(wait, |token, readiness| hub.io.dispatch(token, readiness));
        if idle {
            monitor::polling(false);
        }
        for task in remote_tasks {
            hub.schedule(task);
        }
        fire_timers(&hub);
        if monitor::report_pending(&hub.watch) {
            monitor::deliver_pending(&hub.watch);
        }
        // With the time read before the poll: a sweep that fell due during
        // it starts on the next turn, which then does not wait.
        hub.sweep.run(now);
    }
}

fn fire_timers(hub: &Hub) {
    let now = Instant::now();
    hub.now.set(now);
    loop {
        let action = hub.timers.borrow_mut().pop_due(now);
        match action {
            Some(TimerAction::Wake(waiter, reason)) => {
                waiter.wake_with(reason);
            }
            Some(TimerAction::Call(callback)) => hub.schedule(Task::Call(callback)),
            None => break,
        }
    }
}

/// The addresses of the greenlets the run queue will resume, start or kill
/// (for [`dump`]).
fn ready_greenlets(hub: &Hub) -> Vec<usize> {
    hub.ready
        .borrow()
        .iter()
        .filter_map(|task| match task {
            Task::Resume(waiter) if waiter.state.get() == WaitState::Woken => Some(waiter.greenlet.address()),
            Task::Start(greenlet, _) | Task::Kill(greenlet) | Task::Throw(greenlet, _) => {
                Some(greenlet.address())
            }
            _ => None,
        })
        .collect()
}

#[cold]
fn report_deadlock(hub: &Hub) {
    let main = hub.main_waiter.borrow().clone();
    match main {
        Some(waiter) if waiter.wake_with(Wake::Deadlock) => {}
        _ => {
            // The main greenlet is not parked (it switched to a greenlet by
            // hand, which then parked): nobody is waiting to be told. Go
            // back to it; its pending switch returns.
            crate::unwind::report_message(
                "hub",
                &format!("{}; switching back to the main greenlet", Deadlock),
            );
            let _ = hub.main.switch(Deadlock);
        }
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("ready", &self.ready.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_queue_gives_back_the_room_of_a_burst() {
        let burst = 8 * READY_KEPT;
        let sleepers: Vec<_> = (0..burst).map(|_| crate::spawn(|| sleep(Duration::from_millis(1)))).collect();
        let grown = with_hub(|hub| hub.ready.borrow().capacity());
        assert!(grown >= burst, "the spawns queued {burst} starts ({grown})");
        for sleeper in sleepers {
            sleeper.join().unwrap();
        }
        // The sleepers all woke in one turn, and the queue emptied since.
        idle().unwrap();
        let kept = with_hub(|hub| hub.ready.borrow().capacity());
        assert!(kept <= 4 * READY_KEPT, "kept room for {kept} entries after the burst");
    }
}
