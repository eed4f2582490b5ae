//! CPython's generator tests (`Lib/test/test_generators.py`), ported to
//! greenery's [`Generator`]: the send/throw/close protocol, `GeneratorExit` and
//! `finally`, and generator states.
//!
//! Python's `finally` is a drop guard in the body, `GeneratorExit` is an
//! unwind with a [`GeneratorExit`] payload, and an exception escaping the
//! body is a panic. Each test records what happens, in order, in a [`Trace`]
//! shared with the bodies, like the `trace` lists of the Python tests.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::{
    Builder, CloseError, Co, CoroutineResult, Generator, GeneratorExit, GeneratorState, ResumeError,
    is_forced_unwind,
};

mod reports;

/// Events recorded by a test and the generators it drives.
#[derive(Clone, Default)]
struct Trace(Rc<RefCell<Vec<String>>>);

impl Trace {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// A guard that records `event` when dropped: Python's `finally`.
    fn finally(&self, event: &str) -> Finally {
        Finally { trace: self.clone(), event: event.to_owned() }
    }
}

struct Finally {
    trace: Trace,
    event: String,
}

impl Drop for Finally {
    fn drop(&mut self) {
        self.trace.push(self.event.clone());
    }
}

/// The message of a panic payload.
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "<not a message>"
    }
}

/// Runs `f`, which must panic, and returns the panic's message.
fn panic_message<T>(f: impl FnOnce() -> T) -> String {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => message(&*payload).to_owned(),
    }
}

/// The errors thrown into generators in these tests (Python's exception
/// classes).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PyErr {
    Value(String),
    Type(String),
    Runtime,
}

// From CPython Lib/test/test_generators.py, tutorial_tests ("Falling off the end" and "return" stop the generator).
#[test]
fn falling_off_the_end_and_return_stop_the_generator() {
    let mut falls_off: Generator<(), i32> = Generator::new(|co, ()| {
        co.yield_(1);
        co.yield_(2);
    });
    assert_eq!(falls_off.next(), Some(1));
    assert_eq!(falls_off.next(), Some(2));
    assert_eq!(falls_off.next(), None);
    assert_eq!(falls_off.state(), GeneratorState::Completed);

    let trace = Trace::default();
    let mut returns: Generator<(), i32> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            co.yield_(1);
            if std::hint::black_box(true) {
                return;
            }
            trace.push("never reached");
            co.yield_(2);
        }
    });
    assert_eq!(returns.next(), Some(1));
    assert_eq!(returns.resume(()), Ok(CoroutineResult::Return(())));
    // Once stopped, it cannot be resumed: iteration stays finished and
    // `resume` reports StopIteration.
    assert_eq!(returns.next(), None);
    assert_eq!(returns.resume(()), Err(ResumeError(())));
    assert!(trace.events().is_empty());
}

// From CPython Lib/test/test_generators.py, pep_tests ("Generators and Exception Propagation").
#[test]
fn exception_in_body_propagates_and_completes_the_generator() {
    fn f() -> i32 {
        panic!("integer division or modulo by zero")
    }
    let trace = Trace::default();
    let mut k: Generator<(), i32> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            co.yield_(f());
            trace.push("never get here");
            co.yield_(42);
        }
    });
    assert_eq!(panic_message(|| k.next()), "integer division or modulo by zero");
    assert_eq!(k.state(), GeneratorState::Completed);
    // The generator cannot be resumed.
    assert_eq!(k.next(), None);
    assert_eq!(k.resume(()), Err(ResumeError(())));
    assert!(trace.events().is_empty());
}

