use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::socket::Socket;

/// A Unix stream socket whose reads and writes park the green thread
/// ([`std::os::unix::net::UnixStream`]'s shape, on the hub).
///
/// ```
/// use std::io::{Read, Write};
/// use greenery::net::UnixStream;
///
/// let (mut a, b) = UnixStream::pair().unwrap();
/// let echo = greenery::spawn(move || {
///     let mut buf = [0; 4];
///     (&b).read_exact(&mut buf).unwrap();
///     (&b).write_all(&buf).unwrap();
/// });
/// a.write_all(b"ping").unwrap();
/// let mut back = [0; 4];
/// a.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ping");
/// echo.join().unwrap();
/// ```
///
/// Timeouts and the one-waiter-per-direction rule are as for
/// [`TcpStream`](super::TcpStream). `Send`, not `Sync`, as a `TcpStream` is.
#[derive(Debug)]
pub struct UnixStream {
    socket: Socket<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// As `connect(2)` reports.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let stream = mio::net::UnixStream::connect(path)?;
        let stream = UnixStream::register(std::os::unix::net::UnixStream::from(OwnedFd::from(stream)))?;
        // A Unix connect completes at once or reports EAGAIN (a full
        // backlog), in which case the socket becomes writable once accepted.
        stream.socket.write_with(|socket| match socket.take_error()? {
            Some(err) => Err(err),
            None => socket.peer_addr().map(drop).map_err(|err| match err.raw_os_error() {
                Some(libc::ENOTCONN) => io::ErrorKind::WouldBlock.into(),
                _ => err,
            }),
        })?;
        Ok(stream)
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    ///
    /// As `socketpair(2)` reports.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    pub(super) fn register(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { socket: Socket::new(stream)? })
    }

    /// Takes over a std socket: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::register(stream)
    }

    /// Hands the socket back as a (blocking) std socket, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let stream = self.socket.into_inner();
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As `getpeername(2)` reports.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// As `shutdown(2)` reports.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.get().shutdown(how)
    }

    /// A new handle to the same socket, registered on its own.
    ///
    /// # Errors
    ///
    /// If the fd cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        UnixStream::register(self.socket.get().try_clone()?)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    ///
    /// # Errors
    ///
    /// If it cannot be read.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.get().take_error()
    }
}

timeout_methods!(UnixStream);
fd_traits!(UnixStream);
stream_io!(UnixStream);
on_readable_method!(UnixStream, "let (a, mut b) = greenery::net::UnixStream::pair().unwrap();");

impl TryFrom<std::os::unix::net::UnixStream> for UnixStream {
    type Error = io::Error;

    fn try_from(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_std(stream)
    }
}
