//! The C library's blocking calls, defined in this program: on a green
//! thread they park it; everywhere else they do what libc's do (see the
//! [module documentation](super)).
//!
//! Every hook starts with the fast path: an fd the program did not make
//! through a patched call, or one it sees as non-blocking, or a call off a
//! green thread on an fd the hooks never touched, goes straight to libc's
//! function. Only a call that would block a green thread takes the slow
//! path, which makes the call non-blocking and parks until the fd is ready.

use std::ffi::{CStr, CString, c_void};
use std::time::{Duration, Instant};

use libc::{
    c_char, c_int, c_uint, c_ulong, iovec, msghdr, nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t,
};

use super::fds::{self, KERNEL_NONBLOCKING, NONBLOCKING, TRACKED};
use super::real;
use super::wait::{self, Failed};
use crate::hub::io::Direction;

fn set_errno(errno: c_int) {
    // SAFETY: this thread's errno location.
    unsafe { *libc::__errno_location() = errno };
}

fn errno() -> c_int {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

/// What a hook does with a call on `fd` that may block.
enum Path {
    /// Straight to libc.
    Through,
    /// The program sees the fd as blocking and the call may park: park.
    Park,
    /// The program sees it as blocking, the call may not park, and the
    /// hooks made the kernel's flag non-blocking: block the OS thread until
    /// it is ready.
    Block,
}

/// Decides the [`Path`] of a call on `fd`; `nonblocking_call` when the
/// call itself asks not to block (`MSG_DONTWAIT`).
#[inline]
fn path(fd: c_int, nonblocking_call: bool) -> Path {
    let Some(entry) = fds::get(fd) else { return Path::Through };
    let flags = entry.flags();
    if flags & TRACKED == 0 || flags & NONBLOCKING != 0 || nonblocking_call {
        return Path::Through;
    }
    if crate::hub::may_park() {
        if flags & KERNEL_NONBLOCKING == 0 {
            make_kernel_nonblocking(fd, entry);
        }
        Path::Park
    } else if flags & KERNEL_NONBLOCKING != 0 {
        Path::Block
    } else {
        Path::Through
    }
}

/// Sets the kernel's `O_NONBLOCK` on a tracked fd the program sees as
/// blocking (the first time a green thread would wait on it).
#[cold]
fn make_kernel_nonblocking(fd: c_int, entry: &fds::Entry) {
    // SAFETY: F_GETFL and F_SETFL on an fd of the program's; only the
    // status flags change.
    unsafe {
        let flags = real::fcntl(fd, libc::F_GETFL, 0);
        if flags >= 0 && real::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as c_ulong) == 0 {
            entry.set_kernel_nonblocking();
        }
    }
}

/// The deadline of a wait on `fd` for `direction` (its `SO_RCVTIMEO` or
/// `SO_SNDTIMEO`), from now.
fn deadline(fd: c_int, direction: Direction) -> Option<Instant> {
    let timeout = fds::get(fd)?.timeout(direction == Direction::Read)?;
    Some(Instant::now() + timeout)
}

/// Runs `op` (a system call on `fd` that may say `EAGAIN`) as the program
/// expects a blocking call to behave: parking the green thread, or
/// blocking the OS thread, until it does not say `EAGAIN`.
#[inline]
fn blocking(
    fd: c_int,
    direction: Direction,
    nonblocking_call: bool,
    mut op: impl FnMut() -> ssize_t,
) -> ssize_t {
    let park = match path(fd, nonblocking_call) {
        Path::Through => return op(),
        Path::Park => true,
        Path::Block => false,
    };
    slow(fd, direction, park, &mut op)
}

#[cold]
#[inline(never)]
fn slow(fd: c_int, direction: Direction, park: bool, op: &mut dyn FnMut() -> ssize_t) -> ssize_t {
    let deadline = deadline(fd, direction);
    loop {
        if park && let Some(errno) = wait::put_off() {
            set_errno(errno);
            return -1;
        }
        let done = op();
        if done >= 0 {
            return done;
        }
        let err = errno();
        if err != libc::EAGAIN && err != libc::EWOULDBLOCK {
            return done;
        }
        let waited = if park {
            wait::park_on(fd, direction, deadline)
        } else {
            wait::block_on_fd(fd, direction, deadline)
        };
        if let Err(failed) = waited {
            set_errno(failed.errno());
            return -1;
        }
    }
}