// From CPython Lib/test/test_generators.py, pep_tests ("A generator cannot be resumed while it is actively running").
#[test]
fn resuming_a_running_generator_is_refused() {
    type Slot = Rc<RefCell<Option<Generator<(), i32>>>>;
    let me: Slot = Rc::default();
    let generator = Generator::new({
        let me = me.clone();
        move |co, ()| {
            // `i = next(me)`: the running generator is mutably borrowed by
            // whoever resumed it, so it cannot be reached again.
            let i = match me.try_borrow_mut() {
                Ok(mut slot) => slot.as_mut().and_then(Iterator::next),
                Err(_) => panic!("generator already executing"),
            };
            co.yield_(i.unwrap_or(-1));
        }
    });
    *me.borrow_mut() = Some(generator);

    let message = panic_message(|| me.borrow_mut().as_mut().unwrap().next());
    assert_eq!(message, "generator already executing");
    let generator = me.borrow_mut().take().unwrap();
    assert_eq!(generator.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_generators.py, GeneratorTest.test_name.
#[test]
fn generator_name() {
    let mut named: Generator<(), i32> = Builder::new().name("func").generator(|co, ()| co.yield_(1)).unwrap();
    assert_eq!(named.name(), "func");
    assert!(format!("{named:?}").contains("\"func\""));
    assert_eq!(named.next(), Some(1));
    // The name outlives the body.
    assert_eq!(named.next(), None);
    assert_eq!(named.name(), "func");

    // An unnamed generator is named after its body's type, which Rust names
    // after the function that defines the closure (Python's
    // `<locals>.<genexpr>` qualname).
    let unnamed: Generator<(), i32> = Generator::new(|co, ()| co.yield_(1));
    assert!(unnamed.name().contains("generator_name"), "{}", unnamed.name());
}

// From CPython Lib/test/test_generators.py, FinalizationTest.test_lambda_generator (and test_return_tuple).
#[test]
fn returning_the_sent_value() {
    type Gen = Generator<Option<(i32,)>, i32, Option<(i32,)>>;
    // `def g(): return (yield 1)`
    fn g() -> Gen {
        Generator::new(|co, _| co.yield_(1))
    }
    // `def g2(): return (yield from g())`
    fn g2() -> Gen {
        Generator::new(|co, _| co.yield_from(g()))
    }
    // `def g3(): return (yield from g2())`
    fn g3() -> Gen {
        Generator::new(|co, _| co.yield_from(g2()))
    }
    for (name, mut generator) in [("g", g()), ("g2", g2()), ("g3", g3())] {
        assert_eq!(generator.resume(None), Ok(CoroutineResult::Yield(1)), "{name}");
        assert_eq!(generator.resume(Some((2,))), Ok(CoroutineResult::Return(Some((2,)))), "{name}");
        assert_eq!(generator.state(), GeneratorState::Completed, "{name}");
    }
}

// From CPython Lib/test/test_generators.py, coroutine_tests (sending into a started and into a just-started generator).
#[test]
fn send_into_started_and_just_started_generators() {
    let trace = Trace::default();
    // `def f(): print((yield 1)); yield 2`
    let f = || {
        let trace = trace.clone();
        Generator::new(move |co, first: &'static str| {
            trace.push(format!("started with {first:?}"));
            let sent = co.yield_(1);
            trace.push(format!("received {sent:?}"));
            co.yield_(2);
        })
    };
    let mut g = f();
    assert_eq!(g.resume(""), Ok(CoroutineResult::Yield(1)));
    assert_eq!(g.resume("42"), Ok(CoroutineResult::Yield(2)));
    assert_eq!(trace.events(), ["started with \"\"", "received \"42\""]);

    // Python refuses a non-None first send ("can't send non-None value to a
    // just-started generator"); greenery hands it to the body as its argument.
    let mut g = f();
    assert_eq!(g.resume("foo"), Ok(CoroutineResult::Yield(1)));
    assert_eq!(trace.events(), ["started with \"\"", "received \"42\"", "started with \"foo\""]);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("Now check some throw() conditions").
#[test]
fn throw_conditions() {
    let trace = Trace::default();
    let mut g: Generator<Option<i32>, (), Result<(), PyErr>, PyErr> = Generator::new({
        let trace = trace.clone();
        move |co, _: Option<i32>| loop {
            match co.try_yield(()) {
                Ok(Some(value)) => trace.push(value.to_string()),
                Ok(None) => trace.push("None"),
                Err(PyErr::Value(v)) => trace.push(format!("caught ValueError ({v})")),
                Err(other) => return Err(other),
            }
        }
    });
    assert_eq!(g.resume(None), Ok(CoroutineResult::Yield(())));

    // Handled: the body yields again, and `throw` returns what it yielded.
    assert_eq!(g.throw(PyErr::Value(String::new())), Ok(CoroutineResult::Yield(())));
    assert_eq!(g.throw(PyErr::Value("xyz".into())), Ok(CoroutineResult::Yield(())));
    assert_eq!(g.resume(Some(1)), Ok(CoroutineResult::Yield(())));
    assert_eq!(trace.events(), ["caught ValueError ()", "caught ValueError (xyz)", "1"]);

    // Not handled: it terminates the generator, and comes back out.
    assert_eq!(
        g.throw(PyErr::Type("fatal".into())),
        Ok(CoroutineResult::Return(Err(PyErr::Type("fatal".into()))))
    );
    assert_eq!(g.state(), GeneratorState::Completed);

    // Sending to the finished generator: StopIteration, the value handed back.
    assert_eq!(g.resume(Some(2)), Err(ResumeError(Some(2))));
    // Throwing into the finished generator: the error straight back.
    assert_eq!(g.throw(PyErr::Value("6".into())), Err(PyErr::Value("6".into())));
    assert_eq!(trace.events().len(), 3);
}

// From CPython Lib/test/test_generators.py, coroutine_tests (throw on a just-opened generator).
#[test]
fn throw_into_just_opened_generator() {
    let trace = Trace::default();
    let captured = trace.finally("captured state released");
    let mut f = Generator::fallible({
        let trace = trace.clone();
        move |co, ()| {
            let _captured = captured;
            trace.push("body started");
            co.try_yield(())?;
            Ok(())
        }
    });
    assert_eq!(f.throw(PyErr::Value("7".into())), Err(PyErr::Value("7".into())));
    // The body never ran, and the generator is finished with it.
    assert_eq!(trace.events(), ["captured state released"]);
    assert_eq!(f.state(), GeneratorState::Completed);
    assert_eq!(f.resume(()), Err(ResumeError(())));
    assert_eq!(f.close(), Ok(None));
    assert_eq!(trace.events(), ["captured state released"]);
}

// From CPython Lib/test/test_generators.py, GeneratorThrowTest.test_throw_after_none_exc_type.
#[test]
fn throw_handled_by_raising_another_error() {
    let mut generator = Generator::fallible(|co, ()| match co.try_yield(()) {
        Ok(()) => Ok(()),
        Err(_) => Err(PyErr::Runtime),
    });
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(
        generator.throw(PyErr::Value(String::new())),
        Ok(CoroutineResult::Return(Err(PyErr::Runtime)))
    );
    assert_eq!(generator.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("Now let's try closing a generator").
#[test]
fn close_runs_the_generator_exit_handler_once() {
    let trace = Trace::default();
    // `try: yield / except GeneratorExit: print("exiting")`
    let f = || {
        let trace = trace.clone();
        Generator::<(), ()>::new(move |co, ()| {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))) {
                assert!(payload.is::<GeneratorExit>());
                trace.push("exiting");
            }
        })
    };
    let mut g = f();
    assert_eq!(g.next(), Some(()));
    // The body caught GeneratorExit and returned, so close hands back what
    // it returned, `()` (Python 3.13 hands back the return value too, which
    // is None there and indistinguishable from "no value").
    assert_eq!(g.close(), Ok(Some(())));
    assert_eq!(trace.events(), ["exiting"]);
    // Closing again is a no-op.
    assert_eq!(g.close(), Ok(None));
    assert_eq!(trace.events(), ["exiting"]);

    // Closing a just-opened generator is fine, and does not run its body.
    assert_eq!(f().close(), Ok(None));
    assert_eq!(trace.events(), ["exiting"]);

    // An even simpler generator: close before opening, and close normally.
    let simple = || Generator::<(), ()>::new(|co, ()| co.yield_(()));
    assert_eq!(simple().close(), Ok(None));
    let mut g = simple();
    assert_eq!(g.next(), Some(()));
    assert_eq!(g.close(), Ok(None));
    assert_eq!(g.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("And finalization": del g runs finally).
#[test]
fn dropping_a_suspended_generator_runs_finally() {
    let trace = Trace::default();
    let mut g: Generator<(), ()> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("exiting");
            co.yield_(());
            trace.push("resumed");
        }
    });
    assert_eq!(g.next(), Some(()));
    assert!(trace.events().is_empty());
    drop(g);
    assert_eq!(trace.events(), ["exiting"]);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("GeneratorExit is not caught by except Exception").
#[test]
fn generator_exit_is_not_caught_by_a_catch_all_that_lets_forced_unwinds_through() {
    let trace = Trace::default();
    let mut g: Generator<(), ()> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("finally");
            match panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))) {
                Ok(()) => {}
                Err(payload) if is_forced_unwind(&*payload) => panic::resume_unwind(payload),
                Err(_) => trace.push("except"),
            }
        }
    });
    assert_eq!(g.next(), Some(()));
    drop(g);
    assert_eq!(trace.events(), ["finally"]);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("Now let's try some ill-behaved generators").
