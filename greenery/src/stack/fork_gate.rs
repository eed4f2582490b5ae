//! Keeping `fork` out of stash operations.
//!
//! A stash or restore changes a stack's memory in several steps (see
//! [`stash`](super::stash)); between them the range is inaccessible and its
//! state word says another thread is busy with it. A child forked in that
//! window inherits the half-done range, but not the thread that was doing
//! the work: a touch of the range there would wait forever for it.
//!
//! So every such operation runs inside the gate, and a `fork(3)` waits at it:
//! the `pthread_atfork` prepare handler closes the gate to new operations,
//! waits until the ones inside have left, and the fork happens with every
//! stack either untouched or completely stashed, which the child can
//! restore on its own. The parent and child handlers open the gate again
//! (the child's handler also drops the parent's `/proc/self/mem`, see
//! [`proc_mem`]).
//!
//! Operations never run user code inside the gate, and the threads that
//! run them block asynchronous signals meanwhile. The thread that forks may
//! still need to restore a stack after its prepare handler ran: another
//! library's prepare handler, or a signal handler, may touch a stashed
//! stack. It would wait at the gate for its own fork, so a forking thread
//! passes the gate it closed (its operation is over before its fork
//! proceeds). A child made by a raw `clone`/`fork` system call, which runs
//! no `pthread_atfork` handlers, is not covered (the documentation of
//! [`stash_after`](super::stash_after) says so).
//!
//! Async-signal-safe: atomics, gettid(2) and sched_yield(2).

use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::proc_mem;

/// The operations inside the gate in the low 16 bits; the forks waiting
/// at it, in units of [`FORK`], above.
static GATE: AtomicU32 = AtomicU32::new(0);

const FORK: u32 = 1 << 16;
const INSIDE: u32 = FORK - 1;

/// The threads forking now (their thread ids; 0 for a free place), which
/// pass the gate. A fork beyond this many at once waits like any thread.
static FORKERS: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];

static INSTALL: Once = Once::new();

/// Installs the fork handlers, once per process. Called before the first
/// stash.
pub(super) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions without arguments
        // that only touch atomics (and, in the child, close a descriptor).
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        assert_eq!(rc, 0, "greenery: pthread_atfork failed ({rc}): stacks cannot be stashed safely");
    });
}

/// An operation inside the gate: [`enter`] waits while a fork is under
/// way; dropping it leaves.
pub(super) struct Inside(());

/// Enters the gate, waiting while a fork is waiting at it (unless the
/// calling thread is the one forking).
pub(super) fn enter() -> Inside {
    let mut gate = GATE.load(Ordering::Relaxed);
    loop {
        if gate >= FORK && !forking() {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
            gate = GATE.load(Ordering::Relaxed);
            continue;
        }
        debug_assert!(gate & INSIDE < INSIDE);
        match GATE.compare_exchange_weak(gate, gate + 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Inside(()),
            Err(now) => gate = now,
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        GATE.fetch_sub(1, Ordering::Release);
    }
}

/// The calling thread's id. Async-signal-safe.
fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Whether the calling thread is forking now.
fn forking() -> bool {
    let me = thread_id();
    FORKERS.iter().any(|forker| forker.load(Ordering::Relaxed) == me)
}

/// Before a fork: closes the gate and waits until no operation is inside.
extern "C" fn prepare() {
    let me = thread_id();
    for forker in &FORKERS {
        if forker.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            break;
        }
    }
    GATE.fetch_add(FORK, Ordering::Acquire);
    while GATE.load(Ordering::Acquire) & INSIDE != 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After a fork, in the parent: opens the gate again.
extern "C" fn parent() {
    let me = thread_id();
    if let Some(forker) = FORKERS.iter().find(|forker| forker.load(Ordering::Relaxed) == me) {
        forker.store(0, Ordering::Relaxed);
    }
    GATE.fetch_sub(FORK, Ordering::Release);
}

/// After a fork, in the child: the only thread, with no operation inside
/// and no other fork under way (forks by other threads of the parent may
/// have been waiting at the gate, and are not the child's).
extern "C" fn child() {
    for forker in &FORKERS {
        forker.store(0, Ordering::Relaxed);
    }
    GATE.store(0, Ordering::Release);
    proc_mem::forget_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_waits_for_operations_inside() {
        install();
        let inside = enter();
        let (done, forked) = std::sync::mpsc::channel();
        let forker = std::thread::spawn(move || {
            // SAFETY: the child only calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            done.send(()).unwrap();
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        });
        // Once the forker waits at the gate, it cannot get past it while we
        // are inside.
        while GATE.load(Ordering::Acquire) < FORK {
            std::thread::yield_now();
        }
        assert!(forked.try_recv().is_err(), "forked while an operation was inside the gate");
        drop(inside);
        forked.recv().unwrap();
        forker.join().unwrap();
        let _again = enter(); // the gate is open again
    }
}
