//! Safe wrappers for the few Linux system calls that the cooperative I/O
//! types need beyond what std and mio offer. Each wrapper owns what it
//! returns (`OwnedFd`), so no caller handles raw descriptors.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Turns `O_NONBLOCK` on for the open file description behind `fd`.
pub(crate) fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL reads the flags of an fd the caller keeps open for the
    // duration of the borrow; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above; F_SETFL only changes the status flags.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pidfd for the child `pid` (Linux 5.3+): it polls readable once the
/// child has exited. Close-on-exec, as every pidfd.
///
/// `pid` must be a child this process has not reaped yet, so that the number
/// cannot have been reused by another process.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned an fd out of range"))?;
    // SAFETY: the call succeeded, so `fd` is a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Asks malloc to give its free memory back to the kernel (glibc's
/// `malloc_trim`: the free top of each arena, and the free pages inside
/// them). Other C libraries keep no such memory for long, or have no such
/// call: there it does nothing.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a size and touches only malloc's own state,
    // under malloc's locks; it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
