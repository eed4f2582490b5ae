//! python-greenlet's switching tests (`tests/test_greenlet.py`), and its
//! generators built from greenlets (`tests/test_generator.py`,
//! `tests/test_generator_nested.py`), translated to greenery's greenlets:
//! switching, values, parents, dead greenlets, `getcurrent`, nesting.
//!
//! Python exceptions become panics here (raised with `resume_unwind`, so
//! that the panic hook stays quiet); a value thrown with `throw` becomes an
//! `Err(Thrown)` from the pending switch.
//!
//! Parts of `test_greenlet.py` with no Rust equivalent, not translated:
//! - a greenlet with no `run` (`test_switch_no_run_raises_AttributeError`,
//!   `test_throw_no_run_raises_AttributeError`, `test_run_equals_None`,
//!   `test_parent_return_failure`): a greenery greenlet always has a body;
//! - `test_running_greenlet_has_no_run`: the body is an `FnOnce`, moved out
//!   when the greenlet starts, so there is nothing left to look at;
//! - `switch(**kwargs)` dispatch and TypeErrors for a `run` taking the wrong
//!   arguments (`test_falling_off_end_switches_to_unstarted_parent_raises_error`,
//!   `test_tuple_subclass`): a body takes one `Value` and downcasts it;
//! - cross-thread switching, reparenting and deallocation
//!   (`test_switch_to_another_thread`, `test_threaded_reparent`,
//!   `test_unexpected_reparenting*`, `test_dealloc_other_thread`,
//!   `test_throw_to_dead_thread_doesnt_crash*`): handles are `!Send`, so
//!   the compiler refuses these (see `tests/auto_traits.rs`);
//! - `__dict__`, `gr_frame`, `sys.exc_info()`, subclassing and
//!   `__getattribute__` hooks, `copy.copy`, `del g.parent`, setting a parent
//!   of the wrong type (`test_instance_dict`, `test_frame`'s frame identity,
//!   `test_exc_state`, `test_recursive_startup`, `test_abstract_subclasses`,
//!   `test_deepcopy` (`clone` makes another handle to the same greenlet),
//!   `test_cannot_delete_parent*`,
//!   `test_set_parent_wrong_types`, `TestMainGreenlet`, `TestBrokenGreenlets`):
//!   Python object-model features; `set_parent` takes a `&Greenlet`.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use greenery::greenlet::{self, Greenlet, GreenletLocal, Thrown, Value};
use greenery::{Builder, GreenletExit};

// ------------------------------------------------------------ helpers

/// An event log shared between greenlets.
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

#[derive(Debug, Clone, Copy, PartialEq)]
struct SomeError;

#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyError;

/// Raises `error` as a panic without running the panic hook.
fn raise<E: Any + Send>(error: E) -> ! {
    panic::resume_unwind(Box::new(error))
}

/// The name of a panic payload's type, for the logs.
fn kind(payload: &(dyn Any + Send)) -> &'static str {
    if payload.is::<SomeError>() {
        "SomeError"
    } else if payload.is::<KeyError>() {
        "KeyError"
    } else if payload.is::<GreenletExit>() {
        "GreenletExit"
    } else {
        "other"
    }
}

/// `greenlet.getcurrent().parent.switch(value)`. The handle on the current
/// greenlet is released before switching.
fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

fn int(value: Value) -> i64 {
    value.downcast::<i64>().unwrap_or_else(|v| panic!("expected an i64, got {v:?}"))
}

fn text(value: Value) -> &'static str {
    value.downcast::<&'static str>().unwrap_or_else(|v| panic!("expected a &str, got {v:?}"))
}

/// `fmain` of `test_greenlet.py`: waits in its parent; logs whatever is
/// raised there and re-raises it; raises `SomeError` when switched to.
fn fmain(seen: Log) -> impl FnOnce(Value) + 'static {
    move |_| {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            seen.push(kind(&*payload));
            panic::resume_unwind(payload);
        }
        raise(SomeError)
    }
}

