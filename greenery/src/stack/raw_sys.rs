//! The system calls the fault handler's restore makes, made directly.
//!
//! glibc's `open`, `read`, `pread`, `pwrite` and `close` are cancellation
//! points: a thread with a pending `pthread_cancel` that touched a stashed
//! stack would be cancelled inside the SIGSEGV handler, halfway through a
//! restore, and unwind through a function that cannot unwind. The same
//! calls made with `syscall(2)` are not cancellation points. Each returns
//! what the system call did, or the error in `errno`.

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
