use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::UnixStream;
use super::addr::addr_error;
use super::socket::Socket;

/// A Unix socket listening for connections; [`accept`](Self::accept) parks
/// the green thread ([`std::os::unix::net::UnixListener`]'s shape, on the
/// hub).
///
/// ```
/// use std::io::{Read, Write};
/// use greenery::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("greenery-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("listener.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let server = greenery::spawn(move || {
///     let (mut stream, _) = listener.accept().unwrap();
///     stream.write_all(b"hello").unwrap();
/// });
/// let mut reply = String::new();
/// UnixStream::connect(&path).unwrap().read_to_string(&mut reply).unwrap();
/// assert_eq!(reply, "hello");
/// server.join().unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// `Send`, like [`UnixStream`].
#[derive(Debug)]
pub struct UnixListener {
    socket: Socket<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` and listens.
    ///
    /// # Errors
    ///
    /// As `bind(2)` reports (`AddrInUse` if the path exists), naming the
    /// path: `cannot listen on /run/app.sock: Address already in use (os
    /// error 98)`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let listener = mio::net::UnixListener::bind(path)
            .map_err(|err| addr_error("cannot listen on", path.display(), err))?;
        Ok(UnixListener { socket: Socket::new(listener)? })
    }

    /// Takes over a std listener: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener { socket: Socket::new(mio::net::UnixListener::from_std(listener))? })
    }

    /// Hands the socket back as a (blocking) std listener, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let listener = std::os::unix::net::UnixListener::from(OwnedFd::from(self.socket.into_inner()));
        listener.set_nonblocking(false)?;
        Ok(listener)
    }

    /// Waits for a connection and accepts it.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports (`EMFILE` included).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.socket.read_with(mio::net::UnixListener::accept)?;
        let stream = std::os::unix::net::UnixStream::from(OwnedFd::from(stream));
        Ok((UnixStream::register(stream)?, addr))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// A new handle to the same socket, registered on its own.
    ///
    /// # Errors
    ///
    /// If the fd cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let fd = self.socket.get().as_fd().try_clone_to_owned()?;
        Ok(UnixListener { socket: Socket::new(mio::net::UnixListener::from(fd))? })
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

/// The connections a [`UnixListener`] accepts; it never ends.
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

fd_traits!(UnixListener);
