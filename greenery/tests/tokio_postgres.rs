//! A real tokio-based client against a real server, from green threads:
//! `tokio-postgres` against PostgreSQL, through `greenery::tokio::run`.
//!
//! The test makes a database cluster in a temporary folder, starts
//! PostgreSQL on a free port (as the `postgres` user when it runs as root:
//! the server refuses to run as root), and stops it by its pid at the end.
//! Where PostgreSQL is not installed, it says so in one line and passes,
//! unless `GREENERY_REQUIRE_SERVERS` is set (as `.ci/run` does), where that
//! is a failure.
#![cfg(feature = "tokio")]

use std::cell::Cell;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

/// The PostgreSQL programs, from the PATH or Debian's versioned folder.
fn program(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name));
    on_path.chain(debian).find(|path| path.is_file())
}

/// A PostgreSQL server of our own, stopped (by its pid) when dropped.
struct Postgres {
    server: Child,
    port: u16,
    dir: PathBuf,
}

/// The user to run the server as when we are root.
const SERVER_USER: &str = "postgres";

fn as_server_user(command: &mut Command) -> &mut Command {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = user_ids(SERVER_USER).unwrap_or_else(|| {
            panic!("running as root, and there is no `{SERVER_USER}` user to run PostgreSQL as")
        });
        command.uid(uid).gid(gid);
    }
    command
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

impl Postgres {
    /// Starts a server, or returns `None` (having said why) where
    /// PostgreSQL is not installed.
    fn start() -> Option<Postgres> {
        let (Some(initdb), Some(postgres)) = (program("initdb"), program("postgres")) else {
            let message = "skipped: PostgreSQL is not installed (apt-get install postgresql)";
            assert!(std::env::var_os("GREENERY_REQUIRE_SERVERS").is_none(), "{message}");
            eprintln!("{message}");
            return None;
        };
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("greenery-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            let (uid, gid) = user_ids(SERVER_USER).expect("a postgres user");
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let init = as_server_user(Command::new(&initdb).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]))
        .output()
        .unwrap();
        assert!(init.status.success(), "initdb failed:\n{}", String::from_utf8_lossy(&init.stderr));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = as_server_user(
            Command::new(&postgres)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                // A backend whose client went away stops its query.
                .args(["-c", "client_connection_check_interval=100ms"])
                .arg("-k")
                .arg(&dir),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let mut postgres = Postgres { server, port, dir };
        postgres.wait_until_ready();
        Some(postgres)
    }

    /// Waits until the server accepts connections (it needs a moment).
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.server.try_wait().unwrap() {
                panic!("PostgreSQL exited at start ({status})");
            }
            let config = self.config();
            let ready = greenery::tokio::run(async move {
                match tokio_postgres::connect(&config, NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        client.simple_query("SELECT 1").await.is_ok()
                    }
                    Err(_) => false,
                }
            });
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not accept connections within a minute");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        // SAFETY: signals our own child, by its pid.
        unsafe { libc::kill(self.server.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(self.data_dir());
    }
}

#[test]
fn fifty_green_threads_query_postgres_at_once() {
    let Some(postgres) = Postgres::start() else { return };
    const THREADS: usize = 50;
    // A ticker shows that the hub runs green threads of its own meanwhile.
    let ticks = Rc::new(Cell::new(0u32));
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
    let queries: Vec<_> = (0..THREADS)
        .map(|i| {
            let config = postgres.config();
            greenery::spawn(move || {
                let started = Instant::now();
                let value: i32 = greenery::tokio::run(async move {
                    let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
                    tokio::spawn(connection);
                    let row =
                        client.query_one("SELECT $1::int4 + 0 FROM pg_sleep(0.2)", &[&(i as i32)]).await;
                    row.unwrap().get(0)
                });
                (value, started, Instant::now())
            })
        })
        .collect();
    let outcomes: Vec<_> = queries.into_iter().map(|query| query.get().unwrap()).collect();
    stop.set(true);
    ticker.get().unwrap();
    for (i, (value, ..)) in outcomes.iter().enumerate() {
        assert_eq!(*value, i as i32, "query {i} returned its own number");
    }
    // The 50 queries were in flight together: every one started before any
    // ended (one after another, the first would end before the second
    // began).
    let last_start = outcomes.iter().map(|(_, started, _)| *started).max().unwrap();
    let first_end = outcomes.iter().map(|(.., ended)| *ended).min().unwrap();
    assert!(last_start < first_end, "the queries ran one after another");
    assert!(ticks.get() > 0, "the ticker never ran while the queries waited");
}

#[test]
fn a_killed_green_thread_cancels_its_query() {
    let Some(postgres) = Postgres::start() else { return };
    let config = postgres.config();
    let waiting = greenery::spawn(move || {
        greenery::tokio::run(async move {
            let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
            // The connection is driven by this task, not one of its own, so
            // that cancelling the task closes it.
            let query = Box::pin(client.simple_query("SELECT pg_sleep(3600)"));
            match futures::future::select(query, connection).await {
                futures::future::Either::Left((outcome, _)) => outcome.map(drop),
                futures::future::Either::Right((outcome, _)) => outcome,
            }
        })
    });
    // Let it send the query, then kill it: the tokio task is dropped, which
    // closes the connection, and the server ends the backend.
    greenery::sleep(Duration::from_millis(200));
    waiting.kill().unwrap();
    assert!(waiting.get().unwrap_err().is_killed());
    let config = postgres.config();
    let sleeping = greenery::tokio::run(async move {
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
        tokio::spawn(connection);
        // The backend notices the closed connection at its next check.
        for _ in 0..100 {
            let rows = client
                .query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3600)%'", &[])
                .await
                .unwrap();
            let count: i64 = rows[0].get(0);
            if count == 0 {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        1
    });
    assert_eq!(sleeping, 0, "the killed green thread's query still runs");
}
