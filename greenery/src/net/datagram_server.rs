use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::hub::{Deadlock, JoinHandle};
use crate::sync::{Event, Group};

use super::UdpSocket;
use super::addr::ToSocketAddrs;

/// A datagram handler: the socket to answer on, the datagram, its sender.
type Handler = Rc<dyn Fn(&UdpSocket, &[u8], SocketAddr)>;

/// The largest datagram the server receives whole (a UDP payload's limit).
const MAX_DATAGRAM: usize = 65_535;

/// A UDP server: receives datagrams and runs a handler for each in a green
/// thread of its own, with the socket to answer on (gevent's
/// `DatagramServer`).
///
/// ```
/// use std::time::Duration;
/// use greenery::net::{DatagramServer, UdpSocket};
///
/// let server = DatagramServer::bind("127.0.0.1:0", |socket: &UdpSocket, data: &[u8], peer| {
///     let _ = socket.send_to(&data.to_ascii_uppercase(), peer); // reply
/// })
/// .unwrap();
/// server.start().unwrap();
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"shout", server.local_addr()).unwrap();
/// let mut buf = [0; 16];
/// let (len, _) = client.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..len], b"SHOUT");
/// server.stop(Duration::from_secs(1)).unwrap();
/// ```
///
/// A handler that panics is reported and the server goes on.
/// [`stop`](Self::stop) stops receiving, waits for running handlers up to a
/// timeout and kills the rest; dropping a server that was not stopped stops
/// its receiving and leaves running handlers to finish. `!Send`.
pub struct DatagramServer {
    socket: Rc<UdpSocket>,
    addr: SocketAddr,
    handler: Handler,
    handlers: Group,
    receiver: RefCell<Option<JoinHandle<()>>>,
    state: Cell<u8>,
    stopped: Event,
}

const READY: u8 = 0;
const SERVING: u8 = 1;
const STOPPED: u8 = 2;

impl DatagramServer {
    /// A server on `socket`, calling `handler` with the socket, each
    /// datagram and its sender. It does not receive until
    /// [`start`](Self::start)ed.
    ///
    /// # Errors
    ///
    /// If the socket's address cannot be read.
    pub fn new(
        socket: UdpSocket,
        handler: impl Fn(&UdpSocket, &[u8], SocketAddr) + 'static,
    ) -> io::Result<DatagramServer> {
        Ok(DatagramServer {
            addr: socket.local_addr()?,
            socket: Rc::new(socket),
            handler: Rc::new(handler),
            handlers: Group::new(),
            receiver: RefCell::new(None),
            state: Cell::new(READY),
            stopped: Event::new(),
        })
    }

    /// Binds a socket to `addr` and makes a server on it.
    ///
    /// # Errors
    ///
    /// If binding fails; the error names the address (`cannot bind to
    /// 127.0.0.1:53: Permission denied (os error 13)`).
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(&UdpSocket, &[u8], SocketAddr) + 'static,
    ) -> io::Result<DatagramServer> {
        DatagramServer::new(UdpSocket::bind(addr)?, handler)
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts receiving, in a green thread. Returns at once.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the server was started before.
    pub fn start(&self) -> io::Result<()> {
        if self.state.get() != READY {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the server was already started"));
        }
        self.state.set(SERVING);
        let (socket, handler, handlers) = (self.socket.clone(), self.handler.clone(), self.handlers.clone());
        let name = format!("DatagramServer on {}", self.addr);
        *self.receiver.borrow_mut() = Some(crate::spawn(move || {
            let mut buf = vec![0; MAX_DATAGRAM];
            let mut reported = false;
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((len, peer)) => {
                        reported = false;
                        let (socket, handler, data) = (socket.clone(), handler.clone(), buf[..len].to_vec());
                        handlers.spawn(move || handler(&socket, &data, peer));
                    }
                    Err(err) => {
                        if !reported {
                            crate::unwind::report_message(&name, &format!("receive failed: {err}; retrying"));
                            reported = true;
                        }
                        crate::sleep(Duration::from_millis(10));
                    }
                }
            }
        }));
        Ok(())
    }

    /// Starts (if need be) and blocks until the server is stopped.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] (as an `io::Error`) if nothing could ever stop it.
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.state.get() == READY {
            self.start()?;
        }
        self.stopped.wait().map_err(io::Error::other)
    }

    /// Stops receiving, waits up to `timeout` for the running handlers, then
    /// kills the rest. Stopping a stopped server does nothing.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if a killed handler cannot die.
    pub fn stop(&self, timeout: Duration) -> Result<(), Deadlock> {
        if self.state.replace(STOPPED) == STOPPED {
            return Ok(());
        }
        if let Some(receiver) = self.receiver.borrow_mut().take() {
            receiver.kill()?;
        }
        if !self.handlers.join_timeout(timeout)? {
            self.handlers.kill()?;
        }
        self.stopped.set();
        Ok(())
    }
}

impl Drop for DatagramServer {
    fn drop(&mut self) {
        if let Some(receiver) = self.receiver.get_mut().take() {
            receiver.kill_async();
        }
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("addr", &self.addr)
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}
