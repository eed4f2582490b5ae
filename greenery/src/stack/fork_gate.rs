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
//! restore on its own. The parent and child handlers open the gate again.
//!
//! Operations never run user code inside the gate, and the threads that
//! run them block asynchronous signals meanwhile, so a fork can never be
//! waiting for an operation of its own thread. A child made by a raw
//! `clone`/`fork` system call, which runs no `pthread_atfork` handlers, is
//! not covered (the documentation of [`stash_after`](super::stash_after)
//! says so).
//!
//! Async-signal-safe: atomics and sched_yield(2).

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// The operations inside the gate in the low 16 bits; the forks waiting
/// at it, in units of [`FORK`], above.
static GATE: AtomicU32 = AtomicU32::new(0);

const FORK: u32 = 1 << 16;
const INSIDE: u32 = FORK - 1;

static INSTALL: Once = Once::new();

/// Installs the fork handlers, once per process. Called before the first
/// stash.
pub(super) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions without arguments
        // that only touch atomics.
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(reopen), Some(reopen)) };
        assert_eq!(rc, 0, "greenery: pthread_atfork failed ({rc}): stacks cannot be stashed safely");
    });
}

/// An operation inside the gate: [`enter`] waits while a fork is under
/// way; dropping it leaves.
pub(super) struct Inside(());

/// Enters the gate, waiting while a fork is waiting at it.
pub(super) fn enter() -> Inside {
    let mut gate = GATE.load(Ordering::Relaxed);
    loop {
        if gate >= FORK {
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

/// Before a fork: closes the gate and waits until no operation is inside.
extern "C" fn prepare() {
    GATE.fetch_add(FORK, Ordering::Acquire);
    while GATE.load(Ordering::Acquire) & INSIDE != 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After a fork, in the parent and in the child: opens the gate again (in
/// the child, no operation is inside: none was when the fork happened).
extern "C" fn reopen() {
    GATE.fetch_sub(FORK, Ordering::Release);
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
