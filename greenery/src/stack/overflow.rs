//! Reporting stack overflows.
//!
//! Every coroutine stack has a guard page below it. A coroutine that runs off
//! the end of its stack touches the guard page and the kernel raises SIGSEGV
//! (or SIGBUS). This module's handler then:
//!
//! 1. looks the fault address up in the process-wide
//!    [registry](super::registry) of stacks, and checks that the interrupted stack pointer lies on that very
//!    stack (a stray pointer into a guard page is not an overflow);
//! 2. if both hold, writes a report naming the coroutine and its stack size
//!    to stderr with write(2), and aborts;
//! 3. if the address lies in the usable range of a stashed stack, brings
//!    its contents back ([`stash`](super::stash)) and returns, so that the
//!    access is made again and succeeds;
//! 4. otherwise passes the signal on to the handler that was installed before
//!    greenery's (usually std's, which reports overflows of thread stacks), or
//!    restores the default action and returns so the fault repeats and kills
//!    the process as it would have without greenery.
//!
//! A SIGSEGV or SIGBUS sent by a process or thread (kill(2), raise(3),
//! pthread_kill(3), sigqueue(3): `si_code` of 0 or less) is no fault of
//! greenery's: it gets what it would have had without greenery (see
//! [`pass_on`]): ignored if the earlier action was `SIG_IGN`, the default
//! action (the process ends with a core) if it was `SIG_DFL`, the earlier
//! handler otherwise. Such a signal does not recur when the handler returns,
//! so the process may go on, with stacks stashed: greenery's handler stays
//! installed. If the earlier handler changed the action (std's installs
//! `SIG_DFL` when the address is no thread's guard page), that action is
//! recorded as the earlier one, for the signals that follow, and greenery's
//! handler is put back.
//!
//! The handler runs on an alternate signal stack (the faulting stack has no
//! room left): [`prepare_thread`] makes sure the thread has one before its
//! first coroutine stack exists. std gives its own threads one
//! (`max(SIGSTKSZ, AT_MINSIGSTKSZ)` bytes, 8 KiB on x86-64); greenery maps
//! one of 64 KiB for any thread that lacks it and unmaps it when the thread
//! exits. A thread that touches a stashed stack runs the handler on
//! whatever alternate stack it has (or on its own stack if none): about
//! 3.5 KiB (4 KiB in a debug build), most of it the kernel's signal frame,
//! which std's hold with room to spare once, though not nested (see
//! [`stash_after`](super::stash_after)'s limits).
//!
//! # Async-signal safety
//!
//! The handler takes no lock, allocates nothing, touches no thread-local
//! (in a library loaded with `dlopen`, the first touch of one may allocate)
//! and calls only write(2), sigaction(2), abort(3), getpid(2), tgkill(2),
//! and what the stash's
//! restore calls (rt_sigprocmask(2), mprotect(2), madvise(2), pwrite(2),
//! gettid(2), unshare(2), open(2), read(2), close(2), sched_yield(2)); the
//! registry is built to be read from a signal handler. A fault it passes on
//! reaches the previous handler with the signal mask the kernel would have
//! given that handler (see [`pass_on`]). It keeps the interrupted code's `errno`, and
//! runs with asynchronous signals blocked: its `sa_mask` blocks them, and
//! it blocks them again itself, first thing ([`SignalsBlocked`]), because
//! a handler installed after greenery's may call it in a context of its own
//! with every signal unblocked (wasmtime installs its handler with
//! `SA_NODEFER` and an empty mask): a signal handler that ran on a thread
//! in the middle of its restore and touched the same stack would wait for
//! itself (see [`stash`](super::stash)).
//!
//! The coroutine's name is read from the [`Header`](super::Header) at the top
//! of its stack, which the coroutine writes before it first runs.

use std::cell::OnceCell;
use std::mem;
use std::ptr::{self, NonNull};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering, fence};

use super::error::Size;
use super::raw_sys::SignalsBlocked;
use super::registry::find_guard;
use super::{Header, mmap, stash};

/// What greenery needs of an action (`struct sigaction`): the handler (or
/// `SIG_DFL`, `SIG_IGN`), its flags, and the kernel's 64-bit part of its mask.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Action {
    handler: usize,
    flags: libc::c_int,
    mask: u64,
}

