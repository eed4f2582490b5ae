//! Readiness of file descriptors: what [`net`](crate::net) stands on.
//!
//! # Protocol
//!
//! - **Registration.** A non-blocking fd is registered once with the hub's
//!   poller (epoll, through mio), for reading and writing, edge-triggered,
//!   under a token naming its entry in the hub's I/O table. Dropping the
//!   [`Registration`] deregisters it.
//! - **Readiness.** Each fd keeps a flag per direction: "may be ready". It
//!   starts set, the poller's events set it, and an attempt that gets
//!   `EAGAIN` clears it, as does a stream read that returned less than it
//!   asked for (the socket's buffer is empty). An operation whose flag is
//!   set tries the system call straight away; one whose flag is clear parks
//!   first, in the fd's slot for that direction. Edge-triggered epoll
//!   queues an event for every arrival of data or room after the poll that
//!   last reported the fd, so whatever came after an attempt wakes the
//!   waiter: no wake-up is lost, and a read that follows a write on a
//!   request/response socket does not spend a system call learning that the
//!   response is not there yet. An end of file, hang-up or error reported by
//!   the poller keeps the flag set for good: a short read may have taken the
//!   data that came with it, and the end itself must still be read.
//! - **Waking.** When the poll reports the fd readable (or closed, or in
//!   error), the hub wakes the reader parked on it, if any; likewise the
//!   writer. The woken green thread tries again; a wake that finds nothing
//!   to do (an event left over from before the last attempt) just parks it
//!   again.
//! - **One waiter per direction.** A second green thread waiting to read
//!   (or write) the same fd while the first is parked gets an error saying
//!   so (gevent's `ConcurrentObjectUseError`), rather than one of them
//!   missing its wake-up.
//! - **Callbacks.** Instead of a green thread, a callback may wait for one
//!   direction (`on_readable` on the stream types): waking it queues it as
//!   a hub task, a timer may call it with `TimedOut` first (the callback's
//!   id tells the timer whether the slot still holds the same callback),
//!   and removing the fd calls it with `NotConnected`. It holds the slot
//!   like a parked green thread, and counts as one for the deadlock check.
//! - **Futures.** A future polled on the hub's thread (in
//!   [`block_on`](crate::block_on)) waits for a direction by leaving its
//!   waker in the slot ([`Registration::poll_ready`]); readiness wakes it,
//!   and it polls again. A later poll replaces the waker.
//! - **Giving up.** A wait that times out, or is killed or interrupted by a
//!   [`Timeout`](crate::Timeout), clears its slot on the way out.
//! - **Deadlock.** While a green thread waits for an fd, the kernel may still
//!   wake it, so the hub does not declare a deadlock. A *background* wait
//!   (a signal watcher's) is the exception: it may last for ever, and
//!   nothing waits for it in turn.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
#[cfg(any(feature = "futures-io", feature = "tokio"))]
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::remote::Doorbell;
use super::timer::TimerId;
use super::{Hub, Task, Waiter, Wake, existing_hub, park, with_hub};

