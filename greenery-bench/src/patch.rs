//! What greenery's `patch` feature costs: a call that the hooks pass
//! straight to the C library, and a std `TcpStream`'s round trip on a hub
//! against greenery's own `TcpStream`.
//!
//! Only in a build with the bench's `patch` feature (`cargo run --release
//! -p greenery-bench --features patch -- patch`): the hooks then replace the
//! C library's functions for the whole program, peers included, which is
//! why the other cases are measured without it.

#[cfg(feature = "patch")]
mod measured {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    use crate::measure::{self, Peer};
    use crate::{report_ratio, report_timing};

    type ReadFn = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, libc::size_t) -> libc::ssize_t;

    /// The C library's own `read`, past the hooks.
    fn libc_read() -> ReadFn {
        // SAFETY: dlsym takes a pseudo-handle and a NUL-terminated name;
        // RTLD_NEXT from this program is the C library, whose `read` has
        // this signature.
        unsafe {
            let address = libc::dlsym(libc::RTLD_NEXT, c"read".as_ptr());
            assert!(!address.is_null(), "the C library's read");
            std::mem::transmute::<*mut libc::c_void, ReadFn>(address)
        }
    }

    /// Reads of an empty non-blocking pipe (`EAGAIN`, as mio and tokio make
    /// all the time), off a hub: through the hooks' `read`, and through
    /// libc's.
    pub(super) fn off_hub(n: u64) {
        let (reader, _writer) = std::io::pipe().expect("a pipe");
        let fd = reader.as_raw_fd();
        // SAFETY: F_SETFL on our pipe: the program's view becomes
        // non-blocking (through the hooks, as a crate would).
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let real = libc_read();
        let mut byte = [0u8; 1];
        let mut other = [0u8; 1];
        let [hooked, libc] = measure::interleaved([
            Peer::new(n, |k| {
                for _ in 0..k {
                    // SAFETY: a one-byte buffer of ours.
                    let read = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
                    assert_eq!(read, -1);
                }
            }),
            Peer::new(n, |k| {
                for _ in 0..k {
                    // SAFETY: as above, through libc's own read.
                    let read = unsafe { real(fd, other.as_mut_ptr().cast(), 1) };
                    assert_eq!(read, -1);
                }
            }),
        ]);
        report_timing("greenery_patch_off_hub_read_ns", &hooked);
        report_timing("libc_off_hub_read_ns", &libc);
        report_ratio("greenery_patch_vs_libc_off_hub_read_ratio", &hooked, &libc);
    }

    /// 64-byte round trips over one connection, client and echo server in
    /// green threads of this thread's hub: std's `TcpStream` (made
    /// cooperative by the hooks) against greenery's.
    pub(super) fn echo(n: u64) {
        let [std_side, greenery_side] =
            measure::interleaved([Peer::new(n, std_round_trips), Peer::new(n, greenery_round_trips)]);
        report_timing("greenery_patch_std_tcp_echo_roundtrip_ns", &std_side);
        report_timing("greenery_tcp_echo_roundtrip_ns", &greenery_side);
        report_ratio("greenery_patch_std_vs_greenery_tcp_echo_ratio", &std_side, &greenery_side);
    }

    fn std_round_trips(k: u64) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let addr = listener.local_addr().expect("its address");
        let server = greenery::spawn(move || {
            let (mut stream, _) = listener.accept().expect("a connection");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                stream.write_all(&buf[..n]).expect("the echo");
            }
        });
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut buf = [1u8; 64];
        for _ in 0..k {
            stream.write_all(&buf).expect("sends");
            stream.read_exact(&mut buf).expect("the echo comes back");
        }
        drop(stream);
        server.get().expect("the server ends");
    }

    fn greenery_round_trips(k: u64) {
        let listener = greenery::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let addr = listener.local_addr().expect("its address");
        let server = greenery::spawn(move || {
            let (mut stream, _) = listener.accept().expect("a connection");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                stream.write_all(&buf[..n]).expect("the echo");
            }
        });
        let mut stream = greenery::net::TcpStream::connect(addr).expect("connects");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut buf = [1u8; 64];
        for _ in 0..k {
            stream.write_all(&buf).expect("sends");
            stream.read_exact(&mut buf).expect("the echo comes back");
        }
        drop(stream);
        server.get().expect("the server ends");
    }
}

/// The `patch` case.
pub(crate) fn patch(n: u64) {
    #[cfg(feature = "patch")]
    {
        assert!(greenery::patch::is_active(), "the hooks are linked in");
        measured::off_hub(n);
        measured::echo(n / 20);
    }
    #[cfg(not(feature = "patch"))]
    {
        let _ = n;
        eprintln!(
            "# patch: figures skipped: build the bench with its `patch` feature \
             (cargo run --release -p greenery-bench --features patch -- patch)"
        );
    }
}
