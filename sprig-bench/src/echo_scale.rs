//! The scale run: `N` connections held open at once against an echo server
//! on one thread, and the server's resident memory per connection (sprig's
//! `StreamServer` against tokio's current-thread runtime).
//!
//! The server runs in a child process (this binary again, with the hidden
//! command [`SERVER_COMMAND`]), so that the client's sockets and the
//! server's each have a process's open-file limit to themselves, and so that
//! the server's memory can be read apart from the client's. The client is
//! one sprig hub in the benchmark's process, a green thread per connection:
//!
//! 1. The server's resident memory is read once it listens (the baseline).
//! 2. Every client connects and makes one round trip (at most
//!    [`CONNECTS_IN_FLIGHT`] at a time between the connect and the echo,
//!    fewer than the listeners' backlog of 128); all then wait
//!    until all `N` have. The server's open descriptors are counted: it must
//!    hold all `N`.
//! 3. Every connection makes [`ROUND_TRIPS`] more round trips of
//!    [`MESSAGE`] bytes, checking the bytes that come back, and waits again.
//! 4. With all `N` connected and idle, the server's resident memory is read
//!    again: the difference from the baseline, over `N`, is the figure.
//!
//! Any failure (a connect, a short or wrong echo, a timeout) is an error:
//! each is counted and the first few are printed, and the case exits with a
//! failure status if there was one.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sprig::net::TcpStream;
use sprig::sync::{Event, Semaphore};

use crate::report;

/// The hidden command that runs an echo server in a child process:
/// `sprig-bench __echo_server sprig|tokio`. It prints the address it
/// listens on as one line on stdout, and exits when its stdin closes (when
/// the benchmark that started it exits, whichever way).
pub(crate) const SERVER_COMMAND: &str = "__echo_server";

/// Connections between their connect and their first echo at once: fewer
/// than the listen backlog (128, for mio's and tokio's listeners as for
/// std's), so that the server's accept queue never overflows, which drops
/// the SYN and makes the client retry a second later.
const CONNECTS_IN_FLIGHT: usize = 100;
/// Round trips each connection makes once all are open.
const ROUND_TRIPS: u64 = 10;
/// Bytes per message.
const MESSAGE: usize = 64;
/// Descriptors each process needs beside one per connection.
const FD_MARGIN: u64 = 64;
/// How long one connect, read or write may wait before it counts as an
/// error: only a guard against hangs.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Errors printed in full (all are counted).
const ERRORS_SHOWN: usize = 10;

/// The servers the scale run loads.
#[derive(Debug, Clone, Copy)]
enum Server {
    Sprig,
    Tokio,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Sprig => "sprig",
            Server::Tokio => "tokio",
        }
    }

    fn from_name(name: &str) -> Option<Server> {
        [Server::Sprig, Server::Tokio].into_iter().find(|server| server.name() == name)
    }
}

/// The `echo_scale` case: `n` connections to each server in turn.
pub(crate) fn echo_scale(n: u64) {
    if let Err(problem) = preflight(n) {
        eprintln!("echo_scale: {problem}");
        std::process::exit(1);
    }
    let mut errors = 0;
    for server in [Server::Sprig, Server::Tokio] {
        let started = Instant::now();
        let run = ServerProcess::start(server).and_then(|process| load(&process, n));
        match run {
            Ok(run) => {
                run.report(server.name(), n);
                errors += run.errors;
            }
            Err(problem) => {
                eprintln!("echo_scale: {} server: {problem}", server.name());
                report(&format!("{}_echo_scale_errors", server.name()), 1.0, "count");
                errors += 1;
            }
        }
        eprintln!("# echo_scale: the {} run took {:.2?}", server.name(), started.elapsed());
    }
    if errors > 0 {
        eprintln!("echo_scale: {errors} errors");
        std::process::exit(1);
    }
}

/// Checks that this process may hold `n` connections, raising its limit of
/// open files if need be (the server's child inherits the raised limit).
fn preflight(n: u64) -> Result<(), String> {
    let needed = n + FD_MARGIN;
    let limit = raise_fd_limit().map_err(|err| format!("cannot raise RLIMIT_NOFILE: {err}"))?;
    if limit < needed {
        return Err(format!(
            "{n} connections need {needed} open files in each process (the client's sockets in this \
             one, the server's in its child), but the hard limit of open files (RLIMIT_NOFILE) is \
             {limit}: raise it (`ulimit -Hn {needed}` as root in the shell that runs this, `nofile` in \
             /etc/security/limits.conf, or LimitNOFILE= for a systemd unit), or pass a smaller --n"
        ));
    }
    const PORTS: &str = "/proc/sys/net/ipv4/ip_local_port_range";
    if let Ok(range) = std::fs::read_to_string(PORTS) {
        let bounds: Vec<u64> = range.split_whitespace().filter_map(|bound| bound.parse().ok()).collect();
        if let [low, high] = bounds[..] {
            let ports = (high + 1).saturating_sub(low);
            if ports < n {
                return Err(format!(
                    "{n} connections from one address to one server need {n} ephemeral ports, but \
                     net.ipv4.ip_local_port_range ({low} to {high}) has {ports}: widen it (`sysctl -w \
                     net.ipv4.ip_local_port_range=\"1024 65535\"` as root), or pass a smaller --n"
                ));
            }
        }
    }
    Ok(())
}

