//! python-greenlet's garbage-collection tests (`tests/test_gc.py`, and the
//! deallocation tests of `tests/test_greenlet.py`), translated: dropping the
//! last handle of an unstarted, suspended, dead or running greenlet.
//!
//! greenlet's rule: when the last reference to a suspended greenlet goes
//! away, `GreenletExit` is thrown into it, with the collecting greenlet as
//! its parent; an exception it raises then is printed, not propagated.
//! greenery does the same when the last `Greenlet` handle is dropped.
//!
//! Not translated: `test_circular_greenlet` relies on the cycle collector:
//! a greenlet that holds a handle to itself (an `Rc` cycle) is never
//! collected in greenery, as with any `Rc` cycle (`test_finalizer_crash` is
//! translated without its cycle). `test_dealloc_other_thread`: handles
//! cannot cross threads.
//! `test_c_stack_refs_suspended_gc`, `test_crashing_deferred_object` and
//! `test_cycle_in_suspended_frame` test CPython's collector itself.

#[allow(dead_code)]
mod support;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use greenery::greenlet::{self, Greenlet, Thrown, Value};
use greenery::{Builder, GreenletExit};

#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }

    fn take(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Logs `"drop <name>"` when dropped, noting an unwinding.
struct Guard(Log, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let how = if std::thread::panicking() { " (unwinding)" } else { "" };
        self.0.push(format!("drop {}{how}", self.1));
    }
}

fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

/// `fmain` of `test_greenlet.py`: waits in its parent and logs what
/// interrupts the wait (re-raising it).
fn fmain(seen: Log) -> impl FnOnce(Value) + 'static {
    move |_| {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            seen.push(if payload.is::<GreenletExit>() { "GreenletExit" } else { "other" });
            panic::resume_unwind(payload);
        }
    }
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_dealloc.
#[test]
fn dropping_the_last_handle_kills_a_suspended_greenlet() {
    let seen = Log::default();
    let g1 = Greenlet::new(fmain(seen.clone()));
    let g2 = Greenlet::new(fmain(seen.clone()));
    g1.switch(()).unwrap();
    g2.switch(()).unwrap();
    assert!(seen.take().is_empty());
    // Another handle keeps it alive.
    let extra = g1.clone();
    drop(g1);
    assert!(seen.take().is_empty());
    drop(extra);
    assert_eq!(seen.take(), ["GreenletExit"]);
    drop(g2);
    assert_eq!(seen.take(), ["GreenletExit", "GreenletExit"]);
    assert!(greenlet::getcurrent().is_main(), "the collector is current again");
}

// From greenlet's tests/test_gc.py, TestGC.test_finalizer_crash (destructors on the dropped greenlet's stack run, innermost first).
#[test]
fn dropping_runs_the_destructors_on_the_greenlets_stack() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        let captured = Guard(log.clone(), "captured");
        move |_| {
            let _captured = captured;
            let _outer = Guard(log.clone(), "outer");
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                let _inner = Guard(log.clone(), "inner");
                parent_switch(())
            }));
            log.push("got GreenletExit");
            panic::resume_unwind(result.unwrap_err())
        }
    });
    g.switch(()).unwrap();
    drop(g);
    assert_eq!(
        log.take(),
        ["drop inner (unwinding)", "got GreenletExit", "drop outer (unwinding)", "drop captured (unwinding)"]
    );
}

