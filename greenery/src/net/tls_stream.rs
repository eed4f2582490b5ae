//! [`TlsStream`]: TLS (rustls) over a [`TcpStream`], with the same blocking
//! shape.
//!
//! # Protocol
//!
//! The rustls session holds the TLS state and the TCP stream carries its
//! records. The session sits in a `RefCell` that is borrowed only for steps
//! that do not block (take what the socket has into the session, decrypt,
//! encrypt, put records on the socket as far as it takes them), never across
//! a park. So, as with a [`TcpStream`], one green thread may read while
//! another writes.
//!
//! - **Reading.** A read returns plaintext the session holds; with none, it
//!   reads what the socket has into the session (parking until it has
//!   something), processes it, and tries again.
//! - **Writing.** A write gives plaintext to the session, which encrypts it
//!   into records, and sends every record the session holds before it
//!   returns: a write that returned is on its way, as with a TCP stream.
//! - **Sending.** One green thread at a time sends (a green
//!   [`Mutex`]), so records go out in order and only one green thread waits
//!   for the socket to take them. A sender sends until the session holds no
//!   record, those queued meanwhile by others included. A reader with
//!   something to send (a handshake message, an alert, an answer to a key
//!   update) sends it only if nobody else is sending (whoever is will send
//!   it too): a reader never waits behind a writer stuck on a peer that
//!   does not read, the classic TLS deadlock.
//! - **Handshake.** [`accept`](TlsStream::accept) and
//!   [`connect`](TlsStream::connect) complete it within a timeout;
//!   [`new_server`](TlsStream::new_server) and
//!   [`new_client`](TlsStream::new_client) leave it to
//!   [`handshake`](TlsStream::handshake), or to the first read or write.
//! - **Deadlines.** A read timeout bounds a whole read, however many records
//!   (or pieces of one) it takes: a peer that trickles a record byte by
//!   byte cannot stretch it. Likewise the write timeout for a write, and a
//!   handshake's timeout for the whole handshake.
//! - **Closing.** [`shutdown`](TlsStream::shutdown) of the write side sends
//!   `close_notify` first. A peer that closes without one ends reads with
//!   [`UnexpectedEof`](io::ErrorKind::UnexpectedEof): a truncated stream is
//!   not a clean end. Dropping the stream closes the socket without a
//!   `close_notify`.
//! - **Idle.** [`on_readable`](TlsStream::on_readable) waits for the socket
//!   without a green thread, as [`TcpStream::on_readable`] does; the
//!   session's state (some kilobytes in rustls) stays.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::TcpStream;
use super::socket::deadline;
use crate::sync::Mutex;

/// What rustls reads from the socket at a time: a read that gets fewer
/// bytes found the socket drained.
const READ_SIZE: usize = 4096;