// ------------------------------------------------------------ reading

/// read(2), patched.
///
/// # Safety
///
/// As for libc's `read`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    // SAFETY: the caller's arguments, passed on.
    blocking(fd, Direction::Read, false, || unsafe { real::read(fd, buf, count) })
}

/// readv(2), patched.
///
/// # Safety
///
/// As for libc's `readv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Read, false, || unsafe { real::readv(fd, iov, count) })
}

/// recv(2), patched.
///
/// # Safety
///
/// As for libc's `recv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: as above; recv is recvfrom without an address.
    blocking(fd, Direction::Read, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::recvfrom(fd, buf, len, flags, std::ptr::null_mut(), std::ptr::null_mut())
    })
}

/// recvfrom(2), patched.
///
/// # Safety
///
/// As for libc's `recvfrom`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addr_len: *mut socklen_t,
) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Read, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::recvfrom(fd, buf, len, flags, addr, addr_len)
    })
}

/// recvmsg(2), patched.
///
/// # Safety
///
/// As for libc's `recvmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Read, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::recvmsg(fd, msg, flags)
    })
}

// ------------------------------------------------------------ writing

/// write(2), patched.
///
/// # Safety
///
/// As for libc's `write`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Write, false, || unsafe { real::write(fd, buf, count) })
}

/// writev(2), patched.
///
/// # Safety
///
/// As for libc's `writev`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Write, false, || unsafe { real::writev(fd, iov, count) })
}

/// send(2), patched.
///
/// # Safety
///
/// As for libc's `send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: as above; send is sendto without an address.
    blocking(fd, Direction::Write, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::sendto(fd, buf, len, flags, std::ptr::null(), 0)
    })
}

/// sendto(2), patched.
///
/// # Safety
///
/// As for libc's `sendto`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addr_len: socklen_t,
) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Write, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::sendto(fd, buf, len, flags, addr, addr_len)
    })
}

/// sendmsg(2), patched.
///
/// # Safety
///
/// As for libc's `sendmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: as above.
    blocking(fd, Direction::Write, flags & libc::MSG_DONTWAIT != 0, || unsafe {
        real::sendmsg(fd, msg, flags)
    })
}

// ------------------------------------------------------------ fortified C

/// `__read_chk`, what C built with `_FORTIFY_SOURCE` calls for `read`.
///
/// # Safety
///
/// As for libc's `__read_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t {
    if count > buflen {
        chk_fail();
    }
    // SAFETY: as for `read`.
    unsafe { read(fd, buf, count) }
}

/// `__recv_chk`, what fortified C calls for `recv`.
///
/// # Safety
///
/// As for libc's `__recv_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if len > buflen {
        chk_fail();
    }
    // SAFETY: as for `recv`.
    unsafe { recv(fd, buf, len, flags) }
}

/// `__recvfrom_chk`, what fortified C calls for `recvfrom`.
///
/// # Safety
///
/// As for libc's `__recvfrom_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addr_len: *mut socklen_t,
) -> ssize_t {
    if len > buflen {
        chk_fail();
    }
    // SAFETY: as for `recvfrom`.
    unsafe { recvfrom(fd, buf, len, flags, addr, addr_len) }
}

/// `__poll_chk`, what fortified C calls for `poll`.
///
/// # Safety
///
/// As for libc's `__poll_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    count: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if (fdslen / size_of::<pollfd>()) < count as usize {
        chk_fail();
    }
    // SAFETY: as for `poll`.
    unsafe { poll(fds, count, timeout) }
}

/// A buffer overflow that fortified C caught: libc's report and abort.
fn chk_fail() -> ! {
    unsafe extern "C" {
        fn __chk_fail() -> !;
    }
    // SAFETY: libc's function, which reports and aborts.
    unsafe { __chk_fail() }
}

// ------------------------------------------------------------ connections

