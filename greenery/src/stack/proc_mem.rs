//! Writing into memory that no thread can access: `/proc/self/mem`.
//!
//! The [stash](super::stash) puts a stack's contents back while the range is
//! `PROT_NONE`, so that no other thread can see it half-filled: any access
//! faults (and waits in the fault handler) until the range is made
//! accessible again, complete. A process cannot `memcpy` into `PROT_NONE`
//! memory, but the kernel can write there on its behalf: a `pwrite` to
//! `/proc/self/mem` uses the kernel's forced access to the process's own
//! private memory (the one a debugger uses to set breakpoints in read-only
//! code), which fills the pages without changing their protection.
//!
//! That needs procfs, a process that may open its own `mem` file (not one
//! made non-dumpable) and a kernel that allows the forced write
//! (`proc_mem.force_override`, Linux 6.12+, is `always` by default).
//! [`available`] tries it once on a scratch page; the stash is off where it
//! fails.
//!
//! # After fork
//!
//! An open `/proc/self/mem` stays bound to the address space of the process
//! that opened it: in a forked child it would write into the parent. So the
//! descriptor is kept on the [process-local page](super::process_local),
//! which a child sees wiped: it opens its own, whatever runs first there.
//! The invariant is that **a child never keeps a descriptor of its parent's
//! memory**, whenever the parent opened it: before the fork, during it (a
//! fork handler or another thread may restore a stack between greenery's
//! prepare handler and the fork system call), or as the fork happened.
//!
//! - Every descriptor opened is recorded, before the thread that opened it
//!   does anything else, in [`OPENED`], memory a child inherits; the child's
//!   `pthread_atfork` handler closes the descriptor recorded there unless it
//!   is the child's own (see [`forget_after_fork`]). If something in the
//!   child opens its own before that handler runs (another library's child
//!   handler may restore a stack), that opening closes the inherited one.
//! - The window between `open` returning and the record cannot be closed,
//!   so a fork waits for it: greenery's prepare handler opens the process's
//!   descriptor if it has none (so that no thread needs to open one until
//!   the fork is over), announces the fork
//!   ([`Local::forks`](super::process_local::Local)), then waits until no
//!   thread is inside an opening
//!   ([`Local::opening`](super::process_local::Local); each is a few
//!   system calls with asynchronous signals blocked, and takes no lock). An
//!   opening that starts while a fork is under way (on any thread: a fork
//!   handler that runs after greenery's may restore a stack) opens
//!   nothing: it takes the descriptor the prepare handler opened, or the
//!   error that handler met. Forks are counted: two threads' forks may
//!   overlap.
//!
//! A child may not be able to open one at all (the program dropped
//! privileges before forking, or the child confined itself with `chroot`):
//! the stash then falls back as its documentation says. To spare a child
//! that would restore inherited stacks after a `chroot` that fallback, the
//! child handler opens the child's own descriptor at once when stacks are
//! stashed. Every function here is async-signal-safe: the fault handler
//! restores stacks through them.
//!
//! greenery trusts the descriptor it opened to stay open: a program that
//! closes descriptors it does not own (a `closefrom` loop, say) breaks the
//! restore, as it breaks the hub's own epoll descriptor.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use super::raw_sys::{self, SignalsBlocked};
use super::{mmap, process_local};

/// The descriptor this process opened, in memory a child inherits: in a
/// child, until its handler (or its own first opening) closes it, its
/// parent's. -1 when none.
static OPENED: AtomicI32 = AtomicI32::new(-1);

/// Before a fork, on the forking thread (greenery's prepare handler):
/// makes sure every descriptor of this process's memory that the child
/// will inherit is recorded in [`OPENED`] (see the module documentation).
/// Async-signal-safe.
pub(super) fn before_fork() {
    let local = process_local::local(); // mapped before the handlers exist
    let _signals = SignalsBlocked::new();
    // Opened now if need be, and recorded, so that no thread needs to open
    // one until the fork is over. (If another fork is under way, this
    // takes what that one's handler found.)
    if let Err(err) = descriptor() {
        local.fork_open_error.store(err.raw_os_error().unwrap_or(libc::EIO).max(1), Ordering::Release);
    }
    local.forks.fetch_add(1, Ordering::SeqCst);
    // Openings that began before they could see the fork end (and record
    // what they opened) before it happens.
    while local.opening.load(Ordering::SeqCst) != 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After a fork, in the parent: the fork is over; openings may go on.
pub(super) fn after_fork_in_parent() {
    process_local::local().forks.fetch_sub(1, Ordering::Release);
}

/// What the probe in [`available`] found, if it ran in this process.
static AVAILABLE: AtomicU8 = AtomicU8::new(UNPROBED);
const UNPROBED: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

/// Whether [`write`] works in this process: tried on a `PROT_NONE` scratch
/// page, once per process (a forked child tries again: it may have lost
/// what its parent could do).
pub(super) fn available() -> bool {
    match AVAILABLE.load(Ordering::Relaxed) {
        UNPROBED => {
            // Before a descriptor exists: the page that keeps it from a
            // child, and the handlers that close it in one.
            if process_local::init().is_err() {
                AVAILABLE.store(NO, Ordering::Relaxed);
                return false;
            }
            super::fork_gate::install();
            let works = probe();
            AVAILABLE.store(if works { YES } else { NO }, Ordering::Relaxed);
            works
        }
        state => state == YES,
    }
}

/// In a forked child, right after the fork: closes the parent's
/// `/proc/self/mem` (which refers to the parent's memory; the child's own,
/// if a fork handler that ran before this one opened it already, stays),
/// and forgets the probe. Async-signal-safe.
pub(super) fn forget_after_fork() {
    let inherited = OPENED.load(Ordering::Acquire);
    if inherited >= 0
        && process_local::mem_fd() != Some(inherited)
        && OPENED.compare_exchange(inherited, -1, Ordering::AcqRel, Ordering::Acquire).is_ok()
    {
        // SAFETY: the descriptor the parent recorded, open here since the
        // fork: the child's own is the one on the process-local page, and
        // the child's first opening would have taken the record over.
        unsafe { raw_sys::close(inherited) };
    }
    AVAILABLE.store(UNPROBED, Ordering::Relaxed);
}

/// Opens this process's `/proc/self/mem` if it is not open yet: whether
/// [`write`] can work now. Async-signal-safe.
pub(super) fn ready() -> io::Result<()> {
    descriptor().map(drop)
}

#[cold]
fn probe() -> bool {
    let page = mmap::page_size();
    // SAFETY: a fresh private anonymous page of our own.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return false;
    }
    let bytes = [0x5au8; 64];
    // SAFETY: the page is ours, mapped, and nothing else refers to it.
    let written = unsafe { write(base as usize + 8, bytes.as_ptr(), bytes.len()) }.is_ok();
    // SAFETY: as above; it is then read back and unmapped.
    let ok = written
        && unsafe {
            libc::mprotect(base, page, libc::PROT_READ) == 0
                && std::slice::from_raw_parts((base as *const u8).add(8), bytes.len()) == bytes
        };
    // SAFETY: our scratch page, unused from here on.
    unsafe { libc::munmap(base, page) };
    ok
}

