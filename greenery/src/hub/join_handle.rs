//! [`JoinHandle`]: a green thread, as its spawner holds it (gevent's
//! `Greenlet` object).

use std::cell::Ref;
use std::error::Error;
use std::fmt;
use std::panic;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::link::{Link, LinkId};
use super::thread::{self, KillSignal, Links, RawLink, Shared, Start};
use super::{Deadlock, JoinError, Task, WaitQueue, Wake, with_hub};
use crate::greenlet::Greenlet;

/// A handle to a green thread: wait for it, look at its outcome, take its
/// value, link callbacks to its end, kill it.
///
/// Dropping the handle detaches the green thread: it carries on (gevent's
/// greenlets do too). The handle is `!Send`: green threads belong to their
/// thread's hub.
///
/// # gevent's `Greenlet` in greenery
///
/// | gevent | greenery |
/// |---|---|
/// | `g = Greenlet(f)`, `g.start()`, `g.start_later(s)` | [`JoinHandle::new(f)`](Self::new), [`start`](Self::start), [`start_later`](Self::start_later) |
/// | `gevent.spawn(f)`, `spawn_later(s, f)` | [`spawn`](crate::spawn), [`spawn_later`](crate::spawn_later) |
/// | `g.join(timeout)` | [`join`](Self::join), [`join_timeout`](Self::join_timeout) |
/// | `g.get()` | [`get`](Self::get) (moves the value out), [`wait`](Self::wait) (lends the outcome, the handle stays usable) |
/// | `g.ready()`, `g.dead`, `g.successful()` | [`is_ready`](Self::is_ready), [`is_dead`](Self::is_dead), [`is_successful`](Self::is_successful) |
/// | `g.value`, `g.exception` | [`value`](Self::value), [`exception`](Self::exception) (both lend) |
/// | a kill is a normal end: `successful()`, `exception is None`, `value` is the `GreenletExit` | the same, but Rust has no `GreenletExit` value: `value()` is `None`, [`is_killed`](Self::is_killed) holds, `get` returns a [`JoinError`] for which [`is_killed`](JoinError::is_killed) holds |
/// | `g.kill(block=True)`, `kill(block=False)`, `kill(exception=E)` | [`kill`](Self::kill), [`kill_async`](Self::kill_async), [`kill_with`](Self::kill_with) |
/// | `g.link(cb)`, `link_value`, `link_exception`, `unlink` | [`link`](Self::link), [`link_value`](Self::link_value), [`link_exception`](Self::link_exception), [`unlink`](Self::unlink): run at the next turn of the hub, in link order |
/// | a link runs in a new greenlet, and may block | a link runs on the hub and must not block (spawn from it for work that does) |
/// | `g.minimal_ident`, `g.name` | [`id`](Self::id), [`name`](Self::name) |
pub struct JoinHandle<T> {
    pub(super) shared: Rc<Shared<T>>,
    pub(super) greenlet: Greenlet,
}

