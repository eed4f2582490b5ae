//! TCP on the hub: many connections on one thread, timeouts, one waiter per
//! direction, kills and `Timeout`s at a socket wait, half-close, resets,
//! clones, conversions, name resolution.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{self, Timeout};
use greenery::net::{TcpListener, TcpStream};

/// Long enough never to expire in a passing test: it only turns a hang into
/// a failure.
const GENEROUS: Duration = Duration::from_secs(10);
/// For waits that are meant to time out.
const SHORT: Duration = Duration::from_millis(20);

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Serves a byte-for-byte echo, a green thread per connection, until the
/// listener's green thread is killed.
fn echo_server(listener: TcpListener) -> greenery::JoinHandle<()> {
    greenery::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            greenery::spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    })
}

#[test]
fn two_hundred_connections_echo_at_once_on_one_thread() {
    let (listener, addr) = listener();
    let server = echo_server(listener);
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            greenery::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(GENEROUS)).unwrap();
                for round in 0..5u32 {
                    let message = format!("client {i} round {round}");
                    stream.write_all(message.as_bytes()).unwrap();
                    let mut back = vec![0; message.len()];
                    stream.read_exact(&mut back).unwrap();
                    assert_eq!(back, message.as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.get().unwrap();
    }
    server.kill().unwrap();
}

#[test]
fn a_large_transfer_survives_partial_reads_and_writes() {
    let (listener, addr) = listener();
    let server = echo_server(listener);
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let stream = Rc::new(TcpStream::connect(addr).unwrap());
    let writer = {
        let stream = stream.clone();
        let data = data.clone();
        // Writing 4 MB fills both socket buffers: the writer parks until the
        // reader (another green thread) drains them.
        greenery::spawn(move || (&*stream).write_all(&data).unwrap())
    };
    let mut back = vec![0; data.len()];
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    (&*stream).read_exact(&mut back).unwrap();
    assert!(back == data);
    writer.get().unwrap();
    server.kill().unwrap();
}

#[test]
fn a_read_timeout_gives_timed_out_and_the_stream_stays_usable() {
    let (listener, addr) = listener();
    let server = echo_server(listener);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    assert_eq!(stream.read_timeout().unwrap(), Some(SHORT));
    let err = stream.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    stream.write_all(b"still here").unwrap();
    let mut back = [0; 10];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
    server.kill().unwrap();
}

