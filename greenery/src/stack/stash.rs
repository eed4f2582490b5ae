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
//! park on the hub while that thread keeps using it. So the rule is that
//! **no other thread ever sees a stack partly stashed or partly restored**:
//! every access either faults (and waits, or restores the stack itself) or
//! sees the whole contents.
//!
//! - **Stashing**, while other threads exist, makes the range read-only
//!   (`mprotect`) before copying it out, so that a write faults instead of
//!   being lost; then inaccessible (`PROT_NONE`) before installing the guard
//!   region, because installing one over committed pages drops them and
//!   retries, and a reader in between would be handed fresh zero pages.
//!   Then the range becomes read-write again: the guard region alone keeps
//!   it faulting, without a mapping of its own. When the calling thread is
//!   the process's only one (as read from `/proc/thread-self/status`, per
//!   batch; where that cannot be read, it is taken not to be), no other
//!   thread can touch the range and the `mprotect` calls are skipped.
//! - **Restoring**, by the owner (before the coroutine runs again) or by the
//!   fault handler on whichever thread touched the stashed stack, makes the
//!   range inaccessible, removes the guard region, writes the saved bytes
//!   through `/proc/self/mem` (which can write where the process itself
//!   cannot, see [`proc_mem`](super::proc_mem)), and only then makes the
//!   range read-write: the contents appear all at once.
//! - **A touch** of a range that is being stashed or restored faults, and
//!   the SIGSEGV handler ([`overflow`](super::overflow)) finds the stack in
//!   the [registry](super::registry) by the fault address and waits until
//!   the operation is over. A touch of a stashed stack faults on the guard
//!   region, and the handler restores the stack there and then, on the
//!   faulting thread. Either way it returns and the access is made again.
//! - **Signals**: every stash and restore, and the fault handler from its
//!   first instruction, run with asynchronous signals blocked by greenery
//!   itself (`rt_sigprocmask`, not a handler's `sa_mask`, which a handler
//!   installed after greenery's and calling it may replace): no signal
//!   handler runs on a thread in the middle of its restore, so none can
//!   touch the stack there and wait for a restore that waits for it. A
//!   synchronous fault there (there should be none: a restore does not
//!   touch the range) at the stack the thread is restoring aborts the
//!   process with a message rather than hang (see [`restore_on_fault`]).
//! - **The kernel** does not fault: a system call handed a pointer into a
//!   stack that is stashed or being stashed or restored (by code on another
//!   thread, say a `read` into a borrowed buffer) fails with `EFAULT`, and
//!   may have done part of its work first (see [`stash_after`]).
//! - **fork**: stashes run inside a [gate](super::fork_gate) that `fork(3)`
//!   waits at, so a child never inherits a stack half stashed. Restores do
//!   not wait for forks (a thread that restores may hold a lock a fork
//!   handler needs): each state is marked with the token of the process
//!   whose thread set it ([`process_local`](super::process_local)), and a
//!   thread that finds a restore left by another process (its parent, at
//!   the moment of the fork) takes it over and does every step again.
//!
//! Where `/proc/self/mem` cannot be written (no procfs, a non-dumpable
//! process, `proc_mem.force_override=never`), a restore could not be made
//! atomic, so stacks are not stashed at all ([`stash_after`] is `None`). A
//! process that loses it after stashing (a forked child that changes its
//! root with `chroot`, or of a program that dropped privileges) restores
//! with a descriptor opened before (the child's fork handler opens one when
//! it inherits stashed stacks), or plainly when the calling thread is the
//! process's only one ([`only_thread`]), and otherwise aborts with a
//! message that says so. The thread count is read from `/proc`; without
//! it, the kernel is asked (`unshare(CLONE_VM)`, a no-op that fails when
//! the caller shares its memory), but only if greenery saw no seccomp
//! filter and no tracer when it last could look (at each stash batch, and
//! in a forked child that inherits stashed stacks, at its birth, before
//! the program could take `/proc` away; the answer is inherited by forked
//! children): a filter may kill the process for that call, or fake its
//! answer. Otherwise the thread is taken not to be alone.
//!
//! Limits of that count: a process made with a raw `clone(CLONE_VM)`
//! without `CLONE_THREAD`, which shares the memory, is not counted by
//! `/proc`; and a seccomp filter installed (or a tracer attached) after
//! greenery last looked, or on another thread than the one it looked from,
//! is not seen, so the fallback's `unshare` may then be killed or answered
//! falsely.
//!
//! # States
//!
//! Each registry slot has a stash state, moved with atomic operations:
//!
//! ```text
//!   NONE --stash--> STASHING --> STASHED --owner restores--> RESTORING --> NONE
//!                      |            |
//!                      +--failed--> NONE
//!                                   +--a fault elsewhere--> RESTORING --> RESTORED --owner--> NONE
//! ```
//!
//! `RESTORING` carries the token of the process whose thread restores; one
//! carrying another process's token is taken over (see above). Once the
//! bytes are back, the restore says so (`RESTORING_WRITTEN`): one taken
//! over from there only makes the range read-write, so that writes made to
//! it since (it may have been read-write already when the fork happened)
//! are kept.
//!
//! The stash (its [`Meta`] and the saved bytes, one allocation) belongs to
//! the [`Stash`] handle, held by the stack's owner, and is published in the
//! slot while the state is `STASHED` or later. A restore by the fault
//! handler only copies from it; the owner frees it once the state is
//! `RESTORED` (or after restoring the stack itself), never while another
//! thread may be copying.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::raw_sys::{self, SignalsBlocked};
use super::registry::{self, Slot};
use super::{Stack, fork_gate, mmap, proc_mem, process_local};

const NONE: u8 = 0;
const STASHING: u8 = 1;
const STASHED: u8 = 2;
const RESTORING: u8 = 3;
const RESTORED: u8 = 4;
/// A restore whose bytes are back; the range may still be inaccessible.
const RESTORING_WRITTEN: u8 = 5;

/// A slot's stash word: a state, marked with the token of the process whose
/// thread set it ([`process_local::token`]).
fn word(state: u8, token: u64) -> u64 {
    token << 8 | u64::from(state)
}

/// The state of a stash word.
fn state_of(word: u64) -> u8 {
    word as u8
}

