//! Stashing: moving what a long-parked coroutine keeps on its stack to the
//! heap, and giving the stack's pages back to the kernel.
//!
//! A coroutine parked on the hub keeps at least one page of its stack
//! committed, though it typically uses a kilobyte or two of it: the frames
//! from its entry down to the switch. A server with a hundred thousand idle
//! green threads pays a page for each. Stashing copies the live part of a
//! suspended stack, `[sp, top)`, to a heap buffer of exactly that size, and
//! makes the stack's whole usable range a *guard region*
//! (`MADV_GUARD_INSTALL`), which frees its pages and makes every touch of
//! them fault. Restoring removes the guard region (`MADV_GUARD_REMOVE`) and
//! copies the bytes back to the same addresses, before the coroutine runs
//! again. Only stacks in slabs (Linux 6.13 and later, see
//! [`slab`](super::slab)) can be stashed.
//!
//! # Who may touch a stashed stack
//!
//! The coroutine itself cannot: it is suspended, and the switch that resumes
//! it restores its stack first. But its memory may be *lent*: a green thread
//! may share a local with a scoped OS thread (`std::thread::scope`) and then
//! park on the hub while that thread keeps using it. So a stashed stack
//! stays correct under any access, from any thread:
//!
//! - **A touch after the stash** faults on the guard region. The SIGSEGV
//!   handler ([`overflow`](super::overflow)) finds the stack in the
//!   [registry](super::registry) by the fault address, restores it there
//!   and then, on the faulting thread, and returns: the access is made again
//!   and sees exactly what was there.
//! - **A touch during the stash** cannot be lost. A write between the copy
//!   and the guard would go to a page the guard then frees, so while other
//!   threads exist the range is first made read-only (`mprotect`): a write
//!   faults, and the handler waits for the stash to finish, then restores.
//!   When the calling thread is the process's only one (as read from
//!   `/proc/self/stat`, checked per batch), no other thread can touch the
//!   range and the two `mprotect` calls are skipped. Either way the calling
//!   thread blocks signals for the while, so that a signal handler of its
//!   own cannot wait on a stash that it interrupted.
//! - **The kernel** does not fault: a system call that is handed a pointer
//!   into a stashed stack (by code on another thread, say a `read` into a
//!   borrowed buffer) fails with `EFAULT`. This is the one visible effect of
//!   stashing; `GREENERY_STASH=off` or [`set_stash_after(None)`](super::set_stash_after)
//!   turns stashing off.
//!
//! # States
//!
//! Each registry slot has a stash state, moved with atomic operations:
//!
//! ```text
//!   NONE --stash--> STASHING --> STASHED --owner restores--> NONE
//!                      |            |
//!                      +--failed--> NONE
//!                                   +--a fault elsewhere--> RESTORING --> RESTORED --owner--> NONE
//! ```
//!
//! The stash buffer belongs to the [`Stash`] handle, held by the stack's
//! owner. A restore by the fault handler only copies from it; the owner frees
//! it once the state is `RESTORED` (or after restoring the stack itself),
//! never while another thread may be copying.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::registry::{self, Slot};
use super::{Stack, mmap};

const NONE: u8 = 0;
const STASHING: u8 = 1;
const STASHED: u8 = 2;
const RESTORING: u8 = 3;
const RESTORED: u8 = 4;

/// `madvise` advice (Linux 6.13+): remove the guard region, leaving empty,
/// lazily committed pages.
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// The default of [`stash_after`]: one second.
pub const DEFAULT_STASH_AFTER: Duration = Duration::from_secs(1);

