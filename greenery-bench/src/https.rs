//! HTTPS on one thread answering `Hello, World!`: greenery-http with TLS
//! against hyper 1 behind tokio-rustls on tokio's current-thread runtime,
//! with the same certificate and the same TLS: rustls with its aws-lc-rs
//! provider, TLS 1.3 with `TLS13_AES_128_GCM_SHA256` and X25519 alone, ALPN
//! `http/1.1`.
//!
//! The certificate (a self-signed one for `localhost`, made with rcgen) is
//! written to a temporary directory, and each server child loads it from
//! there: `greenery-bench __https_server hyper|greenery CERT KEY`.
//!
//! - `https`: as [`crate::http`]'s `http` case, with `wrk https://…`: -t1
//!   -c50, interleaved rounds, each server pinned to the first CPU and wrk
//!   to the second; requests per second (the median of the rounds) and the
//!   server's CPU time per request. wrk's connections are kept alive, so
//!   the handshakes are few and the figures are those of the records.
//! - `https_scale`: [`crate::scale`]'s run, each client a greenery
//!   `TlsStream` that makes one `GET /` and then holds its connection idle:
//!   the server's resident memory per idle TLS keep-alive connection.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::child::{ServerProcess, announce, pin_to, set_up_server};
use crate::http::{
    BODY, CONNECTIONS, ROUNDS, Round, SERVER_CPU, Summary, WARM_UP_SECS, Wrk, http_round_trip,
};
use crate::report;
use crate::scale::{self, Duplex, IO_TIMEOUT, Scenario, Target};

/// The hidden command that runs an HTTPS server in a child process.
pub(crate) const SERVER_COMMAND: &str = "__https_server";

/// The servers, in the order their rounds take turns.
const SERVERS: [Target; 2] =
    [Target { name: "hyper", arg: "hyper" }, Target { name: "greenery", arg: "greenery" }];

/// The one provider of both sides: aws-lc-rs with one cipher suite and one
/// key exchange, so that both servers do the same cryptography.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![kx_group::X25519],
        ..aws_lc_rs::default_provider()
    })
}

/// Both servers' configuration: the certificate and key in `dir`, TLS 1.3,
/// ALPN `http/1.1`.
fn server_config(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |err| io::Error::other(format!("the benchmark's PEM files: {err}"));
    let certs = CertificateDer::pem_file_iter(cert).and_then(Iterator::collect).map_err(pem)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed certificate for `localhost` in a temporary directory,
/// removed when dropped; and a client configuration that trusts it.
struct Certificate {
    dir: PathBuf,
    client: Arc<ClientConfig>,
}

impl Certificate {
    fn make() -> Result<Certificate, String> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .map_err(|err| format!("cannot make a certificate: {err}"))?;
        let dir = std::env::temp_dir().join(format!("greenery-bench-https-{}", std::process::id()));
        let write = || -> io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cert.pem"), made.cert.pem())?;
            std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem())
        };
        write().map_err(|err| format!("{}: {err}", dir.display()))?;
        let mut roots = RootCertStore::empty();
        roots.add(made.cert.der().clone()).map_err(|err| err.to_string())?;
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|err| err.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Certificate { dir, client: Arc::new(client) })
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Starts server `arg` in a child process with this certificate.
    fn start(&self, arg: &str) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|err| format!("cannot find this binary: {err}"))?;
        let mut command = Command::new(exe);
        command.arg(SERVER_COMMAND).arg(arg).arg(self.cert()).arg(self.key());
        ServerProcess::start_command(command)
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hidden server command: `args` is the rest of the command line after
/// [`SERVER_COMMAND`].
pub(crate) fn serve_child(args: &[String]) -> ExitCode {
    let [name, cert, key] = args else {
        eprintln!("greenery-bench {SERVER_COMMAND}: expected `hyper|greenery CERT KEY`, got {args:?}");
        return ExitCode::from(2);
    };
    let serve = match name.as_str() {
        "hyper" => serve_hyper,
        "greenery" => serve_greenery,
        _ => {
            eprintln!("greenery-bench {SERVER_COMMAND}: expected `hyper` or `greenery`, got {name:?}");
            return ExitCode::from(2);
        }
    };
    // Before any other thread starts: they all inherit the CPU.
    pin_to(SERVER_CPU);
    set_up_server(SERVER_COMMAND);
    if let Err(err) = server_config(Path::new(cert), Path::new(key)).and_then(serve) {
        eprintln!("greenery-bench {SERVER_COMMAND} {name}: {err}");
    }
    ExitCode::FAILURE
}

/// greenery-http with TLS on this thread's hub.
fn serve_greenery(config: Arc<ServerConfig>) -> io::Result<()> {
    use greenery_http::http::{Request, Response};
    let server = greenery_http::Server::bind("127.0.0.1:0", |_request: Request<greenery_http::Body>| {
        Response::new(std::str::from_utf8(BODY).expect("ASCII"))
    })?
    .with_tls(config);
    server.start()?;
    greenery::yield_now(); // the accept loop starts, and parks, before the baseline
    announce(server.local_addr())?;
    server.serve_forever()
}

