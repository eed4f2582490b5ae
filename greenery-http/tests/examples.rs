//! The examples as programs: `hello` serves (HTTPS too, with `--tls`), and
//! stops gracefully on SIGTERM and SIGINT; `websocket --self-test` runs its
//! echo and chat clients against its server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Longer than anything here takes; a guard against hangs, not a
/// measurement.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A command running the example binary `name` (under `GREENERY_TEST_RUNNER`
/// if it is set: qemu-user cannot execute a foreign binary by itself), built
/// first if it is missing or older than its sources (`cargo test --test examples` does not build examples; see
/// greenery's `tests/examples.rs` for why a fresh binary is used as it is).
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a test binary in PROFILE/deps");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(profile) => profile,
        None => panic!("no profile directory above {}", exe.display()),
    };
    let path = profile_dir.join("examples").join(name);
    if !is_fresh(&path, name) {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        // With the features this test was built with.
        let features: &[&str] = if cfg!(feature = "tls") { &["--features", "tls"] } else { &[] };
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "--manifest-path", manifest, "--profile", profile, "--example", name])
            .args(features);
        // A cross build (`--target T`) puts its binaries in TARGET_DIR/T/PROFILE,
        // where T is inside the directory cargo tags as a cache.
        let above = profile_dir.parent().expect("a profile directory inside the target directory");
        if above.parent().is_some_and(|dir| dir.join("CACHEDIR.TAG").exists())
            && let Some(triple) = above.file_name().and_then(|name| name.to_str())
        {
            build.args(["--target", triple]);
        }
        let built = build.status().expect("cargo runs");
        assert!(built.success(), "cargo could not build the {name} example ({built})");
    }
    assert!(path.is_file(), "the example binary {} is missing after building it", path.display());
    match std::env::var("GREENERY_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut command = Command::new(words.next().expect("a runner"));
            command.args(words).arg(path);
            command
        }
        _ => Command::new(path),
    }
}

/// Whether the binary at `path` is newer than every source it is built
/// from: greenery-http's and greenery's manifests and sources, the example,
/// the lock file.
fn is_fresh(path: &Path, name: &str) -> bool {
    fn newest(path: &Path) -> Option<SystemTime> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_dir() {
            return meta.modified().ok();
        }
        std::fs::read_dir(path).ok()?.flatten().filter_map(|entry| newest(&entry.path())).max()
    }
    let Some(built) = std::fs::metadata(path).and_then(|meta| meta.modified()).ok() else {
        return false;
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        crate_dir.join("Cargo.toml"),
        crate_dir.join("src"),
        crate_dir.join("examples").join(format!("{name}.rs")),
        crate_dir.join("../greenery/Cargo.toml"),
        crate_dir.join("../greenery/src"),
        crate_dir.join("../Cargo.lock"),
    ];
    sources.iter().filter_map(|source| newest(source)).all(|modified| modified <= built)
}

/// The `hello` example, started on a free port; killed when dropped.
struct Hello {
    child: Child,
    addr: String,
    /// What it printed on stderr after its first line, once it exits.
    rest: std::sync::mpsc::Receiver<String>,
}

impl Hello {
    fn start() -> Hello {
        Hello::start_with(&[])
    }

    /// Started with `args` after the address.
    fn start_with(args: &[&str]) -> Hello {
        let mut child = example("hello")
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hello example starts");
        let stderr = child.stderr.take().expect("a piped stderr");
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let (rest_tx, rest) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = first_tx.send(first);
            let mut text = String::new();
            let _ = lines.read_to_string(&mut text);
            let _ = rest_tx.send(text);
        });
        let line = first_rx.recv_timeout(HANG_GUARD).unwrap_or_default();
        let addr = line
            .trim_end()
            .strip_prefix("hello: listening on http://")
            .or_else(|| line.trim_end().strip_prefix("hello: listening on https://"))
            .and_then(|addr| addr.strip_suffix('/'))
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("unexpected first line from hello: {line:?}")
            })
            .to_owned();
        Hello { child, addr, rest }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) takes a pid and a signal number; the pid is our
        // child's, not yet waited for, so it names that process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for it to exit (with a guard against hangs): its status, and
    /// what it printed after its first line.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return (status, self.rest.recv_timeout(HANG_GUARD).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "hello did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one response of `hello`'s (its body is `Hello, World!`): its head.
