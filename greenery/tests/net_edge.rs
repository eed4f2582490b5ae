//! Sockets at the edges of the kernel's behaviour: signals interrupting the
//! hub's thread (`EINTR`), buffers so small that nearly every call would
//! block (`EAGAIN`), a peer that resets the connection under a parked reader
//! or writer, and writes that must still wait after the peer half-closed.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use greenery::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

/// Long enough never to expire in a passing test: it only turns a hang into
/// a failure.
const GENEROUS: Duration = Duration::from_secs(60);

/// The byte at `offset` of a test stream: a hash of the position, so that a
/// byte lost, repeated or moved shows.
fn pattern(offset: usize) -> u8 {
    ((offset as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

/// Writes all of `buf` with plain `write` calls: unlike `write_all`, an
/// `Interrupted` error is returned, not retried.
fn write_fully(mut stream: impl Write, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Fills `buf` with plain `read` calls: unlike `read_exact`, an
/// `Interrupted` error is returned, not retried.
fn read_fully(mut stream: impl Read, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.read(buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

/// Sets a socket option of type `int`.
fn set_int_option(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value is a live `c_int` whose size we pass; the fd
    // is open for the duration of the call.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Shrinks a socket's send and receive buffers to the kernel's minimum (a
/// few KiB).
fn tiny_buffers(fd: &impl AsRawFd) {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 1);
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1);
}

/// A connected TCP pair on loopback: (the connecting end, the accepted end).
/// With `tiny`, both ends have the smallest buffers, the accepted end from
/// before the handshake (it inherits the listener's), so that its window is
/// small from the start.
fn tcp_pair(tiny: bool) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    if tiny {
        tiny_buffers(&listener);
    }
    let addr = listener.local_addr().unwrap();
    let client = greenery::spawn(move || TcpStream::connect(addr));
    let (accepted, _) = listener.accept().unwrap();
    let client = client.get().unwrap().unwrap();
    if tiny {
        tiny_buffers(&client);
    }
    (client, accepted)
}

// ------------------------------------------------------------------ EINTR

/// Signals the handler below has caught.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    CAUGHT.fetch_add(1, Ordering::Relaxed);
}

/// Sends `SIGUSR1` to one thread every millisecond, from a thread of its
/// own, until dropped.
struct Interrupter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interrupter {
    /// Installs a counting handler for `SIGUSR1` *without* `SA_RESTART`, so
    /// that the calls it interrupts fail with `EINTR`, and starts
    /// interrupting the calling thread.
    fn start() -> Interrupter {
        // SAFETY: a zeroed sigaction is a valid value to fill; the handler
        // only touches an atomic (async-signal-safe), and the flags leave
        // out SA_RESTART on purpose.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
        }
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: the target thread outlives this loop: it
                    // stops and joins us (in `drop`) before it can exit.
                    unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Interrupter { stop, thread: Some(thread) }
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Signals caught before the clients of the EINTR test may stop: enough
/// that they land in every kind of wait the test makes.
const INTERRUPTIONS: usize = 300;

#[test]
fn signals_without_sa_restart_interrupt_no_socket_call_and_no_sleep() {
    let interrupter = Interrupter::start();
    let outcome = greenery::with_timeout(GENEROUS, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // An echo server whose accepts, reads and writes are interrupted.
        let server = greenery::spawn(move || -> io::Result<()> {
            loop {
                let (stream, _) = listener.accept()?;
                greenery::spawn(move || -> io::Result<()> {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        match (&stream).read(&mut buf)? {
                            0 => return Ok(()),
                            n => write_fully(&stream, &buf[..n])?,
                        }
                    }
                });
            }
        });
        let sleeper = greenery::spawn(|| {
            for _ in 0..200 {
                greenery::sleep(Duration::from_millis(1));
            }
        });
        // Clients connect, then send messages of up to 256 KiB (more than
        // the socket buffers hold, so writes park too), read them back and
        // sleep (the hub waits in epoll_wait), until enough signals came.
        let clients: Vec<_> = (0..8usize)
            .map(|id| {
                greenery::spawn(move || -> io::Result<usize> {
                    let stream = TcpStream::connect(addr)?;
                    let mut round = 0;
                    while round < 20 || CAUGHT.load(Ordering::Relaxed) < INTERRUPTIONS {
                        let len = 1 + (id * 7919 + round * 104_729) % (256 * 1024);
                        let message: Vec<u8> = (0..len).map(|i| pattern(i + round)).collect();
                        let writer = {
                            let stream = stream.try_clone()?;
                            let message = message.clone();
                            greenery::spawn(move || write_fully(&stream, &message))
                        };
                        let mut back = vec![0; len];
                        read_fully(&stream, &mut back)?;
                        writer.get().unwrap()?;
                        assert!(back == message, "client {id} round {round}: the echo differs");
                        greenery::sleep(Duration::from_millis(1));
                        round += 1;
                    }
                    Ok(round)
                })
            })
            .collect();
        for client in clients {
            let rounds = client.get().unwrap().unwrap_or_else(|err| panic!("a client failed: {err:?}"));
            assert!(rounds >= 20);
        }
        sleeper.get().unwrap();
        assert!(!server.is_ready(), "the server failed: {:?}", server.get());
        server.kill().unwrap();
    });
    drop(interrupter);
    outcome.expect("the interrupted run finishes");
    assert!(CAUGHT.load(Ordering::Relaxed) >= INTERRUPTIONS);
}

// ------------------------------------------------------------------ EAGAIN

/// Bytes each stream test sends through the smallest buffers.
const STORM_BYTES: usize = 8 << 20;

/// Odd sizes for writes and reads, cycled through, so that the calls never
/// line up with the buffers.
const WRITE_SIZES: [usize; 6] = [1, 4093, 17, 65_537, 999, 12_289];
const READ_SIZES: [usize; 5] = [3, 7_001, 1, 40_009, 513];

/// Sends [`STORM_BYTES`] from `writer` to `reader` in odd-sized writes,
/// reading them in odd-sized reads with a `yield_now` after each, and checks
/// that every byte arrives, in order.
fn storm<S: 'static>(writer: S, reader: S)
where
    for<'a> &'a S: Read + Write,
{
    greenery::with_timeout(GENEROUS, move || {
        let writing = greenery::spawn(move || -> io::Result<()> {
            let data: Vec<u8> = (0..STORM_BYTES).map(pattern).collect();
            let mut offset = 0;
            for size in WRITE_SIZES.iter().cycle() {
                let end = (offset + size).min(data.len());
                write_fully(&writer, &data[offset..end])?;
                offset = end;
                if offset == data.len() {
                    break;
                }
            }
            Ok(())
        });
        let mut buf = vec![0; 64 * 1024];
        let mut offset = 0;
        for size in READ_SIZES.iter().cycle() {
            if offset == STORM_BYTES {
                break;
            }
            let want = (*size).min(STORM_BYTES - offset);
            let n = (&reader).read(&mut buf[..want]).unwrap();
            assert!(n > 0, "the stream ended after {offset} bytes");
            if let Some(bad) = (0..n).find(|&i| buf[i] != pattern(offset + i)) {
                panic!("byte {} is wrong", offset + bad);
            }
            offset += n;
            greenery::yield_now();
        }
        writing.get().unwrap().unwrap();
    })
    .expect("the transfer finishes");
}

#[test]
fn a_tcp_stream_through_the_smallest_buffers_arrives_whole_and_in_order() {
    let (client, accepted) = tcp_pair(true);
    storm(client, accepted);
}

#[test]
fn a_unix_stream_through_the_smallest_buffers_arrives_whole_and_in_order() {
    let (a, b) = UnixStream::pair().unwrap();
    tiny_buffers(&a);
    tiny_buffers(&b);
    storm(a, b);
}

/// Datagrams in the UDP burst test.
const DATAGRAMS: u32 = 5_000;

/// Datagram `seq`: its number, then `len - 4` bytes of pattern.
fn datagram(seq: u32, len: usize) -> Vec<u8> {
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend((4..len).map(|i| pattern(i + seq as usize)));
    bytes
}

#[test]
fn udp_bursts_into_the_smallest_buffers_arrive_intact_or_not_at_all() {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    tiny_buffers(&sender);
    tiny_buffers(&receiver);
    sender.connect(receiver.local_addr().unwrap()).unwrap();
    let done = Rc::new(std::cell::Cell::new(false));
    greenery::with_timeout(GENEROUS, || {
        let sending = {
            let done = done.clone();
            greenery::spawn(move || -> io::Result<()> {
                for seq in 0..DATAGRAMS {
                    let len = 4 + (seq as usize * 7_919) % 1_400;
                    assert_eq!(sender.send(&datagram(seq, len))?, len);
                    if seq % 16 == 0 {
                        greenery::yield_now();
                    }
                }
                done.set(true);
                Ok(())
            })
        };
        // Receive until the sender has finished and nothing more comes for a
        // while (the timeout only ends the loop; it asserts nothing).
        receiver.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut seen = HashSet::new();
        let mut buf = [0; 2048];
        loop {
            let len = match receiver.recv(&mut buf) {
                Ok(len) => len,
                Err(err) if err.kind() == io::ErrorKind::TimedOut && done.get() => break,
                Err(err) if err.kind() == io::ErrorKind::TimedOut => continue,
                Err(err) => panic!("receive failed: {err}"),
            };
            assert!(len >= 4, "a datagram of {len} bytes");
            let seq = u32::from_le_bytes(buf[..4].try_into().unwrap());
            assert!(seq < DATAGRAMS, "datagram number {seq}");
            assert!(buf[..len] == datagram(seq, len), "datagram {seq} is damaged");
            assert!(seen.insert(seq), "datagram {seq} came twice");
        }
        sending.get().unwrap().unwrap();
        assert!(!seen.is_empty(), "no datagram arrived");
    })
    .expect("the burst finishes");
}

// --------------------------------------------------- resets and half-closes

#[test]
fn a_reset_wakes_a_writer_parked_on_a_full_socket() {
    let (client, accepted) = tcp_pair(false);
    let written = Rc::new(std::cell::Cell::new(0));
    let writer = {
        let written = written.clone();
        greenery::spawn(move || -> io::Result<()> {
            let chunk = vec![1u8; 1 << 16];
            loop {
                written.set(written.get() + (&client).write(&chunk)?);
            }
        })
    };
    // Let the writer fill both buffers and park (if it has not quite, its
    // next write fails the same way).
    while written.get() == 0 {
        greenery::yield_now();
    }
    greenery::sleep(Duration::from_millis(20));
    drop(accepted); // closed with unread data: a reset
    let err =
        writer.get_timeout(GENEROUS).unwrap_or_else(|_| panic!("the writer hangs")).unwrap().unwrap_err();
    assert!(
        matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
        "unexpected error: {err:?}"
    );
}

#[test]
fn a_reset_wakes_a_parked_reader_with_connection_reset() {
    let (client, accepted) = tcp_pair(false);
    let reader = greenery::spawn(move || (&client).read(&mut [0; 16]));
    greenery::yield_now(); // it finds nothing and parks
    // SO_LINGER with a zero timeout makes the close a reset.
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the option value is a live `linger` whose size we pass.
    let result = unsafe {
        libc::setsockopt(
            accepted.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0);
    drop(accepted);
    let err =
        reader.get_timeout(GENEROUS).unwrap_or_else(|_| panic!("the reader hangs")).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
}

/// Bytes written back after the half-close: far more than the buffers hold.
const AFTER_EOF: usize = 4 << 20;

/// `near` shuts its writing side; `far` reads to the end of file, then
/// writes [`AFTER_EOF`] bytes back, which `near` reads slowly. The end of
/// file `far` saw must not make its writes spin or fail: they still park
/// while `near`'s buffer is full.
fn write_after_peer_half_close<S: 'static>(near: S, far: S, shutdown: impl FnOnce(&S) -> io::Result<()>)
where
    for<'a> &'a S: Read + Write,
{
    greenery::with_timeout(GENEROUS, move || {
        let replier = greenery::spawn(move || -> io::Result<usize> {
            let mut request = Vec::new();
            (&far).read_to_end(&mut request)?;
            let reply: Vec<u8> = (0..AFTER_EOF).map(pattern).collect();
            write_fully(&far, &reply)?;
            // The end of file is still there.
            assert_eq!((&far).read(&mut [0; 8])?, 0);
            Ok(request.len())
        });
        write_fully(&near, b"request").unwrap();
        shutdown(&near).unwrap();
        let mut back = vec![0; AFTER_EOF];
        let mut offset = 0;
        while offset < AFTER_EOF {
            let end = (offset + 10_007).min(AFTER_EOF);
            read_fully(&near, &mut back[offset..end]).unwrap();
            offset = end;
            greenery::yield_now();
        }
        assert!(back.iter().enumerate().all(|(i, &byte)| byte == pattern(i)), "the reply is damaged");
        assert_eq!((&near).read(&mut [0; 8]).unwrap(), 0, "the reply ends");
        assert_eq!(replier.get().unwrap().unwrap(), b"request".len());
    })
    .expect("the exchange finishes");
}

#[test]
fn after_a_tcp_peer_half_closes_a_large_write_still_parks_and_completes() {
    let (client, accepted) = tcp_pair(false);
    write_after_peer_half_close(client, accepted, |stream| stream.shutdown(Shutdown::Write));
}

#[test]
fn after_a_unix_peer_half_closes_a_large_write_still_parks_and_completes() {
    let (a, b) = UnixStream::pair().unwrap();
    write_after_peer_half_close(a, b, |stream| stream.shutdown(Shutdown::Write));
}