#[test]
fn a_write_timeout_gives_timed_out_when_the_peer_does_not_read() {
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    let (_idle_peer, _) = listener.accept().unwrap();
    stream.set_write_timeout(Some(SHORT)).unwrap();
    let chunk = vec![0u8; 1 << 16];
    // Fill the socket buffers until a write has to wait, and times out.
    let err = loop {
        if let Err(err) = (&stream).write_all(&chunk) {
            break err;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

#[test]
fn zero_timeouts_are_refused_as_in_std() {
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    drop(listener);
    for result in
        [stream.set_read_timeout(Some(Duration::ZERO)), stream.set_write_timeout(Some(Duration::ZERO))]
    {
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
    let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let (listener, addr) = listener();
    drop(listener);
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    let err = TcpStream::connect_timeout(&addr, GENEROUS).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn connect_resolves_host_names_without_blocking_the_hub() {
    let (listener, addr) = listener();
    let ticker = greenery::spawn(|| {
        for _ in 0..3 {
            greenery::sleep(Duration::from_millis(1));
        }
    });
    let stream = TcpStream::connect(("localhost", addr.port())).unwrap();
    assert_eq!(stream.peer_addr().unwrap().port(), addr.port());
    let stream = TcpStream::connect(format!("localhost:{}", addr.port())).unwrap();
    assert!(stream.peer_addr().unwrap().ip().is_loopback());
    ticker.get().unwrap();
    drop(listener);
}

#[test]
fn a_second_reader_of_one_socket_gets_resource_busy() {
    let (listener, addr) = listener();
    let stream = Rc::new(TcpStream::connect(addr).unwrap());
    let (mut peer, _) = listener.accept().unwrap();
    let first = {
        let stream = stream.clone();
        greenery::spawn(move || {
            let mut buf = [0; 1];
            (&*stream).read_exact(&mut buf).map(|()| buf[0])
        })
    };
    greenery::yield_now(); // the first reader parks
    let err = (&*stream).read(&mut [0; 1]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
    assert!(err.to_string().contains("already waiting to read"), "{err}");
    // The first reader was not disturbed.
    peer.write_all(b"x").unwrap();
    assert_eq!(first.get().unwrap().unwrap(), b'x');
}

#[test]
fn one_green_thread_may_read_while_another_writes() {
    let (listener, addr) = listener();
    let server = echo_server(listener);
    let stream = Rc::new(TcpStream::connect(addr).unwrap());
    let reader = {
        let stream = stream.clone();
        greenery::spawn(move || {
            let mut back = vec![0; 1 << 20];
            (&*stream).read_exact(&mut back).unwrap();
            back
        })
    };
    let data = vec![7u8; 1 << 20];
    (&*stream).write_all(&data).unwrap();
    assert!(reader.get().unwrap() == data);
    server.kill().unwrap();
}

#[test]
fn killing_a_green_thread_blocked_in_read_frees_the_socket_for_another() {
    let (listener, addr) = listener();
    let stream = Rc::new(TcpStream::connect(addr).unwrap());
    let (mut peer, _) = listener.accept().unwrap();
    let doomed = {
        let stream = stream.clone();
        greenery::spawn(move || (&*stream).read(&mut [0; 4]))
    };
    greenery::yield_now();
    doomed.kill().unwrap();
    assert!(doomed.get().unwrap_err().is_killed());
    peer.write_all(b"data").unwrap();
    let mut buf = [0; 4];
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    (&*stream).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"data");
}

#[test]
fn a_timeout_interrupts_accept_and_read() {
    let (listener, addr) = listener();
    let accepted = hub::with_timeout(SHORT, || listener.accept().map(drop));
    assert!(accepted.is_err(), "nobody connected");
    let stream = TcpStream::connect(addr).unwrap();
    let (_peer, _) = listener.accept().unwrap();
    let timeout = Timeout::start_new(SHORT);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (&stream).read(&mut [0; 1])));
    let payload = read.unwrap_err();
    assert!(timeout.is_expiry_of(&*payload), "the Timeout fired at the read");
    // The read slot was cleared on the way out.
    stream.set_read_timeout(Some(SHORT)).unwrap();
    assert_eq!((&stream).read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::TimedOut);
}

#[test]
fn half_close_ends_the_peer_reads_and_leaves_the_other_direction_open() {
    let (listener, addr) = listener();
    let server = greenery::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = String::new();
        stream.read_to_string(&mut request).unwrap(); // ends at the client's shutdown
        stream.write_all(format!("got {} bytes", request.len()).as_bytes()).unwrap();
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"hello").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 5 bytes");
    server.get().unwrap();
}

#[test]
fn writing_to_a_peer_that_closed_fails_with_a_reset_or_broken_pipe() {
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    let (peer, _) = listener.accept().unwrap();
    // Unread data makes the peer's close a reset.
    (&stream).write_all(b"unread").unwrap();
    greenery::sleep(Duration::from_millis(5));
    drop(peer);
    let chunk = vec![1u8; 1 << 16];
    let err = (0..1000).find_map(|_| (&stream).write(&chunk).err()).expect("the writes fail");
    assert!(
        matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
        "unexpected error: {err:?}"
    );
}

#[test]
fn peek_leaves_the_data_for_read() {
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let peeker = greenery::spawn(move || {
        let mut buf = [0; 3];
        let n = stream.peek(&mut buf).unwrap(); // waits for data
        let mut all = [0; 3];
        (&stream).read_exact(&mut all).unwrap();
        (buf[..n].to_vec(), all)
    });
    greenery::yield_now();
    peer.write_all(b"abc").unwrap();
    let (peeked, read) = peeker.get().unwrap();
    assert_eq!(&read, b"abc");
    assert!(b"abc".starts_with(&peeked) && !peeked.is_empty());
}

#[test]
fn clones_and_std_conversions_keep_the_connection() {
    let (listener, addr) = listener();
    let server = echo_server(listener);
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    assert!(stream.nodelay().unwrap());
    let clone = stream.try_clone().unwrap();
    (&clone).write_all(b"via clone").unwrap();
    let mut back = [0; 9];
    (&stream).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"via clone");
    let std_stream = stream.into_std().unwrap();
    std_stream.set_read_timeout(Some(GENEROUS)).unwrap();
    let stream = TcpStream::from_std(std_stream).unwrap();
    (&stream).write_all(b"round trip").unwrap();
    let mut back = [0; 10];
    (&clone).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"round trip");
    assert_eq!(stream.peer_addr().unwrap(), addr);
    assert_eq!(stream.local_addr().unwrap(), clone.local_addr().unwrap());
    server.kill().unwrap();
}