/// Writes `len` bytes from `buf` to `addr` in this process, whatever the
/// protection of the destination (which must be private anonymous memory
/// of ours, not a guard region). Async-signal-safe.
///
/// # Safety
///
/// `[addr, addr + len)` must be memory of ours that no one else writes
/// meanwhile and whose contents may be replaced; `buf` must hold `len`
/// readable bytes.
pub(super) unsafe fn write(addr: usize, buf: *const u8, len: usize) -> io::Result<()> {
    let fd = descriptor()?;
    let mut done = 0;
    while done < len {
        // SAFETY: `fd` is open; the caller vouches for both ranges.
        match unsafe { raw_sys::pwrite(fd, buf.add(done), len - done, addr + done) } {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Ok(n) => done += n,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Reads `len` bytes at `addr` in this process into `buf`, through the
/// kernel (for builds with AddressSanitizer, see `stash::copy_from_stack`).
///
/// # Safety
///
/// `[addr, addr + len)` must be readable memory of ours; `buf` must have
/// room for `len` bytes.
#[cfg(greenery_asan)]
pub(super) unsafe fn read(addr: usize, buf: *mut u8, len: usize) -> io::Result<()> {
    let fd = descriptor()?;
    let mut done = 0;
    while done < len {
        // SAFETY: `fd` is open; the caller vouches for both ranges.
        match unsafe { raw_sys::pread(fd, buf.add(done), len - done, addr + done) } {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Ok(n) => done += n,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// This process's open `/proc/self/mem`, opened if need be.
/// Async-signal-safe: atomics, open(2) and close(2) (made directly, see
/// [`raw_sys`]), rt_sigprocmask(2), sched_yield(2).
fn descriptor() -> io::Result<libc::c_int> {
    match process_local::mem_fd() {
        Some(fd) => Ok(fd),
        None => open_recorded(),
    }
}

/// Opens this process's `/proc/self/mem` and records it, unless another
/// thread did first, in a way that no fork can split (see the module
/// documentation): announced in [`Local::opening`](process_local::Local),
/// with asynchronous signals blocked, and not at all while a fork is under
/// way (its prepare handler has opened the descriptor already, or met an
/// error, which is returned).
#[cold]
fn open_recorded() -> io::Result<libc::c_int> {
    let _signals = SignalsBlocked::new();
    let local = process_local::local();
    loop {
        local.opening.fetch_add(1, Ordering::SeqCst);
        if local.forks.load(Ordering::SeqCst) == 0 {
            break;
        }
        local.opening.fetch_sub(1, Ordering::Release);
        // A fork is under way: its prepare handler opened the descriptor
        // before it said so, or stored why it could not.
        loop {
            if let Some(fd) = process_local::mem_fd() {
                return Ok(fd);
            }
            if local.forks.load(Ordering::SeqCst) == 0 {
                break; // the fork is over: try again
            }
            match local.fork_open_error.load(Ordering::Acquire) {
                0 => {}
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }
    let opened = open_inside();
    local.opening.fetch_sub(1, Ordering::Release);
    opened
}

/// The opening itself, inside [`open_recorded`]'s announcement.
fn open_inside() -> io::Result<libc::c_int> {
    if let Some(fd) = process_local::mem_fd() {
        return Ok(fd);
    }
    let fd = raw_sys::open(c"/proc/self/mem", libc::O_RDWR | libc::O_CLOEXEC)?;
    let recorded = process_local::set_mem_fd(fd);
    if recorded != fd {
        // Another thread of this process opened one first.
        // SAFETY: the descriptor we just opened, used by no one.
        unsafe { raw_sys::close(fd) };
        return Ok(recorded);
    }
    // The first opening of this process: what the record held is a
    // parent's descriptor, if the child handler has not closed it yet.
    let inherited = OPENED.swap(fd, Ordering::AcqRel);
    if inherited >= 0 && inherited != fd {
        // SAFETY: the parent's descriptor, inherited by the fork and open
        // since (it holds its number, so `fd` cannot be it).
        unsafe { raw_sys::close(inherited) };
    }
    Ok(fd)
}
