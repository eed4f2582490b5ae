//! Waiting for any fd: third-party non-blocking code made cooperative
//! (gevent's `wait_read`, `wait_write` and `wait`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use crate::hub::io::{Direction, Registered, Registration};

use super::socket::deadline;

/// Which readiness to wait for, in [`wait_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Data to read (or end of file, or an error).
    Readable,
    /// Room to write (or an error).
    Writable,
}

/// Parks the current green thread until `fd` is readable (or at end of
/// file, or in error), or `timeout` passes.
///
/// `fd` must be non-blocking and not a greenery socket (those wait by
/// themselves). It is registered with the hub for the wait only.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
///
/// let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
/// reader.set_nonblocking(true).unwrap();
/// let waiter = greenery::spawn(move || greenery::net::wait_readable(reader.as_fd(), None).is_ok());
/// writer.write_all(b"x").unwrap();
/// assert!(waiter.get().unwrap());
/// ```
///
/// # Errors
///
/// [`io::ErrorKind::TimedOut`] when the time runs out; `AlreadyExists` when
/// the fd is already registered with the hub (a greenery socket's fd);
/// whatever registering it reports otherwise.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    wait_any(&[(fd, Interest::Readable)], timeout).map(drop)
}

/// Parks the current green thread until `fd` is writable (or in error), or
/// `timeout` passes. As [`wait_readable`], for writing.
///
/// # Errors
///
/// As for [`wait_readable`].
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    wait_any(&[(fd, Interest::Writable)], timeout).map(drop)
}

/// Parks the current green thread until one of `fds` is ready for its
/// interest, or `timeout` passes; returns the index of one that is.
///
/// The fds may be the same fd twice with different interests. As for
/// [`wait_readable`], they must be non-blocking and not greenery sockets.
///
/// # Errors
///
/// As for [`wait_readable`]; `InvalidInput` for an empty list.
pub fn wait_any(fds: &[(BorrowedFd<'_>, Interest)], timeout: Option<Duration>) -> io::Result<usize> {
    if fds.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file descriptors to wait for"));
    }
    let deadline = deadline(timeout);
    loop {
        if let Some(index) = ready_now(fds)? {
            return Ok(index);
        }
        // Registered for the wait only: one registration per distinct fd.
        let mut registrations: Vec<(i32, Registration)> = Vec::with_capacity(fds.len());
        for (fd, _) in fds {
            let raw = fd.as_raw_fd();
            if registrations.iter().all(|(other, _)| *other != raw) {
                registrations.push((raw, Registration::new(raw).map_err(already_registered)?));
            }
        }
        let waits: Vec<(&Registered, Direction)> = fds
            .iter()
            .map(|(fd, interest)| {
                let registration = registrations
                    .iter()
                    .find(|(raw, _)| *raw == fd.as_raw_fd())
                    .map(|(_, registration)| &**registration)
                    .expect("registered above");
                let direction = match interest {
                    Interest::Readable => Direction::Read,
                    Interest::Writable => Direction::Write,
                };
                (registration, direction)
            })
            .collect();
        Registered::wait_many(&waits, deadline)?;
    }
}

/// The index of the first fd already ready for its interest (`poll(2)` with
/// no wait).
fn ready_now(fds: &[(BorrowedFd<'_>, Interest)]) -> io::Result<Option<usize>> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, interest)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: match interest {
                Interest::Readable => libc::POLLIN,
                Interest::Writable => libc::POLLOUT,
            },
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `polls` is a live array of `polls.len()` pollfds, and a
        // zero timeout returns at once.
        let ready = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
        if ready >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(polls.iter().position(|poll| poll.revents != 0))
}

fn already_registered(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::AlreadyExists {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the fd is already registered with the hub (it belongs to a greenery socket): wait on \
             the socket's own methods instead",
        )
    } else {
        err
    }
}