/// accept(2), patched.
///
/// # Safety
///
/// As for libc's `accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, addr_len: *mut socklen_t) -> c_int {
    // SAFETY: as for `accept4`.
    unsafe { accept4(fd, addr, addr_len, 0) }
}

/// accept4(2), patched: the accepted fd is tracked.
///
/// # Safety
///
/// As for libc's `accept4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    addr_len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: as above.
    let accepted = blocking(fd, Direction::Read, false, || unsafe {
        real::accept4(fd, addr, addr_len, flags) as ssize_t
    });
    if accepted >= 0 {
        fds::track(accepted as c_int, flags & libc::SOCK_NONBLOCK != 0);
    }
    accepted as c_int
}

/// connect(2), patched: on a green thread, a blocking connect parks until
/// the connection is made or fails.
///
/// # Safety
///
/// As for libc's `connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, addr_len: socklen_t) -> c_int {
    let park = match path(fd, false) {
        // SAFETY: the caller's arguments, passed on.
        Path::Through => return unsafe { real::connect(fd, addr, addr_len) },
        Path::Park => true,
        Path::Block => false,
    };
    // SAFETY: as above.
    let done = unsafe { real::connect(fd, addr, addr_len) };
    if done == 0 || errno() != libc::EINPROGRESS {
        return done;
    }
    // In progress: writable once it is made or has failed (SO_SNDTIMEO
    // bounds it, as the kernel's blocking connect).
    let deadline = deadline(fd, Direction::Write);
    let waited = if park {
        wait::park_on(fd, Direction::Write, deadline)
    } else {
        wait::block_on_fd(fd, Direction::Write, deadline)
    };
    match waited {
        Err(Failed::TimedOut) => {
            set_errno(libc::EINPROGRESS);
            -1
        }
        Err(failed) => {
            set_errno(failed.errno());
            -1
        }
        Ok(()) => {
            let mut error: c_int = 0;
            let mut len = size_of::<c_int>() as socklen_t;
            // SAFETY: SO_ERROR writes a c_int into the space we pass.
            let read = unsafe {
                real::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut error as *mut c_int).cast(),
                    &mut len,
                )
            };
            if read != 0 {
                return -1;
            }
            if error != 0 {
                set_errno(error);
                return -1;
            }
            0
        }
    }
}

// ------------------------------------------------------------ fds made and gone

/// socket(2), patched: the new fd is tracked.
///
/// # Safety
///
/// As for libc's `socket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let fd = unsafe { real::socket(domain, kind, protocol) };
    if fd >= 0 {
        fds::track(fd, kind & libc::SOCK_NONBLOCK != 0);
    }
    fd
}

/// socketpair(2), patched: both fds are tracked.
///
/// # Safety
///
/// As for libc's `socketpair`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(domain: c_int, kind: c_int, protocol: c_int, pair: *mut c_int) -> c_int {
    // SAFETY: as above; `pair` has room for two fds.
    unsafe {
        let done = real::socketpair(domain, kind, protocol, pair);
        if done == 0 {
            fds::track(*pair, kind & libc::SOCK_NONBLOCK != 0);
            fds::track(*pair.add(1), kind & libc::SOCK_NONBLOCK != 0);
        }
        done
    }
}

/// pipe(2), patched.
///
/// # Safety
///
/// As for libc's `pipe`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(pair: *mut c_int) -> c_int {
    // SAFETY: as for `pipe2`.
    unsafe { pipe2(pair, 0) }
}

/// pipe2(2), patched: both fds are tracked.
///
/// # Safety
///
/// As for libc's `pipe2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(pair: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: as above; `pair` has room for two fds.
    unsafe {
        let done = real::pipe2(pair, flags);
        if done == 0 {
            fds::track(*pair, flags & libc::O_NONBLOCK != 0);
            fds::track(*pair.add(1), flags & libc::O_NONBLOCK != 0);
        }
        done
    }
}