impl<T: 'static> JoinHandle<T> {
    /// A green thread that will run `f` once [`start`](Self::start)ed
    /// (gevent's `Greenlet(f)`); until then it does not run, and takes no
    /// stack.
    ///
    /// ```
    /// let worker = greenery::JoinHandle::new(|| "ran");
    /// greenery::yield_now();
    /// assert!(!worker.is_started()); // not started: the hub did not run it
    /// worker.start();
    /// assert_eq!(worker.get().unwrap(), "ran");
    /// ```
    #[track_caller]
    pub fn new<F>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
    {
        thread::make(f, None, None)
    }

    /// Schedules the green thread to start the next time the hub runs
    /// (gevent's `start`). Starting it again, or one killed first, does
    /// nothing.
    pub fn start(&self) {
        if self.shared.start.replace(Start::Scheduled) == Start::No {
            let task = thread::start_task(self);
            with_hub(|hub| hub.schedule(task));
        }
    }

    /// Schedules the green thread to start after `delay` (gevent's
    /// `start_later`). Does nothing if its start is scheduled already.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let late = greenery::JoinHandle::new(|| "late");
    /// late.start_later(Duration::from_millis(5));
    /// assert_eq!(late.join_timeout(Duration::ZERO), Ok(false));
    /// assert_eq!(late.get().unwrap(), "late");
    /// ```
    pub fn start_later(&self, delay: Duration) {
        if self.shared.start.replace(Start::Scheduled) == Start::No {
            let deadline = Instant::now().checked_add(delay).unwrap_or_else(far_future);
            thread::schedule_at(deadline, thread::start_task(self));
        }
    }

    /// Calls `callback` with the green thread's outcome once it has
    /// finished (gevent's `link`): at the next turn of the hub after it
    /// finishes, or after this call if it has finished already; callbacks
    /// run in link order. Returns an id for [`unlink`](Self::unlink).
    ///
    /// Callbacks run on the hub, so they must not block (spawn a green
    /// thread from one for work that does). A panicking callback is
    /// reported, not propagated.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let done = greenery::spawn(|| 7);
    /// done.join().unwrap();
    /// let seen = log.clone();
    /// done.link(move |outcome| seen.borrow_mut().push(*outcome.as_ref().unwrap()));
    /// assert!(log.borrow().is_empty()); // not inside `link`
    /// greenery::yield_now(); // the next turn of the hub
    /// assert_eq!(*log.borrow(), [7]);
    /// ```
    pub fn link(&self, callback: impl FnOnce(&Result<T, JoinError>) + 'static) -> LinkId {
        self.add_link(Link::Any(Box::new(callback)))
    }

    /// [`link`](Self::link) for a successful end only (gevent's
    /// `link_value`): `callback` receives the value, or `None` if the green
    /// thread was killed (a kill is a successful end, as in gevent).
    pub fn link_value(&self, callback: impl FnOnce(Option<&T>) + 'static) -> LinkId {
        self.add_link(Link::Value(Box::new(callback)))
    }

    /// [`link`](Self::link) for a failure only (gevent's `link_exception`):
    /// a panic, an uncaught [`kill_with`](Self::kill_with) error, no stack to
    /// start on; not a kill.
    pub fn link_exception(&self, callback: impl FnOnce(&JoinError) + 'static) -> LinkId {
        self.add_link(Link::Exception(Box::new(callback)))
    }

    fn add_link(&self, link: Link<T>) -> LinkId {
        let id = {
            let mut links = self.shared.links.borrow_mut();
            let links = links.get_or_insert_with(|| Box::new(Links { pending: Vec::new(), next: 0 }));
            let id = LinkId(links.next);
            links.next += 1;
            links.pending.push((id, link));
            id
        };
        if self.is_ready() {
            self.shared.schedule_links();
        }
        id
    }

    /// Kills the green thread and waits until it is dead (gevent's `kill`):
    /// it unwinds from the point where it is blocked, running its
    /// destructors. One that has not started never runs. Killing a dead one
    /// does nothing; killing the current one unwinds it at once.
    ///
    /// A kill is a normal end, as in gevent: the green thread is then
    /// [successful](Self::is_successful) with no [exception](Self::exception),
    /// and [`get`](Self::get) returns a [`JoinError`] for which
    /// [`is_killed`](JoinError::is_killed) holds (unless it had finished), as
    /// there is no value.
    ///
    /// ```
    /// let sleeper = greenery::spawn(|| greenery::sleep(std::time::Duration::from_secs(10)));
    /// sleeper.kill().unwrap();
    /// assert!(sleeper.is_successful() && sleeper.is_killed());
    /// assert!(sleeper.exception().is_none());
    /// assert!(sleeper.get().unwrap_err().is_killed());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it cannot die: it is blocked in a destructor that waits
    /// for something that will never come.
    pub fn kill(&self) -> Result<(), Deadlock> {
        self.kill_async();
        self.join()
    }

    /// Asks for the green thread to be killed, and returns at once (gevent's
    /// `kill(block=False)`); see [`kill`](Self::kill).
    pub fn kill_async(&self) {
        kill_async(&self.greenlet, self.is_ready(), || self.shared.complete(Err(JoinError::killed())));
    }

    /// Kills the green thread with `error` instead of a plain kill, and waits
    /// until it is dead (gevent's `kill(exception=...)`): its blocking call
    /// unwinds with a panic whose payload is the error, as a
    /// `Box<dyn Error + Send + Sync>`. Unless the green thread catches it, it
    /// fails with it: it is reported, [`exception`](Self::exception) holds it
    /// ([`JoinError::error`]), and the links of
    /// [`link_exception`](Self::link_exception) run. One that has not started
    /// never runs, and fails the same way. Killing a dead one does nothing;
    /// killing the current one unwinds it at once.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it cannot die: it waits for something that will never
    /// come.
    pub fn kill_with<E: Error + Send + Sync + 'static>(&self, error: E) -> Result<(), Deadlock> {
        if self.is_ready() {
            return Ok(());
        }
        let error: Box<dyn Error + Send + Sync> = Box::new(error);
        let payload: crate::unwind::Payload = Box::new(error);
        if !self.greenlet.is_started() {
            // It never runs; its body is dropped unrun.
            self.greenlet.discard_lazy();
            thread::report_failure(self.name(), self.id(), &*payload);
            self.shared.complete(Err(JoinError::panicked(payload)));
            return Ok(());
        }
        if self.greenlet.is_current() {
            panic::resume_unwind(payload);
        }
        with_hub(|hub| hub.schedule(Task::Throw(self.greenlet.clone(), KillSignal(payload))));
        self.join()
    }
}