/// Raises this process's soft limit of open files to its hard limit;
/// returns the limit now in force.
fn raise_fd_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// The hidden server command: `args` is the rest of the command line after
/// [`SERVER_COMMAND`].
pub(crate) fn serve_child(args: &[String]) -> ExitCode {
    let server = match args {
        [name] => Server::from_name(name),
        _ => None,
    };
    let Some(server) = server else {
        eprintln!("sprig-bench {SERVER_COMMAND}: expected `sprig` or `tokio`, got {args:?}");
        return ExitCode::from(2);
    };
    if let Err(err) = raise_fd_limit() {
        eprintln!("sprig-bench {SERVER_COMMAND}: cannot raise RLIMIT_NOFILE: {err}");
    }
    // The benchmark holds our stdin: when it exits, so do we.
    std::thread::spawn(|| {
        let _ = io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let served = match server {
        Server::Sprig => serve_sprig(),
        Server::Tokio => serve_tokio(),
    };
    if let Err(err) = served {
        eprintln!("sprig-bench {SERVER_COMMAND} {}: {err}", server.name());
    }
    ExitCode::FAILURE
}

/// Tells the benchmark where the server listens.
fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{addr}")?;
    stdout.flush()
}

/// sprig's echo server (the `echo_server` example's) on this thread's hub.
fn serve_sprig() -> io::Result<()> {
    let server = sprig::net::StreamServer::bind("127.0.0.1:0", crate::net::sprig_echo)?;
    server.start()?;
    sprig::yield_now(); // the accept loop starts, and parks, before the baseline
    announce(server.local_addrs()[0])?;
    server.serve_forever()
}

/// tokio's echo server on a current-thread runtime.
fn serve_tokio() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        crate::net::tokio_serve(listener).await;
        Ok(())
    })
}

/// An echo server running in a child process; killed when dropped.
struct ServerProcess {
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(server: Server) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|err| format!("cannot find this binary: {err}"))?;
        let mut child = Command::new(exe)
            .args([SERVER_COMMAND, server.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start the server process: {err}"))?;
        let stdin = child.stdin.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
        let mut process = ServerProcess { child, _stdin: stdin, addr: SocketAddr::from(([0, 0, 0, 0], 0)) };
        match read.map(|_| line.trim().parse()) {
            Ok(Ok(addr)) => {
                process.addr = addr;
                Ok(process)
            }
            _ => Err(format!("the server process did not say where it listens (it printed {line:?})")),
        }
    }

    /// A file of the child's in /proc.
    fn proc_file(&self, name: &str) -> String {
        format!("/proc/{}/{name}", self.child.id())
    }

    /// The child's resident memory, in bytes: `VmRSS` from its status.
    fn resident_bytes(&self) -> Result<u64, String> {
        kib_field(&self.proc_file("status"), "VmRSS:")
    }

    /// How many descriptors the child has open.
    fn open_fds(&self) -> Result<usize, String> {
        let dir = self.proc_file("fd");
        Ok(std::fs::read_dir(&dir).map_err(|err| format!("{dir}: {err}"))?.count())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The field `name` of a /proc file (`VmRSS:  1234 kB`), in bytes.
fn kib_field(path: &str, name: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("{path}: no {name} field"))
}

/// A point of the run that every client passes: set once all have arrived
/// (or given up).
struct Checkpoint {
    left: Cell<u64>,
    reached: Event,
}

impl Checkpoint {
    fn new(n: u64) -> Checkpoint {
        Checkpoint { left: Cell::new(n), reached: Event::new() }
    }

    fn arrive(&self) {
        let left = self.left.get() - 1;
        self.left.set(left);
        if left == 0 {
            self.reached.set();
        }
    }

    fn wait(&self) -> Result<(), String> {
        self.reached.wait().map_err(|err| err.to_string())
    }
}

/// What the clients share with the green thread that drives the run.
struct Run {
    /// Caps the connects in flight.
    connecting: Semaphore,
    /// Every client connected and made its first round trip.
    connected: Checkpoint,
    /// Set by the driver: make the round trips.
    go: Event,
    /// Every client made its round trips.
    echoed: Checkpoint,
    /// Set by the driver: close the connections.
    release: Event,
}

/// Which checkpoints a client has passed; one that gives up arrives at the
/// others as it goes, so that nobody waits for it.
struct Progress<'a> {
    run: &'a Run,
    passed: usize,
}

impl Progress<'_> {
    fn arrive(&mut self) {
        [&self.run.connected, &self.run.echoed][self.passed].arrive();
        self.passed += 1;
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        while self.passed < 2 {
            self.arrive();
        }
    }
}

