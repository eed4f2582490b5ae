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
//! stack. It would wait at the gate for its own fork, so the forking thread
//! passes the gate it closed. That is sound only if no *other* fork can
//! copy the process meanwhile, so forks take turns: the prepare handler
//! takes a baton (the forking thread's id) before it closes the gate, and
//! the parent and child handlers hand it back. A child made by a raw
//! `clone`/`fork` system call, which runs no `pthread_atfork` handlers, is
//! not covered (the documentation of [`stash_after`](super::stash_after)
//! says so).
//!
//! The handlers are installed before `/proc/self/mem` is first opened (see
//! [`proc_mem`]), so that no child ever inherits that descriptor unseen.
//!
//! Async-signal-safe: atomics, gettid(2) and sched_yield(2).

use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::proc_mem;

/// The operations inside the gate in the low 16 bits; whether a fork is
/// waiting at it, in [`FORK`].
static GATE: AtomicU32 = AtomicU32::new(0);

const FORK: u32 = 1 << 16;
const INSIDE: u32 = FORK - 1;

/// The thread that is forking (its thread id), which passes the gate; 0
/// when none is. One fork at a time holds it, from its prepare handler to
/// its parent or child handler.
static BATON: AtomicI32 = AtomicI32::new(0);

static INSTALL: Once = Once::new();

/// Installs the fork handlers, once per process. Called before
/// `/proc/self/mem` is first opened, and so before the first stash.
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
        if gate >= FORK && BATON.load(Ordering::Relaxed) != thread_id() {
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

/// Before a fork: takes the baton, closes the gate, and waits until no
/// operation is inside.
extern "C" fn prepare() {
    let me = thread_id();
    while BATON.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
        // Another thread forks: it holds no lock this waits for (glibc
        // runs the handlers without its own lock held), so it finishes.
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
    GATE.fetch_add(FORK, Ordering::Acquire);
    while GATE.load(Ordering::Acquire) & INSIDE != 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After a fork, in the parent: opens the gate again and hands the baton
/// back.
extern "C" fn parent() {
    GATE.fetch_sub(FORK, Ordering::Release);
    BATON.store(0, Ordering::Release);
}

/// After a fork, in the child: the only thread, with no operation inside
/// and no other fork under way; the parent's `/proc/self/mem` is not its
/// own.
extern "C" fn child() {
    GATE.store(0, Ordering::Release);
    BATON.store(0, Ordering::Release);
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
