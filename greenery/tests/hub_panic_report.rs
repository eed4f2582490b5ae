//! Issue 14.11: a panic in a green thread is reported under the green
//! thread's name (Rust's own hook says `thread 'main'`), and a panic hook
//! the program installed keeps working.
//!
//! Each scenario runs in a child process (this test binary again, one test,
//! `--nocapture`), since the panic hook is process-wide and installed once.

use std::time::Duration;

use greenery::Builder;

mod support;

const SCENARIO: &str = "GREENERY_PANIC_REPORT_SCENARIO";

fn run_scenario(test: &str) -> support::Outcome {
    let mut command = support::this_binary();
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command.env(SCENARIO, "1");
    let outcome = support::run(command, Duration::from_secs(60));
    assert!(outcome.status.success(), "child failed: {}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("SCENARIO DONE"), "{}\n{}", outcome.stdout, outcome.stderr);
    outcome
}

fn in_child() -> bool {
    std::env::var_os(SCENARIO).is_some()
}

#[test]
fn scenario_default_hook() {
    if !in_child() {
        return;
    }
    let worker = Builder::new().name("worker").spawn(|| -> u32 { panic!("boom") });
    assert!(worker.get().unwrap_err().is_panic());
    println!("SCENARIO DONE");
}

#[test]
fn a_panic_in_a_green_thread_is_headed_with_its_name() {
    let outcome = run_scenario("scenario_default_hook");
    let stderr = &outcome.stderr;
    assert!(
        stderr.contains("green thread 'worker' panicked at greenery/tests/hub_panic_report.rs:"),
        "{stderr}"
    );
    assert!(stderr.contains(":\nboom\n"), "{stderr}");
    assert!(
        !stderr.contains("thread 'scenario_default_hook'"),
        "the OS thread's header is replaced: {stderr}"
    );
    assert!(stderr.contains("greenery: 'worker' (green thread 1) failed: boom"), "{stderr}");
}

#[test]
fn scenario_user_hook() {
    if !in_child() {
        return;
    }
    // Installed before greenery's first use, and so wrapped by its hook.
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<&str>().copied().unwrap_or("?");
        eprintln!("user hook saw: {message}");
    }));
    let worker = Builder::new().name("worker").spawn(|| -> u32 { panic!("first") });
    assert!(worker.get().unwrap_err().is_panic());
    // Installed after: it replaces greenery's, as any hook replaces another.
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<&str>().copied().unwrap_or("?");
        eprintln!("later hook saw: {message}");
    }));
    let worker = Builder::new().name("worker").spawn(|| -> u32 { panic!("second") });
    assert!(worker.get().unwrap_err().is_panic());
    println!("SCENARIO DONE");
}

#[test]
fn a_panic_hook_the_program_installed_keeps_working() {
    let outcome = run_scenario("scenario_user_hook");
    let stderr = &outcome.stderr;
    assert!(stderr.contains("user hook saw: first"), "{stderr}");
    assert!(stderr.contains("later hook saw: second"), "{stderr}");
    assert!(!stderr.contains("panicked at"), "no default report besides the user's hooks: {stderr}");
}

#[test]
fn scenario_main_greenlet() {
    if !in_child() {
        return;
    }
    greenery::spawn(|| ()).join().unwrap(); // the hook is installed
    let caught = std::panic::catch_unwind(|| panic!("in main"));
    assert!(caught.is_err());
    println!("SCENARIO DONE");
}

#[test]
fn a_panic_outside_green_threads_keeps_rusts_report() {
    let outcome = run_scenario("scenario_main_greenlet");
    assert!(outcome.stderr.contains("thread 'scenario_main_greenlet'"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("in main"), "{}", outcome.stderr);
}