#[test]
fn a_listener_taken_from_std_accepts_on_the_hub() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = TcpListener::from_std(std_listener).unwrap();
    let clone = listener.try_clone().unwrap();
    let client = greenery::spawn(move || TcpStream::connect(addr).map(drop));
    let (_, peer) = clone.accept().unwrap();
    client.get().unwrap().unwrap();
    assert!(peer.ip().is_loopback());
    let std_listener = listener.into_std().unwrap();
    assert_eq!(std_listener.local_addr().unwrap(), addr);
}

#[test]
fn a_green_thread_waiting_on_a_socket_is_not_a_deadlock() {
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let reader = greenery::spawn(move || {
        let mut buf = [0; 2];
        (&stream).read_exact(&mut buf).map(|()| buf)
    });
    // The main greenlet waits for the reader while only the socket can wake
    // it: a join with a timeout must time out, not report a deadlock.
    assert_eq!(reader.join_timeout(SHORT), Ok(false));
    peer.write_all(b"ok").unwrap();
    assert_eq!(&reader.get().unwrap().unwrap(), b"ok");
}

#[test]
fn data_and_end_of_file_arriving_together_are_both_read() {
    // The reader parks; then the peer's data and its FIN both arrive before
    // the hub polls, in one event. A short read takes the data; the end of
    // file must still be seen, not waited for.
    let (listener, addr) = listener();
    let stream = TcpStream::connect(addr).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let reader = greenery::spawn(move || {
        let mut text = String::new();
        (&stream).read_to_string(&mut text).map(|_| text)
    });
    greenery::yield_now(); // it reads nothing and parks
    (&peer).write_all(b"abc").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let text = reader.get_timeout(GENEROUS).unwrap_or_else(|_| panic!("the reader hangs")).unwrap();
    assert_eq!(text.unwrap(), "abc");
}

/// A connected pair: (accepted, connecting).
fn connected_pair() -> (TcpStream, TcpStream) {
    let (listener, addr) = listener();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

/// Reads until the stream would block, so that its readiness is cleared.
fn drain(stream: &TcpStream) {
    stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut buf = [0; 64];
    while (&*stream).read(&mut buf).is_ok() {}
    stream.set_read_timeout(None).unwrap();
}

#[test]
fn on_readable_calls_back_when_bytes_arrive_without_a_green_thread() {
    use std::cell::RefCell;
    let (a, mut b) = connected_pair();
    drain(&a);
    let a = Rc::new(a);
    let got = Rc::new(RefCell::new(None));
    let (reader, seen) = (a.clone(), got.clone());
    a.on_readable(Some(GENEROUS), move |ready| {
        ready.unwrap();
        let mut buf = [0; 5];
        // Not blocking: the bytes are there.
        (&*reader).read_exact(&mut buf).unwrap();
        *seen.borrow_mut() = Some(buf);
    })
    .unwrap();
    // Pending, it is a waiter: a second one (callback or green thread) is busy.
    assert_eq!(a.on_readable(None, |_| {}).unwrap_err().kind(), io::ErrorKind::ResourceBusy);
    assert_eq!((&*a).read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::ResourceBusy);
    greenery::sleep(Duration::from_millis(20));
    assert!(got.borrow().is_none(), "nothing to read yet");
    b.write_all(b"hello").unwrap();
    let waited = hub::with_timeout(GENEROUS, || {
        while got.borrow().is_none() {
            greenery::sleep(Duration::from_millis(1));
        }
    });
    assert!(waited.is_ok());
    assert_eq!(got.borrow().as_ref(), Some(b"hello"));
}

#[test]
fn on_readable_times_out_and_reports_a_dropped_stream() {
    use std::cell::Cell;
    let (a, _b) = connected_pair();
    drain(&a);
    let outcome = Rc::new(Cell::new(None));
    let seen = outcome.clone();
    a.on_readable(Some(Duration::from_millis(30)), move |ready| seen.set(Some(ready.unwrap_err().kind())))
        .unwrap();
    let waited = hub::with_timeout(GENEROUS, || {
        while outcome.get().is_none() {
            greenery::sleep(Duration::from_millis(1));
        }
    });
    assert!(waited.is_ok());
    assert_eq!(outcome.get(), Some(io::ErrorKind::TimedOut));
    // The slot is free again; dropping the stream ends a pending callback.
    let seen = outcome.clone();
    outcome.set(None);
    a.on_readable(None, move |ready| seen.set(Some(ready.unwrap_err().kind()))).unwrap();
    drop(a);
    greenery::yield_now();
    assert_eq!(outcome.get(), Some(io::ErrorKind::NotConnected));
}

#[test]
fn a_pending_on_readable_is_not_a_deadlock() {
    let (a, b) = connected_pair();
    drain(&a);
    let arrived = Rc::new(greenery::sync::Event::new());
    let set = arrived.clone();
    a.on_readable(None, move |ready| {
        ready.unwrap();
        set.set();
    })
    .unwrap();
    // Another OS thread writes later: the main greenlet's wait must not be
    // reported as a deadlock meanwhile.
    let b = b.into_std().unwrap();
    b.set_nonblocking(false).unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        (&b).write_all(b"x").unwrap();
        b
    });
    // No timeout here: with one, the timer alone would keep the hub alive.
    arrived.wait().expect("not a deadlock: the callback may still be called");
    drop(writer.join().unwrap());
}

