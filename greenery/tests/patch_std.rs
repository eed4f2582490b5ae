//! The `patch` feature with std's own blocking calls: sleeps, TCP sockets,
//! name lookups, pipes, and the program's view of non-blocking fds.
//!
//! Built without the feature, the same scenarios show the difference: the
//! calls block the hub.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

/// A green thread that counts how often the hub ran it while the others
/// waited in std's blocking calls.
fn ticker() -> (Rc<Cell<u32>>, Rc<Cell<bool>>, greenery::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    let handle = {
        let (ticks, stop) = (ticks.clone(), stop.clone());
        greenery::spawn(move || {
            while !stop.get() {
                ticks.set(ticks.get() + 1);
                greenery::sleep(Duration::from_millis(1));
            }
        })
    };
    (ticks, stop, handle)
}

#[test]
fn std_sleeps_in_green_threads_overlap() {
    // Five green threads each sleep with std; each notes how many of the
    // others had started sleeping when it woke.
    let asleep = Rc::new(Cell::new(0));
    let sleepers: Vec<_> = (0..5)
        .map(|_| {
            let asleep = asleep.clone();
            greenery::spawn(move || {
                asleep.set(asleep.get() + 1);
                std::thread::sleep(Duration::from_millis(50));
                asleep.get()
            })
        })
        .collect();
    let seen: Vec<u32> = sleepers.into_iter().map(|sleeper| sleeper.get().unwrap()).collect();
    if cfg!(feature = "patch") {
        // Each slept while the others started: all five were asleep at once.
        assert_eq!(seen, [5; 5]);
    } else {
        // Each sleep blocked the hub: the next one started only after it.
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }
}

#[test]
fn std_tcp_streams_in_a_thousand_green_threads_echo() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clients = if cfg!(feature = "patch") { 1000 } else { 0 };
    let server = greenery::spawn(move || {
        let handlers: Vec<_> = (0..clients)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                greenery::spawn(move || {
                    let mut buf = [0u8; 16];
                    loop {
                        match stream.read(&mut buf).unwrap() {
                            0 => break,
                            n => stream.write_all(&buf[..n]).unwrap(),
                        }
                    }
                })
            })
            .collect();
        greenery::hub::joinall(&handlers, None, true).unwrap();
    });
    let (ticks, stop, ticking) = ticker();
    let connections: Vec<_> = (0..clients)
        .map(|i: u32| {
            greenery::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                // Everyone connects first, then all talk at once.
                greenery::sleep(Duration::from_millis(20));
                let message = i.to_be_bytes();
                stream.write_all(&message).unwrap();
                let mut reply = [0u8; 4];
                stream.read_exact(&mut reply).unwrap();
                u32::from_be_bytes(reply)
            })
        })
        .collect();
    for (i, connection) in connections.into_iter().enumerate() {
        assert_eq!(connection.get().unwrap(), i as u32);
    }
    server.get().unwrap();
    stop.set(true);
    ticking.get().unwrap();
    if cfg!(feature = "patch") {
        assert!(ticks.get() > 1, "the ticker ran while the sockets waited");
    }
}

#[cfg(feature = "patch")]
#[test]
fn a_read_timeout_on_a_std_socket_ends_the_wait_with_would_block() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = greenery::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        greenery::sleep(Duration::from_millis(200));
        drop(stream);
    });
    let reader = greenery::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        stream.read(&mut [0u8; 4]).unwrap_err().kind()
    });
    let (ticks, stop, ticking) = ticker();
    assert_eq!(reader.get().unwrap(), std::io::ErrorKind::WouldBlock);
    stop.set(true);
    ticking.get().unwrap();
    assert!(ticks.get() > 1);
    silent.get().unwrap();
}

#[cfg(feature = "patch")]
#[test]
fn a_std_socket_made_non_blocking_still_says_would_block() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    greenery::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        greenery::sleep(Duration::from_millis(50));
        drop(stream);
    });
    let outcome = greenery::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        let first = stream.read(&mut [0u8; 4]).unwrap_err().kind();
        stream.set_nonblocking(false).unwrap();
        let second = stream.read(&mut [0u8; 4]).unwrap(); // waits for the close
        (first, second)
    })
    .get()
    .unwrap();
    assert_eq!(outcome, (std::io::ErrorKind::WouldBlock, 0));
}

#[cfg(feature = "patch")]
#[test]
fn fcntl_shows_the_programs_view_of_o_nonblock() {
    use std::os::fd::AsRawFd;
    let (reader, writer) = std::io::pipe().unwrap();
    let fd = reader.as_raw_fd();
    // SAFETY: F_GETFL on an fd we own.
    let flags = || unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert_eq!(flags() & libc::O_NONBLOCK, 0);
    // A green thread waits on it: the kernel's flag changes, the program's
    // view does not.
    let waiting = greenery::spawn(move || {
        let mut reader = reader;
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).unwrap();
        (byte[0], reader)
    });
    greenery::hub::idle().unwrap();
    assert_eq!(flags() & libc::O_NONBLOCK, 0, "the program still sees a blocking pipe");
    (&writer).write_all(&[7]).unwrap();
    let (byte, _reader) = waiting.get().unwrap();
    assert_eq!(byte, 7);
}

#[cfg(feature = "patch")]
#[test]
fn a_name_lookup_parks_only_its_green_thread() {
    use std::net::ToSocketAddrs;
    let (ticks, stop, ticking) = ticker();
    let addrs =
        greenery::spawn(|| ("localhost", 80).to_socket_addrs().unwrap().collect::<Vec<_>>()).get().unwrap();
    assert!(addrs.iter().any(|addr| addr.ip().is_loopback()), "{addrs:?}");
    stop.set(true);
    ticking.get().unwrap();
    let _ = ticks;
}

#[cfg(feature = "patch")]
#[test]
fn a_kill_reaches_a_green_thread_blocked_in_a_std_read() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let blocked = greenery::spawn(move || {
        let mut reader = reader;
        let outcome = reader.read(&mut [0u8; 1]);
        // The kill is put off while the read returns an error; it resumes
        // at the next greenery call.
        greenery::yield_now();
        unreachable!("the kill resumed at the yield: {outcome:?}")
    });
    greenery::hub::idle().unwrap();
    blocked.kill().unwrap();
    assert!(blocked.is_killed());
}

#[cfg(feature = "patch")]
#[test]
fn a_timeout_reaches_a_std_read_and_with_timeout_says_so() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let outcome = greenery::spawn(move || {
        let mut reader = reader;
        greenery::with_timeout(Duration::from_millis(10), || {
            reader.read(&mut [0u8; 1]).map_err(|err| err.kind())
        })
    })
    .get()
    .unwrap();
    assert!(outcome.is_err(), "the timeout expired: {outcome:?}");
}

#[cfg(feature = "patch")]
#[test]
fn closing_an_fd_wakes_the_green_thread_waiting_on_it() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = reader.as_raw_fd();
    let reader = std::rc::Rc::new(reader);
    let waiting = {
        let reader = reader.clone();
        greenery::spawn(move || (&*reader).read(&mut [0u8; 1]).map_err(|err| err.raw_os_error()))
    };
    greenery::hub::idle().unwrap();
    // Another green thread closes the fd under it.
    // SAFETY: the fd is the pipe's; the Rc's copy is forgotten below so that
    // it is not closed twice.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    assert_eq!(waiting.get().unwrap(), Err(Some(libc::EBADF)));
    std::mem::forget(std::rc::Rc::into_inner(reader));
}
