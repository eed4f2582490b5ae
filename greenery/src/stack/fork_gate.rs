//! Keeping `fork` out of stashes.
//!
//! A stash changes a stack's memory in several steps (see
//! [`stash`](super::stash)): the range is made read-only, copied out, made
//! inaccessible, given a guard region. A child forked in the middle would
//! inherit a half-done range that nothing there can finish or undo (the
//! copy may be partial). So every stash runs inside the gate, and a
//! `fork(3)` waits at it: the `pthread_atfork` prepare handler closes the
//! gate to new stashes and waits until the ones inside have left. The
//! parent's handler opens it again; the child's resets it (forks of other
//! threads may have been waiting at it, and are not the child's) and drops
//! the parent's `/proc/self/mem` (see [`proc_mem`], whose own part of the
//! prepare handler makes sure no descriptor of the parent's memory reaches
//! the child unrecorded). A child that inherits stashed stacks opens its
//! own `/proc/self/mem` there and then, before the program can take it
//! away (a `chroot`), and reads whether it runs under a seccomp filter or a
//! tracer (see `stash::only_thread`).
//!
//! Nothing here counts on the C library running the handlers of one fork
//! at a time: two threads' forks may both be between their prepare and
//! parent handlers, and both the gate and [`proc_mem`] count them.
//!
//! Stashes run on hub threads, between green threads, with asynchronous
//! signals blocked, and take no lock of anyone else's: a fork that waits
//! for them waits for a few system calls. Restores do *not* wait for forks
//! (a thread that restores may hold a lock that another library's fork
//! handler takes): a child that inherits a restore in mid-flight finishes
//! it itself, as [`stash`](super::stash) explains.
//!
//! A child made by a raw `clone`/`fork` system call, which runs no
//! `pthread_atfork` handlers, is not covered (the documentation of
//! [`stash_after`](super::stash_after) says so).
//!
//! The handlers are installed before `/proc/self/mem` is first opened (see
//! [`proc_mem`]). Async-signal-safe: atomics and sched_yield(2) (and, in
//! the child, open(2), read(2), close(2)).

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{proc_mem, stash};

/// The stashes inside the gate in the low 16 bits; the forks waiting at
/// it, in units of [`FORK`], above.
static GATE: AtomicU32 = AtomicU32::new(0);

const FORK: u32 = 1 << 16;
const INSIDE: u32 = FORK - 1;

static INSTALL: Once = Once::new();

/// Installs the fork handlers, once per process. Called before
/// `/proc/self/mem` is first opened, and so before the first stash.
pub(super) fn install() {
    INSTALL.call_once(|| {
        // The handlers read the process-local page (see `proc_mem`): it is
        // mapped before they can run, and stays. (`proc_mem::available`
        // maps it before it installs them, so this is a no-op there.)
        if let Err(err) = super::process_local::init() {
            panic!("greenery: cannot map the process-local page ({err}): stacks cannot be stashed safely");
        }
        // SAFETY: the handlers are `extern "C"` functions without arguments
        // that only touch atomics (and, in the child, close a descriptor).
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        assert_eq!(rc, 0, "greenery: pthread_atfork failed ({rc}): stacks cannot be stashed safely");
    });
}

/// A stash inside the gate: [`enter`] waits while a fork is under way;
/// dropping it leaves.
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

/// Before a fork: closes the gate and waits until no stash is inside.
extern "C" fn prepare() {
    proc_mem::before_fork();
    GATE.fetch_add(FORK, Ordering::Acquire);
    while GATE.load(Ordering::Acquire) & INSIDE != 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After a fork, in the parent: opens the gate again.
extern "C" fn parent() {
    GATE.fetch_sub(FORK, Ordering::Release);
    proc_mem::after_fork_in_parent();
}

/// After a fork, in the child: the only thread, with no stash inside and
/// no fork of its own under way.
extern "C" fn child() {
    GATE.store(0, Ordering::Release);
    proc_mem::forget_after_fork();
    if stash::any_stashed() {
        // If it cannot open it now, it cannot later either, unless what
        // stood in the way goes: the restore then tries again.
        let _ = proc_mem::ready();
        // And what it may need to know if `/proc` goes (a restore with
        // other threads running, without the descriptor): whether it runs
        // under a seccomp filter or a tracer.
        stash::note_supervision_after_fork();
    }
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
