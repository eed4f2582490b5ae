//! Green threads: [`spawn`] and friends (gevent's `Greenlet` and its
//! top-level functions), and what a green thread shares with its
//! [`JoinHandle`]s.
//!
//! # Ending
//!
//! A green thread ends by returning, panicking, being killed, or (one that
//! never started) being killed or failing to get a stack. The ending, in
//! order: the outcome is stored (from then on the thread is *ready*); the
//! crate's own callbacks run at once, on the ending green thread (groups and
//! pools let the member go); the user's links are scheduled as one hub task;
//! the joiners are woken, and so run after that task. A link made later runs
//! in a hub task of its own, in link order; [`JoinHandle::get`], which moves
//! the value out, first waits for every link to have seen it.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::link::{Link, LinkId};
use super::report::{self, ErrorReport};
use super::{JoinError, JoinHandle, Task, WaitQueue, with_hub};
use crate::GreenletExit;
use crate::greenlet::{Greenlet, Value};
use crate::unwind::{self, Payload};

/// Whether a green thread was told to start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Start {
    /// Made by [`JoinHandle::new`]: waits for `start`.
    No,
    /// Its start is scheduled (or done).
    Scheduled,
}

/// What a green thread left behind, shared by its handle and its body.
pub(super) struct Shared<T> {
    pub(super) id: u64,
    /// Set once, when the green thread finishes (or is killed unstarted);
    /// `None` again once [`JoinHandle::get`] took it.
    pub(super) outcome: RefCell<Option<Result<T, JoinError>>>,
    /// 0 while running; once finished, its place in the order in which
    /// this thread's green threads finished (from 1).
    pub(super) finished: Cell<u64>,
    /// Returned or killed (gevent's `successful()`).
    pub(super) successful: Cell<bool>,
    pub(super) start: Cell<Start>,
    /// Woken when it finishes, and when its links have run.
    pub(super) joiners: WaitQueue,
    /// The user's links, made by the first (most green threads have none).
    pub(super) links: RefCell<Option<Box<Links<T>>>>,
    /// Whether a hub task to run `links` is queued.
    pub(super) links_scheduled: Cell<bool>,
    /// The crate's own callbacks, run as it ends, on the ending thread.
    pub(super) raw_links: RefCell<RawLinks>,
}

/// A green thread's links ([`JoinHandle::link`](super::JoinHandle::link)).
pub(super) struct Links<T> {
    /// In link order, until they run.
    pub(super) pending: Vec<(LinkId, Link<T>)>,
    /// The id of the next one.
    pub(super) next: u64,
}

/// A raw link: a callback of its own, or one shared by many green threads
/// (a group's), called with the finishing green thread's id.
pub(super) enum RawLink {
    Own(Box<dyn FnOnce()>),
    Shared(Rc<dyn Fn(u64)>),
}

/// A green thread's raw links, in the order they were added. Most green
/// threads have none or one (a group's or a pool's), kept without a vector.
#[derive(Default)]
pub(super) enum RawLinks {
    #[default]
    None,
    One(RawLink),
    Many(Vec<RawLink>),
}

impl RawLinks {
    pub(super) fn push(&mut self, link: RawLink) {
        *self = match std::mem::take(self) {
            RawLinks::None => RawLinks::One(link),
            RawLinks::One(first) => RawLinks::Many(vec![first, link]),
            RawLinks::Many(mut links) => {
                links.push(link);
                RawLinks::Many(links)
            }
        };
    }

    /// Runs them, in order, for the green thread `id`.
    fn run(self, id: u64) {
        let call = |link| match link {
            RawLink::Own(callback) => callback(),
            RawLink::Shared(callback) => callback(id),
        };
        match self {
            RawLinks::None => {}
            RawLinks::One(link) => call(link),
            RawLinks::Many(links) => links.into_iter().for_each(call),
        }
    }
}

/// What the hub tells a green thread's shared state when it cannot start
/// it.
pub(super) trait StartFailure {
    fn cannot_start(self: Rc<Self>, err: crate::StackError);
}

impl<T: 'static> StartFailure for Shared<T> {
    fn cannot_start(self: Rc<Self>, err: crate::StackError) {
        self.complete(Err(JoinError::stack(err)));
    }
}

impl<T: 'static> Shared<T> {
    pub(super) fn complete(self: &Rc<Self>, outcome: Result<T, JoinError>) {
        if self.finished.get() != 0 {
            return;
        }
        thread_local!(static FINISHED: Cell<u64> = const { Cell::new(0) });
        self.finished.set(FINISHED.with(|count| {
            count.set(count.get() + 1);
            count.get()
        }));
        self.successful.set(outcome.as_ref().map_or_else(JoinError::is_killed, |_| true));
        *self.outcome.borrow_mut() = Some(outcome);
        let raw_links = std::mem::take(&mut *self.raw_links.borrow_mut());
        raw_links.run(self.id);
        self.schedule_links();
        self.joiners.notify_all();
    }

    /// Queues a hub task that runs the links, unless one is queued already
    /// or there are none.
    pub(super) fn schedule_links(self: &Rc<Self>) {
        if self.links_scheduled.get()
            || self.links.borrow().as_ref().is_none_or(|links| links.pending.is_empty())
        {
            return;
        }
        self.links_scheduled.set(true);
        let shared = self.clone();
        with_hub(|hub| hub.schedule(Task::Call(Box::new(move || shared.run_links()))));
    }

    /// Runs the links in link order, those added meanwhile included; then
    /// wakes the joiners (a `get` waits for the links).
    fn run_links(&self) {
        loop {
            let next = {
                let mut links = self.links.borrow_mut();
                links.as_mut().filter(|links| !links.pending.is_empty()).map(|links| links.pending.remove(0))
            };
            let Some((_, link)) = next else { break };
            let outcome = self.outcome.borrow();
            let Some(outcome) = outcome.as_ref() else { continue };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| link.call(outcome))) {
                unwind::report(&format!("link of green thread {}", self.id), "panicked", &*payload);
            }
        }
        self.links_scheduled.set(false);
        self.joiners.notify_all();
    }
}

