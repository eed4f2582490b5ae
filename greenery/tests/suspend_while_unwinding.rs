//! A destructor that suspends its coroutine while greenery unwinds the
//! coroutine's stack (for a close or a drop) cannot be honoured: the
//! unwinding would stay frozen half-way, with the thread's panic count
//! raised in the resumer. greenery reports it by name and aborts.
//!
//! A destructor that suspends during a panic of the body's own is not
//! caught by greenery (telling it apart from a resumer that is itself panicking
//! would cost every switch a check). Resuming it lets the panic carry on;
//! closing it raises a panic inside a running destructor, which Rust itself
//! turns into an abort.
//!
//! Each scenario aborts its process, so this test binary (built without the
//! libtest harness) runs them in child processes.

use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use greenery::{Builder, Co, Generator, Yielder};
use support::this_binary;

mod reports;

mod support;

const SCENARIO: &str = "GREENERY_UNWIND_SCENARIO";

/// Python's `finally: yield value`.
struct YieldOnDrop<'a>(&'a Co<(), i32>, i32);

impl Drop for YieldOnDrop<'_> {
    fn drop(&mut self) {
        self.0.yield_(self.1);
    }
}

fn yields_in_finally() -> Generator<(), i32> {
    Builder::new()
        .name("yields-in-finally")
        .generator(|co, ()| {
            let _finally = YieldOnDrop(co, 2);
            co.yield_(1);
        })
        .unwrap()
}

fn run_scenario(name: &str) {
    match name {
        "close" => {
            let mut generator = yields_in_finally();
            generator.next();
            let _ = generator.close();
        }
        "drop" => {
            let mut generator = yields_in_finally();
            generator.next();
            drop(generator);
        }
        "panic" => {
            let mut generator: Generator<(), i32> = Builder::new()
                .name("panics-then-yields")
                .generator(|co, ()| {
                    let _finally = YieldOnDrop(co, 2);
                    co.yield_(1);
                    panic!("boom");
                })
                .unwrap();
            generator.next();
            // The panic unwinds the body; the destructor yields 2 half-way.
            let yielded = panic::catch_unwind(AssertUnwindSafe(|| generator.next()));
            assert!(matches!(yielded, Ok(Some(2))));
            drop(generator); // closes: a panic inside a running destructor
        }
        "coroutine-drop" => {
            struct SuspendOnDrop<'a>(&'a Yielder<(), ()>);
            impl Drop for SuspendOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.suspend(());
                }
            }
            let mut co = Builder::new()
                .name("suspends-on-drop")
                .coroutine(|yielder: &Yielder<(), ()>, ()| {
                    let _guard = SuspendOnDrop(yielder);
                    yielder.suspend(());
                })
                .unwrap();
            co.resume(());
            drop(co);
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("scenario {name} finished without aborting");
}

/// The legitimate cousin: the resumer is panicking and drops a generator,
/// whose body catches the close and yields once more. Nothing on the
/// generator's stack is unwinding at that yield, so it is allowed, and the
/// drop closes the generator again until it finishes.
fn yielding_after_a_caught_close_during_a_panic_is_allowed() -> bool {
    let reports = reports::capture();
    let mut generator = Generator::<(), i32>::new(|co, ()| {
        for value in 0.. {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(value)))
                && value >= 3
            {
                panic::resume_unwind(payload);
            }
        }
    });
    generator.next();
    let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
        let _owned = generator;
        panic::resume_unwind(Box::new("the resumer fails"));
    }));
    let reported = reports.lines().len() == 1
        && reports.lines()[0].contains("ignored close while being dropped; closing it again");
    outcome.is_err() && reported
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        run_scenario(&scenario);
        return;
    }
    let mut failed = 0;
    let cases = [
        (
            "a_yield_in_finally_during_close_aborts_with_the_name",
            "close",
            "greenery: 'yields-in-finally' tried to suspend while its stack was unwinding",
        ),
        (
            "a_yield_in_finally_during_drop_aborts_with_the_name",
            "drop",
            "greenery: 'yields-in-finally' tried to suspend while its stack was unwinding",
        ),
        (
            "a_suspend_in_a_destructor_during_a_forced_unwind_aborts",
            "coroutine-drop",
            "greenery: 'suspends-on-drop' tried to suspend while its stack was unwinding",
        ),
        (
            "closing_a_generator_suspended_during_its_own_panic_aborts",
            "panic",
            "panic in a destructor during cleanup",
        ),
    ];
    for (test, scenario, expected) in cases {
        let mut command = this_binary();
        command.env(SCENARIO, scenario);
        let outcome = support::run(command, Duration::from_secs(120));
        if outcome.status.signal() == Some(libc::SIGABRT) && outcome.stderr.contains(expected) {
            println!("test {test} ... ok");
        } else {
            failed += 1;
            println!(
                "test {test} ... FAILED\n  {}\n  stdout: {}\n  stderr: {}",
                outcome.status, outcome.stdout, outcome.stderr
            );
        }
    }
    let allowed = yielding_after_a_caught_close_during_a_panic_is_allowed();
    println!(
        "test yielding_after_a_caught_close_during_a_panic_is_allowed ... {}",
        if allowed { "ok" } else { "FAILED" }
    );
    failed += usize::from(!allowed);
    if failed == 0 {
        println!("\ntest result: ok. {} passed", cases.len() + 1);
    } else {
        println!("\ntest result: FAILED. {failed} failed");
        std::process::exit(1);
    }
}
