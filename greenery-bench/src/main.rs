//! `greenery-bench <case> [--n N]`: runs one benchmark case (or `all` of them)
//! and prints one line per figure on stdout, `name value unit`, e.g.
//! `greenery_generator_roundtrip_ns 2.31 ns`. A summary of each peer's spread
//! and each case's wall time goes to stderr, as lines starting with `#`.
//!
//! # Method
//!
//! Every case measures greenery and its peers (corosensei, the `generator`
//! crate) in the same process, because the machines this runs on are shared
//! and noisy: a whole stretch can run ten times slower than the next one.
//!
//! - Each peer's `N` iterations are split into [`measure::ROUNDS`] short
//!   rounds (at least [`measure::MIN_ROUND_ITERS`] iterations each), after
//!   one untimed warm-up round.
//! - The peers take turns round by round (greenery, corosensei, generator,
//!   greenery, corosensei, ...), so a slow stretch hits them all alike.
//! - A peer's figure is the median of its rounds' nanoseconds per iteration;
//!   `*_ratio` figures divide two medians from the same run, and
//!   `*_min_ratio` figures divide the two fastest rounds.
//! - State that is not what a case measures (the suspended coroutine of a
//!   round trip, corosensei's reused stack) is made once, before the rounds.
//!
//! The `criterion` benchmarks in `benches/` measure the same operations with
//! criterion's statistics, for when the machine is quiet.

use std::process::ExitCode;
use std::time::Instant;

mod child;
mod echo_scale;
mod echo_threads;
mod generators;
mod greenlets;
mod http;
mod https;
mod hub;
mod measure;
mod net;
mod patch;
mod python;
mod scale;

use measure::Timing;

/// A benchmark case: its name, what it measures, its default size, and the
/// function that runs it with a size.
struct Case {
    name: &'static str,
    about: &'static str,
    default_n: u64,
    run: fn(u64),
}

const CASES: &[Case] = &[
    Case {
        name: "switch",
        about: "generator round trip: send a u64, yield it + 1",
        default_n: 10_000_000,
        run: generators::switch,
    },
    Case {
        name: "create",
        about: "create a generator (or coroutine) on a pooled stack, run it to completion, drop it",
        default_n: 1_000_000,
        run: generators::create,
    },
    Case {
        name: "greenlet",
        about: "two greenlets ping-ponging a u64 with switch, against greenery's generator round trip",
        default_n: 10_000_000,
        run: greenlets::switch,
    },
    Case {
        name: "greenlet_create",
        about: "create a greenlet on a pooled stack, start it, let it finish, drop it",
        default_n: 1_000_000,
        run: greenlets::create,
    },
    Case {
        name: "spawn",
        about: "spawn N green threads returning a number, join them all (vs tokio current-thread, may 1 worker)",
        default_n: 100_000,
        run: hub::spawn,
    },
    Case {
        name: "yield",
        about: "two green threads alternating with yield_now (vs tokio current-thread, may 1 worker)",
        default_n: 10_000_000,
        run: hub::yield_now,
    },
    Case {
        name: "sleep",
        about: "N green threads each sleeping 1 ms at once, joined (vs tokio current-thread, may 1 worker)",
        default_n: 100_000,
        run: hub::sleep,
    },
    Case {
        name: "queue",
        about: "messages through a bounded queue (64) between two green threads (vs tokio mpsc, may mpsc)",
        default_n: 2_000_000,
        run: hub::queue,
    },
    Case {
        name: "block_on",
        about: "a future completed by another green thread: block_on round trips over tokio channels (vs two tasks on \
                tokio current-thread)",
        default_n: 1_000_000,
        run: hub::block_on,
    },
    Case {
        name: "idle",
        about: "N green threads each blocked on an Event: resident memory per green thread",
        default_n: 100_000,
        run: hub::idle,
    },
    Case {
        name: "echo",
        about: "echo server on one thread, 50 connections, 64-byte round trips (vs tokio current-thread, may 1 worker)",
        default_n: 500_000,
        run: net::echo,
    },
    Case {
        name: "echo_scale",
        about: "N connections held open at once against an echo server in a child process: its memory \
                per connection, and after they all closed (vs tokio current-thread)",
        default_n: 10_000,
        run: echo_scale::echo_scale,
    },
    Case {
        name: "echo_threads",
        about: "echo servers on 2 threads vs 1 in a child process, unpinned (greenery's ServerThreads on 2 hubs, \
                tokio multi-thread with 2 workers vs current-thread, may 2 workers vs 1, Go with GOMAXPROCS 2 vs 1 \
                if `go` is installed), loaded by a client on 2 hubs with 64 connections of 64-byte round trips: \
                round trips per second and server CPU per round trip; N is milliseconds of load per configuration",
        default_n: 3_000,
        run: echo_threads::echo_threads,
    },
    Case {
        name: "patch",
        about: "the patch feature's costs: a read the hooks pass to libc off a hub (vs libc's read), and std's \
                TcpStream echo on a hub through the hooks (vs greenery's TcpStream); needs the bench's `patch` feature",
        default_n: 2_000_000,
        run: patch::patch,
    },
    Case {
        name: "http",
        about: "wrk -t1 -c50 against HTTP servers answering `Hello, World!` on one thread in a child process \
                (greenery-http vs hyper on tokio current-thread, may_minihttp with 1 worker); N is milliseconds of \
                load per server, in rounds of whole seconds",
        default_n: 15_000,
        run: http::http,
    },
    Case {
        name: "http_threads",
        about: "the HTTP servers on 1 and on 2 threads each (greenery-http on 2 hubs, hyper on tokio multi-thread, \
                may_minihttp with 2 workers, Go's net/http if `go` is installed), unpinned, against wrk -t1 -c50; N \
                is milliseconds of load per configuration",
        default_n: 6_000,
        run: http::http_threads,
    },
    Case {
        name: "http_scale",
        about: "N keep-alive connections, one request each, held idle at once against an HTTP server in a \
                child process: its memory per connection, and after they all closed (greenery-http vs hyper, \
                may_minihttp)",
        default_n: 10_000,
        run: http::http_scale,
    },
    Case {
        name: "https",
        about: "wrk -t1 -c50 against HTTPS servers answering `Hello, World!` on one thread in a child process \
                (greenery-http with TLS vs hyper behind tokio-rustls on tokio current-thread; the same \
                certificate, rustls with aws-lc-rs, TLS 1.3 with AES-128-GCM); N is milliseconds of load per \
                server, in rounds of whole seconds",
        default_n: 15_000,
        run: https::https,
    },
    Case {
        name: "https_scale",
        about: "N TLS keep-alive connections, one request each, held idle at once against an HTTPS server in \
                a child process: its memory per connection, and after they all closed (greenery-http vs \
                hyper with tokio-rustls)",
        default_n: 10_000,
        run: https::https_scale,
    },
    Case {
        name: "python",
        about: "Python's generators and greenlets (python/baseline.py, needs python3; greenlet optional)",
        default_n: 200_000,
        run: python::baseline,
    },
];

