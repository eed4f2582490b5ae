//! A load generator for the `echo_server` example: CONNECTIONS green
//! threads, each in a closed loop (send a SIZE-byte message, wait for it to
//! come back), for SECONDS; prints the round trips per second.
//!
//! ```text
//! cargo run --release --example echo_client -- 127.0.0.1:PORT [CONNECTIONS [SIZE [SECONDS]]]
//! ```
//!
//! Defaults: 50 connections, 64-byte messages, 5 seconds.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sprig::net::TcpStream;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let mut number = |default: f64| args.next().map_or(default, |arg| arg.parse().expect("a number"));
    let connections = number(50.0) as usize;
    let size = number(64.0) as usize;
    let seconds = number(5.0);

    let round_trips = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, round_trips) = (addr.clone(), round_trips.clone());
            sprig::spawn(move || -> std::io::Result<()> {
                let mut stream = TcpStream::connect(addr.as_str())?;
                stream.set_nodelay(true)?;
                let message = vec![b'x'; size];
                let mut back = vec![0; size];
                while Instant::now() < deadline {
                    stream.write_all(&message)?;
                    stream.read_exact(&mut back)?;
                    round_trips.set(round_trips.get() + 1);
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = 0;
    for client in clients {
        match client.get() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                failed += 1;
                eprintln!("echo_client: {err}");
            }
            Err(err) => {
                failed += 1;
                eprintln!("echo_client: {err}");
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:.0} round trips/s ({} round trips of {size} bytes over {connections} connections in {elapsed:.2} s{})",
        round_trips.get() as f64 / elapsed,
        round_trips.get(),
        if failed > 0 { format!(", {failed} connections failed") } else { String::new() }
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