/// The process token of a stash word.
fn token_of(word: u64) -> u64 {
    word >> 8
}

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
/// qemu-user, not with `GREENERY_STACK_GUARD=mprotect`) and a writable
/// `/proc/self/mem` (procfs mounted, the process not made non-dumpable with
/// `prctl(PR_SET_DUMPABLE, 0)` or by a set-user-ID change, the kernel's
/// `proc_mem.force_override` not `never`); without them it is off.
///
/// # What it means for your code
///
/// Nothing, as long as only user-space code touches the stack. A green
/// thread may lend memory on its stack to another OS thread
/// (`std::thread::scope`) and park meanwhile: that thread's reads and writes
/// of a stashed stack fault, and greenery's fault handler puts the stack back
/// on the spot, on that thread, before the access is made again. No thread
/// ever sees a stack half stashed or half restored: an access during either
/// waits until it is over, and no write is lost.
///
/// The exception is the kernel. A system call made by another OS thread
/// with a pointer into a parked green thread's stack (a buffer borrowed
/// from it) fails with `EFAULT` if the stack is stashed at that moment, and
/// it may have done part of its work before it failed:
///
/// - a `recv` of a UDP datagram into such a buffer fails, and the datagram
///   is gone (the next `recv` finds nothing);
/// - a large stream `write` sends what it copied before the stashed page
///   and returns that count, so a `write_all` sends a prefix, then fails;
/// - a `read` into such a buffer fails or returns less.
///
/// Worse, I/O that the kernel does *later*, into pages it pinned when the
/// call was made (`O_DIRECT` reads, io_uring, POSIX AIO, `vmsplice`,
/// RDMA), lands in pages the stash has already given back: the call
/// reports success and the data is lost, with no error at all.
///
/// A green thread that lends its stack to system calls on other threads
/// holds a [`NoStash`](super::NoStash) guard for the while (its stack is
/// then never stashed), or the program turns stashing off.
///
/// # Limits
///
/// - A child made by `fork` waits until no stack is halfway through a
///   stash or a restore, and restores stashed stacks when it touches them.
///   A child made by a raw `clone`/`fork` system call (bypassing libc's
///   `fork`, which runs the `pthread_atfork` handlers greenery relies on)
///   can inherit a stack in mid-operation, and hang when it touches it.
/// - A restore changes the protection of the stack for a moment, which
///   takes two more memory mappings. Stacks are not stashed while fewer
///   than 256 mappings are left under `vm.max_map_count`; a process that
///   uses up the rest afterwards, and has more than one thread, aborts with
///   a message naming the limit when it next restores a stack.
/// - A touch of a stashed stack is handled by greenery's SIGSEGV handler.
///   A thread that blocks SIGSEGV (a thread that blocked every signal to
///   use `sigwait`, and the threads it spawned, which inherit its mask),
///   code in a signal handler installed with SIGSEGV in its mask, or a
///   SIGSEGV handler installed after greenery's that does not pass faults
///   on, cannot have it handled: the process dies. Such code must not touch
///   a parked green thread's stack, or the green thread holds a
///   [`NoStash`](super::NoStash). A handler installed after greenery's
///   that passes faults on may do so with any mask: greenery's handler
///   blocks asynchronous signals itself.
/// - The handler runs where the kernel puts it: on the touching thread's
///   alternate signal stack, if it has one (std gives its threads one of
///   `max(SIGSTKSZ, AT_MINSIGSTKSZ)` bytes, 8 KiB on x86-64). It takes
///   about 3.5 KiB there (4 KiB in a debug build), most of it the kernel's
///   signal frame, which grows with the CPU's vector state (the kernel's
///   `AT_MINSIGSTKSZ` is 3376 bytes with AVX-512). That fits once, not nested:
///   a program whose own handlers let other signals in while a SIGSEGV is
///   being handled (`SA_NODEFER`, or a mask without them, as wasmtime's
///   handler is installed), and whose signal handlers touch a parked green
///   thread's stack, must give the threads that may touch it larger
///   alternate stacks (`sigaltstack`), or the overflowing alternate stack
///   kills the process.
/// - Whether a thread is the process's only one (a stash then skips
///   protecting the stack, and a restore that cannot be made atomic is
///   made plainly) is read from `/proc/thread-self/status`. A process made
///   with a raw `clone(CLONE_VM)` without `CLONE_THREAD` is not counted
///   there, and must not touch parked green threads' stacks. Where `/proc`
///   cannot be read (a `chroot`), a stash protects the stack as if other
///   threads ran, and a restore that needs the answer asks the kernel
///   (`unshare(CLONE_VM)`, which changes nothing), but only if greenery
///   saw neither a seccomp filter nor a tracer when it last read
///   `/proc` (at each stash batch, and in a forked child that inherits
///   stashed stacks, at its birth; a forked child inherits what its parent
///   saw); otherwise it takes the thread not to be alone, and aborts with
///   a message. A filter installed, or a tracer attached, after that read,
///   or on another thread only, is not seen: such a filter may kill the
///   process for the call (`SIGSYS`) or fake its answer. A program that
///   confines itself so (seccomp and `chroot` both) and forks while green
///   threads are parked sets `GREENERY_STASH=off`.
/// - A process with a finite `RLIMIT_DATA` does not stash: making a
///   restored range writable again counts against it (a restore that meets
///   the limit raises the soft limit to the hard one for that call).
/// - A forked child of a program that dropped privileges (`setuid`,
///   `PR_SET_DUMPABLE`) cannot open `/proc/self/mem`: it restores the
///   stacks it inherited plainly while it has a single thread, and aborts
///   with a message if it must restore one with other threads running.
///   Its own hub does not stash. A forked child that changes its root
///   (`chroot`) keeps the descriptor its fork handler opened (when it
///   inherited stashed stacks) and restores as usual; its own children, in
///   the new root without `/proc`, are as the child of a program that
///   dropped privileges. Set `GREENERY_STASH=off` (or call
///   [`set_stash_after(None)`](set_stash_after) before green threads park)
///   in a program that forks such children.
///
/// ```
/// use std::time::Duration;
///
/// assert!(greenery::stack::stash_after().is_none_or(|after| after >= Duration::from_millis(1)));
/// ```
pub fn stash_after() -> Option<Duration> {
    if !mmap::guard_regions() || !proc_mem::available() {
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

/// Whether some stack may be stashed now (or its stash is being put back):
/// more stashes made than dropped. It errs only towards yes (a stash is
/// counted once its stack is stashed, inside the [`fork_gate`], and
/// dropped once it is put back), so a forked child that reads no inherits
/// no stashed stack. Async-signal-safe.
pub(super) fn any_stashed() -> bool {
    COUNT_STASHED.load(Ordering::Relaxed) > COUNT_RESTORED.load(Ordering::Relaxed)
}

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
/// by the stack's bytes. Published in the stack's registry slot while it is
/// stashed, for the fault handler.
#[repr(C)]
pub(super) struct Meta {
    slot: &'static Slot,
    /// The stack's usable range.
    bottom: usize,
    top: usize,
    /// The bytes stashed: `[top - len, top)`.
    len: usize,
}

impl Meta {
    fn bytes(&self) -> *const u8 {
        // SAFETY: the bytes follow the header in the same allocation.
        unsafe { (self as *const Meta).add(1).cast() }
    }
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
            loop {
                match claim(slot) {
                    // SAFETY: the stack is still mapped (see `stash_all`),
                    // the buffer holds its bytes, and the restore is ours.
                    claim @ (Claim::Restore | Claim::Finish) => break unsafe { restore(meta, claim) },
                    // A thread of this process is restoring it (a fault).
                    Claim::Busy => {
                        // SAFETY: sched_yield has no preconditions.
                        unsafe { libc::sched_yield() };
                    }
                    // Restored by a fault.
                    Claim::NotStashed => break,
                }
            }
            // Withdrawn before the restore ends: a child forked in between
            // finds the state still claimable (another process's restore)
            // with no stash, and only ends it (see `restore_on_fault`).
            slot.stash_meta.store(ptr::null_mut(), Ordering::Relaxed);
            end_restore(slot, NONE);
        }
        COUNT_RESTORED.fetch_add(1, Ordering::Relaxed);
        let len = meta.len;
        // SAFETY: allocated in `stash_all` with this layout; no other thread
        // copies from it any more (the state is past `RESTORING`).
        unsafe { alloc::dealloc(self.0.as_ptr().cast(), Stash::layout(len)) };
    }
}

