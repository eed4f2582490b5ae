use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use super::TcpStream;
use super::addr::{ToSocketAddrs, addr_error, each_addr};
use super::socket::Socket;

/// The listen backlog that [`TcpListener::bind`] asks for: the system's
/// maximum, `net.core.somaxconn` (read once from
/// `/proc/sys/net/core/somaxconn`; 4096 on Linux 5.4 and later), or
/// `SOMAXCONN` where that cannot be read.
///
/// The backlog is the queue of connections the kernel has accepted on the
/// listener's behalf and that wait for [`accept`](TcpListener::accept): when
/// it is full, a new connection's SYN is dropped and the client retries a
/// second or more later. A server that accepts in bursts (thousands of
/// clients connecting at once) wants it long.
///
/// ```
/// assert!(greenery::net::default_backlog() >= 128);
/// ```
pub fn default_backlog() -> u32 {
    static BACKLOG: OnceLock<u32> = OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|&backlog| backlog > 0)
            .unwrap_or(libc::SOMAXCONN as u32)
    })
}

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
/// `Send`, like [`TcpStream`]: moved to another thread, it accepts there
/// on that thread's hub.
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works), with
    /// `SO_REUSEADDR` as std does, and listens with the system's longest
    /// backlog ([`default_backlog`]; std's listeners ask for 128).
    ///
    /// # Errors
    ///
    /// The last address's error, if none binds; it names the address:
    /// `cannot listen on 127.0.0.1:8080: Address already in use (os error
    /// 98)`, with the system error's kind (`AddrInUse`) and the system error
    /// as its source.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |addr| {
            let bound = mio::net::TcpListener::bind(addr).and_then(|listener| {
                listen(&listener, default_backlog())?;
                Ok(listener)
            });
            TcpListener::register(bound.map_err(|err| addr_error("cannot listen on", addr, err))?)
        })
    }

    /// As [`bind`](Self::bind), with `SO_REUSEPORT` as well: several
    /// listeners (one per hub, on as many OS threads) may bind the same
    /// address, and the kernel spreads new connections over them. This is
    /// how a server uses several cores (see
    /// [`ServerThreads`](super::ServerThreads)): one listener shared by
    /// several hubs would hand each connection to whichever hub wakes
    /// first, which balances badly (one hub can take them all).
    ///
    /// Every listener on the address must set `SO_REUSEPORT`, and belong to
    /// the same user.
    ///
    /// ```
    /// use greenery::net::TcpListener;
    ///
    /// let first = TcpListener::bind_reuse_port("127.0.0.1:0").unwrap();
    /// let addr = first.local_addr().unwrap();
    /// let second = TcpListener::bind_reuse_port(addr).unwrap(); // the same port
    /// assert_eq!(second.local_addr().unwrap(), addr);
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`bind`](Self::bind); also if the address is bound without
    /// `SO_REUSEPORT` by another socket.
    pub fn bind_reuse_port<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |addr| {
            let bound = reuse_port_listener(addr).and_then(|listener| {
                listen(&listener, default_backlog())?;
                Ok(listener)
            });
            TcpListener::register(bound.map_err(|err| addr_error("cannot listen on", addr, err))?)
        })
    }

    /// Sets the listen backlog: how many connections the kernel holds for
    /// [`accept`](Self::accept) before it drops new ones (`listen(2)` again,
    /// which Linux allows on a listening socket). The kernel caps it at
    /// `net.core.somaxconn`.
    ///
    /// ```
    /// let listener = greenery::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// listener.set_backlog(64).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// What `listen(2)` reports.
    pub fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        listen(self.socket.get(), backlog)
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

/// `listen(2)` on `listener` with `backlog` (capped at `c_int::MAX`; the
/// kernel caps it further).
/// A non-blocking TCP socket bound to `addr` with `SO_REUSEADDR` and
/// `SO_REUSEPORT`, not yet listening.
fn reuse_port_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket(2) takes plain integers; the new fd is owned at once.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: setsockopt reads the `c_int` we pass, of the size we say,
        // for an fd `socket` keeps open.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (storage, len) = super::addr::to_sockaddr(addr);
    // SAFETY: bind reads `len` bytes of the address we built, for an fd
    // `socket` keeps open.
    if unsafe { libc::bind(socket.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(mio::net::TcpListener::from_std(std::net::TcpListener::from(socket)))
}

fn listen(listener: &mio::net::TcpListener, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen(2) takes an fd, which `listener` owns and keeps open
    // for the call, and an integer.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fd_traits!(TcpListener);

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;

    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(listener)
    }
}
