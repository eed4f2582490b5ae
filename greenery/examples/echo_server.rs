//! A TCP echo server on one hub: every byte read is written back, each
//! connection handled by straight-line blocking code in its own green
//! thread, all of them on this one OS thread.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:PORT
//! ```
//!
//! Accepted sockets get `TCP_NODELAY`, so small echoes leave at once. Load
//! it with the `echo_client` example.
//!
//! SIGTERM or SIGINT (Ctrl-C) stops it gracefully: it stops accepting, lets
//! the connections it has finish (for up to five seconds; then they are
//! closed), and exits with status 0. A second signal during that wait ends
//! it at once, with status 1.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::{StreamServer, TcpStream};
use greenery::signal::signal_handler;

/// How long open connections may go on once a stop begins.
const GRACE: Duration = Duration::from_secs(5);

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let server = StreamServer::bind(addr.as_str(), echo).unwrap_or_else(|err| {
        eprintln!("echo_server: {err}"); // it names the address
        std::process::exit(1);
    });
    let server = Rc::new(server);
    let handlers = [libc::SIGTERM, libc::SIGINT].map(|signum| {
        let server = server.clone();
        signal_handler(signum, move || {
            if !server.is_serving() {
                eprintln!("echo_server: stopping now");
                std::process::exit(1);
            }
            eprintln!("echo_server: stopping (open connections have {} s to finish)", GRACE.as_secs());
            if let Err(err) = server.stop(GRACE) {
                eprintln!("echo_server: {err}");
            }
        })
        .unwrap_or_else(|err| {
            eprintln!("echo_server: cannot handle signal {signum}: {err}");
            std::process::exit(1);
        })
    });
    eprintln!("echo_server: listening on {}", server.local_addrs()[0]);
    // Out of file descriptors, the server backs off and keeps serving the
    // connections it has (and says so once per burst). This returns once a
    // stop has finished.
    if let Err(err) = server.serve_forever() {
        eprintln!("echo_server: {err}");
        std::process::exit(1);
    }
    for handler in handlers {
        handler.cancel();
    }
    eprintln!("echo_server: stopped");
}

/// Writes back everything `stream` reads, until the peer closes it.
fn echo(mut stream: TcpStream, _peer: SocketAddr) {
    if let Err(err) = stream.set_nodelay(true) {
        eprintln!("echo_server: TCP_NODELAY: {err}");
    }
    let mut buf = [0; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return,
            Err(err) => {
                eprintln!("echo_server: read: {err}");
                return;
            }
        }
    }
}
