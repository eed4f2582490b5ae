//! Green threads: spawning, joining, values, panics, kills, links, ids and
//! names, green-thread-local storage, and the functions over many handles.
//!
//! Every test runs on a thread of its own (libtest's), so each has a fresh
//! hub.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenery::Builder;
use greenery::greenlet::GreenletLocal;
use greenery::hub::{self, JoinHandle};

mod reports;

const LONG: Duration = Duration::from_secs(3600);

/// Runs `f` and records in `log` when it is dropped (by unwinding or not).
struct Noisy(Rc<RefCell<Vec<&'static str>>>, &'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

#[test]
fn spawn_runs_the_closure_and_get_returns_its_value() {
    let handle = greenery::spawn(|| String::from("done"));
    assert!(!handle.is_ready(), "a spawned green thread waits for the hub to run");
    assert_eq!(handle.get().unwrap(), "done");
}

#[test]
fn green_threads_start_in_the_order_they_were_spawned() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let log = log.clone();
            greenery::spawn(move || log.borrow_mut().push(i))
        })
        .collect();
    hub::joinall(&handles, None, false).unwrap();
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn green_threads_interleave_at_blocking_points() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            greenery::spawn(move || {
                for step in 0..3 {
                    log.borrow_mut().push(format!("{name}{step}"));
                    greenery::yield_now();
                }
            })
        })
        .collect();
    hub::joinall(&handles, None, false).unwrap();
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn join_waits_and_leaves_the_value_for_get() {
    let handle = greenery::spawn(|| {
        greenery::sleep(Duration::from_millis(5));
        7
    });
    handle.join().unwrap();
    assert!(handle.is_ready());
    assert!(handle.is_successful());
    handle.join().unwrap(); // joining again returns at once
    assert_eq!(handle.get().unwrap(), 7);
}

#[test]
fn join_timeout_says_whether_the_thread_finished() {
    let slow = greenery::spawn(|| greenery::sleep(LONG));
    assert!(!slow.join_timeout(Duration::from_millis(10)).unwrap());
    assert!(!slow.is_ready());
    slow.kill().unwrap();
    assert!(slow.join_timeout(Duration::from_millis(10)).unwrap());
}

#[test]
fn get_timeout_hands_the_handle_back_when_the_time_runs_out() {
    let handle = greenery::spawn(|| {
        greenery::sleep(Duration::from_millis(50));
        "late"
    });
    let handle = match handle.get_timeout(Duration::from_millis(1)) {
        Err(handle) => handle,
        Ok(outcome) => panic!("finished too early: {outcome:?}"),
    };
    assert_eq!(handle.get_timeout(Duration::from_secs(60)).unwrap().unwrap(), "late");
}

#[test]
fn a_panic_is_returned_by_get_with_its_payload_and_the_hub_goes_on() {
    let reports = reports::capture();
    let code = std::hint::black_box(42);
    let bad = greenery::spawn(move || -> u32 { panic!("boom {code}") });
    let good = greenery::spawn(|| 1u32);
    let err = bad.get().unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_killed());
    assert!(err.to_string().contains("boom 42"), "{err}");
    let payload = err.into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("boom 42"));
    assert_eq!(good.get().unwrap(), 1);
    // The hub still works after the panic.
    assert_eq!(greenery::spawn(|| 2).get().unwrap(), 2);
    reports.assert_one(&["(green thread 1) failed: boom 42"]);
}

// gevent: a kill is a normal end, `successful()` is True.
#[test]
fn is_successful_after_a_return_or_a_kill() {
    let reports = reports::capture();
    let ok = greenery::spawn(|| ());
    let bad = greenery::spawn(|| panic!("no"));
    let killed = greenery::spawn(|| greenery::sleep(LONG));
    ok.join().unwrap();
    bad.join().unwrap();
    killed.kill().unwrap();
    assert!(ok.is_successful());
    assert!(!bad.is_successful() && bad.is_ready());
    assert!(killed.is_successful() && killed.is_ready() && killed.is_killed());
    reports.assert_one(&["(green thread 2) failed: no"]);
}

