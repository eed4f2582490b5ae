//! The examples' command lines: runs the example binaries and checks what
//! they print.

#[path = "support/mod.rs"]
#[allow(dead_code)] // `this_binary`: these tests run the examples, not themselves
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Longer than any example takes; a guard against hangs, not a measurement.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The example binary `name`, with `args`; built first if it is missing or
/// older than its sources.
///
/// `cargo test` builds the examples before it runs the tests, but
/// `cargo test --test examples` does not: it would run missing or stale
/// binaries. So a binary older than any of greenery's sources is rebuilt with the
/// profile of this test binary, which lives in `target/PROFILE/deps`, the
/// examples being in `target/PROFILE/examples`. A fresh binary is used as it
/// is: building it again through cargo would resolve the dependencies' features
/// for greenery alone, not for the whole workspace as `cargo test --workspace`
/// does, and recompile greenery for nothing.
fn example(name: &str, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a test binary in PROFILE/deps");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(profile) => profile,
        None => panic!("no profile directory above {}", exe.display()),
    };
    let path: PathBuf = profile_dir.join("examples").join(name);
    if !is_fresh(&path, name) {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "--manifest-path",
            manifest,
            "--profile",
            profile,
            "--example",
            name,
        ]);
        // Examples that need the hooks (`required-features = ["patch"]`)
        // build only where this test binary was built with them too.
        if cfg!(feature = "patch") {
            build.args(["--features", "patch"]);
        }
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
    let mut command = support::command(&path);
    command.args(args);
    command
}

/// Whether the example binary at `path` exists and is newer than every source
/// it is built from: greenery's manifest, its `src` tree and the example's file
/// (the lock file too, when there is one).
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
        crate_dir.join("../Cargo.lock"),
    ];
    sources.iter().filter_map(|source| newest(source)).all(|modified| modified <= built)
}

/// Runs `command`, asserts it exited with status 0, and returns its output.
fn run_ok(command: Command) -> String {
    let described = format!("{command:?}");
    let outcome = support::run(command, HANG_GUARD);
    assert!(
        outcome.status.success(),
        "{described} exited with {}\nstdout:\n{}\nstderr:\n{}",
        outcome.status,
        outcome.stdout,
        outcome.stderr
    );
    outcome.stdout
}

#[test]
fn chat_server_self_test_broadcasts_to_the_others_and_drops_a_client_that_does_not_read() {
    let stdout = run_ok(example("chat_server", &["--self-test"]));
    let lines: Vec<&str> = stdout.lines().collect();
    // Each client's part of the transcript, in order; the flood's length
    // varies with the machine's socket buffers.
    let transcript = [
        "alice <- * welcome alice; 0 others here",
        "  bob <- * welcome bob; 1 others here",
        "alice <- * bob joined",
        "carol <- * welcome carol; 2 others here",
        "alice <- * carol joined",
        "  bob <- * carol joined",
        "alice -> hello, everyone",
        "  bob <- <alice> hello, everyone",
        "carol <- <alice> hello, everyone",
        "  bob -> hi alice",
        "alice <- <bob> hi alice",
        "carol <- <bob> hi alice",
        "alice <- * carol left",
        "  bob <- * carol left",
        "alice <- * dave joined",
        "  bob <- * dave joined",
        "alice <- * dave dropped (not reading)",
    ];
    assert_eq!(lines[..transcript.len()], transcript, "stdout:\n{stdout}");
    // Then alice's flood, as long as it took dave's buffers to fill.
    let rest = &lines[transcript.len()..];
    let sent: u64 = rest
        .first()
        .and_then(|line| line.strip_prefix("alice -> "))
        .and_then(|line| line.strip_suffix(" flood lines, then: still here"))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("alice's flood line missing; stdout:\n{stdout}"));
    assert!(sent > 0);
    let bob_flood = format!("  bob <- {sent} flood lines from alice, in order, and:");
    let tail = [
        bob_flood.as_str(),
        "  bob <- * dave dropped (not reading)",
        "  bob <- <alice> still here",
        " dave <- (the server hung up)",
        "  bob <- * alice left",
        "self-test passed",
    ];
    assert_eq!(rest[1..], tail, "stdout:\n{stdout}");
    assert!(!stdout.contains("alice <- <alice>"), "nothing is echoed to its sender");
}