/// Prints one figure.
pub(crate) fn report(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.2} {unit}");
}

/// Prints a peer's median as the figure `name`, and its spread on stderr.
pub(crate) fn report_timing(name: &str, timing: &Timing) {
    report(name, timing.median, "ns");
    eprintln!(
        "# {name}: min {:.2}, median {:.2}, max {:.2} ns over {} rounds of {} iterations",
        timing.min, timing.median, timing.max, timing.rounds, timing.round_iters
    );
}

/// Prints `name`, the ratio of the medians of `a` and `b`, and `name` with
/// `_min_ratio` for `_ratio`, the ratio of their fastest rounds.
pub(crate) fn report_ratio(name: &str, a: &Timing, b: &Timing) {
    report(name, a.median / b.median, "x");
    if let Some(stem) = name.strip_suffix("_ratio") {
        report(&format!("{stem}_min_ratio"), a.min / b.min, "x");
    }
}

/// The usage message, for `--help` (stdout) and for bad arguments (stderr).
fn usage_text() -> String {
    let mut text = String::from("usage: greenery-bench <case> [--n N]\n\ncases:\n");
    for case in CASES {
        text += &format!("  {:<10} {} (default N = {})\n", case.name, case.about, case.default_n);
    }
    text += &format!("  {:<10} every case above, in turn\n", "all");
    text += "\nN is the number of iterations per peer (underscores allowed: 1_000_000).\n\
             Each figure is printed on stdout as `name value unit`; the spread of the\n\
             rounds and each case's wall time go to stderr, on lines starting with `#`.";
    text
}

/// Reports a bad command line: `problem`, then the usage; exit code 2.
fn usage_error(problem: &str) -> ExitCode {
    eprintln!("greenery-bench: {problem}\n\n{}", usage_text());
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(case_name) = args.first() else {
        return usage_error("no case given");
    };
    if case_name == echo_scale::SERVER_COMMAND {
        return echo_scale::serve_child(&args[1..]);
    }
    if case_name == http::SERVER_COMMAND {
        return http::serve_child(&args[1..]);
    }
    if case_name == https::SERVER_COMMAND {
        return https::serve_child(&args[1..]);
    }
    if matches!(case_name.as_str(), "-h" | "--help" | "help") {
        println!("{}", usage_text());
        return ExitCode::SUCCESS;
    }
    let mut n = None;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--n" if n.is_none() => match rest.next().map(|n| n.replace('_', "").parse::<u64>()) {
                Some(Ok(value)) if value > 0 => n = Some(value),
                _ => return usage_error("--n takes a positive integer"),
            },
            "--n" => return usage_error("--n given twice"),
            other => return usage_error(&format!("unexpected argument {other:?}")),
        }
    }
    let selected: Vec<&Case> = if case_name == "all" {
        CASES.iter().collect()
    } else {
        match CASES.iter().find(|case| case.name == case_name) {
            Some(case) => vec![case],
            None => return usage_error(&format!("no case named {case_name:?}")),
        }
    };
    for case in selected {
        let n = n.unwrap_or(case.default_n);
        let start = Instant::now();
        (case.run)(n);
        eprintln!("# case {} (N = {n}) took {:.2} s", case.name, start.elapsed().as_secs_f64());
    }
    ExitCode::SUCCESS
}
