//! `yield from` beyond a generator moved in: of any iterable
//! ([`Co::yield_from_iter`], [`Co::try_yield_from_iter`]), and of a
//! generator borrowed (`co.yield_from(&mut sub)`), so that it can be looked
//! at afterwards.
//!
//! Each test has the Python program and the transcript CPython 3.11 prints
//! for it; the Rust version checks the same values in the same order. Where
//! greenery differs on purpose, the test says so and checks what it does.

use std::cell::RefCell;
use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::{CoroutineResult, Generator, GeneratorState};

/// Events recorded by a test and its generators.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// A guard that records `event` when dropped: Python's `finally`.
    fn finally(&self, event: &'static str) -> Finally {
        Finally(self.clone(), event)
    }
}

struct Finally(Log, &'static str);

impl Drop for Finally {
    fn drop(&mut self) {
        self.0.push(self.1);
    }
}

/// Python's `ValueError("...")`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueError(&'static str);

// ------------------------------------------------------------ iterables

// Python:
//     def g():
//         yield from [10, 20]
//         yield from range(3)
//         yield from "ab"
//     list(g())   # [10, 20, 0, 1, 2, 'a', 'b']
#[test]
fn yield_from_a_list_a_range_and_a_string() {
    let g = Generator::new(|co, ()| {
        co.yield_from_iter([10, 20].map(|n: i32| n.to_string()));
        co.yield_from_iter((0..3).map(|n| n.to_string()));
        co.yield_from_iter("ab".chars().map(String::from));
    });
    assert_eq!(g.collect::<Vec<_>>(), ["10", "20", "0", "1", "2", "a", "b"]);
}

// Python:
//     def g():
//         r = yield from [1]
//         yield r
//     list(g())   # [1, None]
#[test]
fn yield_from_an_iterable_returns_nothing() {
    let g = Generator::new(|co, ()| {
        let () = co.yield_from_iter([Some(1)]); // nothing to return: Python's None
        co.yield_(None);
    });
    assert_eq!(g.collect::<Vec<_>>(), [Some(1), None]);
}

// Any `IntoIterator`: a `Vec` by value, an iterator adapter, a slice's
// copied items, an `Option`.
#[test]
fn yield_from_any_into_iterator() {
    let words = vec!["stackful", "generators"];
    let g = Generator::new(move |co, ()| {
        co.yield_from_iter(words);
        co.yield_from_iter(["a", "b", "c"].iter().copied().filter(|w| *w != "b"));
        co.yield_from_iter(Some("last"));
        co.yield_from_iter(None);
    });
    assert_eq!(g.collect::<Vec<_>>(), ["stackful", "generators", "a", "c", "last"]);
}

// Python:
//     def g():
//         try:
//             yield from [1, 2, 3]
//         except ValueError as e:
//             yield "caught %s" % e
//         yield "after"
//     it = g()
//     next(it)                        # 1
//     it.throw(ValueError("boom"))    # 'caught boom'
//     list(it)                        # ['after']
//
// A list iterator has no `throw`: the error is raised at the `yield from`
// itself, and the rest of the list is dropped.
#[test]
fn a_throw_while_yielding_from_an_iterable_is_raised_at_the_yield_from() {
    let mut g = Generator::fallible(|co, ()| {
        if let Err(ValueError(e)) = co.try_yield_from_iter(["1", "2", "3"].map(String::from)) {
            co.try_yield(format!("caught {e}"))?;
        }
        co.try_yield("after".to_string())?;
        Ok(())
    });
    assert_eq!(g.next().as_deref(), Some("1"));
    assert_eq!(g.throw(ValueError("boom")), Ok(CoroutineResult::Yield("caught boom".to_string())));
    assert_eq!(g.by_ref().collect::<Vec<_>>(), ["after"]);
    assert_eq!(g.return_value(), Some(Ok(())));
}

// Python:
//     def g():
//         yield from [1, 2, 3]
//     it = g()
//     next(it)                        # 1
//     it.throw(ValueError("boom"))    # raises ValueError: boom
//     getgeneratorstate(it)           # 'GEN_CLOSED'
#[test]
fn a_throw_not_handled_around_the_yield_from_ends_the_generator() {
    let mut g = Generator::fallible(|co, ()| co.try_yield_from_iter([1, 2, 3]));
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.throw(ValueError("boom")), Ok(CoroutineResult::Return(Err(ValueError("boom")))));
    assert_eq!(g.state(), GeneratorState::Completed);
}

