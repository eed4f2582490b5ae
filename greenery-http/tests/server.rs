//! The server over real sockets: keep-alive, pipelining, HTTP/1.0, bodies,
//! 100-continue, HEAD, limits, smuggling attempts, panics, timeouts, stop.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::TcpStream;
use greenery::sync::Event;
use greenery_http::http::{Request, Response, StatusCode};
use greenery_http::{Body, Limits, MinRate, RequestExt, ResponseBody, Server, Timeouts};

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
        Client::connect_to(server.local_addr())
    }

    fn connect_to(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(GENEROUS)).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    /// Another handle to the connection, to write from another green
    /// thread while this one reads.
    fn writer(&self) -> TcpStream {
        self.reader.get_ref().try_clone().unwrap()
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

/// A log that a test reads back (an access log, an error log).
#[derive(Clone, Default)]
struct Sink(Rc<RefCell<Vec<u8>>>);

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).unwrap()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
fn a_pipelined_batch_is_answered_in_order_with_one_write_around_a_large_response_and_a_read_body() {
    const LARGE: usize = 300 * 1024; // past the write buffer's flush size
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        let path = request.uri().path().to_owned();
        let peer = request.peer_addr().is_some();
        match path.as_str() {
            "/large" => Response::new(ResponseBody::from(vec![b'x'; LARGE])),
            "/echo" => {
                let body = request.into_body().into_bytes().unwrap();
                Response::new(ResponseBody::from(format!("echo {}", String::from_utf8_lossy(&body))))
            }
            _ => Response::new(ResponseBody::from(format!("{path} {peer}"))),
        }
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    // Sixteen small requests in one write: their responses come back in
    // one write too, all in the first read.
    let mut batch = Vec::new();
    for i in 0..16 {
        batch.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    client.send(&batch);
    let mut first = vec![0; 64 * 1024];
    let read = client.reader.get_mut().read(&mut first).unwrap();
    let text = String::from_utf8_lossy(&first[..read]).into_owned();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 16, "{text}");
    for i in 0..16 {
        assert!(text.contains(&format!("\r\n\r\n/{i} true")), "{text}");
    }
    // Then a batch with a large response and a body (chunked, then with a
    // length) in the middle of small ones.
    let mut batch = Vec::new();
    batch.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    batch.extend_from_slice(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld");
    batch.extend_from_slice(b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
    client.send(&batch);
    assert_eq!(client.reply().text(), "/a true");
    let large = client.reply();
    assert_eq!(large.body.len(), LARGE);
    assert!(large.body.iter().all(|&byte| byte == b'x'));
    assert_eq!(client.reply().text(), "/b true");
    assert_eq!(client.reply().text(), "echo hello");
    assert_eq!(client.reply().text(), "/c true");
    assert_eq!(client.reply().text(), "echo world");
    assert_eq!(client.reply().text(), "/d true");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn header_values_kept_by_handlers_outlive_the_connection_buffers() {
    // Heads are copied into blocks that later heads reuse once free: the
    // values a handler keeps must stay as they were.
    type Kept = Rc<RefCell<Vec<(usize, Request<()>)>>>;
    let kept: Kept = Rc::default();
    let keeper = kept.clone();
    let server = Server::bind("127.0.0.1:0", move |request: Request<Body>| {
        let i: usize = request.uri().path()[1..].parse().unwrap();
        if i.is_multiple_of(3) {
            keeper.borrow_mut().push((i, request.map(drop)));
        }
        Response::new("ok")
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    let value = |i: usize| format!("{i}-{}", "v".repeat(i * 37 % 2000));
    for round in 0..4 {
        let mut batch = Vec::new();
        for i in round * 25..(round + 1) * 25 {
            batch.extend_from_slice(
                format!("GET /{i} HTTP/1.1\r\nHost: x\r\nX-Value: {}\r\n\r\n", value(i)).as_bytes(),
            );
        }
        client.send(&batch);
        for _ in 0..25 {
            assert_eq!(client.reply().text(), "ok");
        }
    }
    let kept = kept.borrow();
    assert_eq!(kept.len(), 34);
    for (i, request) in kept.iter() {
        assert_eq!(request.uri().path(), format!("/{i}"));
        assert_eq!(request.headers()["x-value"], value(*i).as_str());
        assert_eq!(request.headers()["host"], "x");
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

/// A server whose handler panics on `/panic`, reporting to `errors`.
fn panicking_server(errors: impl Write + 'static) -> Server {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        if request.uri().path() == "/panic" {
            panic!("the handler gave up");
        }
        Response::new("fine")
    })
    .unwrap()
    .with_error_log(errors);
    server.start().unwrap();
    server
}

#[test]
fn a_panicking_handler_gets_a_500_and_the_server_goes_on() {
    let errors = Sink::default();
    let server = panicking_server(errors.clone());
    assert_eq!(status_of(&server, b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"), (500, true));
    assert_eq!(status_of(&server, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), (200, true));
    server.stop(GENEROUS).unwrap();
    assert_eq!(errors.text().matches("the handler panicked").count(), 1, "{}", errors.text());
}

#[test]
fn a_slow_head_gets_408_and_an_idle_connection_is_closed() {
    let server = echo_server().with_timeouts(Timeouts {
        header: Duration::from_millis(200),
        keep_alive: Duration::from_millis(200),
        io: GENEROUS,
        ..Timeouts::default()
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
        ..Timeouts::default()
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
    let sink = Sink::default();
    let server = echo_server().with_access_log(sink.clone());
    let mut client = Client::connect(&server);
    client.send(b"GET /logged?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let length = client.reply().body.len();
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(client.reply().status, 400);
    server.stop(GENEROUS).unwrap();
    let log = sink.text();
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

// ------------------------------------------------------------------ stop

#[test]
fn serve_forever_returns_only_once_a_request_on_a_woken_keep_alive_connection_is_answered() {
    let started = Rc::new(Event::new());
    let release = Rc::new(Event::new());
    let finished = Rc::new(Cell::new(false));
    let server = {
        let (started, release, finished) = (started.clone(), release.clone(), finished.clone());
        Rc::new(
            Server::bind("127.0.0.1:0", move |request: Request<Body>| {
                if request.uri().path() == "/slow" {
                    started.set();
                    release.wait().unwrap();
                    finished.set(true);
                }
                Response::new("done")
            })
            .unwrap(),
        )
    };
    server.start().unwrap();
    // A keep-alive connection: one request, a pause long enough for it to
    // park without a green thread, then a slow request, which a new green
    // thread picks up.
    let client = {
        let server = server.clone();
        greenery::spawn(move || {
            let mut client = Client::connect(&server);
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(client.reply().status, 200);
            eventually("the connection is idle", || server.idle_connections() == 1);
            // Past the 10 ms an idle connection lingers in its green thread
            // before it parks without one.
            greenery::sleep(Duration::from_millis(100));
            client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
            let reply = client.reply();
            (reply.status, reply.header("connection").map(str::to_owned), client.is_closed())
        })
    };
    // The stop begins while the slow request is in flight; the request is
    // let go well after that.
    let stopper = {
        let (server, started, release) = (server.clone(), started.clone(), release.clone());
        greenery::spawn(move || {
            started.wait().unwrap();
            greenery::spawn({
                let server = server.clone();
                move || {
                    eventually("the stop began", || !server.is_serving());
                    greenery::sleep(Duration::from_millis(100));
                    release.set();
                }
            });
            server.stop(GENEROUS).unwrap();
        })
    };
    server.serve_forever().unwrap();
    assert!(finished.get(), "serve_forever returned while a request was in flight");
    assert_eq!(server.connections(), 0);
    stopper.get().unwrap();
    let (status, connection, closed) = client.get().unwrap();
    assert_eq!(status, 200, "the request in flight was answered");
    assert_eq!(connection.as_deref(), Some("close"));
    assert!(closed);
}

// ------------------------------------------------------------- deadlines

/// Sends an empty line every 25 ms, as long as the connection stays open
/// (at most 200 of them: five seconds); whether the server closed it.
fn closed_while_sending_empty_lines(client: Client) -> bool {
    let mut writer = client.writer();
    let reader = greenery::spawn(move || {
        let mut client = client;
        client.is_closed()
    });
    for _ in 0..200 {
        if reader.is_ready() {
            break;
        }
        if writer.write_all(b"\r\n").is_err() {
            break;
        }
        greenery::sleep(Duration::from_millis(25));
    }
    let closed = reader.is_ready();
    drop(writer); // the reader sees the end now, if it was still waiting
    let _ = reader.get();
    closed
}

#[test]
fn empty_lines_before_a_request_move_no_deadline() {
    let server = echo_server().with_timeouts(Timeouts {
        header: Duration::from_millis(300),
        keep_alive: Duration::from_millis(300),
        io: GENEROUS,
        ..Timeouts::default()
    });
    // Between requests: the keep-alive timeout still counts from the end
    // of the last response, through parks and wake-ups.
    let mut client = Client::connect(&server);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().status, 200);
    assert!(closed_while_sending_empty_lines(client), "empty lines kept an idle connection open");
    // Before the first request: the header timeout counts from the connect.
    let client = Client::connect(&server);
    assert!(closed_while_sending_empty_lines(client), "empty lines kept a new connection open");
    // Empty lines are still allowed before a request that comes in time.
    let mut client = Client::connect(&server);
    client.send(b"\r\n\r\nGET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.reply().text(), "GET /late 0:");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_request_body_below_its_minimum_rate_gets_408_and_a_close() {
    let server = echo_server().with_timeouts(Timeouts {
        io: GENEROUS,
        request_body: MinRate { grace: Duration::from_millis(200), bytes_per_second: 1000 },
        ..Timeouts::default()
    });
    // One byte every 50 ms: each earns a millisecond of waiting.
    let mut client = Client::connect(&server);
    client.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n");
    let answered = Rc::new(Cell::new(false));
    let trickle = greenery::spawn({
        let (mut writer, answered) = (client.writer(), answered.clone());
        move || {
            for _ in 0..200 {
                if answered.get() || writer.write_all(b"x").is_err() {
                    return;
                }
                greenery::sleep(Duration::from_millis(50));
            }
        }
    });
    let reply = client.reply();
    answered.set(true);
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.is_closed());
    trickle.get().unwrap();
    // A body that pauses but keeps its rate on average is fine: 5000 bytes
    // earn five seconds of waiting.
    let mut client = Client::connect(&server);
    client.send(b"POST /paused HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n");
    client.send(&[b'a'; 5000]);
    greenery::sleep(Duration::from_millis(300));
    client.send(&[b'b'; 5000]);
    let reply = client.reply();
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("POST /paused 10000:aaa"));
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_client_that_does_not_read_its_response_is_cut_off() {
    const LARGE: usize = 32 << 20;
    let server = Server::bind("127.0.0.1:0", |_request: Request<Body>| Response::new(vec![b'z'; LARGE]))
        .unwrap()
        .with_timeouts(Timeouts {
            io: GENEROUS,
            // What the socket buffers take at once earns next to nothing.
            response_body: MinRate { grace: Duration::from_millis(200), bytes_per_second: 1 << 30 },
            ..Timeouts::default()
        });
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n");
    // The client reads nothing until the server has given up on it.
    eventually("the server closes the connection", || server.connections() == 0);
    let mut received = Vec::new();
    let _ = client.reader.read_to_end(&mut received);
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(received.len() < LARGE, "the response was cut short");
    server.stop(GENEROUS).unwrap();
}

// ---------------------------------------------------------------- CONNECT

/// A handler that answers CONNECT without taking the connection over (a
/// handler that knows nothing of tunnels) gets 501 in place of its answer;
/// see tests/upgrade.rs for the tunnels.
#[test]
fn connect_not_taken_over_gets_501_and_a_close_without_the_tunnel_read_as_http() {
    let ran = Rc::new(RefCell::new(Vec::new()));
    let seen = ran.clone();
    let server = Server::bind("127.0.0.1:0", move |request: Request<Body>| {
        seen.borrow_mut().push(request.uri().to_string());
        Response::new("tunnel open")
    })
    .unwrap();
    server.start().unwrap();
    let mut client = Client::connect(&server);
    client.send(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\
          \x16\x03\x01\x00\x05hello GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let reply = client.reply();
    assert_eq!(reply.status, 501);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.is_closed());
    assert_eq!(*ran.borrow(), ["example.com:443"], "the smuggled request never ran");
    server.stop(GENEROUS).unwrap();
}

// ------------------------------------------------------------ the head

#[test]
fn the_request_head_is_held_to_every_must_of_rfc_9112_and_9110() {
    let headers = Rc::new(RefCell::new(Vec::new()));
    let seen = headers.clone();
    let server = Server::bind("127.0.0.1:0", move |request: Request<Body>| {
        let field = |name: &str| request.headers().get(name).map(|value| value.to_str().unwrap().to_owned());
        seen.borrow_mut().push((field("host"), field("content-length")));
        let _ = request.into_body().into_bytes();
        Response::new("ok")
    })
    .unwrap();
    server.start().unwrap();
    let cases: &[(&str, &[u8], u16)] = &[
        // 9112 3.2: Host is uri-host [ ":" port ].
        ("a Host with a slash", b"GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", 400),
        ("a Host with userinfo", b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n", 400),
        ("a Host with a space", b"GET / HTTP/1.1\r\nHost: x y\r\n\r\n", 400),
        ("a Host with a bad port", b"GET / HTTP/1.1\r\nHost: x:80a\r\n\r\n", 400),
        ("a Host with two colons", b"GET / HTTP/1.1\r\nHost: x:80:81\r\n\r\n", 400),
        ("a Host with a bad IPv6 literal", b"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400),
        ("a Host with a bad escape", b"GET / HTTP/1.1\r\nHost: x%zz\r\n\r\n", 400),
        ("a valid Host with a port", b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 200),
        ("an IPv6 Host", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200),
        ("an IPvFuture Host", b"GET / HTTP/1.1\r\nHost: [v1.x:y]\r\n\r\n", 200),
        ("an empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 200),
        ("no Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400),
        // 9112 2.2, 5.1, 5.2.
        ("whitespace before the first field", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
        ("a space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("a tab before the colon", b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
        ("a bare CR", b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),
        // 9110 5.5: no NUL (nor other controls) in a field value.
        ("a NUL in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 400),
        ("a control in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
        // 9110 4.2: an http URI's host is not empty, and has no userinfo.
        ("an absolute target with no host", b"GET http://:80/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("an absolute target with userinfo", b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        // 9112 3.2.3, 3.2.4: the authority form is CONNECT's, port included;
        // the asterisk form is OPTIONS'; no fragment.
        ("CONNECT without a port", b"CONNECT example.com HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("CONNECT with userinfo", b"CONNECT u@example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("CONNECT to a path", b"CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET with the authority form", b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET with the asterisk form", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("a fragment", b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        // 9112 6.1, 6.3: framing.
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "both framings",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        ("chunked not last", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("an unknown coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("an invalid Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc", 400),
        ("differing Content-Lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabc", 400),
        // 9110 10.1.1: 100-continue in HTTP/1.0 is ignored.
        (
            "100-continue in HTTP/1.0",
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            200,
        ),
    ];
    for (what, request, status) in cases {
        let mut client = Client::connect(&server);
        client.send(request);
        let reply = client.reply();
        assert_eq!(reply.status, *status, "{what}: {}", reply.text());
        if *status >= 400 {
            assert!(client.is_closed(), "{what}: the connection closes");
        }
    }
    headers.borrow_mut().clear();
    // 9112 3.2.2: with an absolute target, the target's authority is the
    // Host the handler sees. 9110 8.6: a repeated equal Content-Length is
    // one.
    let mut client = Client::connect(&server);
    client.send(b"GET http://example.org:81/a HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(client.reply().status, 200);
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(client.reply().status, 200);
    assert_eq!(
        *headers.borrow(),
        [(Some("example.org:81".to_owned()), None), (Some("x".to_owned()), Some("3".to_owned()))]
    );
    server.stop(GENEROUS).unwrap();
}

// ---------------------------------------------------------- panic reports

/// A command running this test binary again, under `GREENERY_TEST_RUNNER`
/// if it is set (qemu-user cannot execute a foreign binary by itself).
fn this_binary() -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    match std::env::var("GREENERY_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut command = std::process::Command::new(words.next().unwrap());
            command.args(words).arg(exe);
            command
        }
        _ => std::process::Command::new(exe),
    }
}

#[test]
fn a_panicking_handler_is_reported_once_with_its_request_line() {
    if std::env::var("GREENERY_HTTP_PANIC_SCENARIO").is_ok() {
        // In a child process, reporting to stderr, which the test reads.
        let server = panicking_server(io::stderr());
        assert_eq!(status_of(&server, b"GET /panic?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"), (500, true));
        server.stop(GENEROUS).unwrap();
        return;
    }
    for backtrace in ["0", "1"] {
        let output = this_binary()
            .args(["--exact", "a_panicking_handler_is_reported_once_with_its_request_line", "--nocapture"])
            .env("GREENERY_HTTP_PANIC_SCENARIO", "1")
            .env("RUST_BACKTRACE", backtrace)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let report = stderr.lines().next().unwrap_or_default();
        assert!(
            report.starts_with(
                "greenery-http: the handler panicked answering GET /panic?x=1 HTTP/1.1 from 127.0.0.1:"
            ),
            "{stderr}"
        );
        assert!(report.contains(" at greenery-http/tests/server.rs:"), "the panic's location: {stderr}");
        assert!(report.ends_with(": the handler gave up"), "{stderr}");
        assert!(!stderr.contains("panicked at"), "the standard hook's report is not printed too: {stderr}");
        if backtrace == "0" {
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        } else {
            assert!(stderr.contains("stack backtrace:"), "a backtrace, as asked: {stderr}");
            assert!(stderr.contains("panicking_server"), "the handler's frames: {stderr}");
        }
    }
}

#[test]
fn a_flood_of_panics_is_reported_ten_a_minute_with_a_count_of_the_rest() {
    let errors = Sink::default();
    let server = panicking_server(errors.clone());
    for _ in 0..25 {
        assert_eq!(status_of(&server, b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"), (500, true));
    }
    server.stop(GENEROUS).unwrap();
    let log = errors.text();
    // (With RUST_BACKTRACE set, each report carries its backtrace.)
    assert_eq!(log.matches("greenery-http: the handler panicked answering GET /panic").count(), 10, "{log}");
    assert_eq!(
        log.lines().last(),
        Some("greenery-http: 15 more handler panics not reported (at most 10 are, a minute)"),
        "{log}"
    );
}

// ------------------------------------------------- listening and binding

#[test]
fn the_server_listens_with_the_systems_longest_backlog_or_the_one_it_is_given() {
    use std::os::fd::AsRawFd;
    let backlog_of = |listener: &greenery::net::TcpListener| {
        // SAFETY: a zeroed tcp_info is a valid one (plain integers).
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, which is
        // that large; the fd is open for the call.
        let rc = unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
        info.tcpi_sacked // a listener's backlog
    };
    let listener = greenery::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let probe = listener.try_clone().unwrap();
    let somaxconn: u32 =
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    // qemu-user does not translate a listener's TCP_INFO (it reads 0).
    let reported = backlog_of(&probe) != 0;
    if reported {
        assert_eq!(backlog_of(&probe), somaxconn);
    } else {
        println!("TCP_INFO reports no backlog here (an emulator): the backlog checks are left out");
    }
    let server =
        Server::new(listener, |_request: Request<Body>| Response::new("ok")).unwrap().with_backlog(77);
    server.start().unwrap();
    if reported {
        assert_eq!(backlog_of(&probe), 77);
    }
    assert_eq!(status_of(&server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), (200, true));
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_failed_bind_names_the_address() {
    let server = echo_server();
    let addr = server.local_addr();
    let err = Server::bind(addr, |_request: Request<Body>| Response::new("second")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().starts_with(&format!("cannot listen on {addr}: Address already in use")),
        "{err}"
    );
    server.stop(GENEROUS).unwrap();
}