/// Which readiness a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn verb(self) -> &'static str {
        match self {
            Direction::Read => "read from",
            Direction::Write => "write to",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the hub and a [`Registration`] share about one fd.
struct FdState {
    /// "May be ready", per direction; see the module documentation.
    ready: [Cell<bool>; 2],
    /// Per direction: the poller reported that direction closed (end of
    /// file, hang-up) or the fd in error. Never cleared: from then on every
    /// attempt goes to the kernel, which reports the end or the error, even
    /// if it was reported by an event that also brought data a short read
    /// has since taken.
    closed: [Cell<bool>; 2],
    /// Who waits for the fd, per direction.
    waiters: [Cell<Option<Parked>>; 2],
    /// The fd was taken off the poller already, by
    /// [`Registered::close_now`]: the registration's drop must not touch
    /// the poller (the number may belong to another file by then).
    gone: Cell<bool>,
}

/// What waits for one direction of an fd.
enum Parked {
    /// A parked green thread.
    Thread(Rc<Waiter>),
    /// A callback to run on the hub (see [`Registration::on_ready`]); boxed,
    /// so that the slots every registered fd has stay two words each.
    Callback(Box<ReadyCallback>),
    /// A future's waker (see [`Registration::poll_ready`]). It does not
    /// count as a waiter for the deadlock check: the green thread that
    /// polls the future waits in `block_on`, which counts.
    #[cfg(any(feature = "futures-io", feature = "tokio"))]
    Waker(Waker),
}

struct ReadyCallback {
    /// Tells this callback from a later one in the same slot (for its timer).
    id: u64,
    call: Box<dyn FnOnce(io::Result<()>)>,
    timer: Option<TimerId>,
}

impl Parked {
    fn is_thread(&self, waiter: &Rc<Waiter>) -> bool {
        matches!(self, Parked::Thread(parked) if Rc::ptr_eq(parked, waiter))
    }
}

impl FdState {
    /// Wakes the waiter for `direction`, if any: resumes a green thread, or
    /// queues a callback on the hub with `outcome`.
    fn wake_with(&self, direction: Direction, outcome: impl FnOnce() -> io::Result<()>) {
        match self.waiters[direction.index()].take() {
            Some(Parked::Thread(waiter)) => {
                waiter.wake();
            }
            #[cfg(any(feature = "futures-io", feature = "tokio"))]
            Some(Parked::Waker(waker)) => waker.wake(),
            Some(Parked::Callback(callback)) => {
                let Some(hub) = existing_hub() else { return };
                hub.io.waiting.set(hub.io.waiting.get() - 1);
                if let Some(timer) = callback.timer {
                    hub.cancel_timer(timer);
                }
                let ReadyCallback { call, .. } = *callback;
                let outcome = outcome();
                hub.schedule(Task::Call(Box::new(move || call(outcome))));
            }
            None => {}
        }
    }

    fn wake(&self, direction: Direction) {
        self.wake_with(direction, || Ok(()));
    }
}

/// One slot of the table.
struct Entry {
    /// Bumped when the entry is reused, so that a stale token finds nothing.
    generation: u32,
    state: Option<Rc<FdState>>,
}

/// The hub's registered fds, by token.
pub(super) struct IoTable {
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
    /// Green threads and callbacks parked on an fd.
    waiting: Cell<usize>,
    /// The last [`ReadyCallback::id`] handed out.
    callback_ids: Cell<u64>,
}

/// Tokens pack an entry's index (low 32 bits) and generation (high bits).
fn token(index: u32, generation: u32) -> Token {
    Token(((generation as usize) << 32) | index as usize)
}

fn untoken(token: Token) -> (usize, u32) {
    (token.0 & 0xffff_ffff, (token.0 >> 32) as u32)
}

impl IoTable {
    pub(super) fn new() -> IoTable {
        IoTable {
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            waiting: Cell::new(0),
            callback_ids: Cell::new(0),
        }
    }

    /// Whether a green thread is parked on an fd.
    pub(super) fn has_waiters(&self) -> bool {
        self.waiting.get() > 0
    }

    fn insert(&self, state: Rc<FdState>) -> Token {
        let mut entries = self.entries.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(index) => {
                let entry = &mut entries[index as usize];
                entry.state = Some(state);
                token(index, entry.generation)
            }
            None => {
                let index = u32::try_from(entries.len()).expect("fewer than 2^32 registered fds");
                entries.push(Entry { generation: 0, state: Some(state) });
                token(index, 0)
            }
        }
    }

    fn remove(&self, token: Token) {
        let (index, generation) = untoken(token);
        let mut entries = self.entries.borrow_mut();
        let entry = &mut entries[index];
        debug_assert!(entry.state.is_some() && entry.generation == generation);
        entry.generation = entry.generation.wrapping_add(1);
        let state = entry.state.take();
        drop(entries);
        self.free.borrow_mut().push(index as u32);
        // A registration is dropped by its owner, who is not parked on it;
        // anyone else parked there is woken to find the fd gone.
        if let Some(state) = state {
            for direction in [Direction::Read, Direction::Write] {
                state.wake_with(direction, || {
                    Err(io::Error::new(io::ErrorKind::NotConnected, "the fd was closed while waited for"))
                });
            }
        }
    }

    /// The state of the fd behind `token`, if the entry is still its.
    #[inline]
    fn state(&self, token: Token) -> Option<Rc<FdState>> {
        let (index, generation) = untoken(token);
        match self.entries.borrow().get(index) {
            Some(Entry { generation: current, state: Some(state) }) if *current == generation => {
                Some(state.clone())
            }
            _ => None,
        }
    }

    /// Marks the fd behind `token` ready as the poll reported, and wakes
    /// whoever waits for that.
    pub(super) fn dispatch(&self, token: Token, event: Readiness) {
        let Some(state) = self.state(token) else {
            return; // deregistered since the event was queued
        };
        let directions = [
            (Direction::Read, event.readable, event.read_closed || event.error),
            (Direction::Write, event.writable, event.write_closed || event.error),
        ];
        for (direction, ready, closed) in directions {
            if closed {
                state.closed[direction.index()].set(true);
            }
            if ready || closed {
                state.ready[direction.index()].set(true);
                state.wake(direction);
            }
        }
    }
}

