//! Deadlock detection: a wait that nothing can ever end is reported to the
//! main greenlet as an error (gevent's `LoopExit`), never hung on.

use std::time::Duration;

use greenery::hub::{self, Deadlock};
use greenery::sync::Event;

#[test]
fn waiting_on_an_event_nobody_will_set_is_a_deadlock() {
    let never = Event::new();
    assert_eq!(never.wait(), Err(Deadlock));
}

#[test]
fn joining_a_thread_blocked_forever_is_a_deadlock() {
    let stuck = greenery::spawn(|| {
        let never = Event::new();
        let _ = never.wait();
    });
    assert_eq!(stuck.join(), Err(Deadlock));
    let err = stuck.get().unwrap_err();
    assert!(err.is_deadlock());
    assert!(err.to_string().contains("this would block forever"), "{err}");
}

#[test]
fn a_cycle_of_green_threads_waiting_on_each_other_is_a_deadlock() {
    let a = std::rc::Rc::new(Event::new());
    let b = std::rc::Rc::new(Event::new());
    let (a1, b1) = (a.clone(), b.clone());
    let first = greenery::spawn(move || {
        let _ = a1.wait();
        b1.set();
    });
    let (a2, b2) = (a.clone(), b.clone());
    let second = greenery::spawn(move || {
        let _ = b2.wait();
        a2.set();
    });
    assert!(hub::joinall([&first, &second], None, false).unwrap_err().is_deadlock());
}

#[test]
fn a_pending_timer_is_not_a_deadlock() {
    let event = std::rc::Rc::new(Event::new());
    let setter = event.clone();
    let _later = hub::spawn_later(Duration::from_millis(20), move || setter.set());
    assert_eq!(event.wait(), Ok(()));
}

#[test]
fn a_blocking_task_in_flight_is_not_a_deadlock() {
    let value = hub::spawn_blocking(|| {
        std::thread::sleep(Duration::from_millis(20));
        9
    });
    assert_eq!(value.unwrap(), 9);
}

#[test]
fn a_remote_handle_keeps_the_hub_waiting_and_dropping_it_ends_that() {
    let event = std::rc::Rc::new(Event::new());
    let handle = hub::Handle::current();
    let (tx, rx) = std::sync::mpsc::channel::<hub::Handle>();
    let other = std::thread::spawn(move || {
        let hub = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(hub); // nothing will be sent: the wait below becomes a deadlock
    });
    tx.send(handle).unwrap();
    assert_eq!(event.wait(), Err(Deadlock), "reported once the last handle is gone");
    other.join().unwrap();
}

#[test]
fn the_deadlock_message_names_the_problem() {
    let message = Deadlock.to_string();
    assert!(message.starts_with("this would block forever: deadlock"), "{message}");
}

#[test]
fn the_hub_works_again_after_a_deadlock() {
    let never = Event::new();
    assert_eq!(never.wait(), Err(Deadlock));
    assert_eq!(greenery::spawn(|| 1).get().unwrap(), 1);
    greenery::sleep(Duration::from_millis(1));
}

// Issue 14.10: `unwrap()` shows the explanation, not just `Deadlock`.
#[test]
fn unwrap_of_a_deadlock_shows_the_explanation() {
    let never = Event::new();
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| never.wait().unwrap())).unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("Deadlock: this would block forever: deadlock (every green thread is waiting"),
        "{message}"
    );
}
