//! Scale runs: `N` connections held open at once against a server on one
//! thread in a child process, and the server's resident memory per
//! connection. The `echo_scale` and `http_scale` cases differ only in their
//! servers and in what a round trip over a connection is (a [`Scenario`]).
//!
//! The server runs in a child process ([`crate::child`]), so that the
//! client's sockets and the server's each have a process's open-file limit
//! to themselves, and so that the server's memory can be read apart from
//! the client's. The client is one greenery hub in the benchmark's process, a
//! green thread per connection:
//!
//! 1. The server's resident memory is read once it listens (the baseline).
//! 2. Every client connects and makes one round trip (at most
//!    [`CONNECTS_IN_FLIGHT`] at a time between the connect and the answer,
//!    fewer than the shortest listen backlog of the servers, 128); all then
//!    wait until all
//!    `N` have. The server's open descriptors are counted: it must hold all
//!    `N`.
//! 3. Every connection makes the scenario's further round trips (if any),
//!    checking what comes back, and waits again.
//! 4. With all `N` connected and idle, the server's resident memory is read
//!    again: the difference from the baseline, over `N`, is the figure.
//! 5. After [`IDLE_WAIT`] more of idleness, it is read once more: greenery
//!    stashes the stacks of green threads parked that long (see
//!    `greenery::stack::stash_after`), so this is what a server holding many
//!    idle connections costs.
//! 6. Every client closes its connection, and after [`AFTER_WAIT`] it is
//!    read a last time: what the server keeps once a burst of connections
//!    has come and gone (greenery's hub gives back the memory finished green
//!    threads kept once none has finished for
//!    `greenery::stack::release_after`).
//!
//! Any failure (a connect, a short or wrong answer, a timeout) is an error:
//! each is counted and the first few are printed, and the case exits with a
//! failure status if there was one.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::net::TcpStream;
use greenery::sync::{Event, Semaphore};

use crate::child::{ServerProcess, raise_fd_limit};
use crate::report;

/// Connections between their connect and their first answer at once: fewer
/// than the listen backlog (128, for mio's and tokio's listeners as for
/// std's), so that the server's accept queue never overflows, which drops
/// the SYN and makes the client retry a second later.
const CONNECTS_IN_FLIGHT: usize = 100;
/// Descriptors each process needs beside one per connection.
const FD_MARGIN: u64 = 64;
/// How long one connect, read or write may wait before it counts as an
/// error: only a guard against hangs.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the connections stay idle before the last reading of the
/// server's memory: long enough for greenery's hub to stash every parked green
/// thread's stack (a sweep every `stash_after` stashes those parked before
/// the previous sweep, so two periods and a margin).
const IDLE_WAIT: Duration = Duration::from_millis(2500);
const _: () = assert!(IDLE_WAIT.as_millis() >= 2 * greenery::stack::DEFAULT_STASH_AFTER.as_millis());
/// How long after the last connection closed the server's memory is read a
/// last time: past the delay after which greenery's hub gives back what
/// finished green threads kept, with a margin.
const AFTER_WAIT: Duration = Duration::from_secs(13);
const _: () = assert!(AFTER_WAIT.as_millis() >= greenery::stack::DEFAULT_RELEASE_AFTER.as_millis() + 2000);
/// Errors printed in full (all are counted).
const ERRORS_SHOWN: usize = 10;

/// What a scale case does over each connection.
#[derive(Clone, Copy)]
pub(crate) struct Scenario {
    /// The case's name, which the figures start with after the server's:
    /// `greenery_echo_scale_errors`.
    pub(crate) case: &'static str,
    /// The hidden command that runs one of its servers in a child process.
    pub(crate) command: &'static str,
    /// What a client speaks over its TCP connection once connected: the
    /// stream itself ([`plain`]), or TLS over it.
    pub(crate) wrap: fn(TcpStream) -> Result<Box<dyn Duplex>, String>,
    /// One round trip over connection `id`, number `round` (0 for the first,
    /// made right after the connect), checking what comes back.
    pub(crate) round_trip: fn(&mut dyn Duplex, u64, u64) -> Result<(), String>,
    /// Round trips each connection makes after its first, once all are open.
    pub(crate) round_trips: u64,
    /// What a round trip is, for the summary on stderr: "64-byte echoes".
    pub(crate) what: &'static str,
}

/// A client's stream: read and written.
pub(crate) trait Duplex: io::Read + io::Write {}

impl<T: io::Read + io::Write> Duplex for T {}

/// [`Scenario::wrap`] for clients that speak over TCP itself.
pub(crate) fn plain(stream: TcpStream) -> Result<Box<dyn Duplex>, String> {
    Ok(Box::new(stream))
}

/// A server a scale case loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// The name its figures start with.
    pub(crate) name: &'static str,
    /// The argument of the hidden command that runs it.
    pub(crate) arg: &'static str,
}

/// Runs `scenario` with `n` connections against each of `servers` in turn;
/// exits the process with a failure status if there was any error.
pub(crate) fn run(scenario: &Scenario, n: u64, servers: &[Target]) {
    run_with(scenario, n, servers, &|server| ServerProcess::start(scenario.command, server.arg));
}