// Python:
//     log = []
//     def g():
//         try:
//             yield from [1, 2]
//         finally:
//             log.append("finally")
//     it = g()
//     next(it)      # 1
//     it.close()    # None
//     log           # ['finally']
//     getgeneratorstate(it)   # 'GEN_CLOSED'
#[test]
fn closing_while_yielding_from_an_iterable_unwinds_from_the_yield_from() {
    let log = Log::default();
    let mut g = Generator::new({
        let log = log.clone();
        move |co, ()| {
            let _finally = log.finally("finally");
            co.yield_from_iter([1, 2]);
            log.push("not reached");
        }
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.close(), Ok(None));
    assert_eq!(log.events(), ["finally"]);
    assert_eq!(g.state(), GeneratorState::Completed);
}

// Python:
//     def g():
//         yield from [1, 2]
//     it = g(); next(it)   # 1
//     it.send(5)           # AttributeError: 'list_iterator' object has no attribute 'send'
//     it = g(); next(it)   # 1
//     it.send(None)        # 2
//
// Documented difference: a value sent while an iterator is delegated to is
// dropped (an iterator takes no input; Rust cannot tell `None` from other
// values of the generator's input type).
#[test]
fn a_value_sent_while_yielding_from_an_iterable_is_dropped() {
    let mut g = Generator::new(|co, first: Option<i32>| {
        assert_eq!(first, None);
        co.yield_from_iter([1, 2]);
        "done"
    });
    assert_eq!(g.resume(None), Ok(CoroutineResult::Yield(1)));
    assert_eq!(g.resume(Some(5)), Ok(CoroutineResult::Yield(2)));
    assert_eq!(g.resume(None), Ok(CoroutineResult::Return("done")));
}

// A generator given to `yield_from_iter` is only iterated: a throw stops at
// the delegating generator, and the delegate is closed when it is dropped.
// (Python's `yield from iter(sub)` through a plain wrapper, such as
// `yield from (x for x in sub)`, behaves the same for throws that the
// wrapper does not pass on.)
#[test]
fn a_generator_given_as_an_iterable_is_only_iterated() {
    let log = Log::default();
    let sub = {
        let log = log.clone();
        Generator::new(move |co, ()| {
            let _finally = log.finally("sub finally");
            co.yield_(1);
            co.yield_(2);
        })
    };
    let mut g = Generator::fallible(move |co, ()| {
        if let Err(ValueError(e)) = co.try_yield_from_iter(sub) {
            co.try_yield(e.len() as i32)?;
        }
        Ok(())
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.throw(ValueError("four")), Ok(CoroutineResult::Yield(4)));
    assert_eq!(log.events(), ["sub finally"], "dropped with the rest of the iteration");
    assert_eq!(g.next(), None);
}

// ------------------------------------------------------------ a borrowed sub-generator

/// Python's `def sub(): yield 1; yield 2; return "sub done"`.
fn sub() -> Generator<(), String, &'static str> {
    Generator::new(|co, ()| {
        co.yield_("1".to_string());
        co.yield_("2".to_string());
        "sub done"
    })
}

// Python:
//     s = sub()
//     def outer():
//         r = yield from s
//         yield "got %s" % r
//     list(outer())            # ['1', '2', 'got sub done']
//     getgeneratorstate(s)     # 'GEN_CLOSED'
#[test]
fn a_borrowed_sub_generator_can_be_looked_at_after_the_delegation() {
    let s = Rc::new(RefCell::new(sub()));
    let outer = Generator::new({
        let s = s.clone();
        move |co, ()| {
            let r = co.yield_from(&mut *s.borrow_mut());
            co.yield_(format!("got {r}"));
        }
    });
    assert_eq!(outer.collect::<Vec<_>>(), ["1", "2", "got sub done"]);
    assert_eq!(s.borrow().state(), GeneratorState::Completed);
}

// The same, with the sub-generator kept in the delegating body.
#[test]
fn a_sub_generator_kept_in_the_body_outlives_the_delegation() {
    let outer = Generator::new(|co, ()| {
        let mut s = sub();
        let r = co.yield_from(&mut s);
        co.yield_(format!("got {r}, sub {:?}", s.state()));
        co.yield_(format!("resumed again: {}", s.resume(()).is_err()));
    });
    assert_eq!(outer.collect::<Vec<_>>(), ["1", "2", "got sub done, sub Completed", "resumed again: true"]);
}

// Python:
//     s = sub()
//     next(s)                  # '1'
//     def outer():
//         r = yield from s
//         return r
//     o = outer()
//     next(o)                  # '2'
//     next(o)                  # StopIteration: sub done
//     getgeneratorstate(s)     # 'GEN_CLOSED'
#[test]
fn a_sub_generator_started_already_is_continued() {
    let mut s = sub();
    assert_eq!(s.next().as_deref(), Some("1"));
    let s = Rc::new(RefCell::new(s));
    let mut o = Generator::new({
        let s = s.clone();
        move |co, ()| co.yield_from(&mut *s.borrow_mut())
    });
    assert_eq!(o.next().as_deref(), Some("2"));
    assert_eq!(o.next(), None);
    assert_eq!(o.return_value(), Some("sub done"));
    assert_eq!(s.borrow().state(), GeneratorState::Completed);
}

// Python:
//     log = []
//     def sub2():
//         try:
//             yield 1
//             yield 2
//         finally:
//             log.append("sub finally")
//     s = sub2()
//     def outer():
//         try:
//             yield from s
//         finally:
//             log.append("outer finally")
//     o = outer()
//     next(o)       # 1
//     o.close()
//     log           # ['sub finally', 'outer finally']
//     getgeneratorstate(s), getgeneratorstate(o)   # ('GEN_CLOSED', 'GEN_CLOSED')
#[test]
fn closing_the_delegator_closes_a_borrowed_sub_generator_first() {
    let log = Log::default();
    let s = Rc::new(RefCell::new(Generator::new({
        let log = log.clone();
        move |co, ()| {
            let _finally = log.finally("sub finally");
            co.yield_(1);
            co.yield_(2);
        }
    })));
    let mut o = Generator::new({
        let (s, log) = (s.clone(), log.clone());
        move |co, ()| {
            let _finally = log.finally("outer finally");
            co.yield_from(&mut *s.borrow_mut());
        }
    });
    assert_eq!(o.next(), Some(1));
    assert_eq!(o.close(), Ok(None));
    assert_eq!(log.events(), ["sub finally", "outer finally"]);
    assert_eq!((s.borrow().state(), o.state()), (GeneratorState::Completed, GeneratorState::Completed));
}

// Python 3.13:
//     def sub3():
//         try:
//             yield 1
//         except GeneratorExit:
//             return "closing value"
//     s = sub3()
//     def outer():
//         yield from s
//     o = outer(); next(o)
//     o.close()                # None (the delegate's return value is dropped)
//     getgeneratorstate(s)     # 'GEN_CLOSED'
//
// greenery keeps what the borrowed delegate returned: its `return_value()`.
#[test]
fn a_borrowed_sub_generator_closed_early_keeps_what_it_returned() {
    let s = Rc::new(RefCell::new(Generator::new(|co, ()| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| co.yield_(1)));
        match caught {
            Ok(()) => "resumed",
            Err(payload) if payload.is::<greenery::GeneratorExit>() => "closing value",
            Err(payload) => panic::resume_unwind(payload),
        }
    })));
    let mut o = Generator::new({
        let s = s.clone();
        move |co, ()| co.yield_from(&mut *s.borrow_mut())
    });
    assert_eq!(o.next(), Some(1));
    assert_eq!(o.close(), Ok(None));
    let mut s = s.borrow_mut();
    assert_eq!(s.state(), GeneratorState::Completed);
    assert_eq!(s.return_value(), Some("closing value"));
}

