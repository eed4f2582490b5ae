//! PEP 380's `yield from`, as CPython tests it (`Lib/test/test_yield_from.py`),
//! ported to greenery's [`Co::yield_from`]: delegation of next, send, throw and
//! close, return values, errors propagating, and chains finalised innermost
//! first.
//!
//! Python's `finally` is a drop guard in the body, an exception escaping a
//! body is a panic, and an exception thrown in is an `Err` from
//! [`Co::try_yield`]. Each test records what happens, in order, in a
//! [`Trace`] shared with the bodies, like the `trace` lists of the Python
//! tests.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::{Builder, Co, CoroutineResult, Generator, GeneratorExit, GeneratorState};

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

/// Runs `f`, which must panic, and returns the panic's message.
fn panic_message<T>(f: impl FnOnce() -> T) -> String {
    let payload: Box<dyn Any + Send> = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => payload,
    };
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<not a message>".to_owned()
    }
}

/// Python's `for x in g: trace.append("Yielded %s" % x)`.
fn drain<R, E>(g: &mut Generator<(), &'static str, R, E>, trace: &Trace) {
    for x in g {
        trace.push(format!("Yielded {x}"));
    }
}

/// `%s` of a sent value, where `None` is what `next()` sends.
fn show(x: Option<i32>) -> String {
    x.map_or_else(|| "None".to_owned(), |x| x.to_string())
}

/// An error to throw in (Python's `ValueError("...")`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueError(&'static str);

// From CPython Lib/test/test_yield_from.py, test_delegation_of_initial_next_to_subgenerator.
#[test]
fn delegation_of_initial_next_to_subgenerator() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<(), &'static str>::new(move |co, ()| {
                trace.push("Starting g2");
                co.yield_("42");
                trace.push("Finishing g2");
            })
        }
    };
    let mut g1: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            trace.push("Starting g1");
            co.yield_from(g2());
            trace.push("Finishing g1");
        }
    });
    drain(&mut g1, &trace);
    assert_eq!(trace.events(), ["Starting g1", "Starting g2", "Yielded 42", "Finishing g2", "Finishing g1",]);
}

// From CPython Lib/test/test_yield_from.py, test_raising_exception_in_initial_next_call.
#[test]
fn raising_exception_in_initial_next_call() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<(), &'static str>::new(move |_, ()| {
                let _finally = trace.finally("Finishing g2");
                trace.push("Starting g2");
                panic!("spanish inquisition occurred");
            })
        }
    };
    let mut g1: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("Finishing g1");
            trace.push("Starting g1");
            co.yield_from(g2());
            trace.push("g1 should not be here");
        }
    });
    assert_eq!(panic_message(|| drain(&mut g1, &trace)), "spanish inquisition occurred");
    assert_eq!(trace.events(), ["Starting g1", "Starting g2", "Finishing g2", "Finishing g1"]);
    assert_eq!(g1.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_yield_from.py, test_delegation_of_next_call_to_subgenerator.
#[test]
fn delegation_of_next_call_to_subgenerator() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<(), &'static str>::new(move |co, ()| {
                trace.push("Starting g2");
                co.yield_("g2 spam");
                co.yield_("g2 more spam");
                trace.push("Finishing g2");
            })
        }
    };
    let mut g1: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            trace.push("Starting g1");
            co.yield_("g1 ham");
            co.yield_from(g2());
            co.yield_("g1 eggs");
            trace.push("Finishing g1");
        }
    });
    drain(&mut g1, &trace);
    assert_eq!(
        trace.events(),
        [
            "Starting g1",
            "Yielded g1 ham",
            "Starting g2",
            "Yielded g2 spam",
            "Yielded g2 more spam",
            "Finishing g2",
            "Yielded g1 eggs",
            "Finishing g1",
        ]
    );
}

// From CPython Lib/test/test_yield_from.py, test_raising_exception_in_delegated_next_call.
#[test]
fn raising_exception_in_delegated_next_call() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<(), &'static str>::new(move |co, ()| {
                let _finally = trace.finally("Finishing g2");
                trace.push("Starting g2");
                co.yield_("g2 spam");
                panic!("hovercraft is full of eels");
            })
        }
    };
    let mut g1: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("Finishing g1");
            trace.push("Starting g1");
            co.yield_("g1 ham");
            co.yield_from(g2());
            co.yield_("g1 eggs");
        }
    });
    assert_eq!(panic_message(|| drain(&mut g1, &trace)), "hovercraft is full of eels");
    assert_eq!(
        trace.events(),
        ["Starting g1", "Yielded g1 ham", "Starting g2", "Yielded g2 spam", "Finishing g2", "Finishing g1",]
    );
    assert_eq!(g1.state(), GeneratorState::Completed);
    assert_eq!(g1.next(), None);
}