// From greenlet's tests/test_gc.py, TestGC.test_inactive_ref and test_dead_circular_ref.
#[test]
fn dropping_an_unstarted_or_dead_greenlet_runs_nothing() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        let captured = Guard(log.clone(), "captured");
        move |_| {
            let _captured = captured;
            log.push("ran");
        }
    });
    drop(g);
    assert_eq!(log.take(), ["drop captured"], "the body is dropped without running");

    // The body returns a handle to its own greenlet.
    let log = Log::default();
    let own = Greenlet::new({
        let log = log.clone();
        let captured = Guard(log.clone(), "captured");
        move |_| {
            let _captured = captured;
            greenlet::getcurrent()
        }
    })
    .switch(())
    .unwrap()
    .downcast::<Greenlet>()
    .unwrap();
    assert!(own.is_dead() && !own.is_current());
    assert_eq!(log.take(), ["drop captured"], "the body's captures went when it returned");
    drop(own);
    assert_eq!(log.take(), ["drop captured"]);
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_parent_restored_on_kill (the collector becomes the parent).
#[test]
fn the_dropper_becomes_the_parent_and_gets_control_back() {
    let log = Log::default();
    let main = greenlet::getcurrent();
    // `worker` is a child of `hub`, which never starts.
    let hub = Greenlet::new(|_| {});
    let worker = Greenlet::with_parent(&hub, {
        let (log, main) = (log.clone(), main.clone());
        move |_| {
            let result = panic::catch_unwind(AssertUnwindSafe(|| main.switch(())));
            let payload = result.unwrap_err();
            let current = greenlet::getcurrent();
            let parent = current.parent().unwrap();
            log.push(format!("GreenletExit: {}", payload.is::<GreenletExit>()));
            log.push(format!("parent is the dropper: {}", parent.name()));
            panic::resume_unwind(payload)
        }
    });
    worker.switch(()).unwrap();
    // The last handle goes from inside another greenlet, `dropper`.
    let dropper = Builder::new()
        .name("dropper")
        .greenlet(move |_| {
            drop(worker);
            "dropper resumed"
        })
        .unwrap();
    let back = dropper.switch(()).unwrap();
    assert_eq!(back.downcast::<&str>().ok(), Some("dropper resumed"));
    assert_eq!(log.take(), ["GreenletExit: true", "parent is the dropper: dropper"]);
    assert!(!hub.is_started(), "the worker's death did not go to its old parent");
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_dealloc_catches_GreenletExit_throws_other.
#[test]
fn error_while_killed_on_drop_is_reported_not_propagated() {
    if std::env::var_os("GREENERY_GREENLET_GC_CHILD").is_some() {
        let log = Log::default();
        let g = Builder::new()
            .name("throws-other")
            .greenlet({
                let log = log.clone();
                move |_| {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| parent_switch(())));
                    if result.unwrap_err().is::<GreenletExit>() {
                        log.push("caught GreenletExit");
                        panic::resume_unwind(Box::new("SomeError raised instead"));
                    }
                }
            })
            .unwrap();
        g.switch(()).unwrap();
        // Dropping the only handle: the greenlet's error does not reach us.
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(g)));
        assert!(dropped.is_ok(), "the error was propagated");
        assert_eq!(log.take(), ["caught GreenletExit"]);
        println!("CHILD DONE");
        return;
    }
    let mut command = support::this_binary();
    command.args(["--exact", "error_while_killed_on_drop_is_reported_not_propagated", "--nocapture"]);
    command.env("GREENERY_GREENLET_GC_CHILD", "1");
    let outcome = support::run(command, Duration::from_secs(60));
    assert!(outcome.status.success(), "child failed: {}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("CHILD DONE"), "{}", outcome.stdout);
    assert!(
        outcome.stderr.contains("'throws-other'") && outcome.stderr.contains("SomeError raised instead"),
        "the error is reported on stderr: {}",
        outcome.stderr
    );
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_dealloc_switch_args_not_lost (the last handle dropped while running, then it finishes).
#[test]
fn running_greenlet_that_drops_its_last_handle_keeps_running() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _guard = Guard(log.clone(), "frame");
            // Resumed by `child` returning a handle to itself.
            let child = parent_switch(()).unwrap().downcast::<Greenlet>().unwrap();
            // The child's parent link holds our last handle: let it go.
            let main = greenlet::getcurrent().parent().unwrap();
            child.set_parent(&main).unwrap();
            drop(child);
            log.push("still running");
            42i64
        }
    });
    g.switch(()).unwrap();
    let child = Greenlet::with_parent(&g, |_| greenlet::getcurrent());
    drop(g);
    let value = child.switch(()).unwrap();
    assert_eq!(value.downcast::<i64>().ok(), Some(42));
    assert_eq!(log.take(), ["still running", "drop frame"], "finished normally, not killed");
    assert!(child.parent().unwrap().is_main());
}

// From greenlet's tests/test_gc.py, TestGC.test_finalizer_crash (a dropped greenlet whose stack owns another suspended greenlet).
#[test]
fn dropping_a_greenlet_that_owns_another_kills_both() {
    let log = Log::default();
    let outer = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _outer_guard = Guard(log.clone(), "outer frame");
            let main = greenlet::getcurrent().parent().unwrap();
            // A child of main (a child of `outer` would hold `outer` alive
            // through its parent link: an `Rc` cycle).
            let inner = Greenlet::with_parent(&main, {
                let log = log.clone();
                move |_| {
                    let _guard = Guard(log.clone(), "inner frame");
                    parent_switch(()).unwrap();
                }
            });
            drop(main);
            // `inner` goes to main; both stay suspended, and only `outer`'s
            // stack holds `inner`.
            inner.switch(()).unwrap();
            log.push("outer resumed");
        }
    });
    outer.switch(()).unwrap();
    assert!(log.take().is_empty());
    drop(outer);
    // `outer` unwinds; dropping `inner` on the way kills it (with `outer`
    // as its parent), then `outer` finishes unwinding.
    assert_eq!(log.take(), ["drop inner frame (unwinding)", "drop outer frame (unwinding)"]);
}

