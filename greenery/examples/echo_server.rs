//! A TCP echo server: every byte read is written back, each connection
//! handled by straight-line blocking code in its own green thread, on one
//! hub or, with `--threads N`, on N hubs (one per OS thread, each with a
//! listener of its own on the address: `SO_REUSEPORT`).
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:PORT [--threads N]
//! ```
//!
//! Accepted sockets get `TCP_NODELAY`, so small echoes leave at once. Load
//! it with the `echo_client` example.
//!
//! SIGTERM or SIGINT (Ctrl-C) stops it gracefully: it stops accepting, lets
//! the connections it has finish (for up to five seconds; then they are
//! closed), and exits with status 0. A second signal during that wait ends
//! it at once, with status 1.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::{ServerThreads, StreamServer, TcpStream};
use greenery::signal::signal_handler;

/// How long open connections may go on once a stop begins.
const GRACE: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: echo_server [ADDRESS] [--threads N]   (default 127.0.0.1:7007, 1 thread)";

fn main() {
    let (addr, threads) = arguments().unwrap_or_else(|err| {
        eprintln!("echo_server: {err}\n{USAGE}");
        std::process::exit(2);
    });
    // Out of file descriptors, each server backs off and keeps serving the
    // connections it has (and says so once per burst).
    let servers =
        ServerThreads::start(threads, addr.as_str(), |_hub, listener| StreamServer::new(listener, echo))
            .unwrap_or_else(|err| {
                eprintln!("echo_server: {err}"); // it names the address
                std::process::exit(1);
            });
    let stopping = Rc::new(Cell::new(false));
    let handlers = [libc::SIGTERM, libc::SIGINT].map(|signum| {
        let (servers, stopping) = (servers.clone(), stopping.clone());
        signal_handler(signum, move || {
            if stopping.replace(true) {
                eprintln!("echo_server: stopping now");
                std::process::exit(1);
            }
            eprintln!("echo_server: stopping (open connections have {} s to finish)", GRACE.as_secs());
            servers.stop(GRACE);
        })
        .unwrap_or_else(|err| {
            eprintln!("echo_server: cannot handle signal {signum}: {err}");
            std::process::exit(1);
        })
    });
    eprintln!("echo_server: listening on {}", servers.local_addr());
    if threads > 1 {
        eprintln!("echo_server: serving on {threads} threads, one hub each");
    }
    // Returns once every server has stopped; this thread's hub runs the
    // signal handlers meanwhile.
    if let Err(err) = servers.wait() {
        eprintln!("echo_server: {err}");
        std::process::exit(1);
    }
    for handler in handlers {
        handler.cancel();
    }
    eprintln!("echo_server: stopped");
}

/// The address and the thread count from the command line.
fn arguments() -> Result<(String, usize), String> {
    let mut addr = None;
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let count = args.next().ok_or("--threads needs a number")?;
                threads =
                    count.parse::<usize>().ok().filter(|&threads| threads > 0).ok_or_else(|| {
                        format!("--threads {count:?}: expected a number of threads, 1 or more")
                    })?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if addr.is_none() && !other.starts_with('-') => addr = Some(other.to_owned()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:7007".to_owned()), threads))
}

/// Bytes read at a time.
const BUFFER: usize = 16 * 1024;

thread_local! {
    /// A buffer no connection of this thread holds: the next one with bytes
    /// in hand takes it (or makes one), and puts it back once they are
    /// written.
    static SPARE: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// Writes back everything `stream` reads, until the peer closes it.
///
/// A connection waits for bytes in `peek` with nothing on its stack, and
/// holds a buffer only from the read to the end of the write: an idle
/// connection costs its green thread's first stack page and well under a
/// kilobyte of heap, not a 16 KiB buffer (see the README's section on
/// buffers). The benchmark's `echo_scale` case serves with this function.
pub(crate) fn echo(mut stream: TcpStream, _peer: SocketAddr) {
    if let Err(err) = stream.set_nodelay(true) {
        eprintln!("echo_server: TCP_NODELAY: {err}");
    }
    loop {
        // Wait for bytes (or the end) without holding a buffer.
        match stream.peek(&mut [0]) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) => return report(&err),
        }
        let mut buf = SPARE.take().unwrap_or_else(|| vec![0; BUFFER].into_boxed_slice());
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(err) => return report(&err),
        }
        SPARE.set(Some(buf));
    }
}

/// Reports a read error other than a reset.
fn report(err: &io::Error) {
    if err.kind() != io::ErrorKind::ConnectionReset {
        eprintln!("echo_server: read: {err}");
    }
}
