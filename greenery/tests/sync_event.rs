//! `sync::Event`: setting, clearing, waiting, timeouts, kills and deadlock.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::Event;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

/// Runs every green thread until each blocks.
fn settle() {
    greenery::idle().unwrap();
}

#[test]
fn set_clear_and_is_set() {
    let event = Event::new();
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());
    assert_eq!(event.wait(), Ok(())); // returns at once
    assert_eq!(event.wait_timeout(SHORT), Ok(true));
    event.set(); // setting twice is harmless
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    assert!(!Event::default().is_set());
    assert_eq!(format!("{event:?}"), "Event { set: false, waiting: 0 }");
}

#[test]
fn set_wakes_every_waiter_in_the_order_they_came() {
    let event = Rc::new(Event::new());
    let woken = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..5)
        .map(|n| {
            let (event, woken) = (event.clone(), woken.clone());
            greenery::spawn(move || {
                event.wait().unwrap();
                woken.borrow_mut().push(n);
            })
        })
        .collect();
    settle();
    assert!(woken.borrow().is_empty());
    assert_eq!(format!("{event:?}"), "Event { set: false, waiting: 5 }");
    event.set();
    greenery::hub::joinall(&waiters, None, false).unwrap();
    assert_eq!(*woken.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_waiter_woken_by_set_succeeds_even_if_cleared_before_it_resumes() {
    let event = Rc::new(Event::new());
    let forever = {
        let event = event.clone();
        greenery::spawn(move || event.wait())
    };
    let timed = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    settle();
    event.set();
    event.clear(); // before either resumes
    assert_eq!(forever.get().unwrap(), Ok(()));
    assert_eq!(timed.get().unwrap(), Ok(true));
    assert!(!event.is_set());
}

#[test]
fn waiters_after_a_clear_wait_for_the_next_set() {
    let event = Rc::new(Event::new());
    event.set();
    event.clear();
    let waiter = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    settle();
    assert!(!waiter.is_ready());
    event.set();
    assert_eq!(waiter.get().unwrap(), Ok(true));
}

#[test]
fn wait_timeout_returns_false_when_the_time_runs_out() {
    let event = Event::new();
    assert_eq!(event.wait_timeout(SHORT), Ok(false));
    assert_eq!(event.wait_timeout(Duration::ZERO), Ok(false));
    // The timed-out waiter left the queue.
    assert_eq!(format!("{event:?}"), "Event { set: false, waiting: 0 }");
}

#[test]
fn a_timeout_around_wait_unwinds_it_and_leaves_the_queue() {
    let event = Rc::new(Event::new());
    let outcome = greenery::with_timeout(SHORT, || event.wait());
    assert!(outcome.is_err());
    assert_eq!(format!("{event:?}"), "Event { set: false, waiting: 0 }");

    // In a green thread, beside another waiter that still gets the set.
    let timed_out = {
        let event = event.clone();
        greenery::spawn(move || greenery::with_timeout(SHORT, || event.wait()))
    };
    let patient = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    assert!(timed_out.get().unwrap().is_err());
    event.set();
    assert_eq!(patient.get().unwrap(), Ok(true));
}

#[test]
fn a_waiter_killed_while_waiting_leaves_the_others_waiting() {
    let event = Rc::new(Event::new());
    let spawn_waiter = || {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    let (first, second) = (spawn_waiter(), spawn_waiter());
    settle();
    first.kill().unwrap();
    assert!(first.get().unwrap_err().is_killed());
    assert_eq!(format!("{event:?}"), "Event { set: false, waiting: 1 }");
    event.set();
    assert_eq!(second.get().unwrap(), Ok(true));
}

#[test]
fn a_waiter_killed_after_set_woke_it_loses_nothing_for_the_others() {
    // Killed between the wake-up and its resumption: its wake-up is passed
    // on, and must not make a waiter that came after the set (and a clear)
    // return as if set.
    let event = Rc::new(Event::new());
    let woken = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    let also_woken = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    settle();
    // The hub runs these in order: `late` starts, after the clear, and
    // waits; `woken` is killed, woken already but not resumed; then
    // `also_woken` resumes.
    let late = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(LONG))
    };
    woken.kill_async();
    event.set();
    event.clear();
    assert!(woken.get().unwrap_err().is_killed());
    assert_eq!(also_woken.get().unwrap(), Ok(true));
    settle();
    assert!(!late.is_ready(), "the passed-on wake-up made a later waiter return");
    event.set();
    assert_eq!(late.get().unwrap(), Ok(true));
}

#[test]
fn waiting_for_an_event_nobody_can_set_is_a_deadlock() {
    let event = Event::new();
    assert_eq!(event.wait(), Err(Deadlock));
    // Even with a timeout: nothing but the timeout could end the wait, and
    // it does.
    assert_eq!(event.wait_timeout(SHORT), Ok(false));
    assert_eq!(
        Deadlock.to_string(),
        "this would block forever: deadlock (every green thread is waiting, and no timer, I/O, other \
         thread or blocking task is left to wake one)"
    );
}

#[test]
fn deadlock_with_green_threads_all_waiting() {
    let event = Rc::new(Event::new());
    let other = Rc::new(Event::new());
    let waiter = {
        let (event, other) = (event.clone(), other.clone());
        greenery::spawn(move || {
            other.wait().unwrap(); // never set
            event.set();
        })
    };
    assert_eq!(event.wait(), Err(Deadlock));
    assert!(!waiter.is_ready());
    other.set();
    assert_eq!(event.wait(), Ok(()));
    waiter.join().unwrap();
}
