//! The benchmark's server: every request gets `200 OK` and `Hello, World!`,
//! with keep-alive, on one hub or on several.
//!
//! ```text
//! cargo run --release -p greenery-http --example hello -- 127.0.0.1:PORT [--threads N]
//! cargo run --release -p greenery-http --features tls --example hello -- --tls cert.pem key.pem
//! ```
//!
//! With `--threads N` (default 1) it serves on N hubs, one per OS thread,
//! each with a listener of its own on the address (`SO_REUSEPORT`: the
//! kernel spreads the connections). With `--tls CERT KEY` (and the `tls`
//! feature) it serves HTTPS with the certificate chain and private key in
//! those PEM files.
//!
//! SIGTERM or SIGINT (Ctrl-C) stops it gracefully: it stops accepting,
//! closes idle connections, lets the requests in flight finish (for up to
//! five seconds), and exits with status 0. A second signal during that
//! wait ends it at once, with status 1.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::ServerThreads;
use greenery::signal::signal_handler;
use greenery_http::http::{Request, Response};
use greenery_http::{Body, Server};

/// How long requests in flight may take to finish once a stop begins.
const GRACE: Duration = Duration::from_secs(5);

const USAGE: &str =
    "usage: hello [ADDRESS] [--threads N] [--tls CERT KEY]   (default 127.0.0.1:8080, 1 thread, HTTP)";

/// The command line.
struct Arguments {
    addr: String,
    threads: usize,
    /// The certificate chain's and the private key's PEM files.
    tls: Option<(String, String)>,
}

fn main() {
    let Arguments { addr, threads, tls } = arguments().unwrap_or_else(|err| {
        eprintln!("hello: {err}\n{USAGE}");
        std::process::exit(2);
    });
    let tls = tls.map(|(cert, key)| {
        tls_config(&cert, &key).unwrap_or_else(|err| {
            eprintln!("hello: {err}"); // it names the file
            std::process::exit(1);
        })
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let servers = ServerThreads::start(threads, addr.as_str(), move |_hub, listener| {
        let server = Server::new(listener, |_request: Request<Body>| Response::new("Hello, World!"))?;
        Ok(match &tls {
            Some(config) => with_tls(server, config),
            None => server,
        })
    })
    .unwrap_or_else(|err| {
        eprintln!("hello: {err}"); // it names the address
        std::process::exit(1);
    });
    let stopping = Rc::new(Cell::new(false));
    let handlers = [libc::SIGTERM, libc::SIGINT].map(|signum| {
        let (servers, stopping) = (servers.clone(), stopping.clone());
        signal_handler(signum, move || {
            if stopping.replace(true) {
                eprintln!("hello: stopping now");
                std::process::exit(1);
            }
            eprintln!("hello: stopping (requests in flight have {} s to finish)", GRACE.as_secs());
            servers.stop(GRACE);
        })
        .unwrap_or_else(|err| {
            eprintln!("hello: cannot handle signal {signum}: {err}");
            std::process::exit(1);
        })
    });
    eprintln!("hello: listening on {scheme}://{}/", servers.local_addr());
    if threads > 1 {
        eprintln!("hello: serving on {threads} threads, one hub each");
    }
    // Returns once every server has stopped: every request in flight
    // answered. Meanwhile this thread's hub runs the signal handlers.
    if let Err(err) = servers.wait() {
        eprintln!("hello: {err}");
        std::process::exit(1);
    }
    for handler in handlers {
        handler.cancel();
    }
    eprintln!("hello: stopped");
}

/// The TLS configuration from the PEM files `cert` and `key`.
#[cfg(feature = "tls")]
fn tls_config(cert: &str, key: &str) -> std::io::Result<std::sync::Arc<greenery_http::rustls::ServerConfig>> {
    Ok(std::sync::Arc::new(greenery::net::tls_server_config(cert, key)?))
}

#[cfg(feature = "tls")]
fn with_tls(server: Server, config: &std::sync::Arc<greenery_http::rustls::ServerConfig>) -> Server {
    server.with_tls(config.clone())
}

#[cfg(not(feature = "tls"))]
fn tls_config(_cert: &str, _key: &str) -> std::io::Result<std::convert::Infallible> {
    eprintln!(
        "hello: --tls needs greenery-http's tls feature \
         (cargo run -p greenery-http --features tls --example hello -- --tls CERT KEY)"
    );
    std::process::exit(2);
}

#[cfg(not(feature = "tls"))]
fn with_tls(_server: Server, config: &std::convert::Infallible) -> Server {
    match *config {}
}

/// The address, the thread count and the TLS files from the command line.
fn arguments() -> Result<Arguments, String> {
    let mut addr = None;
    let mut threads = 1;
    let mut tls = None;
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
            "--tls" => {
                let cert = args.next().ok_or("--tls needs a certificate file and a key file")?;
                let key = args.next().ok_or("--tls needs a key file after the certificate file")?;
                tls = Some((cert, key));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if addr.is_none() && !other.starts_with('-') => addr = Some(other.to_owned()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Arguments { addr: addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned()), threads, tls })
}
