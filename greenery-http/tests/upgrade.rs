//! Connections handed over: `101 Switching Protocols` (WebSocket with
//! tungstenite, over HTTP and HTTPS), the bytes already read, no server
//! timeouts after the switch, stops, panics; CONNECT tunnels, refusals and
//! the 501 default; handler mistakes answered 500.

#[path = "support/mod.rs"]
mod support;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::{StreamServer, TcpStream};
use greenery_http::http::{Method, Request, Response, StatusCode, header};
use greenery_http::{Body, ResponseBody, Server, Timeouts, Upgraded};
use support::{Client, GENEROUS, eventually};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// A log that a test reads back.
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

/// `101` to `Upgrade: echo`, then every byte back until the client's end.
fn switch_to_echo(_request: Request<Body>) -> Response<ResponseBody> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "echo")
        .body(ResponseBody::upgrade(|mut stream: Upgraded| {
            let mut buf = [0; 1024];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }))
        .unwrap()
}

fn plain_client(server: &Server) -> Client<TcpStream> {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    Client::new(stream)
}

#[test]
fn a_101_hands_the_connection_over_with_the_bytes_already_read() {
    let server = Server::bind("127.0.0.1:0", switch_to_echo).unwrap();
    server.start().unwrap();
    let mut client = plain_client(&server);
    // The first bytes of the new protocol come right behind the request.
    client.send(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nfirst bytes");
    let reply = client.reply();
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("upgrade"), Some("echo"));
    assert_eq!(reply.header("connection"), Some("upgrade"), "added when the handler set none");
    assert_eq!(reply.header("content-length"), None);
    let mut echoed = [0; 11];
    client.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"first bytes");
    // What looks like HTTP is now just bytes.
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    let mut echoed = [0; 18];
    client.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(server.connections(), 1);
    client.reader.get_ref().shutdown(Shutdown::Write).unwrap();
    assert!(client.is_closed());
    eventually("the upgraded connection closed", || server.connections() == 0);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn an_upgraded_connection_outlives_the_servers_timeouts_and_a_stop_ends_it_at_its_timeout() {
    let server = Server::bind("127.0.0.1:0", switch_to_echo).unwrap().with_timeouts(Timeouts {
        header: Duration::from_millis(100),
        keep_alive: Duration::from_millis(100),
        io: Duration::from_millis(100),
        ..Timeouts::default()
    });
    server.start().unwrap();
    let mut client = plain_client(&server);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
    assert_eq!(client.reply().status, 101);
    // Quiet for longer than every timeout of the server: still open.
    greenery::sleep(Duration::from_millis(400));
    client.send(b"still here");
    let mut echoed = [0; 10];
    client.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still here");
    assert_eq!(server.idle_connections(), 0, "not idle: handed over");
    // A stop waits for it as for a request in flight, then ends it.
    server.stop(Duration::from_millis(100)).unwrap();
    assert!(client.is_closed());
    assert_eq!(server.connections(), 0);
}

