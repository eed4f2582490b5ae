use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::addr::addr_error;
use super::socket::Socket;

/// A Unix datagram socket whose sends and receives park the green thread
/// ([`std::os::unix::net::UnixDatagram`]'s shape, on the hub).
///
/// ```
/// use greenery::net::UnixDatagram;
///
/// let (a, b) = UnixDatagram::pair().unwrap();
/// let receiver = greenery::spawn(move || {
///     let mut buf = [0; 8];
///     let len = b.recv(&mut buf).unwrap();
///     buf[..len].to_vec()
/// });
/// a.send(b"hi").unwrap();
/// assert_eq!(receiver.get().unwrap(), b"hi");
/// ```
///
/// `Send`, not `Sync`, like the other sockets.
#[derive(Debug)]
pub struct UnixDatagram {
    socket: Socket<std::os::unix::net::UnixDatagram>,
}

impl UnixDatagram {
    /// Binds to `path`.
    ///
    /// # Errors
    ///
    /// As `bind(2)` reports, naming the path (`cannot bind to
    /// /run/app.sock: Address already in use (os error 98)`).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let socket = std::os::unix::net::UnixDatagram::bind(path)
            .map_err(|err| addr_error("cannot bind to", path.display(), err))?;
        UnixDatagram::from_std(socket)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    ///
    /// As `socket(2)` reports.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    ///
    /// As `socketpair(2)` reports.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Takes over a std socket: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram { socket: Socket::new(socket)? })
    }

    /// Hands the socket back as a (blocking) std socket, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        let socket = self.socket.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    /// Connects to the socket at `path`: the default peer of `send`.
    ///
    /// # Errors
    ///
    /// As `connect(2)` reports.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.socket.get().connect(path)
    }

    /// Sends `buf` to the socket at `path`.
    ///
    /// # Errors
    ///
    /// As `sendto(2)` reports, or a timeout.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.socket.write_with(|socket| socket.send_to(buf, path))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// As `send(2)` reports, or a timeout.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write_with(|socket| socket.send(buf))
    }

    /// Waits for a datagram; returns its length and sender.
    ///
    /// # Errors
    ///
    /// As `recvfrom(2)` reports, or a timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.recv_from(buf))
    }

    /// Waits for a datagram; returns its length.
    ///
    /// # Errors
    ///
    /// As `recv(2)` reports, or a timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.recv(buf))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// The connected peer's address.
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
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram { socket: Socket::new(self.socket.get().try_clone()?)? })
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

timeout_methods!(UnixDatagram);
fd_traits!(UnixDatagram);