/// g1 and g2 of the `send` tests: g2 panics after its first send when
/// `fail` is set.
fn send_pair(trace: &Trace, fail: bool) -> Generator<Option<i32>, &'static str> {
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<Option<i32>, &'static str>::new(move |co, _| {
                trace.push("Starting g2");
                let x = co.yield_("g2 spam");
                trace.push(format!("g2 received {}", show(x)));
                if fail {
                    panic!("hovercraft is full of eels");
                }
                let x = co.yield_("g2 more spam");
                trace.push(format!("g2 received {}", show(x)));
                trace.push("Finishing g2");
            })
        }
    };
    let trace = trace.clone();
    Generator::new(move |co, _| {
        trace.push("Starting g1");
        let x = co.yield_("g1 ham");
        trace.push(format!("g1 received {}", show(x)));
        co.yield_from(g2());
        let x = co.yield_("g1 eggs");
        trace.push(format!("g1 received {}", show(x)));
        trace.push("Finishing g1");
    })
}

/// Python's `next(g)`, then `g.send(x)` for x = 1, 2, ... until
/// StopIteration.
fn send_counting(g: &mut Generator<Option<i32>, &'static str>, trace: &Trace) {
    assert_eq!(g.resume(None), Ok(CoroutineResult::Yield("g1 ham")));
    let mut x = 1;
    loop {
        match g.resume(Some(x)) {
            Ok(CoroutineResult::Yield(y)) => trace.push(format!("Yielded {y}")),
            Ok(CoroutineResult::Return(())) => break,
            Err(_) => panic!("resumed after the end"),
        }
        x += 1;
    }
}

// From CPython Lib/test/test_yield_from.py, test_delegation_of_send.
#[test]
fn delegation_of_send() {
    let trace = Trace::default();
    let mut g = send_pair(&trace, false);
    send_counting(&mut g, &trace);
    assert_eq!(
        trace.events(),
        [
            "Starting g1",
            "g1 received 1",
            "Starting g2",
            "Yielded g2 spam",
            "g2 received 2",
            "Yielded g2 more spam",
            "g2 received 3",
            "Finishing g2",
            "Yielded g1 eggs",
            "g1 received 4",
            "Finishing g1",
        ]
    );
}

// From CPython Lib/test/test_yield_from.py, test_handling_exception_while_delegating_send.
#[test]
fn handling_exception_while_delegating_send() {
    let trace = Trace::default();
    let mut g = send_pair(&trace, true);
    assert_eq!(panic_message(|| send_counting(&mut g, &trace)), "hovercraft is full of eels");
    assert_eq!(
        trace.events(),
        ["Starting g1", "g1 received 1", "Starting g2", "Yielded g2 spam", "g2 received 2",]
    );
    assert_eq!(g.state(), GeneratorState::Completed);
}

/// g1 and g2 of the `close` and `throw` tests, each in `try: ... finally:`;
/// g2 stops at the first error thrown in.
fn close_pair(trace: &Trace) -> Generator<(), &'static str, Result<(), ValueError>, ValueError> {
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::new(move |co, ()| {
                let _finally = trace.finally("Finishing g2");
                trace.push("Starting g2");
                co.try_yield("g2 spam")?;
                co.try_yield("g2 more spam")?;
                Ok(())
            })
        }
    };
    let trace = trace.clone();
    Generator::new(move |co, ()| {
        let _finally = trace.finally("Finishing g1");
        trace.push("Starting g1");
        co.try_yield("g1 ham")?;
        co.yield_from(g2())?;
        co.try_yield("g1 eggs")?;
        Ok(())
    })
}

/// Python's `for i in range(2): x = next(g); trace.append("Yielded %s" % x)`.
fn next_twice<R, E>(g: &mut Generator<(), &'static str, R, E>, trace: &Trace) {
    for _ in 0..2 {
        let x = g.next().expect("the generator finished early");
        trace.push(format!("Yielded {x}"));
    }
}

