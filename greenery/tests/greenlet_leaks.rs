//! Leak tests in the spirit of python-greenlet's `tests/test_leaks.py`:
//! values passed through switches are released, and a million greenlets
//! created, run and dropped (finished, or suspended and killed on drop)
//! leave resident memory where it was, give or take the stack pool.
//!
//! This file is its own test binary so that the memory measurements see
//! only these tests; a lock keeps its tests from running at the same time.
//!
//! Not translated: the cross-thread kill tests (`test_issue251_*`) need
//! handles that cross threads; `test_untracked_memory_doesnt_increase`
//! (USS) becomes the VmRSS bound below.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use greenery::GreenletExit;
use greenery::greenlet::{self, Greenlet, GreenletLocal, Thrown, Value};

/// Under an emulator (the aarch64 run of `.ci/run`, which names it in
/// `GREENERY_TEST_RUNNER`) everything runs tens of times slower: the big tests
/// shrink tenfold there. The full counts run natively.
fn emulated() -> bool {
    std::env::var_os("GREENERY_TEST_RUNNER").is_some_and(|runner| !runner.is_empty())
}

/// How many greenlets go through the first big test.
fn many() -> usize {
    if emulated() { 100_000 } else { 1_000_000 }
}

/// Killing a greenlet unwinds its stack, which costs some microseconds
/// (about 9 µs in a release build, 20 µs in a debug one, nearly all of it in
/// the unwinder): debug builds kill fewer (still over 100 000) to keep the
/// test within a few seconds.
fn many_killed() -> usize {
    let count = if cfg!(debug_assertions) { 120_000 } else { 1_000_000 };
    if emulated() { count / 10 } else { count }
}

/// Resident memory may grow by this much: the stack pool keeps a few
/// stacks, and the allocator keeps some freed memory.
const SLACK_KIB: usize = 8 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This process's resident set size, from `/proc/self/status`.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

/// Runs `round` (which goes through `n` greenlets) with 10 000 to warm up
/// the stack pool and the allocator, then with `many`, and checks that
/// resident memory stayed within `SLACK_KIB` of where it was after warm-up.
fn check_rss_bound(what: &str, many: usize, round: impl Fn(usize)) {
    round(10_000);
    let before = rss_kib();
    let started = Instant::now();
    round(many);
    let after = rss_kib();
    eprintln!("{what}: {many} greenlets in {:?}; VmRSS {before} KiB -> {after} KiB", started.elapsed());
    assert!(
        after <= before + SLACK_KIB,
        "{what}: resident memory grew from {before} KiB to {after} KiB over {many} greenlets"
    );
}

// From greenlet's tests/test_leaks.py, TestLeaks.test_untracked_memory_doesnt_increase.
#[test]
fn a_million_finished_greenlets_leave_no_trace() {
    let _serial = serial();
    let finished = Rc::new(Cell::new(0usize));
    check_rss_bound("created, run, finished, dropped", many(), |n| {
        for i in 0..n {
            let g = Greenlet::new(|start: Value| start.downcast::<usize>().unwrap() + 1);
            let back = g.switch(i).unwrap().downcast::<usize>().unwrap();
            assert_eq!(back, i + 1);
            assert!(g.is_dead());
            finished.set(finished.get() + 1);
        }
    });
    assert_eq!(finished.get(), 10_000 + many());
}

// From greenlet's tests/test_leaks.py, TestLeaks._check_untracked_memory_thread (suspended greenlets, killed when dropped).
#[test]
fn a_million_suspended_then_dropped_greenlets_leave_no_trace() {
    let _serial = serial();
    let killed = Rc::new(Cell::new(0usize));
    check_rss_bound("created, suspended, killed on drop", many_killed(), |n| {
        for _ in 0..n {
            let counter = killed.clone();
            let g = Greenlet::new(move |_| {
                struct CountKill(Rc<Cell<usize>>);
                impl Drop for CountKill {
                    fn drop(&mut self) {
                        if std::thread::panicking() {
                            self.0.set(self.0.get() + 1);
                        }
                    }
                }
                let _count = CountKill(counter);
                parent_switch(String::from("suspended")).unwrap();
            });
            let msg = g.switch(()).unwrap();
            assert_eq!(msg.downcast::<String>().unwrap(), "suspended");
            assert!(g.is_active());
            drop(g);
        }
    });
    assert_eq!(killed.get(), 10_000 + many_killed(), "every greenlet was unwound when dropped");
}

// From greenlet's tests/test_leaks.py, TestLeaks.test_arg_refs and test_kwarg_refs.
#[test]
fn values_switched_back_and_forth_are_released() {
    let _serial = serial();
    let args = Rc::new(("a", "b", "c"));
    let g = Greenlet::new(|mut args: Value| {
        loop {
            args = parent_switch(args).unwrap();
        }
    });
    for _ in 0..100 {
        let back = g.switch(args.clone()).unwrap();
        let back = back.downcast::<Rc<(&str, &str, &str)>>().unwrap();
        assert!(Rc::ptr_eq(&back, &args));
    }
    assert_eq!(Rc::strong_count(&args), 1, "no reference left behind by the switches");
    // Thrown values and killed greenlets' captures too.
    let captured = Rc::new(());
    let g = Greenlet::new({
        let captured = captured.clone();
        move |_| {
            let _captured = captured;
            loop {
                if let Err(Thrown(value)) = parent_switch(()) {
                    drop(value);
                }
            }
        }
    });
    g.switch(()).unwrap();
    for _ in 0..100 {
        g.throw(args.clone()).unwrap();
    }
    assert_eq!(Rc::strong_count(&args), 1);
    assert_eq!(Rc::strong_count(&captured), 2);
    assert!(g.kill().unwrap().is::<GreenletExit>());
    assert_eq!(Rc::strong_count(&captured), 1);
}

// From greenlet's tests/test_leaks.py, TestLeaks.test_threaded_leak and test_threaded_adv_leak.
#[test]
fn a_finished_threads_greenlets_and_their_locals_are_released() {
    let _serial = serial();
    struct Released(Arc<AtomicUsize>);
    impl Drop for Released {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    static TOKEN: GreenletLocal<Cell<Option<Released>>> = GreenletLocal::new(|| Cell::new(None));
    let released = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let released = released.clone();
        std::thread::spawn(move || {
            // The main greenlet's copy, and two finished greenlets' copies.
            TOKEN.with(|token| token.set(Some(Released(released.clone()))));
            for _ in 0..2 {
                let released = released.clone();
                Greenlet::new(move |_| TOKEN.with(|token| token.set(Some(Released(released)))))
                    .switch(())
                    .unwrap();
            }
        })
        .join()
        .unwrap();
    }
    assert_eq!(released.load(Ordering::SeqCst), 6, "every greenlet's copy was dropped, main's included");
}
