//! The server: listeners, settings, and what its connections share.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use greenery::hub::Deadlock;
use greenery::net::{StreamServer, TcpListener, ToSocketAddrs};
use greenery::sync::{Event, Group};
use http::{Request, Response, StatusCode};

use crate::conn::{self, Conn, SpareBuffers};
use crate::panic_report::{self, Reports};
use crate::stream::TlsConfig;
use crate::{Body, Limits, ResponseBody, Timeouts};

/// An HTTP/1.1 server: a green thread per connection on this thread's hub,
/// calling a handler that is plain blocking code (gevent's `WSGIServer`).
///
/// ```
/// use std::io::{Read, Write};
/// use http::{Request, Response};
/// use greenery_http::{Body, Server};
///
/// let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
///     Response::new(format!("you asked for {}", request.uri().path()))
/// })
/// .unwrap();
/// server.start().unwrap();
/// let mut client = greenery::net::TcpStream::connect(server.local_addr()).unwrap();
/// client.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut reply = String::new();
/// client.read_to_string(&mut reply).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(reply.ends_with("\r\n\r\nyou asked for /hello"));
/// server.stop(std::time::Duration::from_secs(5)).unwrap();
/// ```
///
/// See the [crate documentation](crate) for the protocol details: keep-alive,
/// pipelining, limits, timeouts, and what a panicking handler gets.
pub struct Server {
    streams: StreamServer,
    shared: Rc<Shared>,
}

/// The handler, type-erased.
type Handler = Box<dyn Fn(Request<Body>) -> Response<ResponseBody>>;

/// What every connection of a server shares.
pub(crate) struct Shared {
    handler: Handler,
    settings: RefCell<Rc<Settings>>,
    access_log: RefCell<Option<Box<dyn Write>>>,
    /// Where panicking handlers are reported.
    pub(crate) panics: Rc<Reports>,
    started: Cell<bool>,
    stopping: Cell<bool>,
    /// Set once a stop has finished: every request answered, or killed.
    stopped: Event,
    /// Whether idle connections give their green thread back (not with a
    /// pool: see the `conn` module).
    parks_idle: Cell<bool>,
    /// Connections waiting for their next request in their green thread,
    /// by id: a stop shuts them down at once instead of waiting for their
    /// keep-alive timeout.
    pub(crate) waiting_connections: RefCell<ConnectionMap>,
    /// Connections parked without a green thread, by id: their only owner
    /// (a stop drops them).
    pub(crate) parked_connections: RefCell<ConnectionMap>,
    /// The green threads serving connections that woke from a park.
    pub(crate) continuations: Group,
    pub(crate) spares: SpareBuffers,
    next_connection: Cell<u64>,
    /// Whether (and how) the server serves HTTPS.
    pub(crate) tls: TlsConfig,
}

/// Connections by their number. A connection is listed and unlisted each
/// time it waits for a request, so the hash is a multiplication, not SipHash:
/// the numbers are the server's own, not the clients'.
pub(crate) type ConnectionMap = HashMap<u64, Rc<Conn>, BuildHasherDefault<IdHasher>>;

/// Hashes a connection's number (see [`ConnectionMap`]).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: consecutive numbers spread over the high bits,
        // which the table's control bytes read.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A server's limits and timeouts, as a connection reads them when it
/// starts.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
}

impl Shared {
    pub(crate) fn settings(&self) -> Rc<Settings> {
        self.settings.borrow().clone()
    }

    pub(crate) fn call(&self, request: Request<Body>) -> Response<ResponseBody> {
        (self.handler)(request)
    }

