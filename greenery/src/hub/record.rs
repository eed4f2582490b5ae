//! What the hub knows about each greenlet for [`dump`](super::dump) and
//! the [monitor](super::monitor): a [`Record`] in every greenlet, and the
//! list of this thread's live green threads.
//!
//! # Protocol
//!
//! - **Where.** Every greenlet carries a `Record` (a field of the greenlet's
//!   shared state, so reaching it from a handle is one pointer away, and it
//!   lives exactly as long as the greenlet).
//! - **Spawning.** When the hub makes a green thread, it fills in its id,
//!   the green thread that spawned it and where, and links the record at
//!   the end of this thread's list of live green threads ([`LIVE`], an
//!   intrusive doubly linked list through the records, like the sweep's
//!   list of parked greenlets). That is a handful of stores; nothing is
//!   allocated.
//! - **Parking.** A park writes what it waits for ([`Wait`]), since when (the
//!   hub's time of its last poll, read there anyway: no clock is read per
//!   park) and its deadline; the end of the park writes [`Wait::Nothing`]
//!   back. Nothing else is kept per park.
//! - **Ending.** A green thread leaves the list when its body ends (it
//!   returned, panicked or was killed), or when its greenlet is dropped
//!   without having run. The list holds no references: it keeps nothing
//!   alive, and a record that goes away unlinks itself first.
//! - **Reading.** Only this thread reads the list (the dump runs on each
//!   hub, as a hub task), except for the few fields a signal handler copies
//!   from the running greenlet's record (id, spawner, place), which are
//!   written once, before the greenlet first runs.

use std::cell::Cell;
use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::ptr;
use std::time::Instant;

use super::io::Direction;

/// What a parked greenlet waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not parked.
    Nothing,
    /// A primitive's wait queue: its kind (`"Event"`, `"Queue.get"`, ...)
    /// and its address, so that greenlets waiting on the same one can be
    /// told apart from those waiting on another.
    Primitive(&'static str, usize),
    /// A file descriptor, and how many others it waits for at once.
    Io { fd: RawFd, direction: Direction, others: u32 },
    /// A sleep: its deadline is the park's.
    Sleep,
    /// The end of the green thread with this id.
    Join(u64),
    /// The end of any of this many green threads (`joinall`, `wait_any`).
    JoinAny(usize),
    /// A future in [`block_on`](crate::block_on).
    BlockOn,
    /// A function on the blocking pool ([`spawn_blocking`](super::spawn_blocking)).
    Blocking,
    /// An empty run queue ([`idle`](super::idle)).
    Idle,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Wait::Nothing => f.write_str("nothing"),
            Wait::Primitive(kind, address) => write!(f, "{kind} {address:#x}"),
            Wait::Io { fd, direction, others } => {
                let what = match direction {
                    Direction::Read => "readable",
                    Direction::Write => "writable",
                };
                write!(f, "fd {fd} ({what})")?;
                match others {
                    0 => Ok(()),
                    1 => f.write_str(" and 1 other fd"),
                    n => write!(f, " and {n} other fds"),
                }
            }
            Wait::Sleep => f.write_str("a sleep"),
            Wait::Join(id) => write!(f, "the end of green thread {id}"),
            Wait::JoinAny(1) => f.write_str("the end of 1 green thread"),
            Wait::JoinAny(n) => write!(f, "the end of any of {n} green threads"),
            Wait::BlockOn => f.write_str("a future (block_on)"),
            Wait::Blocking => f.write_str("a function on the blocking pool (spawn_blocking)"),
            Wait::Idle => f.write_str("the hub to be idle"),
        }
    }
}

/// The `id` of a thread's main greenlet in its record.
pub(crate) const MAIN: u64 = u64::MAX;

/// What the hub keeps in every greenlet: see the module documentation.
pub(crate) struct Record {
    /// The green thread's id; [`MAIN`] for a thread's main greenlet once it
    /// has a hub; 0 for any other greenlet (a hub, a greenlet made by hand).
    id: Cell<u64>,
    /// The `id` of the greenlet that spawned it.
    spawner: Cell<u64>,
    spawned_at: Cell<Option<&'static Location<'static>>>,
    wait: Cell<Wait>,
    since: Cell<Option<Instant>>,
    deadline: Cell<Option<Instant>>,
    /// Links in [`LIVE`].
    linked: Cell<bool>,
    prev: Cell<*const Record>,
    next: Cell<*const Record>,
}

impl Record {
    pub(crate) const fn new() -> Record {
        Record {
            id: Cell::new(0),
            spawner: Cell::new(0),
            spawned_at: Cell::new(None),
            wait: Cell::new(Wait::Nothing),
            since: Cell::new(None),
            deadline: Cell::new(None),
            linked: Cell::new(false),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
        }
    }