/// What the poller reported for one fd.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Readiness {
    pub(super) readable: bool,
    pub(super) writable: bool,
    pub(super) read_closed: bool,
    pub(super) write_closed: bool,
    pub(super) error: bool,
}

/// An fd's entry in this thread's hub, with what waits on it: the
/// operations of a registration. `!Send`. A [`Registration`] owns one; a
/// [`MovableRegistration`] looks its own up on the thread that uses it.
pub(crate) struct Registered {
    token: Token,
    fd: RawFd,
    state: Rc<FdState>,
}

/// A non-blocking fd registered with this thread's hub; see the module
/// documentation. `!Send`: it belongs to this thread's poller. Dropping it
/// deregisters the fd.
pub(crate) struct Registration(Registered);

impl std::ops::Deref for Registration {
    type Target = Registered;

    fn deref(&self) -> &Registered {
        &self.0
    }
}

/// Adds `fd` to `hub`'s table and poller.
fn register(hub: &Hub, fd: RawFd) -> io::Result<Registered> {
    let state = Rc::new(FdState {
        ready: [Cell::new(true), Cell::new(true)],
        closed: [Cell::new(false), Cell::new(false)],
        waiters: [Cell::new(None), Cell::new(None)],
        gone: Cell::new(false),
    });
    let token = hub.io.insert(state.clone());
    let interest = Interest::READABLE | Interest::WRITABLE;
    if let Err(err) = hub.remote.registry().register(&mut SourceFd(&fd), token, interest) {
        hub.io.remove(token);
        return Err(err);
    }
    Ok(Registered { token, fd, state })
}

impl Registration {
    /// Registers `fd`, which must be non-blocking and stay open until the
    /// registration is dropped.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        with_hub(|hub| register(hub, fd)).map(Registration)
    }
}