/// [`stash_after`] in milliseconds; 0 when stashing is off, `u64::MAX` until
/// first read from the environment.
static STASH_AFTER_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// How long a green thread stays parked before the hub stashes its stack:
/// `None` if stashing is off or unsupported here.
///
/// A green thread parked on the hub (waiting for an event, a lock, a queue,
/// a socket, a timer) keeps at least a page of its stack in memory, though
/// it typically uses a kilobyte or two of it. When one stays parked, the
/// hub copies the used part of its stack to the heap and gives the stack's
/// pages back to the kernel; the switch that next resumes it copies them
/// back first (a few microseconds). The hub checks its parked green threads
/// every `stash_after` and stashes those that stayed parked from one check
/// to the next, so each has been parked between one and two periods.
///
/// The default is [`DEFAULT_STASH_AFTER`]. The environment variable
/// `GREENERY_STASH` set to `off` turns stashing off, and set to a number of
/// milliseconds changes the period; [`set_stash_after`] does the same from
/// code. Stashing needs stacks in slabs (Linux 6.13 and later, not under
/// qemu-user, not with `GREENERY_STACK_GUARD=mprotect`).
///
/// # What it means for your code
///
/// Nothing, as long as only user-space code touches the stack. A green
/// thread may lend memory on its stack to another OS thread
/// (`std::thread::scope`) and park meanwhile: that thread's reads and writes
/// of a stashed stack fault, and greenery's fault handler puts the stack back
/// on the spot, on that thread, before the access is made again; a write
/// made while the stack is being stashed is never lost. The exception is
/// the kernel: a system call handed a pointer into a stashed stack (a
/// `read` into a buffer borrowed from a parked green thread, by another OS
/// thread) fails with `EFAULT` instead. A program that does that should
/// turn stashing off.
///
/// ```
/// use std::time::Duration;
///
/// assert!(greenery::stack::stash_after().is_none_or(|after| after >= Duration::from_millis(1)));
/// ```
pub fn stash_after() -> Option<Duration> {
    if !mmap::guard_regions() {
        return None;
    }
    let ms = match STASH_AFTER_MS.load(Ordering::Relaxed) {
        u64::MAX => read_stash_after(),
        ms => ms,
    };
    (ms > 0).then(|| Duration::from_millis(ms))
}

#[cold]
fn read_stash_after() -> u64 {
    let default = DEFAULT_STASH_AFTER.as_millis() as u64;
    let ms = match std::env::var("GREENERY_STASH") {
        Err(_) => default,
        Ok(text) if text.trim().eq_ignore_ascii_case("off") => 0,
        Ok(text) => {
            text.trim().parse::<u64>().ok().filter(|&ms| ms > 0 && ms < u64::MAX).unwrap_or_else(|| {
                eprintln!(
                    "greenery: ignoring GREENERY_STASH={text:?}: expected `off` or a number of milliseconds; \
                 stashing after {default} ms"
                );
                default
            })
        }
    };
    // A concurrent `set_stash_after` wins.
    match STASH_AFTER_MS.compare_exchange(u64::MAX, ms, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => ms,
        Err(set) => set,
    }
}

/// Sets how long a green thread stays parked before its stack is stashed
/// (see [`stash_after`]); `None` turns stashing off for every hub. Stacks
/// already stashed stay so until their green threads wake.
pub fn set_stash_after(after: Option<Duration>) {
    let ms = after.map_or(0, |after| (after.as_millis() as u64).clamp(1, u64::MAX - 1));
    STASH_AFTER_MS.store(ms, Ordering::Relaxed);
}

/// How much stashing this process has done, from [`stash_counts`] (see
/// [`stash_after`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StashCounts {
    /// Stacks stashed.
    pub stashed: u64,
    /// Of those, how many were stashed while the process had other threads
    /// (their stacks made read-only for the while, so that no write from
    /// another thread could be lost).
    pub stashed_shared: u64,
    /// Stashes put back before their coroutine ran again, or as it was
    /// dropped.
    pub restored: u64,
    /// Of those, how many were put back by the fault handler because some
    /// thread touched the stack while it was stashed.
    pub restored_on_touch: u64,
    /// Stacks that could not be stashed (the kernel refused a change of
    /// protection or the guard region) and were left as they were.
    pub refused: u64,
}

