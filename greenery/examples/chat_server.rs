//! A chat server: every line a client sends goes to all the other clients,
//! each client served by two green threads (a reader and a writer), all of
//! them on this one OS thread.
//!
//! ```text
//! cargo run --release --example chat_server -- 127.0.0.1:PORT
//! cargo run --release --example chat_server -- --self-test
//! ```
//!
//! Listens on 127.0.0.1:7008 by default and serves until killed; talk to it
//! with a few `nc 127.0.0.1 7008`.
//!
//! # Protocol
//!
//! Lines of text ending in `\n` (a `\r` before it is dropped, empty lines are
//! ignored, a line longer than 4 KiB is cut into several). A client is named
//! by its address as the server sees it, such as `127.0.0.1:51234`.
//!
//! - A line from a client goes to every other client as `<NAME> line`,
//!   never back to the sender.
//! - Notices from the server begin with `* `: the newcomer gets
//!   `* welcome NAME; N others here`, and the others `* NAME joined`,
//!   `* NAME left` and `* NAME dropped (not reading)`.
//!
//! # Slow clients
//!
//! Each client has a bounded queue of outgoing lines (256), emptied into its
//! socket by a writer green thread of its own, so a client that does not read
//! holds up no one's reader. When a line finds a recipient's queue full, the
//! sender's reader waits for room (and stops reading from its socket, which
//! pushes back on that sender through TCP) for at most a second; then the
//! recipient is dropped: its queue is emptied, its socket shut down, and the
//! others are told.
//!
//! `--self-test` starts the server on a free port and runs four clients in
//! this process: alice, bob and carol talk, dave never reads. It prints what
//! each sends (`->`) and receives (`<-`), the clients' names standing for
//! their addresses, and exits with status 0 if everyone received exactly what
//! they should have (1 otherwise).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use greenery::net::{StreamServer, TcpStream};
use greenery::sync::Queue;

/// How many lines wait for a client before a sender waits for room.
const QUEUE_LINES: usize = 256;
/// How long a sender waits for room in a recipient's queue before the
/// recipient is dropped.
const SLOW_CLIENT_GRACE: Duration = Duration::from_secs(1);
/// The longest line, in bytes; longer ones are cut.
const MAX_LINE: u64 = 4096;

fn main() {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--self-test") {
        if let Err(err) = self_test() {
            eprintln!("chat_server: self-test failed: {err}");
            std::process::exit(1);
        }
        println!("self-test passed");
        return;
    }
    let addr = arg.unwrap_or_else(|| "127.0.0.1:7008".to_owned());
    let server = chat_server(addr.as_str()).unwrap_or_else(|err| {
        eprintln!("chat_server: {err}"); // it names the address
        std::process::exit(1);
    });
    eprintln!("chat_server: listening on {}", server.local_addrs()[0]);
    if let Err(err) = server.serve_forever() {
        eprintln!("chat_server: {err}");
        std::process::exit(1);
    }
}

/// A chat server on `addr`, not started yet.
fn chat_server(addr: &str) -> io::Result<StreamServer> {
    let room = Rc::new(Room::default());
    StreamServer::bind(addr, move |stream, peer| room.serve(stream, peer))
}

/// The clients connected, by the order they came in.
#[derive(Default)]
struct Room {
    members: RefCell<BTreeMap<u64, Rc<Member>>>,
    next_id: Cell<u64>,
}

/// A connected client.
struct Member {
    name: String,
    /// The lines to send it, emptied by its writer green thread.
    outbox: Queue<Rc<str>>,
    /// Its socket: read by the handler, written by the writer.
    stream: TcpStream,
}

