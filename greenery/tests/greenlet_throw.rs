//! python-greenlet's throw and kill tests (`tests/test_throw.py`, and the
//! `GreenletExit` parts of `tests/test_greenlet.py`), translated.
//!
//! A Python exception thrown with `g.throw(exc)` is raised at `g`'s pending
//! switch; in greenery that switch returns `Err(Thrown(value))`, and a body
//! that does not handle it re-raises it as a panic (which then continues in
//! its parent, as an uncaught exception would). `g.throw()` with no
//! argument (`GreenletExit`) is [`Greenlet::kill`], which unwinds the
//! pending switch with a [`GreenletExit`] payload.
//!
//! Not translated: `test_non_traceback_param`, `test_instance_of_wrong_type`
//! and `test_not_throwable` check the TypeErrors of `throw(typ, val, tb)`'s
//! argument checking; greenery's `throw` takes one value of any type, so there
//! is nothing to refuse (see `throw_into_the_current_greenlet_returns_at_once`).

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::GreenletExit;
use greenery::greenlet::{self, Greenlet, Thrown, Value};

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

/// Logs `"drop <name>"` when dropped, and whether it was dropped while
/// unwinding.
struct Guard(Log, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let how = if std::thread::panicking() { " (unwinding)" } else { "" };
        self.0.push(format!("drop {}{how}", self.1));
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RuntimeError(&'static str);

#[derive(Debug, Clone, Copy, PartialEq)]
struct IndexError;

fn raise<E: Any + Send>(error: E) -> ! {
    panic::resume_unwind(Box::new(error))
}

/// `switch(*args)` of `test_throw.py`: to the current greenlet's parent.
fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

fn text(value: Value) -> &'static str {
    value.downcast::<&'static str>().unwrap_or_else(|v| panic!("expected a &str, got {v:?}"))
}

// From greenlet's tests/test_throw.py, ThrowTests.test_class.
#[test]
fn thrown_value_is_raised_at_the_pending_switch() {
    let g = Greenlet::new(|_| {
        match parent_switch("ok") {
            Err(Thrown(error)) if error.is::<RuntimeError>() => {
                parent_switch("ok").unwrap();
                return;
            }
            _ => {}
        }
        parent_switch("fail").unwrap();
    });
    assert_eq!(text(g.switch(()).unwrap()), "ok");
    assert_eq!(text(g.throw(RuntimeError("")).unwrap()), "ok");
    assert!(g.is_active());
}

// From greenlet's tests/test_throw.py, ThrowTests.test_val.
#[test]
fn thrown_value_arrives_intact() {
    let body = |_| {
        if let Err(Thrown(error)) = parent_switch("ok")
            && error.downcast_ref::<RuntimeError>() == Some(&RuntimeError("ciao"))
        {
            parent_switch("ok").unwrap();
            return;
        }
        parent_switch("fail").unwrap();
    };
    let g = Greenlet::new(body);
    assert_eq!(text(g.switch(()).unwrap()), "ok");
    assert_eq!(text(g.throw(RuntimeError("ciao")).unwrap()), "ok");

    // A boxed value (not a small plain one) arrives intact too.
    let g = Greenlet::new(|_| match parent_switch(()) {
        Err(Thrown(error)) => error.downcast::<Vec<String>>().unwrap().join(" "),
        Ok(_) => "not thrown".to_string(),
    });
    g.switch(()).unwrap();
    let words = vec!["ciao".to_string(), "bella".to_string()];
    assert_eq!(g.throw(words).unwrap().downcast::<String>().unwrap(), "ciao bella");
}

// From greenlet's tests/test_throw.py, ThrowTests.test_kill.
#[test]
fn kill_returns_greenlet_exit_and_a_dead_greenlet_sends_it_back() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _guard = Guard(log.clone(), "frame");
            parent_switch("ok").unwrap();
            log.push("after the kill");
            parent_switch("fail").unwrap();
        }
    });
    assert_eq!(text(g.switch(()).unwrap()), "ok");
    let res = g.kill().unwrap();
    assert!(res.is::<GreenletExit>(), "the parent receives a GreenletExit value, got {res:?}");
    assert!(g.is_dead());
    assert_eq!(log.take(), ["drop frame (unwinding)"]);
    // greenlet 3: a kill of the dead greenlet goes to its parent (main, the
    // caller) like a switch, and the GreenletExit comes back as a value.
    assert!(g.kill().unwrap().is::<GreenletExit>());
    // Any other error is raised in the parent: here, the caller.
    let Err(Thrown(error)) = g.throw(RuntimeError("late")) else { panic!("not raised in main") };
    assert_eq!(error.downcast_ref::<RuntimeError>(), Some(&RuntimeError("late")));
    assert_eq!(log.take(), ["drop frame (unwinding)"], "the dead greenlet runs nothing");
}

