//! The `echo_threads` case: the echo server on 2 OS threads against 1, in a
//! child process (this binary's hidden `__echo_server NAME:THREADS`, or Go):
//!
//! - greenery: [`ServerThreads`](greenery::net::ServerThreads), a hub per
//!   thread, each with a `StreamServer` on a listener of its own on the same
//!   address (`SO_REUSEPORT`: the kernel spreads the connections);
//! - tokio: its current-thread runtime against its multi-thread runtime with
//!   2 workers;
//! - may: 1 worker against 2;
//! - Go, if `go` is installed: a goroutine per connection, `GOMAXPROCS` 1
//!   against 2.
//!
//! Nothing is pinned: the servers' threads and the client's go where the
//! scheduler puts them. The client is this process: [`CLIENT_HUBS`] hubs
//! (greenery's [`run_on`](greenery::hub::run_on)), each with
//! [`CONNECTIONS_PER_HUB`] connections to every server, each connection a
//! green thread making round trips of [`MESSAGE`] bytes in a closed loop.
//! The configurations take turns round by round (greenery on 1 thread, on 2,
//! tokio on 1, ..., greenery on 1 again), after an untimed warm-up of each.
//!
//! A configuration's figures: the median of its rounds' round trips per
//! second; its server's CPU time (user and system, from the child's
//! `/proc/PID/stat`) over all its rounds divided by all their round trips;
//! likewise the client's own CPU time. The client needs about as much CPU
//! per round trip as a server, so on a machine with as many cores as the
//! server has threads, the client and a 2-thread server share them: the
//! throughput of 2 threads against 1 is bounded well below 2, and the CPU
//! per round trip is the figure that compares the servers.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use greenery::net::TcpStream;

use crate::child::{CpuTime, ServerProcess, build_go, cpus_online, raise_fd_limit, unpin};
use crate::echo_scale::SERVER_COMMAND;
use crate::measure::median;
use crate::report;

/// The client's hubs, each on an OS thread of its own.
const CLIENT_HUBS: usize = 2;
/// Connections each client hub keeps open to each server.
const CONNECTIONS_PER_HUB: usize = 32;
/// Bytes per message.
const MESSAGE: usize = 64;
/// Timed rounds per configuration.
const ROUNDS: u64 = 3;
/// The untimed warm-up of each configuration, before the rounds.
const WARM_UP: Duration = Duration::from_millis(200);
/// The thread counts each server runs with, in this order.
const THREADS: [usize; 2] = [1, 2];

/// The servers this binary runs, by the name of their figures and the
/// argument of [`SERVER_COMMAND`] (before `:THREADS`).
const SERVERS: [(&str, &str); 3] = [("greenery", "greenery"), ("tokio", "tokio"), ("may", "may")];

/// Go's echo server, for this case: built with the machine's `go` at run
/// time (nothing of it is committed but this source); `GOMAXPROCS` is its
/// thread count. Go's TCP connections have `TCP_NODELAY` by default.
const GO_SERVER: &str = r#"package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(listener.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(conn net.Conn) {
			defer conn.Close()
			buf := make([]byte, 4096)
			for {
				n, err := conn.Read(buf)
				if n > 0 {
					if _, err := conn.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(conn)
	}
}
"#;

/// One server on one thread count.
struct Configuration {
    name: &'static str,
    threads: usize,
    process: ServerProcess,
}

/// What one client hub saw of one round of one configuration.
struct HubRound {
    configuration: usize,
    /// Which timed round, or `None` for the warm-up.
    round: Option<u64>,
    round_trips: u64,
    /// The hub's own CPU time over the round.
    client_cpu_ns: f64,
    /// Only the first hub: the round's wall time (from when every hub
    /// starts to when every hub is done) and the server's CPU time.
    wall_ns: f64,
    server_cpu: Option<CpuTime>,
    /// Only the first hub: the CPU time the whole machine spent over the
    /// round, everyone's (from /proc/stat).
    machine_busy_ns: f64,
}

/// A configuration's rounds, summed up.
struct Summary {
    round_trips_per_s: f64,
    min_round_trips_per_s: f64,
    max_round_trips_per_s: f64,
    server_cpu_ns_per_round_trip: f64,
    server_user_share: f64,
    client_cpu_ns_per_round_trip: f64,
    round_trips: u64,
    /// How many CPUs other processes kept busy, on average over the rounds
    /// (the machine's busy time less the server's and the client's): the
    /// noise of a shared machine.
    others_busy_cpus: f64,
}

