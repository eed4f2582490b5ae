//! A load generator for the `echo_server` example: CONNECTIONS green
//! threads, each in a closed loop (send a SIZE-byte message, wait for it to
//! come back), for SECONDS; prints the round trips per second.
//!
//! ```text
//! cargo run --release --example echo_client -- 127.0.0.1:PORT [CONNECTIONS [SIZE [SECONDS]]]
//! ```
//!
//! Defaults: 50 connections, 64-byte messages, 5 seconds. The address is
//! resolved once, before any connection is made, so a bad one is one error.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::net::TcpStream;

const USAGE: &str = "usage: echo_client [ADDRESS [CONNECTIONS [SIZE [SECONDS]]]]\n\
    \n\
    ADDRESS      the echo server, host:port (default 127.0.0.1:7007)\n\
    CONNECTIONS  connections, each in a closed loop (default 50)\n\
    SIZE         bytes per message, at least 1 (default 64)\n\
    SECONDS      how long to run (default 5)";

/// What the command line asks for.
struct Load {
    addr: SocketAddr,
    connections: usize,
    size: usize,
    duration: Duration,
}

/// Reads the command line; `Err` holds what to print before the usage.
fn parse(args: &[String]) -> Result<Load, String> {
    if args.len() > 4 {
        return Err(format!("unexpected argument {:?}", args[4]));
    }
    let target = args.first().map_or("127.0.0.1:7007", String::as_str);
    let addr = target
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {target:?}: {err}"))?
        .next()
        .ok_or_else(|| format!("{target:?} resolves to no address"))?;
    let positive = |index: usize, what: &str, default: usize| -> Result<usize, String> {
        match args.get(index) {
            None => Ok(default),
            Some(arg) => match arg.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!("{what} must be a whole number above 0, not {arg:?}")),
                Ok(value) => Ok(value),
            },
        }
    };
    let connections = positive(1, "CONNECTIONS", 50)?;
    let size = positive(2, "SIZE", 64)?;
    let duration = match args.get(3) {
        None => Duration::from_secs(5),
        Some(arg) => arg
            .parse::<f64>()
            .ok()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .filter(|duration| !duration.is_zero())
            .ok_or_else(|| format!("SECONDS must be a number above 0, not {arg:?}"))?,
    };
    Ok(Load { addr, connections, size, duration })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let load = match parse(&args) {
        Ok(load) => load,
        Err(problem) => {
            eprintln!("echo_client: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One connection first: a server that is not there is one clear error,
    // not one per connection.
    let first = match TcpStream::connect(load.addr) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("echo_client: cannot connect to {}: {err}", load.addr);
            return ExitCode::FAILURE;
        }
    };
    run(load, first)
}

/// Runs the closed loops and prints the rate; fails if any connection did.
fn run(load: Load, first: TcpStream) -> ExitCode {
    let Load { addr, connections, size, duration } = load;
    let round_trips = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + duration;
    let mut first = Some(first);
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let round_trips = round_trips.clone();
            let stream = first.take();
            greenery::spawn(move || -> std::io::Result<()> {
                let mut stream = match stream {
                    Some(stream) => stream,
                    None => TcpStream::connect(addr)?,
                };
                stream.set_nodelay(true)?;
                let message = vec![b'x'; size];
                let mut back = vec![0; size];
                while Instant::now() < deadline {
                    stream.write_all(&message)?;
                    stream.read_exact(&mut back)?;
                    round_trips.set(round_trips.get() + 1);
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = 0;
    for client in clients {
        let problem = match client.get() {
            Ok(Ok(())) => continue,
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        failed += 1;
        // The first failure in full; the rest are counted.
        if failed == 1 {
            eprintln!("echo_client: a connection failed: {problem}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:.0} round trips/s ({} round trips of {size} bytes over {connections} connections in {elapsed:.2} s{})",
        round_trips.get() as f64 / elapsed,
        round_trips.get(),
        if failed > 0 { format!(", {failed} connections failed") } else { String::new() }
    );
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