/// As [`run`], starting each server with `start`.
pub(crate) fn run_with(
    scenario: &Scenario,
    n: u64,
    servers: &[Target],
    start: &dyn Fn(&Target) -> Result<ServerProcess, String>,
) {
    let case = scenario.case;
    if let Err(problem) = preflight(n) {
        eprintln!("{case}: {problem}");
        std::process::exit(1);
    }
    let mut errors = 0;
    for server in servers {
        let started = Instant::now();
        let run = start(server).and_then(|process| load(scenario, &process, n));
        match run {
            Ok(run) => {
                run.report(scenario, server.name, n);
                errors += run.errors;
            }
            Err(problem) => {
                eprintln!("{case}: {} server: {problem}", server.name);
                report(&format!("{}_{case}_errors", server.name), 1.0, "count");
                errors += 1;
            }
        }
        eprintln!("# {case}: the {} run took {:.2?}", server.name, started.elapsed());
    }
    if errors > 0 {
        eprintln!("{case}: {errors} errors");
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
    answered: Checkpoint,
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
        [&self.run.connected, &self.run.answered][self.passed].arrive();
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
/// the scenario's further round trips, wait for the driver to release it.
fn client(scenario: &Scenario, id: u64, addr: std::net::SocketAddr, run: &Run) -> Result<(), String> {
    let mut progress = Progress { run, passed: 0 };
    // A connect completes once the server's kernel queues the connection,
    // before the server accepts it: the first answer is what shows that it
    // left the backlog, so the permit is held until then.
    let permit = run.connecting.acquire().map_err(|err| err.to_string())?;
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|err| format!("connect: {err}"))?;
    let set_up = [
        stream.set_nodelay(true),
        stream.set_read_timeout(Some(IO_TIMEOUT)),
        stream.set_write_timeout(Some(IO_TIMEOUT)),
    ];
    set_up.into_iter().collect::<io::Result<()>>().map_err(|err| format!("socket options: {err}"))?;
    let mut stream = (scenario.wrap)(stream)?;
    (scenario.round_trip)(&mut *stream, id, 0)?;
    drop(permit);
    progress.arrive();
    run.go.wait().map_err(|err| err.to_string())?;
    for round in 1..=scenario.round_trips {
        (scenario.round_trip)(&mut *stream, id, round)?;
    }
    progress.arrive();
    run.release.wait().map_err(|err| err.to_string())
}

/// What one server's run measured.
struct Measured {
    errors: u64,
    connect: Duration,
    answer: Duration,
    baseline: u64,
    held: u64,
    idle: u64,
    /// After every connection closed, and [`AFTER_WAIT`].
    after: u64,
    server_fds: usize,
}

impl Measured {
    fn report(&self, scenario: &Scenario, server: &str, n: u64) {
        let case = scenario.case;
        let per_connection = |rss: u64| rss.saturating_sub(self.baseline) as f64 / n as f64;
        report(&format!("{server}_{case}_connections"), n as f64, "count");
        report(&format!("{server}_{case}_errors"), self.errors as f64, "count");
        report(&format!("{server}_{case}_connect_s"), self.connect.as_secs_f64(), "s");
        if scenario.round_trips > 0 {
            report(
                &format!("{server}_{case}_round_trips_per_s"),
                (n * scenario.round_trips) as f64 / self.answer.as_secs_f64(),
                "round_trips/s",
            );
        }
        report(&format!("{server}_{case}_rss_per_connection_bytes"), per_connection(self.held), "bytes");
        report(&format!("{server}_{case}_idle_rss_per_connection_bytes"), per_connection(self.idle), "bytes");
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        report(&format!("{server}_{case}_baseline_rss_mib"), mib(self.baseline), "MiB");
        report(&format!("{server}_{case}_burst_rss_mib"), mib(self.held), "MiB");
        report(&format!("{server}_{case}_after_burst_rss_mib"), mib(self.after), "MiB");
        eprintln!(
            "# {case} {server}: {n} connections held at once ({} descriptors open in the server), {} \
             {} each; server VmRSS {:.1} MiB listening, {:.1} MiB holding them, {:.1} MiB after \
             {:.1} s idle, {:.1} MiB {:.0} s after they all closed",
            self.server_fds,
            1 + scenario.round_trips,
            scenario.what,
            mib(self.baseline),
            mib(self.held),
            mib(self.idle),
            IDLE_WAIT.as_secs_f64(),
            mib(self.after),
            AFTER_WAIT.as_secs_f64()
        );
    }
}

/// Runs `scenario` with `n` connections against `server`.
fn load(scenario: &Scenario, server: &ServerProcess, n: u64) -> Result<Measured, String> {
    let scenario = *scenario; // for the clients' green threads, which are 'static
    let baseline = server.resident_bytes()?;
    let run = Rc::new(Run {
        connecting: Semaphore::new(CONNECTS_IN_FLIGHT),
        connected: Checkpoint::new(n),
        go: Event::new(),
        answered: Checkpoint::new(n),
        release: Event::new(),
    });
    let started = Instant::now();
    let addr = server.addr;
    let clients: Vec<_> = (0..n)
        .map(|id| {
            let run = run.clone();
            greenery::spawn(move || client(&scenario, id, addr, &run))
        })
        .collect();
    run.connected.wait()?;
    let connect = started.elapsed();
    let server_fds = server.open_fds()?;
    let started = Instant::now();
    run.go.set();
    run.answered.wait()?;
    let answer = started.elapsed();
    let held = server.resident_bytes()?;
    greenery::sleep(IDLE_WAIT);
    let idle = server.resident_bytes()?;
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
            eprintln!("{}: connection {id}: {failure}", scenario.case);
        }
    }
    if errors == 0 && server_fds < n as usize {
        eprintln!(
            "{}: the server had {server_fds} descriptors open, fewer than {n} connections",
            scenario.case
        );
        errors += 1;
    }
    // The clients are gone and their sockets closed: the burst is over.
    greenery::sleep(AFTER_WAIT);
    let after = server.resident_bytes()?;
    Ok(Measured { errors, connect, answer, baseline, held, idle, after, server_fds })
}
