//! Issue 16.3: the monitor reports a hub that does not come back to its loop
//! for longer than `max_blocking_time`: once per stall, naming the thread,
//! the green thread (its name, id and where it was spawned), how long, and a
//! backtrace of where it is stuck.
//!
//! Each test blocks its own hub with [`sleep_blocking`] for many times the
//! small threshold these tests set, and checks what its error handler
//! received once the hub came back. The threshold is process-wide: every
//! test of this binary sets the same one. Scenarios that need the default
//! error handler (the report written to stderr by the monitor's thread) or
//! the environment variable run in a child process.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::Builder;
use greenery::hub::{self, ErrorReport};

mod support;

/// The threshold of every test here.
const THRESHOLD: Duration = Duration::from_millis(20);
/// How long a test blocks its hub: fifty thresholds.
const BLOCK: Duration = Duration::from_secs(1);

/// Sleeps without letting the hub run: the `nanosleep` system call made
/// directly, which the `patch` feature's hooks (they make
/// `std::thread::sleep` park the green thread) do not see.
#[inline(never)]
fn sleep_blocking(duration: Duration) {
    // The monitor's signal (it takes a backtrace) interrupts the sleep:
    // sleep again for what is left, so that the hub stays blocked.
    let end = Instant::now() + duration;
    while let Some(left) = end.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) {
        let time =
            libc::timespec { tv_sec: left.as_secs() as libc::time_t, tv_nsec: left.subsec_nanos().into() };
        // SAFETY: nanosleep reads a live timespec; no remainder is asked for.
        unsafe {
            libc::syscall(
                libc::SYS_nanosleep,
                &time as *const libc::timespec,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
    }
}

/// What a test's error handler kept of a monitor report.
#[derive(Debug)]
struct Seen {
    line: String,
    name: String,
    thread: String,
    green_thread: Option<u64>,
    spawned_at: Option<String>,
    blocked_for: Duration,
    backtrace: String,
}

/// Sets the threshold and an error handler keeping the monitor's reports
/// (and failing on any other report).
fn capture_reports() -> (Rc<RefCell<Vec<Seen>>>, Option<hub::ErrorHandler>) {
    hub::set_max_blocking_time(Some(THRESHOLD));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let keep = seen.clone();
    let previous = hub::set_error_handler(move |report: &ErrorReport<'_>| {
        let blocking = report.blocking().unwrap_or_else(|| panic!("not a monitor report: {report}"));
        assert_eq!(report.green_thread(), blocking.green_thread());
        keep.borrow_mut().push(Seen {
            line: report.to_string(),
            name: blocking.name().to_owned(),
            thread: blocking.thread_name().to_owned(),
            green_thread: blocking.green_thread(),
            spawned_at: blocking.spawned_at().map(|at| format!("{}:{}", at.file(), at.line())),
            blocked_for: blocking.blocked_for(),
            backtrace: blocking.backtrace().to_owned(),
        });
    });
    (seen, previous)
}

/// Lets the hub run until a report arrived (the monitor may still be
/// writing it when the hub comes back) or a generous time passed.
fn wait_for_report(seen: &RefCell<Vec<Seen>>) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while seen.borrow().is_empty() && Instant::now() < give_up {
        greenery::sleep(Duration::from_millis(5));
    }
}

fn this_thread() -> String {
    std::thread::current().name().unwrap().to_owned()
}

#[test]
fn a_green_thread_that_blocks_its_hub_is_reported_once_with_where_it_is() {
    let (seen, previous) = capture_reports();
    let ticker = greenery::spawn(|| greenery::sleep(Duration::from_millis(1)));
    let line = line!() + 1;
    let blocker = Builder::new().name("blocker").spawn(|| sleep_blocking(BLOCK));
    let id = blocker.id();
    blocker.join().unwrap();
    ticker.join().unwrap();
    wait_for_report(&seen);
    // Another look, to see that the stall was reported only once.
    greenery::sleep(THRESHOLD * 5);
    hub::reset_error_handler(previous);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let report = &seen[0];
    assert_eq!(report.name, "blocker");
    assert_eq!(report.green_thread, Some(id));
    assert_eq!(report.thread, this_thread());
    assert_eq!(report.spawned_at.as_deref(), Some(&*format!("greenery/tests/hub_monitor.rs:{line}")));
    assert!(report.blocked_for >= THRESHOLD, "{report:#?}");
    assert!(
        report.line.starts_with(&format!(
            "greenery: 'blocker' (green thread {id}, spawned at greenery/tests/hub_monitor.rs:{line}:"
        )),
        "{}",
        report.line
    );
    assert!(report.line.contains(&format!("has blocked the hub of thread '{}' for ", this_thread())));
    assert!(report.line.contains("It is at:\n"), "{}", report.line);
    // Where: in a sleep, called from this test's closure.
    assert!(report.backtrace.contains("sleep"), "{}", report.backtrace);
    if !report.backtrace.contains("only the innermost frame") {
        assert!(report.backtrace.contains("sleep_blocking"), "{}", report.backtrace);
        assert!(report.backtrace.contains("hub_monitor::"), "{}", report.backtrace);
        // File and line need debug info, which the optimised CI profile
        // (`ci-release`, without debug assertions either) leaves out.
        if cfg!(debug_assertions) {
            assert!(report.backtrace.contains("tests/hub_monitor.rs:"), "{}", report.backtrace);
        }
        // greenery's plumbing below the green thread's body is left out.
        assert!(!report.backtrace.contains("catch_unwind"), "{}", report.backtrace);
        assert!(!report.backtrace.contains("greenery::"), "{}", report.backtrace);
    }
}