impl Registered {
    /// Parks the current green thread until the fd may be ready for
    /// `direction`, or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `TimedOut` when the deadline passes; `ResourceBusy` when another
    /// green thread already waits on this fd for the same direction.
    pub(crate) fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        Registered::wait_many(&[(self, direction)], deadline)
    }

    /// Parks the current green thread until one of `waits` may be ready, or
    /// `deadline` passes.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub(crate) fn wait_many(waits: &[(&Registered, Direction)], deadline: Option<Instant>) -> io::Result<()> {
        Registered::park_on(waits, deadline, true)
    }

    /// Parks the current green thread until the fd may be ready for
    /// `direction`, without keeping the hub from declaring a deadlock: for a
    /// wait that may never end and that nobody waits for in turn (a signal
    /// watcher, gevent's `ref=False` watchers).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub(crate) fn wait_in_background(&self, direction: Direction) -> io::Result<()> {
        Registered::park_on(&[(self, direction)], None, false)
    }

    fn park_on(
        waits: &[(&Registered, Direction)],
        deadline: Option<Instant>,
        keeps_hub_alive: bool,
    ) -> io::Result<()> {
        let waiter = Waiter::new();
        for (claimed, &(registration, direction)) in waits.iter().enumerate() {
            let slot = &registration.state.waiters[direction.index()];
            let busy = slot.take();
            if busy.is_some() {
                slot.set(busy);
                for &(registration, direction) in &waits[..claimed] {
                    registration.state.waiters[direction.index()].set(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "another green thread (or callback) is already waiting to {} this socket \
                         (fd {}); only one may wait per direction",
                        direction.verb(),
                        registration.fd
                    ),
                ));
            }
            slot.set(Some(Parked::Thread(waiter.clone())));
        }
        if keeps_hub_alive {
            with_hub(|hub| hub.io.waiting.set(hub.io.waiting.get() + 1));
        }
        // However the park ends (a kill or a Timeout unwinds through it), no
        // slot may keep this waiter.
        struct Clear<'a> {
            waits: &'a [(&'a Registered, Direction)],
            waiter: &'a Rc<Waiter>,
            keeps_hub_alive: bool,
        }
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                for &(registration, direction) in self.waits {
                    let slot = &registration.state.waiters[direction.index()];
                    let parked = slot.take();
                    if !parked.as_ref().is_some_and(|parked| parked.is_thread(self.waiter)) {
                        slot.set(parked); // someone else's (or nobody's)
                    }
                }
                if let Some(hub) = existing_hub().filter(|_| self.keeps_hub_alive) {
                    hub.io.waiting.set(hub.io.waiting.get() - 1);
                }
            }
        }
        let _clear = Clear { waits, waiter: &waiter, keeps_hub_alive };
        let what = match waits {
            [(registration, direction), others @ ..] => super::Wait::Io {
                fd: registration.fd,
                direction: *direction,
                others: u32::try_from(others.len()).unwrap_or(u32::MAX),
            },
            [] => super::Wait::Nothing,
        };
        match park(&waiter, what, deadline) {
            Wake::Notified => Ok(()),
            Wake::TimedOut => Err(io::Error::new(io::ErrorKind::TimedOut, "the operation timed out")),
            Wake::Deadlock => Err(io::Error::other(super::Deadlock)),
        }
    }

    /// Calls `callback` on the hub once the fd may be ready for `direction`
    /// (`Ok`), or at `deadline` (`TimedOut`), or when the fd is closed
    /// first (`NotConnected`), without a green thread waiting: what a server
    /// uses to keep an idle connection without holding a stack for it. If
    /// the fd may be ready already, the callback is queued at once. Like a
    /// parked green thread, a pending callback keeps the hub from declaring
    /// a deadlock; it runs on the hub, so it must not block (it may spawn).
    ///
    /// # Errors
    ///
    /// `ResourceBusy` when a green thread or another callback already waits
    /// for this direction.
    pub(crate) fn on_ready(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        callback: Box<dyn FnOnce(io::Result<()>)>,
    ) -> io::Result<()> {
        let slot = &self.state.waiters[direction.index()];
        if let Some(busy) = slot.take() {
            slot.set(Some(busy));
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "a green thread (or callback) is already waiting to {} this socket (fd {})",
                    direction.verb(),
                    self.fd
                ),
            ));
        }
        with_hub(|hub| {
            if self.state.ready[direction.index()].get() {
                hub.schedule(Task::Call(Box::new(move || callback(Ok(())))));
                return Ok(());
            }
            let id = hub.io.callback_ids.get() + 1;
            hub.io.callback_ids.set(id);
            let timer = deadline.map(|deadline| {
                let state = Rc::downgrade(&self.state);
                hub.call_at(
                    deadline,
                    Box::new(move || {
                        let Some(state) = state.upgrade() else { return };
                        let slot = &state.waiters[direction.index()];
                        match slot.take() {
                            Some(Parked::Callback(callback)) if callback.id == id => {
                                if let Some(hub) = existing_hub() {
                                    hub.io.waiting.set(hub.io.waiting.get() - 1);
                                }
                                (callback.call)(Err(io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    "the operation timed out",
                                )));
                            }
                            other => slot.set(other),
                        }
                    }),
                )
            });
            slot.set(Some(Parked::Callback(Box::new(ReadyCallback { id, call: callback, timer }))));
            hub.io.waiting.set(hub.io.waiting.get() + 1);
            Ok(())
        })
    }

    #[cfg(any(feature = "futures-io", feature = "tokio"))]
    /// Whether `direction` may be ready, for a future polled on the hub's
    /// thread: `Pending` (with the context's waker kept in the slot, in
    /// place of an earlier one) if the poller has to say so first.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` when a green thread or a callback waits for this
    /// direction.
    pub(crate) fn poll_ready(&self, direction: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.ready[direction.index()].get() {
            return Poll::Ready(Ok(()));
        }
        let slot = &self.state.waiters[direction.index()];
        match slot.take() {
            None | Some(Parked::Waker(_)) => {
                slot.set(Some(Parked::Waker(cx.waker().clone())));
                Poll::Pending
            }
            Some(busy) => {
                slot.set(Some(busy));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "a green thread (or callback) is already waiting to {} this socket (fd {})",
                        direction.verb(),
                        self.fd
                    ),
                )))
            }
        }
    }

    /// Runs the non-blocking `op` until it does not say `EAGAIN`, waiting for
    /// readiness in `direction` in between (and retrying on `EINTR`); see
    /// the module documentation for how readiness is kept.
    ///
    /// # Errors
    ///
    /// What `op` returns, or what [`wait`](Self::wait) does.
    #[inline]
    pub(crate) fn retry<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let ready = &self.state.ready[direction.index()];
        loop {
            if !ready.get() {
                self.wait(direction, deadline)?;
            }
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.drained(direction),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    /// Records that the fd is probably not ready for `direction` any more
    /// (a stream read or write moved less than it asked for), so that the
    /// next attempt waits for the poller first.
    #[inline]
    pub(crate) fn drained(&self, direction: Direction) {
        if !self.state.closed[direction.index()].get() {
            self.state.ready[direction.index()].set(false);
        }
    }
}

