//! Green threads: [`spawn`], [`JoinHandle`] and friends (gevent's `Greenlet`
//! and its top-level functions).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Deadlock, Task, WaitQueue, Waiter, Wake, with_hub};
use crate::GreenletExit;
use crate::greenlet::{Greenlet, Value};
use crate::unwind::{self, Payload};

/// Why a green thread produced no value.
pub struct JoinError {
    kind: JoinErrorKind,
}

enum JoinErrorKind {
    Panicked(Payload),
    Killed,
    Deadlock,
    Stack(crate::StackError),
}

impl JoinError {
    /// Whether the green thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, JoinErrorKind::Panicked(_))
    }

    /// Whether the green thread was killed (or never ran, killed first).
    pub fn is_killed(&self) -> bool {
        matches!(self.kind, JoinErrorKind::Killed)
    }

    /// Whether waiting for it would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self.kind, JoinErrorKind::Deadlock)
    }

    /// The error of a green thread that panicked with `payload`, for code
    /// that runs a green thread's work inline (a pool's `apply` from one of
    /// its own members).
    pub(crate) fn panicked(payload: Payload) -> JoinError {
        JoinError { kind: JoinErrorKind::Panicked(payload) }
    }

    /// The error of a green thread that was killed (or never ran).
    pub(crate) fn killed() -> JoinError {
        JoinError { kind: JoinErrorKind::Killed }
    }

    /// The error for a value that waiting for would never produce.
    pub(crate) fn deadlock() -> JoinError {
        JoinError { kind: JoinErrorKind::Deadlock }
    }

    /// The panic's payload, if it panicked (to continue it with
    /// [`std::panic::resume_unwind`]); the error itself otherwise.
    pub fn into_panic(self) -> Result<Payload, JoinError> {
        match self.kind {
            JoinErrorKind::Panicked(payload) => Ok(payload),
            kind => Err(JoinError { kind }),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            JoinErrorKind::Panicked(payload) => {
                write!(f, "the green thread panicked: {}", unwind::panic_message(&**payload))
            }
            JoinErrorKind::Killed => f.write_str("the green thread was killed"),
            JoinErrorKind::Deadlock => write!(f, "{Deadlock}"),
            JoinErrorKind::Stack(err) => write!(f, "the green thread could not start: {err}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl Error for JoinError {}

/// A callback registered with [`JoinHandle::link`].
type Link<T> = Box<dyn FnOnce(&Result<T, JoinError>)>;

/// What a green thread left behind, shared by its handle and its body.
struct Shared<T> {
    id: u64,
    /// Set once, when the green thread finishes (or is killed unstarted);
    /// `None` again once [`JoinHandle::get`] took it.
    outcome: RefCell<Option<Result<T, JoinError>>>,
    /// 0 while running; once finished, its place in the order in which
    /// this thread's green threads finished (from 1).
    finished: Cell<u64>,
    successful: Cell<bool>,
    joiners: WaitQueue,
    links: RefCell<Vec<Link<T>>>,
}

/// What the hub tells a green thread's shared state when it cannot start
/// it.
pub(super) trait StartFailure {
    fn cannot_start(&self, err: crate::StackError);
}

impl<T> StartFailure for Shared<T> {
    fn cannot_start(&self, err: crate::StackError) {
        self.complete(Err(JoinError { kind: JoinErrorKind::Stack(err) }));
    }
}

impl<T> Shared<T> {
    fn complete(&self, outcome: Result<T, JoinError>) {
        if self.finished.get() != 0 {
            return;
        }
        thread_local!(static FINISHED: Cell<u64> = const { Cell::new(0) });
        self.finished.set(FINISHED.with(|count| {
            count.set(count.get() + 1);
            count.get()
        }));
        self.successful.set(outcome.is_ok());
        *self.outcome.borrow_mut() = Some(outcome);
        self.joiners.notify_all();
        let links = std::mem::take(&mut *self.links.borrow_mut());
        for link in links {
            self.run_link(link);
        }
    }

    fn run_link(&self, link: Link<T>) {
        let outcome = self.outcome.borrow();
        let Some(outcome) = outcome.as_ref() else { return };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| link(outcome))) {
            unwind::report(&format!("link of green thread {}", self.id), "panicked", &*payload);
        }
    }
}

/// A handle to a green thread: wait for it, take its value, kill it.
///
/// Dropping the handle detaches the green thread: it carries on (gevent's
/// greenlets do too). The handle is `!Send`: green threads belong to their
/// thread's hub.
pub struct JoinHandle<T> {
    shared: Rc<Shared<T>>,
    greenlet: Greenlet,
}

/// Spawns a green thread running `f` on this thread's hub (gevent's
/// `spawn`). It starts the next time the hub runs: when the current green
/// thread blocks or yields.
///
/// A panic in `f` does not reach the hub: it is reported on stderr (the
/// panic hook's message, then a line naming the green thread) and
/// [`JoinHandle::get`] returns it as an error.
///
/// ```
/// let answer = greenery::spawn(|| 6 * 7);
/// assert_eq!(answer.get().unwrap(), 42);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_with(f, None, None)
}