    /// Makes this the record of a new green thread of this thread's hub:
    /// links it into the list of live green threads.
    pub(super) fn register(&self, id: u64, spawner: u64, at: &'static Location<'static>) {
        self.id.set(id);
        self.spawner.set(spawner);
        self.spawned_at.set(Some(at));
        LIVE.with(|live| live.push(self));
        super::monitor::waiting_changed(1);
    }

    /// Takes the record off the list of live green threads, if it is on it.
    #[inline]
    pub(crate) fn unregister(&self) {
        if self.linked.get() {
            self.unlink();
        }
    }

    #[cold]
    fn unlink(&self) {
        // The list's anchors have no destructor: they outlive every record.
        LIVE.with(|live| live.unlink(self));
        super::monitor::waiting_changed(-1);
    }

    /// Records the start of a park.
    #[inline]
    pub(super) fn parked(&self, wait: Wait, since: Instant, deadline: Option<Instant>) {
        self.wait.set(wait);
        self.since.set(Some(since));
        self.deadline.set(deadline);
    }

    /// Records the end of a park.
    #[inline]
    pub(super) fn resumed(&self) {
        self.wait.set(Wait::Nothing);
    }

    pub(crate) fn id(&self) -> u64 {
        self.id.get()
    }

    /// The `id` of the greenlet that spawned it ([`MAIN`] for the main
    /// greenlet, 0 for the hub or a greenlet made by hand).
    pub(super) fn spawner(&self) -> u64 {
        self.spawner.get()
    }

    /// Marks this as the record of its thread's main greenlet.
    pub(super) fn set_main(&self) {
        self.id.set(MAIN);
    }

    pub(crate) fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.spawned_at.get()
    }

    /// What it waits for, since when, and until when.
    pub(super) fn wait(&self) -> (Wait, Option<Instant>, Option<Instant>) {
        (self.wait.get(), self.since.get(), self.deadline.get())
    }

    /// The id and place of the record at `record`, for a signal handler
    /// that interrupted this thread: plain reads of fields written once
    /// before the greenlet first ran, no reference counting, no thread-local
    /// access.
    ///
    /// # Safety
    ///
    /// `record` must point to the record of a live greenlet.
    pub(crate) unsafe fn read_for_signal(record: *const Record) -> (u64, *const Location<'static>) {
        // SAFETY: guaranteed by the caller; `Cell<T>` has `T`'s layout, and
        // these fields do not change once the greenlet runs.
        unsafe {
            let record = &*record;
            (
                ptr::read_volatile(record.id.as_ptr()),
                ptr::read_volatile(record.spawned_at.as_ptr()).map_or(ptr::null(), ptr::from_ref),
            )
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // A green thread dropped without having run (or torn down with its
        // thread) leaves the list here.
        self.unregister();
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record").field("id", &self.id.get()).field("wait", &self.wait.get()).finish()
    }
}

/// This thread's live green threads, in spawn order: see the module
/// documentation. Every linked record is alive (a record unlinks itself
/// before it goes away).
struct List {
    head: Cell<*const Record>,
    tail: Cell<*const Record>,
}

thread_local! {
    /// No destructor, so it outlives every record of the thread.
    static LIVE: List = const { List { head: Cell::new(ptr::null()), tail: Cell::new(ptr::null()) } };
}

impl List {
    fn push(&self, record: &Record) {
        debug_assert!(!record.linked.get());
        record.linked.set(true);
        record.next.set(ptr::null());
        record.prev.set(self.tail.get());
        match self.tail.get() {
            tail if tail.is_null() => self.head.set(record),
            // SAFETY: linked records are alive (see the type's invariant).
            tail => unsafe { &*tail }.next.set(record),
        }
        self.tail.set(record);
    }

    fn unlink(&self, record: &Record) {
        let (prev, next) = (record.prev.get(), record.next.get());
        match prev {
            prev if prev.is_null() => self.head.set(next),
            // SAFETY: linked records are alive.
            prev => unsafe { &*prev }.next.set(next),
        }
        match next {
            next if next.is_null() => self.tail.set(prev),
            // SAFETY: as above.
            next => unsafe { &*next }.prev.set(prev),
        }
        record.linked.set(false);
        record.prev.set(ptr::null());
        record.next.set(ptr::null());
    }
}

/// This thread's live green threads, oldest first, as greenlet handles.
pub(super) fn live_green_threads() -> Vec<crate::greenlet::Greenlet> {
    LIVE.with(|live| {
        let mut threads = Vec::new();
        let mut at = live.head.get();
        while !at.is_null() {
            // SAFETY: linked records are alive, and each is the record of a
            // greenlet: a live greenlet's.
            threads.push(unsafe { crate::greenlet::Greenlet::from_record(at) });
            // SAFETY: as above.
            at = unsafe { &*at }.next.get();
        }
        threads
    })
}
