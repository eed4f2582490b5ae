//! The server over real sockets: keep-alive, pipelining, HTTP/1.0, bodies,
//! 100-continue, HEAD, limits, smuggling attempts, panics, timeouts, stop.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenery::net::TcpStream;
use greenery_http::http::{Request, Response, StatusCode};
use greenery_http::{Body, Limits, RequestExt, ResponseBody, Server, Timeouts};

const GENEROUS: Duration = Duration::from_secs(20);

/// A parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client over one connection.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(GENEROUS)).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Reads one response; `head_request`: it has no body.
    fn reply_to(&mut self, head_request: bool) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "status line {line:?}");
        let status = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(line.ends_with("\r\n"), "{line:?}");
            let line = line.trim_end_matches("\r\n");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").unwrap();
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut reply = Reply { status, headers, body: Vec::new() };
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return reply;
        }
        if let Some(length) = reply.header("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.reader.read_exact(&mut body).unwrap();
            reply.body = body;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&chunk[..size]);
            }
        } else {
            self.reader.read_to_end(&mut reply.body).unwrap();
        }
        reply
    }

    fn reply(&mut self) -> Reply {
        self.reply_to(false)
    }

    /// Whether the server closed the connection (reads end of file).
    fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(err) => err.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// A server answering `METHOD PATH body-length` for every request, reading
/// the body fully.
fn echo_server() -> Server {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        let line = format!("{} {}", request.method(), request.uri());
        let body = request.into_body().into_bytes();
        match body {
            Ok(body) => Response::new(format!("{line} {}:{}", body.len(), String::from_utf8_lossy(&body))),
            Err(err) => {
                let mut response = Response::new(format!("body error: {err}"));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            }
        }
    })
    .unwrap();
    server.start().unwrap();
    server
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    for i in 0..5 {
        client.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let reply = client.reply();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), format!("GET /{i} 0:"));
        assert!(reply.header("date").is_some());
        assert_eq!(reply.header("connection"), None);
    }
    client.send(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.is_closed());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(
            format!("POST /{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{i:02}").as_bytes(),
        );
    }
    client.send(&batch);
    for i in 0..20 {
        assert_eq!(client.reply().text(), format!("POST /{i} 2:{i:02}"));
    }
    server.stop(GENEROUS).unwrap();
}

