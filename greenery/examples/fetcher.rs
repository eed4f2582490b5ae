//! A concurrent fetcher: fetches URLS paths from a small HTTP/1.0 server,
//! CONCURRENCY at a time through a pool of green threads, each fetch bounded
//! by a timeout of TIMEOUT_MS; server and fetchers are green threads of this
//! one OS thread.
//!
//! ```text
//! cargo run --release --example fetcher -- [URLS [CONCURRENCY [TIMEOUT_MS]]]
//! ```
//!
//! Defaults: 200 paths, 50 at a time, 500 ms. The server (on a free port of
//! 127.0.0.1) answers `GET /N` with a body made from N after a delay made
//! from N: every fifth path (`/4`, `/9`, `/14`, …) takes five times the
//! timeout, so its fetch always times out; the others take 0, 10 or 20 ms,
//! far below any sensible timeout.
//!
//! A fetch that times out hangs up politely (it shuts down its side and
//! waits for the server to close), so its pool slot is freed only once the
//! server is done with it: the server never serves more than CONCURRENCY
//! requests at once. Prints one summary line:
//!
//! ```text
//! 200 fetches, 50 at a time, 500 ms timeout: 160 ok, 40 timed out, 0 failed; 12980 bytes in 1.00 s; at most 50 requests at the server at once
//! ```
//!
//! Exits with status 1 if a fetch failed (an error, or a response that does
//! not match its request), if a slow path did not time out, or if the server
//! saw more than CONCURRENCY requests at once.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::net::{StreamServer, TcpStream};
use greenery::sync::Pool;

/// How long a hang-up, or a request's arrival, may take (a guard against
/// hangs, never reached when things work).
const PATIENCE: Duration = Duration::from_secs(20);

fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |name: &str, default: u64| match args.next() {
        None => default,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("fetcher: {name} must be a whole number, not {arg:?}");
            eprintln!("usage: fetcher [URLS [CONCURRENCY [TIMEOUT_MS]]]");
            std::process::exit(1);
        }),
    };
    let urls = number("URLS", 200);
    let concurrency = number("CONCURRENCY", 50).max(1) as usize;
    let timeout = Duration::from_millis(number("TIMEOUT_MS", 500).max(1));

    if let Err(err) = run(urls, concurrency, timeout) {
        eprintln!("fetcher: {err}");
        std::process::exit(1);
    }
}

/// Serves, fetches, prints the summary and checks the invariants.
fn run(urls: u64, concurrency: usize, timeout: Duration) -> Result<(), String> {
    let load = Rc::new(Load::default());
    let server =
        page_server(timeout, load.clone()).map_err(|err| format!("cannot start the server: {err}"))?;
    let addr = server.local_addrs()[0];

    let started = Instant::now();
    let pool = Pool::new(concurrency);
    let results = pool.map(move |n| (n, fetch(addr, n, timeout)), 0..urls);
    let elapsed = started.elapsed();

    let (mut ok, mut timed_out, mut failed, mut bytes) = (0, 0, 0, 0);
    let mut too_soon = 0;
    for result in results {
        match result {
            Ok((n, Ok(Fetched::Page(_)))) if is_slow(n) => {
                eprintln!("fetcher: /{n} was answered before its delay");
                too_soon += 1;
                ok += 1;
            }
            Ok((_, Ok(Fetched::Page(size)))) => {
                ok += 1;
                bytes += size;
            }
            Ok((n, Ok(Fetched::TimedOut))) if is_slow(n) => timed_out += 1,
            Ok((n, Ok(Fetched::TimedOut))) => {
                // Possible on a machine stalled for longer than the timeout.
                eprintln!("fetcher: /{n} timed out although the server answers it at once");
                timed_out += 1;
            }
            Ok((n, Err(err))) => {
                eprintln!("fetcher: /{n}: {err}");
                failed += 1;
            }
            Err(err) => {
                eprintln!("fetcher: a fetch died: {err}");
                failed += 1;
            }
        }
    }
    println!(
        "{urls} fetches, {concurrency} at a time, {} ms timeout: {ok} ok, {timed_out} timed out, {failed} failed; \
         {bytes} bytes in {:.2} s; at most {} requests at the server at once",
        timeout.as_millis(),
        elapsed.as_secs_f64(),
        load.most.get(),
    );
    server.stop(PATIENCE).map_err(|err| format!("stopping the server: {err}"))?;

    if failed > 0 {
        return Err(format!("{failed} fetches failed"));
    }
    if too_soon > 0 {
        return Err(format!("{too_soon} slow paths did not time out"));
    }
    if load.most.get() > concurrency {
        return Err(format!("the server saw {} requests at once, over {concurrency}", load.most.get()));
    }
    Ok(())
}