// From CPython Lib/test/test_yield_from.py, test_delegating_close (and TestInterestingEdgeCases.test_close_and_throw_work).
#[test]
fn delegating_close() {
    let trace = Trace::default();
    let mut g = close_pair(&trace);
    next_twice(&mut g, &trace);
    assert_eq!(g.close(), Ok(None));
    assert_eq!(
        trace.events(),
        ["Starting g1", "Yielded g1 ham", "Starting g2", "Yielded g2 spam", "Finishing g2", "Finishing g1",]
    );
    assert_eq!(g.state(), GeneratorState::Completed);
    assert_eq!(g.next(), None);
    assert_eq!(g.return_value(), None);
}

// From CPython Lib/test/test_yield_from.py, test_handing_exception_while_delegating_close.
#[test]
fn handling_exception_while_delegating_close() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::<(), &'static str>::new(move |co, ()| {
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                    trace.push("Starting g2");
                    co.yield_("g2 spam");
                    co.yield_("g2 more spam");
                }));
                trace.push("Finishing g2");
                if let Err(payload) = outcome {
                    // Raised while handling the GeneratorExit of the close.
                    assert!(payload.is::<GeneratorExit>());
                    panic!("nybbles have exploded with delight");
                }
            })
        }
    };
    let mut g: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("Finishing g1");
            trace.push("Starting g1");
            co.yield_("g1 ham");
            co.yield_from(g2());
            co.yield_("g1 eggs");
        }
    });
    next_twice(&mut g, &trace);
    assert_eq!(panic_message(|| g.close()), "nybbles have exploded with delight");
    assert_eq!(
        trace.events(),
        ["Starting g1", "Yielded g1 ham", "Starting g2", "Yielded g2 spam", "Finishing g2", "Finishing g1",]
    );
    assert_eq!(g.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_yield_from.py, test_delegating_throw (and TestInterestingEdgeCases.test_close_and_throw_work).
#[test]
fn delegating_throw() {
    let trace = Trace::default();
    let mut g = close_pair(&trace);
    next_twice(&mut g, &trace);
    // Neither g2 nor g1 handles it, so it comes back out of g1.
    assert_eq!(
        g.throw(ValueError("tomato ejected")),
        Ok(CoroutineResult::Return(Err(ValueError("tomato ejected"))))
    );
    assert_eq!(
        trace.events(),
        ["Starting g1", "Yielded g1 ham", "Starting g2", "Yielded g2 spam", "Finishing g2", "Finishing g1",]
    );
    assert_eq!(g.state(), GeneratorState::Completed);
    assert_eq!(g.next(), None);
}

// From CPython Lib/test/test_yield_from.py, test_returning_value_from_delegated_throw.
#[test]
fn returning_value_from_delegated_throw() {
    #[derive(Debug, PartialEq)]
    struct LunchError(&'static str);

    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move || {
            Generator::new(move |co, ()| {
                trace.push("Starting g2");
                let spam = || -> Result<(), LunchError> {
                    co.try_yield("g2 spam")?;
                    co.try_yield("g2 more spam")?;
                    Ok(())
                };
                if let Err(LunchError(_)) = spam() {
                    trace.push("Caught LunchError in g2");
                    co.try_yield("g2 lunch saved")?;
                    co.try_yield("g2 yet more spam")?;
                }
                Ok(())
            })
        }
    };
    let mut g = Generator::fallible({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("Finishing g1");
            trace.push("Starting g1");
            co.try_yield("g1 ham")?;
            co.yield_from(g2())?;
            co.try_yield("g1 eggs")?;
            Ok(())
        }
    });
    next_twice(&mut g, &trace);
    assert_eq!(g.throw(LunchError("tomato ejected")), Ok(CoroutineResult::Yield("g2 lunch saved")));
    drain(&mut g, &trace);
    assert_eq!(g.return_value(), Some(Ok(())));
    assert_eq!(
        trace.events(),
        [
            "Starting g1",
            "Yielded g1 ham",
            "Starting g2",
            "Yielded g2 spam",
            "Caught LunchError in g2",
            "Yielded g2 yet more spam",
            "Yielded g1 eggs",
            "Finishing g1",
        ]
    );
}