    /// Keeps only as many spare buffers as there are parked connections to
    /// wake, once a connection has closed: after a burst of connections,
    /// their buffers go back to the allocator.
    pub(crate) fn connection_closed(&self) {
        let mut parked = self.parked_connections.borrow_mut();
        self.spares.trim(parked.len());
        if parked.capacity() > 64 && parked.len() * 4 < parked.capacity() {
            let len = parked.len();
            parked.shrink_to(len * 2);
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    pub(crate) fn parks_idle(&self) -> bool {
        self.parks_idle.get()
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        let id = self.next_connection.get();
        self.next_connection.set(id + 1);
        id
    }

    pub(crate) fn wants_log(&self) -> bool {
        self.access_log.borrow().is_some()
    }

    /// Writes an access-log line in the Common Log Format, if logging.
    pub(crate) fn log(&self, conn: &Conn, request_line: Option<&str>, status: StatusCode, body_bytes: u64) {
        let mut access_log = self.access_log.borrow_mut();
        let Some(sink) = access_log.as_mut() else { return };
        let bytes = if body_bytes == 0 { "-".to_owned() } else { body_bytes.to_string() };
        let line = format!(
            "{} - - [{}] \"{}\" {} {}\n",
            conn.peer.ip(),
            common_log_date(SystemTime::now()),
            request_line.unwrap_or("-"),
            status.as_u16(),
            bytes
        );
        if let Err(err) = sink.write_all(line.as_bytes()) {
            eprintln!("greenery-http: writing the access log failed: {err}");
        }
    }
}

impl Server {
    /// A server on `listener`, answering every request with `handler`. It
    /// does not accept until [`start`](Self::start)ed.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    pub fn new<H, B>(listener: TcpListener, handler: H) -> io::Result<Server>
    where
        H: Fn(Request<Body>) -> Response<B> + 'static,
        B: Into<ResponseBody>,
    {
        panic_report::install_hook();
        let shared = Rc::new(Shared {
            handler: Box::new(move |request| handler(request).map(Into::into)),
            settings: RefCell::new(Rc::new(Settings::default())),
            access_log: RefCell::new(None),
            panics: Reports::new(),
            started: Cell::new(false),
            stopping: Cell::new(false),
            stopped: Event::new(),
            parks_idle: Cell::new(true),
            waiting_connections: RefCell::new(ConnectionMap::default()),
            parked_connections: RefCell::new(ConnectionMap::default()),
            continuations: Group::new(),
            spares: SpareBuffers::default(),
            next_connection: Cell::new(0),
            tls: TlsConfig::default(),
        });
        let serving = shared.clone();
        let streams = StreamServer::new(listener, move |stream, peer| conn::serve(stream, peer, &serving))?;
        Ok(Server { streams, shared })
    }

    /// Binds a listener to `addr` (with the system's longest listen backlog:
    /// see [`with_backlog`](Self::with_backlog)) and makes a server on it.
    ///
    /// # Errors
    ///
    /// If binding fails; the error names the address (`cannot listen on
    /// 127.0.0.1:8080: Address already in use (os error 98)`).
    pub fn bind<A, H, B>(addr: A, handler: H) -> io::Result<Server>
    where
        A: ToSocketAddrs,
        H: Fn(Request<Body>) -> Response<B> + 'static,
        B: Into<ResponseBody>,
    {
        Server::new(TcpListener::bind(addr)?, handler)
    }

    /// Serves on `listener` too.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    pub fn with_listener(mut self, listener: TcpListener) -> io::Result<Server> {
        self.streams = self.streams.with_listener(listener)?;
        Ok(self)
    }

    /// Keeps at most `size` connections open at once; more wait in the
    /// listener's backlog (gevent's `spawn=Pool(size)`).
    ///
    /// With a pool, each connection keeps its green thread (and stack) while
    /// it waits for its next request, as in gevent, so that the pool counts
    /// it; without one, an idle keep-alive connection gives its green thread
    /// back and costs only its socket and a few hundred bytes.
    ///
    /// # Panics
    ///
    /// If the server has been started, or `size` is zero.
    pub fn with_pool(mut self, size: usize) -> Server {
        self.streams = self.streams.with_pool(size);
        self.shared.parks_idle.set(false);
        self
    }

    /// Sets the listen backlog of the server's listeners as it starts: how
    /// many connections the kernel queues for it to accept. A full queue
    /// drops new connects, which their clients retry a second or more
    /// later. The default is the system's longest
    /// ([`greenery::net::default_backlog`], `net.core.somaxconn`), for
    /// listeners made by [`bind`](Self::bind) or
    /// [`TcpListener::bind`].
    ///
    /// ```
    /// use greenery_http::http::{Request, Response};
    /// use greenery_http::{Body, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0", |_: Request<Body>| Response::new("hi"))
    ///     .unwrap()
    ///     .with_backlog(512);
    /// server.start().unwrap();
    /// server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// If the server has been started.
    pub fn with_backlog(mut self, backlog: u32) -> Server {
        self.streams = self.streams.with_backlog(backlog);
        self
    }

    /// Serves HTTPS with `config` (a rustls
    /// [`ServerConfig`](crate::rustls::ServerConfig), or an `Arc` of one) on
    /// connections accepted from now on; with the `tls` feature. Its ALPN
    /// protocols are set to `http/1.1` alone (this server speaks no other;
    /// a client that offers only `h2` is refused in the handshake).
    ///
    /// Everything that holds for HTTP holds for HTTPS: keep-alive,
    /// pipelining, the limits and timeouts, idle connections parked without
    /// a green thread (the TLS session stays with them), graceful stops,
    /// upgrades. A client must finish its handshake within
    /// [`Timeouts::handshake`], and a handshake that fails closes the
    /// connection without a report.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use greenery_http::rustls::{self, ServerConfig};
    /// use greenery_http::http::{Request, Response};
    /// use greenery_http::{Body, Server};
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    /// # let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    /// #     .with_safe_default_protocol_versions().unwrap()
    /// #     .with_no_client_auth()
    /// #     .with_single_cert(vec![cert.cert.der().clone()], key.into())
    /// #     .unwrap();
    ///
    /// // `config`: a rustls ServerConfig with the server's certificate and key.
    /// let server = Server::bind("127.0.0.1:0", |_: Request<Body>| Response::new("Hello over HTTPS"))
    ///     .unwrap()
    ///     .with_tls(config);
    /// server.start().unwrap();
    /// # server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    #[cfg(feature = "tls")]
    pub fn with_tls(self, config: impl Into<std::sync::Arc<crate::rustls::ServerConfig>>) -> Server {
        let mut config = std::sync::Arc::unwrap_or_clone(config.into());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.shared.tls.set(std::sync::Arc::new(config));
        self
    }

    /// Serves HTTPS with the certificate chain and private key in two PEM
    /// files (see [`greenery::net::tls_server_config`]), as
    /// [`with_tls`](Self::with_tls) does; with the `tls` feature.
    ///
    /// ```no_run
    /// use greenery_http::http::{Request, Response};
    /// use greenery_http::{Body, Server};
    ///
    /// let server = Server::bind("0.0.0.0:8443", |_: Request<Body>| Response::new("Hello over HTTPS"))
    ///     .unwrap()
    ///     .with_tls_pem_files("cert.pem", "key.pem")
    ///     .unwrap();
    /// server.serve_forever().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// If a file cannot be read (the error names it), holds no certificate
    /// or no key, or the key does not go with the certificate.
    #[cfg(feature = "tls")]
    pub fn with_tls_pem_files(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> io::Result<Server> {
        Ok(self.with_tls(greenery::net::tls_server_config(cert_chain, key)?))
    }

    /// Whether the server serves HTTPS ([`with_tls`](Self::with_tls)).
    pub fn is_tls(&self) -> bool {
        self.shared.tls.is_on()
    }

    /// Sets the size limits for connections accepted from now on.
    pub fn with_limits(self, limits: Limits) -> Server {
        let timeouts = self.shared.settings().timeouts.clone();
        *self.shared.settings.borrow_mut() = Rc::new(Settings { limits, timeouts });
        self
    }

    /// Sets the timeouts for connections accepted from now on.
    pub fn with_timeouts(self, timeouts: Timeouts) -> Server {
        let limits = self.shared.settings().limits.clone();
        *self.shared.settings.borrow_mut() = Rc::new(Settings { limits, timeouts });
        self
    }

    /// Writes a line per request to `sink` in the Common Log Format, such as
    /// `127.0.0.1 - - [25/Nov/2026:09:40:00 +0000] "GET / HTTP/1.1" 200 13`.
    pub fn with_access_log(self, sink: impl Write + 'static) -> Server {
        *self.shared.access_log.borrow_mut() = Some(Box::new(sink));
        self
    }

    /// Writes the server's error reports to `sink` instead of stderr: one
    /// per panicking handler, such as `greenery-http: the handler panicked
    /// answering GET /x HTTP/1.1 from 127.0.0.1:40000 at src/main.rs:9:5:
    /// boom` (and its backtrace, when `RUST_BACKTRACE` asks for one), at most
    /// ten a minute, then one line counting those left out.
    ///
    /// ```
    /// use std::io::Write;
    /// use greenery_http::http::{Request, Response};
    /// use greenery_http::{Body, Server};
    ///
    /// let log = std::fs::File::create(std::env::temp_dir().join("errors.log")).unwrap();
    /// let server = Server::bind("127.0.0.1:0", |_: Request<Body>| Response::new("hi"))
    ///     .unwrap()
    ///     .with_error_log(log);
    /// # drop(server);
    /// ```
    pub fn with_error_log(self, sink: impl Write + 'static) -> Server {
        self.shared.panics.set_sink(Box::new(sink));
        self
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.streams.local_addrs()[0]
    }

    /// Every listener's address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.streams.local_addrs()
    }

    /// Connections open now: being served, or idle between requests.
    pub fn connections(&self) -> usize {
        self.streams.connections()
            + self.shared.continuations.len()
            + self.shared.parked_connections.borrow().len()
    }

    /// Connections open and waiting for their next request (or, on an
    /// HTTPS server, for their TLS handshake): without a pool they are
    /// parked on the hub with no green thread once they have waited a
    /// moment, with one each waits in its own (see
    /// [`with_pool`](Self::with_pool)).
    pub fn idle_connections(&self) -> usize {
        self.shared.parked_connections.borrow().len() + self.shared.waiting_connections.borrow().len()
    }

    /// Whether the server accepts connections.
    pub fn is_serving(&self) -> bool {
        self.streams.is_serving()
    }

    /// Starts accepting in the background (green threads of this thread's
    /// hub) and returns.
    ///
    /// # Errors
    ///
    /// If the server was started before.
    pub fn start(&self) -> io::Result<()> {
        self.streams.start()?;
        self.shared.started.set(true);
        Ok(())
    }

    /// Starts (if need be) and serves until [`stop`](Self::stop)ped, and
    /// until that stop has finished: every request in flight answered (or
    /// killed at the stop's timeout), keep-alive connections that woke for
    /// another request included. So the usual program, in which a signal
    /// handler calls `stop` and `main` returns once this does, cuts no
    /// request short.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use greenery_http::http::{Request, Response};
    /// use greenery_http::{Body, Server};
    ///
    /// let server = Rc::new(Server::bind("127.0.0.1:8080", |_: Request<Body>| Response::new("hi")).unwrap());
    /// let stopper = server.clone();
    /// let on_term = greenery::signal::signal_handler(libc::SIGTERM, move || {
    ///     let _ = stopper.stop(Duration::from_secs(5));
    /// })
    /// .unwrap();
    /// server.serve_forever().unwrap();
    /// on_term.cancel();
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start); [`Deadlock`] (as an `io::Error`) if
    /// nothing could ever stop the server.
    pub fn serve_forever(&self) -> io::Result<()> {
        if !self.shared.started.get() && !self.shared.stopping.get() {
            self.start()?;
        }
        self.shared.stopped.wait().map_err(io::Error::other)
    }