#[test]
fn kill_unwinds_a_blocked_thread_running_its_destructors() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let inner = log.clone();
    let handle = greenery::spawn(move || {
        let _noisy = Noisy(inner.clone(), "dropped");
        greenery::sleep(LONG);
        inner.borrow_mut().push("woke");
    });
    greenery::yield_now(); // let it start and block
    handle.kill().unwrap();
    assert_eq!(*log.borrow(), ["dropped"]);
    let err = handle.get().unwrap_err();
    assert!(err.is_killed());
    assert_eq!(err.to_string(), "the green thread was killed, and so left no value");
}

#[test]
fn a_thread_killed_before_it_starts_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let handle = greenery::spawn(move || flag.set(true));
    handle.kill().unwrap();
    greenery::yield_now();
    assert!(!ran.get());
    assert!(handle.get().unwrap_err().is_killed());
}

#[test]
fn killing_a_finished_thread_keeps_its_value() {
    let handle = greenery::spawn(|| 5);
    handle.join().unwrap();
    handle.kill().unwrap();
    assert_eq!(handle.get().unwrap(), 5);
}

#[test]
fn kill_async_returns_at_once_and_the_kill_happens_when_the_hub_runs() {
    let handle = greenery::spawn(|| greenery::sleep(LONG));
    greenery::yield_now();
    handle.kill_async();
    assert!(!handle.is_ready());
    handle.join().unwrap();
    assert!(handle.get().unwrap_err().is_killed());
}

#[test]
fn a_thread_can_kill_itself() {
    // `JoinHandle` is not `Clone`: the green thread takes its own handle out
    // of a shared slot once it runs.
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let reached = Rc::new(Cell::new(false));
    let (inner, flag) = (slot.clone(), reached.clone());
    let handle = greenery::spawn(move || {
        let me = inner.borrow_mut().take().unwrap();
        me.kill_async(); // unwinds right here
        flag.set(true);
    });
    let killed = Rc::new(Cell::new(None));
    let seen = killed.clone();
    handle.link(move |outcome| seen.set(Some(outcome.as_ref().err().is_some_and(|err| err.is_killed()))));
    *slot.borrow_mut() = Some(handle);
    hub::idle().unwrap();
    assert!(!reached.get());
    assert_eq!(killed.get(), Some(true));
}

#[test]
fn a_dropped_handle_detaches_the_thread_which_carries_on() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    drop(greenery::spawn(move || {
        greenery::sleep(Duration::from_millis(1));
        flag.set(true);
    }));
    greenery::sleep(Duration::from_millis(20));
    assert!(ran.get());
}

#[test]
fn builder_names_the_thread_and_sets_its_stack_size() {
    // A 320 KiB local would overflow the default 256 KiB stack.
    let handle = Builder::new().name("worker-1").stack_size(4 << 20).spawn(|| {
        let buffer = std::hint::black_box([7u8; 320 * 1024]);
        buffer.iter().map(|&b| u32::from(b)).sum::<u32>()
    });
    assert_eq!(handle.name(), "worker-1");
    assert_eq!(handle.get().unwrap(), 7 * 320 * 1024);
}

#[test]
fn the_default_name_is_the_closure_type_and_ids_count_from_one_per_hub() {
    let first = greenery::spawn(|| ());
    let second = greenery::spawn(|| ());
    assert!(first.name().contains("hub_threads"), "{}", first.name());
    assert_eq!(second.id(), first.id() + 1);
    let on_another_thread = std::thread::spawn(|| greenery::spawn(|| ()).id()).join().unwrap();
    assert_eq!(on_another_thread, 1);
    hub::joinall([&first, &second], None, false).unwrap();
    assert!(format!("{first:?}").contains("JoinHandle"));
}

