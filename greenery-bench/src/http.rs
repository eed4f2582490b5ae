//! HTTP/1.1 servers on one thread answering `Hello, World!`: greenery-http
//! against hyper 1 on tokio's current-thread runtime and may_minihttp on
//! may with one worker.
//!
//! Each server runs in a child process (this binary again, with the hidden
//! command [`SERVER_COMMAND`]) pinned to the first CPU, so that its CPU
//! time can be read from /proc apart from the load's.
//!
//! - `http`: `wrk -t1 -c50` (pinned to the second CPU with `taskset`, when
//!   the machine has one) loads each server in turn, in interleaved rounds
//!   (hyper, may_minihttp, greenery, hyper, ...), so that a slow stretch of a
//!   shared machine hits them all alike. A server's figure is the median of
//!   its rounds' requests per second; its CPU time per request is its
//!   child's CPU time over all rounds divided by all their requests. Any
//!   error that wrk counts (a non-2xx or 3xx response, a socket error or a
//!   timeout) fails the case.
//!
//!   Each round runs wrk twice on its server: once plain (a request, then
//!   its response, on each connection: `*_http_*` figures), and once
//!   pipelined [`PIPELINE_DEPTH`] deep with the usual wrk script that
//!   sends that many copies of the request per write (TechEmpower's
//!   plaintext test: `*_http_pipelined_*` figures). hyper runs with
//!   `pipeline_flush(true)`, as TechEmpower's hyper entry does.
//! - `http_scale`: [`crate::scale`]'s run, with one `GET /` per connection
//!   and then the connection held idle: the server's resident memory per
//!   connection, and what it keeps once they have all closed.

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use crate::child::{CpuTime, ServerProcess, announce, cpus_online, pin_to, set_up_server};
use crate::measure::median;
use crate::report;
use crate::scale::{self, Scenario, Target};

/// The hidden command that runs an HTTP server in a child process:
/// `greenery-bench __http_server hyper|may|greenery`. It prints the address it
/// listens on as one line on stdout, and exits when its stdin closes (when
/// the benchmark that started it exits, whichever way).
pub(crate) const SERVER_COMMAND: &str = "__http_server";

/// What every server answers, with `200 OK`.
pub(crate) const BODY: &[u8] = b"Hello, World!";
/// The request the scale run's clients send.
pub(crate) const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The CPU the servers run on; wrk runs on the next one.
pub(crate) const SERVER_CPU: usize = 0;
/// wrk's connections (`-c`), on one thread (`-t1`).
pub(crate) const CONNECTIONS: usize = 50;
/// Timed rounds per server, at most (fewer if `N` asks for less than a
/// second per round: wrk's durations are whole seconds).
pub(crate) const ROUNDS: u64 = 3;
/// How many requests the pipelined rounds send per write on each
/// connection.
pub(crate) const PIPELINE_DEPTH: usize = 16;

/// The wrk script of the pipelined rounds: the request `depth` times over
/// (the script's argument) in each write. wrk counts each response.
const PIPELINE_SCRIPT: &str = r#"init = function(args)
   local depth = tonumber(args[1]) or 1
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
"#;

/// The untimed warm-up run of each server before the timed rounds (only
/// when the rounds are all there, so that a tiny `N` stays fast).
pub(crate) const WARM_UP_SECS: u64 = 1;

/// The servers, in the order their rounds take turns.
#[derive(Debug, Clone, Copy)]
enum Server {
    Hyper,
    May,
    Greenery,
}

impl Server {
    const ALL: [Server; 3] = [Server::Hyper, Server::May, Server::Greenery];

    /// The argument of [`SERVER_COMMAND`] that runs it.
    fn arg(self) -> &'static str {
        match self {
            Server::Hyper => "hyper",
            Server::May => "may",
            Server::Greenery => "greenery",
        }
    }

    /// The name its figures start with.
    fn name(self) -> &'static str {
        match self {
            Server::Hyper => "hyper",
            Server::May => "may_minihttp",
            Server::Greenery => "greenery",
        }
    }

    fn target(self) -> Target {
        Target { name: self.name(), arg: self.arg() }
    }

    /// Serves on this thread until the process exits.
    fn serve(self) -> io::Result<()> {
        match self {
            Server::Hyper => serve_hyper(),
            Server::May => serve_may(),
            Server::Greenery => serve_greenery(),
        }
    }
}

