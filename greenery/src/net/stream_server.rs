use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::hub::{Deadlock, JoinHandle};
use crate::sync::{Event, Group, Pool};

use super::addr::{ToSocketAddrs, addr_error};
use super::{TcpListener, TcpStream};

/// A TCP server: accepts connections on one or more listeners and runs a
/// handler for each in a green thread of its own (gevent's `StreamServer`).
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use greenery::net::{StreamServer, TcpStream};
///
/// let server = StreamServer::bind("127.0.0.1:0", |mut stream: TcpStream, _peer| {
///     let _ = stream.write_all(b"hello\n");
/// })
/// .unwrap();
/// server.start().unwrap();
/// let addr = server.local_addrs()[0];
/// let mut greeting = String::new();
/// TcpStream::connect(addr).unwrap().read_to_string(&mut greeting).unwrap();
/// assert_eq!(greeting, "hello\n");
/// server.stop(Duration::from_secs(1)).unwrap();
/// ```
///
/// - **Concurrency.** Handlers run in a [`Group`], or, with
///   [`with_pool`](Self::with_pool), in a [`Pool`] that caps how many run
///   at once: the server then accepts a connection only when a slot is
///   free, and the kernel's backlog holds the others.
/// - **Errors.** A handler that panics is reported (as any green thread) and
///   the server goes on. Running out of file descriptors (`EMFILE`,
///   `ENFILE`) pauses accepting with a growing delay (10 ms to 1 s) while
///   the connections already accepted are served; it is reported once per
///   burst, with the limit to raise. Other accept errors are reported and
///   retried after the shortest delay.
/// - **Backlog.** Listeners made by [`TcpListener::bind`] (and so by
///   [`bind`](Self::bind)) ask for the system's longest listen backlog, so
///   that a burst of connects waits in the kernel's queue instead of being
///   dropped and retried a second later; [`with_backlog`](Self::with_backlog)
///   sets another.
/// - **Stopping.** [`stop`](Self::stop) closes the listeners, waits for the
///   running handlers up to a timeout, then kills the rest. Dropping a
///   server that was not stopped closes its listeners (their accept loops
///   are killed) and leaves the running handlers to finish on their own.
///
/// `!Send`: its handler and the green threads it runs belong to this
/// thread's hub. For several threads, see [`ServerThreads`](super::ServerThreads).
pub struct StreamServer {
    listeners: RefCell<Vec<TcpListener>>,
    addrs: Vec<SocketAddr>,
    handler: Handler,
    handlers: Handlers,
    acceptors: RefCell<Vec<JoinHandle<()>>>,
    /// The listen backlog to set on the listeners as the server starts; they
    /// keep theirs if `None`.
    backlog: Option<u32>,
    state: Cell<State>,
    stopped: Event,
}

/// Where handlers run.
enum Handlers {
    Group(Group),
    Pool(Pool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Serving,
    Stopped,
}

/// A connection handler.
type Handler = Rc<dyn Fn(TcpStream, SocketAddr)>;

/// The shortest and longest pause between accepts after an error.
const MIN_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);

