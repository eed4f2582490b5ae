//! `greenery::signal`: handlers in green threads, cancelling, forbidden
//! signals, and the disposition put back after the last cancel.

#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use greenery::signal::signal_handler;
use greenery::sync::Event;

const GENEROUS: Duration = Duration::from_secs(30);

fn raise(signum: libc::c_int) {
    // SAFETY: raise(3) sends this thread a signal; the tests that call it
    // have installed a handler for it.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

/// Yields until `done` holds (a generous bound guards against a hang).
fn until(done: impl Fn() -> bool) {
    let waited = greenery::with_timeout(GENEROUS, || {
        while !done() {
            greenery::sleep(Duration::from_millis(1));
        }
    });
    assert!(waited.is_ok(), "gave up waiting");
}

#[test]
fn a_handler_runs_in_a_green_thread_until_cancelled() {
    let runs = Rc::new(Cell::new(0));
    let counter = runs.clone();
    let handler = signal_handler(libc::SIGUSR1, move || {
        // Ordinary code: it may block.
        greenery::sleep(Duration::from_millis(1));
        counter.set(counter.get() + 1);
    })
    .unwrap();
    assert_eq!(handler.signum(), libc::SIGUSR1);
    assert!(handler.is_active());
    raise(libc::SIGUSR1);
    until(|| runs.get() == 1);
    raise(libc::SIGUSR1);
    until(|| runs.get() == 2);
    assert!(handler.cancel());
    assert!(!handler.is_active());
    assert!(!handler.cancel(), "cancelling twice does nothing");
}

#[test]
fn a_signal_from_another_thread_wakes_a_sleeping_hub() {
    let arrived = Rc::new(Event::new());
    let set = arrived.clone();
    let handler = signal_handler(libc::SIGUSR2, move || set.set()).unwrap();
    let sender = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: kill(2) sends the process a signal that has a handler.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    });
    assert!(arrived.wait_timeout(GENEROUS).unwrap(), "the handler ran");
    sender.join().unwrap();
    handler.cancel();
}

#[test]
fn every_handler_for_a_signal_runs() {
    let runs = Rc::new(Cell::new(0));
    let handlers: Vec<_> = (0..3)
        .map(|_| {
            let counter = runs.clone();
            signal_handler(libc::SIGWINCH, move || counter.set(counter.get() + 1)).unwrap()
        })
        .collect();
    raise(libc::SIGWINCH);
    until(|| runs.get() == 3);
    handlers[1].cancel();
    raise(libc::SIGWINCH);
    until(|| runs.get() == 5);
    for handler in &handlers {
        handler.cancel();
    }
}

#[test]
fn forbidden_and_unknown_signals_are_errors() {
    for signum in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        let err = signal_handler(signum, || {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(&format!("signal {signum}")), "{err}");
    }
    for signum in [0, -1, 65, 1000] {
        let err = signal_handler(signum, || {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signum}");
    }
}

#[test]
fn a_handler_does_not_hide_a_deadlock() {
    // In a child process, so that a regression fails instead of hanging.
    let outcome = in_child("a_handler_does_not_hide_a_deadlock", || {
        let handler = signal_handler(libc::SIGALRM, || {}).unwrap();
        let never = Event::new();
        let err = never.wait().unwrap_err();
        println!("wait: {err}");
        handler.cancel();
    });
    assert!(outcome.status.success(), "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("wait: this would block forever"), "{}", outcome.stdout);
}

#[test]
fn the_last_cancel_puts_the_default_action_back() {
    let outcome = in_child("the_last_cancel_puts_the_default_action_back", || {
        let handler = signal_handler(libc::SIGUSR1, || {}).unwrap();
        handler.cancel();
        raise(libc::SIGUSR1); // the default action: the process ends here
        greenery::sleep(Duration::from_millis(100));
        println!("still alive");
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(outcome.status.signal(), Some(libc::SIGUSR1), "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(!outcome.stdout.contains("still alive"));
}

/// Runs `scenario` in a child process (this test binary, running only the
/// test `name`), with a generous timeout against hangs. In the child, runs
/// `scenario` and exits.
fn in_child(name: &str, scenario: impl FnOnce()) -> support::Outcome {
    if std::env::var("GREENERY_SIGNAL_SCENARIO").is_ok_and(|running| running == name) {
        scenario();
        std::process::exit(0);
    }
    let mut command = support::this_binary();
    command.args(["--exact", name, "--nocapture"]).env("GREENERY_SIGNAL_SCENARIO", name);
    support::run(command, Duration::from_secs(60))
}
