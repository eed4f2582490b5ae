//! Sockets (and child processes with their pipes) are `Send`: moved to
//! another thread, a socket registers with that thread's hub on its first
//! use there, mid-connection, and leaves its old hub. (Which types are
//! `Send` is checked in auto_traits.rs.)

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use greenery::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// A conversation begun on this thread's hub goes on on another thread's,
/// where a green thread parks reading it while another green thread of that
/// hub writes, then comes back here.
#[test]
fn a_connection_moves_to_another_hub_and_back_mid_conversation() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The server: a green thread of this hub, answering each line with
    // its echo, in capitals.
    let server = greenery::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        loop {
            let line = read_line(&mut stream);
            if line.is_empty() {
                return;
            }
            stream.write_all(format!("{}\n", line.to_uppercase()).as_bytes()).unwrap();
        }
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"here\n").unwrap();
    assert_eq!(read_line(&mut client), "HERE");

    let (back, returned) = mpsc::channel();
    let other = std::thread::spawn(move || {
        // This thread's hub: a reader green thread parks on the moved
        // socket (nothing is there to read yet); the main greenlet writes
        // while it waits, and the answer wakes it through this hub's poller.
        let client = std::rc::Rc::new(client);
        let reader = {
            let client = client.clone();
            greenery::spawn(move || {
                let mut line = Vec::new();
                let mut byte = [0];
                while (&*client).read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                String::from_utf8(line).unwrap()
            })
        };
        greenery::sleep(Duration::from_millis(1)); // the reader parks first
        (&*client).write_all(b"over there\n").unwrap();
        let answer = reader.get().unwrap();
        let client = std::rc::Rc::into_inner(client).unwrap();
        back.send(client).unwrap();
        answer
    });
    // Wait for the other thread without blocking this hub, which runs the server.
    let answer = greenery::hub::spawn_blocking(move || other.join().unwrap()).unwrap();
    assert_eq!(answer, "OVER THERE");
    let mut client = returned.recv().unwrap();
    // Home again: registered with this hub afresh.
    client.write_all(b"back\n").unwrap();
    assert_eq!(read_line(&mut client), "BACK");
    drop(client);
    server.join().unwrap();
}

/// A socket moved away from a hub where a callback waited for it to be
/// readable: once it is used on the other thread, the callback is called
/// with `NotConnected` on its own hub, as when a socket is dropped.
#[test]
fn a_callback_left_on_the_old_hub_hears_that_the_socket_moved() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    // A read that finds nothing teaches the hub that `a` is not readable
    // (a new socket "may be ready", and its callback would run at once).
    a.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    assert_eq!(a.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    let (heard, outcome) = mpsc::channel();
    a.on_readable(None, move |ready| heard.send(ready.map_err(|err| err.kind())).unwrap()).unwrap();
    let other = std::thread::spawn(move || {
        let mut a = a;
        a.write_all(b"from the other hub").unwrap();
        a
    });
    let a = greenery::hub::spawn_blocking(move || other.join().unwrap()).unwrap();
    // The old hub hears from the other thread on its next turn.
    let outcome = greenery::hub::spawn_blocking(move || outcome.recv().unwrap()).unwrap();
    assert_eq!(outcome, Err(std::io::ErrorKind::NotConnected));
    let mut buf = [0; 18];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from the other hub");
    drop(a);
}

/// Sockets of every kind change hubs with `run_on`-style threads: a listener
/// made on one thread accepts on another; a datagram socket sends from there.
#[test]
fn listeners_and_datagram_sockets_move_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver_addr = receiver.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        stream.read_exact(&mut buf).unwrap();
        udp.send_to(&buf, receiver_addr).unwrap();
        (listener, udp)
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"ping").unwrap();
    let mut datagram = [0; 4];
    let (len, _) = receiver.recv_from(&mut datagram).unwrap();
    assert_eq!(&datagram[..len], b"ping");
    let (listener, _udp) = greenery::hub::spawn_blocking(move || acceptor.join().unwrap()).unwrap();
    // The listener, back here, accepts on this hub.
    let second = greenery::spawn(move || TcpStream::connect(addr).unwrap());
    let (accepted, _) = listener.accept().unwrap();
    let second = second.get().unwrap();
    assert_eq!(accepted.peer_addr().unwrap(), second.local_addr().unwrap());
}

/// A child process spawned here is waited for, and its output read, on
/// another thread's hub.
#[test]
fn a_child_process_moves_with_its_pipes() {
    let mut child = greenery::process::Command::new("echo")
        .arg("moved")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let other = std::thread::spawn(move || {
        let mut output = String::new();
        child.stdout.take().unwrap().read_to_string(&mut output).unwrap();
        (child.wait().unwrap(), output)
    });
    let (status, output) = greenery::hub::spawn_blocking(move || other.join().unwrap()).unwrap();
    assert!(status.success());
    assert_eq!(output, "moved\n");
}
