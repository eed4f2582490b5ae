//! WebSockets over greenery-http's upgrades, with the `tungstenite` crate:
//! an echo at `/echo` and a broadcast chat at `/chat`, every connection a
//! green thread (two for a chat member) on this one OS thread.
//!
//! ```text
//! cargo run --release -p greenery-http --example websocket -- 127.0.0.1:PORT
//! cargo run --release -p greenery-http --example websocket -- --self-test
//! ```
//!
//! Listens on 127.0.0.1:8765 by default and serves until killed; try it
//! with any WebSocket client (`websocat ws://127.0.0.1:8765/chat`).
//!
//! # The chat
//!
//! Every text message a member sends goes to every other member as
//! `<NAME> text`, never back to the sender; a member is named by its
//! address, such as `127.0.0.1:51234`. Notices from the server begin with
//! `* `: the newcomer gets `* welcome NAME; N others here`, and the others
//! `* NAME joined`, `* NAME left` and `* NAME dropped (not reading)`.
//!
//! Slow members are dropped, as in greenery's `chat_server` example: each
//! member has a bounded queue of outgoing messages (256), emptied into its
//! connection by a writer green thread of its own. A sender whose message
//! finds a queue full waits for room for at most a second (and reads
//! nothing meanwhile, which pushes back on it through TCP); then the
//! recipient is dropped and the others are told.
//!
//! tungstenite's `WebSocket` reads and writes one stream from one place, so
//! a member's reader and writer each have one over a handle of the
//! connection ([`Upgraded`] clones): the reader's sends only what the
//! protocol answers by itself (a pong, the close handshake), and it hands
//! those bytes to the writer, which alone writes the connection.
//!
//! `--self-test` starts the server on a free port and runs, in this
//! process, an echo client and four chat clients (alice, bob and carol
//! talk; dave never reads). It prints what each sends (`->`) and receives
//! (`<-`), names standing for addresses, and exits with status 0 if
//! everyone received exactly what they should have (1 otherwise).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use greenery::net::TcpStream;
use greenery::sync::Queue;
use greenery_http::http::{Request, Response, StatusCode, header};
use greenery_http::{Body, ResponseBody, Server, Upgraded};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// How many messages wait for a member before a sender waits for room.
const QUEUE_MESSAGES: usize = 256;
/// How long a sender waits for room in a recipient's queue before the
/// recipient is dropped.
const SLOW_CLIENT_GRACE: Duration = Duration::from_secs(1);

fn main() {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--self-test") {
        if let Err(err) = self_test() {
            eprintln!("websocket: self-test failed: {err}");
            std::process::exit(1);
        }
        println!("self-test passed");
        return;
    }
    let addr = arg.unwrap_or_else(|| "127.0.0.1:8765".to_owned());
    let server = websocket_server(&addr).unwrap_or_else(|err| {
        eprintln!("websocket: {err}"); // it names the address
        std::process::exit(1);
    });
    eprintln!("websocket: ws://{0}/echo and ws://{0}/chat", server.local_addr());
    if let Err(err) = server.serve_forever() {
        eprintln!("websocket: {err}");
        std::process::exit(1);
    }
}

/// The server on `addr`, not started yet.
fn websocket_server(addr: &str) -> io::Result<Server> {
    let room = Rc::new(Room::default());
    Server::bind(addr, move |request: Request<Body>| match request.uri().path() {
        "/echo" => accept_websocket(&request, echo),
        "/chat" => {
            let room = room.clone();
            accept_websocket(&request, move |socket, peer| room.serve(socket, peer))
        }
        _ => text(StatusCode::NOT_FOUND, "try /echo or /chat, with a WebSocket client\n"),
    })
}

/// Answers a WebSocket handshake (RFC 6455 section 4.2) with `101
/// Switching Protocols`, handing the connection to `serve`; anything else
/// gets `400`, or `426` for a version other than 13.
fn accept_websocket(
    request: &Request<Body>,
    serve: impl FnOnce(Upgraded, SocketAddr) + 'static,
) -> Response<ResponseBody> {
    let has_token = |name: header::HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|value| value.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return text(StatusCode::BAD_REQUEST, "a WebSocket handshake was expected here\n");
    }
    if request.headers().get(header::SEC_WEBSOCKET_VERSION).map(|version| version.as_bytes()) != Some(b"13") {
        let mut response = text(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, header::HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key\n");
    };
    let accept = derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(ResponseBody::upgrade(move |stream: Upgraded| {
            let peer = stream.peer_addr();
            serve(stream, peer);
        }))
        .expect("a valid response")
}

fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(body));
    *response.status_mut() = status;
    response
}