/// Spawns a green thread that starts after `delay` (gevent's `spawn_later`).
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let (handle, start) = make(f, None, None);
    with_hub(|hub| {
        hub.call_at(Instant::now() + delay, Box::new(move || start_task(start)));
    });
    handle
}

/// [`spawn`] with a name and a stack size ([`Builder::spawn`](crate::Builder::spawn)).
pub(crate) fn spawn_with<F, T>(
    f: F,
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let (handle, start) = make(f, name, stack_size);
    with_hub(|hub| hub.schedule(start));
    handle
}

fn start_task(task: Task) {
    with_hub(|hub| hub.schedule(task));
}

/// Makes a green thread and the task that starts it.
fn make<F, T>(f: F, name: Option<Cow<'static, str>>, stack_size: Option<usize>) -> (JoinHandle<T>, Task)
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let (id, hub_greenlet) = with_hub(|hub| (hub.next_id(), hub.greenlet.clone()));
    let shared = Rc::new(Shared {
        id,
        outcome: RefCell::new(None),
        finished: Cell::new(0),
        successful: Cell::new(false),
        joiners: WaitQueue::new(),
        links: RefCell::new(Vec::new()),
    });
    let body_shared = shared.clone();
    let name = name.unwrap_or(Cow::Borrowed(std::any::type_name::<F>()));
    let body = move |_: Value| {
        let shared = body_shared;
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        let outcome = match outcome {
            Ok(value) => Ok(value),
            Err(payload) if payload.is::<GreenletExit>() => Err(JoinError { kind: JoinErrorKind::Killed }),
            Err(payload) => {
                let name = crate::greenlet::getcurrent().name().to_owned();
                unwind::report(&name, &format!("(green thread {}) failed", shared.id), &*payload);
                Err(JoinError { kind: JoinErrorKind::Panicked(payload) })
            }
        };
        shared.complete(outcome);
    };
    let greenlet = Greenlet::lazy(body, name, stack_size, hub_greenlet);
    let start = Task::Start(greenlet.clone(), shared.clone());
    (JoinHandle { shared, greenlet }, start)
}