#[test]
fn fetcher_times_out_exactly_the_slow_paths_and_keeps_the_servers_load_within_the_pool() {
    // Every fifth path takes five times the timeout (it must time out); the
    // others take at most 20 ms, far below 1000 ms.
    let stdout = run_ok(example("fetcher", &["40", "8", "1000"]));
    let summary = stdout.lines().next().unwrap_or_else(|| panic!("no summary; stdout:\n{stdout}"));
    let words: Vec<&str> = summary.split([' ', ',', ';', ':']).filter(|word| !word.is_empty()).collect();
    let count = |after: &str| -> usize {
        let at = words
            .iter()
            .position(|word| *word == after)
            .unwrap_or_else(|| panic!("{after:?} in {summary:?}"));
        words[at - 1].parse().unwrap_or_else(|_| panic!("a count before {after:?} in {summary:?}"))
    };
    assert!(summary.starts_with("40 fetches, 8 at a time, 1000 ms timeout: "), "{summary}");
    assert_eq!((count("ok"), count("timed"), count("failed")), (32, 8, 0), "{summary}");
    let most: usize = summary
        .split_once("at most ")
        .and_then(|(_, rest)| rest.strip_suffix(" requests at the server at once"))
        .and_then(|most| most.parse().ok())
        .unwrap_or_else(|| panic!("the server's load in {summary:?}"));
    assert!((1..=8).contains(&most), "{summary}");
}

/// The stock redis client in green threads: the example's exit status says
/// every value came back as written and every `BLPOP` got its own element.
/// Its waiters' `BLPOP`s have a 10 s timeout and the pusher runs only once
/// they all wait, so without the hooks the first one would hold the thread
/// for 10 s and come back empty, failing the run; success means they
/// waited together.
#[cfg(feature = "patch")]
#[test]
fn redis_fanout_writes_reads_and_wakes_every_waiter_through_the_stock_client() {
    if let Err(err) = Command::new("redis-server").arg("--version").output() {
        let message = format!("skipped: redis-server cannot run ({err}; apt-get install redis-server)");
        assert!(std::env::var_os("GREENERY_REQUIRE_SERVERS").is_none(), "{message}");
        eprintln!("{message}");
        return;
    }
    let stdout = run_ok(example("redis_fanout", &["-", "300", "20"]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "stdout:\n{stdout}");
    assert!(lines[0].starts_with("SET x 300 through 20 green threads: "), "{stdout}");
    assert!(lines[1].starts_with("GET x 300 through 20 green threads: "), "{stdout}");
    assert!(lines[2].starts_with("BLPOP x 20, all waiting at once, woken after 200 ms: "), "{stdout}");
}

#[test]
fn tree_walk_prints_every_word_in_order_at_its_depth() {
    let stdout = run_ok(example("tree_walk", &[]));
    let lines: Vec<&str> = stdout.lines().collect();
    let (count, words) = lines.split_last().expect("some output");
    assert_eq!(*count, "15 words");
    let printed: Vec<&str> = words.iter().map(|line| line.trim_start()).collect();
    let mut sorted = printed.clone();
    sorted.sort_unstable();
    assert_eq!(printed, sorted, "an in-order walk of a search tree");
    assert_eq!(printed.len(), 15);
    // The first word inserted is the root, at depth 0; others are indented
    // two spaces per level.
    assert!(words.contains(&"coroutines"));
    assert!(words.iter().any(|line| line.starts_with("    ")), "some words are deeper than 1");
}

/// The `echo_server` example, started on a free port; killed when dropped.
struct EchoServer {
    child: std::process::Child,
    addr: String,
}

impl EchoServer {
    fn start() -> EchoServer {
        use std::io::BufRead;
        let mut command = example("echo_server", &["127.0.0.1:0"]);
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the echo_server example starts");
        let stderr = child.stderr.take().expect("a piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {} // keep the pipe drained
        });
        let line = match rx.recv_timeout(HANG_GUARD) {
            Ok(Some(line)) => line,
            outcome => {
                let _ = child.kill();
                panic!("echo_server printed no address line: {outcome:?}");
            }
        };
        let addr = line
            .strip_prefix("echo_server: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from echo_server: {line:?}"))
            .to_owned();
        EchoServer { child, addr }
    }
}