// From greenlet's tests/test_leaks.py, TestLeaks.test_threaded_adv_leak and test_threaded_leak (greenlets left suspended when their thread ends).
#[test]
fn suspended_greenlets_are_killed_when_their_thread_lets_go() {
    let killed = std::thread::spawn(|| {
        let killed = Rc::new(Cell::new(0));
        let greenlets: Vec<Greenlet> = (0..10)
            .map(|_| {
                let killed = killed.clone();
                let g = Greenlet::new(move |_| {
                    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
                        killed.set(killed.get() + u32::from(payload.is::<GreenletExit>()));
                        panic::resume_unwind(payload);
                    }
                });
                g.switch(()).unwrap();
                g
            })
            .collect();
        drop(greenlets);
        killed.get()
    })
    .join()
    .unwrap();
    assert_eq!(killed, 10);

    // A suspended greenlet left in a thread-local at thread exit: no crash.
    // (Depending on the order of thread-local teardown it is killed, or
    // its stack is leaked once the thread's main greenlet is gone.)
    thread_local! {
        static KEPT: RefCell<Option<Greenlet>> = const { RefCell::new(None) };
    }
    let handle = std::thread::spawn(|| {
        let g = Greenlet::new(|_| {
            parent_switch(()).unwrap();
        });
        g.switch(()).unwrap();
        KEPT.with(|kept| *kept.borrow_mut() = Some(g));
    });
    handle.join().expect("thread exit with a suspended greenlet in a thread-local");
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_parent_restored_on_kill (a greenlet that survives being killed on drop).
#[test]
fn greenlet_that_survives_being_killed_on_drop_is_reported() {
    if std::env::var_os("GREENERY_GREENLET_GC_CHILD").is_some() {
        let log = Log::default();
        let main = greenlet::getcurrent();
        let hub = Greenlet::new(|_| "hub done");
        let resurrected: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let worker = Builder::new()
            .name("survivor")
            .greenlet({
                let (log, main, hub, resurrected) =
                    (log.clone(), main.clone(), hub.clone(), resurrected.clone());
                move |_| {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| main.switch(())));
                    if result.is_err() {
                        // Resurrect and switch elsewhere instead of dying.
                        let me = greenlet::getcurrent();
                        log.push(format!("parent is main: {}", me.parent().unwrap().is_main()));
                        *resurrected.borrow_mut() = Some(me);
                        hub.switch(()).unwrap();
                        log.push("resumed after resurrection");
                    }
                    "survivor done"
                }
            })
            .unwrap();
        worker.switch(()).unwrap();
        drop(worker);
        assert_eq!(log.take(), ["parent is main: true"]);
        let worker = resurrected.borrow_mut().take().unwrap();
        assert!(worker.is_active(), "still suspended (in hub.switch)");
        assert!(hub.is_dead());
        // Its own parent (main, which made it) is put back once the
        // collection is over, as greenlet does.
        assert!(worker.parent().unwrap().is_main());
        // It is still usable: resume it and let it finish.
        let done = worker.switch(()).unwrap();
        assert_eq!(done.downcast::<&str>().ok(), Some("survivor done"));
        assert_eq!(log.take(), ["parent is main: true", "resumed after resurrection"]);
        println!("CHILD DONE");
        return;
    }
    let mut command = support::this_binary();
    command.args(["--exact", "greenlet_that_survives_being_killed_on_drop_is_reported", "--nocapture"]);
    command.env("GREENERY_GREENLET_GC_CHILD", "1");
    let outcome = support::run(command, Duration::from_secs(60));
    assert!(outcome.status.success(), "child failed: {}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("CHILD DONE"), "{}", outcome.stdout);
    assert!(
        outcome.stderr.contains("'survivor'") && outcome.stderr.contains("survived being killed on drop"),
        "the survival is reported on stderr: {}",
        outcome.stderr
    );
}
