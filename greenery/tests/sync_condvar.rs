//! `sync::Condvar` with `sync::Mutex`: waiting and notifying, order of
//! wake-ups, timeouts, kills, deadlock.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::{Condvar, Mutex};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

fn settle() {
    greenery::idle().unwrap();
}

/// A mutex around a log, and a condition variable.
type Shared = Rc<(Mutex<Vec<&'static str>>, Condvar)>;

fn shared() -> Shared {
    Rc::new((Mutex::new(Vec::new()), Condvar::new()))
}

/// A green thread that waits once on the condition variable, then logs
/// `name` (under the lock, taken again).
fn spawn_waiter(shared: &Shared, name: &'static str) -> greenery::JoinHandle<()> {
    let shared = shared.clone();
    greenery::spawn(move || {
        let (mutex, condvar) = &*shared;
        let guard = mutex.lock().unwrap();
        let mut guard = condvar.wait(guard).unwrap();
        guard.push(name);
    })
}

#[test]
fn notify_one_wakes_the_waiters_one_at_a_time_in_order() {
    let shared = shared();
    let waiters: Vec<_> = ["a", "b", "c"].into_iter().map(|name| spawn_waiter(&shared, name)).collect();
    settle();
    let (mutex, condvar) = &*shared;
    assert!(!mutex.is_locked()); // each wait unlocked it
    assert_eq!(format!("{condvar:?}"), "Condvar { waiting: 3 }");
    assert!(condvar.notify_one());
    settle();
    assert_eq!(*mutex.lock().unwrap(), ["a"]);
    assert!(condvar.notify_one());
    assert!(condvar.notify_one());
    greenery::hub::joinall(&waiters, None, false).unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["a", "b", "c"]);
    assert!(!condvar.notify_one()); // nobody left
}

#[test]
fn notify_all_wakes_every_waiter_in_order() {
    let shared = shared();
    let waiters: Vec<_> = ["a", "b", "c"].into_iter().map(|name| spawn_waiter(&shared, name)).collect();
    settle();
    let (mutex, condvar) = &*shared;
    assert_eq!(condvar.notify_all(), 3);
    greenery::hub::joinall(&waiters, None, false).unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["a", "b", "c"]);
    assert_eq!(condvar.notify_all(), 0);
}

#[test]
fn a_notification_with_nobody_waiting_is_lost() {
    let shared = shared();
    let (mutex, condvar) = &*shared;
    assert!(!condvar.notify_one());
    assert_eq!(condvar.notify_all(), 0);
    let waiter = spawn_waiter(&shared, "waiter");
    settle();
    assert!(!waiter.is_ready());
    assert!(mutex.lock().unwrap().is_empty());
    condvar.notify_one();
    waiter.join().unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["waiter"]);
}

#[test]
fn a_woken_waiter_waits_in_line_for_the_mutex() {
    let shared = shared();
    let waiter = spawn_waiter(&shared, "waiter");
    settle();
    let (mutex, condvar) = &*shared;
    let mut guard = mutex.lock().unwrap();
    condvar.notify_one();
    greenery::yield_now();
    greenery::yield_now();
    assert!(!waiter.is_ready()); // woken, but the lock is main's
    guard.push("main");
    drop(guard);
    waiter.join().unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["main", "waiter"]);
}

#[test]
fn wait_while_and_wait_timeout_while_check_the_condition() {
    let counter = Rc::new((Mutex::new(0u32), Condvar::new()));
    let waiter = {
        let counter = counter.clone();
        greenery::spawn(move || {
            let (mutex, condvar) = &*counter;
            let guard = condvar.wait_while(mutex.lock().unwrap(), |count| *count < 3).unwrap();
            *guard
        })
    };
    let timed = {
        let counter = counter.clone();
        greenery::spawn(move || {
            let (mutex, condvar) = &*counter;
            let (guard, done) =
                condvar.wait_timeout_while(mutex.lock().unwrap(), LONG, |count| *count < 2).unwrap();
            (*guard, done)
        })
    };
    settle();
    let (mutex, condvar) = &*counter;
    for _ in 0..3 {
        *mutex.lock().unwrap() += 1;
        condvar.notify_all();
        settle();
    }
    assert_eq!(waiter.get().unwrap(), 3);
    assert_eq!(timed.get().unwrap(), (2, true));

    // Not holding to begin with: no wait at all.
    let guard = condvar.wait_while(mutex.lock().unwrap(), |_| false).unwrap();
    assert_eq!(*guard, 3);
    let (guard, done) = condvar.wait_timeout_while(guard, SHORT, |_| false).unwrap();
    assert!(done);
    // Still holding when the time runs out.
    let (guard, done) = condvar.wait_timeout_while(guard, SHORT, |count| *count == 3).unwrap();
    assert!(!done);
    assert_eq!(*guard, 3);
    assert!(mutex.is_locked());
}

