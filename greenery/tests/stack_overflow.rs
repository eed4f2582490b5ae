//! Stack overflows in coroutines are reported by name and abort cleanly;
//! faults that are not coroutine overflows reach whoever handled them before.
//!
//! Each scenario crashes its process on purpose, so this test binary (built
//! without the libtest harness) runs every scenario in a child process: it
//! re-executes itself with `GREENERY_OVERFLOW_SCENARIO` set and checks how the
//! child died and what it printed.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use greenery::{Builder, Coroutine, Generator};
use support::{Outcome, this_binary};

mod support;

const SCENARIO: &str = "GREENERY_OVERFLOW_SCENARIO";

/// Recurses with a 1 KiB frame until something gives.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 1024]);
    if depth == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)) + frame[0] as u64
}

fn run_scenario(name: &str) {
    match name {
        "coroutine" => {
            let mut co = Builder::new()
                .name("deep-recursion")
                .stack_size(64 * 1024)
                .coroutine(|_: &greenery::Yielder<(), ()>, ()| {
                    recurse(0);
                })
                .unwrap();
            co.resume(());
        }
        "generator-in-coroutine" => {
            let mut outer = Coroutine::<(), (), ()>::new(|_, ()| {
                let mut inner: Generator<(), u64> = Builder::new()
                    .name(String::from("inner generator"))
                    .stack_size(128 * 1024)
                    .generator(|co, ()| {
                        co.yield_(1);
                        co.yield_(recurse(0));
                    })
                    .unwrap();
                inner.next();
                inner.next();
            });
            outer.resume(());
        }
        "foreign-thread" => {
            // A thread std did not create has no alternate signal stack until
            // greenery gives it one.
            extern "C" fn thread_main(_: *mut libc::c_void) -> *mut libc::c_void {
                run_scenario("coroutine");
                std::ptr::null_mut()
            }
            let mut thread: libc::pthread_t = 0;
            // SAFETY: a plain pthread running an extern "C" function.
            unsafe {
                assert_eq!(
                    libc::pthread_create(&mut thread, std::ptr::null(), thread_main, std::ptr::null_mut()),
                    0
                );
                libc::pthread_join(thread, std::ptr::null_mut());
            }
        }
        "thread-overflow" => {
            // A plain thread's overflow is std's to report, not greenery's.
            let _ = Coroutine::<(), (), ()>::new(|_, ()| {}); // installs greenery's handler
            std::thread::Builder::new().stack_size(128 * 1024).spawn(|| recurse(0)).unwrap().join().unwrap();
        }
        "null-pointer" => {
            let _ = Coroutine::<(), (), ()>::new(|_, ()| {}); // installs greenery's handler
            // SAFETY: not safe at all: this scenario crashes on purpose.
            unsafe { black_box(std::ptr::read_volatile(black_box(8usize) as *const u64)) };
        }
        "overflow-after-refused-stash" => overflow_after_refused_stash(),
        other => panic!("unknown scenario {other}"),
    }
    eprintln!("scenario {name} did not crash");
    std::process::exit(3);
}

/// Two green threads on neighbouring stacks park while the stash is
/// refused (locked memory cannot take a guard region), with no other
/// thread in the process; then the upper one recurses off its stack. The
/// refusal must have left the guard page between the two stacks: the
/// overflow is reported, not run into the neighbour.
fn overflow_after_refused_stash() {
    const STACK: usize = 64 * 1024;
    greenery::stack::set_stash_after(Some(Duration::from_millis(1)));
    if greenery::stack::stash_after().is_none() {
        println!("not supported here: stacks are not stashed (no guard regions)");
        std::process::exit(0);
    }
    greenery::stack::set_stash_after(None);
    let event = std::rc::Rc::new(greenery::sync::Event::new());
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let event = event.clone();
            Builder::new().name(format!("stack {i}")).stack_size(STACK).spawn(move || {
                event.wait().unwrap();
                if i == 1 {
                    recurse(0);
                }
            })
        })
        .collect();
    greenery::sleep(Duration::from_millis(5)); // both are parked
    // SAFETY: mlockall only changes how the process's memory is paged.
    if unsafe { libc::mlockall(libc::MCL_CURRENT) } != 0 {
        println!("skipped: mlockall failed ({})", std::io::Error::last_os_error());
        std::process::exit(0);
    }
    greenery::stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::sleep(Duration::from_millis(30));
    let refused = greenery::stack::stash_counts().refused;
    eprintln!("stashes refused: {refused}");
    // SAFETY: as above.
    unsafe { libc::munlockall() };
    event.set();
    for handle in handles {
        let _ = handle.get();
    }
}

