//! Timers: sleep, spawn_later, yield_now, idle, and many timers at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::hub;

#[test]
fn sleep_blocks_only_the_calling_green_thread() {
    let ticks = Rc::new(Cell::new(0));
    let counter = ticks.clone();
    let ticker = greenery::spawn(move || {
        for _ in 0..5 {
            counter.set(counter.get() + 1);
            greenery::yield_now();
        }
    });
    let start = Instant::now();
    greenery::sleep(Duration::from_millis(20));
    assert!(start.elapsed() >= Duration::from_millis(20), "sleep returned early");
    assert_eq!(ticks.get(), 5, "the other green thread ran meanwhile");
    ticker.get().unwrap();
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = [40u64, 10, 30, 20]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            greenery::spawn(move || {
                greenery::sleep(Duration::from_millis(ms));
                order.borrow_mut().push(ms);
            })
        })
        .collect();
    hub::joinall(&handles, None, false).unwrap();
    assert_eq!(*order.borrow(), [10, 20, 30, 40]);
}

#[test]
fn a_zero_sleep_is_a_yield() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let other_log = log.clone();
    let other = greenery::spawn(move || other_log.borrow_mut().push("other"));
    log.borrow_mut().push("before");
    greenery::sleep(Duration::ZERO);
    log.borrow_mut().push("after");
    other.get().unwrap();
    assert_eq!(*log.borrow(), ["before", "other", "after"]);
}

#[test]
fn yield_now_with_nothing_else_to_run_returns() {
    for _ in 0..3 {
        greenery::yield_now();
    }
}

#[test]
fn spawn_later_starts_after_the_delay_and_in_delay_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            hub::spawn_later(Duration::from_millis(ms), move || {
                order.borrow_mut().push(ms);
                start.elapsed()
            })
        })
        .collect();
    let started_after: Vec<Duration> = handles.into_iter().map(|h| h.get().unwrap()).collect();
    assert_eq!(*order.borrow(), [10, 20, 30]);
    for (after, ms) in started_after.iter().zip([30u64, 10, 20]) {
        assert!(*after >= Duration::from_millis(ms), "started after {after:?}, before {ms} ms");
    }
}

#[test]
fn spawn_later_killed_before_its_delay_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let handle = hub::spawn_later(Duration::from_millis(10), move || flag.set(true));
    handle.kill().unwrap();
    greenery::sleep(Duration::from_millis(30));
    assert!(!ran.get());
    assert!(handle.get().unwrap_err().is_killed());
}

#[test]
fn idle_returns_once_every_other_green_thread_is_blocked() {
    let progress = Rc::new(Cell::new(0));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let progress = progress.clone();
            greenery::spawn(move || {
                for _ in 0..10 {
                    progress.set(progress.get() + 1);
                    greenery::yield_now();
                }
                greenery::sleep(Duration::from_millis(5));
            })
        })
        .collect();
    hub::idle().unwrap();
    assert_eq!(progress.get(), 30, "idle waited for every ready green thread");
    assert!(handles.iter().all(|h| !h.is_ready()), "they are asleep, not done");
    hub::joinall(&handles, None, false).unwrap();
}

/// Under an emulator (the aarch64 run of `.ci/run`, which names it in
/// `GREENERY_TEST_RUNNER`) everything runs tens of times slower, and qemu-user
/// ignores guard regions, so stacks take two mappings each and at most about
/// 32,000 fit under the default `vm.max_map_count`: the big test shrinks.
fn emulated() -> bool {
    std::env::var_os("GREENERY_TEST_RUNNER").is_some_and(|runner| !runner.is_empty())
}

#[test]
fn a_hundred_thousand_green_threads_sleep_on_timers_at_once() {
    let n: usize = if emulated() { 10_000 } else { 100_000 };
    let woke = Rc::new(Cell::new(0usize));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let woke = woke.clone();
            greenery::spawn(move || {
                // Deadlines spread over 0..50 ms, many equal.
                greenery::sleep(Duration::from_millis((i % 50) as u64));
                woke.set(woke.get() + 1);
            })
        })
        .collect();
    hub::joinall(&handles, None, false).unwrap();
    assert_eq!(woke.get(), n);
    assert!(handles.iter().all(|h| h.is_successful()));
}

#[test]
fn a_cancelled_sleep_leaves_no_timer_behind() {
    // A killed sleeper's timer is cancelled: with nothing else pending, the
    // main greenlet's wait on a never-ending thread is reported as a deadlock
    // at once, not after the hour-long timer.
    let sleeper = greenery::spawn(|| greenery::sleep(Duration::from_secs(3600)));
    greenery::yield_now();
    sleeper.kill().unwrap();
    let forever = greenery::spawn(|| {
        let never = greenery::sync::Event::new();
        let _ = never.wait();
    });
    assert_eq!(forever.join(), Err(hub::Deadlock));
}