/// The `echo_threads` case: each server on 1 and on 2 threads, `n`
/// milliseconds of load in all per configuration, in [`ROUNDS`] rounds.
pub(crate) fn echo_threads(n: u64) {
    // An earlier case of `all` may have pinned this thread (`echo` does):
    // the client's hubs and the servers inherit whatever it has.
    unpin();
    if let Err(err) = raise_fd_limit() {
        eprintln!("# echo_threads: cannot raise RLIMIT_NOFILE: {err}");
    }
    let started = Instant::now();
    let round = Duration::from_millis((n / ROUNDS).max(1));
    let mut configurations = Vec::new();
    for (name, arg) in SERVERS {
        for threads in THREADS {
            let process =
                ServerProcess::start(SERVER_COMMAND, &format!("{arg}:{threads}")).unwrap_or_else(|problem| {
                    eprintln!("echo_threads: {name} server on {threads} thread(s): {problem}");
                    std::process::exit(1);
                });
            configurations.push(Configuration { name, threads, process });
        }
    }
    let go = build_go("echo", GO_SERVER);
    match &go {
        Ok(binary) => {
            for threads in THREADS {
                let mut command = Command::new(binary);
                command.env("GOMAXPROCS", threads.to_string());
                match ServerProcess::start_command(command) {
                    Ok(process) => configurations.push(Configuration { name: "go", threads, process }),
                    Err(problem) => eprintln!("# echo_threads: go server: {problem}"),
                }
            }
        }
        Err(problem) => eprintln!("# echo_threads: go figures skipped: {problem}"),
    }
    if let Ok(binary) = &go {
        // Running, the servers need the file no more.
        let _ = std::fs::remove_dir_all(binary.parent().expect("a directory"));
    }
    let barrier = Barrier::new(CLIENT_HUBS);
    let seen: Vec<HubRound> =
        greenery::hub::run_on(CLIENT_HUBS, |hub| load(hub, &configurations, round, &barrier))
            .into_iter()
            .flatten()
            .collect();
    let summaries: Vec<Summary> = (0..configurations.len()).map(|index| Summary::of(&seen, index)).collect();
    for (configuration, summary) in configurations.iter().zip(&summaries) {
        let name = format!("{}_{}t", configuration.name, configuration.threads);
        report(&format!("{name}_echo_roundtrips_per_s"), summary.round_trips_per_s, "round_trips/s");
        report(
            &format!("{name}_echo_server_cpu_ns_per_roundtrip"),
            summary.server_cpu_ns_per_round_trip,
            "ns",
        );
        report(
            &format!("{name}_echo_client_cpu_ns_per_roundtrip"),
            summary.client_cpu_ns_per_round_trip,
            "ns",
        );
        eprintln!(
            "# {name}_echo: {} round trips in {ROUNDS} rounds of {round:.2?}: min {:.0}, median {:.0}, max {:.0} \
             round trips/s; server CPU {:.0}% user; other processes kept {:.2} of the {} CPUs busy meanwhile",
            summary.round_trips,
            summary.min_round_trips_per_s,
            summary.round_trips_per_s,
            summary.max_round_trips_per_s,
            summary.server_user_share * 100.0,
            summary.others_busy_cpus,
            cpus_online()
        );
    }
    // How each server's throughput and CPU per round trip change from one
    // thread to two.
    for pair in configurations.iter().zip(&summaries).collect::<Vec<_>>().chunks(2) {
        if let [(one, one_summary), (two, two_summary)] = pair
            && one.name == two.name
        {
            report(
                &format!("{}_echo_2t_vs_1t_roundtrips_ratio", one.name),
                two_summary.round_trips_per_s / one_summary.round_trips_per_s,
                "x",
            );
            report(
                &format!("{}_echo_2t_vs_1t_server_cpu_ratio", one.name),
                two_summary.server_cpu_ns_per_round_trip / one_summary.server_cpu_ns_per_round_trip,
                "x",
            );
        }
    }
    drop(configurations);
    eprintln!(
        "# echo_threads: {CLIENT_HUBS} client hubs x {CONNECTIONS_PER_HUB} connections, {MESSAGE}-byte round trips, \
         {ROUNDS} rounds of {round:.2?} per server and thread count after {WARM_UP:.2?} of warm-up, nothing pinned, \
         in {:.2?}",
        started.elapsed()
    );
    eprintln!(
        "# echo_threads: the client shares this machine's {} CPUs with the server: a 2-thread server cannot have 2 \
         cores to itself, so the 2t/1t round-trip ratio is bounded; CPU per round trip is the comparable figure",
        cpus_online()
    );
}

/// What client hub `hub` does: connects to every server, then runs every
/// configuration's warm-up and rounds in turn, in step with the other hubs.
fn load(hub: usize, configurations: &[Configuration], round: Duration, barrier: &Barrier) -> Vec<HubRound> {
    let streams: Vec<Vec<Rc<TcpStream>>> =
        configurations.iter().map(|configuration| connect(configuration.process.addr)).collect();
    let mut seen = Vec::new();
    for round_index in std::iter::once(None).chain((0..ROUNDS).map(Some)) {
        for (index, (configuration, streams)) in configurations.iter().zip(&streams).enumerate() {
            // Read before the round, while the server is idle.
            let server_before = (hub == 0).then(|| server_cpu(configuration));
            let machine_before = if hub == 0 { machine_busy_ns() } else { 0.0 };
            barrier.wait();
            let started = Instant::now();
            let client_before = thread_cpu_ns();
            let round_trips = drive(streams, started + if round_index.is_some() { round } else { WARM_UP });
            let client_cpu_ns = thread_cpu_ns() - client_before;
            // Every hub is done: the server has answered every round trip.
            barrier.wait();
            let wall_ns = started.elapsed().as_secs_f64() * 1e9;
            let server_cpu = server_before.map(|before| server_cpu(configuration) - before);
            let machine_busy_ns = if hub == 0 { machine_busy_ns() - machine_before } else { 0.0 };
            seen.push(HubRound {
                configuration: index,
                round: round_index,
                round_trips,
                client_cpu_ns,
                wall_ns,
                server_cpu,
                machine_busy_ns,
            });
        }
    }
    seen
}