/// Spawns a green thread running `f` on this thread's hub (gevent's
/// `spawn`). It starts the next time the hub runs: when the current green
/// thread blocks or yields.
///
/// A panic in `f` does not reach the hub: it is reported (Rust's panic
/// message, naming the green thread, then a line from the hub's error
/// handler, [`set_error_handler`](crate::hub::set_error_handler)) and
/// [`JoinHandle::get`] returns it as an error.
///
/// A green thread must not call a function that blocks the OS thread
/// (`std::thread::sleep`, a blocking client, a long computation): while it
/// runs, no other green thread does. See [the hub](crate::hub#blocking-calls).
///
/// ```
/// let answer = greenery::spawn(|| 6 * 7);
/// assert_eq!(answer.get().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_with(f, None, None)
}

/// Spawns a green thread that starts after `delay` (gevent's `spawn_later`).
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let handle = make(f, None, None);
    handle.start_later(delay);
    handle
}

/// [`spawn`] with a name and a stack size ([`Builder::spawn`](crate::Builder::spawn)).
#[track_caller]
pub(crate) fn spawn_with<F, T>(
    f: F,
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let handle = make(f, name, stack_size);
    handle.start();
    handle
}

/// Makes a green thread, not started; [`dump`](super::dump) shows the
/// caller as where it was spawned.
#[track_caller]
pub(crate) fn make<F, T>(f: F, name: Option<Cow<'static, str>>, stack_size: Option<usize>) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let at = std::panic::Location::caller();
    let (id, hub_greenlet) = with_hub(|hub| (hub.next_id(), hub.greenlet.clone()));
    let shared = Rc::new(Shared {
        id,
        outcome: RefCell::new(None),
        finished: Cell::new(0),
        successful: Cell::new(false),
        start: Cell::new(Start::No),
        joiners: WaitQueue::new("join"),
        links: RefCell::new(None),
        links_scheduled: Cell::new(false),
        raw_links: RefCell::new(RawLinks::None),
    });
    let body_shared = shared.clone();
    let name = name.unwrap_or(Cow::Borrowed(std::any::type_name::<F>()));
    let body = move |_: Value| {
        let shared = body_shared;
        // A kill or a timeout put off by a call that could not unwind (see
        // `deferred`) ends the green thread as if it had unwound it.
        let outcome = panic::catch_unwind(AssertUnwindSafe(f))
            .and_then(|value| super::deferred::take(|_| true).map_or(Ok(value), Err));
        let outcome = match outcome {
            Ok(value) => Ok(value),
            Err(payload) if payload.is::<GreenletExit>() => Err(JoinError::killed()),
            Err(payload) => {
                let name = crate::greenlet::getcurrent().name().to_owned();
                report_failure(&name, shared.id, &*payload);
                Err(JoinError::panicked(payload))
            }
        };
        shared.complete(outcome);
    };
    let greenlet = Greenlet::lazy(body, name, stack_size, hub_greenlet);
    greenlet.record().register(id, crate::greenlet::current_record_id(), at);
    JoinHandle { shared, greenlet }
}

/// Hands a green thread's failure to the error handler.
pub(super) fn report_failure(name: &str, id: u64, payload: &(dyn std::any::Any + Send)) {
    let message = unwind::panic_message(payload);
    let what = format!("(green thread {id}) failed");
    report::handle(&ErrorReport::new(name, &what, &message).with_payload(payload).with_green_thread(id));
}

/// Starts a green thread (the hub's [`Task::Start`]).
pub(super) fn start(greenlet: &Greenlet, failure: Rc<dyn StartFailure>) {
    if greenlet.is_dead() {
        return; // killed before it started
    }
    if let Err(err) = greenlet.prepare() {
        // No stack for it: it dies without running.
        unwind::report_message(greenlet.name(), &format!("cannot start: {err}"));
        failure.cannot_start(err);
        return;
    }
    let _ = greenlet.switch(());
}

/// An error thrown into a green thread by
/// [`JoinHandle::kill_with`]: its blocking call unwinds with the payload.
pub(crate) struct KillSignal(pub(crate) Payload);

/// A green thread's start, as a hub task.
pub(super) fn start_task<T: 'static>(handle: &JoinHandle<T>) -> Task {
    Task::Start(handle.greenlet.clone(), handle.shared.clone())
}

/// Schedules `task` on this thread's hub at `deadline`.
pub(super) fn schedule_at(deadline: Instant, task: Task) {
    with_hub(|hub| {
        hub.call_at(deadline, Box::new(move || with_hub(|hub| hub.schedule(task))));
    });
}