/// Sends every text or binary message back, until the client closes.
fn echo(stream: Upgraded, _peer: SocketAddr) {
    let mut socket = WebSocket::from_raw_socket(stream, Role::Server, None);
    while let Ok(message) = socket.read() {
        if (message.is_text() || message.is_binary()) && socket.send(message).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- the chat

/// The members, by the order they came in.
#[derive(Default)]
struct Room {
    members: RefCell<BTreeMap<u64, Rc<Member>>>,
    next_id: Cell<u64>,
}

/// A connected member.
struct Member {
    name: String,
    /// What to send it, emptied by its writer green thread.
    outbox: Queue<Outgoing>,
    /// A handle to its connection, to cut it off.
    stream: Upgraded,
}

/// What a member's writer sends.
enum Outgoing {
    Text(Rc<str>),
    /// Frames the reader's WebSocket wrote by itself: a pong, a close.
    Frames(Vec<u8>),
}

/// The stream a member's reading WebSocket sees: it reads the connection,
/// and what it writes is kept for the writer to send.
struct ReadSide {
    stream: Upgraded,
    frames: Vec<u8>,
}

impl Read for ReadSide {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for ReadSide {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.frames.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Room {
    /// Serves one member, from its arrival to its departure.
    fn serve(&self, stream: Upgraded, peer: SocketAddr) {
        let member = Rc::new(Member {
            name: peer.to_string(),
            outbox: Queue::bounded(QUEUE_MESSAGES),
            stream: stream.clone(),
        });
        let writer = greenery::spawn({
            let (member, stream) = (member.clone(), stream.clone());
            move || member.write_out(stream)
        });
        let id = self.admit(&member);
        let reader = WebSocket::from_raw_socket(ReadSide { stream, frames: Vec::new() }, Role::Server, None);
        self.read_from(id, &member, reader);
        self.leave(id);
        // The writer sends what is still queued, then closes.
        let _ = writer.join();
    }

    /// Adds `member`, welcomes it and tells the others; returns its id.
    fn admit(&self, member: &Rc<Member>) -> u64 {
        let id = self.next_id.replace(self.next_id.get() + 1);
        let others = self.members.borrow().len();
        let welcome = format!("* welcome {}; {others} others here", member.name);
        let _ = member.outbox.try_put(Outgoing::Text(welcome.into())); // its queue is empty
        self.members.borrow_mut().insert(id, member.clone());
        self.broadcast(Some(id), &format!("* {} joined", member.name));
        id
    }

    /// Broadcasts each text message that member `id` sends, until it
    /// closes (or is dropped).
    fn read_from(&self, id: u64, member: &Member, mut reader: WebSocket<ReadSide>) {
        loop {
            let message = reader.read();
            let frames = std::mem::take(&mut reader.get_mut().frames);
            if !frames.is_empty() && member.outbox.try_put(Outgoing::Frames(frames)).is_err() {
                return; // its queue is full: it is about to be dropped
            }
            match message {
                Ok(Message::Text(text)) => {
                    self.broadcast(Some(id), &format!("<{}> {}", member.name, text.as_str()))
                }
                Ok(_) => {} // binary messages, pings, pongs, the close
                Err(_) => return,
            }
        }
    }

    /// Queues `text` for every member but `except`; drops those whose queue
    /// stays full for [`SLOW_CLIENT_GRACE`].
    fn broadcast(&self, except: Option<u64>, text: &str) {
        let text: Rc<str> = text.into();
        let recipients: Vec<_> = self
            .members
            .borrow()
            .iter()
            .filter(|&(&id, _)| Some(id) != except)
            .map(|(&id, member)| (id, member.clone()))
            .collect();
        let mut too_slow = Vec::new();
        for (id, member) in recipients {
            match member.outbox.put_timeout(Outgoing::Text(text.clone()), SLOW_CLIENT_GRACE) {
                Ok(()) => {}
                Err(err) if err.is_timeout() => too_slow.push(id),
                Err(_) => {} // it left meanwhile
            }
        }
        for id in too_slow {
            let member = self.members.borrow_mut().remove(&id);
            if let Some(member) = member {
                // Its writer may be stuck in a write: the shutdown ends it,
                // and its reader.
                member.outbox.shutdown_immediate();
                let _ = member.stream.shutdown(Shutdown::Both);
                self.broadcast(None, &format!("* {} dropped (not reading)", member.name));
            }
        }
    }

    /// Removes member `id` after it closed, if it was not dropped, and
    /// tells the others.
    fn leave(&self, id: u64) {
        let member = self.members.borrow_mut().remove(&id);
        if let Some(member) = member {
            member.outbox.shutdown(); // its writer sends what is queued, then ends
            self.broadcast(None, &format!("* {} left", member.name));
        }
    }
}

impl Member {
    /// Sends the queued messages until the queue is shut down and empty,
    /// or the member is gone; then shuts the connection, which ends the
    /// reader too.
    fn write_out(&self, stream: Upgraded) {
        let mut writer = WebSocket::from_raw_socket(stream, Role::Server, None);
        while let Ok(outgoing) = self.outbox.get() {
            let sent = match outgoing {
                Outgoing::Text(text) => writer.send(Message::text(&*text)).map_err(io::Error::other),
                Outgoing::Frames(frames) => writer.get_mut().write_all(&frames),
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------- self-test

/// How long a self-test client waits for a message before it gives up (a
/// guard against hangs, never reached when the server works).
const PATIENCE: Duration = Duration::from_secs(20);
/// The most messages alice sends while waiting for dave to be dropped.
const FLOOD_LIMIT: u64 = 200_000;

type Outcome<T = ()> = Result<T, Box<dyn Error>>;

/// The clients' addresses and names, to print names for addresses.
#[derive(Clone, Default)]
struct Names(Vec<(String, &'static str)>);

impl Names {
    /// `text` with the clients' names for their addresses.
    fn apply(&self, text: &str) -> String {
        // The longest addresses first: 127.0.0.1:5000 is a prefix of 127.0.0.1:50001.
        let mut names = self.0.clone();
        names.sort_by_key(|(addr, _)| std::cmp::Reverse(addr.len()));
        names.iter().fold(text.to_owned(), |text, (addr, name)| text.replace(addr.as_str(), name))
    }
}

/// A self-test client: a WebSocket to read from, and one over a clone of
/// its TCP stream to write with (so that one green thread may read while
/// another writes).
struct Client {
    name: &'static str,
    reader: WebSocket<TcpStream>,
    writer: WebSocket<TcpStream>,
}

impl Client {
    fn connect(server: SocketAddr, path: &str, name: &'static str, names: &mut Names) -> Outcome<Client> {
        let stream = TcpStream::connect(server)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_write_timeout(Some(PATIENCE))?;
        names.0.push((stream.local_addr()?.to_string(), name));
        let writing = stream.try_clone()?;
        writing.set_write_timeout(Some(PATIENCE))?;
        let (reader, response) = tungstenite::client(format!("ws://{server}{path}"), stream)?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(format!("{name}: the handshake answered {}", response.status()).into());
        }
        let writer = WebSocket::from_raw_socket(writing, Role::Client, None);
        Ok(Client { name, reader, writer })
    }

    fn say(&mut self, text: &str) -> Outcome {
        println!("{:>5} -> {text}", self.name);
        self.writer.send(Message::text(text))?;
        Ok(())
    }

    /// The next text message received, with names for addresses.
    fn next_text(&mut self, names: &Names) -> Outcome<String> {
        loop {
            match self.reader.read()? {
                Message::Text(text) => return Ok(names.apply(text.as_str())),
                Message::Close(_) => return Err(format!("{}: the server closed", self.name).into()),
                _ => {}
            }
        }
    }

    /// Receives the next text message, prints it, and checks it is `want`.
    fn expect(&mut self, names: &Names, want: &str) -> Outcome {
        let text = self.next_text(names)?;
        println!("{:>5} <- {text}", self.name);
        if text != want {
            return Err(format!("{} expected {want:?}, received {text:?}", self.name).into());
        }
        Ok(())
    }

    /// Closes with the closing handshake, and reads until the server's end.
    fn close(mut self) -> Outcome {
        self.writer.close(None)?;
        self.writer.flush()?;
        loop {
            match self.reader.read() {
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(tungstenite::Error::Protocol(_)) => return Ok(()), // the end without a reply
                Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok(());
                }
                Err(err) => return Err(format!("{}: closing: {err}", self.name).into()),
            }
        }
    }
}

/// Runs the server, an echo client and four chat clients; see the module
/// docs.
fn self_test() -> Outcome {
    let server = websocket_server("127.0.0.1:0")?;
    server.start()?;
    let addr = server.local_addr();
    let names = &mut Names::default();

    // The echo: text and binary come back, a ping gets its pong.
    let mut echo = Client::connect(addr, "/echo", "eve", names)?;
    echo.say("hello, echo")?;
    echo.expect(names, "hello, echo")?;
    echo.writer.send(Message::binary(vec![0, 1, 2, 255]))?;
    match echo.reader.read()? {
        Message::Binary(bytes) if bytes[..] == [0, 1, 2, 255] => println!("  eve <- [0, 1, 2, 255] (binary)"),
        other => return Err(format!("eve expected her bytes back, received {other:?}").into()),
    }
    echo.writer.send(Message::Ping(b"are you there".to_vec().into()))?;
    match echo.reader.read()? {
        Message::Pong(bytes) if bytes[..] == b"are you there"[..] => println!("  eve <- pong"),
        other => return Err(format!("eve expected a pong, received {other:?}").into()),
    }
    echo.close()?;
    println!("  eve: closed");

    // The chat.
    let mut alice = Client::connect(addr, "/chat", "alice", names)?;
    alice.expect(names, "* welcome alice; 0 others here")?;
    let mut bob = Client::connect(addr, "/chat", "bob", names)?;
    bob.expect(names, "* welcome bob; 1 others here")?;
    alice.expect(names, "* bob joined")?;
    let mut carol = Client::connect(addr, "/chat", "carol", names)?;
    carol.expect(names, "* welcome carol; 2 others here")?;
    alice.expect(names, "* carol joined")?;
    bob.expect(names, "* carol joined")?;

    alice.say("hello, everyone")?;
    bob.expect(names, "<alice> hello, everyone")?;
    carol.expect(names, "<alice> hello, everyone")?;
    bob.say("hi alice")?;
    // Not her own message first: nothing goes back to its sender.
    alice.expect(names, "<bob> hi alice")?;
    carol.expect(names, "<bob> hi alice")?;

    carol.close()?;
    alice.expect(names, "* carol left")?;
    bob.expect(names, "* carol left")?;

    let dave = Client::connect(addr, "/chat", "dave", names)?;
    alice.expect(names, "* dave joined")?;
    bob.expect(names, "* dave joined")?;
    let bob = flood(&mut alice, bob, names)?;
    drop(dave);

    alice.close()?;
    let mut bob = bob;
    bob.expect(names, "* alice left")?;
    bob.close()?;
    server.stop(PATIENCE)?;
    Ok(())
}

/// Alice sends messages until she hears that dave (who never reads) was
/// dropped, while bob reads them in a green thread of his own: every flood
/// message, in order, and the notice, up to alice's last message. Alice
/// keeps at most half a queue ahead of bob, so that bob, who reads, is never
/// taken for a slow member however slow the machine is. Returns bob.
fn flood(alice: &mut Client, mut bob: Client, names: &Names) -> Outcome<Client> {
    let bob_received = Rc::new(Cell::new(0u64));
    let bob_reading = greenery::spawn({
        let names = names.clone();
        let bob_received = bob_received.clone();
        move || -> Result<(Client, u64), String> {
            let mut received = 0;
            let mut dropped = false;
            loop {
                let text = bob.next_text(&names).map_err(|err| err.to_string())?;
                if text == "<alice> still here" && dropped {
                    return Ok((bob, received));
                }
                if text == "* dave dropped (not reading)" && !dropped {
                    dropped = true;
                } else if text.starts_with(&format!("<alice> flood {received} ")) {
                    received += 1;
                    bob_received.set(received);
                } else {
                    return Err(format!("bob received {text:?} after {received} flood messages"));
                }
            }
        }
    });
    let stop = Rc::new(Cell::new(false));
    let flooding = greenery::spawn({
        let stop = stop.clone();
        let stream = alice.reader.get_ref().try_clone()?;
        stream.set_write_timeout(Some(PATIENCE))?;
        // A writer of its own while alice reads (the two never write at once).
        let mut writer = WebSocket::from_raw_socket(stream, Role::Client, None);
        move || -> Result<u64, String> {
            let padding = "x".repeat(1000);
            let mut sent = 0;
            while !stop.get() {
                if sent == FLOOD_LIMIT {
                    return Err("dave was never dropped".into());
                }
                if sent - bob_received.get() >= (QUEUE_MESSAGES / 2) as u64 {
                    greenery::sleep(Duration::from_millis(1));
                    continue;
                }
                writer
                    .send(Message::text(format!("flood {sent} {padding}")))
                    .map_err(|err| err.to_string())?;
                sent += 1;
            }
            writer.send(Message::text("still here")).map_err(|err| err.to_string())?;
            Ok(sent)
        }
    });
    let heard = alice.expect(names, "* dave dropped (not reading)");
    stop.set(true);
    let sent = flooding.get()??;
    heard?;
    println!("alice -> {sent} flood messages, then: still here");
    let (bob, received) = bob_reading.get()??;
    println!("  bob <- {received} flood messages from alice, in order, and:");
    println!("  bob <- * dave dropped (not reading)");
    println!("  bob <- <alice> still here");
    if received != sent {
        return Err(format!("alice sent {sent} flood messages, bob received {received}").into());
    }
    Ok(bob)
}
