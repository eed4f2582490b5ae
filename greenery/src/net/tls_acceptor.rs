//! [`TlsAcceptor`], and [`tls_server_config`] to load a certificate and its
//! key from PEM files.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::tls_stream::tls_error;
use super::{TcpStream, TlsStream};

/// How a server takes TLS connections: a rustls [`ServerConfig`] and how
/// long a client may take to finish its handshake (10 s unless set), for
/// [`StreamServer::new_tls`](super::StreamServer::new_tls) or for accepting
/// by hand. Cheap to clone. With the `tls` feature.
///
/// ```no_run
/// use std::time::Duration;
/// use greenery::net::TlsAcceptor;
///
/// let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")
///     .unwrap()
///     .with_handshake_timeout(Duration::from_secs(5));
/// # drop(acceptor);
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl TlsAcceptor {
    /// The handshake timeout unless one is set.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Accepts with `config`, and the default handshake timeout.
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config, handshake_timeout: TlsAcceptor::DEFAULT_HANDSHAKE_TIMEOUT }
    }

    /// Accepts with the certificate chain and private key in two PEM files
    /// (see [`tls_server_config`]).
    ///
    /// # Errors
    ///
    /// As for [`tls_server_config`].
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::new(Arc::new(tls_server_config(cert_chain, key)?)))
    }

    /// Sets how long a client may take to finish its handshake, counted
    /// from the start of [`accept`](Self::accept): a client that connects
    /// and stalls is cut off then.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// How long a client may take to finish its handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The configuration it accepts with.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Does the server side of a TLS handshake on `stream`, within the
    /// handshake timeout.
    ///
    /// # Errors
    ///
    /// As for [`TlsStream::accept`].
    pub fn accept(&self, stream: TcpStream) -> io::Result<TlsStream> {
        TlsStream::accept(stream, self.config.clone(), self.handshake_timeout)
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::new(config)
    }
}

impl From<ServerConfig> for TlsAcceptor {
    fn from(config: ServerConfig) -> TlsAcceptor {
        TlsAcceptor::new(Arc::new(config))
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// A rustls server configuration for the certificate chain (the server's
/// certificate first, then the intermediates) and the private key (PKCS#8,
/// PKCS#1 or SEC1) in two PEM files; no client certificates, no ALPN, TLS
/// 1.2 and 1.3. Its crypto provider is the process's default if one was
/// installed, else rustls' `aws-lc-rs` provider. With the `tls` feature.
///
/// ```no_run
/// let config = greenery::net::tls_server_config("cert.pem", "key.pem").unwrap();
/// assert!(config.alpn_protocols.is_empty());
/// ```
///
/// # Errors
///
/// If a file cannot be read (the error names it), holds no certificate or
/// no key, or the key does not go with the certificate.
pub fn tls_server_config(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<ServerConfig> {
    let (cert_path, key_path) = (cert_chain.as_ref(), key.as_ref());
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| pem_error("certificates", cert_path, err))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no certificate (-----BEGIN CERTIFICATE-----) in {}", cert_path.display()),
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|err| pem_error("private key", key_path, err))?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "cannot serve the certificate in {} with the key in {}: {err}",
                    cert_path.display(),
                    key_path.display()
                ),
            )
        })
}

/// A PEM file's error, naming the file.
fn pem_error(what: &str, path: &Path, err: pem::Error) -> io::Error {
    let kind = match &err {
        pem::Error::Io(err) => err.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    let found = match err {
        pem::Error::NoItemsFound => "none found".to_owned(),
        err => err.to_string(),
    };
    io::Error::new(kind, format!("cannot read the {what} in {}: {found}", path.display()))
}
