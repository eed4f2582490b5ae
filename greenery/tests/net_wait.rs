//! Waiting for readiness of fds greenery does not own.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use greenery::net::{Interest, TcpListener, wait_any, wait_readable, wait_writable};

const SHORT: Duration = Duration::from_millis(20);

fn nonblocking_pair() -> (StdUnixStream, StdUnixStream) {
    let (a, b) = StdUnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn wait_readable_parks_until_data_comes_and_times_out_otherwise() {
    let (a, mut b) = nonblocking_pair();
    let err = wait_readable(a.as_fd(), Some(SHORT)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    let waiter = greenery::spawn(move || wait_readable(a.as_fd(), None).map(|()| a));
    greenery::yield_now();
    assert!(!waiter.is_ready(), "nothing to read yet");
    b.write_all(b"x").unwrap();
    waiter.get().unwrap().unwrap();
}

#[test]
fn wait_writable_returns_at_once_for_a_socket_with_room() {
    let (a, _b) = nonblocking_pair();
    wait_writable(a.as_fd(), Some(SHORT)).unwrap();
}

#[test]
fn wait_any_reports_the_fd_that_became_ready() {
    let (a, _a_peer) = nonblocking_pair();
    let (b, mut b_peer) = nonblocking_pair();
    let waiter = greenery::spawn(move || {
        wait_any(&[(a.as_fd(), Interest::Readable), (b.as_fd(), Interest::Readable)], None)
    });
    greenery::yield_now();
    b_peer.write_all(b"!").unwrap();
    assert_eq!(waiter.get().unwrap().unwrap(), 1);
}

#[test]
fn wait_any_refuses_nothing_and_greenery_sockets() {
    assert_eq!(wait_any(&[], None).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = wait_readable(listener.as_fd(), Some(SHORT)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("greenery socket"), "{err}");
}
