//! Existing blocking code, cooperative: greenery's monkey patching (the
//! `patch` feature).
//!
//! gevent's reason to exist is `monkey.patch_all()`: the Python ecosystem's
//! ordinary blocking libraries become cooperative with one call. Rust crates
//! reach the kernel through the C library (std's sockets, sleeps and pipes
//! are thin wrappers over `recv`, `send`, `accept4`, `poll`,
//! `clock_nanosleep`, ...), so with the `patch` feature greenery defines
//! those functions in the program: every caller (std, any crate, C code in
//! the program) reaches greenery's, which park the green thread where the
//! call would block, and otherwise do exactly what the C library's do.
//!
//! ```toml
//! greenery = { version = "0.1", features = ["patch"] }
//! ```
//!
//! Without the feature this module holds only [`is_active`], which then
//! answers `false`.
//!
//! Nothing else changes in the program: std's `TcpStream`, the `redis`
//! crate's synchronous client, `ureq`, `std::thread::sleep` on green threads
//! now let the other green threads run while they wait.
//!
//! ```
//! # if !greenery::patch::is_active() { return; } // would block without the feature
//! use std::io::{Read, Write};
//!
//! // Plain std sockets, each in a green thread: with the `patch` feature
//! // they wait on the hub, and the 50 connections are served at once.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! greenery::spawn(move || {
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         greenery::spawn(move || {
//!             let mut byte = [0; 1];
//!             stream.read_exact(&mut byte).unwrap();
//!             stream.write_all(&byte).unwrap();
//!         });
//!     }
//! });
//! let clients: Vec<_> = (0..50u8)
//!     .map(|i| {
//!         greenery::spawn(move || {
//!             let mut stream = std::net::TcpStream::connect(addr).unwrap();
//!             std::thread::sleep(std::time::Duration::from_millis(10)); // parks, with `patch`
//!             stream.write_all(&[i]).unwrap();
//!             let mut byte = [0; 1];
//!             stream.read_exact(&mut byte).unwrap();
//!             byte[0]
//!         })
//!     })
//!     .collect();
//! for (i, client) in clients.into_iter().enumerate() {
//!     assert_eq!(client.get().unwrap(), i as u8);
//! }
//! ```
//!
//! # What is patched
//!
//! - **I/O**: `read`, `readv`, `write`, `writev`, `recv`, `recvfrom`,
//!   `recvmsg`, `send`, `sendto`, `sendmsg`, `accept`, `accept4`, `connect`,
//!   and the checked forms fortified C calls (`__read_chk`, `__recv_chk`,
//!   `__recvfrom_chk`, `__poll_chk`), on sockets and pipes the program made.
//! - **Waiting**: `poll`, `ppoll`, `select`; `nanosleep`, `clock_nanosleep`
//!   (std's `thread::sleep`), `usleep`, `sleep`.
//! - **Names**: `getaddrinfo` (std's `ToSocketAddrs`) runs on the hub's
//!   blocking pool: its own I/O happens inside the C library, out of reach.
//! - **Bookkeeping**: `socket`, `socketpair`, `pipe`, `pipe2`, `close`,
//!   `dup`, `dup2`, `dup3`, `fcntl`, `ioctl(FIONBIO)`, `setsockopt`.
//!
//! # Semantics
//!
//! - **The program keeps the semantics it asked for.** An fd the program
//!   made blocking behaves as blocking (on a green thread it parks, on a
//!   plain OS thread it blocks); one it made non-blocking (tokio's, mio's,
//!   greenery's own sockets) gets `EAGAIN` as before, and those calls go
//!   straight to the C library. greenery tracks the program's view of
//!   `O_NONBLOCK` through `SOCK_NONBLOCK`, `fcntl` and `ioctl(FIONBIO)`, apart
//!   from the kernel's flag, which it sets on an fd only when a green thread
//!   first waits on it.
//! - **Timeouts**: `SO_RCVTIMEO` and `SO_SNDTIMEO` (std's
//!   `set_read_timeout`) bound the waits, which then fail with `EAGAIN` as
//!   the kernel's would; `poll`'s and `select`'s timeouts hold.
//! - **Kills and `Timeout`s** reach a green thread waiting in a patched call
//!   (a C function, which must not unwind): the call returns an error at once
//!   (`ECANCELED` for a kill, `ETIMEDOUT` for a timeout; a sleep just ends),
//!   every further patched call of that green thread does the same, and the
//!   unwinding resumes at its next greenery call, or when the code the
//!   `Timeout` bounds returns, or when the green thread's function returns.
//! - **close**: green threads of the same thread waiting on an fd that is
//!   closed are woken, and fail with `EBADF`; a number reused for a new file
//!   is never confused with the old one.
//! - **fork**: the child has no hub until it makes one (it must not share
//!   its parent's poller): its blocking calls block.
//! - **Off a hub** (plain OS threads, the hub's own loop, timer callbacks,
//!   before `main`), every call goes straight to the C library, at the cost
//!   of a table lookup (see the benchmark's `patch` case).
//!
//! # What it cannot do
//!
//! - **Regular files** are not made cooperative (their reads do not wait
//!   for readiness): run heavy file I/O with
//!   [`hub::spawn_blocking`](crate::hub::spawn_blocking).
//! - **fds the program did not make through these calls** (inherited ones,
//!   such as the standard streams; fds made with raw system calls, or
//!   before the program's `main`) are left alone: their calls block as
//!   before.
//! - **Raw system calls** bypass the C library and so the hooks: `rustix`'s
//!   default `linux_raw` backend (turn on its `use-libc` feature), io_uring,
//!   Go code.
//! - **`std::sync` locks, `Condvar`, channels** wait on futexes, which no
//!   hook sees: a green thread blocked in one blocks its hub. Use greenery's
//!   [`sync`](crate::sync) types between green threads, and
//!   [`sync::mpsc`](crate::sync::mpsc) between threads.
//! - **Static linking** (`+crt-static`, musl): the C library's functions are
//!   linked in, and the hooks cannot replace them.
//! - **Signal handlers** that make blocking calls on a tracked fd that the
//!   program sees as blocking would park inside the handler: keep handlers
//!   to non-blocking fds (the usual self-pipe is one), or use
//!   [`signal`](crate::signal)'s handlers, which run as green threads.
//! - A descriptor closed by **another OS thread** while a green thread waits
//!   on it wakes nothing; the wait ends with its timeout, if it has one.

#[cfg(feature = "patch")]
mod fds;
#[cfg(feature = "patch")]
mod hooks;
#[cfg(feature = "patch")]
pub(crate) mod real;
#[cfg(feature = "patch")]
mod wait;

/// Whether the `patch` feature's hooks are in this program: the program's
/// own calls to the C library's `read` reach greenery's.
///
/// This function is there with or without the feature (it answers `false`
/// without it), so that code built either way can ask; Cargo turns a
/// feature on for every user of a crate when one of them asks for it.
///
/// ```
/// assert_eq!(greenery::patch::is_active(), cfg!(feature = "patch"));
/// ```
#[cfg(not(feature = "patch"))]
pub fn is_active() -> bool {
    false
}

/// Whether the `patch` feature's hooks are in this program: the program's
/// own calls to the C library's `read` reach greenery's.
///
/// This function is there with or without the feature (it answers `false`
/// without it), so that code built either way can ask; Cargo turns a
/// feature on for every user of a crate when one of them asks for it.
///
/// ```
/// assert!(greenery::patch::is_active());
/// ```
#[cfg(feature = "patch")]
pub fn is_active() -> bool {
    // A pipe made through the patched `pipe2` is tracked; one the hooks do
    // not see would not be.
    let mut pair = [0; 2];
    // SAFETY: pipe2 writes two fds into the array, which we close.
    if unsafe { libc::pipe2(pair.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    let tracked = fds::get(pair[0]).is_some_and(|entry| entry.flags() & fds::TRACKED != 0);
    // SAFETY: the two fds made above.
    unsafe {
        libc::close(pair[0]);
        libc::close(pair[1]);
    }
    tracked
}
