//! The C library's own functions, which the hooks call to do the work.
//!
//! The hooks define the C library's names (`read`, `recv`, ...) in this
//! program, so that every caller, the C library's own callers included,
//! reaches them instead of libc's. To call libc's, each hook looks its real
//! function up once with `dlsym(RTLD_NEXT, name)` (the next definition after
//! this program's: libc's) and keeps it in an atomic.
//!
//! Where `dlsym` cannot find it (a statically linked program has no
//! dynamic symbols), the hooks fall back to the raw system call, which
//! differs from libc's function only in that it is not a pthread
//! cancellation point.

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// A libc function found by name, once.
pub(super) struct Real {
    name: &'static CStr,
    /// The function's address; null until looked up, [`MISSING`] if there
    /// is none.
    address: AtomicPtr<c_void>,
}

/// Marks a function `dlsym` did not find.
const MISSING: *mut c_void = std::ptr::dangling_mut::<c_void>();

impl Real {
    pub(super) const fn new(name: &'static CStr) -> Real {
        Real { name, address: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The function's address, or `None` if libc has none by that name (a
    /// static program): the caller makes the system call instead.
    #[inline]
    pub(super) fn get(&self) -> Option<*mut c_void> {
        match self.address.load(Ordering::Acquire) {
            address if address.is_null() => self.look_up(),
            MISSING => None,
            address => Some(address),
        }
    }

    #[cold]
    fn look_up(&self) -> Option<*mut c_void> {
        // SAFETY: dlsym takes a pseudo-handle and a NUL-terminated name.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        let stored = if found.is_null() { MISSING } else { found };
        self.address.store(stored, Ordering::Release);
        (!found.is_null()).then_some(found)
    }
}

/// Declares a real function: `real!(READ: fn read(fd: c_int, ...) -> ssize_t, syscall: SYS_read)`
/// makes `READ` and `read(...)`, which calls libc's or, failing that, the
/// system call with the same arguments.
macro_rules! real {
    ($(#[$meta:meta])* $table:ident: fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty, $fallback:expr) => {
        static $table: Real = Real::new(
            // SAFETY: the literal is NUL-terminated and has no other NUL.
            unsafe { CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) },
        );

        $(#[$meta])*
        ///
        /// # Safety
        ///
        /// As for the libc function of that name.
        #[inline]
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            match $table.get() {
                Some(address) => {
                    // SAFETY: `address` is libc's function of that name,
                    // with this C signature.
                    let real: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(address) };
                    // SAFETY: guaranteed by the caller.
                    unsafe { real($($arg),*) }
                }
                // SAFETY: the system call behind the function, with its
                // arguments; guaranteed by the caller.
                #[allow(unused_unsafe)]
                None => unsafe { $fallback },
            }
        }
    };
}

use libc::{c_int, c_ulong, iovec, msghdr, nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t};

real!(READ: fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t,
    libc::syscall(libc::SYS_read, fd, buf, count) as ssize_t);
real!(READV: fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t,
    libc::syscall(libc::SYS_readv, fd, iov, count) as ssize_t);
real!(WRITE: fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t,
    libc::syscall(libc::SYS_write, fd, buf, count) as ssize_t);
real!(WRITEV: fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t,
    libc::syscall(libc::SYS_writev, fd, iov, count) as ssize_t);
real!(RECVFROM: fn recvfrom(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, addr_len: *mut socklen_t) -> ssize_t,
    libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, addr, addr_len) as ssize_t);
real!(RECVMSG: fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t,
    libc::syscall(libc::SYS_recvmsg, fd, msg, flags) as ssize_t);
real!(SENDTO: fn sendto(fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, addr_len: socklen_t) -> ssize_t,
    libc::syscall(libc::SYS_sendto, fd, buf, len, flags, addr, addr_len) as ssize_t);
real!(SENDMSG: fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t,
    libc::syscall(libc::SYS_sendmsg, fd, msg, flags) as ssize_t);
real!(ACCEPT4: fn accept4(fd: c_int, addr: *mut sockaddr, addr_len: *mut socklen_t, flags: c_int) -> c_int,
    libc::syscall(libc::SYS_accept4, fd, addr, addr_len, flags) as c_int);
real!(CONNECT: fn connect(fd: c_int, addr: *const sockaddr, addr_len: socklen_t) -> c_int,
    libc::syscall(libc::SYS_connect, fd, addr, addr_len) as c_int);
real!(SOCKET: fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int,
    libc::syscall(libc::SYS_socket, domain, kind, protocol) as c_int);
real!(SOCKETPAIR: fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int,
    libc::syscall(libc::SYS_socketpair, domain, kind, protocol, fds) as c_int);
real!(PIPE2: fn pipe2(fds: *mut c_int, flags: c_int) -> c_int,
    libc::syscall(libc::SYS_pipe2, fds, flags) as c_int);
real!(CLOSE: fn close(fd: c_int) -> c_int,
    libc::syscall(libc::SYS_close, fd) as c_int);
real!(DUP: fn dup(fd: c_int) -> c_int,
    libc::syscall(libc::SYS_dup, fd) as c_int);
real!(DUP3: fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int,
    libc::syscall(libc::SYS_dup3, old, new, flags) as c_int);
real!(FCNTL: fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int,
    libc::syscall(libc::SYS_fcntl, fd, cmd, arg) as c_int);
real!(IOCTL: fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int,
    libc::syscall(libc::SYS_ioctl, fd, request, arg) as c_int);
real!(SETSOCKOPT: fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int,
    libc::syscall(libc::SYS_setsockopt, fd, level, name, value, len) as c_int);
real!(GETSOCKOPT: fn getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int,
    libc::syscall(libc::SYS_getsockopt, fd, level, name, value, len) as c_int);
real!(PPOLL: fn ppoll(fds: *mut pollfd, count: nfds_t, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int,
    libc::syscall(libc::SYS_ppoll, fds, count, timeout, mask, 8usize) as c_int);
real!(CLOCK_NANOSLEEP: fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, request: *const libc::timespec, remain: *mut libc::timespec) -> c_int,
{
    let done = libc::syscall(libc::SYS_clock_nanosleep, clock, flags, request, remain);
    if done < 0 { *libc::__errno_location() } else { 0 }
});
real!(GETADDRINFO: fn getaddrinfo(node: *const libc::c_char, service: *const libc::c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int,
    // A static program has libc's getaddrinfo itself: the hooks are not
    // linked there (see the module documentation).
    libc::EAI_SYSTEM);