#[test]
fn http_10_closes_unless_asked_to_keep_alive() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    assert_eq!(reply.text(), "GET /a 0:");
    client.send(b"GET /b HTTP/1.0\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.is_closed());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn chunked_request_bodies_and_their_trailers() {
    let trailers = Rc::new(RefCell::new(None));
    let seen = trailers.clone();
    let server = Server::bind("127.0.0.1:0", move |request: Request<Body>| {
        let mut body = request.into_body();
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes).unwrap();
        *seen.borrow_mut() = body.trailers();
        Response::new(bytes)
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nChecksum: abc\r\n\r\n",
    );
    assert_eq!(client.reply().text(), "hello world");
    let trailers = trailers.borrow_mut().take().expect("trailers");
    assert_eq!(trailers["checksum"], "abc");
    // The connection goes on after a chunked body.
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(client.reply().text(), "abc");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_malformed_chunk_fails_the_read_and_closes_the_connection() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("longer than its size"), "{}", reply.text());
    assert!(client.is_closed());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn responses_can_be_streamed_or_read_from_a_reader() {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| match request.uri().path() {
        "/stream" => Response::new(ResponseBody::stream(|out| {
            for i in 0..3 {
                write!(out, "part {i};")?;
                out.flush()?;
            }
            Ok(())
        })),
        "/reader" => Response::new(ResponseBody::from_reader(io::Cursor::new(vec![b'r'; 100_000]), None)),
        _ => Response::new(ResponseBody::from_reader(io::Cursor::new(b"sized".to_vec()), Some(5))),
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.text(), "part 0;part 1;part 2;");
    client.send(b"GET /reader HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().body, vec![b'r'; 100_000]);
    client.send(b"GET /sized HTTP/1.1\r\nHost: x\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("content-length"), Some("5"));
    assert_eq!(reply.text(), "sized");
    // HTTP/1.0 cannot take chunks: the body ends with the connection.
    client.send(b"GET /stream HTTP/1.0\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.text(), "part 0;part 1;part 2;");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn expect_100_continue_is_answered_on_the_first_read() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    client.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(client.reply().status, 100);
    client.send(b"data");
    assert_eq!(client.reply().text(), "POST /up 4:data");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_handler_that_ignores_an_expected_body_closes_the_connection() {
    let server = Server::bind("127.0.0.1:0", |_request: Request<Body>| Response::new("no thanks")).unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.status, 200, "no 100 Continue was sent");
    assert!(client.is_closed());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn an_unread_short_body_is_drained_and_the_connection_goes_on() {
    let server =
        Server::bind("127.0.0.1:0", |request: Request<Body>| Response::new(request.uri().to_string()))
            .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    client.send(b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    client.send(b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().text(), "/one");
    assert_eq!(client.reply().text(), "/two");
    assert_eq!(client.reply().text(), "/three");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn head_gets_the_headers_without_the_body() {
    let server = echo_server();
    let mut client = Client::connect(&server);
    client.send(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n");
    let reply = client.reply_to(true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("10")); // "HEAD /x 0:"
    client.send(b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().text(), "GET /y 0:", "no stray body bytes came before");
    server.stop(GENEROUS).unwrap();
}

/// Sends `request` on a fresh connection; the status of the reply, and
/// whether the connection was then closed.
fn status_of(server: &Server, request: &[u8]) -> (u16, bool) {
    let mut client = Client::connect(server);
    client.send(request);
    let reply = client.reply();
    (reply.status, client.is_closed())
}

#[test]
fn limits_get_their_status_and_close_the_connection() {
    let server = echo_server().with_limits(Limits {
        max_request_line: 100,
        max_headers: 5,
        max_head: 1000,
        max_body: 10,
    });
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200));
    assert_eq!(status_of(&server, long_target.as_bytes()), (414, true));
    let many = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n";
    assert_eq!(status_of(&server, many.as_bytes()), (431, true));
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n\r\n", "b".repeat(2000));
    assert_eq!(status_of(&server, big.as_bytes()), (431, true));
    assert_eq!(status_of(&server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"), (413, true));
    assert_eq!(status_of(&server, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"), (505, true));
    assert_eq!(status_of(&server, b"NOT HTTP AT ALL\r\n\r\n"), (400, true));
    assert_eq!(status_of(&server, b"GET / HTTP/1.x\r\n\r\n"), (400, true));
    // A chunked body that grows past the limit fails the handler's read.
    let (status, closed) = status_of(
        &server,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
    );
    assert_eq!((status, closed), (400, true));
    server.stop(GENEROUS).unwrap();
}

#[test]
fn smuggling_attempts_are_rejected_and_the_smuggled_request_never_runs() {
    let ran = Rc::new(RefCell::new(Vec::new()));
    let log = ran.clone();
    let server = Server::bind("127.0.0.1:0", move |request: Request<Body>| {
        log.borrow_mut().push(request.uri().path().to_owned());
        let _ = request.into_body().into_bytes();
        Response::new("ok")
    })
    .unwrap();
    server.start().unwrap();
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let attempts = [
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 37\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n x\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /a HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\rX: y\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n",
    ];
    for attempt in attempts {
        let mut client = Client::connect(&server);
        client.send(format!("{attempt}{smuggled}").as_bytes());
        let reply = client.reply();
        assert!(reply.status == 400 || reply.status == 501, "{attempt:?} got {}", reply.status);
        assert!(client.is_closed(), "{attempt:?}");
    }
    // A chunk size that lies is caught while the handler reads.
    let mut client = Client::connect(&server);
    client.send(
        format!("POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n{smuggled}")
            .as_bytes(),
    );
    assert_eq!(client.reply().status, 200);
    assert!(client.is_closed());
    assert_eq!(*ran.borrow(), ["/b"], "only the one well-framed request reached the handler");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_panicking_handler_gets_a_500_and_the_server_goes_on() {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        if request.uri().path() == "/panic" {
            panic!("the handler gave up");
        }
        Response::new("fine")
    })
    .unwrap();
    server.start().unwrap();
    assert_eq!(status_of(&server, b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"), (500, true));
    assert_eq!(status_of(&server, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), (200, true));
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_slow_head_gets_408_and_an_idle_connection_is_closed() {
    let server = echo_server().with_timeouts(Timeouts {
        header: Duration::from_millis(200),
        keep_alive: Duration::from_millis(200),
        io: GENEROUS,
    });
    // Slowloris: a head trickling in, never finished.
    let mut client = Client::connect(&server);
    client.send(b"GET / HTTP/1.1\r\n");
    for _ in 0..3 {
        greenery::sleep(Duration::from_millis(100));
        client.send(b"X-Slow: 1\r\n");
    }
    assert_eq!(client.reply().status, 408);
    assert!(client.is_closed());
    // An idle keep-alive connection is closed without a word.
    let mut client = Client::connect(&server);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().status, 200);
    assert!(client.is_closed(), "closed after the keep-alive timeout");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn stop_closes_idle_connections_and_finishes_requests_in_flight() {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        if request.uri().path() == "/slow" {
            greenery::sleep(Duration::from_millis(200));
        }
        Response::new("done")
    })
    .unwrap();
    server.start().unwrap();
    let mut idle = Client::connect(&server);
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.reply().status, 200);
    let busy = greenery::spawn({
        let mut client = Client::connect(&server);
        move || {
            client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
            let reply = client.reply();
            (reply.status, reply.header("connection").map(str::to_owned), client.is_closed())
        }
    });
    greenery::sleep(Duration::from_millis(50)); // the slow request is in flight
    server.stop(GENEROUS).unwrap();
    assert!(idle.is_closed(), "the idle connection was closed");
    let (status, connection, closed) = busy.get().unwrap();
    assert_eq!(status, 200, "the request in flight finished");
    assert_eq!(connection.as_deref(), Some("close"));
    assert!(closed);
}

/// Opens `count` keep-alive connections that have each had one answer.
fn idle_clients(server: &Server, count: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..count).map(|_| Client::connect(server)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(format!("GET /first/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.reply().text(), format!("GET /first/{i} 0:"));
    }
    clients
}

/// Waits (with a guard against hangs) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + GENEROUS;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        greenery::sleep(Duration::from_millis(1));
    }
}

#[test]
fn idle_keep_alive_connections_park_and_wake_for_their_next_request() {
    let server = echo_server();
    let mut clients = idle_clients(&server, 200);
    eventually("200 idle connections", || server.idle_connections() == 200);
    assert_eq!(server.connections(), 200);
    // Each wakes when its next request arrives, several times over, in
    // pieces too: the part of a head that woke a connection is kept.
    for round in 0..3 {
        for (i, client) in clients.iter_mut().enumerate() {
            client.send(format!("POST /again/{i} HTTP/1.1\r\nHost: x\r\n").as_bytes());
        }
        greenery::sleep(Duration::from_millis(5));
        for client in &mut clients {
            client.send(format!("Content-Length: {round}\r\n\r\n{}", "x".repeat(round)).as_bytes());
        }
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(client.reply().text(), format!("POST /again/{i} {round}:{}", "x".repeat(round)));
        }
    }
    eventually("idle again", || server.idle_connections() == 200);
    // A client that leaves is forgotten.
    drop(clients.pop());
    eventually("one fewer", || server.connections() == 199);
    server.stop(GENEROUS).unwrap();
    assert_eq!(server.connections(), 0);
    for client in &mut clients {
        assert!(client.is_closed(), "stop closed the idle connection");
    }
}

#[test]
fn a_connection_that_sends_nothing_parks_until_its_header_timeout() {
    let server = echo_server().with_timeouts(Timeouts {
        header: Duration::from_millis(100),
        keep_alive: GENEROUS,
        io: GENEROUS,
    });
    let mut silent = Client::connect(&server);
    eventually("the silent connection is idle", || server.idle_connections() == 1);
    assert!(silent.is_closed(), "closed without a word after the header timeout");
    assert_eq!(server.connections(), 0);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn with_a_pool_idle_connections_keep_their_green_thread_and_their_slot() {
    let served = Rc::new(Cell::new(0));
    let count = served.clone();
    let server = Server::bind("127.0.0.1:0", move |_request: Request<Body>| {
        count.set(count.get() + 1);
        Response::new("ok")
    })
    .unwrap()
    .with_pool(2);
    server.start().unwrap();
    let mut first = Client::connect(&server);
    let mut second = Client::connect(&server);
    for client in [&mut first, &mut second] {
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(client.reply().status, 200);
    }
    eventually("two idle connections", || server.idle_connections() == 2);
    // A third waits in the backlog until a slot frees.
    let mut third = Client::connect(&server);
    third.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    greenery::sleep(Duration::from_millis(50));
    assert_eq!(served.get(), 2, "the pool is full: the third request waits");
    first.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(first.reply().status, 200);
    assert_eq!(third.reply().status, 200);
    assert_eq!(served.get(), 4);
    server.stop(GENEROUS).unwrap();
    assert!(second.is_closed() && third.is_closed());
}

#[test]
fn dropping_a_server_closes_its_idle_connections() {
    let server = echo_server();
    let mut clients = idle_clients(&server, 3);
    eventually("three idle connections", || server.idle_connections() == 3);
    drop(server);
    for client in &mut clients {
        assert!(client.is_closed());
    }
}

#[test]
fn a_pool_caps_the_connections_served_at_once() {
    let running = Rc::new(Cell::new(0));
    let most = Rc::new(Cell::new(0));
    let (now, peak) = (running.clone(), most.clone());
    let server = Server::bind("127.0.0.1:0", move |_request: Request<Body>| {
        now.set(now.get() + 1);
        peak.set(peak.get().max(now.get()));
        greenery::sleep(Duration::from_millis(20));
        now.set(now.get() - 1);
        Response::new("ok")
    })
    .unwrap()
    .with_pool(3);
    server.start().unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            greenery::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(GENEROUS)).unwrap();
                stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).unwrap();
                reply.starts_with("HTTP/1.1 200")
            })
        })
        .collect();
    for client in clients {
        assert!(client.get().unwrap());
    }
    assert!(most.get() <= 3 && most.get() >= 1, "at most 3 at once, saw {}", most.get());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn the_access_log_uses_the_common_log_format() {
    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let server = echo_server().with_access_log(sink.clone());
    let mut client = Client::connect(&server);
    client.send(b"GET /logged?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let length = client.reply().body.len();
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(client.reply().status, 400);
    server.stop(GENEROUS).unwrap();
    let log = String::from_utf8(sink.0.borrow().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(lines[0].ends_with(&format!("] \"GET /logged?x=1 HTTP/1.1\" 200 {length}")), "{}", lines[0]);
    let expected = "an HTTP/1.1 request needs a Host header\n".len();
    assert!(lines[1].ends_with(&format!("] \"-\" 400 {expected}")), "{}", lines[1]);
}

#[test]
fn requests_carry_the_peer_address_and_decoded_helpers() {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        let peer = request.peer_addr().expect("a peer");
        let query: Vec<String> = request.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
        Response::new(format!("{} {} {}", peer.ip(), request.decoded_path().unwrap(), query.join("&")))
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(b"GET /a%20b?x=1+2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().text(), "127.0.0.1 /a b x=1 2");
    server.stop(GENEROUS).unwrap();
}
