//! A connection's byte stream: plain TCP, or TLS over it (the `tls`
//! feature). Everything above reads and writes through this, so that what
//! holds for HTTP holds for HTTPS.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use greenery::net::TcpStream;
#[cfg(feature = "tls")]
use greenery::net::TlsStream;
#[cfg(feature = "tls")]
use greenery::net::rustls::ServerConfig;
#[cfg(feature = "tls")]
use std::cell::RefCell;
#[cfg(feature = "tls")]
use std::sync::Arc;

/// A server's TLS configuration, if it serves HTTPS (always `None` without
/// the `tls` feature).
#[derive(Default)]
pub(crate) struct TlsConfig {
    #[cfg(feature = "tls")]
    config: RefCell<Option<Arc<ServerConfig>>>,
}

impl TlsConfig {
    /// Serves HTTPS with `config` from now on.
    #[cfg(feature = "tls")]
    pub(crate) fn set(&self, config: Arc<ServerConfig>) {
        *self.config.borrow_mut() = Some(config);
    }

    /// Whether the server serves HTTPS.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.config.borrow().is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The stream for an accepted connection: TLS (its handshake not begun)
    /// if the server serves HTTPS.
    ///
    /// # Errors
    ///
    /// If rustls cannot make a session.
    pub(crate) fn wrap(&self, tcp: TcpStream) -> io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let Some(config) = self.config.borrow().clone() {
            return Ok(Stream::Tls(Box::new(TlsStream::new_server(tcp, config)?)));
        }
        Ok(Stream::Tcp(tcp))
    }
}

pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP stream (under the TLS, if any).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(tcp) => tcp,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.get_ref(),
        }
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => (&*tcp).read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => (&**tls).read(buf),
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => (&*tcp).write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => (&**tls).write(buf),
        }
    }

    /// The read timeout bounds a whole read (for TLS, however many records
    /// it takes).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    /// Shuts down a side; for TLS, shutting the write side sends
    /// `close_notify` first.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(tcp) => tcp.shutdown(how),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.shutdown(how),
        }
    }

    /// See [`TcpStream::on_readable`].
    pub(crate) fn on_readable(
        &self,
        timeout: Option<Duration>,
        callback: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(tcp) => tcp.on_readable(timeout, callback),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.on_readable(timeout, callback),
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Tcp(_))
    }

    /// Whether a TLS handshake is still to be done.
    pub(crate) fn is_handshaking(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.is_handshaking(),
        }
    }

    /// Completes the TLS handshake (if any) within `timeout`.
    pub(crate) fn handshake(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(_) => {
                let _ = timeout;
                Ok(())
            }
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.handshake(timeout),
        }
    }
}