/// A TLS connection over a [`TcpStream`] whose reads and writes park the
/// green thread, not the OS thread: the client or server side of a rustls
/// session, read and written with [`Read`] and [`Write`] (rustls'
/// `StreamOwned`, on the hub). With the `tls` feature.
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use greenery::net::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
/// use greenery::net::{TcpListener, TcpStream, TlsStream};
///
/// // A certificate for "localhost", made for the example.
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
/// let server_config = ServerConfig::builder_with_provider(provider.clone())
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_no_client_auth()
///     .with_single_cert(vec![cert.cert.der().clone()], cert.signing_key.serialize_der().try_into().unwrap())
///     .unwrap();
/// let mut roots = RootCertStore::empty();
/// roots.add(cert.cert.der().clone()).unwrap();
/// let client_config = ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(roots)
///     .with_no_client_auth();
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenery::spawn(move || {
///     let (stream, _) = listener.accept().unwrap();
///     let mut tls = TlsStream::accept(stream, Arc::new(server_config), Duration::from_secs(10)).unwrap();
///     let mut buf = [0; 5];
///     tls.read_exact(&mut buf).unwrap();
///     tls.write_all(&buf).unwrap(); // echo
/// });
/// let stream = TcpStream::connect(addr).unwrap();
/// let mut client = TlsStream::connect(stream, Arc::new(client_config), "localhost", Duration::from_secs(10)).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut echoed = [0; 5];
/// client.read_exact(&mut echoed).unwrap();
/// assert_eq!(&echoed, b"hello");
/// server.join().unwrap();
/// ```
///
/// Errors of the TLS protocol (a bad certificate, a corrupt record, a
/// handshake the peer gives up) are [`io::ErrorKind::InvalidData`] errors
/// wrapping rustls' [`Error`](rustls::Error). See the module source's
/// protocol notes for how reads and writes share the session.
///
/// `!Send`, unlike the [`TcpStream`] under it: the lock that lets one green
/// thread at a time send the session's records is a green-thread lock of its
/// hub. A TLS connection stays with the thread that made it.
pub struct TlsStream {
    tcp: TcpStream,
    session: RefCell<Connection>,
    /// Held by the green thread that sends the session's records.
    sending: Mutex<()>,
}

impl TlsStream {
    /// The server side of a TLS connection on `stream`, its handshake done
    /// within `timeout` (a client that stalls is cut off).
    ///
    /// # Errors
    ///
    /// `TimedOut` when the handshake takes longer; `InvalidData` when it
    /// fails (the client's hello is not TLS, or it offers nothing in common
    /// with `config`); `UnexpectedEof` when the client closes during it.
    pub fn accept(stream: TcpStream, config: Arc<ServerConfig>, timeout: Duration) -> io::Result<TlsStream> {
        let tls = TlsStream::new_server(stream, config)?;
        tls.handshake(timeout)?;
        Ok(tls)
    }

    /// The client side of a TLS connection on `stream` to the server named
    /// `server_name` (a DNS name or an IP address, which its certificate
    /// must name), its handshake done within `timeout`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `server_name` is neither a DNS name nor an IP
    /// address; otherwise as for [`accept`](Self::accept) (a certificate
    /// that is not trusted fails the handshake with `InvalidData`).
    pub fn connect(
        stream: TcpStream,
        config: Arc<ClientConfig>,
        server_name: &str,
        timeout: Duration,
    ) -> io::Result<TlsStream> {
        let tls = TlsStream::new_client(stream, config, server_name)?;
        tls.handshake(timeout)?;
        Ok(tls)
    }

    /// The server side of a TLS connection on `stream`, its handshake not
    /// started: [`handshake`](Self::handshake) does it, or else the first
    /// read or write (within the stream's timeouts).
    ///
    /// # Errors
    ///
    /// If rustls cannot make a session with `config`.
    pub fn new_server(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config).map_err(tls_error)?;
        Ok(TlsStream::wrap(stream, session.into()))
    }

    /// The client side of a TLS connection on `stream`, its handshake not
    /// started (see [`new_server`](Self::new_server)).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `server_name` is neither a DNS name nor an IP
    /// address; if rustls cannot make a session with `config`.
    pub fn new_client(
        stream: TcpStream,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{server_name:?} is neither a DNS name nor an IP address, as a TLS server name must be"
                ),
            )
        })?;
        let session = ClientConnection::new(config, name).map_err(tls_error)?;
        Ok(TlsStream::wrap(stream, session.into()))
    }

    fn wrap(tcp: TcpStream, session: Connection) -> TlsStream {
        TlsStream { tcp, session: RefCell::new(session), sending: Mutex::new(()) }
    }

    /// Completes the handshake within `timeout` (at once if it is done).
    ///
    /// # Errors
    ///
    /// As for [`accept`](Self::accept).
    pub fn handshake(&self, timeout: Duration) -> io::Result<()> {
        self.handshake_by(Some(Instant::now() + timeout))
    }

    /// Whether the handshake is still to be done (or under way).
    pub fn is_handshaking(&self) -> bool {
        self.session.borrow().is_handshaking()
    }

    /// The application protocol agreed with ALPN during the handshake, such
    /// as `b"http/1.1"`.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session.borrow().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// Calls `f` with the rustls session, for what the other accessors do
    /// not cover (the protocol version, the cipher suite, the peer's
    /// certificates, the server name a client asked for).
    ///
    /// # Panics
    ///
    /// If `f` reads or writes this stream.
    pub fn with_session<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.session.borrow())
    }

    /// The TCP stream under the TLS: its address, options and timeouts.
    /// Reading or writing it directly corrupts the TLS stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// If the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Sets how long a read may wait in all before failing with
    /// [`TimedOut`](io::ErrorKind::TimedOut); `None` (the default) waits
    /// for ever. It bounds the whole read, however many records it takes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    /// How long a read may wait (`None`: for ever).
    ///
    /// # Errors
    ///
    /// Never; a `Result` for std's signature.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp.read_timeout()
    }

    /// Sets how long a write (or a flush) may wait in all before failing
    /// with [`TimedOut`](io::ErrorKind::TimedOut); `None` (the default)
    /// waits for ever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }

    /// How long a write may wait (`None`: for ever).
    ///
    /// # Errors
    ///
    /// Never; a `Result` for std's signature.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp.write_timeout()
    }

    /// Shuts down the read half, the write half, or both. Shutting the
    /// write half sends `close_notify` first (waiting for the socket within
    /// the write timeout), so that the peer reads a clean end; `Both`
    /// sends it only if the socket takes it at once.
    ///
    /// # Errors
    ///
    /// If sending `close_notify` fails; as for
    /// [`std::net::TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match how {
            Shutdown::Write => {
                self.session.borrow_mut().send_close_notify();
                self.send(deadline(self.tcp.write_timeout()?))?;
            }
            Shutdown::Both => {
                self.session.borrow_mut().send_close_notify();
                let _ = self.send_unless_busy(Some(Instant::now()));
            }
            Shutdown::Read => {}
        }
        self.tcp.shutdown(how)
    }

    /// Calls `callback` once the stream may be readable (plaintext the
    /// session holds, data on the socket, its end, or an error to read),
    /// with `Err(TimedOut)` if `timeout` passes first, or
    /// `Err(NotConnected)` if the stream is dropped first: a wait that holds
    /// no green thread (see [`TcpStream::on_readable`], whose rules it
    /// follows).
    ///
    /// # Errors
    ///
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) when a green thread or
    /// another callback already waits to read the stream.
    pub fn on_readable(
        &self,
        timeout: Option<Duration>,
        callback: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        if self.has_something_to_read() {
            crate::hub::call_soon(Box::new(move || callback(Ok(()))));
            return Ok(());
        }
        self.tcp.on_readable(timeout, callback)
    }

    /// Whether a read would return at once from what the session holds.
    fn has_something_to_read(&self) -> bool {
        match self.session.borrow_mut().process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true, // the read reports it
        }
    }

    fn handshake_by(&self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            self.send(deadline)?;
            if !self.is_handshaking() {
                return Ok(());
            }
            if self.receive(deadline)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
    }

    /// Reads what the socket has into the session (parking until it has
    /// something, or `deadline` passes) and processes it: the number of
    /// bytes read, 0 at the end of the stream.
    fn receive(&self, deadline: Option<Instant>) -> io::Result<usize> {
        let read = self.tcp.socket().read_stream_by(deadline, READ_SIZE, |socket| {
            let mut socket = socket;
            self.session.borrow_mut().read_tls(&mut socket)
        })?;
        let processed = self.session.borrow_mut().process_new_packets();
        if let Err(err) = processed {
            // The session has queued an alert telling the peer why: send it
            // if the socket takes it now.
            let _ = self.send_unless_busy(Some(Instant::now()));
            return Err(tls_error(err));
        }
        Ok(read)
    }

    /// Sends every record the session holds, waiting (until `deadline`) for
    /// the socket to take them and for another sender to finish.
    fn send(&self, deadline: Option<Instant>) -> io::Result<()> {
        if !self.session.borrow().wants_write() {
            return Ok(());
        }
        let _sending = match deadline {
            None => self.sending.lock().map_err(io::Error::other)?,
            Some(deadline) => {
                let timeout = deadline.saturating_duration_since(Instant::now());
                let locked = if timeout.is_zero() {
                    self.sending.try_lock()
                } else {
                    self.sending.lock_timeout(timeout).map_err(io::Error::other)?
                };
                locked.ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?
            }
        };
        self.send_locked(deadline)
    }

    /// Sends every record the session holds, unless another green thread
    /// is sending (it sends them too).
    fn send_unless_busy(&self, deadline: Option<Instant>) -> io::Result<()> {
        if !self.session.borrow().wants_write() {
            return Ok(());
        }
        match self.sending.try_lock() {
            Some(_sending) => self.send_locked(deadline),
            None => Ok(()),
        }
    }

    /// [`send`](Self::send)'s loop, with the sending lock held.
    fn send_locked(&self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            let sent = self.tcp.socket().write_by(deadline, |socket| {
                let mut session = self.session.borrow_mut();
                if !session.wants_write() {
                    return Ok(None);
                }
                let mut socket = socket;
                session.write_tls(&mut socket).map(Some)
            })?;
            match sent {
                None => return Ok(()),
                Some(0) => return Err(io::ErrorKind::WriteZero.into()),
                Some(_) => {}
            }
        }
    }
}

impl Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = deadline(self.tcp.read_timeout()?);
        if self.is_handshaking() {
            self.handshake_by(deadline)?;
        }
        loop {
            match self.session.borrow_mut().reader().read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // Plaintext, `Ok(0)` after the peer's `close_notify`, or
                // `UnexpectedEof` after an end without one.
                done => return done,
            }
            self.send_unless_busy(deadline)?;
            self.receive(deadline)?;
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = deadline(self.tcp.write_timeout()?);
        if self.is_handshaking() {
            self.handshake_by(deadline)?;
        }
        let written = self.session.borrow_mut().writer().write(buf)?;
        self.send(deadline)?;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send(deadline(self.tcp.write_timeout()?))
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.session.try_borrow();
        let side = match session.as_deref() {
            Ok(Connection::Client(_)) => "client",
            Ok(Connection::Server(_)) => "server",
            Err(_) => "?",
        };
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("side", &side)
            .field("handshaking", &session.as_ref().map(|session| session.is_handshaking()).ok())
            .finish_non_exhaustive()
    }
}

/// A rustls error as an `InvalidData` I/O error.
pub(super) fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}
