//! A TCP echo server on one hub: every byte read is written back, each
//! connection handled by straight-line blocking code in its own green
//! thread, all of them on this one OS thread.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:PORT
//! ```
//!
//! Serves until killed. Accepted sockets get `TCP_NODELAY`, so small echoes
//! leave at once. Load it with the `echo_client` example.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use greenery::net::{StreamServer, TcpStream};

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let server = StreamServer::bind(addr.as_str(), echo).unwrap_or_else(|err| {
        eprintln!("echo_server: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    eprintln!("echo_server: listening on {}", server.local_addrs()[0]);
    // Out of file descriptors, the server backs off and keeps serving the
    // connections it has (and says so once per burst).
    if let Err(err) = server.serve_forever() {
        eprintln!("echo_server: {err}");
        std::process::exit(1);
    }
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