/// One client connection, `id`: connect, a round trip, wait for the others,
/// [`ROUND_TRIPS`] round trips, wait for the driver to release it.
fn client(id: u64, addr: SocketAddr, run: &Run) -> Result<(), String> {
    let mut progress = Progress { run, passed: 0 };
    // A connect completes once the server's kernel queues the connection,
    // before the server accepts it: the first echo is what shows that it
    // left the backlog, so the permit is held until then.
    let permit = run.connecting.acquire().map_err(|err| err.to_string())?;
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|err| format!("connect: {err}"))?;
    let set_up = [
        stream.set_nodelay(true),
        stream.set_read_timeout(Some(IO_TIMEOUT)),
        stream.set_write_timeout(Some(IO_TIMEOUT)),
    ];
    set_up.into_iter().collect::<io::Result<()>>().map_err(|err| format!("socket options: {err}"))?;
    round_trip(&stream, id, 0)?;
    drop(permit);
    progress.arrive();
    run.go.wait().map_err(|err| err.to_string())?;
    for round in 1..=ROUND_TRIPS {
        round_trip(&stream, id, round)?;
    }
    progress.arrive();
    run.release.wait().map_err(|err| err.to_string())
}

/// Sends a message particular to connection `id` and `round`, and checks
/// that the same bytes come back.
fn round_trip(stream: &TcpStream, id: u64, round: u64) -> Result<(), String> {
    let message: [u8; MESSAGE] =
        std::array::from_fn(|i| (id.wrapping_mul(31).wrapping_add(round * 7).wrapping_add(i as u64)) as u8);
    let mut back = [0; MESSAGE];
    let mut stream = stream;
    stream.write_all(&message).map_err(|err| format!("round trip {round}: write: {err}"))?;
    stream.read_exact(&mut back).map_err(|err| format!("round trip {round}: read: {err}"))?;
    if back != message {
        return Err(format!("round trip {round}: the echo differs from what was sent"));
    }
    Ok(())
}

/// What one server's run measured.
struct Measured {
    errors: u64,
    connect: Duration,
    echo: Duration,
    baseline: u64,
    held: u64,
    server_fds: usize,
}

impl Measured {
    fn report(&self, server: &str, n: u64) {
        let per_connection = self.held.saturating_sub(self.baseline) as f64 / n as f64;
        report(&format!("{server}_echo_scale_connections"), n as f64, "count");
        report(&format!("{server}_echo_scale_errors"), self.errors as f64, "count");
        report(&format!("{server}_echo_scale_connect_s"), self.connect.as_secs_f64(), "s");
        report(
            &format!("{server}_echo_scale_round_trips_per_s"),
            (n * ROUND_TRIPS) as f64 / self.echo.as_secs_f64(),
            "round_trips/s",
        );
        report(&format!("{server}_echo_scale_rss_per_connection_bytes"), per_connection, "bytes");
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        eprintln!(
            "# echo_scale {server}: {n} connections held at once ({} descriptors open in the server), \
             {ROUND_TRIPS} round trips of {MESSAGE} bytes each; server VmRSS {:.1} MiB listening, {:.1} \
             MiB holding them",
            self.server_fds,
            mib(self.baseline),
            mib(self.held)
        );
    }
}

/// Runs the scale scenario with `n` connections against `server`.
fn load(server: &ServerProcess, n: u64) -> Result<Measured, String> {
    let baseline = server.resident_bytes()?;
    let run = Rc::new(Run {
        connecting: Semaphore::new(CONNECTS_IN_FLIGHT),
        connected: Checkpoint::new(n),
        go: Event::new(),
        echoed: Checkpoint::new(n),
        release: Event::new(),
    });
    let started = Instant::now();
    let addr = server.addr;
    let clients: Vec<_> = (0..n)
        .map(|id| {
            let run = run.clone();
            sprig::spawn(move || client(id, addr, &run))
        })
        .collect();
    run.connected.wait()?;
    let connect = started.elapsed();
    let server_fds = server.open_fds()?;
    let started = Instant::now();
    run.go.set();
    run.echoed.wait()?;
    let echo = started.elapsed();
    let held = server.resident_bytes()?;
    run.release.set();
    let mut errors = 0;
    for (id, client) in clients.into_iter().enumerate() {
        let failure = match client.get() {
            Ok(Ok(())) => continue,
            Ok(Err(problem)) => problem,
            Err(err) => err.to_string(),
        };
        errors += 1;
        if errors <= ERRORS_SHOWN as u64 {
            eprintln!("echo_scale: connection {id}: {failure}");
        }
    }
    if errors == 0 && server_fds < n as usize {
        eprintln!("echo_scale: the server had {server_fds} descriptors open, fewer than {n} connections");
        errors += 1;
    }
    Ok(Measured { errors, connect, echo, baseline, held, server_fds })
}