// From CPython Lib/test/test_yield_from.py, test_catching_exception_from_subgen_and_returning.
#[test]
fn catching_exception_from_subgen_and_returning() {
    for value in [2, 20, -2] {
        let trace = Trace::default();
        let inner = {
            let trace = trace.clone();
            move || {
                Generator::new(move |co, ()| {
                    if co.try_yield(1).is_err() {
                        trace.push("inner caught ValueError");
                    }
                    value
                })
            }
        };
        let mut g = Generator::fallible({
            let trace = trace.clone();
            move |co, ()| {
                let v = co.yield_from(inner());
                trace.push(format!("inner returned {v} to outer"));
                co.try_yield(v)?;
                Ok(())
            }
        });
        trace.push(g.next().unwrap().to_string());
        match g.throw(ValueError("")) {
            Ok(CoroutineResult::Yield(v)) => trace.push(v.to_string()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            trace.events(),
            [
                "1".to_owned(),
                "inner caught ValueError".to_owned(),
                format!("inner returned {value} to outer"),
                value.to_string(),
            ]
        );
    }
}

// From CPython Lib/test/test_yield_from.py, test_generator_return_value.
#[test]
fn generator_return_value() {
    let trace = Trace::default();
    let g2 = {
        let trace = trace.clone();
        move |v: Option<i32>| {
            let trace = trace.clone();
            Generator::<(), &'static str, Option<i32>>::new(move |co, ()| {
                trace.push("Starting g2");
                co.yield_("g2 spam");
                co.yield_("g2 more spam");
                trace.push("Finishing g2");
                v
            })
        }
    };
    let mut g1: Generator<(), &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            trace.push("Starting g1");
            co.yield_("g1 ham");
            for v in [None, Some(1), Some(2)] {
                let ret = co.yield_from(g2(v));
                trace.push(format!("g2 returned {ret:?}"));
            }
            co.yield_("g1 eggs");
            trace.push("Finishing g1");
        }
    });
    drain(&mut g1, &trace);
    let mut expected = vec!["Starting g1".to_owned(), "Yielded g1 ham".to_owned()];
    for ret in ["None", "Some(1)", "Some(2)"] {
        expected.extend(
            ["Starting g2", "Yielded g2 spam", "Yielded g2 more spam", "Finishing g2"].map(String::from),
        );
        expected.push(format!("g2 returned {ret}"));
    }
    expected.extend(["Yielded g1 eggs", "Finishing g1"].map(String::from));
    assert_eq!(trace.events(), expected);
}

/// g of the `test_throwing_GeneratorExit_into_subgen*` tests: delegates to
/// `f` in `try: ... finally:`.
fn delegator(trace: &Trace, f: Generator<(), (), i32>) -> Generator<(), ()> {
    let trace = trace.clone();
    Generator::new(move |co, ()| {
        let _finally = trace.finally("g finally");
        trace.push("Enter g");
        let r = co.yield_from(f);
        trace.push(format!("Exit g ({r})"));
    })
}

/// f of those tests: `handle` is what it does on catching GeneratorExit.
fn catching_subgen(trace: &Trace, handle: fn(&Co<(), ()>) -> i32) -> Generator<(), (), i32> {
    let trace = trace.clone();
    Generator::new(move |co, ()| {
        let _finally = trace.finally("f finally");
        trace.push("Enter f");
        match panic::catch_unwind(AssertUnwindSafe(|| co.yield_(()))) {
            Ok(()) => {
                trace.push("Exit f");
                0
            }
            Err(payload) if payload.is::<GeneratorExit>() => {
                trace.push("f caught GeneratorExit");
                handle(co)
            }
            Err(payload) => panic::resume_unwind(payload),
        }
    })
}

