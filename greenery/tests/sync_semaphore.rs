//! `sync::Semaphore` and `sync::BoundedSemaphore`: permits, first-come
//! first-served hand-off, timeouts, kills, deadlock and over-release.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::cell::RefCell;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::{BoundedSemaphore, Semaphore, TooManyReleases};

mod reports;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

fn settle() {
    greenery::idle().unwrap();
}

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A green thread that takes a permit, notes `name`, and gives it back.
fn spawn_taker(semaphore: &Rc<Semaphore>, log: &Log, name: &'static str) -> greenery::JoinHandle<()> {
    let (semaphore, log) = (semaphore.clone(), log.clone());
    greenery::spawn(move || {
        let _permit = semaphore.acquire().unwrap();
        log.borrow_mut().push(name);
    })
}

#[test]
fn permits_are_counted_and_given_back_on_drop() {
    let semaphore = Semaphore::new(2);
    assert_eq!(semaphore.available_permits(), 2);
    let first = semaphore.try_acquire().unwrap();
    let second = semaphore.acquire().unwrap();
    assert_eq!(semaphore.available_permits(), 0);
    assert!(semaphore.try_acquire().is_none());
    assert_eq!(semaphore.acquire_timeout(SHORT).unwrap().map(|_| ()), None);
    drop(first);
    assert_eq!(semaphore.available_permits(), 1);
    let third = semaphore.acquire_timeout(SHORT).unwrap().unwrap();
    drop((second, third));
    assert_eq!(semaphore.available_permits(), 2);
    assert_eq!(format!("{semaphore:?}"), "Semaphore { available: 2, waiting: 0 }");
    assert_eq!(Semaphore::default().available_permits(), 1);
    assert_eq!(Semaphore::new(0).available_permits(), 0);
}

#[test]
fn forget_and_release_are_gevent_acquire_and_release() {
    let semaphore = Semaphore::new(1);
    semaphore.acquire().unwrap().forget();
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.release();
    assert_eq!(semaphore.available_permits(), 1);
    // An unbounded semaphore takes any number of releases.
    semaphore.release();
    semaphore.release();
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn waiters_get_permits_in_the_order_they_came() {
    let semaphore = Rc::new(Semaphore::new(0));
    let log = Log::default();
    let takers: Vec<_> =
        ["a", "b", "c", "d", "e"].into_iter().map(|n| spawn_taker(&semaphore, &log, n)).collect();
    settle();
    assert_eq!(format!("{semaphore:?}"), "Semaphore { available: 0, waiting: 5 }");
    semaphore.release(); // each passes it on to the next as it leaves
    greenery::hub::joinall(&takers, None, false).unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c", "d", "e"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn several_releases_wake_as_many_waiters_in_order() {
    let semaphore = Rc::new(Semaphore::new(0));
    let log = Log::default();
    let holders: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|name| {
            let (semaphore, log) = (semaphore.clone(), log.clone());
            greenery::spawn(move || {
                semaphore.acquire().unwrap().forget();
                log.borrow_mut().push(name);
            })
        })
        .collect();
    settle();
    semaphore.release();
    semaphore.release();
    settle();
    assert_eq!(*log.borrow(), ["a", "b"]);
    semaphore.release();
    semaphore.release();
    greenery::hub::joinall(&holders, None, false).unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c", "d"]);
    assert_eq!(semaphore.available_permits(), 0);
}

