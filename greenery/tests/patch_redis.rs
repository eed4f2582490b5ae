//! The stock `redis` crate's synchronous client in green threads, against
//! a real `redis-server`: with the `patch` feature, 50 `BLPOP`s with a one
//! second timeout wait at once while a ticker green thread keeps ticking;
//! without it, each blocks the hub in turn.
//!
//! The test starts `redis-server` on a free port and stops it by its pid.
//! Where it is not installed, it says so in one line and passes, unless
//! `GREENERY_REQUIRE_SERVERS` is set (as `.ci/run` does).

use std::cell::Cell;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A redis-server of our own; stopped by its pid when dropped.
struct Redis {
    server: Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(server) => server,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let message = "skipped: redis-server is not installed (apt-get install redis-server)";
                assert!(std::env::var_os("GREENERY_REQUIRE_SERVERS").is_none(), "{message}");
                eprintln!("{message}");
                return None;
            }
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        let mut redis = Redis { server, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while redis.client().get_connection().is_err() {
            if let Some(status) = redis.server.try_wait().unwrap() {
                panic!("redis-server exited at start ({status})");
            }
            assert!(Instant::now() < deadline, "redis-server did not accept connections within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // SAFETY: signals our own child, by its pid.
        unsafe { libc::kill(self.server.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.server.wait();
    }
}

/// `threads` green threads each wait in `BLPOP` on an empty list for
/// `timeout`, while a ticker counts its turns: each waiter's start and end,
/// and the ticks.
fn blpops(redis: &Redis, threads: usize, timeout: f64) -> (Vec<(Instant, Instant)>, u32) {
    let ticks = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    let ticker = {
        let (ticks, stop) = (ticks.clone(), stop.clone());
        greenery::spawn(move || {
            while !stop.get() {
                greenery::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let waiters: Vec<_> = (0..threads)
        .map(|_| {
            let client = redis.client();
            greenery::spawn(move || {
                let mut connection = client.get_connection().unwrap();
                let started = Instant::now();
                let popped: Option<(String, String)> =
                    redis::cmd("BLPOP").arg("greenery:empty").arg(timeout).query(&mut connection).unwrap();
                assert_eq!(popped, None, "the list is empty: BLPOP times out");
                (started, Instant::now())
            })
        })
        .collect();
    let spans = waiters.into_iter().map(|waiter| waiter.get().unwrap()).collect();
    stop.set(true);
    ticker.get().unwrap();
    (spans, ticks.get())
}

#[test]
fn blpop_from_many_green_threads() {
    let Some(redis) = Redis::start() else { return };
    if cfg!(feature = "patch") {
        let (spans, ticks) = blpops(&redis, 50, 1.0);
        // Every BLPOP started before any ended: they waited together.
        let last_start = spans.iter().map(|(started, _)| *started).max().unwrap();
        let first_end = spans.iter().map(|(_, ended)| *ended).min().unwrap();
        assert!(last_start < first_end, "the BLPOPs ran one after another");
        assert!(ticks > 1, "the ticker ran while they waited ({ticks} ticks)");
    } else {
        // Each BLPOP blocks the OS thread, and so the hub: one after
        // another, and the ticker never runs meanwhile.
        let (spans, _) = blpops(&redis, 3, 0.2);
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "without `patch`, a BLPOP blocks the hub until it ends");
        }
    }
}

#[cfg(feature = "patch")]
#[test]
fn a_value_pushed_by_one_green_thread_is_popped_by_another() {
    let Some(redis) = Redis::start() else { return };
    let client = redis.client();
    let popper = greenery::spawn(move || {
        let mut connection = client.get_connection().unwrap();
        let popped: Option<(String, String)> =
            redis::cmd("BLPOP").arg("greenery:queue").arg(5.0).query(&mut connection).unwrap();
        popped
    });
    let client = redis.client();
    let pusher = greenery::spawn(move || {
        let mut connection = client.get_connection().unwrap();
        greenery::sleep(Duration::from_millis(20));
        let _: i64 = redis::cmd("RPUSH").arg("greenery:queue").arg("hello").query(&mut connection).unwrap();
    });
    // The popper waits on the hub; the pusher runs and pushes.
    assert_eq!(popper.get().unwrap(), Some(("greenery:queue".to_owned(), "hello".to_owned())));
    pusher.get().unwrap();
}
