//! HTTPS (the `tls` feature): requests, keep-alive and pipelining over TLS,
//! ALPN, bad and stalled handshakes, timeouts, idle connections parked
//! without a green thread, graceful stops, 1,000 concurrent connections.
#![cfg(feature = "tls")]

#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenery::net::{TcpStream, TlsStream};
use greenery::sync::Event;
use greenery_http::http::{Request, Response};
use greenery_http::{Body, Server, Timeouts};
use support::tls::{Certs, connect, make_certs};
use support::{Client, GENEROUS, eventually};

/// An HTTPS server answering `METHOD PATH body-length:body`, started.
fn echo_server(certs: &Certs) -> Server {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        let line = format!("{} {}", request.method(), request.uri());
        let body = request.into_body().into_bytes().unwrap_or_default();
        Response::new(format!("{line} {}:{}", body.len(), String::from_utf8_lossy(&body)))
    })
    .unwrap()
    .with_tls(certs.server.clone());
    server.start().unwrap();
    server
}

fn client(server: &Server, certs: &Certs) -> Client<TlsStream> {
    Client::new(connect(server.local_addr(), &certs.client).unwrap())
}

#[test]
fn https_serves_requests_with_keep_alive_pipelining_and_alpn_http_1_1() {
    let certs = make_certs();
    let server = echo_server(&certs);
    assert!(server.is_tls());
    let mut client = client(&server, &certs);
    assert_eq!(client.reader.get_ref().alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
    // Keep-alive: many requests on one connection.
    for i in 0..20 {
        let reply = client.get(&format!("/keep/{i}"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), format!("GET /keep/{i} 0:"));
    }
    // Pipelining: three requests in one write, answered in order.
    client.send(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(client.reply().text(), "GET /a 0:");
    assert_eq!(client.reply().text(), "POST /b 5:hello");
    assert_eq!(client.reply().text(), "GET /c 0:");
    // A large body each way, many records.
    let big = "x".repeat(300_000);
    client.send(
        format!("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{big}", big.len()).as_bytes(),
    );
    assert_eq!(client.reply().text(), format!("POST /big 300000:{big}"));
    // Connection: close ends with close_notify: a clean end of the stream.
    client.send(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("connection"), Some("close"));
    let mut rest = Vec::new();
    client.reader.read_to_end(&mut rest).expect("a clean end, after close_notify");
    assert!(rest.is_empty());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn https_limits_and_head_timeouts_hold_as_for_http() {
    let certs = make_certs();
    let server = echo_server(&certs).with_timeouts(Timeouts {
        header: Duration::from_millis(200),
        keep_alive: Duration::from_millis(200),
        ..Timeouts::default()
    });
    // A head over the limit.
    let mut long = client(&server, &certs);
    long.send(format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)).as_bytes());
    assert_eq!(long.reply().status, 414);
    assert!(long.is_closed());
    // A head that trickles in and never ends.
    let mut slow = client(&server, &certs);
    slow.send(b"GET / HTTP/1.1\r\n");
    for _ in 0..3 {
        greenery::sleep(Duration::from_millis(100));
        slow.send(b"X-Slow: 1\r\n");
    }
    assert_eq!(slow.reply().status, 408);
    assert!(slow.is_closed());
    // An idle keep-alive connection is closed after its timeout.
    let mut idle = client(&server, &certs);
    assert_eq!(idle.get("/").status, 200);
    assert!(idle.is_closed());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_bad_handshake_closes_the_connection_and_the_server_goes_on() {
    let certs = make_certs();
    let server = echo_server(&certs);
    // Plain HTTP to the HTTPS port: no answer in the clear.
    let mut plain = TcpStream::connect(server.local_addr()).unwrap();
    plain.set_read_timeout(Some(GENEROUS)).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&answer));
    // A client that trusts another certificate.
    let stranger = make_certs();
    let err = connect(server.local_addr(), &stranger.client).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    // A client that offers only h2: no protocol in common.
    let mut h2_only = Arc::unwrap_or_clone(certs.client.clone());
    h2_only.alpn_protocols = vec![b"h2".to_vec()];
    let err = connect(server.local_addr(), &Arc::new(h2_only)).unwrap_err();
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
    // The server goes on.
    assert_eq!(client(&server, &certs).get("/after").text(), "GET /after 0:");
    eventually("the failed connections closed", || server.connections() == 1);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_client_stalling_mid_handshake_is_closed_after_the_handshake_timeout() {
    let certs = make_certs();
    let server = echo_server(&certs).with_timeouts(Timeouts {
        handshake: Duration::from_millis(300),
        header: GENEROUS,
        ..Timeouts::default()
    });
    // Half a ClientHello, then nothing.
    let mut stalled = TcpStream::connect(server.local_addr()).unwrap();
    stalled.set_read_timeout(Some(GENEROUS)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).unwrap();
    // Nothing at all: the connection parks, without a green thread.
    let silent = TcpStream::connect(server.local_addr()).unwrap();
    silent.set_read_timeout(Some(GENEROUS)).unwrap();
    eventually("the silent connection parked", || server.idle_connections() >= 1);
    for mut stream in [stalled, silent] {
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "no answer: {rest:?}"),
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}"),
        }
    }
    eventually("both closed", || server.connections() == 0);
    // A client that finishes in time is served.
    assert_eq!(client(&server, &certs).get("/").status, 200);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn idle_tls_connections_park_without_a_green_thread_and_wake_for_their_next_request() {
    let certs = make_certs();
    let server = echo_server(&certs);
    let mut clients: Vec<_> = (0..50).map(|_| client(&server, &certs)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.get(&format!("/first/{i}")).text(), format!("GET /first/{i} 0:"));
    }
    eventually("50 idle connections", || server.idle_connections() == 50);
    assert_eq!(server.connections(), 50);
    for round in 0..3 {
        // In pieces: the piece that wakes a connection is kept.
        for (i, client) in clients.iter_mut().enumerate() {
            client.send(format!("GET /again/{round}/{i} HTTP/1.1\r\n").as_bytes());
        }
        greenery::sleep(Duration::from_millis(5));
        for client in &mut clients {
            client.send(b"Host: x\r\n\r\n");
        }
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(client.reply().text(), format!("GET /again/{round}/{i} 0:"));
        }
        eventually("idle again", || server.idle_connections() == 50);
    }
    server.stop(GENEROUS).unwrap();
    assert_eq!(server.connections(), 0);
    for client in &mut clients {
        assert!(client.is_closed(), "stop closed the idle connection");
    }
}