impl<T> JoinHandle<T> {
    /// Blocks until the green thread has finished (whichever way).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could.
    pub fn join(&self) -> Result<(), Deadlock> {
        self.wait_until(None, false).map(|_| ())
    }

    /// Blocks until the green thread has finished or `timeout` has passed;
    /// returns whether it finished.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could finish, nor the time pass.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.wait_until(Instant::now().checked_add(timeout), false)
    }

    /// Waits until the green thread has finished, and (`for_links`) until
    /// its links have run; returns whether it did by the deadline.
    fn wait_until(&self, deadline: Option<Instant>, for_links: bool) -> Result<bool, Deadlock> {
        self.shared.wait_until(deadline, for_links)
    }

    /// Waits for the green thread, then lends its outcome (gevent's `get`
    /// on a greenlet that is still used elsewhere): the handle stays
    /// usable, and the value stays in it.
    ///
    /// ```
    /// let handles = vec![greenery::spawn(|| 1), greenery::spawn(|| 2)];
    /// let sum: i32 = handles.iter().map(|h| *h.wait().unwrap().as_ref().unwrap()).sum();
    /// assert_eq!(sum, 3);
    /// assert!(handles.iter().all(|h| h.is_successful()));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could finish.
    pub fn wait(&self) -> Result<Ref<'_, Result<T, JoinError>>, Deadlock> {
        self.join()?;
        Ok(self.outcome().expect("a finished green thread holds its outcome until `get` takes it"))
    }

    /// Waits for the green thread and moves its value out (gevent's `get`).
    /// Links made before it still see the value: it waits for them to run.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if it panicked (with the payload), was killed, or waiting
    /// would never end.
    pub fn get(self) -> Result<T, JoinError> {
        if self.wait_until(None, true).is_err() {
            return Err(JoinError::deadlock());
        }
        self.take()
    }

    /// [`get`](Self::get), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get); `Err(self)` hands the handle back if the
    /// time ran out first.
    pub fn get_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        match self.wait_until(Instant::now().checked_add(timeout), true) {
            Ok(true) => Ok(self.take()),
            Ok(false) => Err(self),
            Err(Deadlock) => Ok(Err(JoinError::deadlock())),
        }
    }

    fn take(self) -> Result<T, JoinError> {
        self.shared.outcome.borrow_mut().take().unwrap_or(Err(JoinError::killed()))
    }

    /// The outcome, if the green thread has finished, without waiting: a
    /// borrow of its value or its error.
    pub fn outcome(&self) -> Option<Ref<'_, Result<T, JoinError>>> {
        Ref::filter_map(self.shared.outcome.borrow(), Option::as_ref).ok()
    }

    /// The value, if the green thread has returned one (gevent's `value`);
    /// `None` while it runs, and if it failed or was killed.
    ///
    /// ```
    /// let worker = greenery::spawn(|| String::from("done"));
    /// assert!(worker.value().is_none()); // not started yet
    /// worker.join().unwrap();
    /// assert_eq!(worker.value().as_deref().map(String::as_str), Some("done"));
    /// assert!(worker.exception().is_none());
    /// ```
    pub fn value(&self) -> Option<Ref<'_, T>> {
        Ref::filter_map(self.shared.outcome.borrow(), |outcome| outcome.as_ref()?.as_ref().ok()).ok()
    }

    /// The error, if the green thread failed (gevent's `exception`): it
    /// panicked, was killed with an error ([`kill_with`](Self::kill_with)),
    /// or could not start. `None` while it runs, if it returned, and if it was
    /// killed (a kill is a normal end, as in gevent).
    pub fn exception(&self) -> Option<Ref<'_, JoinError>> {
        Ref::filter_map(self.shared.outcome.borrow(), |outcome| {
            outcome.as_ref()?.as_ref().err().filter(|err| !err.is_killed())
        })
        .ok()
    }

    /// Whether the green thread has finished (returned, failed, or been
    /// killed): gevent's `ready()`.
    pub fn is_ready(&self) -> bool {
        self.shared.finished.get() != 0
    }

    /// Whether the green thread has finished by returning a value or by
    /// being killed (gevent's `successful()`: a kill is a normal end).
    pub fn is_successful(&self) -> bool {
        self.shared.successful.get()
    }

    /// Whether the green thread ended by being killed (before it started,
    /// too).
    pub fn is_killed(&self) -> bool {
        self.outcome().is_some_and(|outcome| outcome.as_ref().err().is_some_and(JoinError::is_killed))
    }

    /// Whether the green thread is dead (gevent's `dead`): it has finished,
    /// or was killed before it started, and runs no more.
    pub fn is_dead(&self) -> bool {
        self.greenlet.is_dead()
    }

    /// Whether the green thread's body has started running (one killed
    /// before it started never does).
    pub fn is_started(&self) -> bool {
        self.greenlet.is_started()
    }

    /// The green thread's name: the one given to its
    /// [`Builder`](crate::Builder), or the type name of its closure.
    pub fn name(&self) -> &str {
        self.greenlet.name()
    }

    /// A small number naming the green thread among those of its hub (gevent's
    /// `minimal_ident`): 1 for the first spawned, and so on.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Removes a callback added by [`link`](Self::link) (or `link_value`,
    /// `link_exception`) that has not run yet (gevent's `unlink`); returns
    /// whether it was there.
    ///
    /// ```
    /// let worker = greenery::spawn(|| ());
    /// let id = worker.link(|_| panic!("unlinked: never runs"));
    /// assert!(worker.unlink(id));
    /// worker.join().unwrap();
    /// greenery::yield_now();
    /// assert!(!worker.unlink(id));
    /// ```
    pub fn unlink(&self, id: LinkId) -> bool {
        let mut links = self.shared.links.borrow_mut();
        let Some(pending) = links.as_mut().map(|links| &mut links.pending) else { return false };
        let Some(index) = pending.iter().position(|(link, _)| *link == id) else { return false };
        let (_, link) = pending.remove(index);
        drop(links);
        drop(link); // outside the borrow: dropping a callback may run code
        true
    }

    /// Runs `callback` on the ending green thread itself as it finishes,
    /// before its links and joiners (gevent's `rawlink`, for the crate's
    /// groups and pools); at once if it has finished.
    pub(crate) fn raw_link(&self, callback: impl FnOnce() + 'static) {
        if self.is_ready() {
            callback();
        } else {
            self.shared.raw_links.borrow_mut().push(RawLink::Own(Box::new(callback)));
        }
    }

    /// As [`raw_link`](Self::raw_link), with a callback that many green
    /// threads share (no allocation per green thread), called with the
    /// green thread's id.
    pub(crate) fn raw_link_shared(&self, callback: &Rc<dyn Fn(u64)>) {
        if self.is_ready() {
            callback(self.id());
        } else {
            self.shared.raw_links.borrow_mut().push(RawLink::Shared(callback.clone()));
        }
    }

    /// The joiners' queue, for [`wait_any`](super::wait_any).
    pub(super) fn joiners(&self) -> &WaitQueue {
        &self.shared.joiners
    }

    /// Its place in the order in which green threads finished (0: running).
    pub(super) fn finish_order(&self) -> u64 {
        self.shared.finished.get()
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Another handle to a green thread, without its value type: what a group
/// keeps of each member. It never takes the value ([`JoinHandle::get`]
/// still returns it). Two pointers, the handle's own: making one allocates
/// nothing.
#[derive(Clone)]
pub(crate) struct AnyJoinHandle {
    shared: Rc<dyn Untyped>,
    greenlet: Greenlet,
}

/// What an [`AnyJoinHandle`] reaches of a green thread's shared state.
trait Untyped {
    fn is_ready(&self) -> bool;
    /// Ends a green thread that never started as killed.
    fn complete_killed(self: Rc<Self>);
    /// [`JoinHandle::join`].
    fn join(&self) -> Result<(), Deadlock>;
}

impl<T: 'static> Untyped for Shared<T> {
    fn is_ready(&self) -> bool {
        self.finished.get() != 0
    }

    fn complete_killed(self: Rc<Self>) {
        self.complete(Err(JoinError::killed()));
    }

    fn join(&self) -> Result<(), Deadlock> {
        self.wait_until(None, false).map(|_| ())
    }
}

