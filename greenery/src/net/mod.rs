//! Cooperative networking: std's socket types, whose blocking calls park the
//! green thread on the hub instead of blocking the OS thread (gevent's
//! `gevent.socket`).
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use greenery::net::{TcpListener, TcpStream};
//!
//! // A line echo server: one green thread per connection, all on this thread.
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! greenery::spawn(move || {
//!     for stream in listener.incoming() {
//!         let stream = stream.unwrap();
//!         greenery::spawn(move || {
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
//! let clients: Vec<_> = (0..3).map(|i| greenery::spawn(move || {
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
//! - **Threads.** Sockets are `Send` (not `Sync`): a socket is registered
//!   with the hub of the thread that uses it, and one moved to another
//!   thread (over a channel, in a connection pool, in a closure) registers
//!   with that thread's hub on its first use there, mid-connection if need
//!   be, leaving its old hub. A crate whose transport must be `Send + Sync`
//!   and that takes `&mut self` (ureq's `Transport`) gets the `Sync` from a
//!   [`std::sync::Mutex`] reached through `get_mut`, which takes no lock.
//!   A server on several cores runs one hub per thread, each with a listener of its own
//!   on the same address ([`TcpListener::bind_reuse_port`],
//!   [`ServerThreads`]); one listener shared by several hubs balances
//!   badly.
//! - **Any fd.** [`wait_readable`], [`wait_writable`] and [`wait_any`] make
//!   other non-blocking code cooperative.
//! - **Servers.** [`StreamServer`] runs a handler per TCP connection (capped
//!   by a pool if asked), on any number of listeners, backs off when out of
//!   file descriptors, and stops gracefully; [`DatagramServer`] does the
//!   same per UDP datagram.
//! - **TLS** (the `tls` feature). [`TlsStream`] is TLS (rustls) over a
//!   [`TcpStream`], with the same blocking shape; [`StreamServer::new_tls`]
//!   hands each handler one, its handshake done within the
//!   [`TlsAcceptor`]'s timeout.

mod addr;
mod datagram_server;
mod server_threads;
pub(crate) mod socket;
mod stream_server;
mod tcp_listener;
mod tcp_stream;
#[cfg(feature = "tls")]
mod tls_acceptor;
#[cfg(feature = "tls")]
mod tls_stream;
mod udp_socket;
mod unix_datagram;
mod unix_listener;
mod unix_stream;
mod wait;

pub use addr::ToSocketAddrs;
pub use datagram_server::DatagramServer;
/// The rustls crate, whose configurations [`TlsStream`] and [`TlsAcceptor`]
/// take (with the `tls` feature).
#[cfg(feature = "tls")]
pub use rustls;
pub use server_threads::{Serve, ServerThreads};
pub use stream_server::StreamServer;
pub use tcp_listener::{Incoming, TcpListener, default_backlog};
pub use tcp_stream::TcpStream;
#[cfg(feature = "tls")]
pub use tls_acceptor::{TlsAcceptor, tls_server_config};
#[cfg(feature = "tls")]
pub use tls_stream::TlsStream;
pub use udp_socket::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::{UnixIncoming, UnixListener};
pub use unix_stream::UnixStream;
pub use wait::{Interest, wait_any, wait_readable, wait_writable};