#[test]
fn ill_behaved_generator_ignoring_close() {
    let trace = Trace::default();
    // `try: yield / except GeneratorExit: yield "foo!"`
    let f = || {
        let trace = trace.clone();
        Generator::<(), Option<&'static str>>::new(move |co, ()| {
            let _finally = trace.finally("finally");
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(None))) {
                assert!(payload.is::<GeneratorExit>());
                trace.push("caught GeneratorExit");
                co.yield_(Some("foo!"));
                trace.push("resumed after foo!");
            }
        })
    };

    let mut g = f();
    assert_eq!(g.next(), Some(None));
    // RuntimeError: generator ignored GeneratorExit. It stays suspended.
    assert!(matches!(g.close(), Err(CloseError { .. })));
    assert_eq!(g.state(), GeneratorState::Suspended);
    assert_eq!(trace.events(), ["caught GeneratorExit"]);
    // Closing again unwinds it from the second yield.
    assert_eq!(g.close(), Ok(None));
    assert_eq!(g.state(), GeneratorState::Completed);
    assert_eq!(trace.events(), ["caught GeneratorExit", "finally"]);

    // After the ignored close, the generator is suspended at `yield "foo!"`,
    // and resuming it carries on from there.
    let mut g = f();
    assert_eq!(g.next(), Some(None));
    assert!(g.close().is_err());
    assert_eq!(g.resume(()), Ok(CoroutineResult::Return(())));
    assert_eq!(trace.events()[2..], ["caught GeneratorExit", "resumed after foo!", "finally"]);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("Our ill-behaved code should be invoked during GC").