impl AnyJoinHandle {
    /// [`JoinHandle::kill_async`].
    pub(crate) fn kill_async(&self) {
        kill_async(&self.greenlet, self.shared.is_ready(), || self.shared.clone().complete_killed());
    }

    /// [`JoinHandle::join`].
    pub(crate) fn join(&self) -> Result<(), Deadlock> {
        self.shared.join()
    }

    /// Whether it is the running green thread.
    pub(crate) fn is_current(&self) -> bool {
        self.greenlet.is_current()
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Another handle to the same green thread, without its value type.
    pub(crate) fn erased(&self) -> AnyJoinHandle {
        AnyJoinHandle { shared: self.shared.clone(), greenlet: self.greenlet.clone() }
    }
}

/// [`JoinHandle::kill_async`] for a green thread `greenlet` that is
/// finished (`ready`) or not; `complete_killed` ends it as killed if it
/// never started.
fn kill_async(greenlet: &Greenlet, ready: bool, complete_killed: impl FnOnce()) {
    if ready {
        return;
    }
    if !greenlet.is_started() {
        // Its greenlet is lazy: dropping its body is all it takes (the
        // hub, its parent, is not switched to). The start task finds it
        // dead and skips it.
        greenlet.discard_lazy();
        complete_killed();
        return;
    }
    if greenlet.is_current() {
        let _ = greenlet.kill(); // unwinds here
        return;
    }
    with_hub(|hub| hub.schedule(Task::Kill(greenlet.clone())));
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T> Shared<T> {
    /// Waits until the green thread has finished, and (`for_links`) until
    /// its links have run; returns whether it did by the deadline.
    fn wait_until(&self, deadline: Option<Instant>, for_links: bool) -> Result<bool, Deadlock> {
        let done = || self.finished.get() != 0 && !(for_links && self.links_scheduled.get());
        while !done() {
            match self.joiners.wait_for(super::Wait::Join(self.id), deadline) {
                Wake::Notified => {}
                Wake::TimedOut => return Ok(done()),
                Wake::Deadlock => return Err(Deadlock),
            }
        }
        Ok(true)
    }
}