// From CPython Lib/test/test_yield_from.py, test_throwing_GeneratorExit_into_subgen_that_returns.
#[test]
fn closing_a_delegator_whose_subgen_catches_exit_and_returns() {
    let trace = Trace::default();
    let f = catching_subgen(&trace, |_| 7);
    let mut g = delegator(&trace, f);
    assert_eq!(g.next(), Some(()));
    // f's return value is dropped: g is closed anyway, from its yield from.
    assert_eq!(g.close(), Ok(None));
    assert_eq!(trace.events(), ["Enter g", "Enter f", "f caught GeneratorExit", "f finally", "g finally",]);
    assert_eq!(g.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_yield_from.py, test_throwing_GeneratorExit_into_subgenerator_that_yields.
#[test]
fn closing_a_delegator_whose_subgen_catches_exit_and_yields() {
    let trace = Trace::default();
    let f = catching_subgen(&trace, |co| {
        co.yield_(());
        1
    });
    let mut g = delegator(&trace, f);
    assert_eq!(g.next(), Some(()));
    // RuntimeError: generator ignored GeneratorExit. It came from f's close,
    // so it was raised in g, and g finished with it.
    assert!(g.close().is_err());
    assert_eq!(g.state(), GeneratorState::Completed);
    // f is closed again (as dropping it does) before g unwinds.
    assert_eq!(trace.events(), ["Enter g", "Enter f", "f caught GeneratorExit", "f finally", "g finally",]);
    assert_eq!(g.close(), Ok(None));
}

// From CPython Lib/test/test_yield_from.py, test_throwing_GeneratorExit_into_subgen_that_raises.
#[test]
fn closing_a_delegator_whose_subgen_catches_exit_and_raises() {
    let trace = Trace::default();
    let f = catching_subgen(&trace, |_| panic!("Vorpal bunny encountered"));
    let mut g = delegator(&trace, f);
    assert_eq!(g.next(), Some(()));
    assert_eq!(panic_message(|| g.close()), "Vorpal bunny encountered");
    assert_eq!(trace.events(), ["Enter g", "Enter f", "f caught GeneratorExit", "f finally", "g finally",]);
    assert_eq!(g.state(), GeneratorState::Completed);
}

// From CPython Lib/test/test_yield_from.py, test_yield_from_empty.
#[test]
fn yield_from_a_subgen_that_yields_nothing() {
    let mut g: Generator<(), i32, i32> = Generator::new(|co, ()| {
        let empty = Generator::<(), i32, i32>::new(|_, ()| 5);
        co.yield_from(empty)
    });
    assert_eq!(g.next(), None);
    assert_eq!(g.return_value(), Some(5));
}

// From CPython Lib/test/test_yield_from.py, test_attempted_yield_from_loop.
#[test]
fn attempted_yield_from_loop() {
    type Slot = Rc<RefCell<Option<Generator<(), &'static str>>>>;
    let trace = Trace::default();
    let gi: Slot = Rc::default();
    let g2 = {
        let (trace, gi) = (trace.clone(), gi.clone());
        move || {
            Generator::<(), &'static str>::new(move |co, ()| {
                trace.push("g2: starting");
                co.yield_("y2");
                trace.push("g2: about to yield from g1");
                // g1 is running (it is the one delegating to us), so whoever
                // resumed it holds it: it cannot be taken.
                let g1 = match gi.try_borrow_mut() {
                    Ok(mut slot) => slot.take(),
                    Err(_) => panic!("generator already executing"),
                };
                co.yield_from(g1.expect("g1 is not in its slot"));
                trace.push("g2 should not be here");
            })
        }
    };
    let g1 = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            trace.push("g1: starting");
            co.yield_("y1");
            trace.push("g1: about to yield from g2");
            co.yield_from(g2());
            trace.push("g1 should not be here");
        }
    });
    *gi.borrow_mut() = Some(g1);
    let message = panic_message(|| {
        while let Some(y) = gi.borrow_mut().as_mut().unwrap().next() {
            trace.push(format!("Yielded: {y}"));
        }
    });
    assert_eq!(message, "generator already executing");
    assert_eq!(
        trace.events(),
        [
            "g1: starting",
            "Yielded: y1",
            "g1: about to yield from g2",
            "g2: starting",
            "Yielded: y2",
            "g2: about to yield from g1",
        ]
    );
    let g1 = gi.borrow_mut().take().unwrap();
    assert_eq!(g1.state(), GeneratorState::Completed);
}

