//! `sync::RLock`: reentrancy, holds, explicit acquire and release, order of
//! hand-off, timeouts, kills, deadlock and errors.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::cell::RefCell;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::{NotOwner, RLock};

mod reports;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

fn settle() {
    greenery::idle().unwrap();
}

type Log = RLock<RefCell<Vec<&'static str>>>;

/// A green thread that locks, logs `name`, and unlocks.
fn spawn_locker(lock: &Rc<Log>, name: &'static str) -> greenery::JoinHandle<()> {
    let lock = lock.clone();
    greenery::spawn(move || lock.lock().unwrap().borrow_mut().push(name))
}

#[test]
fn the_owner_locks_again_without_waiting() {
    let lock = RLock::new(RefCell::new(0));
    assert!(!lock.is_locked());
    assert!(!lock.is_owned());
    assert_eq!(lock.hold_count(), 0);
    let outer = lock.lock().unwrap();
    let inner = lock.try_lock().unwrap();
    let third = lock.lock_timeout(SHORT).unwrap().unwrap();
    *inner.borrow_mut() += 1;
    *third.borrow_mut() += 1;
    assert_eq!(*outer.borrow(), 2);
    assert_eq!(lock.hold_count(), 3);
    assert!(lock.is_owned());
    assert!(lock.is_locked());
    assert_eq!(format!("{inner:?}"), "RefCell { value: 2 }");
    drop(inner);
    drop(outer); // in any order
    assert_eq!(lock.hold_count(), 1);
    assert!(lock.is_locked());
    drop(third);
    assert!(!lock.is_locked());
    assert!(!lock.is_owned());
    assert_eq!(format!("{lock:?}"), "RLock { owner: None, holds: 0, value: RefCell { value: 2 } }");
    let mut lock = lock;
    *lock.get_mut().get_mut() += 1;
    assert_eq!(lock.into_inner().into_inner(), 3);
    assert_eq!(RLock::from(5).lock().unwrap().to_string(), "5");
    assert_eq!(*RLock::<u8>::default().lock().unwrap(), 0);
}

#[test]
fn others_wait_until_every_hold_is_released() {
    let lock = Rc::new(Log::default());
    let outer = lock.lock().unwrap();
    let inner = lock.lock().unwrap();
    let other = spawn_locker(&lock, "other");
    let gives_up = {
        let lock = lock.clone();
        greenery::spawn(move || (lock.try_lock().is_none(), lock.lock_timeout(SHORT).unwrap().is_none()))
    };
    assert_eq!(gives_up.get().unwrap(), (true, true));
    drop(inner);
    settle();
    assert!(!other.is_ready());
    inner_push(&lock, "main");
    drop(outer);
    other.join().unwrap();
    assert_eq!(*lock.lock().unwrap().borrow(), ["main", "other"]);
}

fn inner_push(lock: &Log, name: &'static str) {
    lock.lock().unwrap().borrow_mut().push(name);
}

#[test]
fn the_lock_is_handed_over_in_the_order_of_asking() {
    let lock = Rc::new(Log::default());
    let guard = lock.lock().unwrap();
    let lockers: Vec<_> = ["a", "b", "c"].into_iter().map(|name| spawn_locker(&lock, name)).collect();
    settle();
    drop(guard); // handed to "a", which has not resumed yet
    assert!(lock.is_locked());
    assert!(!lock.is_owned());
    assert!(lock.try_lock().is_none(), "try_lock barged ahead of a waiter");
    assert!(!lock.try_acquire());
    inner_push(&lock, "main"); // behind "c"
    greenery::hub::joinall(&lockers, None, false).unwrap();
    assert_eq!(*lock.lock().unwrap().borrow(), ["a", "b", "c", "main"]);
}

#[test]
fn acquire_and_release_count_holds() {
    let lock: RLock = RLock::default();
    assert_eq!(lock.release(), Err(NotOwner)); // free
    lock.acquire().unwrap();
    assert!(lock.try_acquire());
    assert!(lock.acquire_timeout(SHORT).unwrap());
    assert_eq!(lock.hold_count(), 3);
    let guard = lock.lock().unwrap();
    assert_eq!(lock.hold_count(), 4);
    drop(guard);
    for left in [2, 1, 0] {
        lock.release().unwrap();
        assert_eq!(lock.hold_count(), left);
    }
    assert!(!lock.is_locked());
    assert_eq!(lock.release(), Err(NotOwner));
}

#[test]
fn release_by_a_green_thread_that_holds_nothing_is_an_error() {
    let lock = Rc::new(RLock::new(()));
    lock.acquire().unwrap();
    let intruder = {
        let lock = lock.clone();
        greenery::spawn(move || (lock.is_owned(), lock.release()))
    };
    assert_eq!(intruder.get().unwrap(), (false, Err(NotOwner)));
    assert_eq!(lock.hold_count(), 1); // unchanged
    assert!(lock.is_owned());
    lock.release().unwrap();

    assert_eq!(
        NotOwner.to_string(),
        "cannot release un-acquired lock: the current green thread holds no hold on this RLock"
    );
    let boxed: Box<dyn Error> = Box::new(NotOwner);
    assert!(boxed.source().is_none());
}