#[test]
fn links_run_once_at_the_next_turn_of_the_hub_before_the_joiners() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handle = greenery::spawn(|| 3);
    let early = log.clone();
    handle.link(move |outcome| early.borrow_mut().push(format!("early {:?}", outcome.as_ref().ok())));
    handle.join().unwrap();
    assert_eq!(*log.borrow(), ["early Some(3)"], "join returns after the links made before it");
    let late = log.clone();
    handle.link(move |outcome| late.borrow_mut().push(format!("late {:?}", outcome.as_ref().ok())));
    assert_eq!(*log.borrow(), ["early Some(3)"], "not inside link()");
    greenery::yield_now();
    assert_eq!(*log.borrow(), ["early Some(3)", "late Some(3)"]);
}

#[test]
fn a_panicking_link_is_reported_not_propagated() {
    let reports = reports::capture();
    let handle = greenery::spawn(|| 1);
    handle.link(|_| panic!("link failed"));
    let after = Rc::new(Cell::new(false));
    let flag = after.clone();
    handle.link(move |_| flag.set(true));
    assert_eq!(handle.get().unwrap(), 1);
    assert!(after.get(), "the next link still runs");
    reports.assert_one(&["'link of green thread 1' panicked: link failed"]);
}

#[test]
fn links_see_panics_and_kills() {
    let reports = reports::capture();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let bad = greenery::spawn(|| -> () { panic!("bad") });
    let slow = greenery::spawn(|| greenery::sleep(LONG));
    for handle in [&bad, &slow] {
        let seen = seen.clone();
        handle.link(move |outcome| {
            let err = outcome.as_ref().unwrap_err();
            seen.borrow_mut().push((err.is_panic(), err.is_killed()));
        });
    }
    bad.join().unwrap();
    slow.kill().unwrap();
    assert_eq!(*seen.borrow(), [(true, false), (false, true)]);
    reports.assert_one(&["failed: bad"]);
}

#[test]
fn joinall_waits_for_every_thread() {
    let done = Rc::new(Cell::new(0));
    let handles: Vec<_> = (1..=10u64)
        .map(|i| {
            let done = done.clone();
            greenery::spawn(move || {
                greenery::sleep(Duration::from_millis(i));
                done.set(done.get() + 1);
            })
        })
        .collect();
    hub::joinall(&handles, None, false).unwrap();
    assert_eq!(done.get(), 10);
}

#[test]
fn killall_kills_every_thread_and_waits() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let log = log.clone();
            greenery::spawn(move || {
                let _noisy = Noisy(log, "unwound");
                greenery::sleep(LONG);
            })
        })
        .collect();
    greenery::yield_now();
    hub::killall(&handles, None).unwrap();
    assert_eq!(log.borrow().len(), 5);
    assert!(handles.iter().all(JoinHandle::is_ready));
}

#[test]
fn wait_any_visits_threads_in_completion_order() {
    let mut handles: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            greenery::spawn(move || {
                greenery::sleep(Duration::from_millis(ms));
                ms
            })
        })
        .collect();
    let mut order = Vec::new();
    while !handles.is_empty() {
        let first = hub::wait_any(&handles).unwrap();
        order.push(handles.swap_remove(first).get().unwrap());
    }
    assert_eq!(order, [10, 20, 30]);
}

#[test]
fn wait_any_on_nothing_is_a_deadlock() {
    let none: [JoinHandle<()>; 0] = [];
    assert_eq!(hub::wait_any(&none), Err(hub::Deadlock));
}

#[test]
fn green_thread_local_storage_is_per_thread() {
    static COUNTER: GreenletLocal<Cell<u32>> = GreenletLocal::new(|| Cell::new(0));
    let handles: Vec<_> = (1..=3u32)
        .map(|n| {
            greenery::spawn(move || {
                for _ in 0..n {
                    COUNTER.with(|c| c.set(c.get() + 1));
                    greenery::yield_now(); // the others run in between
                }
                COUNTER.with(Cell::get)
            })
        })
        .collect();
    let counts: Vec<u32> = handles.into_iter().map(|h| h.get().unwrap()).collect();
    assert_eq!(counts, [1, 2, 3]);
    assert_eq!(COUNTER.with(Cell::get), 0, "the main greenlet's copy is untouched");
}