/// close(2), patched: green threads of this thread waiting on the fd are
/// woken (they fail with `EBADF`), and the fd is no longer tracked.
///
/// # Safety
///
/// As for libc's `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if fds::get(fd).is_some_and(|entry| entry.flags() & TRACKED != 0) {
        wait::forget_registration(fd);
        fds::forget(fd);
    }
    // SAFETY: the caller's fd, passed on.
    unsafe { real::close(fd) }
}

/// dup(2), patched: a copy of a tracked fd is tracked alike.
///
/// # Safety
///
/// As for libc's `dup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: as above.
    let new = unsafe { real::dup(fd) };
    if new >= 0 {
        fds::copy(fd, new);
    }
    new
}

/// dup2(2), patched.
///
/// # Safety
///
/// As for libc's `dup2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // SAFETY: F_GETFD only checks that the fd is open.
        return if unsafe { real::fcntl(old, libc::F_GETFD, 0) } < 0 { -1 } else { new };
    }
    // SAFETY: as for `dup3`.
    unsafe { dup3(old, new, 0) }
}

/// dup3(2), patched: whatever `new` was is closed first, as the kernel does.
///
/// # Safety
///
/// As for libc's `dup3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    wait::forget_registration(new);
    // SAFETY: as above.
    let done = unsafe { real::dup3(old, new, flags) };
    if done >= 0 {
        fds::copy(old, new);
    }
    done
}

/// fcntl(2), patched: `F_GETFL` and `F_SETFL` show and change the
/// program's view of `O_NONBLOCK`; `F_DUPFD` copies are tracked.
///
/// The third argument is taken as a machine word: variadic functions
/// cannot be defined in stable Rust, and every `fcntl` command's argument
/// (an integer or a pointer) travels in the same register as a word on the
/// supported targets (x86_64 and aarch64 Linux).
///
/// # Safety
///
/// As for libc's `fcntl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let entry = fds::get(fd).filter(|entry| entry.flags() & TRACKED != 0);
    match (cmd, entry) {
        (libc::F_GETFL, Some(entry)) => {
            // SAFETY: the caller's arguments, passed on.
            let flags = unsafe { real::fcntl(fd, cmd, arg) };
            if flags < 0 {
                return flags;
            }
            let program = entry.flags() & NONBLOCKING != 0;
            if program { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK }
        }
        (libc::F_SETFL, Some(entry)) => {
            entry.set_nonblocking(arg as c_int & libc::O_NONBLOCK != 0);
            // The hooks keep the kernel's flag once they set it.
            let arg =
                if entry.flags() & KERNEL_NONBLOCKING != 0 { arg | libc::O_NONBLOCK as c_ulong } else { arg };
            // SAFETY: as above.
            unsafe { real::fcntl(fd, cmd, arg) }
        }
        (libc::F_DUPFD | libc::F_DUPFD_CLOEXEC, _) => {
            // SAFETY: as above.
            let new = unsafe { real::fcntl(fd, cmd, arg) };
            if new >= 0 {
                fds::copy(fd, new);
            }
            new
        }
        // SAFETY: as above.
        _ => unsafe { real::fcntl(fd, cmd, arg) },
    }
}

/// ioctl(2), patched: `FIONBIO` (std's `set_nonblocking`) changes the
/// program's view of `O_NONBLOCK`. As [`fcntl`], the third argument is
/// taken as a pointer-sized word.
///
/// # Safety
///
/// As for libc's `ioctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if request == libc::FIONBIO as c_ulong
        && let Some(entry) = fds::get(fd).filter(|entry| entry.flags() & TRACKED != 0)
        && !arg.is_null()
    {
        // SAFETY: FIONBIO's argument points to an int.
        let nonblocking = unsafe { *arg.cast::<c_int>() } != 0;
        entry.set_nonblocking(nonblocking);
        if !nonblocking && entry.flags() & KERNEL_NONBLOCKING != 0 {
            return 0; // the kernel's flag stays the hooks'
        }
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::ioctl(fd, request, arg) }
}