/// `_do_simple_test` of `test_greenlet.py`.
fn simple_test() {
    let log = Log::default();
    let inner = log.clone();
    let g = Greenlet::new(move |_| {
        inner.push("1");
        parent_switch(()).unwrap();
        inner.push("3");
    });
    log.push("0");
    g.switch(()).unwrap();
    log.push("2");
    g.switch(()).unwrap();
    log.push("4");
    assert_eq!(log.take(), ["0", "1", "2", "3", "4"]);
    assert!(g.is_dead());
}

// ------------------------------------------------------------ test_greenlet.py

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_simple.
#[test]
fn simple() {
    simple_test();
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_parent_equals_None.
#[test]
fn new_greenlet_has_current_as_parent_and_is_not_started() {
    let main = greenlet::getcurrent();
    let g = Greenlet::new(|_| {});
    assert_eq!(g.parent(), Some(main.clone()));
    assert!(!g.is_started() && !g.is_active() && !g.is_dead());
    assert!(!g.is_main() && !g.is_current());

    // Created inside a greenlet, the parent is that greenlet
    // (test_implicit_parent_with_threads makes many in a row).
    let outer = Greenlet::new(|_| {
        let me = greenlet::getcurrent();
        (0..100).map(|_| Greenlet::new(|_| {})).all(|g| g.parent().unwrap().ptr_eq(&me))
    });
    assert_eq!(outer.switch(()).unwrap().downcast::<bool>().ok(), Some(true));
}

// From greenlet's tests/test_greenlet.py, TestGreenletSetParentErrors.test_main_greenlet_parent_is_none (and getcurrent() as fmain uses it).
#[test]
fn getcurrent_is_the_running_greenlet_and_main_has_no_parent() {
    let main = greenlet::getcurrent();
    assert!(main.parent().is_none());
    assert!(main.is_main() && main.is_current());
    assert!(main.is_started() && main.is_active() && !main.is_dead());
    assert_eq!(main.name(), "main");
    assert_eq!(greenlet::getcurrent(), main, "getcurrent() is the same greenlet each time");
    // Switching to the current greenlet hands the value straight back.
    assert_eq!(int(main.switch(11i64).unwrap()), 11);

    let g = Greenlet::new(|_| {
        let me = greenlet::getcurrent();
        assert!(me.is_current() && !me.is_main() && me.is_active());
        let main = me.parent().unwrap();
        assert!(!main.is_current() && main.is_main() && main.is_active());
        assert_eq!(int(me.switch(5i64).unwrap()), 5);
        // A child of ours sees the same main two levels up.
        let child = Greenlet::new(|_| greenlet::getcurrent().parent().unwrap().parent().unwrap());
        let seen_main = child.switch(()).unwrap().downcast::<Greenlet>().unwrap();
        (me, seen_main == main)
    });
    let (me, same_main) = g.switch(()).unwrap().downcast::<(Greenlet, bool)>().unwrap();
    assert!(same_main);
    assert_eq!(me, g);
    assert!(!me.is_current() && me.is_dead());
    assert!(greenlet::getcurrent().is_current());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_two_children.
#[test]
fn two_children() {
    let log = Log::default();
    let body = |log: Log| {
        move |_: Value| {
            log.push("1");
            parent_switch(()).unwrap();
            log.push("1");
            log.push("1");
        }
    };
    let g = Greenlet::new(body(log.clone()));
    let h = Greenlet::new(body(log.clone()));
    g.switch(()).unwrap();
    assert_eq!(log.take().len(), 1);
    h.switch(()).unwrap();
    assert_eq!(log.take().len(), 2);
    h.switch(()).unwrap();
    assert_eq!(log.take().len(), 4);
    assert!(h.is_dead());
    assert!(g.is_active());
    g.switch(()).unwrap();
    assert_eq!(log.take().len(), 6);
    assert!(g.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_two_recursive_children.
#[test]
fn two_recursive_children() {
    let log = Log::default();
    let outer_log = log.clone();
    let g = Greenlet::new(move |_| {
        outer_log.push("a");
        let inner_log = outer_log.clone();
        let f = Greenlet::new(move |_| {
            inner_log.push("b");
            parent_switch(()).unwrap();
            inner_log.push("never");
        });
        f.switch(()).unwrap();
        outer_log.push("c");
        // `f` is still suspended here; it dies when its handle goes.
    });
    g.switch(()).unwrap();
    assert_eq!(log.take(), ["a", "b", "c"]);
    assert!(g.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_threads (each thread has its own main greenlet).
#[test]
fn threads_each_have_their_own_greenlets() {
    let threads: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(|| {
                simple_test();
                assert!(greenlet::getcurrent().is_main());
            })
        })
        .collect();
    let mut ok = 0;
    for thread in threads {
        thread.join().expect("the simple test passes on every thread");
        ok += 1;
    }
    assert_eq!(ok, 10);
    assert!(greenlet::getcurrent().is_main());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_exception.
#[test]
fn exception_goes_to_the_new_parent_then_dead_switch_returns() {
    let seen = Log::default();
    let g1 = Greenlet::new(fmain(seen.clone()));
    let g2 = Greenlet::new(fmain(seen.clone()));
    g1.switch(()).unwrap();
    g2.switch(()).unwrap();
    g2.set_parent(&g1).unwrap();
    assert!(seen.take().is_empty());

    // g2 raises SomeError; it continues in g1 (its parent, suspended in its
    // own switch to main), which logs it and re-raises it to main.
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g2.switch(()))).unwrap_err();
    assert!(payload.is::<SomeError>());
    assert_eq!(seen.take(), ["SomeError"]);
    assert!(g1.is_dead() && g2.is_dead());

    // Both are dead: the switch goes to their nearest live ancestor, which
    // is the current greenlet, so the value comes straight back.
    assert!(g2.switch(()).unwrap().is_empty());
    assert_eq!(seen.take(), ["SomeError"]);
    assert_eq!(int(g2.switch(25i64).unwrap()), 25);
    assert_eq!(seen.take(), ["SomeError"]);
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_send_exception.
#[test]
fn send_exception_through_a_crashing_child() {
    let seen = Log::default();
    let g1 = Greenlet::new(fmain(seen.clone()));
    g1.switch(()).unwrap();
    // A child of g1 that raises: the panic continues in g1, at its switch.
    let crasher = Greenlet::with_parent(&g1, |_| -> () { raise(KeyError) });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| crasher.switch(()))).unwrap_err();
    assert!(payload.is::<KeyError>());
    assert_eq!(seen.take(), ["KeyError"]);
    assert!(crasher.is_dead() && g1.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_frame (bool(g) while suspended, return value to parent).
#[test]
fn active_while_suspended_and_return_value_goes_to_parent() {
    let g = Greenlet::new(|_| {
        parent_switch("suspended").unwrap();
        "meaning of life"
    });
    assert_eq!(text(g.switch(()).unwrap()), "suspended");
    assert!(g.is_active() && g.is_started() && !g.is_dead());
    assert_eq!(text(g.switch(()).unwrap()), "meaning of life");
    assert!(!g.is_active() && g.is_started() && g.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_switch_kwargs and test_switch_kwargs_to_parent (values of every shape).
#[test]
fn values_of_every_shape_reach_the_parent() {
    let g = Greenlet::new(|x: Value| {
        let x = int(x);
        parent_switch(std::collections::BTreeMap::from([("x", x)])).unwrap();
        parent_switch((vec![2i64], String::from("x=3"))).unwrap();
        (x, x * x)
    });
    let kwargs = g.switch(3i64).unwrap().downcast::<std::collections::BTreeMap<&str, i64>>().unwrap();
    assert_eq!(kwargs.get("x"), Some(&3));
    let both = g.switch(()).unwrap().downcast::<(Vec<i64>, String)>().unwrap();
    assert_eq!(both, (vec![2], "x=3".to_string()));
    assert_eq!(g.switch(()).unwrap().downcast::<(i64, i64)>().unwrap(), (3, 9));
    // The first switch's value is the body's argument (`run(a=4, b=2)`).
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Args {
        a: i32,
        b: i32,
    }
    let x = Greenlet::new(|args: Value| {
        assert_eq!(args.downcast::<Args>().unwrap(), Args { a: 4, b: 2 });
        42i64
    })
    .switch(Args { a: 4, b: 2 })
    .unwrap();
    assert_eq!(int(x), 42);
    // An empty switch is the empty value, `()`.
    let echo = Greenlet::new(|first: Value| first);
    let back = echo.switch(()).unwrap();
    assert!(back.is_empty() && back.is::<()>());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_dealloc_switch_args_not_lost.
#[test]
fn switch_value_not_lost_when_sender_drops_its_last_handle() {
    let seen = Log::default();
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let initiator_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let worker = Greenlet::new({
        let (seen, slot, initiator_slot) = (seen.clone(), slot.clone(), initiator_slot.clone());
        move |_| {
            // Wait for the value.
            let value = parent_switch(()).unwrap();
            // Delete every reference to ourselves but the running one.
            drop(slot.borrow_mut().take());
            let parent = greenlet::getcurrent().parent().unwrap();
            let initiator = initiator_slot.borrow_mut().take().unwrap();
            initiator.set_parent(&parent).unwrap();
            drop(initiator);
            struct Finally(Log);
            impl Drop for Finally {
                fn drop(&mut self) {
                    self.0.push(format!("finally in {:?}", greenlet::getcurrent().is_main()));
                }
            }
            let _finally = Finally(seen);
            // Switch to main with the value: main drops our last handle
            // on arrival, which kills us; the value must still get there.
            parent.switch(value)
        }
    });
    *slot.borrow_mut() = Some(worker.clone());
    drop(worker);
    slot.borrow().as_ref().unwrap().switch(()).unwrap(); // prime the worker
    let target = slot.borrow().clone().unwrap();
    let initiator = Greenlet::with_parent(&target, |_| 42i64);
    drop(target);
    *initiator_slot.borrow_mut() = Some(initiator.clone());
    let value = initiator.switch(()).unwrap();
    assert_eq!(seen.take(), ["finally in false"]);
    assert_eq!(int(value), 42);
    assert!(slot.borrow().is_none());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_falling_off_end_switches_to_unstarted_parent_works.
#[test]
fn return_value_starts_an_unstarted_parent() {
    let parent_never_started = Greenlet::new(|x: Value| (int(x), 24i64));
    let child = Greenlet::with_parent(&parent_never_started, |_| 42i64);
    let result = child.switch(()).unwrap();
    assert_eq!(result.downcast::<(i64, i64)>().unwrap(), (42, 24));
    assert!(child.is_dead() && parent_never_started.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_switch_to_dead_greenlet_with_unstarted_perverse_parent.
#[test]
fn return_value_starts_an_unstarted_parent_that_raises() {
    let seen = Log::default();
    let parent_never_started = Greenlet::new(|_| -> () { raise(SomeError) });
    let child = Greenlet::with_parent(&parent_never_started, {
        let seen = seen.clone();
        move |_| seen.push("42")
    });
    // The child finishes and starts its parent, which raises.
    let payload = panic::catch_unwind(AssertUnwindSafe(|| child.switch(()))).unwrap_err();
    assert!(payload.is::<SomeError>());
    assert_eq!(seen.take(), ["42"]);
    assert!(parent_never_started.is_dead());
    // greenlet raises SomeError again here, because its perverse parent
    // fails before starting each time; greenery's parent ran and died, so the
    // switch goes past it to main (the current greenlet) and comes back.
    assert_eq!(int(child.switch(7i64).unwrap()), 7);
    assert_eq!(seen.take(), ["42"]);
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_switch_to_dead_greenlet_reparent.
#[test]
fn switch_to_dead_greenlet_goes_to_its_new_parent() {
    let seen = Log::default();
    let parent_never_started = Greenlet::new({
        let seen = seen.clone();
        move |_| seen.push("24")
    });
    let child = Greenlet::new({
        let seen = seen.clone();
        move |_| seen.push("42")
    });
    child.switch(()).unwrap();
    assert_eq!(seen.take(), ["42"]);
    child.set_parent(&parent_never_started).unwrap();
    // The same as switching to the parent, which starts and returns `()`.
    let result = child.switch(()).unwrap();
    assert!(result.is_empty());
    assert_eq!(seen.take(), ["42", "24"]);
    assert!(parent_never_started.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenletSetParentErrors.test_trivial_cycle, test_deeper_cycle and test_trivial_cycle_main.
#[test]
fn parent_cycles_are_refused() {
    let glet = Greenlet::new(|_| {});
    let err = glet.set_parent(&glet).unwrap_err();
    assert_eq!(err.to_string(), "cyclic parent chain");
    assert!(!err.is_main());
    assert_eq!(glet.parent(), Some(greenlet::getcurrent()), "a refused parent changes nothing");

    let g1 = Greenlet::new(|_| {});
    let g2 = Greenlet::new(|_| {});
    let g3 = Greenlet::new(|_| {});
    g1.set_parent(&g2).unwrap();
    g2.set_parent(&g3).unwrap();
    let err = g3.set_parent(&g1).unwrap_err();
    assert_eq!(err.to_string(), "cyclic parent chain");
    assert_eq!(g3.parent(), Some(greenlet::getcurrent()));
    assert_eq!(g1.parent(), Some(g2.clone()));
    assert_eq!(g2.parent(), Some(g3.clone()));

    // The main greenlet has no parent and cannot be given one (greenlet:
    // AttributeError "cannot set the parent of a main greenlet").
    let main = greenlet::getcurrent();
    let err = main.set_parent(&main).unwrap_err();
    assert!(err.is_main());
    assert_eq!(err.to_string(), "the main greenlet cannot have a parent");
    assert!(main.set_parent(&g1).unwrap_err().is_main());
    assert!(main.parent().is_none());
}

// From greenlet's tests/test_greenlet.py, TestRepr (test_main_while_running, test_main_in_background, test_initial, test_dead).
#[test]
fn debug_shows_name_and_state() {
    let main = greenlet::getcurrent();
    let shown = format!("{main:?}");
    assert!(shown.contains("\"main\"") && shown.contains("running"), "{shown}");

    let seen_from_inside = Greenlet::new({
        let main = main.clone();
        move |_| format!("{main:?}")
    });
    let shown = seen_from_inside.switch(()).unwrap().downcast::<String>().unwrap();
    assert!(shown.contains("suspended"), "{shown}");

    let g = Builder::new()
        .name("worker")
        .greenlet(|_| {
            parent_switch(()).unwrap();
        })
        .unwrap();
    assert_eq!(g.name(), "worker");
    assert!(format!("{g:?}").contains("unstarted"), "{g:?}");
    g.switch(()).unwrap();
    assert!(format!("{g:?}").contains("suspended"), "{g:?}");
    g.switch(()).unwrap();
    let shown = format!("{g:?}");
    assert!(shown.contains("\"worker\"") && shown.contains("dead"), "{shown}");
    assert!(!shown.contains("suspended") && !shown.contains("running"), "{shown}");
}

// ------------------------------------------------------------ parents and nesting

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_exception (the return value goes to the parent, not to the switcher).
#[test]
fn return_value_goes_to_parent_not_to_the_switcher() {
    let log = Log::default();
    let g2 = Greenlet::new({
        let log = log.clone();
        move |_| {
            log.push("g2 runs");
            "from g2"
        }
    });
    let g1 = Greenlet::new({
        let (log, g2) = (log.clone(), g2.clone());
        move |_| {
            // g1 switches to g2, whose parent is main: g2's return value
            // goes to main, and g1 stays suspended.
            let back = g2.switch(()).unwrap();
            log.push(format!("g1 resumed with {}", text(back)));
            "from g1"
        }
    });
    assert_eq!(text(g1.switch(()).unwrap()), "from g2");
    assert!(g2.is_dead() && g1.is_active());
    assert_eq!(text(g1.switch("main again").unwrap()), "from g1");
    assert_eq!(log.take(), ["g2 runs", "g1 resumed with main again"]);
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_send_exception (a panic in an unstarted parent's child: the parent dies unstarted).
#[test]
fn panic_passes_an_unstarted_parent_which_dies_unstarted() {
    let ran = Log::default();
    let parent = Greenlet::new({
        let ran = ran.clone();
        move |_| ran.push("parent ran")
    });
    let child = Greenlet::with_parent(&parent, |_| -> () { raise(SomeError) });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| child.switch(()))).unwrap_err();
    assert!(payload.is::<SomeError>());
    assert!(child.is_dead() && parent.is_dead());
    assert!(ran.take().is_empty(), "the unstarted parent never ran");
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_two_recursive_children (deep nesting, results bubbling up).
#[test]
fn deep_nesting_bubbles_values_up_and_jumps_levels() {
    fn nest(depth: i64) -> Greenlet {
        Greenlet::new(move |_| {
            if depth == 0 {
                // Jump straight to main from the innermost level; main
                // switches straight back here.
                let mut top = greenlet::getcurrent().parent().unwrap();
                while let Some(parent) = top.parent() {
                    top = parent;
                }
                return int(top.switch(greenlet::getcurrent()).unwrap());
            }
            int(nest(depth - 1).switch(()).unwrap()) + 1
        })
    }
    let g = nest(50);
    let innermost = g.switch(()).unwrap().downcast::<Greenlet>().unwrap();
    assert!(g.is_active() && innermost.is_active());
    let mut depth = 0;
    let mut up = innermost.clone();
    while !up.ptr_eq(&g) {
        up = up.parent().unwrap();
        depth += 1;
    }
    assert_eq!(depth, 50);
    // The innermost returns 100 to its parent, and each level adds one.
    assert_eq!(int(innermost.switch(100i64).unwrap()), 150);
    assert!(g.is_dead() && innermost.is_dead());
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_exception (a panic unwinds through every level in turn).
#[test]
fn panic_crosses_every_level_of_nesting() {
    let log = Log::default();
    fn nest(depth: u32, log: Log) -> Greenlet {
        Greenlet::new(move |_| {
            if depth == 0 {
                raise(SomeError);
            }
            let result = panic::catch_unwind(AssertUnwindSafe(|| nest(depth - 1, log.clone()).switch(())));
            let payload = result.unwrap_err();
            log.push(format!("{depth}: {}", kind(&*payload)));
            panic::resume_unwind(payload)
        })
    }
    let g = nest(3, log.clone());
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert!(payload.is::<SomeError>());
    assert_eq!(log.take(), ["1: SomeError", "2: SomeError", "3: SomeError"]);
    assert!(g.is_dead());
}

// ------------------------------------------------------------ test_generator.py, test_generator_nested.py

/// A generator built from greenlets (greenlet's `genlet`). The genlet's own
/// state lives in a greenlet-local, so that `yield_` can find it from any
/// function the body calls.
#[derive(Default)]
struct GenState {
    /// The deepest genlet to resume directly (set by `yield_` at level > 1).
    child: RefCell<Option<(Greenlet, Rc<GenState>)>>,
    /// The state of the genlet that last resumed this one, if a genlet.
    parent: RefCell<Weak<GenState>>,
}

static GENLET: GreenletLocal<RefCell<Option<Rc<GenState>>>> = GreenletLocal::new(|| RefCell::new(None));

struct Genlet {
    greenlet: Greenlet,
    state: Rc<GenState>,
}

#[derive(Debug, PartialEq)]
struct YieldOutsideGenlet;

impl Genlet {
    fn new(body: impl FnOnce() + 'static) -> Genlet {
        let state = Rc::new(GenState::default());
        let own = state.clone();
        let greenlet = Greenlet::new(move |_| {
            GENLET.with(|slot| *slot.borrow_mut() = Some(own));
            body();
        });
        Genlet { greenlet, state }
    }
}

impl Iterator for Genlet {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let child = self.state.child.borrow().clone();
        let result = match child {
            Some((mut child, mut child_state)) => {
                // Resume the deepest descendant directly.
                loop {
                    let grandchild = child_state.child.borrow_mut().clone();
                    let Some((next, next_state)) = grandchild else { break };
                    *child_state.child.borrow_mut() = None;
                    (child, child_state) = (next, next_state);
                }
                child.switch(())
            }
            None => {
                self.greenlet.set_parent(&greenlet::getcurrent()).unwrap();
                let caller = GENLET.with(|slot| slot.borrow().as_ref().map(Rc::downgrade));
                *self.state.parent.borrow_mut() = caller.unwrap_or_default();
                self.greenlet.switch(())
            }
        };
        let result = result.unwrap();
        self.greenlet.is_active().then_some(result)
    }
}

/// greenlet's `Yield(value, level)`: hands `value` to the consumer `level`
/// genlets up.
fn yield_<T: 'static>(value: T, level: u32) -> Result<(), YieldOutsideGenlet> {
    let mut g = greenlet::getcurrent();
    let mut state = GENLET.with(|slot| slot.borrow().clone());
    for remaining in (1..=level).rev() {
        let Some(genlet) = state else { return Err(YieldOutsideGenlet) };
        let parent_state = genlet.parent.borrow().upgrade();
        if remaining > 1 {
            let parent_state = parent_state.as_ref().ok_or(YieldOutsideGenlet)?;
            *parent_state.child.borrow_mut() = Some((g.clone(), genlet.clone()));
        }
        g = g.parent().unwrap();
        state = parent_state;
    }
    g.switch(value).unwrap();
    Ok(())
}

fn ints(genlet: Genlet) -> Vec<i64> {
    genlet.map(int).collect()
}

// From greenlet's tests/test_generator.py, GeneratorTests.test_generator.
#[test]
fn generator_from_greenlets() {
    let seen = Rc::new(RefCell::new(Vec::<i64>::new()));
    let g = |n: i64, seen: Rc<RefCell<Vec<i64>>>| {
        Genlet::new(move || {
            for i in 0..n {
                seen.borrow_mut().push(i);
                yield_(i, 1).unwrap();
            }
        })
    };
    for _ in 0..3 {
        for j in g(5, seen.clone()) {
            seen.borrow_mut().push(int(j));
        }
    }
    assert_eq!(*seen.borrow(), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4].repeat(3));
}

// From greenlet's tests/test_generator_nested.py, NestedGeneratorTests.test_genlet_simple.
#[test]
fn genlet_simple_direct_and_from_a_nested_call() {
    fn nested(i: i64) {
        yield_(i, 1).unwrap();
    }
    type Maker = fn(i64, Rc<RefCell<Vec<i64>>>) -> Genlet;
    let g2: Maker = |n, seen| {
        Genlet::new(move || {
            for i in 0..n {
                seen.borrow_mut().push(i + 1);
                yield_(i, 1).unwrap();
            }
        })
    };
    let g3: Maker = |n, seen| {
        Genlet::new(move || {
            for i in 0..n {
                seen.borrow_mut().push(i + 1);
                nested(i);
            }
        })
    };
    for g in [g2, g3] {
        let seen = Rc::new(RefCell::new(Vec::<i64>::new()));
        for _ in 0..3 {
            for j in g(5, seen.clone()) {
                seen.borrow_mut().push(int(j));
            }
        }
        assert_eq!(*seen.borrow(), [1, 0, 2, 1, 3, 2, 4, 3, 5, 4].repeat(3));
    }
}

// From greenlet's tests/test_generator_nested.py, NestedGeneratorTests.test_genlet_bad.
#[test]
fn yield_outside_a_genlet_is_an_error() {
    assert_eq!(yield_(10i64, 1), Err(YieldOutsideGenlet));
    // Also from a plain greenlet.
    let g = Greenlet::new(|_| yield_(10i64, 1));
    assert_eq!(
        g.switch(()).unwrap().downcast::<Result<(), YieldOutsideGenlet>>().unwrap(),
        Err(YieldOutsideGenlet)
    );
}

// From greenlet's tests/test_generator_nested.py, NestedGeneratorTests.test_nested_genlets.
#[test]
fn nested_genlets() {
    fn ax(n: i64) -> Genlet {
        Genlet::new(move || {
            if n == 0 {
                return;
            }
            for ii in ax(n - 1) {
                yield_(int(ii), 1).unwrap();
            }
            yield_(n, 1).unwrap();
        })
    }
    assert_eq!(ints(ax(5)), [1, 2, 3, 4, 5]);
}

// From greenlet's tests/test_generator_nested.py, NestedGeneratorTests.test_layered_genlets.
#[test]
fn layered_genlets_yield_two_levels_up() {
    fn gr1(n: i64) -> Genlet {
        Genlet::new(move || {
            for ii in 1..n {
                yield_(ii, 1).unwrap();
                yield_(ii * ii, 2).unwrap();
            }
        })
    }
    fn gr2(n: i64, seen: Rc<RefCell<Vec<i64>>>) -> Genlet {
        Genlet::new(move || {
            for ii in gr1(n) {
                seen.borrow_mut().push(int(ii));
            }
        })
    }
    let seen = Rc::new(RefCell::new(Vec::<i64>::new()));
    for ii in gr2(5, seen.clone()) {
        seen.borrow_mut().push(int(ii));
    }
    assert_eq!(*seen.borrow(), [1, 1, 2, 4, 3, 9, 4, 16]);
}

// From greenlet's tests/test_generator_nested.py, NestedGeneratorTests.test_permutations.
#[test]
fn permutations_from_recursive_genlets() {
    fn perms(l: Vec<i64>) -> Genlet {
        Genlet::new(move || {
            if l.len() > 1 {
                for &e in &l {
                    let rest: Vec<i64> = l.iter().copied().filter(|&x| x != e).collect();
                    let mut count = 0;
                    for p in perms(rest) {
                        let mut permutation = vec![e];
                        permutation.extend(p.downcast::<Vec<i64>>().unwrap());
                        yield_(permutation, 1).unwrap();
                        count += 1;
                    }
                    assert!(count > 0);
                }
            } else {
                yield_(l, 1).unwrap();
            }
        })
    }
    let all: Vec<Vec<i64>> = perms(vec![0, 1, 2, 3]).map(|p| p.downcast::<Vec<i64>>().unwrap()).collect();
    assert_eq!(all.len(), 24);
    assert!(all.contains(&vec![0, 1, 2, 3]));
    assert!(all.contains(&vec![3, 2, 1, 0]));

    // Two at once; the longer one is left suspended (and killed on drop).
    let pairs: Vec<(Vec<i64>, Vec<i64>)> = perms(vec![0, 1, 2, 3])
        .zip(perms(vec![0, 1, 2]))
        .map(|(a, b)| (a.downcast().unwrap(), b.downcast().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            (vec![0, 1, 2, 3], vec![0, 1, 2]),
            (vec![0, 1, 3, 2], vec![0, 2, 1]),
            (vec![0, 2, 1, 3], vec![1, 0, 2]),
            (vec![0, 2, 3, 1], vec![1, 2, 0]),
            (vec![0, 3, 1, 2], vec![2, 0, 1]),
            (vec![0, 3, 2, 1], vec![2, 1, 0]),
        ]
    );
}
