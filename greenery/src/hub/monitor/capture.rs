//! Taking a blocked thread's registers, the top of its stack and its running
//! greenlet, with a signal whose handler only copies.
//!
//! # Why a copy
//!
//! A backtrace of another thread needs code running on that thread, which
//! only a signal gives, and a signal handler may call only async-signal-safe
//! functions. Unwinding inside the handler is not: frame pointers are not
//! kept by Rust's default code generation, and `_Unwind_Backtrace` (what
//! `backtrace::trace` and `pprof-rs` use) looks up unwind tables through
//! `dl_iterate_phdr`, which takes the dynamic loader's lock and walks lists
//! that a `dlopen` interrupted by the signal may be changing. So the handler
//! does what Linux's `perf record --call-graph dwarf` has the kernel do: it
//! copies the interrupted registers and the stack above the interrupted
//! stack pointer into a buffer, and the monitor unwinds that copy later, on
//! its own thread, where it may lock, allocate and read files
//! (`super::backtrace`).
//!
//! # The exchange
//!
//! One capture at a time (`TAKING` serialises them). The monitor writes the
//! target's thread id, sets `state` from `IDLE` to `ASKED` and sends the
//! signal with `tgkill`. The handler moves `state` from `ASKED` to
//! `COPYING` (a handler of a signal sent by someone else finds it not
//! `ASKED`, or finds another thread id, and returns), fills `out` and the
//! buffer, and sets `TAKEN`; the monitor, which polls for `TAKEN`, then reads
//! them and sets `IDLE`. A thread that does not answer in time (it blocks
//! the signal, or sits in an uninterruptible sleep) is given up on: the
//! monitor moves `ASKED` back to `IDLE`, so a late handler finds nothing to
//! do; if the handler got there first, the monitor waits the few
//! microseconds it takes.
//!
//! Stack memory is read with `process_vm_readv` on our own process, in
//! page-sized pieces, rather than with loads: the handler cannot know where
//! the interrupted stack ends (a greenlet's stack, or the thread's), and the
//! system call stops at the first page that is not readable instead of
//! faulting.

use std::cell::UnsafeCell;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libc::{c_int, c_void};

use super::lock;
use crate::hub::Record;

/// The signal the monitor sends: the fourth-highest real-time signal (61 on
/// Linux), which nothing in std or the C library uses. If the program has a
/// handler of its own for it, greenery leaves it alone and reports without
/// backtraces.
fn signal() -> c_int {
    libc::SIGRTMAX() - 3
}

/// The most stack copied: enough for a few hundred typical frames.
const STACK_BYTES: usize = 256 * 1024;
/// The piece size of the copy: pages of 4 KiB (or parts of larger pages).
const PIECE: usize = 4096;
const PIECES: usize = STACK_BYTES / PIECE + 1;
/// The longest greenlet name copied.
const NAME_BYTES: usize = 128;
/// How long a thread has to answer the signal.
const ANSWER_TIME: Duration = Duration::from_secs(1);

const IDLE: u8 = 0;
const ASKED: u8 = 1;
const COPYING: u8 = 2;
const TAKEN: u8 = 3;

/// The registers the unwinder starts from.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Registers {
    pub(super) pc: u64,
    pub(super) sp: u64,
    /// The frame pointer (`rbp`, `x29`).
    pub(super) fp: u64,
    /// The link register (`x30`); 0 on x86_64, which has none.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub(super) lr: u64,
}

/// What the handler writes, between `COPYING` and `TAKEN`.
struct Raw {
    registers: Registers,
    /// Bytes of stack copied from `registers.sp` into `BUFFER`.
    stack_len: usize,
    /// `errno` of a copy that read nothing.
    stack_errno: c_int,
    greenlet: usize,
    id: u64,
    spawned_at: *const Location<'static>,
    name: [u8; NAME_BYTES],
    name_len: usize,
    /// The copy's remote pieces: here rather than on the handler's stack,
    /// which may be a nearly full greenlet stack.
    pieces: [libc::iovec; PIECES],
}

struct Exchange {
    state: AtomicU8,
    tid: AtomicI32,
    out: UnsafeCell<Raw>,
    buffer: UnsafeCell<[u8; STACK_BYTES]>,
}

// SAFETY: `out` and `buffer` are written only by the handler between its
// `ASKED` → `COPYING` exchange and its `TAKEN` store (Release), and read only
// by the monitor after it loads `TAKEN` (Acquire) and before it stores
// `IDLE`; `TAKING` lets one monitor-side capture run at a time.
unsafe impl Sync for Exchange {}

