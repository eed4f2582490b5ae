//! The `echo_scale` case: `N` connections held open at once against an echo
//! server on one thread in a child process, and the server's resident
//! memory per connection (greenery's `StreamServer` with the `echo_server`
//! example's handler against tokio's current-thread runtime). The run itself is [`crate::scale`]'s: each
//! connection makes one round trip of [`MESSAGE`] bytes once connected, and
//! [`ROUND_TRIPS`] more once all are open.

use std::io;
use std::process::ExitCode;

use crate::child::{announce, server_arg, set_up_server};
use crate::scale::{self, Scenario, Target};

/// The `echo_server` example itself, compiled in so that greenery's server
/// here runs its connection handler as shipped (the rest of it, `main`
/// and its command line, is not used).
#[allow(dead_code)]
#[path = "../../greenery/examples/echo_server.rs"]
mod example;

/// The hidden command that runs an echo server in a child process:
/// `greenery-bench __echo_server greenery|tokio` on one thread, or
/// `__echo_server greenery|tokio|may:THREADS` on that many (the
/// `echo_threads` case). It prints the address it listens on as one line on
/// stdout, and exits when its stdin closes (when the benchmark that started
/// it exits, whichever way).
pub(crate) const SERVER_COMMAND: &str = "__echo_server";

/// Round trips each connection makes once all are open.
const ROUND_TRIPS: u64 = 10;
/// Bytes per message.
const MESSAGE: usize = 64;

/// The servers the scale run loads, by the name of their figures and the
/// argument of [`SERVER_COMMAND`] (the same).
const SERVERS: [Target; 2] =
    [Target { name: "greenery", arg: "greenery" }, Target { name: "tokio", arg: "tokio" }];

/// The `echo_scale` case: `n` connections to each server in turn.
pub(crate) fn echo_scale(n: u64) {
    let scenario = Scenario {
        case: "echo_scale",
        command: SERVER_COMMAND,
        wrap: scale::plain,
        round_trip,
        round_trips: ROUND_TRIPS,
        what: "round trips of 64 bytes",
    };
    scale::run(&scenario, n, &SERVERS);
}

/// The hidden server command: `args` is the rest of the command line after
/// [`SERVER_COMMAND`].
pub(crate) fn serve_child(args: &[String]) -> ExitCode {
    let parsed = match args {
        [arg] => server_arg(arg),
        _ => None,
    };
    let served: Box<dyn FnOnce() -> io::Result<()>> = match parsed {
        Some(("greenery", None)) => Box::new(serve_greenery),
        Some(("tokio", None)) => Box::new(serve_tokio),
        Some(("greenery", Some(threads))) => Box::new(move || serve_greenery_on(threads)),
        Some(("tokio", Some(threads))) => Box::new(move || serve_tokio_on(threads)),
        Some(("may", Some(threads))) => Box::new(move || serve_may_on(threads)),
        _ => {
            eprintln!(
                "greenery-bench {SERVER_COMMAND}: expected `greenery` or `tokio`, or `greenery`, `tokio` or `may` \
                 with `:THREADS`, got {args:?}"
            );
            return ExitCode::from(2);
        }
    };
    set_up_server(SERVER_COMMAND);
    if let Err(err) = served() {
        eprintln!("greenery-bench {SERVER_COMMAND} {}: {err}", args[0]);
    }
    ExitCode::FAILURE
}

/// greenery's echo server on this thread's hub: a `StreamServer` with the
/// `echo_server` example's own handler.
fn serve_greenery() -> io::Result<()> {
    let server = greenery::net::StreamServer::bind("127.0.0.1:0", example::echo)?;
    server.start()?;
    greenery::yield_now(); // the accept loop starts, and parks, before the baseline
    announce(server.local_addrs()[0])?;
    server.serve_forever()
}

/// tokio's echo server on a current-thread runtime.
fn serve_tokio() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        crate::net::tokio_serve(listener).await;
        Ok(())
    })
}

/// greenery's echo server on `threads` hubs, each on an OS thread of its
/// own with a listener of its own on the same address (`SO_REUSEPORT`):
/// [`ServerThreads`](greenery::net::ServerThreads) with the same handler as
/// [`serve_greenery`]'s.
fn serve_greenery_on(threads: usize) -> io::Result<()> {
    let servers = greenery::net::ServerThreads::start(threads, "127.0.0.1:0", |_hub, listener| {
        greenery::net::StreamServer::new(listener, crate::net::greenery_echo)
    })?;
    announce(servers.local_addr())?;
    servers.wait()
}

/// tokio's echo server on `threads` threads: its current-thread runtime for
/// one (as [`serve_tokio`]), its multi-thread runtime with that many
/// workers for more.
fn serve_tokio_on(threads: usize) -> io::Result<()> {
    if threads == 1 {
        return serve_tokio();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        crate::net::tokio_serve(listener).await;
        Ok(())
    })
}

/// may's echo server with `threads` workers, unpinned (may pins its
/// workers to the first CPUs unless told not to).
fn serve_may_on(threads: usize) -> io::Result<()> {
    may::config().set_workers(threads).set_worker_pin(false);
    let listener = may::net::TcpListener::bind("127.0.0.1:0")?;
    announce(listener.local_addr()?)?;
    // SAFETY: the coroutine touches no thread-local storage (may's
    // requirement: it can run on any of its worker threads).
    let acceptor = unsafe { may::coroutine::spawn(move || crate::net::may_serve(listener)) };
    acceptor.join().map_err(|_| io::Error::other("may's accept loop panicked"))
}

/// Sends a message particular to connection `id` and `round`, and checks
/// that the same bytes come back.
fn round_trip(stream: &mut dyn scale::Duplex, id: u64, round: u64) -> Result<(), String> {
    let message: [u8; MESSAGE] =
        std::array::from_fn(|i| (id.wrapping_mul(31).wrapping_add(round * 7).wrapping_add(i as u64)) as u8);
    let mut back = [0; MESSAGE];
    stream.write_all(&message).map_err(|err| format!("round trip {round}: write: {err}"))?;
    stream.read_exact(&mut back).map_err(|err| format!("round trip {round}: read: {err}"))?;
    if back != message {
        return Err(format!("round trip {round}: the echo differs from what was sent"));
    }
    Ok(())
}
