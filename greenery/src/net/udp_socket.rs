use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::addr::{ToSocketAddrs, addr_error, each_addr};
use super::socket::Socket;

/// A UDP socket whose sends and receives park the green thread, not the OS
/// thread ([`std::net::UdpSocket`]'s shape, on the hub).
///
/// ```
/// use greenery::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b_addr = b.local_addr().unwrap();
/// let receiver = greenery::spawn(move || {
///     let mut buf = [0; 16];
///     let (len, from) = b.recv_from(&mut buf).unwrap();
///     (buf[..len].to_vec(), from)
/// });
/// a.send_to(b"ping", b_addr).unwrap();
/// let (datagram, from) = receiver.get().unwrap();
/// assert_eq!(datagram, b"ping");
/// assert_eq!(from, a.local_addr().unwrap());
/// ```
///
/// Timeouts and the one-waiter-per-direction rule are as for
/// [`TcpStream`](super::TcpStream). `Send`, not `Sync`, as a `TcpStream` is.
#[derive(Debug)]
pub struct UdpSocket {
    socket: Socket<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    ///
    /// # Errors
    ///
    /// The last address's error, if none binds; it names the address
    /// (`cannot bind to 127.0.0.1:53: Permission denied (os error 13)`).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |addr| {
            let socket =
                std::net::UdpSocket::bind(addr).map_err(|err| addr_error("cannot bind to", addr, err))?;
            UdpSocket::from_std(socket)
        })
    }

    /// Takes over a std socket: it is made non-blocking and registered with
    /// this thread's hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking or registered.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket { socket: Socket::new(socket)? })
    }

    /// Hands the socket back as a (blocking) std socket, leaving the hub.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made blocking again.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let socket = self.socket.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    /// Sets the default peer of [`send`](Self::send) and the only source
    /// [`recv`](Self::recv) accepts.
    ///
    /// # Errors
    ///
    /// The last address's error, if none works.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |addr| self.socket.get().connect(addr))
    }

    /// Sends `buf` to `addr` (its first address), waiting for room if need
    /// be; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// If `addr` resolves to nothing, or the send fails.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = addr
            .resolve()?
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))?;
        self.socket.write_with(|socket| socket.send_to(buf, addr))
    }

    /// Waits for a datagram and receives it into `buf`; returns its length
    /// and sender.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::recv_from`], or a timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.recv_from(buf))
    }

    /// [`recv_from`](Self::recv_from) without taking the datagram off the
    /// queue.
    ///
    /// # Errors
    ///
    /// As for [`recv_from`](Self::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.peek_from(buf))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// If not connected, or the send fails.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write_with(|socket| socket.send(buf))
    }

    /// Waits for a datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// If not connected, or the receive fails.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.recv(buf))
    }

    /// [`recv`](Self::recv) without taking the datagram off the queue.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.peek(buf))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// If not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get().peer_addr()
    }

    /// A new handle to the same socket, registered on its own.
    ///
    /// # Errors
    ///
    /// If the fd cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket { socket: Socket::new(self.socket.get().try_clone()?)? })
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::set_broadcast`].
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.socket.get().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::broadcast`].
    pub fn broadcast(&self) -> io::Result<bool> {
        self.socket.get().broadcast()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::ttl`].
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.get().ttl()
    }

    /// Joins an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::join_multicast_v4`].
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.socket.get().join_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::join_multicast_v6`].
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.get().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::leave_multicast_v4`].
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.socket.get().leave_multicast_v4(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::leave_multicast_v6`].
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.get().leave_multicast_v6(group, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::set_multicast_loop_v4`].
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.socket.get().set_multicast_loop_v4(on)
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    ///
    /// As for [`std::net::UdpSocket::set_multicast_ttl_v4`].
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.socket.get().set_multicast_ttl_v4(ttl)
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

timeout_methods!(UdpSocket);
fd_traits!(UdpSocket);

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;

    fn try_from(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_std(socket)
    }
}