// Transcript (greenlet 3.x, checked by running it):
//
//     >>> def parent_body():
//     ...     child = greenlet(lambda: None)
//     ...     child.switch()               # the child dies at once
//     ...     main.switch(child)           # hand it to main
//     ...     try:
//     ...         greenlet.getcurrent().parent.switch("waiting")
//     ...     except IndexError:
//     ...         return "parent caught it"
//     >>> parent = greenlet(parent_body)
//     >>> child = parent.switch()
//     >>> parent.switch()
//     'waiting'
//     >>> child.throw(IndexError)          # raised in the suspended parent
//     'parent caught it'
//     >>> child.dead, parent.dead
//     (True, True)
#[test]
fn throw_into_a_dead_greenlet_is_raised_in_its_suspended_parent() {
    let main = greenlet::getcurrent();
    let parent = Greenlet::new(move |_| {
        let child = Greenlet::new(|_| ());
        child.switch(()).unwrap();
        assert!(child.is_dead());
        main.switch(child).unwrap();
        match parent_switch("waiting") {
            Err(Thrown(error)) if error.is::<IndexError>() => "parent caught it",
            _ => "nothing thrown",
        }
    });
    let child = parent.switch(()).unwrap().downcast::<Greenlet>().unwrap();
    assert_eq!(text(parent.switch(()).unwrap()), "waiting");
    assert_eq!(text(child.throw(IndexError).unwrap()), "parent caught it");
    assert!(child.is_dead() && parent.is_dead());
}

// Transcript (greenlet 3.x):
//
//     >>> def parent_body():
//     ...     child = greenlet(lambda: None)
//     ...     child.switch()
//     ...     main.switch(child)
//     ...     got = greenlet.getcurrent().parent.switch("waiting")
//     ...     return "parent got " + type(got).__name__
//     >>> parent = greenlet(parent_body)
//     >>> child = parent.switch()
//     >>> parent.switch()
//     'waiting'
//     >>> child.throw()                    # GreenletExit, a value to the parent
//     'parent got GreenletExit'
//     >>> parent.dead
//     True
#[test]
fn kill_of_a_dead_greenlet_hands_greenlet_exit_to_its_suspended_parent() {
    let main = greenlet::getcurrent();
    let parent = Greenlet::new(move |_| {
        let child = Greenlet::new(|_| ());
        child.switch(()).unwrap();
        main.switch(child).unwrap();
        match parent_switch("waiting") {
            Ok(value) if value.is::<GreenletExit>() => "parent got GreenletExit",
            _ => "something else",
        }
    });
    let child = parent.switch(()).unwrap().downcast::<Greenlet>().unwrap();
    assert_eq!(text(parent.switch(()).unwrap()), "waiting");
    assert_eq!(text(child.kill().unwrap()), "parent got GreenletExit");
    assert!(parent.is_dead());
}

// Transcript (greenlet 3.x):
//
//     >>> g = greenlet(lambda: print("ran"))
//     >>> g.throw(IndexError)
//     Traceback (most recent call last):
//     IndexError
//     >>> g.dead
//     True
//     >>> h = greenlet(lambda: print("ran"))
//     >>> h.throw()
//     GreenletExit()
//     >>> h.dead
//     True
#[test]
fn throw_or_kill_into_a_never_started_greenlet_kills_it_without_running() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| log.push("ran")
    });
    let Err(Thrown(error)) = g.throw(IndexError) else { panic!("not raised in the caller") };
    assert!(error.is::<IndexError>());
    assert!(g.is_dead());
    let h = Greenlet::new({
        let log = log.clone();
        move |_| log.push("ran")
    });
    assert!(h.kill().unwrap().is::<GreenletExit>());
    assert!(h.is_dead());
    assert!(log.take().is_empty(), "neither body ran");
}

