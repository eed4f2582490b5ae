//! Generators written the way a port from Python writes them, with no type
//! annotations on the closures: each test compiling is half of what it
//! checks (the generator module's "Type inference" section says which forms
//! infer and why). The other half is the transcript CPython 3.11 prints for
//! the Python program above each test.
//!
//! The one form that does not infer, `Generator::new` with a body that ends
//! in `Ok(..)` and an error named only by a `throw`, is the `compile_fail`
//! example of that section.

use std::io;

use greenery::{Builder, Co, CoroutineResult, Generator, GeneratorState};

#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueError(&'static str);

// Python:
//     def g():
//         yield 1
//         yield 2
//     it = g()
//     next(it)                        # 1
//     it.throw(ValueError("boom"))    # raises ValueError: boom
//     getgeneratorstate(it)           # 'GEN_CLOSED'
//
// `fallible`: the error type comes from the `throw` alone.
#[test]
fn fallible_infers_the_error_from_a_throw() {
    let mut it = Generator::fallible(|co, ()| {
        co.try_yield(1)?;
        co.try_yield(2)?;
        Ok(())
    });
    assert_eq!(it.next(), Some(1));
    assert!(it.throw(ValueError("boom")).is_ok()); // the body returned Err(ValueError("boom"))
    assert_eq!(it.state(), GeneratorState::Completed);
}

// Python:
//     def g():
//         x = yield "ready"
//         if x < 0:
//             raise ValueError("negative")
//         yield x * 2
//     it = g(); next(it)   # 'ready'
//     it.send(-1)          # raises ValueError: negative
//
// `fallible`: the error type comes from the body's own `Err`.
#[test]
fn fallible_infers_the_error_from_the_body() {
    let mut it = Generator::fallible(|co, first: i32| {
        let x = co.try_yield(first)?;
        if x < 0 {
            return Err(ValueError("negative"));
        }
        co.try_yield(x * 2)?;
        Ok(())
    });
    assert_eq!(it.resume(0), Ok(CoroutineResult::Yield(0)));
    assert_eq!(it.resume(-1), Ok(CoroutineResult::Return(Err(ValueError("negative")))));
}

// Python:
//     def g():
//         try:
//             yield "waiting"
//         except ValueError as e:
//             yield "caught %s" % e
//     it = g(); next(it)             # 'waiting'
//     it.throw(ValueError("x"))      # 'caught x'
//
// `new`: a pattern on `try_yield`'s error names its type.
#[test]
fn new_infers_the_error_from_a_pattern() {
    let mut it = Generator::new(|co, ()| {
        if let Err(ValueError(e)) = co.try_yield("waiting".to_string()) {
            let _ = co.try_yield(format!("caught {e}"));
        }
    });
    assert_eq!(it.next().as_deref(), Some("waiting"));
    assert_eq!(it.throw(ValueError("x")), Ok(CoroutineResult::Yield("caught x".to_string())));
}

// Python:
//     def lines(f):
//         for line in f:
//             yield line.rstrip()
//
// `new`: the closure's return type names the body's error type, and `?` on
// `try_yield` then infers the thrown error as the same type, the only `From`
// that fits. (A helper returning `io::Result` does not name it: `?` on its
// result only says the body's error type converts from `io::Error`.)
#[test]
fn new_infers_the_thrown_error_from_the_closures_return_type() {
    fn read(line: &str) -> io::Result<String> {
        Ok(line.trim_end().to_string())
    }
    let mut it = Generator::new(|co, ()| -> io::Result<()> {
        for line in ["one \n", "two\n"] {
            co.try_yield(read(line)?)?;
        }
        Ok(())
    });
    assert_eq!(it.next().as_deref(), Some("one"));
    let stop = io::Error::other("stop");
    let Ok(CoroutineResult::Return(Err(err))) = it.throw(stop) else { panic!("not returned") };
    assert_eq!(err.to_string(), "stop");
}

// Python:
//     def inner():
//         yield "inner"
//         return 1
//     def outer():
//         r = yield from inner()
//         yield "outer got %d" % r
//     it = outer()
//     next(it)                    # 'inner'
//     it.throw(ValueError("x"))   # raises ValueError: x (through inner, then outer)
//
// Nested `fallible` generators: the error flows from the outer `throw` into
// both bodies.
#[test]
fn fallible_generators_nest_without_annotations() {
    let inner = || {
        Generator::fallible(|co, ()| {
            co.try_yield("inner".to_string())?;
            Ok(1)
        })
    };
    let mut it = Generator::fallible(move |co, ()| {
        let r = co.yield_from(inner())?;
        co.try_yield(format!("outer got {r}"))?;
        Ok(())
    });
    assert_eq!(it.next().as_deref(), Some("inner"));
    assert_eq!(it.throw(ValueError("x")), Ok(CoroutineResult::Return(Err(ValueError("x")))));
}

// A plain helper that yields takes `&Co<I, Y, E>`: its signature names the
// types, and the closure that calls it needs none.
#[test]
fn a_helper_taking_the_handle_names_the_types() {
    fn countdown(n: u32, co: &Co<(), u32, ValueError>) -> Result<(), ValueError> {
        for i in (1..=n).rev() {
            co.try_yield(i)?;
        }
        Ok(())
    }
    let mut it = Generator::new(|co, ()| countdown(3, co));
    assert_eq!(it.by_ref().collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(it.return_value(), Some(Ok(())));
}

// The builder has the same two constructors.
#[test]
fn the_builder_makes_fallible_generators_too() {
    let mut it = Builder::new()
        .name("checked")
        .fallible_generator(|co, ()| {
            co.try_yield(1)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(it.name(), "checked");
    assert_eq!(it.next(), Some(1));
    assert_eq!(it.throw(ValueError("late")), Ok(CoroutineResult::Return(Err(ValueError("late")))));
}
