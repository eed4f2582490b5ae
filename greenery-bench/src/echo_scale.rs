//! The `echo_scale` case: `N` connections held open at once against an echo
//! server on one thread in a child process, and the server's resident
//! memory per connection (greenery's `StreamServer` against tokio's
//! current-thread runtime). The run itself is [`crate::scale`]'s: each
//! connection makes one round trip of [`MESSAGE`] bytes once connected, and
//! [`ROUND_TRIPS`] more once all are open.

use std::io;
use std::process::ExitCode;

use crate::child::{announce, set_up_server};
use crate::scale::{self, Scenario, Target};

/// The hidden command that runs an echo server in a child process:
/// `greenery-bench __echo_server greenery|tokio`. It prints the address it
/// listens on as one line on stdout, and exits when its stdin closes (when
/// the benchmark that started it exits, whichever way).
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
    let served = match args {
        [name] if name == "greenery" => serve_greenery,
        [name] if name == "tokio" => serve_tokio,
        _ => {
            eprintln!("greenery-bench {SERVER_COMMAND}: expected `greenery` or `tokio`, got {args:?}");
            return ExitCode::from(2);
        }
    };
    set_up_server(SERVER_COMMAND);
    if let Err(err) = served() {
        eprintln!("greenery-bench {SERVER_COMMAND} {}: {err}", args[0]);
    }
    ExitCode::FAILURE
}

/// greenery's echo server (the `echo_server` example's) on this thread's hub.
fn serve_greenery() -> io::Result<()> {
    let server = greenery::net::StreamServer::bind("127.0.0.1:0", crate::net::greenery_echo)?;
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