// From greenlet's tests/test_throw.py, ThrowTests.test_throw_goes_to_original_parent.
#[test]
fn throw_goes_to_original_parent() {
    /// `f1`: catches IndexError however it arrives: thrown straight in
    /// (an `Err`), or raised in a child (a panic).
    fn f1(_: Value) -> &'static str {
        let main = greenlet::getcurrent().parent().unwrap();
        match panic::catch_unwind(AssertUnwindSafe(|| main.switch("f1 ready to catch"))) {
            Ok(Err(Thrown(error))) if error.is::<IndexError>() => "caught",
            Err(payload) if payload.is::<IndexError>() => "caught",
            Err(payload) => panic::resume_unwind(payload),
            Ok(_) => "normal exit",
        }
    }
    /// `f2`: does not handle what is thrown in, so it propagates.
    fn f2(main: Greenlet) -> impl FnOnce(Value) {
        move |_| {
            if let Err(Thrown(error)) = main.switch("from f2") {
                raise(error.downcast::<IndexError>().unwrap());
            }
        }
    }
    let main = greenlet::getcurrent();

    // Neither started: both die unstarted, and the error reaches main.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::with_parent(&g1, f2(main.clone()));
    let Err(Thrown(error)) = g2.throw(IndexError) else { panic!("expected the IndexError in main") };
    assert!(error.is::<IndexError>());
    assert!(g2.is_dead() && g1.is_dead());

    // g1 started: g2 dies unstarted and g1 catches the error.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::with_parent(&g1, f2(main.clone()));
    assert_eq!(text(g1.switch(()).unwrap()), "f1 ready to catch");
    assert_eq!(text(g2.throw(IndexError).unwrap()), "caught");
    assert!(g2.is_dead() && g1.is_dead());

    // Both started: g2 does not catch it, so it goes on to g1, which does.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::with_parent(&g1, f2(main.clone()));
    assert_eq!(text(g1.switch(()).unwrap()), "f1 ready to catch");
    assert_eq!(text(g2.switch(()).unwrap()), "from f2");
    assert_eq!(text(g2.throw(IndexError).unwrap()), "caught");
    assert!(g2.is_dead() && g1.is_dead());
}

// From greenlet's tests/test_throw.py, ThrowTests.test_not_throwable (greenlet.getcurrent().throw(...) raises in the caller).
#[test]
fn throw_into_the_current_greenlet_returns_at_once() {
    let main = greenlet::getcurrent();
    let Err(Thrown(error)) = main.throw("abc") else { panic!("expected Err(Thrown)") };
    assert_eq!(error.downcast::<&str>().ok(), Some("abc"));
    let g = Greenlet::new(|_| match greenlet::getcurrent().throw(7u8) {
        Err(Thrown(error)) => error.downcast::<u8>().ok(),
        Ok(_) => None,
    });
    assert_eq!(g.switch(()).unwrap().downcast::<Option<u8>>().unwrap(), Some(7));
}

// From greenlet's tests/test_greenlet.py, fmain/test_dealloc (GreenletExit raised at the switch, destructors run, innermost first).
#[test]
fn kill_unwinds_the_pending_switch_and_runs_destructors() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _outer = Guard(log.clone(), "outer");
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                let _inner = Guard(log.clone(), "inner");
                parent_switch(()).map(drop)
            }));
            let payload = result.unwrap_err();
            log.push(format!("caught GreenletExit: {}", payload.is::<GreenletExit>()));
            assert!(greenery::is_forced_unwind(&*payload));
            panic::resume_unwind(payload)
        }
    });
    g.switch(()).unwrap();
    assert!(log.take().is_empty());
    let res = g.kill().unwrap();
    assert!(res.is::<GreenletExit>());
    assert_eq!(log.take(), ["drop inner (unwinding)", "caught GreenletExit: true", "drop outer (unwinding)"]);
}

// From greenlet's docs/greenlet.rst (GreenletExit caught by the greenlet: what it returns goes to the parent).
#[test]
fn greenlet_that_catches_greenlet_exit_returns_its_own_value() {
    let g = Greenlet::new(|_| match panic::catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
        Err(payload) if payload.is::<GreenletExit>() => "cleaned up",
        _ => "not killed",
    });
    g.switch(()).unwrap();
    assert_eq!(text(g.kill().unwrap()), "cleaned up");
    assert!(g.is_dead());
}

// From greenlet's tests/test_throw.py, ThrowTests.test_throw_goes_to_original_parent (throw()/GreenletExit into an unstarted greenlet).
#[test]
fn kill_unstarted_greenlet_never_runs_it() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        let guard = Guard(log.clone(), "captured");
        move |_| {
            let _guard = guard;
            log.push("ran");
        }
    });
    let res = g.kill().unwrap();
    assert!(res.is::<GreenletExit>());
    assert!(g.is_dead() && !g.is_active());
    assert_eq!(log.take(), ["drop captured"], "the body is dropped without running");
    // (`is_started` is not checked here: see `greenlet_killed_before_starting_was_never_started`.)

    // A throw into an unstarted greenlet kills it and reaches its parent.
    let h = Greenlet::new(|_| "ran");
    let Err(Thrown(error)) = h.throw(IndexError) else { panic!("expected the IndexError in main") };
    assert!(error.is::<IndexError>() && h.is_dead());
}