impl Action {
    fn of(action: &libc::sigaction) -> Action {
        Action {
            handler: action.sa_sigaction,
            flags: action.sa_flags,
            // SAFETY: the signal set is an array of `unsigned long` (1024
            // bits on Linux), so its first 64 bits (the kernel's set) may be
            // read as an aligned `u64`.
            mask: unsafe { (&raw const action.sa_mask).cast::<u64>().read() },
        }
    }

    /// The action now in place for `signal`.
    fn current(signal: libc::c_int) -> Action {
        // SAFETY: with a null new action, sigaction(2) only writes the
        // current one to `current` (async-signal-safe).
        unsafe {
            let mut current: libc::sigaction = mem::zeroed();
            libc::sigaction(signal, ptr::null(), &mut current);
            Action::of(&current)
        }
    }

    fn is_greenerys(&self) -> bool {
        self.handler == handle_fault as *const () as usize
    }
}

/// The action that was in place before greenery's for one signal: the
/// action greenery's handler passes on what is not its own to.
///
/// Written before greenery's handler is installed, and again from the
/// handler when a handler it passed a sent signal to changed the action (see
/// [`pass_on`]), so it is a sequence lock of atomics, which a signal handler
/// can read and write: no lock that a thread interrupted while holding it
/// could wait for, no allocation.
struct Previous {
    /// Even when no write is under way; odd during one.
    sequence: AtomicUsize,
    handler: AtomicUsize,
    flags: AtomicI32,
    mask: AtomicU64,
}

impl Previous {
    const fn new() -> Previous {
        Previous {
            sequence: AtomicUsize::new(0),
            handler: AtomicUsize::new(libc::SIG_DFL),
            flags: AtomicI32::new(0),
            mask: AtomicU64::new(0),
        }
    }

    fn load(&self) -> Action {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            if before & 1 == 0 {
                let action = Action {
                    handler: self.handler.load(Ordering::Relaxed),
                    flags: self.flags.load(Ordering::Relaxed),
                    mask: self.mask.load(Ordering::Relaxed),
                };
                fence(Ordering::Acquire);
                if self.sequence.load(Ordering::Relaxed) == before {
                    return action;
                }
            }
            // A writer on another thread is between its two increments; it
            // runs with every signal blocked, so it is not this thread.
            std::hint::spin_loop();
        }
    }

    fn store(&self, action: Action) {
        // Every signal blocked while the sequence is odd: a handler that ran
        // on this thread in the middle and read the record would wait for
        // this thread forever. (The kernel ignores SIGKILL and SIGSTOP in
        // the set; nothing below can fault.)
        let all = !0u64;
        let mut old = 0u64;
        // SAFETY: rt_sigprocmask reads and writes the two 8-byte sets we
        // pass (the kernel's sigset_t is 64 bits here), for this thread.
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all, &mut old, 8) };
        let mut sequence = self.sequence.load(Ordering::Relaxed);
        loop {
            if sequence & 1 == 0 {
                match self.sequence.compare_exchange_weak(
                    sequence,
                    sequence + 1,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => sequence = now,
                }
            } else {
                std::hint::spin_loop();
                sequence = self.sequence.load(Ordering::Relaxed);
            }
        }
        fence(Ordering::Release);
        self.handler.store(action.handler, Ordering::Relaxed);
        self.flags.store(action.flags, Ordering::Relaxed);
        self.mask.store(action.mask, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
        // SAFETY: puts back this thread's mask, saved above.
        unsafe {
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &old, ptr::null_mut::<u64>(), 8)
        };
    }
}

/// The actions that were in place before greenery's, for SIGSEGV and SIGBUS.
static PREVIOUS_SEGV: Previous = Previous::new();
static PREVIOUS_BUS: Previous = Previous::new();

fn previous_of(signal: libc::c_int) -> &'static Previous {
    if signal == libc::SIGBUS { &PREVIOUS_BUS } else { &PREVIOUS_SEGV }
}