/// What a thread that needs a stack back finds in its slot.
enum Claim {
    /// The restore is the caller's now (the state says `RESTORING` with
    /// this process's token): every step to do.
    Restore,
    /// The caller took over a restore whose bytes were back already, left by
    /// another process's thread: only making the range read-write again is
    /// left (writing the bytes again would undo writes made since).
    Finish,
    /// A thread of this process is stashing or restoring it: wait.
    Busy,
    /// It is not stashed (any more).
    NotStashed,
}

/// Takes the restore of `slot` if it is stashed, or if it is being
/// restored by a thread of *another* process: this process is then a
/// forked child of the one whose thread was restoring it when the fork
/// copied the memory, and that thread does not exist here. Such a restore
/// is finished from where it was: from the start if the bytes were not back
/// yet (no write can have happened to the range meanwhile: it was
/// inaccessible), else only its last step. Async-signal-safe.
fn claim(slot: &Slot) -> Claim {
    let me = process_local::token();
    loop {
        let current = slot.stash.load(Ordering::Acquire);
        let foreign = token_of(current) != me;
        let (next, claim) = match state_of(current) {
            STASHED => (RESTORING, Claim::Restore),
            RESTORING if foreign => (RESTORING, Claim::Restore),
            RESTORING_WRITTEN if foreign => (RESTORING_WRITTEN, Claim::Finish),
            NONE | RESTORED => return Claim::NotStashed,
            // STASHING, or a restore by this process: busy. (A stash left
            // half done by another process cannot be finished: only a child
            // made without `fork(3)`'s handlers can see one.)
            _ => return Claim::Busy,
        };
        if slot.stash.compare_exchange(current, word(next, me), Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            slot.restorer.store(raw_sys::gettid(), Ordering::Relaxed);
            return claim;
        }
    }
}

/// Ends a restore that [`claim`] gave the caller: the slot's state becomes
/// `state` (`RESTORED` or `NONE`).
fn end_restore(slot: &Slot, state: u8) {
    slot.restorer.store(0, Ordering::Relaxed);
    window_ended(slot);
    slot.stash.store(word(state, 0), Ordering::Release);
}

/// Counts the end of a stash's or restore's window over `slot`'s stack,
/// just before the state that says so is stored (with `Release`): a fault
/// handler that reads that state (with `Acquire`) reads the count as it is
/// now or later (see [`restore_on_fault`]).
fn window_ended(slot: &Slot) {
    slot.windows_ended.fetch_add(1, Ordering::Relaxed);
}

/// Whether the calling thread is the one restoring `slot`'s stack, in the
/// middle of it: a fault it takes there cannot wait for the restore, which
/// waits for the fault. Async-signal-safe.
///
/// `restorer` names the thread only between its [`claim`] and its
/// [`end_restore`], both on that thread: a thread that reads its own id
/// there reads its own latest write (it cleared it after any earlier
/// restore), so it is inside a restore of this stack now.
fn restoring_here(slot: &Slot) -> bool {
    let current = slot.stash.load(Ordering::Acquire);
    matches!(state_of(current), RESTORING | RESTORING_WRITTEN)
        && token_of(current) == process_local::token()
        && slot.restorer.load(Ordering::Relaxed) == raw_sys::gettid()
}