// Python:
//     s = sub()
//     def outer():
//         try:
//             yield from s
//         except ValueError as e:
//             yield "outer caught %s" % e
//     o = outer()
//     next(o)                      # '1'
//     o.throw(ValueError("x"))     # 'outer caught x'
//     getgeneratorstate(s)         # 'GEN_CLOSED'
#[test]
fn a_throw_a_borrowed_sub_generator_does_not_handle_ends_it_and_reaches_the_delegator() {
    let s = Rc::new(RefCell::new(Generator::fallible(|co, ()| {
        co.try_yield("1".to_string())?;
        co.try_yield("2".to_string())?;
        Ok("sub done")
    })));
    let mut o = Generator::fallible({
        let s = s.clone();
        move |co, ()| {
            let delegated = co.yield_from(&mut *s.borrow_mut()); // the borrow ends here
            if let Err(ValueError(e)) = delegated {
                co.try_yield(format!("outer caught {e}"))?;
            }
            Ok(())
        }
    });
    assert_eq!(o.next().as_deref(), Some("1"));
    assert_eq!(o.throw(ValueError("x")), Ok(CoroutineResult::Yield("outer caught x".to_string())));
    assert_eq!(s.borrow().state(), GeneratorState::Completed);
}

// Python:
//     s = sub()
//     list(s)            # ['1', '2']
//     def outer():
//         r = yield from s
//         return r
//     next(outer())      # StopIteration: None
//
// Documented difference: greenery returns the value the iteration kept (the
// sub-generator's return value had not been taken), where Python's second
// `StopIteration` has none.
#[test]
fn yield_from_a_finished_sub_generator_returns_the_value_it_kept() {
    let mut s = sub();
    assert_eq!(s.by_ref().collect::<Vec<_>>(), ["1", "2"]);
    let mut o = Generator::new(move |co, ()| co.yield_from(&mut s));
    assert_eq!(o.resume(()), Ok(CoroutineResult::Return("sub done")));
}

// ... and panics once that value has been taken, since there is no value of
// every type to return.
#[test]
fn yield_from_a_finished_sub_generator_whose_value_was_taken_panics() {
    let mut s = sub();
    s.by_ref().for_each(drop);
    assert_eq!(s.return_value(), Some("sub done"));
    let mut o = Generator::<(), String, &str, Infallible>::new(move |co, ()| co.yield_from(&mut s));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| o.resume(()))).unwrap_err();
    let message = payload.downcast::<String>().map(|m| *m).unwrap_or_default();
    assert!(message.ends_with("has completed and its return value was taken"), "{message}");
}

// A moved-in sub-generator behaves as before: `yield_from` takes either.
#[test]
fn yield_from_takes_a_generator_by_value_or_by_reference() {
    let mut kept = sub();
    let outer = Generator::new(move |co, ()| {
        let a = co.yield_from(sub());
        let b = co.yield_from(&mut kept);
        co.yield_(format!("{a} / {b}"));
    });
    assert_eq!(outer.collect::<Vec<_>>(), ["1", "2", "1", "2", "sub done / sub done"]);
}
