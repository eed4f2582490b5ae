//! The stock `redis` crate's blocking client, made cooperative by the
//! `patch` feature: one OS thread, many green threads, each with its
//! own ordinary `redis::Connection`.
//!
//! ```text
//! cargo run --release -p greenery --features patch --example redis_fanout -- [URL [KEYS [CONCURRENCY]]]
//! ```
//!
//! Without a URL (or with `-`) the example starts a `redis-server` of its
//! own on a free port of 127.0.0.1 and stops it by its pid at the end
//! (`apt-get install redis-server` provides it). Defaults: 2000 keys, 50
//! green threads.
//!
//! Three rounds, each timed:
//!
//! 1. *fan-out writes*: CONCURRENCY green threads `SET` the KEYS keys
//!    between them, each through its own connection;
//! 2. *fan-out reads*: they `GET` them back and check every value;
//! 3. *waiters*: CONCURRENCY green threads wait in `BLPOP` on lists of
//!    their own while one more green thread pushes to each list after
//!    200 ms. With the hooks all the waits overlap, so the round takes
//!    about 200 ms; a blocking client without them would hold the one OS
//!    thread in the first `BLPOP` and never reach the pusher.
//!
//! Prints one line per round and exits with status 1 if a value read back
//! differs from the one written, or a waiter got the wrong element.

use std::io;
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args.next().filter(|url| url != "-");
    let keys: usize = args.next().map_or(2000, |n| n.parse().expect("KEYS must be a number"));
    let concurrency: usize = args.next().map_or(50, |n| n.parse().expect("CONCURRENCY must be a number"));
    assert!(concurrency > 0, "CONCURRENCY must be at least 1");

    let mut own_server = None;
    let url = match url {
        Some(url) => url,
        None => match OwnServer::start() {
            Ok(server) => {
                let url = server.url();
                own_server = Some(server);
                url
            }
            Err(err) => {
                eprintln!("redis_fanout: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let client = match redis::Client::open(url.as_str()) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("redis_fanout: {url} is not a redis URL: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The main thread is a green thread of its own thread's hub already.
    let outcome = fan_out(&client, keys, concurrency);
    drop(own_server);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("redis_fanout: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The three rounds; the first error ends the run.
fn fan_out(client: &redis::Client, keys: usize, concurrency: usize) -> Result<(), String> {
    assert!(greenery::patch::is_active(), "built without the patch feature");
    let run = format!("greenery-fanout:{}", std::process::id());
    let connect = || client.get_connection().map_err(|err| format!("cannot connect to redis: {err}"));

    // 1 and 2: writes, then reads, KEYS keys split among the green threads.
    for round in ["SET", "GET"] {
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|worker| {
                let mut connection = connect();
                let run = run.clone();
                greenery::spawn(move || -> Result<(), String> {
                    let connection = connection.as_mut().map_err(|err| err.clone())?;
                    for key in (worker..keys).step_by(concurrency) {
                        let name = format!("{run}:{key}");
                        let value = format!("value {key}");
                        if round == "SET" {
                            let () =
                                connection.set(&name, &value).map_err(|err| format!("SET {name}: {err}"))?;
                        } else {
                            let got: String =
                                connection.get(&name).map_err(|err| format!("GET {name}: {err}"))?;
                            if got != value {
                                return Err(format!("GET {name} returned {got:?}, not {value:?}"));
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.get().map_err(|panic| format!("a worker panicked: {panic}"))??;
        }
        let elapsed = started.elapsed();
        println!(
            "{round} x {keys} through {concurrency} green threads: {:.0} ms ({:.0} commands/s)",
            elapsed.as_secs_f64() * 1e3,
            keys as f64 / elapsed.as_secs_f64()
        );
    }

    // 3: every waiter blocks in BLPOP at once; the pusher wakes them.
    let started = Instant::now();
    let waiters: Vec<_> = (0..concurrency)
        .map(|waiter| {
            let mut connection = connect();
            let list = format!("{run}:list:{waiter}");
            greenery::spawn(move || -> Result<Duration, String> {
                let connection = connection.as_mut().map_err(|err| err.clone())?;
                let popped: Option<(String, String)> =
                    connection.blpop(&list, 10.0).map_err(|err| format!("BLPOP {list}: {err}"))?;
                match popped {
                    Some((_, element)) if element == format!("for {waiter}") => Ok(started.elapsed()),
                    other => Err(format!("BLPOP {list} returned {other:?}")),
                }
            })
        })
        .collect();
    let mut pusher = connect()?;
    greenery::sleep(Duration::from_millis(200));
    for waiter in 0..concurrency {
        let list = format!("{run}:list:{waiter}");
        let _: usize =
            pusher.rpush(&list, format!("for {waiter}")).map_err(|err| format!("RPUSH {list}: {err}"))?;
    }
    let mut last = Duration::ZERO;
    for waiter in waiters {
        last = last.max(waiter.get().map_err(|panic| format!("a waiter panicked: {panic}"))??);
    }
    println!(
        "BLPOP x {concurrency}, all waiting at once, woken after 200 ms: the last returned at {:.0} ms",
        last.as_secs_f64() * 1e3
    );

    // Leave the server as we found it.
    let names: Vec<String> = (0..keys).map(|key| format!("{run}:{key}")).collect();
    for chunk in names.chunks(500) {
        let _: usize = pusher.del(chunk).map_err(|err| format!("DEL: {err}"))?;
    }
    Ok(())
}

/// A `redis-server` of the example's own on a free port, stopped by its pid
/// when dropped.
struct OwnServer {
    server: Child,
    port: u16,
}

impl OwnServer {
    fn start() -> Result<OwnServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("cannot find a free port: {err}"))?
            .port();
        let server = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| match err.kind() {
                io::ErrorKind::NotFound => {
                    "redis-server is not installed (apt-get install redis-server), and no URL was given"
                        .to_string()
                }
                _ => format!("cannot start redis-server: {err}"),
            })?;
        let mut own = OwnServer { server, port };
        let client = redis::Client::open(own.url()).map_err(|err| err.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get_connection().is_err() {
            if let Ok(Some(status)) = own.server.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            if Instant::now() > deadline {
                return Err("redis-server did not accept connections within 30 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(own)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, which we have not
        // waited for yet, so the pid is still ours.
        unsafe { libc::kill(self.server.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.server.wait();
    }
}