/// Does what [`claim`] gave the caller to do for `meta`'s stack.
///
/// # Safety
///
/// `claim` is `Restore` or `Finish`, for `meta`'s slot.
unsafe fn restore(meta: &Meta, claim: Claim) {
    match claim {
        // SAFETY: guaranteed by the caller.
        Claim::Restore => unsafe { put_back(meta) },
        // SAFETY: as above; the bytes are back.
        Claim::Finish => unsafe { make_writable_again(meta.bottom, meta.top) },
        Claim::Busy | Claim::NotStashed => unreachable!("nothing to restore"),
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
    sp: usize,
    /// The stash being made: its header says where the stack is.
    buf: NonNull<Meta>,
}

impl Job {
    fn meta(&self) -> &Meta {
        // SAFETY: written when the job was made; the job owns it until it
        // becomes a `Stash` or is freed by `abandon`.
        unsafe { self.buf.as_ref() }
    }
}

/// Stashes the stacks of `requests`, and returns their stashes in the same
/// order: `None` for a stack that could not be stashed (the system refused a
/// change of protection, for instance at `vm.max_map_count`); it is left as
/// it was.
///
/// Adjacent stacks (neighbouring slots of a slab) are stashed together, with
/// one set of system calls per run rather than per stack.
///
/// # Safety
///
/// Each stack must be a slab slot ([`mmap::guard_regions`]) that belongs to
/// a suspended coroutine whose saved stack pointer is `sp`, inside the stack:
/// everything the coroutine will read again lies in `[sp, top)`. Until its
/// stash is restored the stack must stay mapped and no coroutine may run on
/// it, and the stacks must differ from each other. [`stash_after`] must be
/// `Some` (`/proc/self/mem` can be written).
pub(crate) unsafe fn stash_all(requests: &[Request<'_>]) -> Vec<Option<Stash>> {
    fork_gate::install();
    if mmap::mappings_left().is_some_and(|left| left < MAPPINGS_TO_SPARE) || data_limited() {
        // Restores need mappings for a moment, and make the range writable
        // again, which counts against `RLIMIT_DATA`: near the map limit, or
        // under a data limit, stacks stay as they are.
        COUNT_REFUSED.fetch_add(requests.len() as u64, Ordering::Relaxed);
        return (0..requests.len()).map(|_| None).collect();
    }
    let page = mmap::page_size();
    let mut jobs: Vec<Job> = requests
        .iter()
        .enumerate()
        .map(|(index, request)| {
            let (bottom, top) = (request.stack.bottom(), request.stack.top());
            debug_assert!(bottom <= request.sp && request.sp < top);
            let slot = request.stack.slot();
            let len = top - request.sp;
            // SAFETY: the layout has a non-zero size (the header).
            let buf = unsafe { alloc::alloc(Stash::layout(len)) }.cast::<Meta>();
            let Some(buf) = NonNull::new(buf) else { alloc::handle_alloc_error(Stash::layout(len)) };
            // SAFETY: freshly allocated, aligned for `Meta`.
            unsafe { buf.write(Meta { slot, bottom, top, len }) };
            Job { index, slot, sp: request.sp, buf }
        })
        .collect();
    jobs.sort_unstable_by_key(|job| job.meta().bottom);
    // From `/proc` only: where it cannot be read, the stash protects the
    // range as if other threads existed, which is always correct.
    let alone = only_thread_by_proc() == Some(true);
    let mut stashed = Vec::with_capacity(jobs.len());
    {
        let _signals = SignalsBlocked::new();
        for run in jobs.chunk_by(|below, above| below.meta().top + page == above.meta().bottom) {
            // SAFETY: guaranteed by our caller, run by run.
            let done = unsafe { stash_run(run, alone) };
            stashed.extend(std::iter::repeat_n(done, run.len()));
        }
    }
    let mut stashes: Vec<Option<Stash>> = (0..requests.len()).map(|_| None).collect();
    for (job, done) in jobs.into_iter().zip(stashed) {
        if done {
            stashes[job.index] = Some(Stash(job.buf));
        } else {
            // SAFETY: allocated above with this layout; the stash was
            // abandoned, so its state is `NONE` and no one else reads it.
            unsafe { alloc::dealloc(job.buf.as_ptr().cast(), Stash::layout(job.meta().len)) };
        }
    }
    stashes
}

/// Whether the process has a finite `RLIMIT_DATA`: making a stashed range
/// writable again counts against it, and could fail.
fn data_limited() -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut limit) == 0 && limit.rlim_cur != libc::RLIM_INFINITY }
}

/// The mappings (under `vm.max_map_count`) that must be left for stacks to
/// be stashed: each restore splits its slab's mapping in three for a
/// moment, and a restore that finds no mapping left cannot be done
/// atomically (see [`put_back`]).
const MAPPINGS_TO_SPARE: u64 = 256;

/// Stashes a run of adjacent stacks, `[run[0].bottom, run[last].top)`, and
/// returns whether it did: if not, the stacks are as they were.
///
/// # Safety
///
/// As for [`stash_all`]; signals are blocked; `alone` only if no other
/// thread exists.
unsafe fn stash_run(run: &[Job], alone: bool) -> bool {
    let lo = run[0].meta().bottom;
    let hi = run[run.len() - 1].meta().top;
    let _inside = fork_gate::enter();
    let me = process_local::token();
    for job in run {
        job.slot.stray_faults.store(0, Ordering::Relaxed);
        job.slot.stash.store(word(STASHING, me), Ordering::SeqCst);
    }
    let copy_out = || {
        for job in run {
            // SAFETY: `[sp, top)` is mapped and readable (read-only at
            // most), and the buffer has `len` bytes after its header.
            unsafe { copy_from_stack(job.sp, job.meta().bytes().cast_mut(), job.meta().len) };
        }
    };
    if alone {
        // No other thread can touch the range, or fork meanwhile.
        copy_out();
        // SAFETY: the run lies in one slab mapping of ours, and its bytes
        // are in the buffers.
        if unsafe { mmap::install_guard(lo, hi - lo) }.is_err() {
            // The advice may have applied to part of the range: each stack
            // is put back (its usable range only: the guard pages between
            // the stacks of the run stay).
            for job in run {
                // SAFETY: the stack is ours alone, its bytes in the buffer.
                unsafe { put_back_alone(job.meta()) };
            }
            return abandon(run);
        }
    } else {
        // SAFETY: the run lies in one slab mapping of ours, which holds
        // nothing else (the same for every call below).
        if unsafe { protect(lo, hi, libc::PROT_READ) }.is_err() {
            // The change may have applied to part of the range.
            // SAFETY: as above.
            unsafe { protect_or_die(lo, hi, libc::PROT_READ | libc::PROT_WRITE) };
            return abandon(run);
        }
        copy_out();
        // SAFETY: as above.
        if unsafe { protect(lo, hi, libc::PROT_NONE) }.is_err() {
            // SAFETY: as above; undoes the first change.
            unsafe { protect_or_die(lo, hi, libc::PROT_READ | libc::PROT_WRITE) };
            return abandon(run);
        }
        // SAFETY: as above; the range is inaccessible, so no thread sees
        // the pages the advice drops.
        if unsafe { mmap::install_guard(lo, hi - lo) }.is_err() {
            // The advice may have applied to part of the range: each stack
            // is put back (its usable range only: the guard pages between
            // the stacks of the run stay).
            for job in run {
                let meta = job.meta();
                // SAFETY: the range is still inaccessible; the buffers hold
                // the bytes.
                unsafe {
                    remove_guard(meta.bottom, meta.top);
                    write_back(meta);
                }
            }
            // SAFETY: as above.
            unsafe { protect_or_die(lo, hi, libc::PROT_READ | libc::PROT_WRITE) };
            return abandon(run);
        }
        // SAFETY: as above; from here the guard region keeps the range
        // faulting.
        unsafe { protect_or_die(lo, hi, libc::PROT_READ | libc::PROT_WRITE) };
    }
    for job in run {
        job.slot.stash_meta.store(job.buf.as_ptr(), Ordering::Relaxed);
        job.slot.stash.store(word(STASHED, me), Ordering::Release);
    }
    let stacks = run.len() as u64;
    COUNT_STASHED.fetch_add(stacks, Ordering::Relaxed);
    if !alone {
        COUNT_STASHED_SHARED.fetch_add(stacks, Ordering::Relaxed);
    }
    true
}

