//! `sync::Mutex`: locking, first-come first-served hand-off, timeouts,
//! kills, no poisoning, deadlock.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::Mutex;

mod reports;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

fn settle() {
    greenery::idle().unwrap();
}

/// A green thread that locks the mutex, pushes `name` onto its value and to
/// the log, and unlocks it.
fn spawn_locker(mutex: &Rc<Mutex<Vec<&'static str>>>, name: &'static str) -> greenery::JoinHandle<()> {
    let mutex = mutex.clone();
    greenery::spawn(move || mutex.lock().unwrap().push(name))
}

#[test]
fn lock_gives_the_value_and_unlocks_on_drop() {
    let mutex = Mutex::new(vec![1]);
    assert!(!mutex.is_locked());
    {
        let mut guard = mutex.lock().unwrap();
        guard.push(2);
        assert!(mutex.is_locked());
        assert!(mutex.try_lock().is_none());
        assert!(mutex.lock_timeout(SHORT).unwrap().is_none());
        assert_eq!(format!("{guard:?}"), "[1, 2]");
        assert_eq!(format!("{mutex:?}"), "Mutex { value: <locked>, .. }");
    }
    assert!(!mutex.is_locked());
    assert_eq!(format!("{mutex:?}"), "Mutex { value: [1, 2], .. }");
    mutex.try_lock().unwrap().push(3);
    mutex.lock_timeout(SHORT).unwrap().unwrap().push(4);
    let mut mutex = mutex;
    mutex.get_mut().push(5);
    assert_eq!(mutex.into_inner(), [1, 2, 3, 4, 5]);
    assert_eq!(*Mutex::<u8>::default().lock().unwrap(), 0);
    assert_eq!(Mutex::from("x").lock().unwrap().to_string(), "x");
    // Unsized values.
    let slice: &Mutex<[u8]> = &Mutex::new([1u8, 2, 3]);
    slice.lock().unwrap()[0] = 9;
    assert_eq!(&*slice.lock().unwrap(), [9, 2, 3]);
}

#[test]
fn the_guard_is_held_across_blocking_calls_while_others_wait() {
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let mutex = mutex.clone();
            greenery::spawn(move || {
                let mut guard = mutex.lock().unwrap();
                guard.push(name);
                greenery::sleep(Duration::from_millis(1));
                greenery::yield_now();
                guard.push(name);
            })
        })
        .collect();
    greenery::hub::joinall(&writers, None, false).unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["a", "a", "b", "b", "c", "c"]);
}

#[test]
fn the_lock_is_handed_over_in_the_order_of_asking() {
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let guard = mutex.lock().unwrap();
    let lockers: Vec<_> = ["a", "b", "c", "d"].into_iter().map(|name| spawn_locker(&mutex, name)).collect();
    settle();
    drop(guard); // handed to "a", which has not resumed yet
    assert!(mutex.is_locked());
    assert!(mutex.try_lock().is_none(), "try_lock barged ahead of a waiter");
    mutex.lock().unwrap().push("main"); // behind "d"
    greenery::hub::joinall(&lockers, None, false).unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["a", "b", "c", "d", "main"]);
}

#[test]
fn a_green_thread_that_unlocks_and_locks_again_queues_behind_the_waiters() {
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let greedy = {
        let mutex = mutex.clone();
        greenery::spawn(move || {
            for _ in 0..3 {
                let mut guard = mutex.lock().unwrap();
                guard.push("greedy");
                greenery::yield_now(); // let "other" line up
            }
        })
    };
    let other = {
        let mutex = mutex.clone();
        greenery::spawn(move || {
            for _ in 0..3 {
                mutex.lock().unwrap().push("other");
            }
        })
    };
    greenery::hub::joinall([&greedy, &other], None, false).unwrap();
    assert_eq!(*mutex.lock().unwrap(), ["greedy", "other", "greedy", "other", "greedy", "other"]);
}

