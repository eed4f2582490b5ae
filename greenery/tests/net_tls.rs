//! `TlsStream` and `StreamServer::new_tls` (the `tls` feature): echoes over
//! TLS, a reader and a writer at once, a bad handshake, a client that
//! stalls mid-handshake, close_notify and truncation, idle waits without a
//! green thread, certificates from PEM files.
#![cfg(feature = "tls")]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenery::net::rustls::pki_types::PrivatePkcs8KeyDer;
use greenery::net::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use greenery::net::{StreamServer, TcpListener, TcpStream, TlsAcceptor, TlsStream};
use greenery::sync::Event;

const GENEROUS: Duration = Duration::from_secs(20);

/// A self-signed certificate for `localhost`, made for the test: the
/// server's configuration and a client's that trusts it.
struct Certs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    cert_pem: String,
    key_pem: String,
}

fn make_certs() -> Certs {
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
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Certs {
        server: Arc::new(server),
        client: Arc::new(client),
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    }
}

fn connect(addr: SocketAddr, certs: &Certs) -> io::Result<TlsStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(GENEROUS))?;
    TlsStream::connect(stream, certs.client.clone(), "localhost", GENEROUS)
}

/// A TLS echo server: echoes until the client's end.
fn echo_server(certs: &Certs) -> StreamServer {
    let server = StreamServer::bind_tls("127.0.0.1:0", certs.server.clone().into(), |stream, _peer| {
        let mut buf = [0; 1024];
        while let Ok(n @ 1..) = (&stream).read(&mut buf) {
            if (&stream).write_all(&buf[..n]).is_err() {
                return;
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
    })
    .unwrap();
    server.start().unwrap();
    server
}

#[test]
fn a_tls_server_echoes_over_many_round_trips() {
    let certs = make_certs();
    let server = echo_server(&certs);
    let mut client = connect(server.local_addrs()[0], &certs).unwrap();
    assert!(!client.is_handshaking());
    for i in 0..100 {
        let message = format!("message {i} {}", "x".repeat(i * 50));
        client.write_all(message.as_bytes()).unwrap();
        let mut echoed = vec![0; message.len()];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
    // A clean end: close_notify both ways, and a read of 0.
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.stop(GENEROUS).unwrap();
}

#[test]
fn one_green_thread_reads_while_another_writes() {
    let certs = make_certs();
    let server = echo_server(&certs);
    let client = Rc::new(connect(server.local_addrs()[0], &certs).unwrap());
    // More than the socket buffers hold: the writer parks while the reader
    // takes the echo, each holding the session only between parks.
    let total = 1024 * 1024;
    let writer = greenery::spawn({
        let client = client.clone();
        move || {
            let chunk: Vec<u8> = (0..=255).cycle().take(16 * 1024).collect();
            let mut sent = 0;
            while sent < total {
                (&*client).write_all(&chunk).unwrap();
                sent += chunk.len();
            }
        }
    });
    let mut received = 0usize;
    let mut buf = vec![0; 64 * 1024];
    while received < total {
        let n = (&*client).read(&mut buf).unwrap();
        assert!(n > 0);
        for (i, byte) in buf[..n].iter().enumerate() {
            assert_eq!(*byte as usize, (received + i) % 16384 % 256);
        }
        received += n;
    }
    writer.join().unwrap();
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_client_that_speaks_no_tls_is_closed_and_the_server_goes_on() {
    let certs = make_certs();
    let server = echo_server(&certs);
    let addr = server.local_addrs()[0];
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(GENEROUS)).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer); // an alert, then the end
    assert!(!answer.starts_with(b"GET"), "nothing echoed in the clear");
    // A client that trusts another certificate fails its handshake.
    let stranger = make_certs();
    let stream = TcpStream::connect(addr).unwrap();
    let err = TlsStream::connect(stream, stranger.client.clone(), "localhost", GENEROUS).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // The server still serves.
    let mut client = connect(addr, &certs).unwrap();
    client.write_all(b"still here").unwrap();
    let mut echoed = [0; 10];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still here");
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_client_that_stalls_mid_handshake_is_closed_after_the_handshake_timeout() {
    let certs = make_certs();
    let acceptor = TlsAcceptor::new(certs.server.clone()).with_handshake_timeout(Duration::from_millis(200));
    let served = Rc::new(Event::new());
    let flag = served.clone();
    let server = StreamServer::bind_tls("127.0.0.1:0", acceptor, move |_stream, _peer| flag.set()).unwrap();
    server.start().unwrap();
    let addr = server.local_addrs()[0];
    // The client sends the first bytes of a ClientHello, then nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.set_read_timeout(Some(GENEROUS)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let mut rest = Vec::new();
    match stalled.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "no answer to half a hello: {rest:?}"),
        Err(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}"),
    }
    // So is one that sends nothing at all.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(GENEROUS)).unwrap();
    assert!(matches!(silent.read(&mut [0; 16]), Ok(0) | Err(_)));
    assert!(!served.is_set(), "no handler ran");
    assert_eq!(server.connections(), 0);
    server.stop(GENEROUS).unwrap();
}

#[test]
fn a_peer_that_closes_without_close_notify_ends_reads_with_unexpected_eof() {
    let certs = make_certs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenery::spawn({
        let config = certs.server.clone();
        move || {
            let (stream, _) = listener.accept().unwrap();
            let mut tls = TlsStream::accept(stream, config, GENEROUS).unwrap();
            tls.write_all(b"bye").unwrap();
            // Dropped: the socket closes without a close_notify.
        }
    });
    let mut client = connect(addr, &certs).unwrap();
    let mut bye = [0; 3];
    client.read_exact(&mut bye).unwrap();
    server.join().unwrap();
    let err = client.read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn on_readable_waits_without_a_green_thread_then_reads_over_tls() {
    let certs = make_certs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = certs.server.clone();
    let accepting = greenery::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        TlsStream::accept(stream, config, GENEROUS).unwrap()
    });
    let mut client = connect(addr, &certs).unwrap();
    let server_side = Rc::new(accepting.get().unwrap());
    assert_eq!(server_side.alpn_protocol(), None);
    let got = Rc::new(Event::new());
    let (reader, done) = (server_side.clone(), got.clone());
    server_side
        .on_readable(Some(GENEROUS), move |ready| {
            ready.unwrap();
            greenery::spawn(move || {
                let mut buf = [0; 5];
                (&*reader).read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"hello");
                done.set();
            });
        })
        .unwrap();
    greenery::sleep(Duration::from_millis(20));
    assert!(!got.is_set());
    client.write_all(b"hello").unwrap();
    got.wait().unwrap();
    // A read timeout bounds a read.
    server_side.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let err = (&*server_side).read(&mut [0; 4]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

#[test]
fn certificates_and_keys_load_from_pem_files_and_errors_name_the_file() {
    let certs = make_certs();
    let dir = std::env::temp_dir().join(format!("greenery-net-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &certs.cert_pem).unwrap();
    std::fs::write(&key, &certs.key_pem).unwrap();
    let acceptor = TlsAcceptor::from_pem_files(&cert, &key).unwrap();
    let server = StreamServer::bind_tls("127.0.0.1:0", acceptor, |mut stream, _| {
        let _ = stream.write_all(b"from PEM files");
        let _ = stream.shutdown(Shutdown::Write);
    })
    .unwrap();
    server.start().unwrap();
    let mut client = connect(server.local_addrs()[0], &certs).unwrap();
    let mut text = String::new();
    client.read_to_string(&mut text).unwrap();
    assert_eq!(text, "from PEM files");
    server.stop(GENEROUS).unwrap();

    let missing = dir.join("missing.pem");
    let err = greenery::net::tls_server_config(&missing, &key).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = greenery::net::tls_server_config(&key, &key).unwrap_err();
    assert_eq!(err.to_string(), format!("no certificate (-----BEGIN CERTIFICATE-----) in {}", key.display()));
    let err = greenery::net::tls_server_config(&cert, &cert).unwrap_err();
    assert!(err.to_string().starts_with("cannot read the private key in"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