/// The hidden server command: `args` is the rest of the command line after
/// [`SERVER_COMMAND`].
pub(crate) fn serve_child(args: &[String]) -> ExitCode {
    // `NAME` serves on one thread pinned to [`SERVER_CPU`]; `NAME:T` on T
    // threads, unpinned.
    let parsed = match args {
        [arg] => {
            let (name, threads) = match arg.split_once(':') {
                Some((name, threads)) => (name, threads.parse::<usize>().ok().filter(|&t| t > 0)),
                None => (arg.as_str(), None),
            };
            Server::ALL.into_iter().find(|server| server.arg() == name).map(|server| (server, threads))
        }
        _ => None,
    };
    let Some((server, threads)) = parsed else {
        eprintln!(
            "greenery-bench {SERVER_COMMAND}: expected `hyper`, `may` or `greenery`, with `:THREADS` or not, got {args:?}"
        );
        return ExitCode::from(2);
    };
    if threads.is_none() {
        // Before any other thread starts: they all inherit the CPU.
        pin_to(SERVER_CPU);
    }
    set_up_server(SERVER_COMMAND);
    let served = match threads {
        None => server.serve(),
        Some(threads) => server.serve_on(threads),
    };
    if let Err(err) = served {
        eprintln!("greenery-bench {SERVER_COMMAND} {}: {err}", server.arg());
    }
    ExitCode::FAILURE
}

impl Server {
    /// Serves on `threads` threads, each the server's own way: hyper on a
    /// tokio multi-thread runtime with that many workers, may_minihttp with
    /// that many may workers, greenery-http on that many hubs (one listener
    /// each, `SO_REUSEPORT`).
    fn serve_on(self, threads: usize) -> io::Result<()> {
        match self {
            Server::Hyper => serve_hyper_on(threads),
            Server::May => {
                may::config().set_workers(threads).set_worker_pin(false);
                let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
                let server = may_minihttp::HttpServer(MayHello).start(addr)?;
                announce(addr)?;
                server.join().map_err(|_| io::Error::other("may_minihttp's accept loop panicked"))
            }
            Server::Greenery => {
                use greenery_http::http::{Request, Response};
                let servers =
                    greenery::net::ServerThreads::start(threads, "127.0.0.1:0", |_hub, listener| {
                        greenery_http::Server::new(listener, |_request: Request<greenery_http::Body>| {
                            Response::new(std::str::from_utf8(BODY).expect("ASCII"))
                        })
                    })?;
                announce(servers.local_addr())?;
                servers.wait()
            }
        }
    }
}

/// hyper 1 on a tokio multi-thread runtime with `threads` workers.
fn serve_hyper_on(threads: usize) -> io::Result<()> {
    async fn hello(
        _request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        Ok(hyper::Response::new(Full::new(Bytes::from_static(BODY))))
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        let http = hyper::server::conn::http1::Builder::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("# hyper server: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            let connection = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper::service::service_fn(hello));
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    })
}

/// Go's net/http answering the same, for the `http_threads` case: built
/// with the machine's `go` at run time (nothing of it is committed but this
/// source); `GOMAXPROCS` is its thread count.
const GO_SERVER: &str = r#"package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
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
	body := []byte("Hello, World!")
	http.Serve(listener, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
}
"#;

/// Builds [`GO_SERVER`] with `go`, if it is installed: the binary's path,
/// or why there is none.
fn build_go_server() -> Result<std::path::PathBuf, String> {
    crate::child::build_go("hello", GO_SERVER)
}

/// One server configuration of the `http_threads` case.
struct Configuration {
    name: String,
    threads: usize,
    process: ServerProcess,
}