/// greenery's action for SIGSEGV and SIGBUS. (Async-signal-safe: the
/// signal-set functions only set bits.)
fn greenerys_action() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is a valid one (SIG_DFL, no flags, empty
    // mask), which the lines below fill in. The signal set is an array of
    // `unsigned long` (1024 bits on Linux), so its first 64 bits may be
    // written as an aligned `u64`.
    unsafe {
        let mut action: libc::sigaction = mem::zeroed();
        action.sa_sigaction = handle_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // Asynchronous signals wait while the handler runs: it may wait
        // for another thread's stash or restore to end, and a signal
        // handler that touched the same stack meanwhile would fault
        // with SIGSEGV blocked, which kills the process.
        libc::sigfillset(&mut action.sa_mask);
        for synchronous in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP] {
            libc::sigdelset(&mut action.sa_mask, synchronous);
        }
        // glibc's `sigfillset` leaves out its own signals (32, the
        // cancellation signal, and 33): an asynchronous cancellation in
        // the middle of a restore would unwind out of the handler. The
        // kernel reads the first 64 bits of the set.
        *(&mut action.sa_mask as *mut libc::sigset_t).cast::<u64>() |= 1 << 31 | 1 << 32;
        action
    }
}

/// Installs greenery's handler for `signal` over `current`, the action in
/// place, which the caller has recorded in [`previous_of`]: records it before the
/// handler that reads it can run. If another thread changed the action
/// between the caller's read and this install, the action replaced is the
/// one recorded instead.
fn take_over(signal: libc::c_int, current: Action) {
    let action = greenerys_action();
    // SAFETY: installs a valid action; the old one is written to `replaced`
    // (async-signal-safe).
    let replaced = unsafe {
        let mut replaced: libc::sigaction = mem::zeroed();
        libc::sigaction(signal, &action, &mut replaced);
        Action::of(&replaced)
    };
    if replaced != current && !replaced.is_greenerys() {
        previous_of(signal).store(replaced);
    }
}

static INSTALL: Once = Once::new();

fn install_handler() {
    INSTALL.call_once(|| {
        for signal in [libc::SIGSEGV, libc::SIGBUS] {
            // Recorded before greenery's handler, which reads it, is
            // installed (sigaction(2) copies the old action out only after
            // it has installed the new one).
            let current = Action::current(signal);
            previous_of(signal).store(current);
            take_over(signal, current);
        }
    });
}

/// An alternate signal stack that greenery mapped for this thread.
struct AltStack {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let guard = mmap::page_size();
        // SAFETY: we only disable the alternate stack if it is still ours,
        // then unmap the memory we mapped in `prepare_thread`.
        unsafe {
            let mut current: libc::stack_t = mem::zeroed();
            libc::sigaltstack(ptr::null(), &mut current);
            if current.ss_sp as usize == self.base.as_ptr() as usize + guard {
                let disable =
                    libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                libc::sigaltstack(&disable, ptr::null_mut());
            }
            mmap::unmap(self.base, self.len);
        }
        mmap::forget_mappings();
    }
}

thread_local! {
    static ALT_STACK: OnceCell<Option<AltStack>> = const { OnceCell::new() };
}

/// Size of the alternate signal stacks greenery maps.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Installs the handler (once per process) and makes sure the calling thread
/// has an alternate signal stack (once per thread). Called before a thread's
/// first coroutine stack is mapped.
pub(crate) fn prepare_thread() {
    install_handler();
    // During thread teardown the thread-local may be gone; that thread is
    // past running coroutines for the first time, so there is nothing to do.
    let _ = ALT_STACK.try_with(|cell| {
        cell.get_or_init(|| {
            // SAFETY: querying the current alternate stack writes only `current`.
            let mut current: libc::stack_t = unsafe { mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0
                || current.ss_flags & libc::SS_DISABLE == 0
            {
                return None; // the thread has one already (std's, usually)
            }
            let guard = mmap::page_size();
            let len = ALT_STACK_SIZE + guard;
            let base = mmap::map_guarded(len, guard, ALT_STACK_SIZE).ok()?;
            let stack = libc::stack_t {
                ss_sp: (base.as_ptr() as usize + guard) as *mut libc::c_void,
                ss_flags: 0,
                ss_size: ALT_STACK_SIZE,
            };
            let alt = AltStack { base, len };
            // SAFETY: `stack` describes memory we own for as long as `alt`
            // lives, and `alt` disables it before unmapping.
            if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
                return None; // `alt` unmaps on drop
            }
            Some(alt)
        });
    });
}

/// The stack pointer of the interrupted context.
///
/// # Safety
///
/// `ctx` must be the `ucontext_t` the kernel passed to a signal handler.
unsafe fn interrupted_sp(ctx: *mut libc::c_void) -> usize {
    let ctx = ctx as *const libc::ucontext_t;
    // SAFETY: guaranteed by the caller.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        (*ctx).uc_mcontext.gregs[libc::REG_RSP as usize] as usize
    }
    // SAFETY: guaranteed by the caller.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        (*ctx).uc_mcontext.sp as usize
    }
}