/// A delegation chain outer → middle → inner for the three-deep tests.
///
/// inner yields "inner <received>" until it is sent 0, then returns the sum
/// of what it was sent; middle returns that times 10, outer that plus 1.
/// Each level records its `finally`. Errors thrown in reach inner, which
/// handles `ValueError("handled")` by yielding, and lets others propagate
/// through `?`; outer catches whatever reaches it and yields once more.
fn chain(trace: &Trace) -> Generator<i32, String, Result<i32, ValueError>, ValueError> {
    let inner = {
        let trace = trace.clone();
        move || {
            Generator::new(move |co, first: i32| {
                let _finally = trace.finally("inner finally");
                trace.push(format!("inner started with {first}"));
                let mut sum = 0;
                let mut yielded = "inner ready".to_owned();
                loop {
                    match co.try_yield(yielded) {
                        Ok(0) => break,
                        Ok(x) => {
                            sum += x;
                            yielded = format!("inner {x}");
                        }
                        Err(ValueError("handled")) => {
                            trace.push("inner handled the error");
                            yielded = "inner recovered".to_owned();
                        }
                        Err(e) => return Err(e),
                    }
                }
                trace.push(format!("inner returns {sum}"));
                Ok(sum)
            })
        }
    };
    let middle = {
        let trace = trace.clone();
        move || {
            Generator::new(move |co, _| {
                let _finally = trace.finally("middle finally");
                let r = co.yield_from(inner())?;
                trace.push(format!("middle got {r}"));
                Ok(r * 10)
            })
        }
    };
    let trace = trace.clone();
    Generator::new(move |co, _| {
        let _finally = trace.finally("outer finally");
        match co.yield_from(middle()) {
            Ok(r) => {
                trace.push(format!("outer got {r}"));
                Ok(r + 1)
            }
            Err(ValueError(e)) => {
                trace.push(format!("outer caught {e}"));
                co.try_yield(format!("outer recovered from {e}"))?;
                Ok(-1)
            }
        }
    })
}

// From PEP 380 (Lib/test/test_yield_from.py, test_delegation_of_send), through a chain three deep.
#[test]
fn three_deep_chain_delegates_sends_and_returns_values() {
    let trace = Trace::default();
    let mut g = chain(&trace);
    assert_eq!(g.resume(0), Ok(CoroutineResult::Yield("inner ready".to_owned())));
    assert_eq!(g.resume(3), Ok(CoroutineResult::Yield("inner 3".to_owned())));
    assert_eq!(g.resume(4), Ok(CoroutineResult::Yield("inner 4".to_owned())));
    assert_eq!(g.resume(0), Ok(CoroutineResult::Return(Ok(71))));
    assert_eq!(
        trace.events(),
        [
            // The sub-generators start with I::default(), Python's None.
            "inner started with 0",
            "inner returns 7",
            "inner finally",
            "middle got 7",
            "middle finally",
            "outer got 70",
            "outer finally",
        ]
    );
}

// From PEP 380 (Lib/test/test_yield_from.py, test_returning_value_from_delegated_throw), through a chain three deep.
#[test]
fn three_deep_throw_handled_by_the_innermost() {
    let trace = Trace::default();
    let mut g = chain(&trace);
    g.resume(0).unwrap();
    assert_eq!(g.resume(5), Ok(CoroutineResult::Yield("inner 5".to_owned())));
    assert_eq!(g.throw(ValueError("handled")), Ok(CoroutineResult::Yield("inner recovered".to_owned())));
    // The chain carries on as if nothing happened further out.
    assert_eq!(g.resume(1), Ok(CoroutineResult::Yield("inner 1".to_owned())));
    assert_eq!(g.resume(0), Ok(CoroutineResult::Return(Ok(61))));
    assert_eq!(
        trace.events(),
        [
            "inner started with 0",
            "inner handled the error",
            "inner returns 6",
            "inner finally",
            "middle got 6",
            "middle finally",
            "outer got 60",
            "outer finally",
        ]
    );
}

// From PEP 380 (Lib/test/test_yield_from.py, test_delegating_throw), through a chain three deep.
#[test]
fn three_deep_throw_unhandled_propagates_outward() {
    let trace = Trace::default();
    let mut g = chain(&trace);
    g.resume(0).unwrap();
    // Neither inner nor middle handles it: both finish, innermost first, and
    // it reaches outer's `yield from`, which catches it.
    assert_eq!(
        g.throw(ValueError("fatal")),
        Ok(CoroutineResult::Yield("outer recovered from fatal".to_owned()))
    );
    assert_eq!(
        trace.events(),
        ["inner started with 0", "inner finally", "middle finally", "outer caught fatal",]
    );
    // outer is no longer delegating: this one is for outer itself, unhandled.
    assert_eq!(g.throw(ValueError("again")), Ok(CoroutineResult::Return(Err(ValueError("again")))));
    assert_eq!(trace.events().last().unwrap(), "outer finally");
    assert_eq!(g.state(), GeneratorState::Completed);
}