const NO_PIECE: libc::iovec = libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 };

static EXCHANGE: Exchange = Exchange {
    state: AtomicU8::new(IDLE),
    tid: AtomicI32::new(0),
    out: UnsafeCell::new(Raw {
        registers: Registers { pc: 0, sp: 0, fp: 0, lr: 0 },
        stack_len: 0,
        stack_errno: 0,
        greenlet: 0,
        id: 0,
        spawned_at: ptr::null(),
        name: [0; NAME_BYTES],
        name_len: 0,
        pieces: [NO_PIECE; PIECES],
    }),
    buffer: UnsafeCell::new([0; STACK_BYTES]),
};

/// One capture at a time.
static TAKING: Mutex<()> = Mutex::new(());

/// The running greenlet, as the handler found it.
#[derive(Debug)]
pub(super) struct Running {
    pub(super) address: usize,
    /// Its green thread id (0: not a green thread).
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) spawned_at: Option<&'static Location<'static>>,
}

/// What a capture took.
#[derive(Debug)]
pub(super) struct Sample {
    pub(super) greenlet: Running,
    pub(super) registers: Registers,
    /// The stack from `registers.sp` up, as far as it could be read.
    pub(super) stack: Vec<u8>,
    /// Why no stack could be read, if none could.
    pub(super) stack_error: Option<std::io::Error>,
}

/// A sample, or why none could be taken.
pub(super) type Outcome = Result<Sample, String>;

/// The calling thread's kernel thread id.
pub(crate) fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes nothing and cannot fail.
    unsafe { libc::gettid() }
}

/// Installs the handler, once; the error says why it could not be.
fn install() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let signum = signal();
            // SAFETY: a zeroed sigaction is a valid "no handler" value, and
            // sigaction only reads the new one and writes the old one.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signum, ptr::null(), &mut old) != 0 {
                    return Err(format!("cannot read the disposition of signal {signum}"));
                }
                if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
                    return Err(format!(
                        "signal {signum}, which the monitor uses, has a handler of the program's"
                    ));
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction =
                    on_signal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signum, &action, ptr::null_mut()) != 0 {
                    return Err(format!("cannot install a handler for signal {signum}"));
                }
            }
            Ok(())
        })
        .clone()
}