/// The `http_threads` case: each server on 1 and on 2 threads, unpinned,
/// loaded by wrk -t1 -c50 sharing the machine's cores with it, in
/// interleaved rounds of about `n` milliseconds in all per configuration.
pub(crate) fn http_threads(n: u64) {
    // An earlier case of `all` may have pinned this thread: the servers and
    // wrk inherit that unless it is undone.
    crate::child::unpin();
    let wrk = match Wrk::find() {
        Ok(_) => Wrk { prefix: vec![], pinning: "wrk and the servers unpinned".into() },
        Err(problem) => {
            eprintln!("http_threads: {problem}");
            std::process::exit(1);
        }
    };
    let total_secs = (n / 1000).max(1);
    let rounds = total_secs.min(ROUNDS);
    let round_secs = total_secs / rounds;
    let mut configurations = Vec::new();
    for server in Server::ALL {
        for threads in [1, 2] {
            let process = ServerProcess::start(SERVER_COMMAND, &format!("{}:{threads}", server.arg()))
                .unwrap_or_else(|problem| {
                    eprintln!("http_threads: {} server: {problem}", server.name());
                    std::process::exit(1);
                });
            configurations.push(Configuration { name: server.name().to_owned(), threads, process });
        }
    }
    match build_go_server() {
        Ok(binary) => {
            for threads in [1, 2] {
                let mut command = Command::new(&binary);
                command.env("GOMAXPROCS", threads.to_string());
                match ServerProcess::start_command(command) {
                    Ok(process) => {
                        configurations.push(Configuration { name: "go".to_owned(), threads, process })
                    }
                    Err(problem) => eprintln!("# http_threads: go server: {problem}"),
                }
            }
        }
        Err(problem) => eprintln!("# http_threads: go figures skipped: {problem}"),
    }
    if rounds == ROUNDS {
        for configuration in &configurations {
            if let Err(problem) = wrk.run(configuration.process.addr, WARM_UP_SECS) {
                eprintln!("http_threads: warm-up: {problem}");
                std::process::exit(1);
            }
        }
    }
    let mut results: Vec<Vec<Round>> = configurations.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (configuration, results) in configurations.iter().zip(&mut results) {
            let process = &configuration.process;
            let round = process.cpu().and_then(|before| {
                let run = wrk.run(process.addr, round_secs)?;
                Ok(Round { run, cpu: process.cpu()? - before })
            });
            match round {
                Ok(round) => results.push(round),
                Err(problem) => {
                    eprintln!(
                        "http_threads: {} on {} thread(s): {problem}",
                        configuration.name, configuration.threads
                    );
                    std::process::exit(1);
                }
            }
        }
    }
    let summaries: Vec<Summary> = results.iter().map(|rounds| Summary::of(rounds)).collect();
    let mut errors = 0;
    for (configuration, summary) in configurations.iter().zip(&summaries) {
        let name = format!("{}_{}t", configuration.name, configuration.threads);
        report(&format!("{name}_http_requests_per_s"), summary.requests_per_s, "requests/s");
        report(&format!("{name}_http_cpu_ns_per_request"), summary.cpu_ns_per_request, "ns");
        report(&format!("{name}_http_user_cpu_ns_per_request"), summary.user_cpu_ns_per_request, "ns");
        errors += summary.errors;
    }
    // How each server's throughput and CPU per request change from one
    // thread to two.
    for pair in configurations.iter().zip(&summaries).collect::<Vec<_>>().chunks(2) {
        if let [(one, one_summary), (two, two_summary)] = pair
            && one.name == two.name
        {
            report(
                &format!("{}_http_2t_vs_1t_requests_ratio", one.name),
                two_summary.requests_per_s / one_summary.requests_per_s,
                "x",
            );
            report(
                &format!("{}_http_2t_vs_1t_cpu_per_request_ratio", one.name),
                two_summary.cpu_ns_per_request / one_summary.cpu_ns_per_request,
                "x",
            );
        }
    }
    drop(configurations);
    eprintln!(
        "# http_threads: wrk -t1 -c{CONNECTIONS}, {rounds} rounds of {round_secs} s per server and thread count, {}; \
         on a 2-core machine wrk shares the cores with the servers",
        wrk.pinning
    );
    if errors > 0 {
        eprintln!("http_threads: wrk counted {errors} errors");
        std::process::exit(1);
    }
}

/// hyper 1's HTTP/1 server on a tokio current-thread runtime: a task per
/// connection, keep-alive (hyper's default), `TCP_NODELAY`.
fn serve_hyper() -> io::Result<()> {
    async fn hello(
        _request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        Ok(hyper::Response::new(Full::new(Bytes::from_static(BODY))))
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        let mut http = hyper::server::conn::http1::Builder::new();
        // Pipelined responses go out together, as in TechEmpower's entry.
        http.pipeline_flush(true);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("# hyper server: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            let connection = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper::service::service_fn(hello));
            tokio::spawn(async move {
                // A client that goes away mid-request is not the server's
                // error; wrk counts what it saw.
                let _ = connection.await;
            });
        }
    })
}

/// may_minihttp's service: the same answer for every request.
#[derive(Clone)]
struct MayHello;