/// The instruction pointer of the interrupted context.
///
/// # Safety
///
/// `ctx` must be the `ucontext_t` the kernel passed to a signal handler.
unsafe fn interrupted_pc(ctx: *mut libc::c_void) -> usize {
    let ctx = ctx as *const libc::ucontext_t;
    // SAFETY: guaranteed by the caller.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        (*ctx).uc_mcontext.gregs[libc::REG_RIP as usize] as usize
    }
    // SAFETY: guaranteed by the caller.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        (*ctx).uc_mcontext.pc as usize
    }
}

extern "C" fn handle_fault(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // First of all: not left to this handler's `sa_mask`, since a handler
    // installed after it may call it with any mask (see the module
    // documentation). (rt_sigprocmask leaves `errno` alone when it works.)
    let _signals = SignalsBlocked::new();
    // The interrupted code may be about to read `errno`: keep it.
    let _errno = SavedErrno::new();
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Only faults the kernel raised carry an address (a signal sent with
    // kill(2) or sigqueue(3) has a code of 0 or less).
    if code > 0 {
        if let Some((guard_lo, top)) = find_guard(addr) {
            // SAFETY: `ctx` is the context the kernel passed us.
            let sp = unsafe { interrupted_sp(ctx) };
            if guard_lo <= sp && sp <= top {
                // SAFETY: the stack is registered, so it is mapped and its
                // header lies just below `top`.
                unsafe { report_overflow(guard_lo, top) }
            }
        }
        // SAFETY: `ctx` is the context the kernel passed us.
        let (pc, sp) = unsafe { (interrupted_pc(ctx), interrupted_sp(ctx)) };
        // SAFETY: called from the fault handler, for a fault the kernel
        // raised.
        if unsafe { stash::restore_on_fault(addr, pc, sp) } {
            return; // the access is made again, on the restored stack
        }
    }
    // SAFETY: the kernel's arguments.
    unsafe { pass_on(signal, info, ctx, code <= 0) }
}

/// The calling thread's `errno`, put back when dropped.
struct SavedErrno(libc::c_int);

impl SavedErrno {
    fn new() -> SavedErrno {
        // SAFETY: libc's errno location is valid for the calling thread.
        SavedErrno(unsafe { *libc::__errno_location() })
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// Writes the report and aborts.
///
/// # Safety
///
/// `top` must be the end of a mapped, registered stack.
unsafe fn report_overflow(guard_lo: usize, top: usize) -> ! {
    let guard = mmap::page_size();
    // SAFETY: the header is the top 16 bytes of the stack, mapped and
    // written by the coroutine before it ran.
    let header = unsafe { ptr::read_volatile((top - mem::size_of::<Header>()) as *const Header) };
    let mut message = Message::new();
    message.push(b"\ngreenery: stack overflow in coroutine '");
    if header.name_ptr.is_null() {
        message.push(b"<unnamed>");
    } else {
        // SAFETY: the name outlives the coroutine that is running (it is a
        // static string or owned by the coroutine's handle).
        let name = unsafe { std::slice::from_raw_parts(header.name_ptr, header.name_len.min(200)) };
        message.push(name);
    }
    message.push(b"' (stack size ");
    message.push_size((top - guard_lo - guard) as u64);
    message.push(b")\ngreenery: give it a larger stack with greenery::Builder::stack_size, or raise the default with GREENERY_STACK_SIZE=<bytes>\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(libc::STDERR_FILENO, message.buf.as_ptr().cast(), message.len);
        libc::abort()
    }
}

/// Hands a fault that is not a coroutine overflow, or a signal sent with
/// kill(2), tgkill(2) or sigqueue(3) (`sent`), to whoever handled it before
/// greenery, as the kernel would have without greenery's handler:
///
/// - a fault the kernel raised, with `SIG_DFL` or `SIG_IGN` before: the
///   default action is restored and the handler returns, so the faulting
///   instruction runs again and the kernel applies that action (a fault
///   cannot be ignored);
/// - a sent signal, with `SIG_IGN` before: nothing (it is ignored);
/// - a sent signal, with `SIG_DFL` before: the default action, to terminate
///   with a core: the signal is sent again to this thread, with `SIG_DFL`
///   installed, and unblocked;
/// - a handler before: it is called with the mask the kernel would have given
///   it. For a sent signal, if it changed the action (std's handler installs
///   `SIG_DFL` for anything that is not a thread's guard page), the new action
///   becomes the one recorded as previous and greenery's handler goes back in
///   place: a sent signal does not recur, so the process goes on, and stashed
///   stacks need the handler. (A fault the kernel raised recurs when the
///   handler returns: an action the handler installed then applies, which
///   is how std's reports a thread's overflow and ends the process.)
///
/// # Safety
///
/// Must be called from the signal handler with the kernel's arguments.
unsafe fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, sent: bool) {
    let previous = previous_of(signal).load();
    if previous.handler == libc::SIG_IGN && sent {
        return;
    }
    if previous.handler == libc::SIG_DFL || previous.handler == libc::SIG_IGN {
        // SAFETY: installing SIG_DFL is always valid; sigaction(2),
        // getpid(2), gettid(2), tgkill(2) and rt_sigprocmask(2) are
        // async-signal-safe.
        unsafe {
            let mut default: libc::sigaction = mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, ptr::null_mut());
            if sent {
                // The signal is blocked while its handler runs (unless a
                // handler chained in front of greenery's asked otherwise):
                // it waits until it is unblocked, then ends the process.
                let tid = libc::syscall(libc::SYS_gettid);
                libc::syscall(libc::SYS_tgkill, libc::getpid() as libc::c_long, tid, signal as libc::c_long);
                let set = 1u64 << (signal - 1);
                libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_UNBLOCK, &set, ptr::null_mut::<u64>(), 8);
            }
        }
        // Otherwise (a fault) the faulting instruction runs again and the
        // kernel applies the default action.
        return;
    }
    // The previous handler runs with the mask the kernel would have
    // given it had it been called directly: the interrupted code's,
    // plus its own `sa_mask`, plus the signal unless it asked for
    // `SA_NODEFER`. Not with every asynchronous signal blocked, as this
    // handler runs: nothing of greenery's is under way on this thread
    // any more (no stash, no restore), and a handler that leaves by a
    // `longjmp` (which keeps the mask) would otherwise leave them
    // blocked.
    // SAFETY: `ctx` is the kernel's `ucontext_t`, whose signal mask
    // (the interrupted code's) begins with the kernel's 64-bit set.
    let mut mask = unsafe { (&raw const (*ctx.cast::<libc::ucontext_t>()).uc_sigmask).cast::<u64>().read() }
        | previous.mask;
    if previous.flags & libc::SA_NODEFER == 0 {
        mask |= 1 << (signal - 1);
    }
    // SAFETY: rt_sigprocmask reads the 8-byte set we pass, for this
    // thread. (The handler's own guard puts the mask it saved back
    // when the handler returns; sigreturn then restores the
    // interrupted code's.)
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &mask, ptr::null_mut::<u64>(), 8) };
    let before = if sent { Some(Action::current(signal)) } else { None };
    // SAFETY: `previous` is a handler, the arguments the kernel's.
    unsafe { call_previous(previous, signal, info, ctx) };
    if let Some(before) = before {
        let after = Action::current(signal);
        if after != before && !after.is_greenerys() {
            previous_of(signal).store(after);
            take_over(signal, after);
        }
    }
}

/// Calls the handler `previous` names.
///
/// # Safety
///
/// `previous` is a handler (not `SIG_DFL` or `SIG_IGN`); the arguments are
/// the kernel's.
unsafe fn call_previous(
    previous: Action,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    let handler = previous.handler;
    if previous.flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(handler) };
        handler(signal, info, ctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal
        // number only.
        let handler: extern "C" fn(libc::c_int) = unsafe { mem::transmute(handler) };
        handler(signal);
    }
}

/// A fixed buffer for the report: formatting must not allocate.
struct Message {
    buf: [u8; 512],
    len: usize,
}

impl Message {
    fn new() -> Self {
        Message { buf: [0; 512], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_size(&mut self, bytes: u64) {
        let (value, unit): (u64, &[u8]) = match Size(bytes) {
            Size(n) if n % (1024 * 1024) == 0 && n > 0 => (n / (1024 * 1024), b" MiB"),
            Size(n) if n % 1024 == 0 && n > 0 => (n / 1024, b" KiB"),
            Size(n) => (n, b" bytes"),
        };
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = value;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
        self.push(unit);
    }
}