#[test]
fn wait_timeout_says_whether_it_was_notified_and_locks_again_either_way() {
    let shared = shared();
    let (mutex, condvar) = &*shared;
    let (guard, notified) = condvar.wait_timeout(mutex.lock().unwrap(), SHORT).unwrap();
    assert!(!notified);
    assert!(mutex.is_locked());
    drop(guard);
    assert_eq!(format!("{condvar:?}"), "Condvar { waiting: 0 }");

    let notified = {
        let shared = shared.clone();
        greenery::spawn(move || {
            let (mutex, condvar) = &*shared;
            let (mut guard, notified) = condvar.wait_timeout(mutex.lock().unwrap(), LONG).unwrap();
            guard.push("notified");
            notified
        })
    };
    settle();
    condvar.notify_one();
    assert!(notified.get().unwrap());
    assert_eq!(*mutex.lock().unwrap(), ["notified"]);
}

#[test]
fn a_timeout_around_wait_leaves_the_mutex_unlocked_and_the_line() {
    let shared = shared();
    let (mutex, condvar) = &*shared;
    let outcome = greenery::with_timeout(SHORT, || {
        let guard = mutex.lock().unwrap();
        condvar.wait(guard).map(|_| ())
    });
    assert!(outcome.is_err());
    assert!(!mutex.is_locked());
    assert_eq!(format!("{condvar:?}"), "Condvar { waiting: 0 }");
    // The next notification goes to a real waiter.
    let waiter = spawn_waiter(&shared, "waiter");
    settle();
    assert!(condvar.notify_one());
    waiter.join().unwrap();
}

#[test]
fn a_waiter_killed_in_line_or_once_notified_passes_the_notification_on() {
    let shared = shared();
    let killed_waiting = spawn_waiter(&shared, "killed waiting");
    let killed_woken = spawn_waiter(&shared, "killed woken");
    let next = spawn_waiter(&shared, "next");
    let last = spawn_waiter(&shared, "last");
    settle();
    let (mutex, condvar) = &*shared;
    killed_waiting.kill().unwrap();
    killed_woken.kill_async(); // runs after the notification, before it resumes
    assert!(condvar.notify_one()); // wakes `killed_woken`, which passes it to `next`
    next.join().unwrap();
    assert!(killed_waiting.get().unwrap_err().is_killed());
    assert!(killed_woken.get().unwrap_err().is_killed());
    assert!(!last.is_ready());
    assert_eq!(*mutex.lock().unwrap(), ["next"]);
    assert!(!mutex.is_locked());
    assert!(condvar.notify_one());
    last.join().unwrap();
}

#[test]
fn a_waiter_killed_while_locking_again_unlocks_nothing_it_does_not_hold() {
    let shared = shared();
    let killed = spawn_waiter(&shared, "killed");
    settle();
    let (mutex, condvar) = &*shared;
    let guard = mutex.lock().unwrap();
    condvar.notify_one();
    settle(); // `killed` is woken, and now waits for the mutex
    killed.kill().unwrap();
    assert!(mutex.is_locked()); // still main's
    drop(guard);
    assert!(!mutex.is_locked());
    assert!(mutex.lock().unwrap().is_empty());
}

#[test]
fn no_wake_up_is_lost_between_the_unlock_and_the_wait() {
    // The notifier waits for the mutex while the waiter holds it: the wait's
    // unlock hands the mutex over, and the notification comes at once.
    let shared = shared();
    let (mutex, condvar) = &*shared;
    let guard = mutex.lock().unwrap();
    let notifier = {
        let shared = shared.clone();
        greenery::spawn(move || {
            let (mutex, condvar) = &*shared;
            mutex.lock().unwrap().push("notifier");
            condvar.notify_one()
        })
    };
    settle();
    let mut guard = condvar.wait(guard).unwrap();
    guard.push("waiter");
    drop(guard);
    assert!(notifier.get().unwrap());
    assert_eq!(*mutex.lock().unwrap(), ["notifier", "waiter"]);
}

#[test]
fn waiting_without_a_notifier_is_a_deadlock_and_unlocks() {
    let shared = shared();
    let (mutex, condvar) = &*shared;
    let guard = mutex.lock().unwrap();
    assert_eq!(condvar.wait(guard).map(|_| ()), Err(Deadlock));
    assert!(!mutex.is_locked());
    let guard = mutex.lock().unwrap();
    assert_eq!(condvar.wait_while(guard, |_| true).map(|_| ()), Err(Deadlock));
    assert!(!mutex.is_locked());
    assert_eq!(Condvar::default().notify_all(), 0);
}