fn read_response(reader: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the connection closed within a response: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = [0; 13];
    reader.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"Hello, World!", "{head}");
    head
}

/// Waits until nothing accepts connections at `addr` any more.
fn wait_until_refused(addr: &str) {
    let deadline = Instant::now() + HANG_GUARD;
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "{addr} still accepts connections");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hello_answers_the_request_in_flight_then_exits_0_on_sigterm_and_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut hello = Hello::start();
        let stream = TcpStream::connect(&hello.addr).unwrap();
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        // A request, and the first part of another: once the answer to the
        // first is here, the server holds the second's start.
        (&stream).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n").unwrap();
        assert!(read_response(&mut reader).starts_with("HTTP/1.1 200 OK\r\n"));
        hello.signal(signal);
        // It stops accepting; the request in flight is still answered, and
        // is the connection's last.
        wait_until_refused(&hello.addr);
        (&stream).write_all(b"\r\n").unwrap();
        let head = read_response(&mut reader);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the connection then closes");
        drop((stream, reader)); // (or the server lingers a moment, reading)
        let (status, stderr) = hello.wait();
        assert!(status.success(), "signal {signal}: hello exited with {status}; stderr:\n{stderr}");
        assert!(stderr.ends_with("hello: stopped\n"), "{stderr}");
    }
}

#[test]
fn hello_on_two_threads_answers_and_stops_gracefully() {
    let mut hello = Hello::start_with(&["--threads", "2"]);
    // Many connections, spread over the two hubs by the kernel.
    for _ in 0..50 {
        let stream = TcpStream::connect(&hello.addr).unwrap();
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        (&stream).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(read_response(&mut reader).starts_with("HTTP/1.1 200 OK\r\n"));
    }
    hello.signal(libc::SIGTERM);
    wait_until_refused(&hello.addr);
    let (status, stderr) = hello.wait();
    assert!(status.success(), "hello exited with {status}; stderr:\n{stderr}");
    assert!(stderr.contains("serving on 2 threads"), "{stderr}");
    assert!(stderr.ends_with("hello: stopped\n"), "{stderr}");
}

#[test]
fn hello_rejects_a_bad_thread_count_with_its_usage() {
    let output = example("hello").args(["127.0.0.1:0", "--threads", "none"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--threads \"none\": expected a number of threads"), "{stderr}");
    assert!(stderr.contains("usage: hello"), "{stderr}");
}

#[cfg(feature = "tls")]
#[test]
fn hello_serves_https_with_tls_cert_key() {
    use std::sync::Arc;

    use greenery_http::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("greenery-http-hello-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut hello = Hello::start_with(&["--tls", cert.to_str().unwrap(), key.to_str().unwrap()]);
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let session = ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let stream = TcpStream::connect(&hello.addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut tls = StreamOwned::new(session, stream);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).unwrap(); // a clean end: close_notify
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nHello, World!"), "{reply}");
    hello.signal(libc::SIGTERM);
    let (status, stderr) = hello.wait();
    assert!(status.success(), "hello exited with {status}; stderr:\n{stderr}");
    // A missing file is named.
    let output = example("hello")
        .args(["127.0.0.1:0", "--tls", "/nowhere/cert.pem", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nowhere/cert.pem"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn websocket_self_test_echoes_and_chats_and_drops_the_member_that_does_not_read() {
    let output = example("websocket").arg("--self-test").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "websocket --self-test: {}\n{stdout}\n{stderr}", output.status);
    for line in [
        "  eve <- hello, echo",
        "  eve <- pong",
        "  bob <- <alice> hello, everyone",
        "alice <- * dave dropped (not reading)",
        "  bob <- * alice left",
        "self-test passed",
    ] {
        assert!(stdout.lines().any(|printed| printed == line), "{line:?} not in:\n{stdout}");
    }
}