/// Gives up stashing `run`, whose stacks hold their own contents again (or
/// never lost them): clears the states. Returns `false`.
fn abandon(run: &[Job]) -> bool {
    COUNT_REFUSED.fetch_add(run.len() as u64, Ordering::Relaxed);
    for job in run {
        window_ended(job.slot);
        job.slot.stash.store(word(NONE, 0), Ordering::Release);
    }
    false
}

/// Restores a stashed stack touched at `addr` by the faulting thread, or
/// waits for the stash or restore under way to end; called by the
/// SIGSEGV/SIGBUS handler. Returns whether `addr` lies in a stack's usable
/// range, in which case the handler returns and the access is made again.
///
/// The caller has blocked asynchronous signals ([`SignalsBlocked`]): a
/// signal handler that ran on this thread in the middle of a restore and
/// touched the same stack would fault again and wait for a restore that
/// waits for it. With them blocked, only a synchronous fault can come in
/// the middle (none should: the restore does not touch the range); one at
/// the stack this thread is restoring aborts the process with a message
/// rather than hang ([`restoring_here`]).
///
/// Async-signal-safe: atomics, rt_sigprocmask(2), mprotect(2), madvise(2),
/// pwrite(2) (and open(2) for `/proc/self/mem`, open(2), read(2) and
/// close(2) of `/proc/thread-self/status` or unshare(2), see
/// [`only_thread`]), gettid(2), sched_yield(2).
///
/// A fault that is not the stash's (the stack is not stashed, and no stash
/// or restore window ended since, see [`ended_since_fault`]) is passed on
/// at its second occurrence; in a process that never stashed (the
/// process-local page is not mapped), at once.
///
/// # Safety
///
/// Only to be called from the SIGSEGV/SIGBUS handler, for a fault that the
/// kernel raised, with asynchronous signals blocked by the handler itself
/// (not by its `sa_mask` alone: a handler installed after greenery's, with
/// `SA_NODEFER` and an empty mask as wasmtime installs it, may call it with
/// every signal unblocked).
pub(super) unsafe fn restore_on_fault(addr: usize, pc: usize, sp: usize) -> bool {
    if !process_local::mapped() {
        // Nothing was ever stashed in this process (stashing is off or
        // unsupported here): not a fault of ours.
        return false;
    }
    let Some((slot, seq)) = registry::find_usable(addr) else { return false };
    loop {
        match claim(slot) {
            claim @ (Claim::Restore | Claim::Finish) => {
                // The slot may have been reused by another stack since the
                // lookup: the stash published in it says which stack it is
                // now, and that one is restored (early, no harm done); the
                // access is then made again.
                let meta = slot.stash_meta.load(Ordering::Relaxed);
                if meta.is_null() {
                    // Only a forked child can meet this: it was forked
                    // while a thread of its parent, dropping the stash,
                    // had put the stack back (its range read-write again)
                    // and withdrawn the stash, but not yet ended the
                    // restore. Nothing is left to do but end it (that
                    // thread, the owner, does not exist here).
                    end_restore(slot, NONE);
                    return true;
                }
                // SAFETY: the pointer is published before the state says
                // `STASHED`, and the owner frees the stash only after it
                // has withdrawn it (made the pointer null), which it does
                // once it holds the restore itself or the restore is over
                // (`RESTORED`). We hold the restore now (`claim`), so
                // an owner in this process waits for us (`Claim::Busy`)
                // before it can withdraw or free it; an owner that held it
                // in the process we were forked from, and had not withdrawn
                // it yet, does not exist here. The pointer is not null, so
                // it is a live stash.
                let meta = unsafe { &*meta };
                // SAFETY: the restore is ours (`RESTORING`), the buffer
                // holds the stack's bytes. (Asynchronous signals are
                // blocked above.)
                unsafe { restore(meta, claim) };
                end_restore(slot, RESTORED);
                COUNT_RESTORED_ON_TOUCH.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            // This very thread is restoring it, and faulted in the middle:
            // waiting would never end, and the restore cannot be finished
            // from here (the interrupted one would then redo its last
            // steps over the writes made since).
            Claim::Busy if restoring_here(slot) => fatal(
                b"a fault at a stashed stack, in the middle of its restore, on the thread that is \
                  restoring it: the restore cannot go on",
                io::Error::from_raw_os_error(libc::EDEADLK),
            ),
            // Another thread of this process is busy with it, and the range
            // faults until it is done.
            Claim::Busy => {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
            // Not stashed: the stack was given back since the lookup (the
            // access is made again, and faults again, to be looked up
            // afresh, if the memory is no longer a stack's), or the fault
            // raced the end of a stash's or a restore's window, or it is
            // not one of ours at all.
            Claim::NotStashed => return !slot.unchanged_since(seq) || ended_since_fault(slot, addr, pc, sp),
        }
    }
}

/// Whether a fault at `addr` in `slot`'s stack, made by the instruction at
/// `pc` with the stack pointer at `sp`, which its handler found not
/// stashed, may have been caused by a stash's or restore's window that has
/// ended since: the access is then made again. If not, the fault is not
/// ours.
///
/// A window that caused the fault ended after it, and its end was counted
/// ([`window_ended`]) before the state the handler just read. So if this
/// thread made this very access before (the same instruction, stack
/// pointer and address), found the stack not stashed, made it again and
/// faulted again, and no window has ended in between, the access faults
/// for another reason: it is passed on at the second fault. (A signal
/// handler that interrupts this one, before it reads the state, and faults
/// at the stack itself, does so at another stack pointer: its fault does
/// not pass for the interrupted one.) Each fault records a 64-bit hash of
/// the thread, the access and the count it read in the slot
/// ([`Slot::last_stray`]); faults of several threads at the same stack
/// overwrite each other's records, and are passed on after at most
/// [`STRAY_FAULTS`] faults since the stack was last stashed.
/// Async-signal-safe.
fn ended_since_fault(slot: &Slot, addr: usize, pc: usize, sp: usize) -> bool {
    let ended = slot.windows_ended.load(Ordering::Relaxed);
    let fault = [raw_sys::gettid() as u64, addr as u64, pc as u64, sp as u64, u64::from(ended)]
        .into_iter()
        .fold(0x243f_6a88_85a3_08d3, |hash: u64, value| {
            (hash ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
        });
    if slot.last_stray.swap(fault, Ordering::Relaxed) == fault {
        return false;
    }
    slot.stray_faults.fetch_add(1, Ordering::Relaxed) < STRAY_FAULTS
}

/// How many faults at a stack that is not stashed [`restore_on_fault`]
/// takes, at most, for races with a stash or restore before it passes them
/// on as genuine faults, when [`ended_since_fault`] cannot tell (several
/// threads faulting at the same stack at once).
const STRAY_FAULTS: u32 = 1 << 16;

/// Puts a stashed stack back so that no other thread sees it in between:
/// makes the range inaccessible, removes the guard region, writes the
/// saved bytes through `/proc/self/mem`, makes the range read-write.
///
/// Two things can stand in the way: `/proc/self/mem` may not open (a
/// forked child of a program that dropped privileges) and the change of
/// protection may find no mapping left (`vm.max_map_count`). When the
/// calling thread is the process's only one, no other thread can look, and
/// the stack is restored plainly; otherwise the process aborts with a
/// message that says which: the coroutine could not run again, and a
/// non-atomic restore could be seen half done. Async-signal-safe.
///
/// # Safety
///
/// The stack of `meta` is stashed and the caller has moved its state to
/// `RESTORING`; the buffer holds its bytes.
unsafe fn put_back(meta: &Meta) {
    let (lo, hi) = (meta.bottom, meta.top);
    if let Err(err) = proc_mem::ready() {
        if !only_thread() {
            fatal(
                b"cannot restore a stashed stack atomically: /proc/self/mem does not open (no procfs, \
                  as in a chroot, or the process is not dumpable) and other threads exist; start the \
                  program with GREENERY_STASH=off, or call greenery::stack::set_stash_after(None) \
                  before green threads park",
                err,
            );
        }
        // SAFETY: the range is ours, and no other thread exists.
        return unsafe { put_back_alone(meta) };
    }
    // SAFETY: the range is a stack of ours, guarded, and ours to restore.
    if let Err(err) = unsafe { protect_retrying(lo, hi, libc::PROT_NONE) } {
        // SAFETY: as above; undoes a change that applied to part of the
        // range (making it read-write again only merges mappings).
        unsafe { protect_or_die(lo, hi, libc::PROT_READ | libc::PROT_WRITE) };
        if !only_thread() {
            fatal(
                b"cannot restore a stashed stack atomically: the kernel refused a change of protection \
                  (ENOMEM: the process is at vm.max_map_count, raise it with sysctl -w \
                  vm.max_map_count=262144, or at its RLIMIT_DATA; or set GREENERY_STASH=off)",
                err,
            );
        }
        // SAFETY: as above, and no other thread exists.
        return unsafe { put_back_alone(meta) };
    }
    // SAFETY: as above; the range is inaccessible until the last call.
    unsafe {
        remove_guard(lo, hi);
        write_back(meta);
    }
    written(meta);
    // SAFETY: as above.
    unsafe { make_writable_again(lo, hi) };
}

/// Records that the bytes of `meta`'s stack are back (a fork from here on
/// must not have them written again: see [`claim`]).
fn written(meta: &Meta) {
    meta.slot.stash.store(word(RESTORING_WRITTEN, process_local::token()), Ordering::Release);
}

/// Makes a range that a restore made inaccessible read-write again, or
/// aborts. Making it writable counts it against `RLIMIT_DATA` again (an
/// inaccessible range is not data): if that is what refuses, the soft limit
/// is raised to the hard one for the call. Async-signal-safe.
///
/// # Safety
///
/// As for [`protect`]; the range holds its stack's contents.
unsafe fn make_writable_again(lo: usize, hi: usize) {
    let read_write = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: guaranteed by the caller.
    match unsafe { protect_retrying(lo, hi, read_write) } {
        Err(err) if err.raw_os_error() == Some(libc::ENOMEM) => {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit and setrlimit read and write the struct we
            // pass; the soft limit goes back right after.
            unsafe {
                if libc::getrlimit(libc::RLIMIT_DATA, &mut limit) == 0 && limit.rlim_cur != limit.rlim_max {
                    let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                    libc::setrlimit(libc::RLIMIT_DATA, &raised);
                    let done = protect(lo, hi, read_write);
                    libc::setrlimit(libc::RLIMIT_DATA, &limit);
                    if done.is_ok() {
                        return;
                    }
                }
                protect_or_die(lo, hi, read_write);
            }
        }
        Err(err) => fatal(b"cannot change the protection of a stashed stack (mprotect failed)", err),
        Ok(()) => {}
    }
}

/// Puts a stashed stack back when no other thread exists: removes the guard
/// region and copies the bytes back.
///
/// # Safety
///
/// The stack is stashed, and the restore the caller's; no other thread
/// exists.
unsafe fn put_back_alone(meta: &Meta) {
    let at = meta.top - meta.len;
    // The suspended frames' redzones are poisoned: writing them is this
    // copy's business (only with AddressSanitizer, see `sanitizer`).
    crate::sanitizer::forget_frames(at, meta.top);
    // SAFETY: guaranteed by the caller. The range may have been left
    // inaccessible by a restore a forked parent's thread had begun: with no
    // other thread here, nobody sees it read-write before the bytes are
    // back.
    unsafe {
        protect_or_die(meta.bottom, meta.top, libc::PROT_READ | libc::PROT_WRITE);
        remove_guard(meta.bottom, meta.top);
        ptr::copy_nonoverlapping(meta.bytes(), at as *mut u8, meta.len);
    }
    written(meta);
}

/// Copies the live part of a suspended stack out. With AddressSanitizer
/// (`--cfg greenery_asan`), the kernel copies it (through `/proc/self/mem`):
/// the suspended frames' redzones are poisoned, and reading them is this
/// copy's business, not a bug for the sanitizer to report.
///
/// # Safety
///
/// `[src, src + len)` is mapped and readable, `dst` has room for `len`
/// bytes.
unsafe fn copy_from_stack(src: usize, dst: *mut u8, len: usize) {
    #[cfg(greenery_asan)]
    // SAFETY: guaranteed by the caller.
    if let Err(err) = unsafe { proc_mem::read(src, dst, len) } {
        fatal(b"cannot read a stack to stash through /proc/self/mem", err);
    }
    #[cfg(not(greenery_asan))]
    // SAFETY: guaranteed by the caller.
    unsafe {
        ptr::copy_nonoverlapping(src as *const u8, dst, len)
    };
}

/// Writes a stash's bytes back to its stack through `/proc/self/mem`,
/// whatever the range's protection; aborts if it cannot.
///
/// # Safety
///
/// The stack is not guarded, and no one else writes it meanwhile.
unsafe fn write_back(meta: &Meta) {
    // SAFETY: guaranteed by the caller; the buffer holds `len` bytes.
    if let Err(err) = unsafe { proc_mem::write(meta.top - meta.len, meta.bytes(), meta.len) } {
        fatal(b"cannot write a stashed stack back through /proc/self/mem", err);
    }
}

/// Removes the guard region over `[lo, hi)`; aborts if it cannot.
///
/// # Safety
///
/// The range is stacks of ours, stashed or being stashed.
unsafe fn remove_guard(lo: usize, hi: usize) {
    // SAFETY: guaranteed by the caller; removing the guard leaves empty
    // pages.
    if unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, MADV_GUARD_REMOVE) } != 0 {
        fatal(
            b"cannot remove the guard region of a stashed stack (madvise failed)",
            io::Error::last_os_error(),
        );
    }
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

/// Sets the protection of `[lo, hi)`, retrying for a while if the kernel is
/// out of mappings (`ENOMEM`: a change of protection may split the slab's
/// mapping, and other threads may be releasing some).
///
/// # Safety
///
/// As for [`protect`].
unsafe fn protect_retrying(lo: usize, hi: usize, prot: libc::c_int) -> io::Result<()> {
    let mut tries = 0;
    loop {
        // SAFETY: guaranteed by the caller.
        match unsafe { protect(lo, hi, prot) } {
            Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && tries < 1000 => {
                tries += 1;
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
            outcome => return outcome,
        }
    }
}

/// Sets the protection of `[lo, hi)`, a step that cannot be undone; aborts
/// if the kernel refuses even after [`protect_retrying`].
///
/// # Safety
///
/// As for [`protect`].
unsafe fn protect_or_die(lo: usize, hi: usize, prot: libc::c_int) {
    // SAFETY: guaranteed by the caller.
    match unsafe { protect_retrying(lo, hi, prot) } {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::ENOMEM) => fatal(
            b"cannot change the protection of a stashed stack (ENOMEM: the process is at \
              vm.max_map_count, raise it with sysctl -w vm.max_map_count=262144, or at its \
              RLIMIT_DATA; or set GREENERY_STASH=off)",
            err,
        ),
        Err(err) => fatal(b"cannot change the protection of a stashed stack (mprotect failed)", err),
    }
}

/// Reports a failure that leaves a stack unusable, and aborts.
/// Async-signal-safe.
fn fatal(what: &[u8], err: io::Error) -> ! {
    let mut message = [0u8; 512];
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

/// Whether the calling thread is the process's only one. `false` if that
/// cannot be told.
///
/// Read from `/proc/thread-self/status` ([`thread_status`]) where `/proc`
/// opens. Where it does not (a `chroot` without procfs), the kernel is asked
/// instead ([`raw_sys::alone_in_address_space`], `unshare(CLONE_VM)`), but
/// only if this process, or the one it was forked from, last read itself as
/// free of seccomp filters and tracers ([`known_unsupervised`]): a filter
/// may kill the process for calling `unshare` (a default-kill allowlist)
/// or fake its answer (a success, which would say "alone" with other
/// threads running), and a tracer may fake it too. Otherwise `false`.
/// Async-signal-safe: open(2), read(2), close(2) (made directly, see
/// [`raw_sys`]) into a small buffer on the stack, atomics, unshare(2).
fn only_thread() -> bool {
    only_thread_by_proc()
        .unwrap_or_else(|| known_unsupervised() && raw_sys::alone_in_address_space() == Some(true))
}

/// Whether `/proc/thread-self/status` counts one thread in the process;
/// `None` if it cannot be read. Records what it says of seccomp and
/// tracers ([`known_unsupervised`]). Async-signal-safe, as [`only_thread`].
fn only_thread_by_proc() -> Option<bool> {
    let status = thread_status()?;
    note_supervision(status.unsupervised);
    Some(status.alone)
}

/// Reads the calling thread's seccomp and tracer state afresh, where
/// `/proc` opens (see [`known_unsupervised`]): called in a forked child
/// that inherits stashed stacks, by its fork handler, before the program
/// can take `/proc` away. Async-signal-safe.
pub(super) fn note_supervision_after_fork() {
    let _ = only_thread_by_proc();
}

/// What [`thread_status`] found.
struct ThreadStatus {
    /// `Threads:` is 1.
    alone: bool,
    /// `Seccomp:` is 0 (no filter, no strict mode) and `TracerPid:` is 0.
    unsupervised: bool,
}

/// Reads `/proc/thread-self/status`: the process's thread count, and the
/// calling thread's seccomp mode and tracer. `None` if it cannot be read or
/// has no `Threads:` line. Reads through a 256-byte buffer (it may run on
/// a small alternate signal stack), line by line; lines longer than 64
/// bytes are skipped (none of those looked at is). Async-signal-safe.
fn thread_status() -> Option<ThreadStatus> {
    let fd = raw_sys::open(c"/proc/thread-self/status", libc::O_RDONLY | libc::O_CLOEXEC).ok()?;
    let mut chunk = [0u8; 256];
    let mut line = [0u8; 64];
    let (mut len, mut long) = (0, false);
    let (mut threads, mut seccomp, mut tracer) = (None, None, None);
    let complete = loop {
        let n = match raw_sys::read(fd, &mut chunk) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(_) => break false,
        };
        for &byte in &chunk[..n] {
            if byte != b'\n' {
                if len < line.len() {
                    line[len] = byte;
                    len += 1;
                } else {
                    long = true;
                }
                continue;
            }
            if !long {
                let line = &line[..len];
                // Each line looked at, and the value that answers yes.
                for (name, yes, found) in [
                    (b"Threads:".as_slice(), b"1".as_slice(), &mut threads),
                    (b"Seccomp:", b"0", &mut seccomp),
                    (b"TracerPid:", b"0", &mut tracer),
                ] {
                    if let Some(value) = line.strip_prefix(name) {
                        *found = Some(value.trim_ascii() == yes);
                    }
                }
            }
            (len, long) = (0, false);
        }
    };
    // SAFETY: the descriptor opened above, used by nothing else.
    unsafe { raw_sys::close(fd) };
    if !complete {
        return None;
    }
    Some(ThreadStatus { alone: threads?, unsupervised: seccomp == Some(true) && tracer == Some(true) })
}

/// What this process knows of seccomp filters and tracers, for
/// [`only_thread`]'s fallback: in ordinary memory, so that a forked child
/// inherits it (filters are inherited, and never removed). Once a read saw
/// a filter or a tracer, it stays [`SUPERVISED`].
static SUPERVISION: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const UNSUPERVISED: u8 = 1;
const SUPERVISED: u8 = 2;

/// Records what a read of `/proc/thread-self/status` said.
fn note_supervision(unsupervised: bool) {
    if unsupervised {
        let _ = SUPERVISION.compare_exchange(UNKNOWN, UNSUPERVISED, Ordering::Relaxed, Ordering::Relaxed);
    } else {
        SUPERVISION.store(SUPERVISED, Ordering::Relaxed);
    }
}

/// Whether every read of `/proc/thread-self/status` so far (in this process
/// and the ones it was forked from) found no seccomp filter and no tracer,
/// and there was one. A filter installed, or a tracer attached, since the
/// last read (at each stash batch, and in a forked child that inherits
/// stashed stacks, at its birth), or on another thread only, is not seen.
fn known_unsupervised() -> bool {
    SUPERVISION.load(Ordering::Relaxed) == UNSUPERVISED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_thread_is_seen() {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        assert!(!only_thread());
        assert_eq!(only_thread_by_proc(), Some(false));
        drop(done);
        other.join().unwrap().unwrap_err();
    }

    /// A stack taken over from a restore that another process's thread had
    /// begun: from the start if the bytes were not back yet, but only its
    /// last step if they were (the range may have been written since).
    #[test]
    fn a_restore_taken_over_from_another_process_is_finished_from_where_it_was() {
        if stash_after().is_none() {
            return; // no stashing here
        }
        let stack = Stack::new(64 * 1024).unwrap();
        let (bottom, top) = (stack.bottom(), stack.top());
        // The stash covers the top 4 KiB (the stack's header is at the very
        // top: the stash keeps it as it is); the test looks at its lowest
        // 256 bytes.
        let len = 4096;
        let region = (top - len) as *mut u8;
        let slot = stack.slot();
        for (state, expected) in [(RESTORING, 0x0d), (RESTORING_WRITTEN, 0x2e)] {
            // The stash, as the parent's stash left it: the stack's bytes,
            // with the old values at the bottom.
            let layout = Stash::layout(len);
            // SAFETY: a non-zero layout; written below before use.
            let buf = unsafe { alloc::alloc(layout) }.cast::<Meta>();
            // SAFETY: freshly allocated for a `Meta` and `len` bytes; the
            // stack's top `len` bytes are mapped and ours.
            unsafe {
                buf.write(Meta { slot, bottom, top, len });
                let bytes = (*buf).bytes().cast_mut();
                ptr::copy_nonoverlapping(region, bytes, len);
                ptr::write_bytes(bytes, 0x0d, 256);
            }
            // The stack as the fork found it: its bytes back and written
            // since, read-write.
            // SAFETY: the stack's own memory, below its header.
            unsafe { ptr::write_bytes(region, 0x2e, 256) };
            slot.stash_meta.store(buf, Ordering::Relaxed);
            let foreign = process_local::token() ^ 1;
            slot.stash.store(word(state, foreign), Ordering::Release);
            let taken = claim(slot);
            assert!(matches!(taken, Claim::Restore | Claim::Finish));
            // SAFETY: the meta describes this stack; the claim is ours.
            unsafe { restore(&*buf, taken) };
            // SAFETY: the stack's memory, read-write again.
            let bytes = unsafe { std::slice::from_raw_parts(region, 256) };
            assert!(bytes.iter().all(|&byte| byte == expected), "state {state}: {:?}", &bytes[..8]);
            slot.stash_meta.store(ptr::null_mut(), Ordering::Relaxed);
            end_restore(slot, NONE);
            // SAFETY: allocated above with this layout, used no more.
            unsafe { alloc::dealloc(buf.cast(), layout) };
        }
    }

    #[test]
    fn errno_is_written_in_four_digits() {
        assert_eq!(&errno_digits(&io::Error::from_raw_os_error(12)), b"0012");
    }
}