/// Answers a WebSocket handshake (as the websocket example does, with
/// fewer checks) and echoes messages.
fn websocket_echo(request: Request<Body>) -> Response<ResponseBody> {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
        let mut response = Response::new(ResponseBody::from("WebSocket only\n"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
        .body(ResponseBody::upgrade(|stream: Upgraded| {
            let mut socket = WebSocket::from_raw_socket(stream, Role::Server, None);
            while let Ok(message) = socket.read() {
                if (message.is_text() || message.is_binary()) && socket.send(message).is_err() {
                    return;
                }
            }
        }))
        .unwrap()
}

/// Talks to an echoing WebSocket: text, binary, ping, close.
fn talk_to_echo<S: Read + Write>(socket: &mut WebSocket<S>) {
    for i in 0..20 {
        socket.send(Message::text(format!("hello {i}"))).unwrap();
        assert_eq!(socket.read().unwrap(), Message::text(format!("hello {i}")));
    }
    let big = vec![7u8; 200_000];
    socket.send(Message::binary(big.clone())).unwrap();
    assert_eq!(socket.read().unwrap(), Message::binary(big));
    socket.send(Message::Ping(b"ping".to_vec().into())).unwrap();
    assert_eq!(socket.read().unwrap(), Message::Pong(b"ping".to_vec().into()));
    socket.close(None).unwrap();
    loop {
        match socket.read() {
            Ok(Message::Close(_)) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            other => panic!("after the close: {other:?}"),
        }
    }
}

#[test]
fn a_websocket_echo_over_an_upgrade_with_tungstenite() {
    let server = Server::bind("127.0.0.1:0", websocket_echo).unwrap();
    server.start().unwrap();
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    let (mut socket, response) =
        tungstenite::client(format!("ws://{}/echo", server.local_addr()), stream).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    talk_to_echo(&mut socket);
    drop(socket);
    eventually("the WebSocket's connection closed", || server.connections() == 0);
    server.stop(GENEROUS).unwrap();
}

#[cfg(feature = "tls")]
#[test]
fn a_websocket_echo_over_https() {
    let certs = support::tls::make_certs();
    let server = Server::bind("127.0.0.1:0", websocket_echo).unwrap().with_tls(certs.server.clone());
    server.start().unwrap();
    let tls = support::tls::connect(server.local_addr(), &certs.client).unwrap();
    let (mut socket, response) = tungstenite::client("wss://localhost/echo", tls).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(socket.get_ref().alpn_protocol().is_some());
    talk_to_echo(&mut socket);
    drop(socket);
    eventually("the WebSocket's connection closed", || server.connections() == 0);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_panic_after_the_upgrade_is_reported_once_with_its_request_line() {
    let errors = Sink::default();
    let server = Server::bind("127.0.0.1:0", |_request: Request<Body>| {
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "boom")
            .body(ResponseBody::upgrade(|_stream: Upgraded| panic!("the new protocol broke")))
            .unwrap()
    })
    .unwrap()
    .with_error_log(errors.clone());
    server.start().unwrap();
    let mut client = plain_client(&server);
    client.send(b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: boom\r\n\r\n");
    assert_eq!(client.reply().status, 101);
    assert!(client.is_closed());
    server.stop(GENEROUS).unwrap();
    let text = errors.text();
    assert_eq!(text.matches("panicked").count(), 1, "{text}");
    assert!(text.contains("answering GET /boom HTTP/1.1"), "{text}");
    assert!(text.contains("the new protocol broke"), "{text}");
}

#[test]
fn switching_protocols_the_wrong_way_gets_500_and_a_close() {
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        match request.uri().path() {
            // 101 without taking the connection over.
            "/no-take-over" => {
                Response::builder().status(101).header(header::UPGRADE, "x").body(ResponseBody::empty())
            }
            // Taking it over without 101.
            "/no-101" => Response::builder().status(200).body(ResponseBody::upgrade(|_| {})),
            _ => Response::builder().body(ResponseBody::from("plain")),
        }
        .unwrap()
    })
    .unwrap();
    server.start().unwrap();
    for path in ["/no-take-over", "/no-101"] {
        let mut client = plain_client(&server);
        client.send(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n").as_bytes(),
        );
        let reply = client.reply();
        assert_eq!(reply.status, 500, "{path}");
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(client.is_closed());
    }
    server.stop(GENEROUS).unwrap();
}

// ---------------------------------------------------------------- CONNECT

/// A proxy handler: CONNECT to `127.0.0.1:PORT` tunnels there (a green
/// thread each way); CONNECT elsewhere gets `403`; anything else, `400`.
fn proxy(request: Request<Body>) -> Response<ResponseBody> {
    let status = |status: StatusCode| {
        let mut response = Response::new(ResponseBody::from("no\n"));
        *response.status_mut() = status;
        response
    };
    if request.method() != Method::CONNECT {
        return status(StatusCode::BAD_REQUEST);
    }
    let target = request.uri().authority().map(|authority| authority.to_string()).unwrap_or_default();
    if !target.starts_with("127.0.0.1:") {
        return status(StatusCode::FORBIDDEN);
    }
    let Ok(upstream) = TcpStream::connect(target.as_str()) else {
        return status(StatusCode::BAD_GATEWAY);
    };
    Response::new(ResponseBody::upgrade(move |client: Upgraded| {
        let (mut client_in, mut upstream_out) = (client.clone(), upstream.try_clone().unwrap());
        let forward = greenery::spawn(move || {
            let _ = io::copy(&mut client_in, &mut upstream_out);
            let _ = upstream_out.shutdown(Shutdown::Write);
        });
        let (mut upstream_in, mut client_out) = (upstream, client);
        let _ = io::copy(&mut upstream_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Write);
        let _ = forward.join();
    }))
}

/// A server upstream of the proxy: a greeting, then an echo.
fn upstream_echo() -> StreamServer {
    let server = StreamServer::bind("127.0.0.1:0", |mut stream: TcpStream, _| {
        let _ = stream.write_all(b"upstream here\n");
        let mut buf = [0; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    })
    .unwrap();
    server.start().unwrap();
    server
}

#[test]
fn a_handler_that_takes_connect_over_tunnels_raw_bytes_both_ways() {
    let upstream = upstream_echo();
    let server = Server::bind("127.0.0.1:0", proxy).unwrap();
    server.start().unwrap();
    let target = upstream.local_addrs()[0];
    let mut client = plain_client(&server);
    // Tunnel bytes may follow the request at once.
    client.send(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nearly bytes").as_bytes());
    let reply = client.reply_with(true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), None, "RFC 9110 9.3.6: no Content-Length on a 2xx to CONNECT");
    assert_eq!(reply.header("transfer-encoding"), None);
    let mut greeting = [0; 14];
    client.reader.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"upstream here\n");
    let mut echoed = [0; 11];
    client.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"early bytes");
    client.send(b"\x16\x03\x01 not HTTP at all");
    let mut echoed = [0; 19];
    client.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"\x16\x03\x01 not HTTP at all");
    client.reader.get_ref().shutdown(Shutdown::Write).unwrap();
    assert!(client.is_closed());
    eventually("the tunnel closed", || server.connections() == 0);
    server.stop(GENEROUS).unwrap();
    upstream.stop(GENEROUS).unwrap();
}

#[test]
fn a_handler_that_refuses_connect_is_heard_and_the_connection_closes() {
    let server = Server::bind("127.0.0.1:0", proxy).unwrap();
    server.start().unwrap();
    let mut client = plain_client(&server);
    client.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.is_closed(), "what follows a CONNECT is never read as HTTP");
    server.stop(GENEROUS).unwrap();
}
