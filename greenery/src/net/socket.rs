//! What every socket type shares: its registration with the hub and its
//! timeouts.
//!
//! A socket is `Send`: its registration follows it to the thread that uses
//! it (see `hub::io::MovableRegistration`), so each operation starts by
//! finding the fd's entry in this thread's hub.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::hub::io::{Direction, MovableRegistration};

/// A non-blocking socket registered with the hub of the thread that uses it.
pub(crate) struct Socket<S: AsRawFd> {
    // Declared first, so dropped first: deregistered while the fd is open.
    registration: MovableRegistration,
    io: S,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl<S: AsRawFd> Socket<S> {
    /// Registers `io`, which must already be non-blocking.
    pub(crate) fn new(io: S) -> io::Result<Socket<S>> {
        let registration = MovableRegistration::new(io.as_raw_fd())?;
        Ok(Socket { registration, io, read_timeout: Cell::new(None), write_timeout: Cell::new(None) })
    }

    pub(crate) fn get(&self) -> &S {
        &self.io
    }

    /// Deregisters the socket and hands it back (still non-blocking).
    pub(crate) fn into_inner(self) -> S {
        drop(self.registration);
        self.io
    }

    /// Runs a non-blocking read-side `op` until it does not say `EAGAIN`,
    /// parking the green thread in between, within the read timeout.
    #[inline]
    pub(crate) fn read_with<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.read_by(deadline(self.read_timeout.get()), op)
    }

    /// As [`read_with`](Self::read_with), waiting until `deadline` (`None`:
    /// for ever) instead of for the read timeout.
    #[inline]
    pub(crate) fn read_by<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.registration.here()?.retry(Direction::Read, deadline, || op(&self.io))
    }

    /// A stream read into `len` bytes: as [`read_with`](Self::read_with),
    /// and a read that returns fewer (but some) bytes marks the socket
    /// drained, so that the next read waits for the poller first.
    #[inline]
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let registered = self.registration.here()?;
        let deadline = deadline(self.read_timeout.get());
        let read = registered.retry(Direction::Read, deadline, || op(&self.io))?;
        if read > 0 && read < len {
            registered.drained(Direction::Read);
        }
        Ok(read)
    }

    /// As [`read_stream`](Self::read_stream), waiting until `deadline`
    /// (`None`: for ever) instead of for the read timeout.
    #[cfg(feature = "tls")]
    pub(crate) fn read_stream_by(
        &self,
        deadline: Option<Instant>,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let registered = self.registration.here()?;
        let read = registered.retry(Direction::Read, deadline, || op(&self.io))?;
        if read > 0 && read < len {
            registered.drained(Direction::Read);
        }
        Ok(read)
    }

    /// A stream write of `len` bytes: as [`write_with`](Self::write_with),
    /// and a short write marks the socket full.
    #[inline]
    pub(crate) fn write_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let registered = self.registration.here()?;
        let deadline = deadline(self.write_timeout.get());
        let written = registered.retry(Direction::Write, deadline, || op(&self.io))?;
        if written < len {
            registered.drained(Direction::Write);
        }
        Ok(written)
    }

    /// A stream read or write of `len` bytes for a future polled on the
    /// hub's thread: `op` runs when the socket may be ready, and `Pending`
    /// leaves the waker to be woken when it may be (see
    /// `Registration::poll_ready`). Short transfers mark the socket
    /// drained, as [`read_stream`](Self::read_stream) and
    /// [`write_stream`](Self::write_stream) do. The socket's timeouts do not
    /// apply (a future is timed by its caller).
    #[cfg(any(feature = "futures-io", feature = "tokio"))]
    pub(crate) fn poll_stream(
        &self,
        cx: &mut std::task::Context<'_>,
        direction: Direction,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> std::task::Poll<io::Result<usize>> {
        use std::task::Poll;
        let registered = match self.registration.here() {
            Ok(registered) => registered,
            Err(err) => return Poll::Ready(Err(err)),
        };
        loop {
            match registered.poll_ready(direction, cx) {
                Poll::Ready(Ok(())) => {}
                other => return other.map(|ready| ready.map(|()| 0)),
            }
            match op(&self.io) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => registered.drained(direction),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(moved) => {
                    let short = match direction {
                        Direction::Read => moved > 0 && moved < len,
                        Direction::Write => moved < len,
                    };
                    if short {
                        registered.drained(direction);
                    }
                    return Poll::Ready(Ok(moved));
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// As [`read_with`](Self::read_with), for the write side.
    #[inline]
    pub(crate) fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = deadline(self.write_timeout.get());
        self.registration.here()?.retry(Direction::Write, deadline, || op(&self.io))
    }

    /// As [`write_with`](Self::write_with), waiting until `deadline`
    /// (`None`: for ever) instead of for the write timeout.
    #[cfg(feature = "tls")]
    pub(crate) fn write_by<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.registration.here()?.retry(Direction::Write, deadline, || op(&self.io))
    }

    /// Waits until the socket may be writable, by `deadline` (a connect in
    /// progress completes this way).
    pub(crate) fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.registration.here()?.wait(Direction::Write, deadline)
    }

    /// Waits until the socket may be readable, without keeping the hub from
    /// declaring a deadlock (for a watcher nobody waits for).
    pub(crate) fn wait_readable_in_background(&self) -> io::Result<()> {
        self.registration.here()?.wait_in_background(Direction::Read)
    }

    /// Calls `callback` on the hub once the socket may be readable, or with
    /// `TimedOut` after `timeout`; see `on_readable` on the stream types.
    pub(crate) fn on_readable(
        &self,
        timeout: Option<Duration>,
        callback: Box<dyn FnOnce(io::Result<()>)>,
    ) -> io::Result<()> {
        self.registration.here()?.on_ready(Direction::Read, deadline(timeout), callback)
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }
}

impl<S: AsRawFd> std::fmt::Debug for Socket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("fd", &self.io.as_raw_fd()).finish_non_exhaustive()
    }
}

/// A timeout's deadline, from now.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|timeout| Instant::now() + timeout)
}

/// std's rule: a zero timeout is an error (`None` means none).
fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
    }
    Ok(timeout)
}