#[test]
fn the_main_greenlet_is_reported_when_a_green_thread_waits_for_the_hub() {
    let (seen, previous) = capture_reports();
    let waiting = greenery::spawn(|| ());
    sleep_blocking(BLOCK);
    waiting.join().unwrap();
    wait_for_report(&seen);
    hub::reset_error_handler(previous);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].name, "main");
    assert_eq!(seen[0].green_thread, None);
    assert!(
        seen[0].line.starts_with("greenery: 'main' (the main greenlet) has blocked the hub"),
        "{}",
        seen[0].line
    );
}

#[test]
fn a_blocking_callback_on_the_hub_is_reported_as_the_hub() {
    let (seen, previous) = capture_reports();
    let handle = hub::Handle::current();
    handle.run(|| sleep_blocking(BLOCK));
    greenery::sleep(Duration::from_millis(1)); // the callback runs meanwhile
    wait_for_report(&seen);
    hub::reset_error_handler(previous);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].name, "hub");
    assert!(seen[0].line.contains("(a callback on the hub"), "{}", seen[0].line);
}

#[test]
fn nothing_is_reported_when_nothing_waits_for_the_hub() {
    let (seen, previous) = capture_reports();
    greenery::spawn(|| ()).join().unwrap();
    // The hub exists, but no green thread is alive and main is not parked.
    sleep_blocking(THRESHOLD * 10);
    greenery::sleep(THRESHOLD * 5);
    hub::reset_error_handler(previous);
    assert!(seen.borrow().is_empty(), "{:#?}", seen.borrow());
}

/// Runs one scenario of this binary in a child process.
fn run_scenario(test: &str, threshold: &str) -> support::Outcome {
    let mut command = support::this_binary();
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command.env(SCENARIO, "1").env("GREENERY_MAX_BLOCKING_TIME", threshold);
    let outcome = support::run(command, Duration::from_secs(60));
    assert!(outcome.status.success(), "child failed: {}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("SCENARIO DONE"), "{}\n{}", outcome.stdout, outcome.stderr);
    outcome
}

const SCENARIO: &str = "GREENERY_MONITOR_SCENARIO";

fn in_child() -> bool {
    std::env::var_os(SCENARIO).is_some()
}

/// Runs `block` with this process's stderr sent to a pipe; then reads the
/// pipe until `marker` came (the monitor's thread may still be writing a
/// report when `block` returns) or 30 s passed, and puts stderr back.
fn stderr_of(block: impl FnOnce(), marker: &str) -> String {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new fds; dup and dup2 take fds this function
    // owns (2 is put back below).
    let saved = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC), 0);
        let saved = libc::dup(2);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(fds[1], 2), 2);
        saved
    };
    block();
    let mut text = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&text).contains(marker) && Instant::now() < give_up {
        let mut buffer = [0u8; 4096];
        // SAFETY: reads into a live local buffer of that size.
        let read = unsafe { libc::read(fds[0], buffer.as_mut_ptr().cast(), buffer.len()) };
        match usize::try_from(read) {
            Ok(read) if read > 0 => text.extend_from_slice(&buffer[..read]),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    // SAFETY: puts the saved stderr back and closes the fds made here.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn scenario_block_with_the_default_handler() {
    if !in_child() {
        return;
    }
    let stderr = stderr_of(
        || {
            let waiting = greenery::spawn(|| ());
            let blocker = Builder::new().name("stuck").spawn(|| sleep_blocking(Duration::from_secs(1)));
            blocker.join().unwrap();
            waiting.join().unwrap();
        },
        "It is at:",
    );
    print!("{stderr}");
    println!("SCENARIO DONE");
}

#[test]
fn the_environment_sets_the_threshold_and_the_default_handler_writes_to_stderr() {
    let outcome = run_scenario("scenario_block_with_the_default_handler", "50");
    let stderr = &outcome.stdout;
    assert_eq!(stderr.matches("has blocked the hub").count(), 1, "{stderr}");
    assert!(
        stderr.contains("greenery: 'stuck' (green thread 2, spawned at greenery/tests/hub_monitor.rs:"),
        "{stderr}"
    );
    assert!(stderr.contains("(threshold 50 ms, GREENERY_MAX_BLOCKING_TIME). It is at:\n"), "{stderr}");
}

#[test]
fn scenario_block_for_long() {
    if !in_child() {
        return;
    }
    let waiting = greenery::spawn(|| ());
    let blocker = Builder::new().name("stuck").spawn(|| sleep_blocking(Duration::from_millis(500)));
    blocker.join().unwrap();
    waiting.join().unwrap();
    println!("SCENARIO DONE");
}

#[test]
fn the_environment_turns_the_monitor_off() {
    let outcome = run_scenario("scenario_block_for_long", "off");
    assert!(!outcome.stderr.contains("has blocked the hub"), "{}", outcome.stderr);
}

#[test]
fn scenario_threshold_from_the_api() {
    if !in_child() {
        return;
    }
    assert_eq!(hub::max_blocking_time(), None); // from the environment
    hub::set_max_blocking_time(Some(Duration::from_millis(30)));
    let stderr = stderr_of(
        || {
            let waiting = greenery::spawn(|| ());
            let blocker = Builder::new().name("late").spawn(|| sleep_blocking(Duration::from_secs(1)));
            blocker.join().unwrap();
            waiting.join().unwrap();
        },
        "It is at:",
    );
    print!("{stderr}");
    println!("SCENARIO DONE");
}

#[test]
fn the_api_turns_the_monitor_on() {
    let outcome = run_scenario("scenario_threshold_from_the_api", "off");
    assert_eq!(outcome.stdout.matches("has blocked the hub").count(), 1, "{}", outcome.stdout);
    assert!(outcome.stdout.contains("greenery: 'late'"), "{}", outcome.stdout);
}