impl StreamServer {
    /// A server on `listener`, calling `handler` with each accepted stream
    /// and its peer's address. It does not accept until
    /// [`start`](Self::start)ed.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        let addrs = vec![listener.local_addr()?];
        Ok(StreamServer {
            listeners: RefCell::new(vec![listener]),
            addrs,
            handler: Rc::new(handler),
            handlers: Handlers::Group(Group::new()),
            acceptors: RefCell::new(Vec::new()),
            backlog: None,
            state: Cell::new(State::Ready),
            stopped: Event::new(),
        })
    }

    /// Binds a listener to `addr` (see [`TcpListener::bind`]: the listen
    /// backlog is the system's longest) and makes a server on it.
    ///
    /// # Errors
    ///
    /// If binding fails; the error names the address (`cannot listen on
    /// 127.0.0.1:8080: Address already in use (os error 98)`).
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new(TcpListener::bind(addr)?, handler)
    }

    /// A TLS server on `listener` (with the `tls` feature): each accepted
    /// connection does its handshake in its own green thread, within the
    /// acceptor's handshake timeout, and `handler` gets the TLS stream. A
    /// connection whose handshake fails or times out is closed without a
    /// report (the client is told by a TLS alert, where there is one to
    /// send).
    ///
    /// ```
    /// use std::io::Write;
    /// use greenery::net::{StreamServer, TlsAcceptor, TlsStream};
    /// # use std::sync::Arc;
    /// # use greenery::net::rustls::{self, ServerConfig};
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    /// # let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    /// #     .with_safe_default_protocol_versions().unwrap()
    /// #     .with_no_client_auth()
    /// #     .with_single_cert(vec![cert.cert.der().clone()], key.into())
    /// #     .unwrap();
    ///
    /// // `config`: a rustls ServerConfig, or TlsAcceptor::from_pem_files(cert, key).
    /// let server = StreamServer::bind_tls("127.0.0.1:0", TlsAcceptor::from(config), |mut stream: TlsStream, _peer| {
    ///     let _ = stream.write_all(b"hello over TLS\n");
    /// })
    /// .unwrap();
    /// server.start().unwrap();
    /// # server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    #[cfg(feature = "tls")]
    pub fn new_tls(
        listener: TcpListener,
        acceptor: super::TlsAcceptor,
        handler: impl Fn(super::TlsStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new(listener, move |stream, peer| {
            if let Ok(stream) = acceptor.accept(stream) {
                handler(stream, peer);
            }
        })
    }

    /// Binds a listener to `addr` (as [`bind`](Self::bind) does) and makes a
    /// TLS server on it (see [`new_tls`](Self::new_tls)).
    ///
    /// # Errors
    ///
    /// As for [`bind`](Self::bind).
    #[cfg(feature = "tls")]
    pub fn bind_tls<A: ToSocketAddrs>(
        addr: A,
        acceptor: super::TlsAcceptor,
        handler: impl Fn(super::TlsStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new_tls(TcpListener::bind(addr)?, acceptor, handler)
    }

    /// Serves on `listener` too (another port, or IPv6 beside IPv4).
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    ///
    /// # Panics
    ///
    /// If the server has been started.
    pub fn with_listener(mut self, listener: TcpListener) -> io::Result<StreamServer> {
        assert_eq!(self.state.get(), State::Ready, "listeners are added before the server starts");
        self.addrs.push(listener.local_addr()?);
        self.listeners.get_mut().push(listener);
        Ok(self)
    }

    /// Runs at most `size` handlers at once (gevent's `spawn=Pool(size)`).
    ///
    /// # Panics
    ///
    /// If the server has been started, or `size` is zero.
    pub fn with_pool(mut self, size: usize) -> StreamServer {
        assert_eq!(self.state.get(), State::Ready, "the pool is set before the server starts");
        assert!(size > 0, "a server's pool needs at least one slot");
        self.handlers = Handlers::Pool(Pool::new(size));
        self
    }

    /// Sets the listen backlog of every listener when the server starts (see
    /// [`TcpListener::set_backlog`]): how many connections the kernel queues
    /// for the server to accept. By default a listener keeps its own, which
    /// for [`TcpListener::bind`] is the system's longest
    /// ([`default_backlog`](super::default_backlog)).
    ///
    /// ```
    /// use greenery::net::{StreamServer, TcpStream};
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream: TcpStream, _peer| {})
    ///     .unwrap()
    ///     .with_backlog(1024);
    /// server.start().unwrap();
    /// server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// If the server has been started.
    pub fn with_backlog(mut self, backlog: u32) -> StreamServer {
        assert_eq!(self.state.get(), State::Ready, "the backlog is set before the server starts");
        self.backlog = Some(backlog);
        self
    }

    /// The addresses of the listeners, in the order they were added.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// How many handlers are running.
    pub fn connections(&self) -> usize {
        match &self.handlers {
            Handlers::Group(group) => group.len(),
            Handlers::Pool(pool) => pool.len(),
        }
    }

    /// Whether the server is accepting connections.
    pub fn is_serving(&self) -> bool {
        self.state.get() == State::Serving
    }

    /// Starts accepting: a green thread per listener. Returns at once.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the server was started before; what `listen(2)`
    /// reports if the backlog set by [`with_backlog`](Self::with_backlog)
    /// cannot be.
    pub fn start(&self) -> io::Result<()> {
        if self.state.get() != State::Ready {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the server was already started"));
        }
        if let Some(backlog) = self.backlog {
            for (listener, addr) in self.listeners.borrow().iter().zip(&self.addrs) {
                listener
                    .set_backlog(backlog)
                    .map_err(|err| addr_error("cannot set the listen backlog on", addr, err))?;
            }
        }
        self.state.set(State::Serving);
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        let mut acceptors = self.acceptors.borrow_mut();
        for listener in listeners {
            let handler = self.handler.clone();
            let spawner = self.spawner();
            acceptors.push(crate::spawn(move || accept_loop(&listener, &handler, &spawner)));
        }
        Ok(())
    }

    /// Starts (if need be) and blocks until the server is stopped (from
    /// another green thread, or by a handler).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] (as an `io::Error`) if nothing could ever stop it.
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.state.get() == State::Ready {
            self.start()?;
        }
        self.stopped.wait().map_err(io::Error::other)
    }

    /// Stops the server: closes its listeners, waits up to `timeout` for
    /// the handlers running, then kills those still running. Stopping a
    /// stopped server does nothing.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if a killed handler cannot die.
    pub fn stop(&self, timeout: Duration) -> Result<(), Deadlock> {
        if self.state.replace(State::Stopped) == State::Stopped {
            return Ok(());
        }
        self.listeners.borrow_mut().clear();
        let acceptors = std::mem::take(&mut *self.acceptors.borrow_mut());
        crate::hub::killall(&acceptors, None)?; // each drops its listener
        let finished = match &self.handlers {
            Handlers::Group(group) => group.join_timeout(timeout)?,
            Handlers::Pool(pool) => pool.join_timeout(timeout)?,
        };
        if !finished {
            match &self.handlers {
                Handlers::Group(group) => group.kill()?,
                Handlers::Pool(pool) => pool.kill()?,
            }
        }
        self.stopped.set();
        Ok(())
    }

    /// How the accept loops start handlers.
    fn spawner(&self) -> Spawner {
        match &self.handlers {
            Handlers::Group(group) => Spawner::Group(group.clone()),
            Handlers::Pool(pool) => Spawner::Pool(pool.clone()),
        }
    }
}

