//! python-greenlet's tracing tests (`tests/test_tracing.py`,
//! `TestGreenletTracing`), translated: `settrace`/`gettrace`, the events
//! with their origin and target, and the removal of a tracer that panics.
//!
//! Not translated: `TestPythonTracing` checks how greenlet switches show up
//! in `sys.setprofile` traces of Python frames; Rust has no equivalent.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::Builder;
use greenery::greenlet::{self, Event, Greenlet, Thrown, Tracer, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
struct SomeError;

/// greenlet's `GreenletTracer`: records `"<event> <origin> -> <target>"`,
/// naming greenlets by their `Builder` names; optionally panics.
struct Recorder {
    actions: Rc<RefCell<Vec<String>>>,
    tracer: Tracer,
}

impl Recorder {
    fn new(error_on_trace: bool) -> Recorder {
        let actions = Rc::new(RefCell::new(Vec::new()));
        let log = actions.clone();
        let tracer: Tracer = Rc::new(move |event: Event, origin: &Greenlet, target: &Greenlet| {
            log.borrow_mut().push(format!("{event:?} {} -> {}", origin.name(), target.name()));
            if error_on_trace {
                panic::resume_unwind(Box::new(SomeError));
            }
        });
        Recorder { actions, tracer }
    }

    /// Runs `f` with this tracer set, restoring the previous one after.
    fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let old = greenlet::settrace(Some(self.tracer.clone()));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        greenlet::settrace(old);
        result.unwrap_or_else(|payload| panic::resume_unwind(payload))
    }

    fn actions(&self) -> Vec<String> {
        self.actions.borrow().clone()
    }
}

fn named<R: 'static>(name: &'static str, body: impl FnOnce(Value) -> R + 'static) -> Greenlet {
    Builder::new().name(name).greenlet(body).unwrap()
}

fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

// From greenlet's tests/test_tracing.py, TestGreenletTracing.test_a_greenlet_tracing.
#[test]
fn switches_into_and_out_of_greenlets_are_traced() {
    let recorder = Recorder::new(false);
    recorder.during(|| {
        let g1 = named("g1", |_| {});
        g1.switch(()).unwrap();
        let g2 = named("g2", |_| -> () { panic::resume_unwind(Box::new(SomeError)) });
        let payload = panic::catch_unwind(AssertUnwindSafe(|| g2.switch(()))).unwrap_err();
        assert!(payload.is::<SomeError>());
    });
    // A greenlet that ends by returning switches to its parent; one that
    // panics throws the panic there, as greenlet reports it.
    assert_eq!(
        recorder.actions(),
        ["switch main -> g1", "switch g1 -> main", "switch main -> g2", "throw g2 -> main"]
    );
}

// From greenlet's tests/test_tracing.py, TestGreenletTracing.test_b_exception_disables_tracing.
#[test]
fn panicking_tracer_is_removed_and_the_panic_continues_in_the_target() {
    let main = greenlet::getcurrent();
    let g = named("g", {
        let main = main.clone();
        move |_| {
            main.switch(()).unwrap();
        }
    });
    g.switch(()).unwrap();
    let recorder = Recorder::new(true);
    recorder.during(|| {
        // The tracer panics on g's stack; g does not catch it, so it
        // continues in g's parent, main.
        let payload = panic::catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
        assert!(payload.is::<SomeError>());
        assert!(greenlet::gettrace().is_none(), "the tracer was removed");
        assert!(g.is_dead());
    });
    assert_eq!(recorder.actions(), ["switch main -> g"]);
}

// From greenlet's tests/test_tracing.py, TestGreenletTracing.test_set_same_tracer_twice.
#[test]
fn settrace_returns_the_previous_tracer() {
    assert!(greenlet::gettrace().is_none());
    let recorder = Recorder::new(false);
    assert!(greenlet::settrace(Some(recorder.tracer.clone())).is_none());
    let current = greenlet::gettrace().expect("a tracer is set");
    assert!(Rc::ptr_eq(&current, &recorder.tracer));
    // Setting the same tracer again hands it back.
    let previous = greenlet::settrace(Some(recorder.tracer.clone())).unwrap();
    assert!(Rc::ptr_eq(&previous, &recorder.tracer));
    let removed = greenlet::settrace(None).unwrap();
    assert!(Rc::ptr_eq(&removed, &recorder.tracer));
    assert!(greenlet::gettrace().is_none());
    // With the tracer removed, switches are not traced any more.
    named("untraced", |_| {}).switch(()).unwrap();
    assert!(recorder.actions().is_empty());
}