// ---------------------------------------------------------------- the server

/// Whether the server answers `/n` only after five times the timeout.
fn is_slow(n: u64) -> bool {
    n % 5 == 4
}

/// How long the server takes to answer `/n`.
fn delay(n: u64, timeout: Duration) -> Duration {
    if is_slow(n) { timeout * 5 } else { Duration::from_millis(n % 3 * 10) }
}

/// The body of `/n`: `page n` on 1 to 10 lines.
fn body(n: u64) -> String {
    format!("page {n}\n").repeat((n % 10 + 1) as usize)
}

/// How many requests the server is serving, and the most at once.
#[derive(Default)]
struct Load {
    now: Cell<usize>,
    most: Cell<usize>,
}

/// One request counted by [`Load`] while it lives.
struct Serving<'a>(&'a Load);

impl<'a> Serving<'a> {
    fn new(load: &'a Load) -> Serving<'a> {
        load.now.set(load.now.get() + 1);
        load.most.set(load.most.get().max(load.now.get()));
        Serving(load)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

/// The page server, started, on a free port of 127.0.0.1.
fn page_server(timeout: Duration, load: Rc<Load>) -> io::Result<StreamServer> {
    let server = StreamServer::bind("127.0.0.1:0", move |stream: TcpStream, _peer: SocketAddr| {
        // Counted until the stream closes (locals drop before arguments).
        let _serving = Serving::new(&load);
        if let Err(err) = answer(&stream, timeout) {
            eprintln!("fetcher: server: {err}");
        }
    })?;
    server.start()?;
    Ok(server)
}

/// Reads a request, waits its delay (or until the client hangs up), and
/// answers it.
fn answer(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers, up to the empty line.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 0 && !header.trim_end().is_empty() {
        header.clear();
    }
    let path = request.strip_prefix("GET /").and_then(|rest| rest.split(' ').next());
    let Some(n) = path.and_then(|n| n.parse::<u64>().ok()) else {
        return (&*stream).write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    };
    // A client that gives up shuts down its side: the read ends early.
    stream.set_read_timeout(None)?;
    let mut byte = [0; 1];
    match greenery::with_timeout(delay(n, timeout), || (&*stream).read(&mut byte)) {
        Err(_delay_passed) => {}
        Ok(_) => return Ok(()), // hung up (or sent more than a request): no answer
    }
    let body = body(n);
    let response = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    (&*stream).write_all(response.as_bytes())
}

// ---------------------------------------------------------------- the client

/// What a fetch got.
enum Fetched {
    /// The page, of this many bytes in all (head and body).
    Page(usize),
    TimedOut,
}

/// Fetches `/n` from `addr` within `timeout`, and checks the page.
fn fetch(addr: SocketAddr, n: u64, timeout: Duration) -> io::Result<Fetched> {
    let stream = TcpStream::connect(addr)?;
    match greenery::with_timeout(timeout, || exchange(&stream, n)) {
        Ok(size) => size.map(Fetched::Page),
        Err(_timed_out) => {
            hang_up(&stream)?;
            Ok(Fetched::TimedOut)
        }
    }
}

/// Sends the request for `/n` and reads the response; checks it is `/n`'s
/// page. Returns its size.
fn exchange(stream: &TcpStream, n: u64) -> io::Result<usize> {
    (&*stream).write_all(format!("GET /{n} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    (&*stream).read_to_end(&mut response)?;
    let want_body = body(n);
    let want = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{want_body}", want_body.len());
    if response != want.as_bytes() {
        let got = String::from_utf8_lossy(&response);
        return Err(io::Error::other(format!("the response does not match the request: {got:?}")));
    }
    Ok(response.len())
}

/// Gives up a request: shuts down this side and waits until the server
/// closes its side, so the server is done with it when this returns.
fn hang_up(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    io::copy(&mut &*stream, &mut io::sink())?;
    Ok(())
}