#[test]
fn on_readable_on_a_stream_with_bytes_waiting_calls_back_at_once() {
    use std::cell::Cell;
    let (a, mut b) = connected_pair();
    b.write_all(b"early").unwrap();
    greenery::sleep(Duration::from_millis(10));
    let called = Rc::new(Cell::new(false));
    let seen = called.clone();
    a.on_readable(None, move |ready| {
        ready.unwrap();
        seen.set(true);
    })
    .unwrap();
    greenery::yield_now();
    assert!(called.get());
}

/// The backlog of a listening socket: TCP_INFO reports it as `tcpi_sacked`
/// for a listener.
fn backlog_of(listener: &TcpListener) -> u32 {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed tcp_info is a valid one (plain integers).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is
    // that large, and the fd is the listener's, open for the call.
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
    info.tcpi_sacked
}

#[test]
fn a_listener_listens_with_the_systems_longest_backlog_unless_told_otherwise() {
    let somaxconn: u32 =
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    assert_eq!(greenery::net::default_backlog(), somaxconn);
    let (listener, _) = listener();
    // qemu-user does not translate a listener's TCP_INFO (it reads 0).
    if backlog_of(&listener) == 0 {
        println!("TCP_INFO reports no backlog here (an emulator): the backlog checks are left out");
        listener.set_backlog(16).unwrap();
    } else {
        assert_eq!(backlog_of(&listener), somaxconn, "std's 128 is too short for a burst of connects");
        listener.set_backlog(16).unwrap();
        assert_eq!(backlog_of(&listener), 16);
    }
    // Still listening, and accepting.
    let addr = listener.local_addr().unwrap();
    let client = greenery::spawn(move || TcpStream::connect(addr).map(drop));
    listener.accept().unwrap();
    client.get().unwrap().unwrap();
}

#[test]
fn a_failed_bind_names_the_address() {
    let (_taken, addr) = listener();
    let err = TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot listen on {addr}: ")), "{text}");
    assert!(text.contains("(os error 98)"), "the system's error follows: {text}");
    assert!(format!("{err:?}").contains(&format!("cannot listen on {addr}")), "{err:?}");
    let source = std::error::Error::source(err.get_ref().unwrap()).expect("the system error is the source");
    assert_eq!(source.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error), Some(libc::EADDRINUSE));

    // A name that cannot be resolved is named too.
    let err = TcpListener::bind("localhost:no-such-port").unwrap_err();
    assert!(err.to_string().starts_with("cannot resolve localhost:no-such-port: "), "{err}");

    let udp = greenery::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let err = greenery::net::UdpSocket::bind(udp_addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().starts_with(&format!("cannot bind to {udp_addr}: ")), "{err}");

    let dir = std::env::temp_dir().join(format!("greenery-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("taken.sock");
    let _ = std::fs::remove_file(&path);
    let _unix = greenery::net::UnixListener::bind(&path).unwrap();
    let err = greenery::net::UnixListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().starts_with(&format!("cannot listen on {}: ", path.display())), "{err}");
    let err = greenery::net::UnixDatagram::bind(&path).unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot bind to {}: ", path.display())), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
