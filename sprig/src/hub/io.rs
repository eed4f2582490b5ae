//! Readiness of file descriptors: what [`net`](crate::net) stands on.
//!
//! # Protocol
//!
//! - **Registration.** A non-blocking fd is registered once with the hub's
//!   poller (epoll, through mio), for reading and writing, edge-triggered,
//!   under a token naming its entry in the hub's I/O table. Dropping the
//!   [`Registration`] deregisters it.
//! - **Operations try first.** A read, write, accept or connect is attempted
//!   straight away; only when the kernel says `EAGAIN` does the green thread
//!   park on the entry, in the slot for that direction. Edge-triggered
//!   events come only for *new* readiness, and an attempt that saw `EAGAIN`
//!   has consumed the old one, so trying before every wait loses no wake-up.
//! - **Waking.** When the poll reports the fd readable (or closed, or in
//!   error), the hub wakes the reader parked on it, if any; likewise the
//!   writer. The woken green thread tries again; a wake that finds nothing
//!   to do (an event left over from before the last attempt) just parks it
//!   again.
//! - **One waiter per direction.** A second green thread waiting to read
//!   (or write) the same fd while the first is parked gets an error saying
//!   so (gevent's `ConcurrentObjectUseError`), rather than one of them
//!   missing its wake-up.
//! - **Giving up.** A wait that times out, or is killed or interrupted by a
//!   [`Timeout`](crate::Timeout), clears its slot on the way out.
//! - **Deadlock.** While a green thread waits for an fd, the kernel may still
//!   wake it, so the hub does not declare a deadlock.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{existing_hub, park, with_hub, Waiter, Wake};

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
}

/// One registered fd.
struct Entry {
    /// Bumped when the entry is reused, so that a stale token finds nothing.
    generation: u32,
    in_use: bool,
    reader: Option<Rc<Waiter>>,
    writer: Option<Rc<Waiter>>,
}

impl Entry {
    fn slot(&mut self, direction: Direction) -> &mut Option<Rc<Waiter>> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

/// The hub's registered fds, by token.
pub(super) struct IoTable {
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
    /// Green threads parked on an fd.
    waiting: Cell<usize>,
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
        IoTable { entries: RefCell::new(Vec::new()), free: RefCell::new(Vec::new()), waiting: Cell::new(0) }
    }

    /// Whether a green thread is parked on an fd.
    pub(super) fn has_waiters(&self) -> bool {
        self.waiting.get() > 0
    }

    fn insert(&self) -> Token {
        let mut entries = self.entries.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(index) => {
                let entry = &mut entries[index as usize];
                entry.in_use = true;
                token(index, entry.generation)
            }
            None => {
                let index = u32::try_from(entries.len()).expect("fewer than 2^32 registered fds");
                entries.push(Entry { generation: 0, in_use: true, reader: None, writer: None });
                token(index, 0)
            }
        }
    }

    fn remove(&self, token: Token) {
        let (index, generation) = untoken(token);
        let mut entries = self.entries.borrow_mut();
        let entry = &mut entries[index];
        debug_assert!(entry.in_use && entry.generation == generation);
        entry.in_use = false;
        entry.generation = entry.generation.wrapping_add(1);
        let (reader, writer) = (entry.reader.take(), entry.writer.take());
        drop(entries);
        self.free.borrow_mut().push(index as u32);
        // A registration is dropped by its owner, who is not parked on it;
        // anyone else parked there would be woken to find the fd gone.
        for waiter in [reader, writer].into_iter().flatten() {
            waiter.wake();
        }
    }

    /// Wakes whoever waits on `token` for the readiness the poll reported.
    pub(super) fn dispatch(&self, token: Token, readable: bool, writable: bool) {
        let (index, generation) = untoken(token);
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(index) else { return };
        if !entry.in_use || entry.generation != generation {
            return; // deregistered since the event was queued
        }
        let reader = if readable { entry.reader.take() } else { None };
        let writer = if writable { entry.writer.take() } else { None };
        drop(entries);
        for waiter in [reader, writer].into_iter().flatten() {
            waiter.wake();
        }
    }
}

/// A non-blocking fd registered with this thread's hub; see the module
/// documentation. `!Send`: it belongs to this thread's poller.
pub(crate) struct Registration {
    token: Token,
    fd: RawFd,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Registration {
    /// Registers `fd`, which must be non-blocking and stay open until the
    /// registration is dropped.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        with_hub(|hub| {
            let token = hub.io.insert();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(err) = hub.remote.registry().register(&mut SourceFd(&fd), token, interest) {
                hub.io.remove(token);
                return Err(err);
            }
            Ok(Registration { token, fd, _not_send: std::marker::PhantomData })
        })
    }

    /// Parks the current green thread until the fd may be ready for
    /// `direction`, or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `TimedOut` when the deadline passes; `ResourceBusy` when another
    /// green thread already waits on this fd for the same direction.
    pub(crate) fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        Registration::wait_many(&[(self, direction)], deadline)
    }

    /// Parks the current green thread until one of `waits` may be ready, or
    /// `deadline` passes.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub(crate) fn wait_many(
        waits: &[(&Registration, Direction)],
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let waiter = Waiter::new();
        with_hub(|hub| {
            let mut entries = hub.io.entries.borrow_mut();
            for (claimed, &(registration, direction)) in waits.iter().enumerate() {
                let slot = entries[untoken(registration.token).0].slot(direction);
                if slot.is_some() {
                    for &(registration, direction) in &waits[..claimed] {
                        *entries[untoken(registration.token).0].slot(direction) = None;
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!(
                            "another green thread is already waiting to {} this socket (fd {}); \
                             only one may wait per direction",
                            direction.verb(),
                            registration.fd
                        ),
                    ));
                }
                *slot = Some(waiter.clone());
            }
            hub.io.waiting.set(hub.io.waiting.get() + 1);
            Ok(())
        })?;
        // However the park ends (a kill or a Timeout unwinds through it), no
        // slot may keep this waiter.
        struct Clear<'a> {
            waits: &'a [(&'a Registration, Direction)],
            waiter: &'a Rc<Waiter>,
        }
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                let Some(hub) = existing_hub() else { return };
                hub.io.waiting.set(hub.io.waiting.get() - 1);
                let mut entries = hub.io.entries.borrow_mut();
                for &(registration, direction) in self.waits {
                    let (index, generation) = untoken(registration.token);
                    let entry = &mut entries[index];
                    if entry.in_use && entry.generation == generation {
                        let slot = entry.slot(direction);
                        if slot.as_ref().is_some_and(|waiter| Rc::ptr_eq(waiter, self.waiter)) {
                            *slot = None;
                        }
                    }
                }
            }
        }
        let _clear = Clear { waits, waiter: &waiter };
        match park(&waiter, deadline) {
            Wake::Notified => Ok(()),
            Wake::TimedOut => Err(io::Error::new(io::ErrorKind::TimedOut, "the operation timed out")),
            Wake::Deadlock => Err(io::Error::other(super::Deadlock)),
        }
    }

    /// Runs the non-blocking `op` until it does not say `EAGAIN`, waiting for
    /// readiness in `direction` in between (and retrying on `EINTR`).
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
        loop {
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait(direction, deadline)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // During thread teardown the hub, and its poller, may be gone.
        if let Some(hub) = existing_hub() {
            // The fd is still open (its owner closes it after this): removing
            // it cannot fail in a way that leaves anything to clean up.
            let _ = hub.remote.registry().deregister(&mut SourceFd(&self.fd));
            hub.io.remove(self.token);
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("fd", &self.fd).finish()
    }
}