#[test]
fn ill_behaved_generator_dropped() {
    let reports = reports::capture();
    let trace = Trace::default();
    let mut g: Generator<(), Option<&'static str>> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("finally");
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(None))) {
                assert!(payload.is::<GeneratorExit>());
                trace.push("caught GeneratorExit");
                co.yield_(Some("foo!"));
                trace.push("resumed after foo!");
            }
        }
    });
    assert_eq!(g.next(), Some(None));
    // The error is reported (on stderr), not raised: drop returns normally,
    // having closed the generator again until it finished.
    let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(g)));
    assert!(dropped.is_ok());
    assert_eq!(trace.events(), ["caught GeneratorExit", "finally"]);
    reports.assert_one(&["ignored close while being dropped; closing it again"]);
}

// From CPython Lib/test/test_generators.py, coroutine_tests ("And errors thrown during closing should propagate").
#[test]
fn errors_raised_while_closing_propagate() {
    let reports = reports::capture();
    let trace = Trace::default();
    let mut g: Generator<(), ()> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("finally");
            if panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))).is_err() {
                panic!("fie!");
            }
        }
    });
    assert_eq!(g.next(), Some(()));
    assert_eq!(panic_message(|| g.close()), "fie!");
    assert_eq!(trace.events(), ["finally"]);
    assert_eq!(g.state(), GeneratorState::Completed);
    assert_eq!(g.close(), Ok(None));

    // Dropping it instead reports the error (on stderr) and does not raise it.
    let mut g: Generator<(), ()> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("finally on drop");
            if panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))).is_err() {
                panic!("fie!");
            }
        }
    });
    assert_eq!(g.next(), Some(()));
    assert!(panic::catch_unwind(AssertUnwindSafe(move || drop(g))).is_ok());
    assert_eq!(trace.events(), ["finally", "finally on drop"]);
    reports.assert_one(&["panicked while being closed on drop: fie!"]);
}

/// A `finally:` block that yields: records `event`, then yields `value`.
struct YieldInFinally<'a> {
    co: &'a Co<(), i32>,
    value: i32,
    trace: Trace,
}

impl Drop for YieldInFinally<'_> {
    fn drop(&mut self) {
        self.trace.push(format!("finally: yield {}", self.value));
        self.co.yield_(self.value);
        self.trace.push("finally resumed");
    }
}

// From CPython Lib/test/test_generators.py, tutorial_tests ("This may be surprising at first": try: return / finally: yield 1).
#[test]
fn yield_in_finally_after_return() {
    let trace = Trace::default();
    let mut g3: Generator<(), i32> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = YieldInFinally { co, value: 1, trace: trace.clone() };
            if std::hint::black_box(true) {
                return;
            }
            trace.push("never reached");
        }
    });
    assert_eq!(g3.by_ref().collect::<Vec<_>>(), [1]);
    assert_eq!(g3.state(), GeneratorState::Completed);
    assert_eq!(trace.events(), ["finally: yield 1", "finally resumed"]);
}

// CPython's ill-behaved generators whose `finally` yields while `close`
// unwinds them (`try: yield 1 / finally: yield 2`) cannot be ported: a Rust
// stack cannot be suspended half-way through unwinding. greenery reports such a
// suspend by name and aborts; tests/suspend_while_unwinding.rs checks that.