/// setsockopt(2), patched: `SO_RCVTIMEO` and `SO_SNDTIMEO` are recorded, to
/// bound the waits the hooks make.
///
/// # Safety
///
/// As for libc's `setsockopt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let done = unsafe { real::setsockopt(fd, level, name, value, len) };
    if done == 0
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= size_of::<libc::timeval>()
        && let Some(entry) = fds::get(fd)
    {
        // SAFETY: the kernel accepted it as a timeval.
        let time = unsafe { *value.cast::<libc::timeval>() };
        let timeout = Duration::from_secs(time.tv_sec.max(0) as u64)
            + Duration::from_micros(time.tv_usec.max(0) as u64);
        entry.set_timeout(name == libc::SO_RCVTIMEO, (!timeout.is_zero()).then_some(timeout));
    }
    done
}

// ------------------------------------------------------------ waiting for fds

/// poll(2), patched: on a green thread, a wait for fds that are all
/// tracked parks until one is ready.
///
/// # Safety
///
/// As for libc's `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds_ptr: *mut pollfd, count: nfds_t, timeout: c_int) -> c_int {
    let timeout = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
    // SAFETY: as for `ppoll`'s body.
    unsafe { poll_for(fds_ptr, count, timeout) }
}

/// ppoll(2), patched as [`poll`] (the signal mask is applied only where the
/// call goes to libc's).
///
/// # Safety
///
/// As for libc's `ppoll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds_ptr: *mut pollfd,
    count: nfds_t,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !mask.is_null() || !may_park_on_poll(fds_ptr, count) {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::ppoll(fds_ptr, count, timeout, mask) };
    }
    // SAFETY: a timespec the caller passed.
    let timeout = (!timeout.is_null()).then(|| unsafe {
        let time = *timeout;
        Duration::from_secs(time.tv_sec.max(0) as u64) + Duration::from_nanos(time.tv_nsec.max(0) as u64)
    });
    // SAFETY: as above.
    unsafe { poll_for(fds_ptr, count, timeout) }
}

/// Whether a poll of these fds may park: on a green thread, with every fd
/// tracked (a poll that includes an fd the hooks do not know waits in
/// libc's, as the program wrote it).
fn may_park_on_poll(fds_ptr: *const pollfd, count: nfds_t) -> bool {
    if count == 0 || fds_ptr.is_null() || !crate::hub::may_park() {
        return false;
    }
    // SAFETY: the caller passed `count` pollfds.
    let polls = unsafe { std::slice::from_raw_parts(fds_ptr, count as usize) };
    polls
        .iter()
        .all(|poll| poll.fd < 0 || fds::get(poll.fd).is_some_and(|entry| entry.flags() & TRACKED != 0))
}

/// # Safety
///
/// `fds_ptr` holds `count` pollfds.
unsafe fn poll_for(fds_ptr: *mut pollfd, count: nfds_t, timeout: Option<Duration>) -> c_int {
    let now_only = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    if timeout == Some(Duration::ZERO) || !may_park_on_poll(fds_ptr, count) {
        let timespec = timeout.map(|timeout| libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        });
        let timeout_ptr = timespec.as_ref().map_or(std::ptr::null(), |time| time as *const libc::timespec);
        // SAFETY: guaranteed by the caller; the timespec lives across the
        // call.
        return unsafe { real::ppoll(fds_ptr, count, timeout_ptr, std::ptr::null()) };
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        // SAFETY: guaranteed by the caller; a zero timeout returns at once.
        let ready = unsafe { real::ppoll(fds_ptr, count, &now_only, std::ptr::null()) };
        if ready != 0 {
            return ready;
        }
        // SAFETY: as above.
        let polls = unsafe { std::slice::from_raw_parts(fds_ptr, count as usize) };
        let mut waits = Vec::with_capacity(polls.len());
        for poll in polls.iter().filter(|poll| poll.fd >= 0) {
            let entry = fds::get(poll.fd).expect("tracked (checked above)");
            if entry.flags() & KERNEL_NONBLOCKING == 0 {
                make_kernel_nonblocking(poll.fd, entry);
            }
            if poll.events & (libc::POLLIN | libc::POLLPRI) != 0 {
                waits.push((poll.fd, Direction::Read));
            }
            if poll.events & libc::POLLOUT != 0 {
                waits.push((poll.fd, Direction::Write));
            }
            if poll.events & (libc::POLLIN | libc::POLLPRI | libc::POLLOUT) == 0 {
                // Only errors and hang-ups: either direction reports them.
                waits.push((poll.fd, Direction::Read));
            }
        }
        match wait::park_on_any(&waits, deadline) {
            Ok(()) => {}
            Err(Failed::TimedOut) => return 0,
            Err(failed) => {
                set_errno(if matches!(failed, Failed::PutOff(_)) { libc::EINTR } else { failed.errno() });
                return -1;
            }
        }
    }
}