/// hyper 1's HTTP/1 server behind tokio-rustls on a tokio current-thread
/// runtime: a task per connection, its handshake within 10 s (as
/// greenery-http's default handshake timeout), keep-alive, `TCP_NODELAY`.
fn serve_hyper(config: Arc<ServerConfig>) -> io::Result<()> {
    async fn hello(
        _request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        Ok(hyper::Response::new(Full::new(Bytes::from_static(BODY))))
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let http = hyper::server::conn::http1::Builder::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("# hyper server: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            let (acceptor, http) = (acceptor.clone(), http.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                else {
                    return;
                };
                let connection = http
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), hyper::service::service_fn(hello));
                let _ = connection.await;
            });
        }
    })
}

/// The `https` case: wrk against each server for about `n` milliseconds in
/// all, in interleaved rounds.
pub(crate) fn https(n: u64) {
    let wrk = Wrk::find().unwrap_or_else(|problem| {
        eprintln!("https: {problem}");
        std::process::exit(1);
    });
    let certificate = Certificate::make().unwrap_or_else(|problem| {
        eprintln!("https: {problem}");
        std::process::exit(1);
    });
    let total_secs = (n / 1000).max(1);
    let rounds = total_secs.min(ROUNDS);
    let round_secs = total_secs / rounds;
    let processes = SERVERS.map(|server| {
        certificate.start(server.arg).unwrap_or_else(|problem| {
            eprintln!("https: {} server: {problem}", server.name);
            std::process::exit(1);
        })
    });
    let url = |process: &ServerProcess| format!("https://{}/", process.addr);
    if rounds == ROUNDS {
        for process in &processes {
            if let Err(problem) = wrk.run_url(&url(process), WARM_UP_SECS) {
                eprintln!("https: warm-up: {problem}");
                std::process::exit(1);
            }
        }
    }
    let mut results: [Vec<Round>; 2] = Default::default();
    for _ in 0..rounds {
        for ((server, process), results) in SERVERS.iter().zip(&processes).zip(&mut results) {
            let round = process.cpu().and_then(|before| {
                let run = wrk.run_url(&url(process), round_secs)?;
                Ok(Round { run, cpu: process.cpu()? - before })
            });
            match round {
                Ok(round) => results.push(round),
                Err(problem) => {
                    eprintln!("https: {}: {problem}", server.name);
                    std::process::exit(1);
                }
            }
        }
    }
    drop(processes);
    let summaries = results.each_ref().map(|rounds| Summary::of(rounds));
    for (server, summary) in SERVERS.iter().zip(&summaries) {
        summary.report(server.name, "https", round_secs);
    }
    let [hyper, greenery] = &summaries;
    report("greenery_vs_hyper_https_ratio", greenery.requests_per_s / hyper.requests_per_s, "x");
    report(
        "greenery_vs_hyper_https_cpu_per_request_ratio",
        greenery.cpu_ns_per_request / hyper.cpu_ns_per_request,
        "x",
    );
    eprintln!(
        "# https: wrk -t1 -c{CONNECTIONS}, {rounds} rounds of {round_secs} s per server{}, {}; TLS 1.3, \
         TLS13_AES_128_GCM_SHA256, X25519, rustls with aws-lc-rs on both servers",
        if rounds == ROUNDS { format!(" after {WARM_UP_SECS} s of warm-up") } else { String::new() },
        wrk.pinning
    );
    let errors: u64 = summaries.iter().map(|summary| summary.errors).sum();
    if errors > 0 {
        eprintln!("https: wrk counted {errors} errors");
        std::process::exit(1);
    }
}

/// The clients' TLS configuration in the `https_scale` case.
static CLIENT_CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// [`Scenario::wrap`] for the `https_scale` case: a TLS client.
fn tls_client(stream: greenery::net::TcpStream) -> Result<Box<dyn Duplex>, String> {
    let config = CLIENT_CONFIG.get().expect("set before the run").clone();
    let tls = greenery::net::TlsStream::connect(stream, config, "localhost", IO_TIMEOUT)
        .map_err(|err| format!("TLS handshake: {err}"))?;
    Ok(Box::new(tls))
}

/// The `https_scale` case: `n` TLS connections to each server, each making
/// one request and then held idle.
pub(crate) fn https_scale(n: u64) {
    let certificate = Certificate::make().unwrap_or_else(|problem| {
        eprintln!("https_scale: {problem}");
        std::process::exit(1);
    });
    let _ = CLIENT_CONFIG.set(certificate.client.clone());
    let scenario = Scenario {
        case: "https_scale",
        command: SERVER_COMMAND,
        wrap: tls_client,
        round_trip: http_round_trip,
        round_trips: 0,
        what: "`GET /` request(s) over TLS",
    };
    let start = |target: &Target| certificate.start(target.arg);
    scale::run_with(&scenario, n, &SERVERS, &start);
}