/// `try: yield / except GeneratorExit: return 0` (falling off the end
/// returns 1 here, where Python returns None).
fn returns_zero_on_exit(trace: Trace) -> Generator<(), (), i32> {
    Generator::new(move |co, ()| {
        trace.push("started");
        match panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))) {
            Ok(()) => 1,
            Err(payload) if payload.is::<GeneratorExit>() => 0,
            Err(payload) => panic::resume_unwind(payload),
        }
    })
}

// From CPython Lib/test/test_generators.py, GeneratorCloseTest.test_close_return_value and test_close_closed.
#[test]
fn close_return_value() {
    let trace = Trace::default();
    let mut generator = returns_zero_on_exit(trace.clone());
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(generator.close(), Ok(Some(0)));
    assert_eq!(generator.state(), GeneratorState::Completed);
    // Closing the closed generator returns nothing and runs nothing.
    assert_eq!(generator.close(), Ok(None));
    assert_eq!(trace.events(), ["started"]);
}

// From CPython Lib/test/test_generators.py, GeneratorCloseTest.test_close_no_return_value and test_close_not_catching_exit.
#[test]
fn close_without_return_value() {
    let mut generator: Generator<(), ()> = Generator::new(|co, ()| co.yield_(()));
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(generator.close(), Ok(None));

    let trace = Trace::default();
    let mut generator: Generator<(), (), i32> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            co.yield_(());
            trace.push("after yield");
            0
        }
    });
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(())));
    // GeneratorExit propagates out of the body: no return value.
    assert_eq!(generator.close(), Ok(None));
    assert!(trace.events().is_empty());
}

// From CPython Lib/test/test_generators.py, GeneratorCloseTest.test_close_not_started and test_close_exhausted.
#[test]
fn close_not_started_or_exhausted() {
    let trace = Trace::default();
    let mut not_started = returns_zero_on_exit(trace.clone());
    assert_eq!(not_started.close(), Ok(None));
    assert_eq!(not_started.state(), GeneratorState::Completed);
    assert!(trace.events().is_empty(), "the body must not run");

    let mut exhausted = returns_zero_on_exit(trace.clone());
    assert_eq!(exhausted.next(), Some(()));
    assert_eq!(exhausted.next(), None);
    assert_eq!(exhausted.return_value(), Some(1));
    assert_eq!(exhausted.close(), Ok(None));
    assert_eq!(trace.events(), ["started"]);
}

// From CPython Lib/test/test_generators.py, GeneratorCloseTest.test_close_raises.
#[test]
fn close_raises() {
    let mut generator: Generator<(), ()> = Generator::new(|co, ()| {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))) {
            assert!(payload.is::<GeneratorExit>());
        }
        panic!("RuntimeError");
    });
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(panic_message(|| generator.close()), "RuntimeError");
    assert_eq!(generator.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_generators.py, YieldFromTests.test_generator_gi_yieldfrom (the getgeneratorstate part).
#[test]
fn generator_states() {
    let trace = Trace::default();
    let a = {
        let trace = trace.clone();
        move || {
            Generator::<(), ()>::new(move |co, ()| {
                trace.push("a started");
                co.yield_(());
                trace.push("a finished");
            })
        }
    };
    let mut gen_b: Generator<(), ()> = Generator::new(move |co, ()| {
        co.yield_from(a());
        co.yield_(());
    });
    assert_eq!(gen_b.state(), GeneratorState::Created);
    assert_eq!(gen_b.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(gen_b.state(), GeneratorState::Suspended);
    assert_eq!(gen_b.resume(()), Ok(CoroutineResult::Yield(())));
    assert_eq!(gen_b.state(), GeneratorState::Suspended);
    assert_eq!(gen_b.by_ref().count(), 0); // exhaust it
    assert_eq!(gen_b.state(), GeneratorState::Completed);
    assert_eq!(trace.events(), ["a started", "a finished"]);

    // Closed and panicked generators are completed too.
    let mut closed: Generator<(), ()> = Generator::new(|co, ()| co.yield_(()));
    closed.next();
    closed.close().unwrap();
    assert_eq!(closed.state(), GeneratorState::Completed);
    let mut panicked: Generator<(), ()> = Generator::new(|_, ()| panic!("boom"));
    assert_eq!(panic_message(|| panicked.next()), "boom");
    assert_eq!(panicked.state(), GeneratorState::Completed);
}
