//! `StreamServer` and `DatagramServer`: serving, several listeners, a pool
//! cap, graceful and forced stops, panicking handlers, running out of file
//! descriptors.

#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenery::net::{DatagramServer, StreamServer, TcpListener, TcpStream, UdpSocket};

mod reports;

const GENEROUS: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

/// Echoes one message of up to 64 bytes, then closes.
fn echo_once(mut stream: TcpStream, _peer: SocketAddr) {
    let mut buf = [0; 64];
    if let Ok(n @ 1..) = stream.read(&mut buf) {
        let _ = stream.write_all(&buf[..n]);
    }
}

/// Sends `message` to `addr` and returns what comes back before the close.
fn ask(addr: SocketAddr, message: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(GENEROUS))?;
    stream.write_all(message.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn a_server_runs_a_handler_per_connection() {
    let server = StreamServer::bind("127.0.0.1:0", echo_once).unwrap();
    server.start().unwrap();
    assert!(server.is_serving());
    let addr = server.local_addrs()[0];
    let clients: Vec<_> = (0..100).map(|i| greenery::spawn(move || ask(addr, &format!("hi {i}")))).collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.get().unwrap().unwrap(), format!("hi {i}"));
    }
    server.stop(GENEROUS).unwrap();
    assert!(!server.is_serving());
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    assert_eq!(server.start().unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_server_listens_on_several_listeners_ipv4_and_ipv6() {
    let mut server = StreamServer::bind("127.0.0.1:0", echo_once).unwrap();
    server = server.with_listener(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    // IPv6 loopback, where the machine has it.
    if let Ok(v6) = TcpListener::bind("[::1]:0") {
        server = server.with_listener(v6).unwrap();
    }
    server.start().unwrap();
    for &addr in server.local_addrs() {
        assert_eq!(ask(addr, &addr.to_string()).unwrap(), addr.to_string());
    }
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_pool_caps_the_handlers_running_at_once() {
    let running = Rc::new(Cell::new(0));
    let most = Rc::new(Cell::new(0));
    let (r, m) = (running.clone(), most.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |stream, peer| {
        r.set(r.get() + 1);
        m.set(m.get().max(r.get()));
        greenery::sleep(Duration::from_millis(5));
        echo_once(stream, peer);
        r.set(r.get() - 1);
    })
    .unwrap()
    .with_pool(2);
    server.start().unwrap();
    let addr = server.local_addrs()[0];
    let clients: Vec<_> = (0..8).map(|i| greenery::spawn(move || ask(addr, &i.to_string()))).collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.get().unwrap().unwrap(), i.to_string());
    }
    assert_eq!(most.get(), 2, "at most two handlers at once, and the pool was used");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn stop_waits_for_quick_handlers_and_kills_slow_ones() {
    let finished = Rc::new(Cell::new(0));
    let unwound = Rc::new(Cell::new(0));
    let (f, u) = (finished.clone(), unwound.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |stream: TcpStream, _| {
        struct Unwound(Rc<Cell<u32>>);
        impl Drop for Unwound {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.set(self.0.get() + 1);
                }
            }
        }
        let _guard = Unwound(u.clone());
        let mut first = [0; 1];
        (&stream).read_exact(&mut first).unwrap();
        if first[0] == b's' {
            greenery::sleep(Duration::from_secs(3600)); // slow
        }
        f.set(f.get() + 1);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addrs()[0];
    let streams: Vec<_> = [b"q", b"s", b"q", b"s"]
        .iter()
        .map(|kind| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(&kind[..]).unwrap();
            stream
        })
        .collect();
    while server.connections() < 2 || finished.get() < 2 {
        greenery::sleep(Duration::from_millis(1));
    }
    server.stop(SHORT).unwrap();
    assert_eq!(finished.get(), 2, "the quick handlers finished");
    assert_eq!(unwound.get(), 2, "the slow ones were killed, unwinding");
    assert_eq!(server.connections(), 0);
    drop(streams);
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    let reports = reports::capture();
    let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, peer| {
        let mut first = [0; 1];
        stream.peek(&mut first).unwrap();
        assert_ne!(first[0], b'!', "a handler that panics");
        echo_once(stream, peer);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addrs()[0];
    // The panicking handler's stream is dropped: closed, or reset since the
    // request was left unread.
    match ask(addr, "!boom") {
        Ok(reply) => assert_eq!(reply, ""),
        Err(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset),
    }
    assert_eq!(ask(addr, "fine").unwrap(), "fine");
    server.stop(GENEROUS).unwrap();
    reports.assert_one(&["failed: assertion `left != right` failed: a handler that panics"]);
}

#[test]
fn serve_forever_returns_once_the_server_is_stopped() {
    let server = Rc::new(StreamServer::bind("127.0.0.1:0", echo_once).unwrap());
    let addr = server.local_addrs()[0];
    let stopper = {
        let server = server.clone();
        greenery::spawn(move || {
            assert_eq!(ask(addr, "served").unwrap(), "served");
            server.stop(GENEROUS).unwrap();
        })
    };
    server.serve_forever().unwrap();
    stopper.get().unwrap();
}

#[test]
fn dropping_a_server_closes_its_listeners_and_lets_handlers_finish() {
    let finished = Rc::new(Cell::new(false));
    let flag = finished.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |stream, peer| {
        greenery::sleep(Duration::from_millis(5));
        echo_once(stream, peer);
        flag.set(true);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addrs()[0];
    let client = greenery::spawn(move || ask(addr, "last"));
    while server.connections() == 0 {
        greenery::sleep(Duration::from_millis(1));
    }
    drop(server);
    assert_eq!(client.get().unwrap().unwrap(), "last", "the running handler finished");
    assert!(finished.get());
    greenery::yield_now(); // the accept loop unwinds, dropping the listener
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

    let datagrams = DatagramServer::bind("127.0.0.1:0", |_: &UdpSocket, _: &[u8], _| {}).unwrap();
    datagrams.start().unwrap();
    drop(datagrams);
    greenery::yield_now();
}

#[test]
fn a_datagram_server_answers_each_datagram() {
    let server = DatagramServer::bind("127.0.0.1:0", |socket: &UdpSocket, data: &[u8], peer| {
        let mut reply = data.to_vec();
        reply.reverse();
        socket.send_to(&reply, peer).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            greenery::spawn(move || {
                let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                client.set_read_timeout(Some(GENEROUS)).unwrap();
                client.send_to(format!("abc{i}").as_bytes(), addr).unwrap();
                let mut buf = [0; 16];
                let (len, _) = client.recv_from(&mut buf).unwrap();
                String::from_utf8(buf[..len].to_vec()).unwrap()
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let expected: String = format!("abc{i}").chars().rev().collect();
        assert_eq!(client.get().unwrap(), expected);
    }
    server.stop(GENEROUS).unwrap();
}

/// The number of fds this process has open.
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

#[test]
fn a_server_out_of_file_descriptors_backs_off_reports_once_and_serves_everyone() {
    if std::env::var("GREENERY_EMFILE_SCENARIO").is_ok() {
        return out_of_fds_scenario();
    }
    let mut command = support::this_binary();
    command
        .args(["--exact", "a_server_out_of_file_descriptors_backs_off_reports_once_and_serves_everyone"])
        .args(["--nocapture", "--test-threads=1"])
        .env("GREENERY_EMFILE_SCENARIO", "1");
    let outcome = support::run(command, Duration::from_secs(120));
    assert!(outcome.status.success(), "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("served 40 of 40"), "{}", outcome.stdout);
    let reports = outcome.stderr.matches("RLIMIT_NOFILE").count();
    assert!(reports >= 1, "the limit is named: {}", outcome.stderr);
}

/// In a child process: the 40 client sockets are created first, then the
/// file-descriptor limit is set just above what is open, so that the server
/// runs out while accepting their connections; the clients (a plain thread,
/// blocking sockets) are served one at a time as earlier handlers finish.
///
/// The client sockets exist before the limit drops so that the clients never
/// compete with the server for descriptors: whichever thread runs first, only
/// the server's accepts can hit the limit.
fn out_of_fds_scenario() {
    use std::os::fd::{FromRawFd, OwnedFd};

    const CLIENTS: usize = 40;
    let server = StreamServer::bind("127.0.0.1:0", echo_once).unwrap();
    server.start().unwrap();
    let addr = match server.local_addrs()[0] {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    };
    // The accept loop parks on the listener; the blocking pool, which may
    // open descriptors of its own, is warmed up.
    greenery::yield_now();
    greenery::hub::spawn_blocking(|| ()).unwrap();
    let sockets: Vec<OwnedFd> = (0..CLIENTS)
        .map(|_| {
            // SAFETY: socket takes no pointers; a non-negative result is a new
            // descriptor that nothing else owns.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
            // SAFETY: `fd` is a fresh descriptor owned by no one else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect();
    let limit = open_fds() + 6;
    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) }, 0);
    let clients = std::thread::spawn(move || {
        let sockaddr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let streams: Vec<std::net::TcpStream> = sockets
            .into_iter()
            .map(|socket| {
                use std::os::fd::AsRawFd;
                // SAFETY: `sockaddr` is a valid sockaddr_in and the length
                // passed is its size; connect only reads it.
                let connected = unsafe {
                    libc::connect(
                        socket.as_raw_fd(),
                        (&raw const sockaddr).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                };
                assert_eq!(connected, 0, "connect: {}", io::Error::last_os_error());
                std::net::TcpStream::from(socket)
            })
            .collect();
        let mut served = 0;
        for (i, mut stream) in streams.into_iter().enumerate() {
            stream.set_read_timeout(Some(GENEROUS)).unwrap();
            stream.write_all(format!("{i}").as_bytes()).unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            served += usize::from(reply == i.to_string());
        }
        served
    });
    let served = greenery::hub::spawn_blocking(move || clients.join().unwrap()).unwrap();
    println!("served {served} of {CLIENTS}");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_server_sets_the_backlog_it_is_given_and_names_the_address_it_cannot_bind() {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A second handle to the same socket, to read its backlog once the
    // server has it.
    let probe = listener.try_clone().unwrap();
    let backlog = || {
        // SAFETY: a zeroed tcp_info is a valid one (plain integers).
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, which
        // is that large; the fd is open for the call.
        let rc = unsafe {
            libc::getsockopt(
                probe.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
        info.tcpi_sacked // a listener's backlog
    };
    // qemu-user does not translate a listener's TCP_INFO (it reads 0):
    // there only the error text is checked.
    let reported = backlog() != 0;
    if reported {
        assert_eq!(backlog(), greenery::net::default_backlog());
    } else {
        println!("TCP_INFO reports no backlog here (an emulator): the backlog checks are left out");
    }
    let server = StreamServer::new(listener, echo_once).unwrap().with_backlog(100);
    if reported {
        assert_eq!(backlog(), greenery::net::default_backlog(), "set as the server starts");
    }
    server.start().unwrap();
    if reported {
        assert_eq!(backlog(), 100);
    }
    let addr = server.local_addrs()[0];
    assert_eq!(ask(addr, "still serving").unwrap(), "still serving");

    let err = StreamServer::bind(addr, echo_once).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().starts_with(&format!("cannot listen on {addr}: ")), "{err}");
    let err = DatagramServer::bind("127.0.0.1:1", |_: &UdpSocket, _: &[u8], _| {}).map(drop);
    if let Err(err) = err {
        // Not root: port 1 is privileged.
        assert!(err.to_string().starts_with("cannot bind to 127.0.0.1:1: "), "{err}");
    }
    server.stop(GENEROUS).unwrap();
}

#[test]
fn server_threads_spread_connections_over_their_hubs() {
    use greenery::net::{ServerThreads, StreamServer};
    use std::io::{Read, Write};
    use std::time::Duration;

    let servers = ServerThreads::start(2, "127.0.0.1:0", |_hub, listener| {
        StreamServer::new(listener, |mut stream, _peer| {
            // Answers with the name of the thread (the hub) that serves it.
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            stream.write_all(name.as_bytes()).unwrap();
        })
    })
    .unwrap();
    assert_eq!(servers.threads(), 2);
    let addr = servers.local_addr();
    let mut served_by = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..200 {
        let mut name = String::new();
        std::net::TcpStream::connect(addr).unwrap().read_to_string(&mut name).unwrap();
        *served_by.entry(name).or_default() += 1;
    }
    // The kernel spreads connections by their addresses: 200 connections
    // from as many client ports all on one listener would be a 2^-199
    // chance.
    let hubs: Vec<&String> = served_by.keys().collect();
    assert_eq!(hubs, ["greenery-server-0", "greenery-server-1"], "{served_by:?}");
    // Stopped from another thread; waiting from this one.
    let stopper = servers.clone();
    std::thread::spawn(move || stopper.stop(Duration::from_secs(1))).join().unwrap();
    servers.wait().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err(), "nothing listens any more");
}

#[test]
fn server_threads_that_cannot_bind_say_where_and_leave_nothing_running() {
    use greenery::net::{ServerThreads, StreamServer};

    // Taken without SO_REUSEPORT: no hub can share it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err =
        ServerThreads::start(2, addr, |_hub, listener| StreamServer::new(listener, |_stream, _peer| {}))
            .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&format!("cannot listen on {addr}")), "{err}");
}
