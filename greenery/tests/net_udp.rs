//! UDP on the hub: datagrams between green threads, connected sockets,
//! timeouts, peeking, conversions.

use std::io;
use std::time::Duration;

use greenery::net::UdpSocket;

const GENEROUS: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

fn socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(GENEROUS)).unwrap();
    socket
}

#[test]
fn a_receiver_parks_until_a_datagram_comes() {
    let (a, b) = (socket(), socket());
    let b_addr = b.local_addr().unwrap();
    let receiver = greenery::spawn(move || {
        let mut buf = [0; 64];
        let (len, from) = b.recv_from(&mut buf).unwrap();
        (buf[..len].to_vec(), from)
    });
    greenery::yield_now(); // it parks first
    a.send_to(b"datagram", b_addr).unwrap();
    let (data, from) = receiver.get().unwrap();
    assert_eq!(data, b"datagram");
    assert_eq!(from, a.local_addr().unwrap());
}

#[test]
fn many_green_threads_each_with_a_socket_ping_one_server() {
    let server = socket();
    let server_addr = server.local_addr().unwrap();
    let responder = greenery::spawn(move || {
        let mut buf = [0; 64];
        for _ in 0..50 {
            let (len, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..len], from).unwrap();
        }
    });
    let clients: Vec<_> = (0..50u32)
        .map(|i| {
            greenery::spawn(move || {
                let client = socket();
                client.connect(server_addr).unwrap();
                client.send(&i.to_le_bytes()).unwrap();
                let mut buf = [0; 4];
                assert_eq!(client.recv(&mut buf).unwrap(), 4);
                u32::from_le_bytes(buf)
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.get().unwrap(), i as u32);
    }
    responder.get().unwrap();
}

#[test]
fn a_receive_timeout_gives_timed_out() {
    let a = socket();
    a.set_read_timeout(Some(SHORT)).unwrap();
    let err = a.recv_from(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn peek_from_leaves_the_datagram_queued() {
    let (a, b) = (socket(), socket());
    a.send_to(b"once", b.local_addr().unwrap()).unwrap();
    let mut buf = [0; 8];
    let (len, _) = b.peek_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"once");
    let (len, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"once");
}

#[test]
fn std_conversions_and_clones_keep_the_socket() {
    let (a, b) = (socket(), socket());
    let clone = b.try_clone().unwrap();
    let b_std = b.into_std().unwrap();
    let addr = b_std.local_addr().unwrap();
    let b = UdpSocket::from_std(b_std).unwrap();
    b.set_broadcast(true).unwrap();
    assert!(b.broadcast().unwrap());
    a.send_to(b"to clone", addr).unwrap();
    let mut buf = [0; 16];
    let (len, _) = clone.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"to clone");
    assert_eq!(a.send_to(b"x", &[][..]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}