/// Starts a green thread (the hub's [`Task::Start`]).
pub(super) fn start(greenlet: &Greenlet, failure: &dyn StartFailure) {
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

impl<T> JoinHandle<T> {
    /// Blocks until the green thread has finished (whichever way).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could.
    pub fn join(&self) -> Result<(), Deadlock> {
        self.wait_until(None).map(|_| ())
    }

    /// Blocks until the green thread has finished or `timeout` has passed;
    /// returns whether it finished.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if it never could finish, nor the time pass.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Deadlock> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Deadlock> {
        while !self.is_ready() {
            match self.shared.joiners.wait(deadline) {
                Wake::Notified => {}
                Wake::TimedOut => return Ok(self.is_ready()),
                Wake::Deadlock => return Err(Deadlock),
            }
        }
        Ok(true)
    }

    /// Waits for the green thread and returns its value.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if it panicked (with the payload), was killed, or waiting
    /// would never end.
    pub fn get(self) -> Result<T, JoinError> {
        if self.join().is_err() {
            return Err(JoinError { kind: JoinErrorKind::Deadlock });
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
        match self.join_timeout(timeout) {
            Ok(true) => Ok(self.take()),
            Ok(false) => Err(self),
            Err(Deadlock) => Ok(Err(JoinError { kind: JoinErrorKind::Deadlock })),
        }
    }

    fn take(self) -> Result<T, JoinError> {
        self.shared.outcome.borrow_mut().take().unwrap_or(Err(JoinError { kind: JoinErrorKind::Killed }))
    }

    /// Kills the green thread and waits until it is dead (gevent's `kill`):
    /// it unwinds from the point where it is blocked, running its
    /// destructors. One that has not started never runs. Killing a dead one
    /// does nothing; killing the current one unwinds it at once.
    ///
    /// Its [`get`](Self::get) then returns a [`JoinError`] for which
    /// [`is_killed`](JoinError::is_killed) holds (unless it had finished).
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
        if self.is_ready() {
            return;
        }
        if !self.greenlet.is_started() {
            // Its greenlet is lazy: dropping its body is all it takes (the
            // hub, its parent, is not switched to). The start task finds it
            // dead and skips it.
            self.greenlet.discard_lazy();
            self.shared.complete(Err(JoinError { kind: JoinErrorKind::Killed }));
            return;
        }
        if self.greenlet.is_current() {
            let _ = self.greenlet.kill(); // unwinds here
            return;
        }
        with_hub(|hub| hub.schedule(Task::Kill(self.greenlet.clone())));
    }

    /// Whether the green thread has finished (returned, panicked, or been
    /// killed).
    pub fn is_ready(&self) -> bool {
        self.shared.finished.get() != 0
    }

    /// Whether the green thread has finished by returning a value.
    pub fn is_successful(&self) -> bool {
        self.shared.successful.get()
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

    /// Calls `callback` with the green thread's outcome when it finishes, on
    /// the green thread itself, after its joiners are woken; at once if it
    /// has finished already (and its value was not taken). A panicking
    /// callback is reported, not propagated.
    pub fn link(&self, callback: impl FnOnce(&Result<T, JoinError>) + 'static) {
        if self.is_ready() {
            self.shared.run_link(Box::new(callback));
        } else {
            self.shared.links.borrow_mut().push(Box::new(callback));
        }
    }

    /// The joiners' queue, for [`wait_any`].
    fn joiners(&self) -> &WaitQueue {
        &self.shared.joiners
    }
}

/// A green thread seen without its value type, for collections of green
/// threads of mixed types (the groups and pools of [`crate::sync`]).
pub(crate) trait AnyJoinHandle {
    /// [`JoinHandle::kill_async`].
    fn kill_async(&self);
    /// [`JoinHandle::join`].
    fn join(&self) -> Result<(), Deadlock>;
    /// Whether it is the running green thread.
    fn is_current(&self) -> bool;
}

impl<T> AnyJoinHandle for JoinHandle<T> {
    fn kill_async(&self) {
        JoinHandle::kill_async(self);
    }

    fn join(&self) -> Result<(), Deadlock> {
        JoinHandle::join(self)
    }

    fn is_current(&self) -> bool {
        self.greenlet.is_current()
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Another handle to the same green thread, without its value type. It
    /// never takes the value: [`get`](Self::get) on this handle still
    /// returns it.
    pub(crate) fn erased(&self) -> Rc<dyn AnyJoinHandle> {
        Rc::new(JoinHandle { shared: self.shared.clone(), greenlet: self.greenlet.clone() })
    }
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

/// Waits for every green thread in `handles` to finish (gevent's `joinall`).
///
/// # Errors
///
/// [`Deadlock`] if one of them never could.
pub fn joinall<'a, T: 'a>(handles: impl IntoIterator<Item = &'a JoinHandle<T>>) -> Result<(), Deadlock> {
    for handle in handles {
        handle.join()?;
    }
    Ok(())
}

/// Kills every green thread in `handles`, then waits until all are dead
/// (gevent's `killall`).
///
/// # Errors
///
/// [`Deadlock`] if one of them cannot die.
pub fn killall<'a, T: 'a>(
    handles: impl IntoIterator<Item = &'a JoinHandle<T>> + Clone,
) -> Result<(), Deadlock> {
    for handle in handles.clone() {
        handle.kill_async();
    }
    joinall(handles)
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
        if let Some((index, _)) = finished.min_by_key(|(_, handle)| handle.shared.finished.get()) {
            return Ok(index);
        }
        if handles.is_empty() {
            return Err(Deadlock);
        }
        let waiter = Waiter::new();
        let queues: Vec<&WaitQueue> = handles.iter().map(JoinHandle::joiners).collect();
        if WaitQueue::wait_any(&queues, &waiter, None) == Wake::Deadlock {
            return Err(Deadlock);
        }
    }
}