#[test]
fn a_stop_finishes_https_requests_in_flight() {
    let certs = make_certs();
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        if request.uri().path() == "/slow" {
            greenery::sleep(Duration::from_millis(200));
        }
        Response::new("done")
    })
    .unwrap()
    .with_tls(certs.server.clone());
    server.start().unwrap();
    let mut idle = client(&server, &certs);
    assert_eq!(idle.get("/").status, 200);
    let busy = greenery::spawn({
        let mut client = client(&server, &certs);
        move || {
            let reply = client.get("/slow");
            (reply.status, reply.header("connection").map(str::to_owned), client.is_closed())
        }
    });
    greenery::sleep(Duration::from_millis(50));
    server.stop(GENEROUS).unwrap();
    assert!(idle.is_closed());
    assert_eq!(busy.get().unwrap(), (200, Some("close".to_owned()), true));
}

/// Raises the soft limit of open files to the hard one.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    limit.rlim_cur
}

#[test]
fn a_thousand_concurrent_tls_connections_are_served() {
    const CLIENTS: usize = 1000;
    let limit = raise_fd_limit();
    assert!(
        limit > 2 * CLIENTS as u64 + 64,
        "the test needs {} open files, the limit is {limit}",
        2 * CLIENTS + 64
    );
    let certs = make_certs();
    let server = echo_server(&certs);
    let addr = server.local_addr();
    // Every client connects and asks, then waits until all have, asks
    // again, and leaves.
    let connected = Rc::new(Cell::new(0));
    let all_connected = Rc::new(Event::new());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (config, connected, all_connected) =
                (certs.client.clone(), connected.clone(), all_connected.clone());
            greenery::spawn(move || {
                let mut client = Client::new(connect(addr, &config).unwrap());
                assert_eq!(client.get(&format!("/{i}")).text(), format!("GET /{i} 0:"));
                connected.set(connected.get() + 1);
                if connected.get() == CLIENTS {
                    all_connected.set();
                }
                all_connected.wait().unwrap();
                assert_eq!(client.get(&format!("/{i}/again")).text(), format!("GET /{i}/again 0:"));
            })
        })
        .collect();
    all_connected.wait().unwrap();
    assert_eq!(server.connections(), CLIENTS);
    for client in clients {
        client.join().unwrap();
    }
    eventually("every connection closed", || server.connections() == 0);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn certificates_load_from_pem_files() {
    let certs = make_certs();
    let dir = std::env::temp_dir().join(format!("greenery-http-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &certs.cert_pem).unwrap();
    std::fs::write(&key, &certs.key_pem).unwrap();
    let server = Server::bind("127.0.0.1:0", |_: Request<Body>| Response::new("from PEM files"))
        .unwrap()
        .with_tls_pem_files(&cert, &key)
        .unwrap();
    server.start().unwrap();
    assert_eq!(client(&server, &certs).get("/").text(), "from PEM files");
    server.stop(GENEROUS).unwrap();
    let err = Server::bind("127.0.0.1:0", |_: Request<Body>| Response::new(""))
        .unwrap()
        .with_tls_pem_files(dir.join("nowhere.pem"), &key)
        .unwrap_err();
    assert!(err.to_string().contains("nowhere.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
