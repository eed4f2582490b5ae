//! Memory after a burst: once a burst of connections has come and gone,
//! the server's process returns to about its memory before the burst (the
//! hub gives back what finished green threads kept, the server its spare
//! buffers, malloc its free memory).
//!
//! One test in this binary, so that nothing else in the process moves its
//! resident memory meanwhile.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenery::net::TcpStream;
use greenery::sync::Event;
use greenery_http::http::{Request, Response};
use greenery_http::{Body, Server};

const GENEROUS: Duration = Duration::from_secs(20);
/// Connections held at once.
const BURST: usize = 1000;

/// This process's resident memory, in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|pages| pages.parse().ok()).expect("statm");
    // SAFETY: sysconf only reads the system's configuration.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Raises the soft limit of open files to the hard one: the burst holds
/// both ends of every connection.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    limit.rlim_cur
}

/// Waits (with a guard against hangs) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + GENEROUS;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        greenery::sleep(Duration::from_millis(5));
    }
}

#[test]
fn after_a_burst_of_slow_connections_memory_returns_near_its_baseline() {
    let limit = raise_fd_limit();
    assert!(
        limit > 2 * BURST as u64 + 64,
        "the test needs {} open files, the limit is {limit}",
        2 * BURST + 64
    );
    // Quick, for the test; the default is ten seconds.
    greenery::stack::set_release_after(Some(Duration::from_millis(100)));
    let reading = Rc::new(Cell::new(0));
    let server = {
        let reading = reading.clone();
        Server::bind("127.0.0.1:0", move |request: Request<Body>| {
            reading.set(reading.get() + 1);
            let body = request.into_body().into_bytes().unwrap_or_default();
            Response::new(format!("{} bytes", body.len()))
        })
        .unwrap()
    };
    server.start().unwrap();
    let addr = server.local_addr();
    let ask = move |go: Option<Rc<Event>>| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(GENEROUS)).unwrap();
        // A slow body: half of it, then (after `go`) the rest.
        stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n").unwrap();
        stream.write_all(&[b'a'; 1000]).unwrap();
        if let Some(go) = go {
            go.wait().unwrap();
        }
        stream.write_all(&[b'b'; 1000]).unwrap();
        let mut reply = [0; 256];
        let n = stream.read(&mut reply).unwrap();
        assert!(reply[..n].ends_with(b"2000 bytes"), "{}", String::from_utf8_lossy(&reply[..n]));
    };
    // A warm-up, so that what a first request sets up exists before the
    // baseline.
    greenery::spawn(move || ask(None)).join().unwrap();
    eventually("the warm-up connection closes", || server.connections() == 0);
    greenery::sleep(Duration::from_millis(300));
    let baseline = resident_bytes();

    let go = Rc::new(Event::new());
    let clients: Vec<_> = (0..BURST)
        .map(|_| {
            let go = go.clone();
            greenery::spawn(move || ask(Some(go)))
        })
        .collect();
    eventually("every handler is reading its body", || reading.get() == BURST + 1);
    let during = resident_bytes();
    go.set();
    for client in clients {
        client.join().unwrap();
    }
    eventually("every connection closes", || server.connections() == 0);
    // Nothing finishes from here on: after 100 ms, memory is given back.
    greenery::sleep(Duration::from_secs(1));
    let after = resident_bytes();
    server.stop(GENEROUS).unwrap();

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let took = during.saturating_sub(baseline);
    let kept = after.saturating_sub(baseline);
    eprintln!(
        "resident memory: {:.1} MiB before the burst, {:.1} MiB during it, {:.1} MiB after it",
        mib(baseline),
        mib(during),
        mib(after)
    );
    assert!(took > (BURST as u64) * 16 * 1024, "the burst should take memory: {:.1} MiB", mib(took));
    assert!(
        kept < took / 5,
        "memory stayed after the burst: {:.1} MiB before, {:.1} MiB during, {:.1} MiB after",
        mib(baseline),
        mib(during),
        mib(after)
    );
}