    /// Stops accepting, closes idle keep-alive connections, lets requests in
    /// flight finish (their responses say `Connection: close`) for up to
    /// `timeout`, then kills what is left; returns once all that is done. A
    /// stop while another is in progress waits for that one to finish.
    ///
    /// Dropping a server that was not stopped closes its listeners and its
    /// idle connections (once no request is in flight); requests in flight
    /// finish on their own.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if a handler cannot be killed.
    pub fn stop(&self, timeout: Duration) -> Result<(), Deadlock> {
        if self.shared.stopping.replace(true) {
            return self.shared.stopped.wait();
        }
        let stopped = self.stop_connections(timeout);
        self.shared.panics.summarize();
        self.shared.stopped.set();
        stopped
    }

    fn stop_connections(&self, timeout: Duration) -> Result<(), Deadlock> {
        let deadline = Instant::now() + timeout;
        let parked: Vec<Rc<Conn>> =
            self.shared.parked_connections.borrow_mut().drain().map(|(_, conn)| conn).collect();
        drop(parked); // closes them
        let waiting: Vec<Rc<Conn>> = self.shared.waiting_connections.borrow().values().cloned().collect();
        for conn in waiting {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        self.streams.stop(timeout)?;
        let continuations = &self.shared.continuations;
        if !continuations.join_timeout(deadline.saturating_duration_since(Instant::now()))? {
            continuations.kill()?;
        }
        Ok(())
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .field("connections", &self.connections())
            .field("serving", &self.is_serving())
            .field("tls", &self.is_tls())
            .finish_non_exhaustive()
    }
}

/// `25/Nov/2026:09:40:00 +0000`, the Common Log Format's time, in UTC.
fn common_log_date(time: SystemTime) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

impl greenery::net::Serve for Server {
    fn serve_forever(&self) -> io::Result<()> {
        Server::serve_forever(self)
    }

    fn stop(&self, timeout: Duration) -> Result<(), Deadlock> {
        Server::stop(self, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_log_dates() {
        let at = |secs| common_log_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(at(1_795_599_600), "25/Nov/2026:09:40:00 +0000");
    }
}