impl EchoServer {
    /// Waits for the server to exit (with a guard against hangs).
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "echo_server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn echo_client_loads_the_echo_server_and_prints_its_round_trips() {
    let server = EchoServer::start();
    let stdout = run_ok(example("echo_client", &[&server.addr, "4", "100", "0.3"]));
    let line = stdout.lines().next().unwrap_or_else(|| panic!("no output"));
    let (rate, rest) = line.split_once(" round trips/s (").unwrap_or_else(|| panic!("{line:?}"));
    let rate: f64 = rate.parse().unwrap_or_else(|_| panic!("a rate in {line:?}"));
    let count: u64 = rest
        .split_once(" round trips of 100 bytes over 4 connections in ")
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or_else(|| panic!("a count of round trips in {line:?}"));
    assert!(count > 0 && rate > 0.0, "{line}");
    assert!(!line.contains("failed"), "{line}");
}

#[test]
fn echo_client_rejects_a_bad_command_line_with_one_error_and_the_usage() {
    let cases: [(&[&str], &str); 4] = [
        (&["127.0.0.1:7007", "none"], "CONNECTIONS must be a whole number above 0"),
        (&["127.0.0.1:7007", "3", "0"], "SIZE must be a whole number above 0"),
        (&["127.0.0.1:7007", "3", "64", "-1"], "SECONDS must be a number above 0"),
        (&["127.0.0.1:7007", "3", "64", "1", "extra"], "unexpected argument \"extra\""),
    ];
    for (args, problem) in cases {
        let outcome = support::run(example("echo_client", args), HANG_GUARD);
        assert_eq!(outcome.status.code(), Some(2), "{args:?}: {}", outcome.stderr);
        assert!(
            outcome.stderr.starts_with(&format!("echo_client: {problem}")),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(outcome.stderr.contains("usage: echo_client"), "{args:?}: {}", outcome.stderr);
    }
    // Nothing listening: one error, not one per connection.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let outcome = support::run(example("echo_client", &[&free, "20"]), HANG_GUARD);
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.starts_with(&format!("echo_client: cannot connect to {free}")),
        "{}",
        outcome.stderr
    );
}

/// The example holds a buffer only from a read to the end of its write: a
/// connection whose peer does not read yet (its write waits, holding the
/// buffer) and others sharing the spare buffer meanwhile all get their own
/// bytes back, in order.
#[test]
fn echo_server_echoes_more_than_its_buffer_while_other_connections_share_it() {
    use std::io::{Read, Write};
    let server = EchoServer::start();
    let addr = server.addr.clone();
    let bulk: Vec<u8> = (0..4 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(HANG_GUARD)).unwrap();
    // Written from another thread: the server's writes back fill the
    // socket's buffers while nobody reads them yet.
    let mut writer = slow.try_clone().unwrap();
    let sent = bulk.clone();
    let writing = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let mut others: Vec<_> = (0..4).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    for round in 0..20_u8 {
        for (index, other) in others.iter_mut().enumerate() {
            other.set_read_timeout(Some(HANG_GUARD)).unwrap();
            round_trip(other, &[round.wrapping_mul(7).wrapping_add(index as u8); 300]);
        }
    }
    let mut back = vec![0; bulk.len()];
    slow.read_exact(&mut back).unwrap();
    writing.join().unwrap();
    assert!(back == bulk, "the bulk echo came back changed");
}

/// Sends `message` and reads the same bytes back.
fn round_trip(stream: &mut std::net::TcpStream, message: &[u8]) {
    use std::io::{Read, Write};
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

/// Waits until nothing accepts connections at `addr` any more.
fn wait_until_refused(addr: &str) {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "{addr} still accepts connections");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_server_stops_on_sigterm_and_sigint_once_its_connections_finish() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = EchoServer::start();
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        round_trip(&mut stream, b"before the signal");
        let pid = libc::pid_t::try_from(server.child.id()).unwrap();
        // SAFETY: kill(2) takes a pid and a signal number; the pid is our
        // child's, not yet waited for, so it names that process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        // It stops accepting, and serves the connection it has meanwhile.
        wait_until_refused(&server.addr);
        round_trip(&mut stream, b"after the signal, while stopping");
        // Once that connection is done, it exits with success.
        drop(stream);
        let status = server.wait();
        assert!(status.success(), "signal {signal}: echo_server exited with {status}");
    }
}
