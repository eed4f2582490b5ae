use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::TcpStream;
use super::addr::{ToSocketAddrs, each_addr};
use super::socket::Socket;

/// A TCP socket listening for connections; [`accept`](Self::accept) parks
/// the green thread until one comes ([`std::net::TcpListener`]'s shape, on
/// the hub).
///
/// ```
/// use std::io::{Read, Write};
/// use greenery::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenery::spawn(move || {
///     // One green thread per connection.
///     for stream in listener.incoming().take(3) {
///         let mut stream = stream.unwrap();
///         greenery::spawn(move || stream.write_all(b"hi").unwrap());
///     }
/// });
/// for _ in 0..3 {
///     let mut reply = String::new();
///     TcpStream::connect(addr).unwrap().read_to_string(&mut reply).unwrap();
///     assert_eq!(reply, "hi");
/// }
/// server.join().unwrap();
/// ```
///
/// Accepted streams are non-blocking and registered with this thread's hub.
/// `!Send`, like [`TcpStream`].
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works), with
    /// `SO_REUSEADDR` as std does, and listens.
    ///
    /// # Errors
    ///
    /// The last address's error, if none binds.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |addr| TcpListener::register(mio::net::TcpListener::bind(addr)?))
    }

    fn register(listener: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { socket: Socket::new(listener)? })
    }

    /// Takes over a std listener: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::register(mio::net::TcpListener::from_std(listener))
    }

    /// Hands the socket back as a (blocking) std listener, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::from(OwnedFd::from(self.socket.into_inner()));
        listener.set_nonblocking(false)?;
        Ok(listener)
    }

    /// Waits for a connection and accepts it.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports. Running out of file descriptors (`EMFILE`,
    /// `ENFILE`) is an error here, as in std; a server should back off and
    /// try again.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.socket.read_with(mio::net::TcpListener::accept)?;
        let stream = std::net::TcpStream::from(OwnedFd::from(stream));
        Ok((TcpStream::register(stream)?, addr))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address (with the port the system chose, if bound to 0).
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// A new handle to the same socket, registered on its own.
    ///
    /// # Errors
    ///
    /// If the fd cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let fd = self.socket.get().as_fd().try_clone_to_owned()?;
        TcpListener::register(mio::net::TcpListener::from(fd))
    }

    /// Sets the IP time-to-live of accepted connections.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpListener::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpListener::ttl`].
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.get().ttl()
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

/// The connections a [`TcpListener`] accepts, from
/// [`incoming`](TcpListener::incoming); it never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

fd_traits!(TcpListener);

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;

    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(listener)
    }
}