#[test]
fn a_guard_whose_hold_was_released_by_hand_releases_nothing() {
    let lock = Rc::new(Log::default());
    let guard = lock.lock().unwrap();
    lock.release().unwrap(); // the guard's hold, by hand
    assert!(!lock.is_locked());
    // Another green thread takes the lock meanwhile; the stale guard must
    // not release its hold.
    let holder = {
        let lock = lock.clone();
        greenery::spawn(move || {
            let _guard = lock.lock().unwrap();
            greenery::sleep(LONG);
        })
    };
    settle();
    drop(guard);
    assert!(lock.is_locked());
    assert_eq!(lock.hold_count(), 1);
    holder.kill().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn timeouts_give_up_their_place_and_take_nothing() {
    let lock = Rc::new(Log::default());
    let guard = lock.lock().unwrap();
    let gives_up = {
        let lock = lock.clone();
        greenery::spawn(move || {
            (lock.lock_timeout(SHORT).unwrap().is_none(), !lock.acquire_timeout(SHORT).unwrap())
        })
    };
    let unwound = {
        let lock = lock.clone();
        greenery::spawn(move || greenery::with_timeout(SHORT, || lock.lock().map(|_| ())).is_err())
    };
    let patient = spawn_locker(&lock, "patient");
    assert_eq!(gives_up.get().unwrap(), (true, true));
    assert!(unwound.get().unwrap());
    drop(guard);
    patient.join().unwrap();
    assert_eq!(*lock.lock().unwrap().borrow(), ["patient"]);
    assert!(!lock.is_locked());
}

#[test]
fn a_waiter_killed_in_line_or_once_handed_the_lock_passes_it_on() {
    let lock = Rc::new(Log::default());
    let guard = lock.lock().unwrap();
    let killed_waiting = spawn_locker(&lock, "killed waiting");
    let killed_woken = spawn_locker(&lock, "killed woken");
    let next = spawn_locker(&lock, "next");
    settle();
    killed_waiting.kill().unwrap();
    killed_woken.kill_async(); // runs after the release below, before it resumes
    drop(guard);
    next.join().unwrap();
    assert!(killed_waiting.get().unwrap_err().is_killed());
    assert!(killed_woken.get().unwrap_err().is_killed());
    assert_eq!(*lock.lock().unwrap().borrow(), ["next"]);

    // Handed to a killed waiter with nobody behind: it is free again.
    lock.acquire().unwrap();
    let killed = spawn_locker(&lock, "killed");
    settle();
    killed.kill_async();
    lock.release().unwrap();
    assert!(killed.get().unwrap_err().is_killed());
    assert!(!lock.is_locked());
}

#[test]
fn nested_guards_dropped_by_a_kill_or_a_panic_release_every_hold() {
    let reports = reports::capture();
    let lock = Rc::new(Log::default());
    let killed = {
        let lock = lock.clone();
        greenery::spawn(move || {
            let _outer = lock.lock().unwrap();
            let _inner = lock.lock().unwrap();
            greenery::sleep(LONG);
        })
    };
    settle();
    assert_eq!(lock.hold_count(), 2);
    killed.kill().unwrap();
    assert!(!lock.is_locked());

    let panics = {
        let lock = lock.clone();
        greenery::spawn(move || {
            let _outer = lock.lock().unwrap();
            let inner = lock.lock().unwrap();
            inner.borrow_mut().push("before the panic");
            panic!("while holding the lock twice");
        })
    };
    assert!(panics.get().unwrap_err().is_panic());
    assert!(!lock.is_locked());
    assert_eq!(*lock.lock().unwrap().borrow(), ["before the panic"]);
    reports.assert_one(&["failed: while holding the lock twice"]);
}

#[test]
fn a_hold_kept_by_hand_past_the_owner_s_death_keeps_the_lock() {
    let lock = Rc::new(RLock::new(()));
    let owner = {
        let lock = lock.clone();
        greenery::spawn(move || lock.acquire().unwrap())
    };
    owner.join().unwrap();
    assert!(lock.is_locked());
    assert!(!lock.is_owned());
    assert_eq!(lock.release(), Err(NotOwner));
    assert_eq!(lock.lock().map(|_| ()), Err(Deadlock));
}

#[test]
fn locking_an_rlock_nobody_can_release_is_a_deadlock() {
    let lock = Rc::new(RLock::new(()));
    let holder = {
        let lock = lock.clone();
        greenery::spawn(move || {
            let _guard = lock.lock().unwrap();
            greenery::sync::Event::new().wait() // never set
        })
    };
    settle();
    assert_eq!(lock.lock().map(|_| ()), Err(Deadlock));
    assert_eq!(lock.acquire(), Err(Deadlock));
    assert_eq!(lock.acquire_timeout(SHORT), Ok(false));
    holder.kill().unwrap();
    assert!(lock.lock().is_ok());
}