/// select(2), patched: on a green thread, a wait for tracked fds parks.
///
/// # Safety
///
/// As for libc's `select`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    readfds: *mut libc::fd_set,
    writefds: *mut libc::fd_set,
    exceptfds: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    // As a poll of the same fds.
    let mut polls = Vec::new();
    for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
        // SAFETY: the sets the caller passed, read for fds below `nfds`.
        let (read, write, except) = unsafe {
            (
                !readfds.is_null() && libc::FD_ISSET(fd, readfds),
                !writefds.is_null() && libc::FD_ISSET(fd, writefds),
                !exceptfds.is_null() && libc::FD_ISSET(fd, exceptfds),
            )
        };
        if read || write || except {
            let events = (if read { libc::POLLIN } else { 0 })
                | (if write { libc::POLLOUT } else { 0 })
                | (if except { libc::POLLPRI } else { 0 });
            polls.push(pollfd { fd, events, revents: 0 });
        }
    }
    // SAFETY: a timeval the caller passed.
    let time = (!timeout.is_null()).then(|| unsafe {
        let time = *timeout;
        Duration::from_secs(time.tv_sec.max(0) as u64) + Duration::from_micros(time.tv_usec.max(0) as u64)
    });
    // SAFETY: our own pollfds.
    let ready = unsafe { poll_for(polls.as_mut_ptr(), polls.len() as nfds_t, time) };
    if ready < 0 {
        return ready;
    }
    // SAFETY: the sets the caller passed, rewritten as select does.
    unsafe {
        for set in [readfds, writefds, exceptfds] {
            if !set.is_null() {
                libc::FD_ZERO(set);
            }
        }
        let mut count = 0;
        for poll in &polls {
            let errors = poll.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            for (set, wanted, events) in [
                (readfds, libc::POLLIN, libc::POLLIN | libc::POLLHUP | libc::POLLERR),
                (writefds, libc::POLLOUT, libc::POLLOUT | libc::POLLERR),
                (exceptfds, libc::POLLPRI, libc::POLLPRI),
            ] {
                if !set.is_null() && poll.events & wanted != 0 && (poll.revents & events != 0 || errors) {
                    libc::FD_SET(poll.fd, set);
                    count += 1;
                }
            }
        }
        count
    }
}

// ------------------------------------------------------------ sleeping

/// Sleeps for `duration` on a green thread; `false` off one (the caller
/// sleeps in libc's function).
fn sleep_green(duration: Duration) -> bool {
    if !crate::hub::may_park() {
        return false;
    }
    // A kill or timeout put off ends the sleep early (as a signal would);
    // it resumes at the green thread's next greenery call.
    let _ = wait::sleep(duration);
    true
}

/// nanosleep(2), patched.
///
/// # Safety
///
/// As for libc's `nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(request: *const libc::timespec, remain: *mut libc::timespec) -> c_int {
    // SAFETY: as for `clock_nanosleep`.
    match unsafe { clock_nanosleep(libc::CLOCK_REALTIME, 0, request, remain) } {
        0 => 0,
        errno => {
            set_errno(errno);
            -1
        }
    }
}