static COUNT_STASHED: AtomicU64 = AtomicU64::new(0);
static COUNT_STASHED_SHARED: AtomicU64 = AtomicU64::new(0);
static COUNT_RESTORED: AtomicU64 = AtomicU64::new(0);
static COUNT_RESTORED_ON_TOUCH: AtomicU64 = AtomicU64::new(0);
static COUNT_REFUSED: AtomicU64 = AtomicU64::new(0);

/// How many stacks this process has stashed and restored so far.
///
/// ```
/// let counts = greenery::stack::stash_counts();
/// assert!(counts.restored <= counts.stashed);
/// ```
pub fn stash_counts() -> StashCounts {
    StashCounts {
        stashed: COUNT_STASHED.load(Ordering::Relaxed),
        stashed_shared: COUNT_STASHED_SHARED.load(Ordering::Relaxed),
        restored: COUNT_RESTORED.load(Ordering::Relaxed),
        restored_on_touch: COUNT_RESTORED_ON_TOUCH.load(Ordering::Relaxed),
        refused: COUNT_REFUSED.load(Ordering::Relaxed),
    }
}

/// What the owner of a stash keeps: the heap buffer is this header followed
/// by the stack's bytes.
#[repr(C)]
struct Meta {
    slot: &'static Slot,
    /// The stack's usable range.
    bottom: usize,
    top: usize,
    /// The bytes stashed: `[top - len, top)`.
    len: usize,
}

/// The stashed contents of one stack (see the module documentation).
///
/// Only [`stash_all`] makes one, for a stack that stays mapped until the
/// stash is restored; dropping a `Stash` restores it.
pub(crate) struct Stash(NonNull<Meta>);

impl Stash {
    fn layout(len: usize) -> Layout {
        Layout::from_size_align(size_of::<Meta>() + len, align_of::<Meta>()).expect("a stash layout")
    }

    fn bytes(&self) -> *mut u8 {
        // SAFETY: the bytes follow the header in the same allocation.
        unsafe { self.0.as_ptr().add(1).cast() }
    }

    fn meta(&self) -> &Meta {
        // SAFETY: the header is initialised and ours until the stash is dropped.
        unsafe { self.0.as_ref() }
    }

    /// Puts the stack's contents back where they were; it can then be
    /// switched to.
    pub(crate) fn restore(self) {
        drop(self);
    }
}

impl Drop for Stash {
    fn drop(&mut self) {
        let meta = self.meta();
        let slot = meta.slot;
        {
            let _signals = SignalsBlocked::new();
            match slot.stash.compare_exchange(STASHED, RESTORING, Ordering::Acquire, Ordering::Acquire) {
                // SAFETY: the stack is still mapped (see `stash_all`), the
                // buffer holds its bytes, and now no one else restores it.
                Ok(_) => unsafe { put_back(meta.bottom, meta.top, self.bytes(), meta.len) },
                // A fault on some thread is restoring it, or has.
                Err(_) => wait_while(slot, |state| state != RESTORED),
            }
            slot.stash.store(NONE, Ordering::Release);
        }
        COUNT_RESTORED.fetch_add(1, Ordering::Relaxed);
        let len = meta.len;
        // SAFETY: allocated in `stash_all` with this layout; no other thread
        // copies from it any more (the state is past `RESTORING`).
        unsafe { alloc::dealloc(self.0.as_ptr().cast(), Stash::layout(len)) };
    }
}

impl std::fmt::Debug for Stash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stash")
            .field("top", &(self.meta().top as *const u8))
            .field("len", &self.meta().len)
            .finish()
    }
}

/// A suspended coroutine's stack, and its saved stack pointer.
pub(crate) struct Request<'a> {
    pub(crate) stack: &'a Stack,
    pub(crate) sp: usize,
}

/// One stack of a batch, as it is being stashed.
struct Job {
    /// Its place in the request list.
    index: usize,
    slot: &'static Slot,
    bottom: usize,
    top: usize,
    sp: usize,
    buf: Option<NonNull<Meta>>,
}

