use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::addr::{ToSocketAddrs, each_addr};
use super::socket::{Socket, deadline};

/// A TCP connection whose reads and writes park the green thread, not the
/// OS thread: [`std::net::TcpStream`]'s shape, on the hub.
///
/// ```
/// use std::io::{Read, Write};
/// use greenery::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenery::spawn(move || {
///     let (mut stream, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     stream.read_exact(&mut buf).unwrap();
///     stream.write_all(&buf).unwrap(); // echo
/// });
/// let mut client = TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut echoed = [0; 5];
/// client.read_exact(&mut echoed).unwrap();
/// assert_eq!(&echoed, b"hello");
/// server.join().unwrap();
/// ```
///
/// Read and write timeouts ([`set_read_timeout`](Self::set_read_timeout))
/// make a call that waits longer fail with [`io::ErrorKind::TimedOut`]. Only
/// one green thread may wait to read (and one to write) at a time; another
/// gets [`io::ErrorKind::ResourceBusy`]. Clones from
/// [`try_clone`](Self::try_clone) are separate registrations, so one green
/// thread may read a clone while another writes the original.
///
/// `Send`, not `Sync`: the socket is registered with the hub of the thread
/// that uses it. Moved to another thread, it registers with that thread's
/// hub on its first read, write or wait there, and leaves the old one (a
/// callback of [`on_readable`](Self::on_readable) still pending on the old
/// hub is called there with `NotConnected`). Each thread must have its own
/// hub running for its waits to end: any thread does, as soon as it uses
/// greenery.
///
/// ```
/// use std::io::{Read, Write};
/// use greenery::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let (mut served, _) = listener.accept().unwrap();
/// client.write_all(b"ping").unwrap();
/// // The accepted connection goes on on another thread's hub.
/// let server = std::thread::spawn(move || {
///     let mut ping = [0; 4];
///     served.read_exact(&mut ping).unwrap();
///     served.write_all(b"pong").unwrap();
/// });
/// let mut pong = [0; 4];
/// client.read_exact(&mut pong).unwrap();
/// assert_eq!(&pong, b"pong");
/// server.join().unwrap();
/// ```
#[derive(Debug)]
pub struct TcpStream {
    socket: Socket<std::net::TcpStream>,
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to in
    /// turn (a host name is resolved without blocking the hub).
    ///
    /// # Errors
    ///
    /// The last address's error, if none connects.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |addr| TcpStream::connect_by(addr, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout`
    /// ([`io::ErrorKind::TimedOut`]).
    ///
    /// # Errors
    ///
    /// If the connection fails or the time runs out; `InvalidInput` for a
    /// zero timeout.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::connect_by(*addr, deadline(Some(timeout)))
    }

    fn connect_by(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let stream = mio::net::TcpStream::connect(addr)?;
        let stream = TcpStream::register(std::net::TcpStream::from(OwnedFd::from(stream)))?;
        loop {
            // A non-blocking connect reports completion as writability.
            stream.socket.wait_writable(deadline)?;
            if let Some(err) = stream.take_error()? {
                return Err(err);
            }
            match stream.peer_addr() {
                Ok(_) => return Ok(stream),
                Err(err) if err.raw_os_error() == Some(libc::ENOTCONN) => {} // not yet
                Err(err) => return Err(err),
            }
        }
    }

    /// The registered socket, for the TLS stream on top of this one.
    #[cfg(feature = "tls")]
    pub(super) fn socket(&self) -> &Socket<std::net::TcpStream> {
        &self.socket
    }

    /// Registers a non-blocking stream with the hub.
    pub(super) fn register(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { socket: Socket::new(stream)? })
    }

    /// Takes over a std stream: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::register(stream)
    }

    /// Hands the socket back as a (blocking) std stream, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let stream = self.socket.into_inner();
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// Reads into `buf` without consuming the data (`MSG_PEEK`), waiting
    /// for some if there is none.
    ///
    /// # Errors
    ///
    /// As for [`Read::read`](std::io::Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|stream| stream.peek(buf))
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// If the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.get().shutdown(how)
    }

    /// A new handle to the same socket, registered on its own (see the type's
    /// documentation). Timeouts are not copied.
    ///
    /// # Errors
    ///
    /// If the fd cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        TcpStream::register(self.socket.get().try_clone()?)
    }

    /// Sets `TCP_NODELAY`: send small writes at once instead of coalescing
    /// them (Nagle's algorithm off).
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::set_nodelay`].
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.get().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::nodelay`].
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.get().nodelay()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::ttl`].
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

timeout_methods!(TcpStream);
fd_traits!(TcpStream);
stream_io!(TcpStream);
on_readable_method!(
    TcpStream,
    "let listener = greenery::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
     let mut b = greenery::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();\n\
     let (a, _) = listener.accept().unwrap();"
);

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;

    fn try_from(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(stream)
    }
}
