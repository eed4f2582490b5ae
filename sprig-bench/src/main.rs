//! `sprig-bench <case> [--n N]`: runs one benchmark case and prints one line
//! per figure, `name value unit`.
//!
//! Every case measures sprig and its peers in the same process, one after
//! the other, so that their ratio is meaningful on a noisy machine.

use std::process::ExitCode;
use std::time::Instant;

mod generators;

/// A benchmark case: its name, its default size, and the function that runs
/// it with a size.
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
        about: "create a generator on a pooled stack, run it to completion, drop it",
        default_n: 1_000_000,
        run: generators::create,
    },
];

/// Prints one figure.
pub(crate) fn report(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.2} {unit}");
}

/// Nanoseconds per iteration of `f`, which runs `n` iterations.
pub(crate) fn ns_per_iter(n: u64, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / n as f64
}

fn usage() -> ExitCode {
    eprintln!("usage: sprig-bench <case> [--n N]\n\ncases:");
    for case in CASES {
        eprintln!(
            "  {:<10} {} (default N = {})",
            case.name, case.about, case.default_n
        );
    }
    eprintln!("  {:<10} every case above, in turn", "all");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(case_name) = args.first() else {
        return usage();
    };
    let n = match args.get(1).map(String::as_str) {
        None => None,
        Some("--n") => match args
            .get(2)
            .and_then(|n| n.replace('_', "").parse::<u64>().ok())
        {
            Some(n) if n > 0 && args.len() == 3 => Some(n),
            _ => return usage(),
        },
        Some(_) => return usage(),
    };
    let selected: Vec<&Case> = if case_name == "all" {
        CASES.iter().collect()
    } else {
        match CASES.iter().find(|case| case.name == case_name) {
            Some(case) => vec![case],
            None => {
                eprintln!("sprig-bench: no case named {case_name:?}");
                return usage();
            }
        }
    };
    for case in selected {
        (case.run)(n.unwrap_or(case.default_n));
    }
    ExitCode::SUCCESS
}
