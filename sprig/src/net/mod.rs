//! Cooperative networking: std's socket types, whose blocking calls park the
//! green thread on the hub instead of blocking the OS thread (gevent's
//! `gevent.socket`).
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use sprig::net::{TcpListener, TcpStream};
//!
//! // A line echo server: one green thread per connection, all on this thread.
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! sprig::spawn(move || {
//!     for stream in listener.incoming() {
//!         let stream = stream.unwrap();
//!         sprig::spawn(move || {
//!             let mut lines = BufReader::new(&stream);
//!             let mut line = String::new();
//!             while lines.read_line(&mut line).unwrap() > 0 {
//!                 (&stream).write_all(line.as_bytes()).unwrap();
//!                 line.clear();
//!             }
//!         });
//!     }
//! });
//! // Three clients at once.
//! let clients: Vec<_> = (0..3).map(|i| sprig::spawn(move || {
//!     let stream = TcpStream::connect(addr).unwrap();
//!     (&stream).write_all(format!("hello {i}\n").as_bytes()).unwrap();
//!     let mut reply = String::new();
//!     BufReader::new(&stream).read_line(&mut reply).unwrap();
//!     reply
//! })).collect();
//! for (i, client) in clients.into_iter().enumerate() {
//!     assert_eq!(client.get().unwrap(), format!("hello {i}\n"));
//! }
//! ```
//!
//! # How it works
//!
//! Every socket is non-blocking and registered with the thread's hub (see
//! the hub's `io` protocol). A call tries the system call first; only if the
//! kernel says it would block does the green thread park until the hub's
//! poller reports the socket ready, and then it tries again. Other green
//! threads run meanwhile.
//!
//! - **Timeouts.** `set_read_timeout` and `set_write_timeout` make a wait
//!   that lasts longer fail with [`TimedOut`](std::io::ErrorKind::TimedOut);
//!   [`TcpStream::connect_timeout`] bounds a connect. A
//!   [`Timeout`](crate::Timeout) around any call works too.
//! - **Name resolution** ([`ToSocketAddrs`]) runs on the blocking pool, so
//!   `TcpStream::connect("localhost:80")` does not block the hub.
//! - **One waiter per direction.** Two green threads waiting to read the same
//!   socket at once is a bug gevent reports as `ConcurrentObjectUseError`;
//!   here the second gets [`ResourceBusy`](std::io::ErrorKind::ResourceBusy). To read in one
//!   green thread and write in another, use the same socket from both (one
//!   reader, one writer) or a [`try_clone`](TcpStream::try_clone).
//! - **Threads.** Sockets are `!Send`: each is registered with its thread's
//!   hub. `into_std` and `from_std` move one across threads.
//! - **Any fd.** [`wait_readable`], [`wait_writable`] and [`wait_any`] make
//!   other non-blocking code cooperative.
//! - **Servers.** [`StreamServer`] runs a handler per TCP connection (capped
//!   by a pool if asked), on any number of listeners, backs off when out of
//!   file descriptors, and stops gracefully; [`DatagramServer`] does the
//!   same per UDP datagram.

/// The timeout accessors of a socket type with a `socket: Socket<_>` field
/// (std's signatures).
macro_rules! timeout_methods {
    ($ty:ty) => {
        impl $ty {
            /// Sets how long a read (a receive) may wait before failing with
            /// [`TimedOut`](std::io::ErrorKind::TimedOut); `None` (the
            /// default) waits for ever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration, as std.
            pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.socket.set_read_timeout(timeout)
            }

            /// The read timeout.
            ///
            /// # Errors
            ///
            /// Never; a `Result` for std's signature.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.socket.read_timeout())
            }

            /// Sets how long a write (a send) may wait before failing with
            /// [`TimedOut`](std::io::ErrorKind::TimedOut); `None` (the
            /// default) waits for ever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration, as std.
            pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.socket.set_write_timeout(timeout)
            }

            /// The write timeout.
            ///
            /// # Errors
            ///
            /// Never; a `Result` for std's signature.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.socket.write_timeout())
            }
        }
    };
}

/// `AsFd` and `AsRawFd` for a socket type with a `socket: Socket<_>` field.
macro_rules! fd_traits {
    ($ty:ty) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.socket.get())
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.socket.get())
            }
        }
    };
}

/// `Read` and `Write` for a stream socket type and references to it, through
/// [`Socket::read_stream`](socket::Socket::read_stream) and
/// [`Socket::write_stream`](socket::Socket::write_stream).
macro_rules! stream_io {
    ($ty:ty) => {
        impl std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.socket.read_stream(buf.len(), |mut stream| std::io::Read::read(&mut stream, buf))
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.socket.read_stream(len, |mut stream| std::io::Read::read_vectored(&mut stream, bufs))
            }
        }

        impl std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.socket.write_stream(buf.len(), |mut stream| std::io::Write::write(&mut stream, buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.socket.write_stream(len, |mut stream| std::io::Write::write_vectored(&mut stream, bufs))
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

mod addr;
mod datagram_server;
mod socket;
mod stream_server;
mod tcp_listener;
mod tcp_stream;
mod udp_socket;
mod unix_datagram;
mod unix_listener;
mod unix_stream;
mod wait;

pub use addr::ToSocketAddrs;
pub use datagram_server::DatagramServer;
pub use stream_server::StreamServer;
pub use tcp_listener::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp_socket::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::{UnixIncoming, UnixListener};
pub use unix_stream::UnixStream;
pub use wait::{wait_any, wait_readable, wait_writable, Interest};