/// Takes the registers, stack and running greenlet of the thread `tid` of
/// this process.
///
/// The caller keeps the thread from exiting meanwhile (it holds the list of
/// hubs, which the thread must leave first).
pub(super) fn take(tid: libc::pid_t) -> Outcome {
    install()?;
    let _taking = lock(&TAKING);
    EXCHANGE.tid.store(tid, Ordering::Relaxed);
    EXCHANGE.state.store(ASKED, Ordering::Release);
    // SAFETY: tgkill takes three integers; the thread belongs to this
    // process and cannot exit meanwhile (see above).
    if unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal()) } != 0 {
        let err = std::io::Error::last_os_error();
        EXCHANGE.state.store(IDLE, Ordering::Relaxed);
        return Err(format!("cannot signal the thread: {err}"));
    }
    let asked = Instant::now();
    loop {
        match EXCHANGE.state.load(Ordering::Acquire) {
            TAKEN => break,
            ASKED
                if asked.elapsed() >= ANSWER_TIME
                    && EXCHANGE
                        .state
                        .compare_exchange(ASKED, IDLE, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok() =>
            {
                return Err(format!(
                    "the thread did not take signal {} within {} s (it may block signals)",
                    signal(),
                    ANSWER_TIME.as_secs()
                ));
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    // SAFETY: the handler stored `TAKEN` (we loaded it with Acquire): it is
    // done with `out` and `buffer` until the next `ASKED`, which only we
    // store, under `TAKING`.
    let sample = unsafe {
        let raw = &*EXCHANGE.out.get();
        let buffer = &*EXCHANGE.buffer.get();
        let name = String::from_utf8_lossy(&raw.name[..raw.name_len.min(NAME_BYTES)]).into_owned();
        Sample {
            greenlet: Running {
                address: raw.greenlet,
                id: raw.id,
                name,
                // A record's place is a `&'static Location` or null.
                spawned_at: raw.spawned_at.as_ref(),
            },
            registers: raw.registers,
            stack: buffer[..raw.stack_len.min(STACK_BYTES)].to_vec(),
            stack_error: (raw.stack_len == 0).then(|| std::io::Error::from_raw_os_error(raw.stack_errno)),
        }
    };
    EXCHANGE.state.store(IDLE, Ordering::Release);
    Ok(sample)
}

/// The handler.
///
/// Async-signal-safe: it reads and writes atomics, `errno` (saved and put
/// back), the context the kernel handed it, the static exchange (which the
/// protocol gives it alone while it runs), and the running greenlet's
/// immutable fields ([`running_for_signal`](crate::greenlet::running_for_signal),
/// [`Record::read_for_signal`]); it makes the system calls `gettid`,
/// `getpid` and `process_vm_readv`. It takes no lock, allocates nothing and
/// calls nothing that could.
extern "C" fn on_signal(_: c_int, _: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is thread-local; reading it is safe anywhere.
    let errno = unsafe { *libc::__errno_location() };
    if EXCHANGE.state.compare_exchange(ASKED, COPYING, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return; // not ours, or given up on
    }
    if EXCHANGE.tid.load(Ordering::Relaxed) != gettid() {
        // Meant for another thread: leave it for that one.
        EXCHANGE.state.store(ASKED, Ordering::Release);
        return;
    }
    // SAFETY: the exchange is ours until we store `TAKEN` (see
    // `Exchange`); the kernel passes a valid `ucontext_t` to an SA_SIGINFO
    // handler.
    unsafe {
        let raw = &mut *EXCHANGE.out.get();
        raw.registers = registers(context.cast());
        copy_stack(raw);
        let (greenlet, record, name, name_len) = crate::greenlet::running_for_signal();
        raw.greenlet = greenlet;
        raw.name_len = name_len.min(NAME_BYTES);
        if !name.is_null() {
            ptr::copy_nonoverlapping(name, raw.name.as_mut_ptr(), raw.name_len);
        }
        (raw.id, raw.spawned_at) =
            if record.is_null() { (0, ptr::null()) } else { Record::read_for_signal(record) };
    }
    EXCHANGE.state.store(TAKEN, Ordering::Release);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Copies the stack above `raw.registers.sp` into `BUFFER`, piece by piece,
/// until a piece cannot be read or the buffer is full.
///
/// # Safety
///
/// Called only by the handler, which owns the exchange.
unsafe fn copy_stack(raw: &mut Raw) {
    let sp = raw.registers.sp as usize;
    let mut count = 0;
    let mut at = sp;
    let mut total = 0;
    while total < STACK_BYTES && count < PIECES {
        let len = (PIECE - at % PIECE).min(STACK_BYTES - total);
        raw.pieces[count] = libc::iovec { iov_base: at as *mut c_void, iov_len: len };
        count += 1;
        at += len;
        total += len;
    }
    let local = libc::iovec { iov_base: EXCHANGE.buffer.get().cast(), iov_len: total };
    // SAFETY: `local` is the exchange's buffer, ours while we copy; the
    // remote pieces are only read by the kernel, which fails on an
    // unreadable one instead of faulting. `count` fits in an `c_ulong`.
    let copied =
        unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, raw.pieces.as_ptr(), count as _, 0) };
    if copied < 0 {
        raw.stack_len = 0;
        // SAFETY: errno is thread-local.
        raw.stack_errno = unsafe { *libc::__errno_location() };
    } else {
        raw.stack_len = copied as usize;
    }
}

/// The interrupted registers, from the handler's context.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to the handler.
#[cfg(target_arch = "x86_64")]
unsafe fn registers(context: *const libc::ucontext_t) -> Registers {
    // SAFETY: guaranteed by the caller.
    let gregs = unsafe { &(*context).uc_mcontext.gregs };
    Registers {
        pc: gregs[libc::REG_RIP as usize] as u64,
        sp: gregs[libc::REG_RSP as usize] as u64,
        fp: gregs[libc::REG_RBP as usize] as u64,
        lr: 0,
    }
}

/// The interrupted registers, from the handler's context.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to the handler.
#[cfg(target_arch = "aarch64")]
unsafe fn registers(context: *const libc::ucontext_t) -> Registers {
    // SAFETY: guaranteed by the caller.
    let mcontext = unsafe { &(*context).uc_mcontext };
    Registers { pc: mcontext.pc, sp: mcontext.sp, fp: mcontext.regs[29], lr: mcontext.regs[30] }
}
