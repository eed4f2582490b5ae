//! Connections handed over: after `101 Switching Protocols` (WebSocket and
//! other upgrades) or a `2xx` answer to `CONNECT` (a tunnel), the handler's
//! [`ResponseBody::upgrade`](crate::ResponseBody::upgrade) closure gets the
//! connection as an [`Upgraded`] stream, in the connection's green thread.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use crate::conn::Conn;

/// What takes an upgraded connection over.
pub(crate) type UpgradeFn = Box<dyn FnOnce(Upgraded)>;

/// A connection taken over after `101 Switching Protocols` or a `2xx`
/// answer to `CONNECT`: a plain blocking byte stream (TLS included, on an
/// HTTPS server), [`Read`] and [`Write`], as hyper's `Upgraded` is for
/// async code.
///
/// Reads return first any bytes the server had already read past the
/// request's head (a client may send its first WebSocket frames, or the
/// start of a tunnelled TLS handshake, right behind the request), then what
/// the connection brings.
///
/// The server no longer times the connection: no keep-alive, head or body
/// timeout applies, and reads and writes wait for ever unless
/// [`set_read_timeout`](Self::set_read_timeout) or
/// [`set_write_timeout`](Self::set_write_timeout) says otherwise. It still
/// counts among the server's [`connections`](crate::Server::connections),
/// and a stop waits for it like a request in flight (then kills its green
/// thread at the stop's timeout). It closes when the closure that took it
/// over returns (over TLS with a `close_notify`), or, if the closure left
/// clones of it elsewhere, when the last is dropped.
///
/// Clones are handles to the same connection (the bytes already read
/// included): as with a [`TcpStream`](greenery::net::TcpStream) and its
/// `try_clone`, one green thread may read while another writes. The
/// connection closes when the last handle is dropped.
///
/// ```
/// use std::io::{Read, Write};
/// use greenery_http::http::{Request, Response, StatusCode, header};
/// use greenery_http::{Body, ResponseBody, Server, Upgraded};
///
/// // A toy protocol after `Upgrade: echo`: every byte comes back.
/// let server = Server::bind("127.0.0.1:0", |_request: Request<Body>| {
///     Response::builder()
///         .status(StatusCode::SWITCHING_PROTOCOLS)
///         .header(header::UPGRADE, "echo")
///         .body(ResponseBody::upgrade(|mut stream: Upgraded| {
///             let mut buf = [0; 1024];
///             while let Ok(n @ 1..) = stream.read(&mut buf) {
///                 if stream.write_all(&buf[..n]).is_err() {
///                     break;
///                 }
///             }
///         }))
///         .unwrap()
/// })
/// .unwrap();
/// server.start().unwrap();
/// let mut client = greenery::net::TcpStream::connect(server.local_addr()).unwrap();
/// client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nping").unwrap();
/// let mut head = [0; 1024];
/// let n = client.read(&mut head).unwrap();
/// let text = String::from_utf8_lossy(&head[..n]).into_owned();
/// assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{text}");
/// let mut echoed = text.split("\r\n\r\n").nth(1).unwrap().to_owned();
/// while echoed.len() < 4 {
///     let n = client.read(&mut head).unwrap();
///     echoed.push_str(std::str::from_utf8(&head[..n]).unwrap());
/// }
/// assert_eq!(echoed, "ping"); // sent right behind the request
/// # drop(client);
/// # server.stop(std::time::Duration::from_secs(1)).unwrap();
/// ```
#[derive(Clone)]
pub struct Upgraded {
    inner: Rc<Inner>,
}

struct Inner {
    conn: Rc<Conn>,
    /// Bytes the server had read past the request's head, not yet read
    /// from here.
    leftover: RefCell<Vec<u8>>,
    /// How much of `leftover` has been read.
    leftover_read: Cell<usize>,
}

impl Upgraded {
    pub(crate) fn new(conn: Rc<Conn>, leftover: Vec<u8>) -> Upgraded {
        let inner = Inner { conn, leftover: RefCell::new(leftover), leftover_read: Cell::new(0) };
        Upgraded { inner: Rc::new(inner) }
    }

    fn conn(&self) -> &Conn {
        &self.inner.conn
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn().peer
    }

    /// Whether the connection is TLS (it came to an HTTPS server).
    pub fn is_tls(&self) -> bool {
        self.conn().stream.is_tls()
    }

    /// Sets how long a read may wait before failing with
    /// [`TimedOut`](io::ErrorKind::TimedOut); `None` (the default) waits
    /// for ever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.conn().stream.set_read_timeout(timeout)
    }

    /// Sets how long a write may wait before failing with
    /// [`TimedOut`](io::ErrorKind::TimedOut); `None` (the default) waits
    /// for ever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.conn().stream.set_write_timeout(timeout)
    }

    /// Shuts down the read half, the write half, or both (over TLS,
    /// shutting the write half sends `close_notify` first).
    ///
    /// # Errors
    ///
    /// As for [`std::net::TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.conn().stream.shutdown(how)
    }
}

impl Read for &Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        {
            let leftover = self.inner.leftover.borrow();
            let start = self.inner.leftover_read.get();
            if start < leftover.len() {
                let n = buf.len().min(leftover.len() - start);
                buf[..n].copy_from_slice(&leftover[start..start + n]);
                self.inner.leftover_read.set(start + n);
                if start + n == leftover.len() {
                    drop(leftover);
                    *self.inner.leftover.borrow_mut() = Vec::new();
                    self.inner.leftover_read.set(0);
                }
                return Ok(n);
            }
        }
        self.conn().stream.read(buf)
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn().stream.write(buf)
    }

    /// Nothing to do: a write has sent its bytes (or, over TLS, their
    /// records) before it returns.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("peer_addr", &self.conn().peer)
            .field("tls", &self.is_tls())
            .field("leftover", &(self.inner.leftover.borrow().len() - self.inner.leftover_read.get()))
            .finish()
    }
}