impl may_minihttp::HttpService for MayHello {
    fn call(
        &mut self,
        _request: may_minihttp::Request,
        response: &mut may_minihttp::Response,
    ) -> io::Result<()> {
        response.body(std::str::from_utf8(BODY).expect("ASCII"));
        Ok(())
    }
}

/// may_minihttp with may configured to one worker (beside which may runs
/// one timer thread). may_minihttp binds the address it is given and does
/// not say which port it got, so a free port is found first.
fn serve_may() -> io::Result<()> {
    crate::hub::configure_may();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let server = may_minihttp::HttpServer(MayHello).start(addr)?;
    announce(addr)?;
    server.join().map_err(|_| io::Error::other("may_minihttp's accept loop panicked"))
}

/// greenery-http's server on this thread's hub: what its `hello` example runs.
fn serve_greenery() -> io::Result<()> {
    use greenery_http::http::{Request, Response};
    let server = greenery_http::Server::bind("127.0.0.1:0", |_request: Request<greenery_http::Body>| {
        Response::new(std::str::from_utf8(BODY).expect("ASCII"))
    })?;
    server.start()?;
    greenery::yield_now(); // the accept loop starts, and parks, before the baseline
    announce(server.local_addr())?;
    server.serve_forever()
}

/// The `http` case: wrk against each server for about `n` milliseconds in
/// all, in interleaved rounds.
pub(crate) fn http(n: u64) {
    let wrk = match Wrk::find() {
        Ok(wrk) => wrk,
        Err(problem) => {
            eprintln!("http: {problem}");
            std::process::exit(1);
        }
    };
    let total_secs = (n / 1000).max(1);
    let rounds = total_secs.min(ROUNDS);
    let round_secs = total_secs / rounds;
    let processes = Server::ALL.map(|server| {
        ServerProcess::start(SERVER_COMMAND, server.arg()).unwrap_or_else(|problem| {
            eprintln!("http: {} server: {problem}", server.name());
            std::process::exit(1);
        })
    });
    if rounds == ROUNDS {
        for process in &processes {
            if let Err(problem) = wrk.run(process.addr, WARM_UP_SECS) {
                eprintln!("http: warm-up: {problem}");
                std::process::exit(1);
            }
        }
    }
    let script = std::env::temp_dir().join(format!("greenery-bench-pipeline-{}.lua", std::process::id()));
    if let Err(err) = std::fs::write(&script, PIPELINE_SCRIPT) {
        eprintln!("http: cannot write the wrk script {}: {err}", script.display());
        std::process::exit(1);
    }
    let pipelined = Pipeline { script: script.clone(), depth: PIPELINE_DEPTH };
    // Plain and pipelined rounds, per server.
    let mut results: [[Vec<Round>; 2]; 3] = Default::default();
    for _ in 0..rounds {
        for ((server, process), results) in Server::ALL.iter().zip(&processes).zip(&mut results) {
            for (pipeline, results) in [None, Some(&pipelined)].into_iter().zip(results.iter_mut()) {
                let round = process.cpu().and_then(|before| {
                    let run =
                        wrk.run_pipelined(&format!("http://{}/", process.addr), round_secs, pipeline)?;
                    // wrk is done: the server has answered the last requests.
                    Ok(Round { run, cpu: process.cpu()? - before })
                });
                match round {
                    Ok(round) => results.push(round),
                    Err(problem) => {
                        let mode = if pipeline.is_some() { " (pipelined)" } else { "" };
                        eprintln!("http: {}{mode}: {problem}", server.name());
                        let _ = std::fs::remove_file(&script);
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&script);
    drop(processes);
    let summaries = results.each_ref().map(|[plain, pipelined]| [Summary::of(plain), Summary::of(pipelined)]);
    for (server, [plain, pipelined]) in Server::ALL.iter().zip(&summaries) {
        plain.report(server.name(), "http", round_secs);
        pipelined.report(server.name(), "http_pipelined", round_secs);
    }
    let [[hyper, hyper_pipelined], [may, may_pipelined], [greenery, greenery_pipelined]] = &summaries;
    report("greenery_vs_hyper_http_ratio", greenery.requests_per_s / hyper.requests_per_s, "x");
    report("greenery_vs_may_minihttp_http_ratio", greenery.requests_per_s / may.requests_per_s, "x");
    // CPU per request against the peers: below 1 is cheaper.
    for (case, greenery, hyper, may) in [
        ("http", greenery, hyper, may),
        ("http_pipelined", greenery_pipelined, hyper_pipelined, may_pipelined),
    ] {
        report(
            &format!("greenery_vs_hyper_{case}_cpu_per_request_ratio"),
            greenery.cpu_ns_per_request / hyper.cpu_ns_per_request,
            "x",
        );
        report(
            &format!("greenery_vs_may_minihttp_{case}_cpu_per_request_ratio"),
            greenery.cpu_ns_per_request / may.cpu_ns_per_request,
            "x",
        );
    }
    let summaries = summaries.as_flattened();
    let errors: u64 = summaries.iter().map(|summary| summary.errors).sum();
    eprintln!(
        "# http: wrk -t1 -c{CONNECTIONS}, {rounds} rounds of {round_secs} s per server, plain and pipelined \
         {PIPELINE_DEPTH} deep{}, {}",
        if rounds == ROUNDS { format!(" after {WARM_UP_SECS} s of warm-up") } else { String::new() },
        wrk.pinning
    );
    if errors > 0 {
        eprintln!("http: wrk counted {errors} errors");
        std::process::exit(1);
    }
}

/// One timed round of one server.
pub(crate) struct Round {
    pub(crate) run: WrkRun,
    /// The server's CPU time during the round.
    pub(crate) cpu: CpuTime,
}

/// One server's rounds, summed up.
pub(crate) struct Summary {
    pub(crate) requests_per_s: f64,
    min_requests_per_s: f64,
    max_requests_per_s: f64,
    latency_avg_us: f64,
    latency_max_us: f64,
    pub(crate) cpu_ns_per_request: f64,
    user_cpu_ns_per_request: f64,
    /// wrk's CPU time over the wall time of its rounds.
    client_busy: f64,
    requests: u64,
    pub(crate) errors: u64,
}

impl Summary {
    pub(crate) fn of(rounds: &[Round]) -> Summary {
        let sorted = |figure: fn(&WrkRun) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(|round| figure(&round.run)).collect();
            values.sort_by(f64::total_cmp);
            values
        };
        let rps = sorted(|run| run.requests_per_s);
        let latency = sorted(|run| run.latency_avg_us);
        let requests: u64 = rounds.iter().map(|round| round.run.requests).sum();
        let cpu_ns: f64 = rounds.iter().map(|round| round.cpu.total_ns()).sum();
        let user_ns: f64 = rounds.iter().map(|round| round.cpu.user_ns).sum();
        let client_ns: f64 = rounds.iter().map(|round| round.run.client_cpu.total_ns()).sum();
        let wall_ns: f64 = rounds.iter().map(|round| round.run.wall_ns).sum();
        Summary {
            requests_per_s: median(&rps),
            min_requests_per_s: rps[0],
            max_requests_per_s: rps[rps.len() - 1],
            latency_avg_us: median(&latency),
            latency_max_us: rounds.iter().map(|round| round.run.latency_max_us).fold(0.0, f64::max),
            cpu_ns_per_request: cpu_ns / requests.max(1) as f64,
            user_cpu_ns_per_request: user_ns / requests.max(1) as f64,
            client_busy: client_ns / wall_ns.max(1.0),
            requests,
            errors: rounds.iter().map(|round| round.run.errors).sum(),
        }
    }

    /// Reports the figures of `server` in `case` (`http`, `https`).
    pub(crate) fn report(&self, server: &str, case: &str, round_secs: u64) {
        report(&format!("{server}_{case}_requests_per_s"), self.requests_per_s, "requests/s");
        report(&format!("{server}_{case}_latency_avg_us"), self.latency_avg_us, "us");
        report(&format!("{server}_{case}_cpu_ns_per_request"), self.cpu_ns_per_request, "ns");
        report(&format!("{server}_{case}_user_cpu_ns_per_request"), self.user_cpu_ns_per_request, "ns");
        report(&format!("{server}_{case}_wrk_cpu_busy"), self.client_busy * 100.0, "percent");
        report(&format!("{server}_{case}_errors"), self.errors as f64, "count");
        eprintln!(
            "# {server}_{case}: {} requests in rounds of {round_secs} s: min {:.0}, median {:.0}, max {:.0} \
             requests/s; latency: median of the rounds' averages {:.1} us, max {:.1} us",
            self.requests,
            self.min_requests_per_s,
            self.requests_per_s,
            self.max_requests_per_s,
            self.latency_avg_us,
            self.latency_max_us
        );
    }
}

/// How to run wrk here.
pub(crate) struct Wrk {
    /// `taskset -c 1`, when there is a second CPU and taskset.
    prefix: Vec<String>,
    /// Says where wrk runs, for the summary.
    pub(crate) pinning: String,
}

impl Wrk {
    pub(crate) fn find() -> Result<Wrk, String> {
        let runs = |program: &str, arg: &str| {
            Command::new(program)
                .arg(arg)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok()
        };
        if !runs("wrk", "--version") {
            return Err("cannot run wrk: install it (`apt-get install wrk` on Debian and Ubuntu)".into());
        }
        let client_cpu = SERVER_CPU + 1;
        if cpus_online() > client_cpu && runs("taskset", "--version") {
            let pinning = format!("wrk pinned to CPU {client_cpu}, the server to CPU {SERVER_CPU}");
            Ok(Wrk { prefix: vec!["taskset".into(), "-c".into(), client_cpu.to_string()], pinning })
        } else {
            Ok(Wrk { prefix: vec![], pinning: "wrk not pinned (one CPU, or no taskset)".into() })
        }
    }

    /// Loads `addr` for `secs` seconds.
    fn run(&self, addr: SocketAddr, secs: u64) -> Result<WrkRun, String> {
        self.run_url(&format!("http://{addr}/"), secs)
    }

    /// Loads `url` (`http://` or `https://`) for `secs` seconds.
    pub(crate) fn run_url(&self, url: &str, secs: u64) -> Result<WrkRun, String> {
        self.run_pipelined(url, secs, None)
    }

    /// Loads `url` for `secs` seconds, pipelining the requests as `pipeline`
    /// says (if at all).
    fn run_pipelined(&self, url: &str, secs: u64, pipeline: Option<&Pipeline>) -> Result<WrkRun, String> {
        let mut args =
            vec!["wrk".to_string(), "-t1".into(), format!("-c{CONNECTIONS}"), format!("-d{secs}s")];
        if let Some(pipeline) = pipeline {
            args.extend(["-s".into(), pipeline.script.display().to_string()]);
        }
        args.push(url.into());
        if let Some(pipeline) = pipeline {
            args.extend(["--".into(), pipeline.depth.to_string()]);
        }
        let mut command = self.prefix.iter().chain(&args);
        let program = command.next().expect("a program");
        let started = Instant::now();
        let children_before = CpuTime::of_children();
        let output = Command::new(program)
            .args(command)
            .output()
            .map_err(|err| format!("cannot run {program}: {err}"))?;
        let client_cpu = CpuTime::of_children() - children_before;
        let wall_ns = started.elapsed().as_secs_f64() * 1e9;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrk failed ({}) after {:.2?}: {stdout}{}",
                output.status,
                started.elapsed(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let run = WrkRun::parse(&stdout).map_err(|problem| format!("wrk's output: {problem}:\n{stdout}"))?;
        Ok(WrkRun { client_cpu, wall_ns, ..run })
    }
}

/// How wrk pipelines its requests: [`PIPELINE_SCRIPT`], saved in `script`,
/// sending `depth` requests per write.
struct Pipeline {
    script: std::path::PathBuf,
    depth: usize,
}

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WrkRun {
    requests_per_s: f64,
    requests: u64,
    latency_avg_us: f64,
    latency_max_us: f64,
    /// Non-2xx or 3xx responses, and socket errors of every kind.
    errors: u64,
    /// wrk's own CPU time (zero until [`Wrk::run`] fills it in).
    client_cpu: CpuTime,
    /// How long wrk ran, in nanoseconds (likewise).
    wall_ns: f64,
}

impl WrkRun {
    /// Reads wrk's report (its default output, without `--latency`).
    fn parse(text: &str) -> Result<WrkRun, String> {
        let mut requests_per_s = None;
        let mut requests = None;
        let mut latency = None;
        let mut errors = 0;
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["Requests/sec:", value] => requests_per_s = value.parse::<f64>().ok(),
                ["Latency", avg, _stdev, max, ..] => latency = duration_us(avg).zip(duration_us(max)),
                [count, "requests", "in", ..] => requests = count.parse::<u64>().ok(),
                ["Non-2xx", "or", "3xx", "responses:", count] => {
                    errors += count.parse::<u64>().map_err(|_| format!("bad count in {line:?}"))?;
                }
                ["Socket", "errors:", ..] => {
                    // `Socket errors: connect 0, read 0, write 0, timeout 0`
                    for count in words[2..].iter().skip(1).step_by(2) {
                        let count = count.trim_end_matches(',');
                        errors += count.parse::<u64>().map_err(|_| format!("bad count in {line:?}"))?;
                    }
                }
                _ => {}
            }
        }
        let requests_per_s = requests_per_s.ok_or("no `Requests/sec:` line")?;
        let requests = requests.ok_or("no `N requests in` line")?;
        let (latency_avg_us, latency_max_us) = latency.ok_or("no `Latency` line")?;
        Ok(WrkRun {
            requests_per_s,
            requests,
            latency_avg_us,
            latency_max_us,
            errors,
            client_cpu: CpuTime::default(),
            wall_ns: 0.0,
        })
    }
}

/// A duration as wrk prints it (`253.21us`, `1.23ms`, `2.00s`, `1.50m`), in
/// microseconds.
fn duration_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// The `http_scale` case: `n` connections to each server, each making one
/// request and then held idle.
pub(crate) fn http_scale(n: u64) {
    let scenario = Scenario {
        case: "http_scale",
        command: SERVER_COMMAND,
        wrap: scale::plain,
        round_trip: http_round_trip,
        round_trips: 0,
        what: "`GET /` request(s)",
    };
    let servers = Server::ALL.map(Server::target);
    scale::run(&scenario, n, &servers);
}

/// One `GET /` and its response, checked.
pub(crate) fn http_round_trip(stream: &mut dyn scale::Duplex, _id: u64, round: u64) -> Result<(), String> {
    stream.write_all(REQUEST).map_err(|err| format!("request {round}: write: {err}"))?;
    read_response(stream).map_err(|problem| format!("request {round}: {problem}"))
}

/// Reads one response from `stream` and checks it: `200`, a
/// `Content-Length`, and the body [`BODY`], with nothing after it.
pub(crate) fn read_response(stream: &mut (impl Read + ?Sized)) -> Result<(), String> {
    const MAX_HEAD: usize = 8192;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0; 1024];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("no end of the response head in {MAX_HEAD} bytes"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("the connection closed after {} bytes of response", buf.len())),
            Ok(read) => buf.extend_from_slice(&chunk[..read]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("read: {err}")),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "the response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("status line {status:?}"));
    }
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .ok_or("no Content-Length")?;
    let mut body = buf.split_off(head_end);
    if body.len() > length {
        return Err(format!("{} bytes after a head with Content-Length {length}", body.len()));
    }
    let have = body.len();
    body.resize(length, 0);
    stream.read_exact(&mut body[have..]).map_err(|err| format!("read the body: {err}"))?;
    if body != BODY {
        return Err(format!("the body is {:?}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 5s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   293.43us   45.12us   2.31ms   90.12%
    Req/Sec   170.12k     5.23k  180.00k    80.00%
  846282 requests in 5.00s, 100.07MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec: 169256.40
Transfer/sec:     20.01MB
";

    #[test]
    fn parses_wrk() {
        let run = WrkRun::parse(WRK_OUTPUT).expect("parses");
        assert_eq!(run.requests, 846_282);
        assert_eq!(run.requests_per_s, 169_256.40);
        assert!((run.latency_avg_us - 293.43).abs() < 1e-9);
        assert!((run.latency_max_us - 2310.0).abs() < 1e-9);
        assert_eq!(run.errors, 22);
        let clean: String = WRK_OUTPUT
            .lines()
            .filter(|line| !line.contains("rror") && !line.contains("xx"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(WrkRun::parse(&clean).expect("parses").errors, 0);
        assert!(WrkRun::parse("Running 5s test\n").is_err());
    }

    #[test]
    fn reads_responses() {
        let good = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\ndate: now\r\n\r\nHello, World!";
        // Byte by byte, as a slow peer would send it.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        assert_eq!(read_response(&mut &good[..]), Ok(()));
        assert_eq!(read_response(&mut Trickle(good)), Ok(()));
        let may = b"HTTP/1.1 200 Ok\r\nServer: M\r\nContent-Length: 13\r\n\r\nHello, World!";
        assert_eq!(read_response(&mut &may[..]), Ok(()));
        assert!(read_response(&mut &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"[..]).is_err());
        assert!(read_response(&mut &good[..good.len() - 1]).is_err());
        assert!(read_response(&mut &b"HTTP/1.1 200 OK\r\n\r\nHello, World!"[..]).is_err());
    }
}
