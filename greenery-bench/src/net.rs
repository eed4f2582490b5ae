//! Networking: an echo server on one thread (greenery's hub, tokio's
//! current-thread runtime, may with one worker), loaded by one client.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::child::pin_to;
use crate::measure::{self, Peer};
use crate::{report, report_ratio, report_timing};

/// The CPU the servers run on; the client runs on the next one.
const SERVER_CPU: usize = 0;

/// Connections the client keeps open to each server.
const CONNECTIONS: usize = 50;
/// Bytes per message.
const MESSAGE: usize = 64;

/// Bytes an echo handler reads at a time (on the green thread's stack, or
/// in the tokio task).
const ECHO_BUFFER: usize = 4096;

/// greenery's echo handler for the throughput cases, the same shape as the
/// tokio peer's: `TCP_NODELAY`, then write back whatever is read, with a
/// buffer on the green thread's stack, until the peer closes the
/// connection. (The `echo_server` example waits for bytes without a buffer
/// and borrows one only while they are in hand; the `echo_scale` case runs
/// its handler.)
pub(crate) fn greenery_echo(mut stream: greenery::net::TcpStream, _peer: SocketAddr) {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut buf = [0; ECHO_BUFFER];
    // (The paths name std's traits: tokio's, in scope for its peer, apply
    // to greenery's streams too.)
    while let Ok(n @ 1..) = std::io::Read::read(&mut stream, &mut buf) {
        if std::io::Write::write_all(&mut stream, &buf[..n]).is_err() {
            return;
        }
    }
}

/// tokio's echo server on `listener`: a task per connection running the
/// same handler as [`greenery_echo`]. Never returns; an accept error (out of
/// file descriptors) is reported and retried after a pause.
pub(crate) async fn tokio_serve(listener: tokio::net::TcpListener) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("# tokio echo server: accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut buf = [0; ECHO_BUFFER];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts greenery's echo server on a thread of its own: what the
/// `echo_server` example does (a `StreamServer`, a green thread per
/// connection, `TCP_NODELAY`).
fn greenery_server() -> (SocketAddr, ServerThreads) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        pin_to(SERVER_CPU);
        let server = greenery::net::StreamServer::bind("127.0.0.1:0", greenery_echo).expect("greenery binds");
        tx.send((server.local_addrs()[0], ServerThreads::One(gettid()))).expect("the bench waits");
        server.serve_forever().expect("greenery serves");
    });
    rx.recv().expect("the server starts")
}

/// tokio's echo server on a current-thread runtime of its own thread.
fn tokio_server() -> (SocketAddr, ServerThreads) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        pin_to(SERVER_CPU);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("tokio binds");
            let addr = listener.local_addr().expect("an address");
            tx.send((addr, ServerThreads::One(gettid()))).expect("the bench waits");
            tokio_serve(listener).await;
        });
    });
    rx.recv().expect("the server starts")
}

/// may's echo server (one worker, configured by the caller, pinned to the
/// first CPU: [`SERVER_CPU`]).
fn may_server() -> (SocketAddr, ServerThreads) {
    let listener = may::net::TcpListener::bind("127.0.0.1:0").expect("may binds");
    let addr = listener.local_addr().expect("an address");
    may::go!(move || may_serve(listener));
    (addr, ServerThreads::Others)
}

