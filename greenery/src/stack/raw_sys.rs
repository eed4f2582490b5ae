//! The system calls the fault handler's restore makes, made directly.
//!
//! glibc's `open`, `read`, `pread`, `pwrite` and `close` are cancellation
//! points: a thread with a pending `pthread_cancel` that touched a stashed
//! stack would be cancelled inside the SIGSEGV handler, halfway through a
//! restore, and unwind through a function that cannot unwind. The same
//! calls made with `syscall(2)` are not cancellation points. Each returns
//! what the system call did, or the error in `errno`.
//!
//! Also here: [`SignalsBlocked`], which blocks every asynchronous signal
//! (glibc's own included) for a stash, a restore, or the opening of
//! `/proc/self/mem`, and [`alone_in_address_space`], which tells without
//! `/proc` whether the calling thread is the only one using its memory.

use std::ffi::CStr;
use std::io;

/// A result of `syscall(2)`: the value, or the error it left in `errno`.
fn check(result: libc::c_long) -> io::Result<usize> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result as usize) }
}

/// openat(2) relative to the current directory.
pub(super) fn open(path: &CStr, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: the path is NUL-terminated; openat reads only it.
    check(unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, 0) })
        .map(|fd| fd as libc::c_int)
}

/// close(2).
///
/// # Safety
///
/// `fd` must be a descriptor the caller owns and no longer uses.
pub(super) unsafe fn close(fd: libc::c_int) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// read(2) into `buf`.
pub(super) fn read(fd: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    check(unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) })
}

/// pread(2) of `len` bytes at `offset` into `buf` (for the copy under
/// AddressSanitizer).
///
/// # Safety
///
/// `buf` must have room for `len` bytes.
#[cfg(greenery_asan)]
pub(super) unsafe fn pread(fd: libc::c_int, buf: *mut u8, len: usize, offset: usize) -> io::Result<usize> {
    // SAFETY: guaranteed by the caller.
    check(unsafe { libc::syscall(libc::SYS_pread64, fd, buf, len, offset as libc::off_t) })
}

/// pwrite(2) of `len` bytes from `buf` at `offset`.
///
/// # Safety
///
/// `buf` must hold `len` readable bytes, and writing them at `offset` of
/// `fd` must be the caller's to do.
pub(super) unsafe fn pwrite(fd: libc::c_int, buf: *const u8, len: usize, offset: usize) -> io::Result<usize> {
    // SAFETY: guaranteed by the caller.
    check(unsafe { libc::syscall(libc::SYS_pwrite64, fd, buf, len, offset as libc::off_t) })
}

/// gettid(2): the calling thread's id, unique among the live threads of
/// this process.
pub(super) fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Whether the calling thread is the only user of its address space: no
/// other thread in its thread group, and no other process sharing its
/// memory (made with `clone(CLONE_VM)` without `CLONE_THREAD`); `None` if
/// the kernel would not say.
///
/// `unshare(CLONE_VM)` asks for nothing to be unshared when there is nothing
/// to unshare: the kernel accepts it as a no-op if the caller is
/// single-threaded and alone on its memory, and fails with `EINVAL`
/// otherwise (`check_unshare_flags`). Any other error (a seccomp filter that
/// refuses `unshare` with `EPERM`, say) leaves the question open. No
/// `/proc` is needed: this works in a `chroot` without one.
///
/// Not to be called where a seccomp filter or a tracer may be in force: a
/// filter may kill the process for the call (`SIGSYS`), or answer it with
/// a success it did not make (which would read as "alone" with other
/// threads running). `stash::only_thread` calls it only without `/proc`,
/// and only when it saw neither.
pub(super) fn alone_in_address_space() -> Option<bool> {
    // SAFETY: with CLONE_VM alone, unshare changes nothing: it succeeds
    // only when there is nothing to unshare.
    match check(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_VM) }) {
        Ok(_) => Some(true),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Some(false),
        Err(_) => None,
    }
}

/// Blocks the calling thread's asynchronous signals while it lives,
/// glibc's own included (its cancellation and set-id signals, which
/// `pthread_sigmask` leaves alone: an asynchronous cancellation in the
/// middle of a stash or restore would unwind out of it), and puts the
/// thread's mask back when dropped. Async-signal-safe: rt_sigprocmask(2),
/// made directly.
///
/// Whatever runs while it lives cannot be interrupted by a signal handler
/// on this thread: only synchronous faults (SIGSEGV, SIGBUS, SIGILL,
/// SIGFPE, SIGTRAP, SIGABRT) stay deliverable, since blocking those is
/// undefined.
pub(super) struct SignalsBlocked(u64);

/// The kernel's signal set with the synchronous faults left out.
fn asynchronous_signals() -> u64 {
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP, libc::SIGABRT]
        .into_iter()
        .fold(!0u64, |set, signal| set & !(1 << (signal - 1)))
}

impl SignalsBlocked {
    pub(super) fn new() -> SignalsBlocked {
        let block = asynchronous_signals();
        let mut old = 0u64;
        // SAFETY: rt_sigprocmask reads and writes the two 8-byte sets we
        // pass (the kernel's sigset_t is 64 bits here), for this thread.
        unsafe {
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &block, &mut old, 8);
        }
        SignalsBlocked(old)
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: puts back the mask saved in `new`.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.0,
                std::ptr::null_mut::<u64>(),
                8,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_thread_is_seen_without_proc() {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        assert_ne!(alone_in_address_space(), Some(true));
        drop(done);
        other.join().unwrap().unwrap_err();
    }

    #[test]
    fn a_forked_child_is_alone() {
        // Stacks are stashed only where guard regions work; emulators such as
        // qemu-user (which has threads of its own and ignores the advice
        // this relies on) run without stashing, and this does not apply.
        if !crate::stack::mmap::guard_regions() {
            return;
        }
        // SAFETY: the child makes one system call and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let alone = alone_in_address_space();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(if alone != Some(false) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "a single-threaded child was not alone"
        );
    }
}