/// clock_nanosleep(2), patched (what std's `thread::sleep` calls).
///
/// # Safety
///
/// As for libc's `clock_nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    request: *const libc::timespec,
    remain: *mut libc::timespec,
) -> c_int {
    if !request.is_null() && crate::hub::may_park() {
        // SAFETY: a timespec the caller passed.
        let time = unsafe { *request };
        if time.tv_nsec < 0 || time.tv_nsec >= 1_000_000_000 || time.tv_sec < 0 {
            return libc::EINVAL;
        }
        let mut duration = Duration::new(time.tv_sec as u64, time.tv_nsec as u32);
        if flags & libc::TIMER_ABSTIME != 0 {
            let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes the struct.
            if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
                return errno();
            }
            duration = duration.saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32));
        }
        if sleep_green(duration) {
            if !remain.is_null() && flags & libc::TIMER_ABSTIME == 0 {
                // SAFETY: the caller's struct.
                unsafe { *remain = libc::timespec { tv_sec: 0, tv_nsec: 0 } };
            }
            return 0;
        }
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::clock_nanosleep(clock, flags, request, remain) }
}

/// usleep(3), patched.
///
/// # Safety
///
/// None beyond libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(micros: libc::useconds_t) -> c_int {
    let request = libc::timespec {
        tv_sec: (micros / 1_000_000) as libc::time_t,
        tv_nsec: (micros % 1_000_000) as libc::c_long * 1000,
    };
    // SAFETY: our own timespec.
    unsafe { nanosleep(&request, std::ptr::null_mut()) }
}

/// sleep(3), patched.
///
/// # Safety
///
/// None beyond libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    let request = libc::timespec { tv_sec: seconds as libc::time_t, tv_nsec: 0 };
    let mut remain = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: our own timespecs.
    match unsafe { nanosleep(&request, &mut remain) } {
        0 => 0,
        _ => remain.tv_sec as c_uint + u32::from(remain.tv_nsec > 0),
    }
}

// ------------------------------------------------------------ names

/// getaddrinfo(3), patched: on a green thread, the lookup (which blocks in
/// the C library's own calls, out of the hooks' reach) runs on the hub's
/// blocking pool while the green thread parks.
///
/// # Safety
///
/// As for libc's `getaddrinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    result: *mut *mut libc::addrinfo,
) -> c_int {
    if !crate::hub::may_park() {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::getaddrinfo(node, service, hints, result) };
    }
    // SAFETY: NUL-terminated strings and a hints struct the caller passed.
    let (node, service, hints) = unsafe {
        (
            (!node.is_null()).then(|| CStr::from_ptr(node).to_owned()),
            (!service.is_null()).then(|| CStr::from_ptr(service).to_owned()),
            (!hints.is_null()).then(|| Hints::from(&*hints)),
        )
    };
    let lookup = move || lookup(node, service, hints);
    match wait::catch(|| crate::hub::spawn_blocking(lookup)) {
        Ok(Ok((code, list))) => {
            // SAFETY: the caller's result pointer.
            unsafe { *result = list as *mut libc::addrinfo };
            code
        }
        // The lookup panicked (it cannot: it is libc's call), or the green
        // thread was killed or timed out while it waited.
        Ok(Err(_)) | Err(_) => {
            set_errno(libc::EINTR);
            libc::EAI_SYSTEM
        }
    }
}

/// The fields of `addrinfo` that hints use, sent to the blocking pool.
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

impl From<&libc::addrinfo> for Hints {
    fn from(hints: &libc::addrinfo) -> Hints {
        Hints {
            flags: hints.ai_flags,
            family: hints.ai_family,
            socktype: hints.ai_socktype,
            protocol: hints.ai_protocol,
        }
    }
}

/// libc's lookup, on a blocking-pool thread: its code and its list (as an
/// address, to cross threads).
fn lookup(node: Option<CString>, service: Option<CString>, hints: Option<Hints>) -> (c_int, usize) {
    // SAFETY: a zeroed addrinfo is valid (null pointers, zero fields).
    let mut hint: libc::addrinfo = unsafe { std::mem::zeroed() };
    if let Some(hints) = &hints {
        hint.ai_flags = hints.flags;
        hint.ai_family = hints.family;
        hint.ai_socktype = hints.socktype;
        hint.ai_protocol = hints.protocol;
    }
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: strings and hints of our own, and a result pointer.
    let code = unsafe {
        real::getaddrinfo(
            node.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
            service.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
            if hints.is_some() { &hint } else { std::ptr::null() },
            &mut list,
        )
    };
    (code, list as usize)
}
