//! What the HTTPS and upgrade tests share: a certificate made at test time,
//! and a raw HTTP/1.1 client over any stream.
#![allow(dead_code)] // each test binary uses its part

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

pub const GENEROUS: Duration = Duration::from_secs(30);

/// Waits (with a guard against hangs) until `done` holds.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + GENEROUS;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        greenery::sleep(Duration::from_millis(2));
    }
}

#[cfg(feature = "tls")]
pub mod tls {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use greenery::net::{TcpStream, TlsStream};
    use greenery_http::rustls::pki_types::PrivatePkcs8KeyDer;
    use greenery_http::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

    use super::GENEROUS;

    /// A self-signed certificate for `localhost`, made for the test: the
    /// server's configuration, a client's that trusts it, and the PEM text.
    pub struct Certs {
        pub server: ServerConfig,
        pub client: Arc<ClientConfig>,
        pub cert_pem: String,
        pub key_pem: String,
    }

    pub fn make_certs() -> Certs {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key.into())
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Certs {
            server,
            client: Arc::new(client),
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        }
    }

    /// A TLS connection to `addr`, its handshake done.
    pub fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<TlsStream> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(GENEROUS))?;
        TlsStream::connect(stream, config.clone(), "localhost", GENEROUS)
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client over one connection of any kind.
pub struct Client<S: Read + Write> {
    pub reader: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client { reader: BufReader::new(stream) }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Sends a GET for `path`.
    pub fn get(&mut self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        self.reply()
    }

    /// Reads one response's head (and, unless `bodiless`, its body).
    pub fn reply_with(&mut self, bodiless: bool) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "status line {line:?}");
        let status = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end_matches("\r\n");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").unwrap();
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut reply = Reply { status, headers, body: Vec::new() };
        if bodiless || status == 101 || status == 204 || status == 304 {
            return reply;
        }
        if let Some(length) = reply.header("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.reader.read_exact(&mut body).unwrap();
            reply.body = body;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&chunk[..size]);
            }
        }
        reply
    }

    pub fn reply(&mut self) -> Reply {
        self.reply_with(false)
    }

    /// Whether the server closed the connection: the end of the stream,
    /// clean or not, or a reset.
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(err) => matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof),
        }
    }
}
