//! Timeouts: `with_timeout` and the `Timeout` guard at each kind of blocking
//! point, nesting, cancellation, and code that swallows the unwinding.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{self, TimedOut, Timeout};
use greenery::sync::Event;

mod reports;

const SHORT: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(3600);

#[test]
fn with_timeout_returns_the_value_of_code_that_finishes_in_time() {
    assert_eq!(hub::with_timeout(LONG, || 5), Ok(5));
    let slept = hub::with_timeout(LONG, || {
        greenery::sleep(Duration::from_millis(1));
        "slept"
    });
    assert_eq!(slept, Ok("slept"));
}

#[test]
fn with_timeout_unwinds_a_sleep_and_runs_destructors() {
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone());
    let outcome = hub::with_timeout(SHORT, move || {
        let _flag = flag;
        greenery::sleep(LONG);
        unreachable!("the sleep is unwound");
    });
    assert_eq!(outcome, Err(TimedOut::from(SHORT)));
    assert!(dropped.get());
    let err = outcome.unwrap_err();
    assert_eq!(err.duration(), SHORT);
    assert!(err.to_string().contains("10ms"), "{err}");
}

#[test]
fn a_timeout_unwinds_a_join() {
    let slow = greenery::spawn(|| greenery::sleep(LONG));
    assert!(hub::with_timeout(SHORT, || slow.join()).is_err());
    assert!(!slow.is_ready(), "the joined thread is untouched");
    slow.kill().unwrap();
}

#[test]
fn a_timeout_unwinds_an_event_wait() {
    let never = Event::new();
    assert!(hub::with_timeout(SHORT, || never.wait()).is_err());
}

#[test]
fn a_timeout_unwinds_a_yield_loop() {
    let turns = Cell::new(0u64);
    let outcome = hub::with_timeout(SHORT, || {
        loop {
            turns.set(turns.get() + 1);
            greenery::yield_now();
        }
    });
    assert!(outcome.is_err());
    assert!(turns.get() > 0);
}

#[test]
fn a_timeout_unwinds_a_wait_any() {
    let slow = [greenery::spawn(|| greenery::sleep(LONG))];
    assert!(hub::with_timeout(SHORT, || hub::wait_any(&slow)).is_err());
    hub::killall(&slow, None).unwrap();
}

#[test]
fn a_timeout_in_a_green_thread_is_its_own() {
    let inside = greenery::spawn(|| hub::with_timeout(SHORT, || greenery::sleep(LONG)).is_err());
    let bystander = greenery::spawn(|| {
        greenery::sleep(Duration::from_millis(30));
        "fine"
    });
    assert!(inside.get().unwrap());
    assert_eq!(bystander.get().unwrap(), "fine");
}

#[test]
fn an_inner_timeout_firing_does_not_trip_the_outer_one() {
    let outer = hub::with_timeout(Duration::from_millis(200), || {
        let inner = hub::with_timeout(SHORT, || greenery::sleep(LONG));
        assert!(inner.is_err());
        "outer finished"
    });
    assert_eq!(outer, Ok("outer finished"));
}

#[test]
fn an_outer_timeout_firing_passes_through_the_inner_one() {
    let inner_returned = Cell::new(false);
    let outer = hub::with_timeout(SHORT, || {
        let _ = hub::with_timeout(LONG, || greenery::sleep(LONG));
        inner_returned.set(true);
    });
    assert_eq!(outer, Err(TimedOut::from(SHORT)));
    assert!(!inner_returned.get(), "the inner scope did not catch the outer timeout");
}

#[test]
fn the_guard_form_starts_cancels_and_reports_pending() {
    let mut timeout = Timeout::new(SHORT);
    assert!(!timeout.is_pending());
    timeout.start();
    assert!(timeout.is_pending());
    timeout.cancel();
    assert!(!timeout.is_pending());
    // Cancelled: a long sleep now is not cut short.
    greenery::sleep(Duration::from_millis(30));
    assert_eq!(timeout.duration(), SHORT);
}

#[test]
fn dropping_a_started_timeout_cancels_it() {
    {
        let _timeout = Timeout::start_new(SHORT);
    }
    greenery::sleep(Duration::from_millis(30)); // would be unwound if still armed
}

#[test]
fn run_catches_its_own_expiry_only() {
    let mut timeout = Timeout::new(SHORT);
    assert!(timeout.run(|| greenery::sleep(LONG)).is_err());
    assert!(!timeout.is_pending());
    // Reusable once expired.
    assert_eq!(timeout.run(|| 3), Ok(3));
}

#[test]
fn is_expiry_of_recognises_the_payload() {
    let timeout = Rc::new(RefCell::new(Timeout::start_new(SHORT)));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| greenery::sleep(LONG))).unwrap_err();
    assert!(greenery::is_forced_unwind(&*payload), "a timeout unwinds as a forced unwind");
    assert!(timeout.borrow().is_expiry_of(&*payload));
    assert!(!Timeout::new(SHORT).is_expiry_of(&*payload));
}

#[test]
fn a_timeout_in_a_killed_thread_does_not_fire_later() {
    let handle = greenery::spawn(|| hub::with_timeout(SHORT, || greenery::sleep(LONG)));
    greenery::yield_now();
    handle.kill().unwrap();
    assert!(handle.get().unwrap_err().is_killed());
    greenery::sleep(Duration::from_millis(30)); // nothing fires into anyone
}

// Issue 14.9: a `Timeout` guard whose expiry nothing catches. In a green
// thread, the report says so (it used to read `failed: Box<dyn Any>`).
#[test]
fn an_uncaught_guard_expiry_in_a_green_thread_is_reported_with_how_to_catch_it() {
    let reports = reports::capture();
    let worker = greenery::Builder::new().name("worker").spawn(|| {
        let _timeout = Timeout::start_new(SHORT);
        greenery::sleep(LONG);
    });
    let err = worker.get().unwrap_err();
    assert!(err.to_string().contains("a timeout of 10ms expired and nothing caught it"), "{err}");
    reports.assert_one(&[
        "'worker' (green thread 1) failed: a timeout of 10ms expired and nothing caught it",
        "greenery::with_timeout",
        "Timeout::run",
    ]);
}

// Issue 14.9: in the main greenlet (where an unwinding `main` used to exit
// with 101 and print nothing), the guard says so as the unwinding passes it.
#[test]
fn an_uncaught_guard_expiry_in_the_main_greenlet_is_reported_with_how_to_catch_it() {
    let reports = reports::capture();
    let outcome = panic::catch_unwind(|| {
        let _timeout = Timeout::start_new(SHORT);
        greenery::sleep(LONG);
    });
    assert!(greenery::is_forced_unwind(&*outcome.unwrap_err()));
    reports.assert_one(&["greenery: 'main' a timeout of 10ms expired and nothing caught it", "Timeout::run"]);
    // Caught by its `run`: nothing to report.
    let mut timeout = Timeout::new(SHORT);
    assert_eq!(timeout.run(|| greenery::sleep(LONG)), Err(TimedOut::from(SHORT)));
    drop(timeout);
    assert_eq!(reports.lines().len(), 1);
}