#[test]
fn a_released_permit_goes_to_the_waiter_not_to_a_later_comer() {
    let semaphore = Rc::new(Semaphore::new(1));
    let log = Log::default();
    let permit = semaphore.acquire().unwrap();
    let waiter = spawn_taker(&semaphore, &log, "waiter");
    settle();
    drop(permit); // handed to `waiter`, which has not resumed yet
    assert_eq!(semaphore.available_permits(), 0);
    assert!(semaphore.try_acquire().is_none(), "try_acquire barged ahead of a waiter");
    // `late` starts once main blocks: it asks after main, which asks after
    // `waiter`.
    let late = spawn_taker(&semaphore, &log, "late");
    {
        let _again = semaphore.acquire().unwrap();
        log.borrow_mut().push("main");
    }
    greenery::hub::joinall([&waiter, &late], None, false).unwrap();
    assert_eq!(*log.borrow(), ["waiter", "main", "late"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_timed_out_acquire_takes_nothing_and_leaves_the_line() {
    let semaphore = Rc::new(Semaphore::new(0));
    assert!(semaphore.acquire_timeout(SHORT).unwrap().is_none());
    assert!(greenery::with_timeout(SHORT, || semaphore.acquire().map(|_| ())).is_err());
    assert_eq!(format!("{semaphore:?}"), "Semaphore { available: 0, waiting: 0 }");

    // Green threads: one gives up (each way), the one behind still gets the
    // permit.
    let log = Log::default();
    let gives_up = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || semaphore.acquire_timeout(SHORT).unwrap().is_none())
    };
    let unwound = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || greenery::with_timeout(SHORT, || semaphore.acquire().map(|_| ())).is_err())
    };
    let patient = {
        let (semaphore, log) = (semaphore.clone(), log.clone());
        greenery::spawn(move || {
            let permit = semaphore.acquire_timeout(LONG).unwrap();
            log.borrow_mut().push(if permit.is_some() { "got it" } else { "timed out" });
        })
    };
    assert!(gives_up.get().unwrap());
    assert!(unwound.get().unwrap());
    semaphore.release();
    patient.join().unwrap();
    assert_eq!(*log.borrow(), ["got it"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_waiter_killed_in_line_leaves_its_place_to_the_next() {
    let semaphore = Rc::new(Semaphore::new(0));
    let log = Log::default();
    let killed = spawn_taker(&semaphore, &log, "killed");
    let next = spawn_taker(&semaphore, &log, "next");
    settle();
    killed.kill().unwrap();
    assert!(killed.get().unwrap_err().is_killed());
    semaphore.release();
    next.join().unwrap();
    assert_eq!(*log.borrow(), ["next"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_permit_handed_to_a_waiter_killed_before_it_resumes_goes_to_the_next() {
    let semaphore = Rc::new(Semaphore::new(0));
    let log = Log::default();
    let killed = spawn_taker(&semaphore, &log, "killed");
    let next = spawn_taker(&semaphore, &log, "next");
    settle();
    killed.kill_async(); // runs after the release below, before it resumes
    semaphore.release();
    assert!(killed.get().unwrap_err().is_killed());
    next.join().unwrap();
    assert_eq!(*log.borrow(), ["next"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_permit_handed_to_a_killed_waiter_with_nobody_behind_comes_back() {
    let semaphore = Rc::new(Semaphore::new(0));
    let log = Log::default();
    let killed = spawn_taker(&semaphore, &log, "killed");
    settle();
    killed.kill_async();
    semaphore.release();
    assert_eq!(semaphore.available_permits(), 0); // handed over
    assert!(killed.get().unwrap_err().is_killed());
    assert_eq!(semaphore.available_permits(), 1);
    assert!(log.borrow().is_empty());
}

#[test]
fn a_permit_is_given_back_when_its_holder_panics_or_is_killed() {
    let reports = reports::capture();
    let semaphore = Rc::new(Semaphore::new(1));
    let panics = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || {
            let _permit = semaphore.acquire().unwrap();
            panic!("holding a permit");
        })
    };
    assert!(panics.get().unwrap_err().is_panic());
    assert_eq!(semaphore.available_permits(), 1);

    let killed = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || {
            let _permit = semaphore.acquire().unwrap();
            greenery::sleep(LONG);
        })
    };
    settle();
    assert_eq!(semaphore.available_permits(), 0);
    killed.kill().unwrap();
    assert_eq!(semaphore.available_permits(), 1);

    let timed_out = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || {
            greenery::with_timeout(SHORT, || {
                let _permit = semaphore.acquire().unwrap();
                greenery::sleep(LONG);
            })
        })
    };
    assert!(timed_out.get().unwrap().is_err());
    assert_eq!(semaphore.available_permits(), 1);
    reports.assert_one(&["failed: holding a permit"]);
}

#[test]
fn waiting_for_a_permit_nobody_can_release_is_a_deadlock() {
    let semaphore = Rc::new(Semaphore::new(1));
    let holder = {
        let semaphore = semaphore.clone();
        greenery::spawn(move || {
            let _permit = semaphore.acquire().unwrap();
            greenery::sync::Event::new().wait() // never set
        })
    };
    settle();
    assert_eq!(semaphore.acquire().map(|_| ()), Err(Deadlock));
    assert_eq!(semaphore.acquire_timeout(SHORT).map(|permit| permit.is_some()), Ok(false));
    assert!(!holder.is_ready());
    assert_eq!(Semaphore::new(0).acquire().map(|_| ()), Err(Deadlock));
    assert_eq!(BoundedSemaphore::new(0).acquire().map(|_| ()), Err(Deadlock));
}

#[test]
fn a_bounded_semaphore_refuses_a_release_too_many() {
    let semaphore = BoundedSemaphore::new(2);
    assert_eq!(semaphore.max_permits(), 2);
    assert_eq!(semaphore.release(), Err(TooManyReleases));
    assert_eq!(semaphore.available_permits(), 2);
    semaphore.acquire().unwrap().forget();
    semaphore.try_acquire().unwrap().forget();
    assert!(semaphore.acquire_timeout(SHORT).unwrap().is_none());
    assert_eq!(semaphore.release(), Ok(()));
    assert_eq!(semaphore.release(), Ok(()));
    assert_eq!(semaphore.release(), Err(TooManyReleases));
    assert_eq!(semaphore.available_permits(), 2);
    assert_eq!(format!("{semaphore:?}"), "BoundedSemaphore { available: 2, max: 2, waiting: 0 }");

    assert_eq!(TooManyReleases.to_string(), "semaphore released too many times: every permit is in already");
    let boxed: Box<dyn Error> = Box::new(TooManyReleases);
    assert!(boxed.source().is_none());
    assert_eq!(BoundedSemaphore::default().max_permits(), 1);
}

#[test]
fn a_bounded_permit_released_by_hand_too_puts_nothing_back_twice() {
    let semaphore = BoundedSemaphore::new(1);
    let permit = semaphore.acquire().unwrap();
    assert_eq!(semaphore.release(), Ok(())); // the permit's own, by hand
    drop(permit); // nothing left to give back
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_bounded_semaphore_hands_permits_over_in_order_and_counts_them_out() {
    let semaphore = Rc::new(BoundedSemaphore::new(1));
    let log = Log::default();
    semaphore.acquire().unwrap().forget();
    let takers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let (semaphore, log) = (semaphore.clone(), log.clone());
            greenery::spawn(move || {
                let _permit = semaphore.acquire().unwrap();
                log.borrow_mut().push(name);
            })
        })
        .collect();
    settle();
    assert_eq!(semaphore.release(), Ok(())); // handed to "a"
    // Handed over, not yet taken: still counts as out, so one more
    // release is one too many.
    assert_eq!(semaphore.release(), Err(TooManyReleases));
    greenery::hub::joinall(&takers, None, false).unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c"]);
    assert_eq!(semaphore.available_permits(), 1);
}
