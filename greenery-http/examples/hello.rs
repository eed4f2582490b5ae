//! The benchmark's server: every request gets `200 OK` and `Hello, World!`,
//! on one hub, with keep-alive, until killed.
//!
//! ```text
//! cargo run --release -p greenery-http --example hello -- 127.0.0.1:PORT
//! ```

use greenery_http::http::{Request, Response};
use greenery_http::{Body, Server};

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let server = Server::bind(addr.as_str(), |_request: Request<Body>| Response::new("Hello, World!"))
        .unwrap_or_else(|err| {
            eprintln!("hello: cannot listen on {addr}: {err}");
            std::process::exit(1);
        });
    eprintln!("hello: listening on http://{}/", server.local_addr());
    if let Err(err) = server.serve_forever() {
        eprintln!("hello: {err}");
        std::process::exit(1);
    }
}
