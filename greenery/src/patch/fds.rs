//! What the hooks know of each file descriptor: whether this process made
//! it through a patched call, and the program's view of it (blocking or
//! not, its timeouts), kept apart from the kernel's.
//!
//! # Protocol
//!
//! - **Which fds.** Only fds the program makes through the patched calls
//!   (`socket`, `socketpair`, `accept`, `accept4`, `pipe`, `pipe2`, and
//!   `dup` of such an fd) are *tracked*. Every other fd (inherited, like the
//!   standard streams; opened files; fds made by raw system calls) is left
//!   alone: its calls go straight to the C library.
//! - **Blocking or not.** A tracked fd starts as the program made it
//!   (`SOCK_NONBLOCK`, `O_NONBLOCK`). `fcntl(F_SETFL)` and `ioctl(FIONBIO)`
//!   change the program's view; `fcntl(F_GETFL)` shows it. When a green
//!   thread first waits on an fd that the program sees as blocking, the
//!   kernel's flag is set to non-blocking (and stays so: the hooks wait for
//!   readiness themselves), lazily, so that an fd handed to a child process
//!   without having been used here (a pipe of `std::process::Command`, say)
//!   keeps the flag the child expects.
//! - **Timeouts.** `SO_RCVTIMEO` and `SO_SNDTIMEO`, recorded at
//!   `setsockopt`, bound the waits (the kernel does not time non-blocking
//!   calls).
//! - **Generations.** `close` bumps the fd's generation: a green thread that
//!   waited on an fd that was closed meanwhile finds it changed, and fails
//!   with `EBADF` instead of using a new file that got the same number.
//!
//! The table is read lock-free, from any thread: chunks of entries that are
//! never freed, found by the fd's number.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Entries per chunk.
const CHUNK: usize = 1024;
/// Chunks at most: fds up to 2^20 are tracked (larger ones pass through).
const CHUNKS: usize = 1024;

/// The fd was made through a patched call.
pub(super) const TRACKED: u32 = 1;
/// The program sees the fd as non-blocking.
pub(super) const NONBLOCKING: u32 = 2;
/// The hooks set the kernel's `O_NONBLOCK` on it (the program may not see
/// it as non-blocking).
pub(super) const KERNEL_NONBLOCKING: u32 = 4;

/// One fd's entry.
pub(super) struct Entry {
    /// [`TRACKED`], [`NONBLOCKING`], [`KERNEL_NONBLOCKING`].
    flags: AtomicU32,
    /// Bumped by every `close` of the fd.
    generation: AtomicU32,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO`, in microseconds; 0 for none.
    receive_timeout: AtomicU64,
    send_timeout: AtomicU64,
}

static CHUNK_TABLE: [AtomicPtr<[Entry; CHUNK]>; CHUNKS] = [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS];

/// The entry of `fd`, if one exists (the fd was ever tracked).
#[inline]
pub(super) fn get(fd: libc::c_int) -> Option<&'static Entry> {
    let fd = usize::try_from(fd).ok()?;
    let chunk = CHUNK_TABLE.get(fd / CHUNK)?.load(Ordering::Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: chunks are leaked once published, so the pointer stays valid.
    Some(unsafe { &(*chunk)[fd % CHUNK] })
}

/// The entry of `fd`, made if need be; `None` for an fd beyond the table.
fn get_or_make(fd: libc::c_int) -> Option<&'static Entry> {
    let index = usize::try_from(fd).ok()?;
    let slot = CHUNK_TABLE.get(index / CHUNK)?;
    if slot.load(Ordering::Acquire).is_null() {
        #[allow(clippy::declare_interior_mutable_const)] // each use is a fresh value
        const EMPTY: Entry = Entry {
            flags: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            receive_timeout: AtomicU64::new(0),
            send_timeout: AtomicU64::new(0),
        };
        let fresh = Box::into_raw(Box::new([EMPTY; CHUNK]));
        if slot.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // SAFETY: ours, never published.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
    get(fd)
}

/// Records that the program made `fd`, non-blocking or not.
pub(super) fn track(fd: libc::c_int, nonblocking: bool) {
    if let Some(entry) = get_or_make(fd) {
        entry.receive_timeout.store(0, Ordering::Relaxed);
        entry.send_timeout.store(0, Ordering::Relaxed);
        entry.flags.store(TRACKED | if nonblocking { NONBLOCKING } else { 0 }, Ordering::Release);
    }
}

/// Records that `fd` is closed (or about to be): it is no longer tracked,
/// and waits on it are stale.
pub(super) fn forget(fd: libc::c_int) {
    if let Some(entry) = get(fd) {
        entry.flags.store(0, Ordering::Release);
        entry.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Copies `old`'s entry to `new` (a `dup` of a tracked fd): the same open
/// file, so the same blocking view and timeouts.
pub(super) fn copy(old: libc::c_int, new: libc::c_int) {
    let Some(from) = get(old) else { return forget(new) };
    let flags = from.flags.load(Ordering::Acquire);
    if flags & TRACKED == 0 {
        return forget(new);
    }
    if let Some(to) = get_or_make(new) {
        to.generation.fetch_add(1, Ordering::AcqRel);
        to.receive_timeout.store(from.receive_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        to.send_timeout.store(from.send_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        to.flags.store(flags, Ordering::Release);
    }
}

impl Entry {
    pub(super) fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    pub(super) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Sets or clears the program's view of `O_NONBLOCK`.
    pub(super) fn set_nonblocking(&self, nonblocking: bool) {
        if nonblocking {
            self.flags.fetch_or(NONBLOCKING, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!NONBLOCKING, Ordering::AcqRel);
        }
    }

    /// Records that the hooks made the kernel's flag non-blocking.
    pub(super) fn set_kernel_nonblocking(&self) {
        self.flags.fetch_or(KERNEL_NONBLOCKING, Ordering::AcqRel);
    }

    /// Records a timeout (`receive`: `SO_RCVTIMEO`, else `SO_SNDTIMEO`).
    pub(super) fn set_timeout(&self, receive: bool, timeout: Option<Duration>) {
        let micros = timeout.map_or(0, |timeout| (timeout.as_micros() as u64).max(1));
        let field = if receive { &self.receive_timeout } else { &self.send_timeout };
        field.store(micros, Ordering::Relaxed);
    }

    /// A timeout recorded with [`set_timeout`](Self::set_timeout).
    pub(super) fn timeout(&self, receive: bool) -> Option<Duration> {
        let field = if receive { &self.receive_timeout } else { &self.send_timeout };
        match field.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}