// From greenlet's docs/tracing.rst via test_tracing.py: throws, kills and kills on drop are traced as 'throw'.
#[test]
fn throws_kills_and_kills_on_drop_are_traced_as_throw() {
    let recorder = Recorder::new(false);
    recorder.during(|| {
        let g = named("g", |_| {
            let Err(Thrown(_)) = parent_switch(()) else { panic!("expected a throw") };
            parent_switch("caught").unwrap();
        });
        g.switch(()).unwrap();
        assert_eq!(g.throw(SomeError).unwrap().downcast::<&str>().ok(), Some("caught"));
        g.kill().unwrap();
        assert!(g.is_dead());
        // The GreenletExit thrown into a greenlet whose last handle is dropped.
        let h = named("h", |_| {
            parent_switch(()).unwrap();
        });
        h.switch(()).unwrap();
        drop(h);
    });
    assert_eq!(
        recorder.actions(),
        [
            "switch main -> g",
            "switch g -> main",
            "throw main -> g",
            "switch g -> main",
            "throw main -> g",
            "switch g -> main",
            "switch main -> h",
            "switch h -> main",
            "throw main -> h",
            "switch h -> main",
        ]
    );
}

// From greenlet's tests/test_tracing.py, TestPythonTracing.test_trace_events_multiple_greenlets_switching_siblings (greenlet events only).
#[test]
fn sibling_switches_are_traced_with_origin_and_target() {
    let recorder = Recorder::new(false);
    let slots: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
    let g1 = named("g1", {
        let slots = slots.clone();
        move |_| {
            parent_switch(()).unwrap();
            let g2 = slots.borrow()[1].clone();
            g2.switch(()).unwrap();
            42i64
        }
    });
    let g2 = named("g2", {
        let slots = slots.clone();
        move |_| {
            parent_switch(()).unwrap();
            let g1 = slots.borrow()[0].clone();
            g1.switch(()).unwrap();
        }
    });
    slots.borrow_mut().extend([g1.clone(), g2.clone()]);
    g1.switch(()).unwrap();
    g2.switch(()).unwrap();
    let x = recorder.during(|| g1.switch(()).unwrap());
    assert_eq!(x.downcast::<i64>().ok(), Some(42));
    assert_eq!(
        recorder.actions(),
        ["switch main -> g1", "switch g1 -> g2", "switch g2 -> g1", "switch g1 -> main"]
    );
    slots.borrow_mut().clear();
}

// From greenlet's docs/tracing.rst: the callback runs in the greenlet switched to (origin and target are the real ones).
#[test]
fn tracer_runs_in_the_target_and_a_dead_switch_targets_the_live_ancestor() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let tracer: Tracer = Rc::new(move |_, origin: &Greenlet, target: &Greenlet| {
        let current = greenlet::getcurrent();
        log.borrow_mut().push((current == *target, current == *origin, target.name().to_string()));
    });
    let old = greenlet::settrace(Some(tracer));
    let parent = named("parent", |_| {
        let child = named("child", |_| {});
        child.switch(()).unwrap();
        // The child is dead: switching to it goes to us (the current
        // greenlet), so nothing is switched and nothing is traced.
        child.switch(()).unwrap();
        parent_switch(()).unwrap();
        "done"
    });
    parent.switch(()).unwrap();
    let child_was = seen.borrow().len();
    // `parent` is suspended. Killing an unstarted child of it sends the
    // child's GreenletExit value to `parent`, which finishes.
    let unstarted = Greenlet::with_parent(&parent, |_| {});
    let done = unstarted.kill().unwrap();
    assert_eq!(done.downcast::<&str>().ok(), Some("done"));
    greenlet::settrace(old);
    let seen = seen.borrow().clone();
    assert!(seen.iter().all(|(in_target, in_origin, _)| *in_target && !*in_origin), "{seen:?}");
    let targets: Vec<&str> = seen.iter().map(|(_, _, name)| name.as_str()).collect();
    assert_eq!(&targets[..child_was], ["parent", "child", "parent", "main"]);
    assert_eq!(&targets[child_was..], ["parent", "main"]);
}

// From greenlet's tests/test_tracing.py (settrace is per thread: greenlet.settrace affects only the calling thread).
#[test]
fn tracer_is_per_thread() {
    let recorder = Recorder::new(false);
    recorder.during(|| {
        let other = std::thread::spawn(|| {
            assert!(greenlet::gettrace().is_none());
            Greenlet::new(|_| 1u8).switch(()).unwrap().downcast::<u8>().unwrap()
        });
        assert_eq!(other.join().unwrap(), 1);
        assert!(greenlet::gettrace().is_some());
    });
    assert!(recorder.actions().is_empty(), "{:?}", recorder.actions());
}