fn run_child(scenario: &str) -> Outcome {
    let mut command = this_binary();
    command.env(SCENARIO, scenario);
    support::run(command, Duration::from_secs(120))
}

fn check(name: &str, ok: bool, outcome: &Outcome, failures: &mut Vec<String>) {
    if ok {
        println!("test {name} ... ok");
    } else {
        println!("test {name} ... FAILED");
        failures.push(format!(
            "{name}: {}, stdout:\n{}\nstderr:\n{}",
            outcome.status, outcome.stdout, outcome.stderr
        ));
    }
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        run_scenario(&scenario);
        return;
    }
    let mut failures = Vec::new();

    let outcome = run_child("coroutine");
    check(
        "overflow_in_a_coroutine_is_reported_by_name_and_aborts",
        outcome.status.signal() == Some(libc::SIGABRT)
            && outcome
                .stderr
                .contains("greenery: stack overflow in coroutine 'deep-recursion' (stack size 64 KiB)")
            && outcome.stderr.contains("Builder::stack_size")
            && outcome.stderr.contains("GREENERY_STACK_SIZE"),
        &outcome,
        &mut failures,
    );

    let outcome = run_child("generator-in-coroutine");
    check(
        "overflow_in_a_nested_generator_names_the_generator",
        outcome.status.signal() == Some(libc::SIGABRT)
            && outcome.stderr.contains("stack overflow in coroutine 'inner generator' (stack size 128 KiB)"),
        &outcome,
        &mut failures,
    );

    let outcome = run_child("foreign-thread");
    check(
        "overflow_on_a_thread_without_an_alternate_stack_is_reported",
        outcome.status.signal() == Some(libc::SIGABRT)
            && outcome.stderr.contains("stack overflow in coroutine 'deep-recursion'"),
        &outcome,
        &mut failures,
    );

    let outcome = run_child("thread-overflow");
    check(
        "overflow_of_a_plain_thread_is_passed_on_to_std",
        outcome.status.signal() == Some(libc::SIGABRT)
            && outcome.stderr.contains("has overflowed its stack")
            && !outcome.stderr.contains("greenery:"),
        &outcome,
        &mut failures,
    );

    let outcome = run_child("null-pointer");
    check(
        "other_faults_keep_their_default_action",
        outcome.status.signal() == Some(libc::SIGSEGV) && !outcome.stderr.contains("greenery:"),
        &outcome,
        &mut failures,
    );

    let outcome = run_child("overflow-after-refused-stash");
    // Where locked memory is not allowed (not root, a low RLIMIT_MEMLOCK),
    // the stash cannot be made to refuse: the scenario says so.
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let skipped =
        (outcome.stdout.contains("skipped:") && !root) || outcome.stdout.contains("not supported here");
    check(
        "a_refused_stash_keeps_the_guard_pages_between_stacks",
        skipped
            || (outcome.status.signal() == Some(libc::SIGABRT)
                && outcome.stderr.contains("stashes refused: 2")
                && outcome.stderr.contains("stack overflow in coroutine 'stack 1' (stack size 64 KiB)")),
        &outcome,
        &mut failures,
    );

    if failures.is_empty() {
        println!("\ntest result: ok. 6 passed");
    } else {
        for failure in &failures {
            println!("\n---- {failure}");
        }
        println!("\ntest result: FAILED. {} failed", failures.len());
        std::process::exit(1);
    }
}