/// This hub's connections to `addr`.
fn connect(addr: SocketAddr) -> Vec<Rc<TcpStream>> {
    (0..CONNECTIONS_PER_HUB)
        .map(|_| {
            let stream = TcpStream::connect(addr).unwrap_or_else(|err| {
                eprintln!("echo_threads: cannot connect to {addr}: {err}");
                std::process::exit(1);
            });
            stream.set_nodelay(true).expect("TCP_NODELAY");
            Rc::new(stream)
        })
        .collect()
}

/// Round trips on every stream, each in a green thread of its own, until
/// `deadline`: how many.
fn drive(streams: &[Rc<TcpStream>], deadline: Instant) -> u64 {
    let loops: Vec<_> = streams
        .iter()
        .map(|stream| {
            let stream = stream.clone();
            greenery::spawn(move || {
                let message = [b'x'; MESSAGE];
                let mut back = [0; MESSAGE];
                let mut round_trips = 0;
                while Instant::now() < deadline {
                    let echoed =
                        (&*stream).write_all(&message).and_then(|()| (&*stream).read_exact(&mut back));
                    if let Err(err) = echoed {
                        eprintln!("echo_threads: a round trip failed: {err}");
                        std::process::exit(1);
                    }
                    round_trips += 1;
                }
                round_trips
            })
        })
        .collect();
    loops.into_iter().map(|green| green.get().expect("a client loop finishes")).sum()
}

/// The server's CPU time so far; exits if it cannot be read.
fn server_cpu(configuration: &Configuration) -> CpuTime {
    configuration.process.cpu().unwrap_or_else(|problem| {
        eprintln!("echo_threads: {} on {} thread(s): {problem}", configuration.name, configuration.threads);
        std::process::exit(1);
    })
}

/// The CPU time all the machine's CPUs have spent busy so far, in
/// nanoseconds, from the first line of /proc/stat (zero if it cannot be
/// read): in user space, in the kernel, in interrupts and softirqs (which
/// the kernel also charges to the process they interrupted), or lost to
/// the hypervisor; everything but idle and waiting for I/O.
fn machine_busy_ns() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // `cpu  user nice system idle iowait irq softirq steal ...`, in ticks.
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&field| ticks.get(field)).sum();
    // SAFETY: sysconf only reads the system's configuration.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy as f64 * 1e9 / per_second
}

/// The CPU time the calling thread has used, in nanoseconds.
fn thread_cpu_ns() -> f64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    time.tv_sec as f64 * 1e9 + time.tv_nsec as f64
}

impl Summary {
    /// Configuration `index`'s timed rounds, out of what the hubs saw (the
    /// first hub's reports first: they have the wall and server times).
    fn of(seen: &[HubRound], index: usize) -> Summary {
        let mine: Vec<&HubRound> =
            seen.iter().filter(|hub| hub.round.is_some() && hub.configuration == index).collect();
        let mut rates: Vec<f64> = (0..ROUNDS)
            .map(|round| {
                let hubs: Vec<&&HubRound> = mine.iter().filter(|hub| hub.round == Some(round)).collect();
                let round_trips: u64 = hubs.iter().map(|hub| hub.round_trips).sum();
                round_trips as f64 * 1e9 / hubs[0].wall_ns.max(1.0)
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        let round_trips: u64 = mine.iter().map(|hub| hub.round_trips).sum();
        let server = mine.iter().filter_map(|hub| hub.server_cpu).fold(CpuTime::default(), |sum, cpu| {
            CpuTime { user_ns: sum.user_ns + cpu.user_ns, system_ns: sum.system_ns + cpu.system_ns }
        });
        let client_ns: f64 = mine.iter().map(|hub| hub.client_cpu_ns).sum();
        let first_hub = || mine.iter().filter(|hub| hub.server_cpu.is_some());
        let machine_ns: f64 = first_hub().map(|hub| hub.machine_busy_ns).sum();
        let wall_ns: f64 = first_hub().map(|hub| hub.wall_ns).sum();
        let per_round_trip = |ns: f64| ns / round_trips.max(1) as f64;
        Summary {
            round_trips_per_s: median(&rates),
            min_round_trips_per_s: rates[0],
            max_round_trips_per_s: rates[rates.len() - 1],
            server_cpu_ns_per_round_trip: per_round_trip(server.total_ns()),
            server_user_share: server.user_ns / server.total_ns().max(1.0),
            client_cpu_ns_per_round_trip: per_round_trip(client_ns),
            round_trips,
            others_busy_cpus: (machine_ns - server.total_ns() - client_ns).max(0.0) / wall_ns.max(1.0),
        }
    }
}