#[test]
fn timeouts_give_up_their_place_and_take_nothing() {
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let guard = mutex.lock().unwrap();
    let gives_up = {
        let mutex = mutex.clone();
        greenery::spawn(move || mutex.lock_timeout(SHORT).unwrap().is_none())
    };
    let unwound = {
        let mutex = mutex.clone();
        greenery::spawn(move || greenery::with_timeout(SHORT, || mutex.lock().map(|_| ())).is_err())
    };
    let patient = {
        let mutex = mutex.clone();
        greenery::spawn(move || mutex.lock_timeout(LONG).unwrap().map(|mut guard| guard.push("patient")))
    };
    assert!(gives_up.get().unwrap());
    assert!(unwound.get().unwrap());
    drop(guard);
    assert_eq!(patient.get().unwrap(), Some(()));
    assert_eq!(*mutex.lock().unwrap(), ["patient"]);
    assert!(
        greenery::with_timeout(SHORT, || {
            let _held = mutex.lock().unwrap();
            mutex.lock().map(|_| ()) // not reentrant: waits for itself
        })
        .is_err()
    );
    assert!(!mutex.is_locked());
}

#[test]
fn a_waiter_killed_in_line_or_once_handed_the_lock_passes_it_on() {
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let guard = mutex.lock().unwrap();
    let killed_waiting = spawn_locker(&mutex, "killed waiting");
    let killed_woken = spawn_locker(&mutex, "killed woken");
    let next = spawn_locker(&mutex, "next");
    settle();
    killed_waiting.kill().unwrap();
    killed_woken.kill_async(); // runs after the unlock below, before it resumes
    drop(guard);
    next.join().unwrap();
    assert!(killed_waiting.get().unwrap_err().is_killed());
    assert!(killed_woken.get().unwrap_err().is_killed());
    assert_eq!(*mutex.lock().unwrap(), ["next"]);

    // Handed to a killed waiter with nobody behind: it is unlocked.
    let guard = mutex.lock().unwrap();
    let killed = spawn_locker(&mutex, "killed");
    settle();
    killed.kill_async();
    drop(guard);
    assert!(killed.get().unwrap_err().is_killed());
    assert!(!mutex.is_locked());
}

#[test]
fn a_guard_dropped_by_a_kill_or_a_timeout_unlocks() {
    let mutex = Rc::new(Mutex::new(0));
    let killed = {
        let mutex = mutex.clone();
        greenery::spawn(move || {
            *mutex.lock().unwrap() += 1;
            let mut guard = mutex.lock().unwrap();
            *guard += 1;
            greenery::sleep(LONG);
        })
    };
    settle();
    assert!(mutex.is_locked());
    killed.kill().unwrap();
    assert!(!mutex.is_locked());
    assert_eq!(*mutex.lock().unwrap(), 2);

    let timed_out = greenery::with_timeout(SHORT, || {
        let _guard = mutex.lock().unwrap();
        greenery::sleep(LONG);
    });
    assert!(timed_out.is_err());
    assert!(!mutex.is_locked());
}

#[test]
fn a_panic_while_locked_unlocks_without_poisoning() {
    let reports = reports::capture();
    let mutex = Rc::new(Mutex::new(Vec::new()));
    let panics = {
        let mutex = mutex.clone();
        greenery::spawn(move || {
            let mut guard = mutex.lock().unwrap();
            guard.push("before the panic");
            panic!("while holding the lock");
        })
    };
    let waiter = spawn_locker(&mutex, "waiter");
    assert!(panics.get().unwrap_err().is_panic());
    waiter.join().unwrap();
    // Not poisoned: the next lock succeeds and sees what was left.
    assert_eq!(*mutex.lock().unwrap(), ["before the panic", "waiter"]);
    reports.assert_one(&["failed: while holding the lock"]);
}

#[test]
fn locking_a_mutex_nobody_can_unlock_is_a_deadlock() {
    let mutex = Mutex::new(());
    let guard = mutex.lock().unwrap();
    assert_eq!(mutex.lock().map(|_| ()), Err(Deadlock)); // waiting for itself
    assert!(mutex.lock_timeout(SHORT).unwrap().is_none());
    drop(guard);

    let mutex = Rc::new(Mutex::new(()));
    let holder = {
        let mutex = mutex.clone();
        greenery::spawn(move || {
            let _guard = mutex.lock().unwrap();
            greenery::sync::Event::new().wait() // never set
        })
    };
    settle();
    assert_eq!(mutex.lock().map(|_| ()), Err(Deadlock));
    holder.kill().unwrap();
    assert!(mutex.lock().is_ok());
}