// From greenlet's tests/test_throw.py, ThrowTests.test_throw_goes_to_original_parent (the GreenletExit goes to the parent, not to the killer).
#[test]
fn killed_greenlets_exit_value_goes_to_its_parent() {
    let log = Log::default();
    let main = greenlet::getcurrent();
    let parent = Greenlet::new({
        let (log, main) = (log.clone(), main.clone());
        move |_| {
            let child = Greenlet::new(|_| {
                let main = greenlet::getcurrent().parent().unwrap().parent().unwrap();
                main.switch(()).unwrap();
            });
            // The child goes straight to main and stays suspended.
            child.switch(()).unwrap();
            // Main kills the child, whose GreenletExit arrives here.
            let got = main.switch(child).unwrap();
            log.push(format!("parent got GreenletExit: {}", got.is::<GreenletExit>()));
            "parent done"
        }
    });
    let child = parent.switch(()).unwrap();
    assert!(child.is_empty(), "the child switched to main");
    let child = parent.switch(()).unwrap().downcast::<Greenlet>().unwrap();
    assert!(child.is_active());
    // The parent returns when the child's exit value reaches it.
    assert_eq!(text(child.kill().unwrap()), "parent done");
    assert!(child.is_dead() && parent.is_dead());
    assert_eq!(log.take(), ["parent got GreenletExit: true"]);
}

// From greenlet's tests/test_throw.py, ThrowTests.test_kill (here killing the current greenlet, greenlet.getcurrent().throw()).
#[test]
fn killing_the_current_greenlet_unwinds_it_at_once() {
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _guard = Guard(log.clone(), "frame");
            let _ = greenlet::getcurrent().kill();
            log.push("not reached");
        }
    });
    let res = g.switch(()).unwrap();
    assert!(res.is::<GreenletExit>());
    assert!(g.is_dead());
    assert_eq!(log.take(), ["drop frame (unwinding)"]);
}

// From greenlet's tests/test_greenlet.py, TestGreenlet.test_parent_restored_on_kill (a dying greenlet switches away, then is killed again).
#[test]
fn kill_or_throw_while_suspended_in_the_middle_of_a_kill_lets_it_finish() {
    struct SwitchOnDrop(Log);
    impl Drop for SwitchOnDrop {
        fn drop(&mut self) {
            // Suspend in the middle of the unwinding.
            let main = greenlet::getcurrent().parent().unwrap();
            let res = main.switch("dying");
            let empty = matches!(&res, Ok(value) if value.is_empty());
            self.0.push(format!("resumed while dying, with the empty value: {empty}"));
        }
    }
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            let _guard = Guard(log.clone(), "frame");
            let _switcher = SwitchOnDrop(log.clone());
            parent_switch(()).unwrap();
        }
    });
    g.switch(()).unwrap();
    assert_eq!(text(g.kill().unwrap()), "dying");
    assert!(g.is_active(), "suspended in the middle of its kill");
    let panicking_here = std::thread::panicking();
    // A second kill does nothing to the unwinding in progress: the
    // destructor's switch returns, and the greenlet finishes dying.
    let res = g.kill().unwrap();
    assert!(res.is::<GreenletExit>());
    assert!(g.is_dead());
    assert!(!std::thread::panicking());
    assert_eq!(log.take(), ["resumed while dying, with the empty value: true", "drop frame (unwinding)"]);
    // Documented: while a greenlet is suspended mid-unwind, the thread counts as panicking.
    assert!(panicking_here);

    // Throwing into it instead makes the destructor's switch return the
    // error; the unwinding then goes on and the greenlet dies.
    let log = Log::default();
    let g = Greenlet::new({
        let log = log.clone();
        move |_| {
            struct CatchInDrop(Log);
            impl Drop for CatchInDrop {
                fn drop(&mut self) {
                    let main = greenlet::getcurrent().parent().unwrap();
                    let thrown = matches!(main.switch("dying"), Err(Thrown(e)) if e.is::<IndexError>());
                    self.0.push(format!("thrown into while dying: {thrown}"));
                }
            }
            let _catcher = CatchInDrop(log.clone());
            parent_switch(()).unwrap();
        }
    });
    g.switch(()).unwrap();
    assert_eq!(text(g.kill().unwrap()), "dying");
    let res = g.throw(IndexError).unwrap();
    assert!(res.is::<GreenletExit>());
    assert!(g.is_dead());
    assert_eq!(log.take(), ["thrown into while dying: true"]);
}

// From greenlet's tests/test_throw.py, ThrowTests.test_throw_goes_to_original_parent (g2 is thrown into before it ever runs).
#[test]
fn greenlet_killed_before_starting_was_never_started() {
    let killed = Greenlet::new(|_| {});
    killed.kill().unwrap();
    assert!(killed.is_dead());
    assert!(!killed.is_started(), "is_started: \"whether the greenlet has been switched to at least once\"");
    let thrown = Greenlet::new(|_| {});
    thrown.throw(IndexError).unwrap_err();
    assert!(thrown.is_dead());
    assert!(!thrown.is_started());
}