impl Room {
    /// Serves one client, from its arrival to its departure.
    fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        if let Err(err) = stream.set_nodelay(true) {
            eprintln!("chat_server: TCP_NODELAY: {err}");
        }
        let member = Rc::new(Member { name: peer.to_string(), outbox: Queue::bounded(QUEUE_LINES), stream });
        let writer = greenery::spawn({
            let member = member.clone();
            move || member.write_out()
        });
        let id = self.admit(&member);
        self.read_from(id, &member);
        self.leave(id);
        // The writer sends what is still queued, then closes.
        let _ = writer.join();
    }

    /// Adds `member`, welcomes it and tells the others; returns its id.
    fn admit(&self, member: &Rc<Member>) -> u64 {
        let id = self.next_id.replace(self.next_id.get() + 1);
        let others = self.members.borrow().len();
        let welcome = format!("* welcome {}; {others} others here\n", member.name);
        let _ = member.outbox.try_put(welcome.into()); // its queue is empty
        self.members.borrow_mut().insert(id, member.clone());
        self.broadcast(Some(id), &format!("* {} joined", member.name));
        id
    }

    /// Broadcasts each line that member `id` sends, until it hangs up (or
    /// is dropped).
    fn read_from(&self, id: u64, member: &Member) {
        let mut reader = BufReader::new(&member.stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return,
                Err(err) => {
                    eprintln!("chat_server: reading from {}: {err}", member.name);
                    return;
                }
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\n').trim_end_matches('\r');
            if !text.is_empty() {
                self.broadcast(Some(id), &format!("<{}> {text}", member.name));
            }
        }
    }

    /// Queues `text` for every member but `except`; drops those whose queue
    /// stays full for [`SLOW_CLIENT_GRACE`].
    fn broadcast(&self, except: Option<u64>, text: &str) {
        let line: Rc<str> = format!("{text}\n").into();
        let recipients: Vec<_> = self
            .members
            .borrow()
            .iter()
            .filter(|&(&id, _)| Some(id) != except)
            .map(|(&id, member)| (id, member.clone()))
            .collect();
        let mut too_slow = Vec::new();
        for (id, member) in recipients {
            match member.outbox.put_timeout(line.clone(), SLOW_CLIENT_GRACE) {
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

    /// Removes member `id` after it hung up, if it was not dropped, and
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
    /// Writes out the queued lines until the queue is shut down and empty,
    /// or the client is gone; then shuts the socket, which ends the reader
    /// too.
    fn write_out(&self) {
        while let Ok(line) = self.outbox.get() {
            if (&self.stream).write_all(line.as_bytes()).is_err() {
                break;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------- self-test

/// How long a self-test client waits for a line before it gives up (a guard
/// against hangs, never reached when the server works).
const PATIENCE: Duration = Duration::from_secs(20);
/// The most lines alice sends while waiting for dave to be dropped.
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

/// A self-test client: a socket to read lines from and a handle to write.
struct Client {
    name: &'static str,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(server: SocketAddr, name: &'static str, names: &mut Names) -> Outcome<Client> {
        let writer = TcpStream::connect(server)?;
        writer.set_write_timeout(Some(PATIENCE))?;
        let reader = writer.try_clone()?;
        reader.set_read_timeout(Some(PATIENCE))?;
        names.0.push((writer.local_addr()?.to_string(), name));
        Ok(Client { name, reader: BufReader::new(reader), writer })
    }

    fn say(&mut self, text: &str) -> Outcome {
        println!("{:>5} -> {text}", self.name);
        self.writer.write_all(format!("{text}\n").as_bytes())?;
        Ok(())
    }

    /// The next line received, with names for addresses.
    fn next_line(&mut self, names: &Names) -> Outcome<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(format!("{}: the server hung up", self.name).into());
        }
        Ok(names.apply(line.trim_end_matches('\n')))
    }

    /// Receives the next line, prints it, and checks it is `want`.
    fn expect(&mut self, names: &Names, want: &str) -> Outcome {
        let line = self.next_line(names)?;
        println!("{:>5} <- {line}", self.name);
        if line != want {
            return Err(format!("{} expected {want:?}, received {line:?}", self.name).into());
        }
        Ok(())
    }
}

/// Runs the server and four clients; see the module docs.
fn self_test() -> Outcome {
    let server = chat_server("127.0.0.1:0")?;
    server.start()?;
    let addr = server.local_addrs()[0];
    let names = &mut Names::default();

    let mut alice = Client::connect(addr, "alice", names)?;
    alice.expect(names, "* welcome alice; 0 others here")?;
    let mut bob = Client::connect(addr, "bob", names)?;
    bob.expect(names, "* welcome bob; 1 others here")?;
    alice.expect(names, "* bob joined")?;
    let mut carol = Client::connect(addr, "carol", names)?;
    carol.expect(names, "* welcome carol; 2 others here")?;
    alice.expect(names, "* carol joined")?;
    bob.expect(names, "* carol joined")?;

    alice.say("hello, everyone")?;
    bob.expect(names, "<alice> hello, everyone")?;
    carol.expect(names, "<alice> hello, everyone")?;
    bob.say("hi alice")?;
    // Not her own line first: nothing is echoed to its sender.
    alice.expect(names, "<bob> hi alice")?;
    carol.expect(names, "<bob> hi alice")?;

    drop(carol);
    alice.expect(names, "* carol left")?;
    bob.expect(names, "* carol left")?;

    let dave = Client::connect(addr, "dave", names)?;
    alice.expect(names, "* dave joined")?;
    bob.expect(names, "* dave joined")?;
    let mut bob = flood(&mut alice, bob, names)?;

    // Dave reads at last: what was sent before he was dropped, then the end.
    let mut dave_reader = dave.reader;
    match io::copy(&mut dave_reader, &mut io::sink()) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
        Err(err) => return Err(format!("dave: the server never hung up: {err}").into()),
    }
    println!(" dave <- (the server hung up)");

    drop(alice);
    bob.expect(names, "* alice left")?;
    drop(bob);
    server.stop(PATIENCE)?;
    Ok(())
}

/// Alice sends lines until she hears that dave (who never reads) was
/// dropped, while bob reads them in a green thread of his own: every flood
/// line, in order, and the notice, up to alice's last line. Returns bob.
fn flood(alice: &mut Client, mut bob: Client, names: &Names) -> Outcome<Client> {
    let bob_reading = greenery::spawn({
        let names = names.clone();
        move || -> Result<(Client, u64), String> {
            let mut received = 0;
            let mut dropped = false;
            loop {
                let line = bob.next_line(&names).map_err(|err| err.to_string())?;
                if line == "<alice> still here" && dropped {
                    return Ok((bob, received));
                }
                if line == "* dave dropped (not reading)" && !dropped {
                    dropped = true;
                } else if line.starts_with(&format!("<alice> flood {received} ")) {
                    received += 1;
                } else {
                    return Err(format!("bob received {line:?} after {received} flood lines"));
                }
            }
        }
    });
    let stop = Rc::new(Cell::new(false));
    let flooding = greenery::spawn({
        let stop = stop.clone();
        let mut out = alice.writer.try_clone()?;
        out.set_write_timeout(Some(PATIENCE))?;
        move || -> io::Result<u64> {
            let padding = "x".repeat(1000);
            let mut sent = 0;
            while !stop.get() {
                if sent == FLOOD_LIMIT {
                    return Err(io::Error::other("dave was never dropped"));
                }
                out.write_all(format!("flood {sent} {padding}\n").as_bytes())?;
                sent += 1;
            }
            out.write_all(b"still here\n")?;
            Ok(sent)
        }
    });
    let heard = alice.expect(names, "* dave dropped (not reading)");
    stop.set(true);
    let sent = flooding.get()??;
    heard?;
    println!("alice -> {sent} flood lines, then: still here");
    let (bob, received) = bob_reading.get()??;
    println!("  bob <- {received} flood lines from alice, in order, and:");
    println!("  bob <- * dave dropped (not reading)");
    println!("  bob <- <alice> still here");
    if received != sent {
        return Err(format!("alice sent {sent} flood lines, bob received {received}").into());
    }
    Ok(bob)
}