/// A handle to the server's group or pool, for its accept loops.
enum Spawner {
    Group(Group),
    Pool(Pool),
}

impl Spawner {
    fn spawn(&self, handler: &Handler, stream: TcpStream, peer: SocketAddr) {
        let handler = handler.clone();
        let run = move || handler(stream, peer);
        match self {
            Spawner::Group(group) => {
                group.spawn(run);
            }
            Spawner::Pool(pool) => {
                // Waits for a free slot; a failure (deadlock) drops the
                // connection, which closes it.
                if let Err(err) = pool.spawn(run) {
                    crate::unwind::report_message("StreamServer", &format!("cannot run a handler: {err}"));
                }
            }
        }
    }
}

/// Accepts connections on `listener` until killed.
fn accept_loop(listener: &TcpListener, handler: &Handler, spawner: &Spawner) {
    let name = listener.local_addr().map_or_else(|_| "?".to_owned(), |addr| addr.to_string());
    let mut delay = MIN_DELAY;
    let mut reported = false;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                delay = MIN_DELAY;
                reported = false;
                spawner.spawn(handler, stream, peer);
            }
            Err(err) if is_transient(&err) => {}
            Err(err) => {
                if !reported {
                    report_accept_error(&name, &err);
                    reported = true;
                }
                crate::sleep(delay);
                if out_of_fds(&err) {
                    delay = (delay * 2).min(MAX_DELAY);
                }
            }
        }
    }
}

/// Errors that concern one connection that went away, not the listener.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    ) || err.raw_os_error() == Some(libc::EPROTO)
}

fn out_of_fds(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

fn report_accept_error(listener: &str, err: &io::Error) {
    let advice = match err.raw_os_error() {
        Some(libc::EMFILE) => {
            "; this process is at its limit of open files (RLIMIT_NOFILE: raise it with `ulimit -n` \
             or setrlimit); accepting pauses while the open connections are served"
        }
        Some(libc::ENFILE) => {
            "; the system is at its limit of open files (fs.file-max: raise it with sysctl); accepting \
             pauses while the open connections are served"
        }
        _ => "; retrying",
    };
    crate::unwind::report_message(
        &format!("StreamServer on {listener}"),
        &format!("accept failed: {err}{advice}"),
    );
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        for acceptor in self.acceptors.get_mut().drain(..) {
            acceptor.kill_async(); // it drops its listener as it unwinds
        }
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("addrs", &self.addrs)
            .field("state", &self.state.get())
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl super::Serve for StreamServer {
    fn serve_forever(&self) -> io::Result<()> {
        StreamServer::serve_forever(self)
    }

    fn stop(&self, timeout: Duration) -> Result<(), Deadlock> {
        StreamServer::stop(self, timeout)
    }
}
