//! The benchmark's server: every request gets `200 OK` and `Hello, World!`,
//! on one hub, with keep-alive.
//!
//! ```text
//! cargo run --release -p greenery-http --example hello -- 127.0.0.1:PORT
//! ```
//!
//! SIGTERM or SIGINT (Ctrl-C) stops it gracefully: it stops accepting,
//! closes idle connections, lets the requests in flight finish (for up to
//! five seconds), and exits with status 0. A second signal during that
//! wait ends it at once, with status 1.

use std::rc::Rc;
use std::time::Duration;

use greenery::signal::signal_handler;
use greenery_http::http::{Request, Response};
use greenery_http::{Body, Server};

/// How long requests in flight may take to finish once a stop begins.
const GRACE: Duration = Duration::from_secs(5);

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let server = Server::bind(addr.as_str(), |_request: Request<Body>| Response::new("Hello, World!"))
        .unwrap_or_else(|err| {
            eprintln!("hello: {err}"); // it names the address
            std::process::exit(1);
        });
    let server = Rc::new(server);
    let handlers = [libc::SIGTERM, libc::SIGINT].map(|signum| {
        let server = server.clone();
        signal_handler(signum, move || {
            if !server.is_serving() {
                eprintln!("hello: stopping now");
                std::process::exit(1);
            }
            eprintln!("hello: stopping (requests in flight have {} s to finish)", GRACE.as_secs());
            if let Err(err) = server.stop(GRACE) {
                eprintln!("hello: {err}");
            }
        })
        .unwrap_or_else(|err| {
            eprintln!("hello: cannot handle signal {signum}: {err}");
            std::process::exit(1);
        })
    });
    eprintln!("hello: listening on http://{}/", server.local_addr());
    // Returns once a stop has finished: every request in flight answered.
    if let Err(err) = server.serve_forever() {
        eprintln!("hello: {err}");
        std::process::exit(1);
    }
    for handler in handlers {
        handler.cancel();
    }
    eprintln!("hello: stopped");
}