impl Registered {
    /// The fd is about to be closed by someone other than this
    /// registration's owner (a `close` made on another green thread, seen by
    /// the `patch` layer): takes it off the poller now, while the number is
    /// still this file's, and wakes whoever waits on it; they find the fd
    /// closed when they try again.
    #[cfg(feature = "patch")]
    pub(crate) fn close_now(&self) {
        if self.state.gone.replace(true) {
            return;
        }
        if let Some(hub) = existing_hub() {
            let _ = hub.remote.registry().deregister(&mut SourceFd(&self.fd));
        }
        for direction in [Direction::Read, Direction::Write] {
            self.state.closed[direction.index()].set(true);
            self.state.ready[direction.index()].set(true);
            self.state.wake(direction);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // During thread teardown the hub, and its poller, may be gone.
        if let Some(hub) = existing_hub() {
            if !self.state.gone.get() {
                // The fd is still open (its owner closes it after this):
                // removing it cannot fail in a way that leaves anything to
                // clean up.
                let _ = hub.remote.registry().deregister(&mut SourceFd(&self.fd));
            }
            hub.io.remove(self.token);
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("fd", &self.fd).finish()
    }
}

/// A registration that follows its fd from thread to thread: what makes
/// greenery's sockets `Send`.
///
/// # Protocol
///
/// - **Home.** The fd is registered with one hub at a time, its *home*:
///   an entry in that hub's table and the fd in that hub's poller. The
///   registration keeps the home hub's [`Doorbell`] (which also holds the
///   home's poller registry, so the epoll instance outlives its thread if
///   need be) and the entry's token.
/// - **Use.** Every operation starts with [`here`](Self::here): on the
///   home hub's thread it finds the entry (the generation in the token
///   makes sure it is this fd's) and acts on it as a [`Registration`]
///   would. On any other thread, the fd *moves*: it leaves the old home
///   and is registered with this thread's hub, which becomes its home.
///   Readiness starts over as "may be ready", as for a new registration.
/// - **Leaving** a home, from another thread: the fd is taken off the old
///   home's poller at once (epoll allows that from any thread), and the
///   old hub is asked, through its doorbell, to drop the entry on its own
///   thread; events it collected for the token before then find the entry
///   still there and change nothing that matters, events after find no
///   entry. Whatever still waits in the old entry (a callback from
///   `on_readable`) is called there with `NotConnected`, as when a socket
///   is closed. If the old home's thread has ended, nothing is left to
///   drop.
/// - **Moves happen only between uses.** The registration is `Send` but
///   not `Sync`, and every wait borrows it: a value can only reach another
///   thread while nothing on the old one is parked on it.
pub(crate) struct MovableRegistration {
    fd: RawFd,
    home: RefCell<Option<Home>>,
}

/// Where a [`MovableRegistration`] is registered.
struct Home {
    hub: Doorbell,
    token: Token,
}

impl MovableRegistration {
    /// Registers `fd` (non-blocking, open until the registration is
    /// dropped) with this thread's hub.
    pub(crate) fn new(fd: RawFd) -> io::Result<MovableRegistration> {
        let home = with_hub(|hub| {
            let registered = register(hub, fd)?;
            Ok::<_, io::Error>(Home { hub: hub.remote.doorbell(), token: registered.token })
        })?;
        Ok(MovableRegistration { fd, home: RefCell::new(Some(home)) })
    }

    /// The fd's entry in this thread's hub, moving it here first if its home
    /// is another thread's hub (see the protocol above).
    ///
    /// # Errors
    ///
    /// If the fd cannot be registered with this thread's hub.
    #[inline]
    pub(crate) fn here(&self) -> io::Result<Registered> {
        with_hub(|hub| {
            if let Some(home) = &*self.home.borrow()
                && hub.remote.is(&home.hub)
                && let Some(state) = hub.io.state(home.token)
            {
                return Ok(Registered { token: home.token, fd: self.fd, state });
            }
            self.move_to(hub)
        })
    }

    #[cold]
    fn move_to(&self, hub: &Hub) -> io::Result<Registered> {
        if let Some(home) = self.home.borrow_mut().take() {
            home.leave(self.fd);
        }
        let registered = register(hub, self.fd)?;
        *self.home.borrow_mut() = Some(Home { hub: hub.remote.doorbell(), token: registered.token });
        Ok(registered)
    }
}

impl Home {
    /// Takes the fd off this home: at once on its own thread, else off its
    /// poller now and out of its table on its thread.
    fn leave(self, fd: RawFd) {
        match existing_hub() {
            Some(hub) if hub.remote.is(&self.hub) => {
                let _ = hub.remote.registry().deregister(&mut SourceFd(&fd));
                if hub.io.state(self.token).is_some() {
                    hub.io.remove(self.token);
                }
            }
            _ => {
                // The fd is open (its owner closes it after this), so the
                // number names the file registered there.
                let _ = self.hub.registry().deregister(&mut SourceFd(&fd));
                let token = self.token;
                self.hub.run(move || {
                    if let Some(hub) = existing_hub()
                        && hub.io.state(token).is_some()
                    {
                        hub.io.remove(token);
                    }
                });
            }
        }
    }
}

impl Drop for MovableRegistration {
    fn drop(&mut self) {
        if let Some(home) = self.home.get_mut().take() {
            home.leave(self.fd);
        }
    }
}

impl std::fmt::Debug for MovableRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MovableRegistration").field("fd", &self.fd).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, RawFd};
    use std::os::unix::net::UnixStream;

    use super::*;

    /// The fds an epoll instance watches, from its `/proc/self/fdinfo`
    /// entry (one `tfd:` line per watched fd).
    fn watched_by(epoll: &Doorbell) -> Vec<RawFd> {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", epoll.registry().as_raw_fd())).unwrap();
        info.lines()
            .filter_map(|line| line.strip_prefix("tfd:"))
            .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    }

    fn this_hub() -> Doorbell {
        with_hub(|hub| hub.remote.doorbell())
    }

    fn has_entry(token: Token) -> bool {
        with_hub(|hub| hub.io.state(token).is_some())
    }

    #[test]
    fn a_registration_used_on_another_thread_leaves_its_old_hub_and_joins_the_new_one() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let fd = ours.as_raw_fd();
        let registration = MovableRegistration::new(fd).unwrap();
        let first = this_hub();
        let first_token = registration.home.borrow().as_ref().unwrap().token;
        assert!(watched_by(&first).contains(&fd) && has_entry(first_token));

        let (registration, second) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let second = this_hub();
                    assert!(!watched_by(&second).contains(&fd));
                    let registered = registration.here().unwrap();
                    // Moved: in this hub's poller and table, out of the
                    // first hub's poller at once.
                    assert!(watched_by(&second).contains(&fd));
                    assert!(has_entry(registered.token));
                    assert!(!watched_by(&first).contains(&fd));
                    drop(registered);
                    (registration, second)
                })
                .join()
                .unwrap()
        });
        // The first hub drops its entry when it next polls (the other
        // thread asked it to, through its doorbell, before ending).
        crate::sleep(std::time::Duration::from_millis(1));
        assert!(!has_entry(first_token));
        // Dropped here, away from its home: out of the second poller.
        drop(registration);
        assert!(!watched_by(&second).contains(&fd));
        assert!(!watched_by(&first).contains(&fd));
    }

    #[test]
    fn a_registration_used_at_home_stays_in_its_entry() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let registration = MovableRegistration::new(ours.as_raw_fd()).unwrap();
        let token = registration.home.borrow().as_ref().unwrap().token;
        for _ in 0..3 {
            assert_eq!(registration.here().unwrap().token, token);
        }
        drop(registration);
        assert!(!has_entry(token));
        assert!(!watched_by(&this_hub()).contains(&ours.as_raw_fd()));
    }
}