/// Stashes the stacks of `requests`, and returns their stashes in the same
/// order: `None` for a stack that could not be stashed (the system refused a
/// change of protection, for instance at `vm.max_map_count`); it is left as
/// it was.
///
/// Adjacent stacks (neighbouring slots of a slab) are stashed together, with
/// one system call per run rather than per stack.
///
/// # Safety
///
/// Each stack must be a slab slot ([`mmap::guard_regions`]) that belongs to
/// a suspended coroutine whose saved stack pointer is `sp`, inside the stack:
/// everything the coroutine will read again lies in `[sp, top)`. Until its
/// stash is restored the stack must stay mapped and no coroutine may run on
/// it, and the stacks must differ from each other.
pub(crate) unsafe fn stash_all(requests: &[Request<'_>]) -> Vec<Option<Stash>> {
    let page = mmap::page_size();
    let mut jobs: Vec<Job> = requests
        .iter()
        .enumerate()
        .map(|(index, request)| {
            let (bottom, top) = (request.stack.bottom(), request.stack.top());
            debug_assert!(bottom <= request.sp && request.sp < top);
            Job { index, slot: request.stack.slot(), bottom, top, sp: request.sp, buf: None }
        })
        .collect();
    jobs.sort_unstable_by_key(|job| job.bottom);
    let alone = only_thread();
    {
        let _signals = SignalsBlocked::new();
        for run in jobs.chunk_by_mut(|below, above| below.top + page == above.bottom) {
            // SAFETY: guaranteed by our caller, run by run.
            unsafe { stash_run(run, alone) };
        }
    }
    let mut stashes: Vec<Option<Stash>> = (0..requests.len()).map(|_| None).collect();
    for job in jobs {
        stashes[job.index] = job.buf.map(Stash);
    }
    stashes
}

/// Stashes a run of adjacent stacks, `[run[0].bottom, run[last].top)`.
///
/// # Safety
///
/// As for [`stash_all`]; signals are blocked; `alone` only if no other
/// thread exists.
unsafe fn stash_run(run: &mut [Job], alone: bool) {
    let lo = run[0].bottom;
    let hi = run[run.len() - 1].top;
    for job in run.iter_mut() {
        let len = job.top - job.sp;
        // SAFETY: the layout has a non-zero size (the header).
        let buf = unsafe { alloc::alloc(Stash::layout(len)) }.cast::<Meta>();
        let Some(buf) = NonNull::new(buf) else { alloc::handle_alloc_error(Stash::layout(len)) };
        // SAFETY: freshly allocated, aligned for `Meta`.
        unsafe { buf.write(Meta { slot: job.slot, bottom: job.bottom, top: job.top, len }) };
        job.buf = Some(buf);
        job.slot.stash.store(STASHING, Ordering::SeqCst);
    }
    // SAFETY: the run lies in one slab mapping of ours.
    if !alone && unsafe { protect(lo, hi, libc::PROT_READ) }.is_err() {
        // SAFETY: nothing was changed: the buffers are ours alone.
        unsafe { abandon(run) };
        return;
    }
    for job in run.iter() {
        let buf = job.buf.expect("allocated above");
        let len = job.top - job.sp;
        // SAFETY: `[sp, top)` is mapped and readable (read-only at most),
        // and the buffer has `len` bytes after its header.
        unsafe {
            let bytes = buf.as_ptr().add(1).cast::<u8>();
            ptr::copy_nonoverlapping(job.sp as *const u8, bytes, len);
            job.slot.stash_buf.store(bytes, Ordering::Relaxed);
            job.slot.stash_len.store(len, Ordering::Relaxed);
        }
    }
    // SAFETY: the run's bytes are in the buffers, and nothing can change
    // them meanwhile (read-only, or no other thread).
    let guarded = unsafe { mmap::install_guard(lo, hi - lo) }.is_ok();
    // SAFETY: as above; this undoes the protection set above.
    if !alone && let Err(err) = unsafe { protect(lo, hi, libc::PROT_READ | libc::PROT_WRITE) } {
        fatal(b"cannot make a stashed stack writable again (mprotect failed)", err);
    }
    if !guarded {
        // The advice may have applied to part of the range: put every stack
        // back from its buffer.
        for job in run.iter() {
            let len = job.top - job.sp;
            // SAFETY: the buffer holds the stack's bytes, and the stack is
            // still ours alone.
            unsafe { put_back(job.bottom, job.top, job.buf.expect("allocated").as_ptr().add(1).cast(), len) };
        }
        // SAFETY: the stacks are as they were.
        unsafe { abandon(run) };
        return;
    }
    for job in run.iter() {
        job.slot.stash.store(STASHED, Ordering::Release);
    }
    let stacks = run.len() as u64;
    COUNT_STASHED.fetch_add(stacks, Ordering::Relaxed);
    if !alone {
        COUNT_STASHED_SHARED.fetch_add(stacks, Ordering::Relaxed);
    }
}

/// Gives up stashing `run`: frees the buffers, clears the states.
///
/// # Safety
///
/// The stacks must hold their own contents again (or never lost them).
unsafe fn abandon(run: &mut [Job]) {
    COUNT_REFUSED.fetch_add(run.len() as u64, Ordering::Relaxed);
    for job in run.iter_mut() {
        job.slot.stash.store(NONE, Ordering::Release);
        if let Some(buf) = job.buf.take() {
            // SAFETY: allocated in `stash_run` with this layout; the state
            // is `NONE` again, so the fault handler never copies from it.
            unsafe { alloc::dealloc(buf.as_ptr().cast(), Stash::layout(job.top - job.sp)) };
        }
    }
}

/// Restores a stashed stack touched at `addr` by the faulting thread; called
/// by the SIGSEGV handler. Returns whether `addr` lies in a stack's usable
/// range, in which case the handler returns and the access is made again.
///
/// Async-signal-safe: atomics, madvise(2), sched_yield(2) and memcpy.
///
/// # Safety
///
/// Only to be called from the SIGSEGV/SIGBUS handler.
pub(super) unsafe fn restore_on_fault(addr: usize) -> bool {
    let Some((slot, bottom, top)) = registry::find_usable(addr) else { return false };
    loop {
        match slot.stash.load(Ordering::Acquire) {
            // Not stashed (any more): the fault raced a restore, and the
            // access will succeed when made again. A fault that keeps coming
            // back at the same address is not one of ours: pass it on.
            NONE | RESTORED => return !repeats(addr),
            STASHED => {
                if slot
                    .stash
                    .compare_exchange(STASHED, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    let buf = slot.stash_buf.load(Ordering::Relaxed);
                    let len = slot.stash_len.load(Ordering::Relaxed);
                    // SAFETY: the stack is stashed, so its owner keeps the
                    // buffer until the state is `RESTORED`; the registry's
                    // range is the stack's usable range.
                    unsafe { put_back(bottom, top, buf, len) };
                    slot.stash.store(RESTORED, Ordering::Release);
                    COUNT_RESTORED_ON_TOUCH.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
            // STASHING, RESTORING: someone else is busy with it.
            _ => {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }
}

/// Whether the faults at `addr` that found its stack not stashed keep
/// coming back: more than 64 in a row at the same address, each within a
/// millisecond of the last, on this thread. A fault that raced a restore is
/// not repeated (the access then succeeds).
///
/// Async-signal-safe: a constant-initialised thread-local without a
/// destructor, and clock_gettime(2).
fn repeats(addr: usize) -> bool {
    thread_local! {
        /// The last such fault's address, time (ns) and count.
        static LAST_UNSTASHED_FAULT: Cell<(usize, u64, u32)> = const { Cell::new((0, 0, 0)) };
    }
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
    LAST_UNSTASHED_FAULT.with(|last| {
        let (previous, at, count) = last.get();
        let count =
            if previous == addr && now.saturating_sub(at) < 1_000_000 { count.saturating_add(1) } else { 1 };
        last.set((addr, now, count));
        count > 64
    })
}

/// Removes the guard region over `[bottom, top)` and copies the `len`
/// stashed bytes back to `[top - len, top)`. Aborts if the guard cannot be
/// removed: the coroutine could not run again.
///
/// # Safety
///
/// `[bottom, top)` is a stack's usable range, stashed, that no one else is
/// restoring; `buf` holds its `len` bytes.
unsafe fn put_back(bottom: usize, top: usize, buf: *const u8, len: usize) {
    // SAFETY: the range is a stack of ours, guarded; removing the guard
    // leaves empty pages.
    if unsafe { libc::madvise(bottom as *mut libc::c_void, top - bottom, MADV_GUARD_REMOVE) } != 0 {
        fatal(
            b"cannot remove the guard region of a stashed stack (madvise failed)",
            io::Error::last_os_error(),
        );
    }
    // SAFETY: the range is writable again; the buffer holds `len` bytes.
    unsafe { ptr::copy_nonoverlapping(buf, (top - len) as *mut u8, len) };
}

/// Sets the protection of `[lo, hi)`.
///
/// # Safety
///
/// The range must be a stack run of ours.
unsafe fn protect(lo: usize, hi: usize, prot: libc::c_int) -> io::Result<()> {
    // SAFETY: guaranteed by the caller.
    if unsafe { libc::mprotect(lo as *mut libc::c_void, hi - lo, prot) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reports a failure that leaves a stack unusable, and aborts.
/// Async-signal-safe.
fn fatal(what: &[u8], err: io::Error) -> ! {
    let mut message = [0u8; 160];
    let mut len = 0;
    for part in [b"\ngreenery: ".as_slice(), what, b" (errno ", &errno_digits(&err), b")\n"] {
        let n = part.len().min(message.len() - len);
        message[len..len + n].copy_from_slice(&part[..n]);
        len += n;
    }
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), len);
        libc::abort()
    }
}

/// `err`'s errno in decimal, for [`fatal`].
fn errno_digits(err: &io::Error) -> [u8; 4] {
    let code = err.raw_os_error().unwrap_or(0).clamp(0, 9999) as u32;
    let mut digits = *b"0000";
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = b'0' + (code / 10u32.pow(3 - i as u32) % 10) as u8;
    }
    digits
}

/// Waits while `busy(state)` holds (another thread is restoring).
fn wait_while(slot: &Slot, busy: impl Fn(u8) -> bool) {
    while busy(slot.stash.load(Ordering::Acquire)) {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// Whether the calling thread is the process's only one. `false` if that
/// cannot be read.
fn only_thread() -> bool {
    // /proc/self/stat: "pid (comm) state ppid ..."; num_threads is the 20th
    // field, the 18th after the command name, which may hold spaces.
    let Ok(stat) = std::fs::read("/proc/self/stat") else { return false };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
    let fields = stat[close + 1..].split(|&b| b == b' ').filter(|field| !field.is_empty());
    fields.clone().nth(17).is_some_and(|threads| threads == b"1")
}

/// Blocks the calling thread's asynchronous signals while it lives.
struct SignalsBlocked(libc::sigset_t);

impl SignalsBlocked {
    fn new() -> SignalsBlocked {
        // SAFETY: the sets are plain data filled by libc's helpers, and
        // pthread_sigmask only changes this thread's mask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            // Faults must still be delivered (blocking them is undefined).
            for signal in
                [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP, libc::SIGABRT]
            {
                libc::sigdelset(&mut all, signal);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked(old)
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: puts back the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_thread_is_seen() {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        assert!(!only_thread());
        drop(done);
        other.join().unwrap().unwrap_err();
    }

    #[test]
    fn errno_is_written_in_four_digits() {
        assert_eq!(&errno_digits(&io::Error::from_raw_os_error(12)), b"0012");
    }
}
