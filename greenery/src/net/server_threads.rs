//! [`ServerThreads`]: one server per hub, on as many OS threads, sharing an
//! address.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::TcpListener;
use super::addr::ToSocketAddrs;
use crate::hub::Deadlock;
use crate::sync::mpsc;

/// What [`ServerThreads`] needs of a server: to serve until stopped, and
/// to stop gracefully. [`StreamServer`](super::StreamServer) has it, and so
/// does `greenery-http`'s `Server`.
pub trait Serve {
    /// Serves until [`stop`](Self::stop) has finished.
    ///
    /// # Errors
    ///
    /// What kept the server from serving.
    fn serve_forever(&self) -> io::Result<()>;

    /// Stops accepting, lets the work in flight finish for up to `timeout`,
    /// then ends it.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if the work cannot end.
    fn stop(&self, timeout: Duration) -> Result<(), Deadlock>;
}

/// A server on several cores: one hub per OS thread, each with a server of
/// its own on a listener of its own, all bound to the same address with
/// `SO_REUSEPORT` (the kernel spreads the connections over them).
///
/// [`start`](Self::start) makes the threads and returns once every server
/// listens; [`stop`](Self::stop) stops them all gracefully and
/// [`wait`](Self::wait) waits for the threads to end. The handle is `Send`
/// and cheap to clone: the thread that made it, a green thread, a signal
/// handler or another thread may stop the servers. Dropping every handle
/// without a stop leaves the servers serving until the process ends.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use greenery::net::{ServerThreads, StreamServer, TcpStream};
///
/// // An echo server on two hubs.
/// let servers = ServerThreads::start(2, "127.0.0.1:0", |_hub, listener| {
///     StreamServer::new(listener, |mut stream, _peer| {
///         let mut buf = [0; 64];
///         while let Ok(n @ 1..) = stream.read(&mut buf) {
///             stream.write_all(&buf[..n]).unwrap();
///         }
///     })
/// })
/// .unwrap();
/// let mut client = TcpStream::connect(servers.local_addr()).unwrap();
/// client.write_all(b"ping").unwrap();
/// let mut reply = [0; 4];
/// client.read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"ping");
/// drop(client);
/// servers.stop(Duration::from_secs(1));
/// servers.wait().unwrap();
/// ```
#[derive(Clone)]
pub struct ServerThreads {
    addr: SocketAddr,
    /// Each hub's way to be told to stop, with the grace period.
    stops: Vec<mpsc::Sender<Duration>>,
    /// The threads, until [`wait`](Self::wait) takes them.
    threads: Arc<Mutex<Vec<thread::JoinHandle<io::Result<()>>>>>,
    hubs: usize,
}

impl ServerThreads {
    /// Starts `threads` hubs (at least 1; [`hub::cores`](crate::hub::cores)
    /// for one per core), each on an OS thread of its own, and on each, the
    /// server `make(index, listener)` builds with a listener bound to `addr`
    /// with `SO_REUSEPORT` ([`TcpListener::bind_reuse_port`]). If `addr`
    /// asks for port 0, the first hub's port is everyone's. Returns once
    /// every server listens.
    ///
    /// # Errors
    ///
    /// The first hub that cannot bind or build its server stops the start:
    /// the hubs already serving are stopped and their threads joined, and
    /// the error is returned (it names the address).
    pub fn start<A, S, M>(threads: usize, addr: A, make: M) -> io::Result<ServerThreads>
    where
        A: ToSocketAddrs,
        S: Serve + 'static,
        M: Fn(usize, TcpListener) -> io::Result<S> + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let hubs = threads.max(1);
        let mut servers =
            ServerThreads { addr: first_addr(&addr)?, stops: Vec::new(), threads: Arc::default(), hubs };
        for index in 0..hubs {
            let (ready, started) = std_mpsc::channel::<io::Result<SocketAddr>>();
            let (stop, stops) = mpsc::unbounded::<Duration>();
            let (make, addr) = (make.clone(), servers.addr);
            let thread = thread::Builder::new()
                .name(format!("greenery-server-{index}"))
                .spawn(move || serve_on_this_hub(index, addr, &*make, ready, stops))?;
            servers.stops.push(stop);
            lock(&servers.threads).push(thread);
            match started.recv() {
                // The first hub's address holds the port every other binds.
                Ok(Ok(bound)) => servers.addr = bound,
                Ok(Err(err)) => {
                    servers.stop(Duration::ZERO);
                    let _ = servers.wait();
                    return Err(err);
                }
                Err(_) => {
                    servers.stop(Duration::ZERO);
                    let outcome = servers.wait();
                    return Err(outcome.err().unwrap_or_else(|| {
                        io::Error::other(format!("the thread of server {index} ended before it served"))
                    }));
                }
            }
        }
        Ok(servers)
    }

    /// The address every server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many hubs serve.
    pub fn threads(&self) -> usize {
        self.hubs
    }

    /// Asks every server to stop gracefully (each stops accepting, and gives
    /// the work in flight `timeout` to finish); returns at once. Asking
    /// again does nothing more.
    pub fn stop(&self, timeout: Duration) {
        for stop in &self.stops {
            let _ = stop.try_send(timeout);
        }
    }

    /// Waits until every server has stopped and its thread has ended. On a
    /// thread with a hub (a green thread, or the main greenlet of a thread
    /// that runs green threads), the join runs on the blocking pool, so
    /// the hub runs its other green threads meanwhile (a signal handler that
    /// calls [`stop`](Self::stop), say). Waiting again returns at once.
    ///
    /// # Errors
    ///
    /// The first server's error (a panic in a thread is raised again here).
    pub fn wait(&self) -> io::Result<()> {
        let threads = std::mem::take(&mut *lock(&self.threads));
        let join = move || {
            let mut first = Ok(());
            for thread in threads {
                let outcome = thread.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload));
                if first.is_ok() {
                    first = outcome;
                }
            }
            first
        };
        if crate::hub::has_hub() {
            crate::hub::spawn_blocking(join).unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        } else {
            join()
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The first address `addr` resolves to.
fn first_addr<A: ToSocketAddrs>(addr: &A) -> io::Result<SocketAddr> {
    addr.resolve()?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing"))
}

/// One hub's life: bind, build, say so, serve until told to stop.
fn serve_on_this_hub<S: Serve + 'static>(
    index: usize,
    addr: SocketAddr,
    make: &dyn Fn(usize, TcpListener) -> io::Result<S>,
    ready: std_mpsc::Sender<io::Result<SocketAddr>>,
    stops: mpsc::Receiver<Duration>,
) -> io::Result<()> {
    let built = TcpListener::bind_reuse_port(addr).and_then(|listener| {
        let bound = listener.local_addr()?;
        Ok((make(index, listener)?, bound))
    });
    let (server, bound) = match built {
        Ok(built) => built,
        Err(err) => {
            let _ = ready.send(Err(err));
            return Ok(());
        }
    };
    let server = std::rc::Rc::new(server);
    let stopper = {
        let server = server.clone();
        crate::spawn(move || {
            if let Ok(timeout) = stops.recv() {
                server.stop(timeout)
            } else {
                // The handle is gone without a stop: serve on until the
                // process ends.
                Ok(())
            }
        })
    };
    let _ = ready.send(Ok(bound));
    let served = server.serve_forever();
    stopper.kill().map_err(io::Error::other)?;
    served
}

impl fmt::Debug for ServerThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerThreads").field("addr", &self.addr).field("threads", &self.hubs).finish()
    }
}