// From PEP 380 (§Finalization; Lib/test/test_yield_from.py, test_delegating_close), through a chain three deep.
#[test]
fn three_deep_close_finalises_innermost_first() {
    let trace = Trace::default();
    let mut g = chain(&trace);
    g.resume(0).unwrap();
    g.resume(2).unwrap();
    assert_eq!(g.close(), Ok(None));
    assert_eq!(trace.events(), ["inner started with 0", "inner finally", "middle finally", "outer finally",]);
    assert_eq!(g.state(), GeneratorState::Completed);

    // Dropping a suspended chain closes it the same way.
    let trace = Trace::default();
    let mut g = chain(&trace);
    g.resume(0).unwrap();
    drop(g);
    assert_eq!(trace.events(), ["inner started with 0", "inner finally", "middle finally", "outer finally",]);
}

// From PEP 380 (Lib/test/test_yield_from.py, test_delegation_of_initial_next_to_subgenerator): the first input of yield_from_with.
#[test]
fn yield_from_starts_the_subgen_with_default_or_given_input() {
    let trace = Trace::default();
    let sub = {
        let trace = trace.clone();
        move || {
            let trace = trace.clone();
            Generator::<Option<i32>, i32, Option<i32>>::new(move |co, first| {
                trace.push(format!("sub started with {}", show(first)));
                let x = co.yield_(1);
                trace.push(format!("sub received {}", show(x)));
                x
            })
        }
    };
    let mut g: Generator<Option<i32>, i32, (Option<i32>, Option<i32>)> = Generator::new(move |co, _| {
        let a = co.yield_from(sub());
        let b = co.yield_from_with(sub(), Some(7));
        (a, b)
    });
    assert_eq!(g.resume(None), Ok(CoroutineResult::Yield(1)));
    assert_eq!(g.resume(Some(10)), Ok(CoroutineResult::Yield(1)));
    assert_eq!(g.resume(Some(20)), Ok(CoroutineResult::Return((Some(10), Some(20)))));
    assert_eq!(
        trace.events(),
        ["sub started with None", "sub received 10", "sub started with 7", "sub received 20",]
    );
}

// From PEP 380 semantics (delegating to an already-finished generator); greenery hands back the return value iteration stashed.
#[test]
fn yield_from_a_generator_exhausted_by_iteration_returns_its_stashed_value() {
    let trace = Trace::default();
    let mut sub: Generator<(), i32, &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            trace.push("sub started");
            co.yield_(1);
            co.yield_(2);
            "done"
        }
    });
    assert_eq!(sub.by_ref().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(sub.state(), GeneratorState::Completed);

    let mut g: Generator<(), i32, &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let r = co.yield_from(sub);
            trace.push(format!("yield from returned {r}"));
            co.yield_(3);
            r
        }
    });
    // Nothing more comes from sub: its body does not run again.
    assert_eq!(g.by_ref().collect::<Vec<_>>(), [3]);
    assert_eq!(g.return_value(), Some("done"));
    assert_eq!(trace.events(), ["sub started", "yield from returned done"]);
}

// From PEP 380 semantics (delegating to an already-finished generator); greenery panics once the return value was taken.
#[test]
fn yield_from_a_finished_generator_whose_value_was_taken_panics() {
    let trace = Trace::default();
    let mut sub: Generator<(), i32, &'static str> = Builder::new()
        .name("spent")
        .generator(|co, ()| {
            co.yield_(1);
            "done"
        })
        .unwrap();
    assert_eq!(sub.resume(()), Ok(CoroutineResult::Yield(1)));
    assert_eq!(sub.resume(()), Ok(CoroutineResult::Return("done")));

    let mut g: Generator<(), i32, &'static str> = Generator::new({
        let trace = trace.clone();
        move |co, ()| {
            let _finally = trace.finally("g finally");
            let r = co.yield_from(sub);
            trace.push("g should not be here");
            r
        }
    });
    let message = panic_message(|| g.next());
    assert!(message.contains("'spent' has completed and its return value was taken"), "{message}");
    assert_eq!(trace.events(), ["g finally"]);
    assert_eq!(g.state(), GeneratorState::Completed);
}
