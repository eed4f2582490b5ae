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
//! The parent's descriptor is closed by the child's `pthread_atfork`
//! handler (it is close-on-exec in any case). A child may not be able to
//! open one at all (the program dropped privileges before forking): the
//! stash then falls back as its documentation says. Every function here is
//! async-signal-safe: the fault handler restores stacks through them.
//!
//! greenery trusts the descriptor it opened to stay open: a program that
//! closes descriptors it does not own (a `closefrom` loop, say) breaks the
//! restore, as it breaks the hub's own epoll descriptor.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use super::{mmap, process_local, raw_sys};

/// The descriptor this process recorded, in memory a child inherits.
static LAST_OPENED: AtomicI32 = AtomicI32::new(-1);

/// [`LAST_OPENED`] as it was when a fork began (its prepare handler copies
/// it): the one descriptor a child inherits and closes (see
/// [`forget_after_fork`]). Anything the child opens before its handler runs
/// (another library's fork handler may restore a stack) cannot have that
/// number, which is still open there.
static INHERITED: AtomicI32 = AtomicI32::new(-1);

/// Before a fork: notes the descriptor the child will inherit.
/// Async-signal-safe.
pub(super) fn before_fork() {
    INHERITED.store(LAST_OPENED.load(Ordering::Acquire), Ordering::Release);
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
    let inherited = INHERITED.swap(-1, Ordering::AcqRel);
    if inherited >= 0 && process_local::mem_fd() != Some(inherited) {
        // SAFETY: the descriptor greenery opened in the parent, open here
        // since the fork (what this process opened since cannot have its
        // number; its own is the one on the process-local page).
        unsafe { raw_sys::close(inherited) };
    }
    if LAST_OPENED.load(Ordering::Acquire) == inherited {
        LAST_OPENED.store(-1, Ordering::Release);
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
/// [`raw_sys`]).
fn descriptor() -> io::Result<libc::c_int> {
    if let Some(fd) = process_local::mem_fd() {
        return Ok(fd);
    }
    let fd = raw_sys::open(c"/proc/self/mem", libc::O_RDWR | libc::O_CLOEXEC)?;
    let recorded = process_local::set_mem_fd(fd);
    if recorded != fd {
        // Another thread of this process opened one first.
        // SAFETY: the descriptor we just opened, used by no one.
        unsafe { raw_sys::close(fd) };
    } else {
        LAST_OPENED.store(fd, Ordering::Release);
    }
    Ok(recorded)
}