/// may's echo server on `listener`, in a may coroutine: a coroutine per
/// connection running the same handler as [`greenery_echo`]. Returns only
/// if accepting fails.
pub(crate) fn may_serve(listener: may::net::TcpListener) {
    for stream in listener.incoming() {
        let mut stream = stream.expect("may accepts");
        may::go!(move || {
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut buf = [0; ECHO_BUFFER];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
}

/// The client: `CONNECTIONS` connections to one server, each driven by a
/// green thread on greenery's hub (the same client for every server).
struct Client {
    streams: Vec<Rc<greenery::net::TcpStream>>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let streams = (0..CONNECTIONS)
            .map(|_| {
                let stream = greenery::net::TcpStream::connect(addr).expect("the client connects");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                Rc::new(stream)
            })
            .collect();
        Client { streams }
    }

    /// `total` round trips, spread over the connections, each connection in
    /// a closed loop.
    fn round_trips(&mut self, total: u64) {
        let per_connection = total.div_ceil(CONNECTIONS as u64);
        let loops: Vec<_> = self
            .streams
            .iter()
            .map(|stream| {
                let stream = stream.clone();
                greenery::spawn(move || {
                    let message = [b'x'; MESSAGE];
                    let mut back = [0; MESSAGE];
                    for _ in 0..per_connection {
                        (&*stream).write_all(&message).expect("the client writes");
                        (&*stream).read_exact(&mut back).expect("the echo comes back");
                    }
                })
            })
            .collect();
        greenery::hub::joinall(&loops, None, false).expect("the client loops finish");
    }
}

/// The threads a server runs on, to charge it the CPU time they use.
#[derive(Clone, Copy)]
enum ServerThreads {
    /// One thread, by id.
    One(libc::pid_t),
    /// Every thread of the process but the client's and the other servers'
    /// (may's workers, which it starts itself).
    Others,
}

/// The calling thread's id.
fn gettid() -> libc::pid_t {
    // SAFETY: gettid(2) has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The CPU time a thread of this process has used, in nanoseconds (the
/// scheduler's own count, from `/proc/self/task/<tid>/schedstat`).
fn thread_cpu_ns(tid: libc::pid_t) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The CPU time `server`'s threads have used; `named` are the threads that
/// belong to someone else (the client, the other servers).
fn server_cpu_ns(server: ServerThreads, named: &[libc::pid_t]) -> u64 {
    match server {
        ServerThreads::One(tid) => thread_cpu_ns(tid),
        ServerThreads::Others => std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(|task| task.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
                    .filter(|tid| !named.contains(tid))
                    .map(thread_cpu_ns)
                    .sum()
            })
            .unwrap_or(0),
    }
}

/// CPU time spent by one server's threads over its rounds, and how many
/// round trips.
#[derive(Default, Clone, Copy)]
struct ServerCpu {
    ns: u64,
    round_trips: u64,
}

/// Runs `k` round trips with `client` (on this thread) and adds the CPU the
/// server's threads spent meanwhile to `account`.
fn timed_round(
    client: &mut Client,
    k: u64,
    server: ServerThreads,
    named: &[libc::pid_t],
    account: &Cell<ServerCpu>,
) {
    let before = server_cpu_ns(server, named);
    client.round_trips(k);
    let spent = server_cpu_ns(server, named).saturating_sub(before);
    let total = account.get();
    account.set(ServerCpu { ns: total.ns + spent, round_trips: total.round_trips + k });
}

/// Echo round trips of 64 bytes over 50 connections: greenery's server against
/// tokio's and may's, each on one thread, loaded in turn by the same client.
pub(crate) fn echo(n: u64) {
    crate::hub::configure_may();
    may::config().set_worker_pin(true);
    pin_to(SERVER_CPU + 1);
    let started = Instant::now();
    let servers = [greenery_server(), tokio_server(), may_server()];
    let threads = servers.map(|(_, threads)| threads);
    let mut named = vec![gettid()];
    named.extend(threads.iter().filter_map(|threads| match threads {
        ServerThreads::One(tid) => Some(*tid),
        ServerThreads::Others => None,
    }));
    let mut clients = servers.map(|(addr, _)| Client::connect(addr));
    let [greenery_client, tokio_client, may_client] = &mut clients;
    let round = (n / measure::ROUNDS as u64).max(CONNECTIONS as u64);
    let cpu = [(); 3].map(|()| Cell::new(ServerCpu::default()));
    let [greenery, tokio, may] = measure::interleaved([
        Peer::per_round(round, |k| timed_round(greenery_client, k, threads[0], &named, &cpu[0])),
        Peer::per_round(round, |k| timed_round(tokio_client, k, threads[1], &named, &cpu[1])),
        Peer::per_round(round, |k| timed_round(may_client, k, threads[2], &named, &cpu[2])),
    ]);
    // The server's CPU time per round trip, counted on its own threads: what
    // each server costs, apart from the client (the same for all three, and
    // at about a server's cost per round trip it bounds the throughput) and
    // from how long the VM takes to wake an idle thread (which dominates
    // the spread of the wall-clock figures).
    let [greenery_cpu, tokio_cpu, may_cpu] = cpu.map(|account| {
        let total = account.get();
        total.ns as f64 / total.round_trips.max(1) as f64
    });
    report("greenery_echo_server_cpu_ns_per_roundtrip", greenery_cpu, "ns");
    report("tokio_current_thread_echo_server_cpu_ns_per_roundtrip", tokio_cpu, "ns");
    report("may_1_worker_echo_server_cpu_ns_per_roundtrip", may_cpu, "ns");
    report("greenery_vs_tokio_echo_server_cpu_ratio", greenery_cpu / tokio_cpu, "x");
    report("greenery_vs_may_echo_server_cpu_ratio", greenery_cpu / may_cpu, "x");
    report_timing("greenery_echo_roundtrip_ns", &greenery);
    report_timing("tokio_current_thread_echo_roundtrip_ns", &tokio);
    report_timing("may_1_worker_echo_roundtrip_ns", &may);
    report("greenery_echo_roundtrips_per_s", 1e9 / greenery.median, "round_trips/s");
    report("tokio_current_thread_echo_roundtrips_per_s", 1e9 / tokio.median, "round_trips/s");
    report("may_1_worker_echo_roundtrips_per_s", 1e9 / may.median, "round_trips/s");
    report_ratio("greenery_vs_tokio_echo_ratio", &greenery, &tokio);
    report_ratio("greenery_vs_may_echo_ratio", &greenery, &may);
    eprintln!("# echo: {CONNECTIONS} connections, {MESSAGE}-byte messages, in {:.2?}", started.elapsed());
}
