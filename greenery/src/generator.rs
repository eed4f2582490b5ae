//! Python's generator protocol: [`Generator`], its handle [`Co`], and their
//! errors.
//!
//! A generator is a closure that produces values one at a time and takes a
//! value back each time. greenery's generators are *stackful*: any function the
//! body calls can yield too, given the `&Co` handle, which Python generators
//! cannot do.
//!
//! ```
//! use greenery::{CoroutineResult, Generator};
//!
//! // Python: def averager():
//! //             total, count, average = 0, 0, None
//! //             while True:
//! //                 total += yield average; count += 1; average = total / count
//! let mut averager = Generator::new(|co, mut value: f64| {
//!     let (mut total, mut count) = (0.0, 0.0);
//!     loop {
//!         total += value;
//!         count += 1.0;
//!         value = co.yield_(total / count);
//!     }
//! });
//! assert_eq!(averager.resume(10.0), Ok(CoroutineResult::Yield(10.0)));
//! assert_eq!(averager.resume(20.0), Ok(CoroutineResult::Yield(15.0)));
//! assert_eq!(averager.resume(0.0), Ok(CoroutineResult::Yield(10.0)));
//! ```
//!
//! # Python's protocol in Rust
//!
//! `Generator<I, Y, R, E>` takes inputs `I`, yields `Y`, returns `R`, and can
//! have errors `E` thrown into it. `E` defaults to [`Infallible`]: such a
//! generator cannot be thrown into, and its body yields with
//! [`Co::yield_`], which returns the input directly.
//!
//! | Python | greenery |
//! |---|---|
//! | `def gen(): ...` / `g = gen()` | [`Generator::new(\|co, first\| ...)`](Generator::new), or [`Builder::generator`](crate::Builder::generator) for a name and stack size |
//! | a generator that lets what is thrown in propagate (any Python generator) | [`Generator::fallible(\|co, first\| ...)`](Generator::fallible): the body returns `Result<T, E>` and `?` passes the thrown `E` on; see [type inference](#type-inference) |
//! | `x = yield v` | `let x = co.yield_(v);` |
//! | `try: x = yield v` / `except E as e:` | `match co.try_yield(v) { Ok(x) => .., Err(e) => .. }`, or `co.try_yield(v)?` to let `e` propagate |
//! | `next(g)` | `g.next()` ([`Iterator`], when `I = ()`), or `g.resume(())` |
//! | `g.send(x)` | [`g.resume(x)`](Generator::resume) → `Ok(Yield(v))` or `Ok(Return(r))` |
//! | `g.send(x)` on a just-started generator must have `x = None` | the first input is the body's second argument: nothing is lost and nothing must be `None` |
//! | `StopIteration.value` | `Ok(CoroutineResult::Return(r))`; while iterating, [`g.return_value()`](Generator::return_value) |
//! | `send`/`next` after the end raises `StopIteration` | `Err(ResumeError(x))`, which hands `x` back |
//! | `g.throw(e)`, handled and yields again | [`g.throw(e)`](Generator::throw) → `Ok(Yield(v))` |
//! | `g.throw(e)`, not handled | the body's `?` returns the error: `Ok(Return(Err(e)))` when `R = Result<_, E>` |
//! | `g.throw(e)` before the first `next` | the body never runs, the generator is completed, `Err(e)` |
//! | `g.throw(e)` after the end | `Err(e)`, the error straight back |
//! | `g.close()` | [`g.close()`](Generator::close): the pending yield unwinds with [`GeneratorExit`], running every destructor (Python's `finally`) → `Ok(None)` |
//! | `close()` when the body catches `GeneratorExit` and returns `r` (3.13) | `Ok(Some(r))` |
//! | `RuntimeError("generator ignored GeneratorExit")` | `Err(CloseError)`; the generator stays suspended, as in Python |
//! | `close()` twice, or on a finished or unstarted generator | `Ok(None)`, without running the body |
//! | a suspended generator is garbage-collected | dropping it closes it; errors during that close are reported on stderr, not propagated (Python's "exception ignored") |
//! | `inspect.getgeneratorstate` | [`g.state()`](Generator::state): `Created`, `Suspended`, `Completed` |
//! | `GEN_RUNNING`, `ValueError("generator already executing")` | cannot happen: `resume`, `throw` and `close` take `&mut self`, so while the body runs no one else can touch the generator (the compiler rejects what Python checks at run time) |
//! | `r = yield from sub` | [`let r = co.yield_from(sub);`](Co::yield_from): yields, sends, throws and close all pass through to `sub` (PEP 380) |
//! | `yield from sub`, then `sub` looked at (`gi_frame`, `getgeneratorstate(sub)`) | `co.yield_from(&mut sub)` borrows it: afterwards `sub.state()` is `Completed`, and a `sub` closed early keeps what it returned in [`sub.return_value()`](Generator::return_value) |
//! | `yield from sub` on a `sub` that has started | it continues from its pending yield, which receives `I::default()` (Python: `None`) |
//! | `yield from sub` on a `sub` that has finished: `None` | the return value it kept from iteration, if not taken yet; a panic otherwise (there is no value of every type to return) |
//! | `yield from [10, 20]`, `yield from range(3)`: any iterable | [`co.yield_from_iter([10, 20])`](Co::yield_from_iter), or [`co.try_yield_from_iter(items)?`](Co::try_yield_from_iter) when errors can be thrown in: a throw is raised at the `yield from` (an iterator has no `throw`), and close unwinds from it |
//! | `send(x)` while delegating to a list: `AttributeError` (only `None` is accepted) | the sent value is dropped: an iterator takes no input |
//! | an uncaught exception in the body | a panic: it propagates to the caller of `resume`, and the generator is completed |
//! | `StopIteration` raised inside a generator (PEP 479) | nothing to convert: Rust bodies return values, they do not raise them |
//! | `g.__name__` | [`g.name()`](Generator::name): the builder's name or the closure's type name |
//!
//! # Type inference
//!
//! A generator's types come from its body: `I` from its second argument,
//! `Y` from what it yields, `R` from what it returns, and `E` from the `Err`
//! of [`Co::try_yield`]: a pattern that matches it, or a later
//! [`throw`](Generator::throw). Two things need more:
//!
//! - `?` converts errors with `From`, so after `co.try_yield(v)?` the
//!   body's error type `X` and `E` are linked only by `X: From<E>`. That
//!   settles `E` when `X` is known (from the closure's return type, or an
//!   `Err(..)` the body returns), since the only `From` that fits then is
//!   `E = X`. It does not settle `X` from `E`: when the body ends in
//!   `Ok(..)` and only a `throw` names the error, many types could be `X`,
//!   and the compiler asks for annotations, pointing at the `Ok` or at the
//!   closure's handle ("type annotations needed for `&Co<(), i32, _>`"):
//!   hence the `|co: &Co<I, Y, E>, ..|` seen in ports, which settles `E`
//!   but still not `X`. [`Generator::fallible`] takes a body that returns
//!   `Result<T, E>`, the same `E` that is thrown in: `?` then converts `E`
//!   into itself, and either side infers the other. It is Python's
//!   behaviour too, where an exception thrown in and not handled comes out
//!   of the generator.
//! - A closure that is not written in the call (`let body = |co, x| ..;
//!   Generator::new(body)`) has no expected signature to take its
//!   arguments' types from: annotate them, `|co: &Co<I, Y, E>, x: I|`.
//!
//! `new` keeps its four free parameters, since a body may handle what is
//! thrown in, return something else, or convert the error into a wider
//! one; and a default `E = Infallible` would not help, as Rust does not
//! use default type parameters in inference. `fallible` is the extra
//! constructor for the case that did not infer.
//!
//! With `new`, this does not compile: nothing says what `Ok(())`'s error
//! type is.
//!
//! ```compile_fail,E0282
//! # use greenery::{Generator, GeneratorState};
//! # struct Stop;
//! let mut g = Generator::new(|co, ()| {
//!     co.try_yield("working")?;
//!     Ok(())
//! });
//! g.next();
//! assert!(g.throw(Stop).is_ok());
//! ```
//!
//! With `fallible`, it does:
//!
//! ```
//! # use greenery::{Generator, GeneratorState};
//! # struct Stop;
//! let mut g = Generator::fallible(|co, ()| {
//!     co.try_yield("working")?;
//!     Ok(())
//! });
//! g.next();
//! assert!(g.throw(Stop).is_ok()); // the body returned `Err(Stop)`
//! assert_eq!(g.state(), GeneratorState::Completed);
//! ```
//!
//! # Unwinding on close
//!
//! `close` and drop deliver [`GeneratorExit`] as a panic payload (raised with
//! [`std::panic::resume_unwind`], so the panic hook does not print it). Drop
//! guards in the body run exactly as Python's `finally` blocks do. Code in
//! the body that catches panics should let it through (see
//! [`is_forced_unwind`](crate::is_forced_unwind)); if it does not and yields
//! again, `close` reports [`CloseError`], and drop closes again until the
//! body finishes.

use std::borrow::{BorrowMut, Cow};
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::iter::FusedIterator;
use std::panic;

use crate::arch::Word;
use crate::coroutine::{CoroutineResult, forced_unwind};
use crate::raw::{self, Body, CTRL_RESUME, Marker, Outgoing, RawCoroutine, Step, Suspender, UnwindToken};
use crate::stack::StackError;
use crate::unwind;

/// Control word: the word carries an `I` for the pending yield.
const CTRL_SEND: usize = CTRL_RESUME;
/// Control word: the word carries an `E` to raise at the pending yield.
const CTRL_THROW: usize = 2;
/// Control word: unwind the body with [`GeneratorExit`].
const CTRL_CLOSE: usize = 3;

/// A stackful generator with Python's protocol: see the
/// [module documentation](self) for how each Python operation maps.
///
/// `I`: what [`resume`](Self::resume) sends in; `Y`: what the body yields;
/// `R`: what it returns; `E`: what can be [`throw`](Self::throw)n into it.
/// [`new`](Self::new) makes one; [`fallible`](Self::fallible) makes one
/// whose body returns `Result<T, E>`, passing on what is thrown in with `?`
/// (see [type inference](self#type-inference) for when to use which).
///
/// Like [`Coroutine`](crate::Coroutine), a generator is `!Send` and `!Sync`
/// and its types are `'static`; see the [coroutine module](crate::coroutine)
/// for why.
pub struct Generator<I = (), Y = (), R = (), E = Infallible> {
    raw: RawCoroutine,
    /// The return value, when iteration consumed the final step.
    returned: Option<R>,
    _marker: Marker<(I, E), Y>,
}

/// The handle a generator's body yields through.
///
/// The body receives `&Co`; pass it to any function the body calls and that
/// function can yield too. It cannot leave the body.
#[repr(transparent)]
pub struct Co<I, Y, E = Infallible> {
    suspender: Suspender,
    _marker: Marker<Y, Result<I, E>>,
}

/// The states of Python's `inspect.getgeneratorstate`, less `GEN_RUNNING`,
/// which the borrow checker makes unobservable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneratorState {
    /// Created, body not started (`GEN_CREATED`).
    Created,
    /// Suspended at a yield (`GEN_SUSPENDED`).
    Suspended,
    /// Returned, panicked, or closed (`GEN_CLOSED`).
    Completed,
}

/// The payload that unwinds a generator's body when it is closed (Python's
/// `GeneratorExit`).
///
/// Catch-all code in a generator should let it through; see
/// [`is_forced_unwind`](crate::is_forced_unwind).
pub struct GeneratorExit {
    /// Set when a delegate of `yield_from` ignored its own close.
    delegate_ignored: bool,
    _token: UnwindToken,
}

impl fmt::Debug for GeneratorExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratorExit")
    }
}

/// [`Generator::resume`] on a completed generator: Python's `StopIteration`.
/// It hands back the input that could not be delivered.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumeError<T>(pub T);

impl<T> ResumeError<T> {
    /// The input that was not delivered.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ResumeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeError(..)")
    }
}

impl<T> fmt::Display for ResumeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot resume a generator that has completed")
    }
}

impl<T> Error for ResumeError<T> {}

/// The body caught [`GeneratorExit`] and yielded again instead of finishing
/// (Python's `RuntimeError: generator ignored GeneratorExit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseError {
    _private: (),
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("generator ignored close: it caught GeneratorExit and yielded again")
    }
}

impl Error for CloseError {}

/// A generator's body, with the types it is run at.
struct GeneratorBody<F, I, Y, E> {
    body: F,
    _marker: Marker<(I, E), Y>,
}

impl<F, I, Y, R, E> Body for GeneratorBody<F, I, Y, E>
where
    F: FnOnce(&Co<I, Y, E>, I) -> R + 'static,
    I: 'static,
    Y: 'static,
    R: 'static,
    E: 'static,
{
    type Return = R;

    #[inline]
    fn run(self, first: Word, suspender: &Suspender) -> R {
        // SAFETY: `throw` and `close` never start a generator, so the first
        // switch is a send, carrying an `I`.
        let input = unsafe { raw::take::<I>(first) };
        (self.body)(Co::from_suspender(suspender), input)
    }
}

impl<I: 'static, Y: 'static, R: 'static, E: 'static> Generator<I, Y, R, E> {
    /// Creates a generator that will run `body` on its first resume.
    ///
    /// `body` receives the generator's handle and the first input.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (the message names the limit that was
    /// hit). [`Builder::generator`](crate::Builder::generator) returns the
    /// [`StackError`] instead.
    #[inline]
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Co<I, Y, E>, I) -> R + 'static,
    {
        match Self::build(body, None, None) {
            Ok(generator) => generator,
            Err(err) => panic!("{err}"),
        }
    }

    #[inline]
    pub(crate) fn build<F>(
        body: F,
        name: Option<Cow<'static, str>>,
        stack_size: Option<usize>,
    ) -> Result<Self, StackError>
    where
        F: FnOnce(&Co<I, Y, E>, I) -> R + 'static,
    {
        let name = name.unwrap_or(Cow::Borrowed(std::any::type_name::<F>()));
        let body = GeneratorBody { body, _marker: Marker::default() };
        Ok(Generator {
            raw: RawCoroutine::new(body, name, stack_size)?,
            returned: None,
            _marker: Marker::default(),
        })
    }
}

impl<I: 'static, Y: 'static, T: 'static, E: 'static> Generator<I, Y, Result<T, E>, E> {
    /// Creates a generator whose body returns `Result<T, E>`, `E` being the
    /// error that can be [`throw`](Self::throw)n in: an error the body does
    /// not handle comes out of it with `?`, as a Python exception does.
    ///
    /// This is [`new`](Self::new) with the body's error type tied to the
    /// thrown one, which lets the compiler infer it: see
    /// [type inference](self#type-inference) in the module documentation.
    ///
    /// ```
    /// use greenery::{CoroutineResult::Return, Generator};
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct ValueError(&'static str);
    ///
    /// // Python: def g(): yield 1; yield 2
    /// //         it = g(); next(it); it.throw(ValueError("boom"))  # raises ValueError
    /// let mut g = Generator::fallible(|co, ()| {
    ///     co.try_yield(1)?;
    ///     co.try_yield(2)?;
    ///     Ok(())
    /// });
    /// assert_eq!(g.next(), Some(1));
    /// assert_eq!(g.throw(ValueError("boom")), Ok(Return(Err(ValueError("boom")))));
    /// ```
    ///
    /// # Panics
    ///
    /// As for [`new`](Self::new).
    #[inline]
    #[track_caller]
    pub fn fallible<F>(body: F) -> Self
    where
        F: FnOnce(&Co<I, Y, E>, I) -> Result<T, E> + 'static,
    {
        Self::new(body)
    }
}

impl<I, Y, R, E> Generator<I, Y, R, E> {
    /// Runs the body until it yields or returns (Python's `send`).
    ///
    /// The first call starts the body with `input` as its second argument;
    /// later calls make the pending yield return `input`.
    ///
    /// # Errors
    ///
    /// [`ResumeError`] holding `input` if the generator has completed.
    ///
    /// # Panics
    ///
    /// If the body panics: the panic continues here, and the generator is
    /// completed.
    #[inline]
    pub fn resume(&mut self, input: I) -> Result<CoroutineResult<Y, R>, ResumeError<I>> {
        if self.raw.is_done() {
            return Err(ResumeError(input));
        }
        let input = Outgoing::new(input);
        // SAFETY: not done; CTRL_SEND carries an `I`.
        Ok(unsafe { self.step(input.word(), CTRL_SEND) })
    }

    /// Switches in and decodes what came back, continuing a panic.
    ///
    /// # Safety
    ///
    /// Not done, and `data` is what `ctrl` says.
    #[inline(always)]
    unsafe fn step(&mut self, data: Word, ctrl: usize) -> CoroutineResult<Y, R> {
        // SAFETY: guaranteed by the caller.
        match unsafe { self.step_catching(data, ctrl) } {
            Ok(step) => step,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Switches in and decodes what came back; a panic comes back as its
    /// payload.
    ///
    /// # Safety
    ///
    /// As for [`step`](Self::step).
    #[inline(always)]
    unsafe fn step_catching(
        &mut self,
        data: Word,
        ctrl: usize,
    ) -> Result<CoroutineResult<Y, R>, unwind::Payload> {
        // SAFETY: guaranteed by the caller.
        match unsafe { self.raw.switch_in(data, ctrl) } {
            // SAFETY: a yield carries a `Y`.
            Step::Yielded(word) => Ok(CoroutineResult::Yield(unsafe { raw::take::<Y>(word) })),
            Step::Finished(word) => {
                // SAFETY: the body returns an `R`.
                let result = unsafe { self.raw.take_result::<R>(word) };
                result.map(CoroutineResult::Return)
            }
        }
    }

    /// Raises `error` at the pending yield (Python's `throw`): the body's
    /// [`Co::try_yield`] returns `Err(error)`.
    ///
    /// Returns what the body did next: yielded again, or returned (with `?`,
    /// it returns the error itself).
    ///
    /// # Errors
    ///
    /// The error is handed straight back if the body cannot receive it: the
    /// generator has completed, or has not started (it is then completed
    /// without running its body, as in Python).
    ///
    /// # Panics
    ///
    /// If the body panics, as for [`resume`](Self::resume).
    pub fn throw(&mut self, error: E) -> Result<CoroutineResult<Y, R>, E> {
        if self.raw.is_done() {
            return Err(error);
        }
        if !self.raw.is_started() {
            self.raw.discard_unstarted();
            return Err(error);
        }
        let error = Outgoing::new(error);
        // SAFETY: started and not done; CTRL_THROW carries an `E`.
        Ok(unsafe { self.step(error.word(), CTRL_THROW) })
    }

    /// Finishes the generator: unwinds its body from the pending yield with
    /// [`GeneratorExit`], running every destructor on its stack.
    ///
    /// Returns `Ok(Some(r))` if the body caught the unwinding and returned
    /// `r`, and `Ok(None)` otherwise. A generator that has not started is
    /// completed without running its body. Closing again does nothing.
    ///
    /// # Errors
    ///
    /// [`CloseError`] if the body caught the unwinding and yielded again; the
    /// generator then stays suspended at that yield, as in Python.
    ///
    /// # Panics
    ///
    /// If the body panics with another payload while closing.
    pub fn close(&mut self) -> Result<Option<R>, CloseError> {
        if self.raw.is_done() {
            return Ok(None);
        }
        if !self.raw.is_started() {
            self.raw.discard_unstarted();
            return Ok(None);
        }
        // SAFETY: started and not done; CTRL_CLOSE carries nothing.
        match unsafe { self.step_catching(Word::uninit(), CTRL_CLOSE) } {
            Ok(CoroutineResult::Yield(_)) => Err(CloseError { _private: () }),
            Ok(CoroutineResult::Return(value)) => Ok(Some(value)),
            Err(payload) => match payload.downcast::<GeneratorExit>() {
                Ok(exit) if exit.delegate_ignored => Err(CloseError { _private: () }),
                Ok(_) => Ok(None),
                Err(payload) => panic::resume_unwind(payload),
            },
        }
    }

    /// Where the generator is in its life.
    pub fn state(&self) -> GeneratorState {
        if self.raw.is_done() {
            GeneratorState::Completed
        } else if self.raw.is_started() {
            GeneratorState::Suspended
        } else {
            GeneratorState::Created
        }
    }

    /// The generator's name: the one given to its
    /// [`Builder`](crate::Builder), or the type name of its body.
    pub fn name(&self) -> &str {
        self.raw.name()
    }

    /// The usable size of the generator's stack, or `None` once it has
    /// completed and given the stack back.
    pub fn stack_size(&self) -> Option<usize> {
        self.raw.stack_size()
    }

    /// Takes the return value that iteration reached (Python's
    /// `StopIteration.value`).
    ///
    /// [`Iterator::next`] has nowhere to put the body's return value, so it
    /// keeps it here. `resume` hands it over directly instead.
    pub fn return_value(&mut self) -> Option<R> {
        self.returned.take()
    }
}

impl<Y, R, E> Iterator for Generator<(), Y, R, E> {
    type Item = Y;

    /// Python's `next()`. The return value is kept for
    /// [`return_value`](Generator::return_value).
    #[inline]
    fn next(&mut self) -> Option<Y> {
        match self.resume(()) {
            Ok(CoroutineResult::Yield(value)) => Some(value),
            Ok(CoroutineResult::Return(value)) => {
                self.returned = Some(value);
                None
            }
            Err(_) => None,
        }
    }
}

impl<Y, R, E> FusedIterator for Generator<(), Y, R, E> {}

impl<I, Y, R, E> Drop for Generator<I, Y, R, E> {
    /// Closes a suspended generator; see [`close`](Generator::close).
    ///
    /// Errors are reported on stderr, not propagated: a body that yields
    /// again is closed again until it finishes, and a panic is reported.
    fn drop(&mut self) {
        if !self.raw.is_started() || self.raw.is_done() {
            return; // the raw coroutine drops an unstarted body itself
        }
        let mut reported = false;
        while !self.raw.is_done() {
            // SAFETY: started and not done; CTRL_CLOSE carries nothing.
            match unsafe { self.step_catching(Word::uninit(), CTRL_CLOSE) } {
                Ok(CoroutineResult::Yield(_)) if !reported => {
                    reported = true;
                    unwind::report_message(
                        self.raw.name(),
                        "ignored close while being dropped; closing it again",
                    );
                }
                Ok(_) => {}
                Err(payload) => {
                    if !payload.is::<GeneratorExit>() {
                        unwind::report(self.raw.name(), "panicked while being closed on drop", &*payload);
                    }
                }
            }
        }
    }
}

impl<I, Y, E> Co<I, Y, E> {
    fn from_suspender(suspender: &Suspender) -> &Self {
        // SAFETY: `Co` is a `repr(transparent)` wrapper of `Suspender` (its
        // other field is zero-sized).
        unsafe { &*(suspender as *const Suspender as *const Self) }
    }

    /// Yields `value` to the caller; returns the next input, or the error
    /// [`thrown`](Generator::throw) in.
    ///
    /// If the generator is closed (or dropped) instead, this unwinds with
    /// [`GeneratorExit`].
    #[inline]
    pub fn try_yield(&self, value: Y) -> Result<I, E> {
        let value = Outgoing::new(value);
        // SAFETY: the parent takes a `Y` from a yield.
        let (word, ctrl) = unsafe { self.suspender.suspend(value.word()) };
        match ctrl {
            // SAFETY: a send carries an `I`.
            CTRL_SEND => Ok(unsafe { raw::take::<I>(word) }),
            // SAFETY: a throw carries an `E`.
            CTRL_THROW => Err(unsafe { raw::take::<E>(word) }),
            CTRL_CLOSE => close_unwind(&self.suspender, false),
            _ => forced_unwind(&self.suspender),
        }
    }

    /// Delegates to `sub` until it returns, and returns what it returned
    /// (Python's `yield from`, PEP 380).
    ///
    /// `sub` is a generator, moved in, or borrowed (`&mut sub`) to look at
    /// it afterwards, as Python code can (its [`state`](Generator::state),
    /// say, or what a delegate closed early returned, in its
    /// [`return_value`](Generator::return_value)).
    ///
    /// `sub` starts with `I::default()` (Python starts it with `None`);
    /// [`yield_from_with`](Self::yield_from_with) takes the first input
    /// explicitly (a `sub` that has started already gets it at its pending
    /// yield, as Python's `next(sub)`). Everything `sub` yields goes
    /// straight to this generator's caller, and everything the caller sends
    /// or throws goes to `sub`. Closing this generator closes `sub` first,
    /// then unwinds here.
    ///
    /// ```
    /// use greenery::{Generator, GeneratorState};
    ///
    /// // Python: def inner(): yield 1; yield 2; return "inner done"
    /// //         def outer(sub): r = yield from sub; yield r
    /// let inner = Generator::new(|co, ()| {
    ///     co.yield_(1.to_string());
    ///     co.yield_(2.to_string());
    ///     "inner done"
    /// });
    /// let mut outer = Generator::new(move |co, ()| {
    ///     let mut inner = inner;
    ///     let r = co.yield_from(&mut inner); // borrowed: still here afterwards
    ///     co.yield_(format!("{r}; inner is {:?}", inner.state()));
    /// });
    /// assert_eq!(outer.by_ref().collect::<Vec<_>>(), ["1", "2", "inner done; inner is Completed"]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `sub` panics (the panic continues here), or if `sub` has completed
    /// and its return value was already taken (Python's `yield from` then
    /// returns `None`; Rust has no value of every type to return).
    pub fn yield_from<R2>(&self, sub: impl BorrowMut<Generator<I, Y, R2, E>>) -> R2
    where
        I: Default,
    {
        self.yield_from_with(sub, I::default())
    }

    /// [`yield_from`](Self::yield_from), starting `sub` with `first`.
    ///
    /// If `sub` has started already, `first` goes to its pending yield
    /// instead (where Python's `yield from` sends `None`).
    ///
    /// # Panics
    ///
    /// As for [`yield_from`](Self::yield_from).
    pub fn yield_from_with<R2>(&self, mut sub: impl BorrowMut<Generator<I, Y, R2, E>>, first: I) -> R2 {
        let delegate = sub.borrow_mut();
        let mut step = match delegate.resume(first) {
            Ok(step) => step,
            Err(_) => match delegate.returned.take() {
                Some(value) => return value,
                None => panic!(
                    "yield_from: generator '{}' has completed and its return value was taken",
                    delegate.name()
                ),
            },
        };
        loop {
            let value = match step {
                CoroutineResult::Return(value) => return value,
                CoroutineResult::Yield(value) => value,
            };
            let value = Outgoing::new(value);
            // SAFETY: as in `try_yield`.
            let (word, ctrl) = unsafe { self.suspender.suspend(value.word()) };
            // `delegate` is suspended (it just yielded), so it can take any
            // control word; the data is passed through untouched.
            step = match ctrl {
                // SAFETY: a send carries an `I` and a throw an `E`, exactly
                // what `delegate` expects with the same control word.
                CTRL_SEND | CTRL_THROW => unsafe { delegate.step(word, ctrl) },
                CTRL_CLOSE => {
                    let ignored = match delegate.close() {
                        Ok(returned) => {
                            // Python drops it; a borrowed delegate keeps it.
                            delegate.returned = returned;
                            false
                        }
                        Err(CloseError { .. }) => true,
                    };
                    drop(sub);
                    close_unwind(&self.suspender, ignored)
                }
                _ => {
                    drop(sub);
                    forced_unwind(&self.suspender)
                }
            };
        }
    }

    /// Yields every item of `items` in turn, then returns (Python's
    /// `yield from` of a list, a range, or any other iterable that is not a
    /// generator), or returns the error [`thrown`](Generator::throw) in
    /// meanwhile.
    ///
    /// A plain iterator has no `throw` and no `close`, so, as PEP 380 says,
    /// a throw is raised here at once (the rest of `items` is dropped) and
    /// closing this generator unwinds it from here. An iterator takes no
    /// input either: what is sent while it is delegated to is dropped
    /// (Python passes on `None` as `next()` and raises `AttributeError` for
    /// anything else). To pass sends and throws on to a generator, use
    /// [`yield_from`](Self::yield_from); a generator given here is only
    /// iterated.
    ///
    /// [`yield_from_iter`](Self::yield_from_iter) is the same for a generator
    /// that nothing can be thrown into.
    ///
    /// ```
    /// use greenery::{CoroutineResult::Yield, Generator};
    ///
    /// // Python: def g():
    /// //             try:
    /// //                 yield from [1, 2, 3]
    /// //             except ValueError as e:
    /// //                 yield "caught " + str(e)
    /// let mut g = Generator::new(|co, ()| {
    ///     if let Err(e) = co.try_yield_from_iter(["1", "2", "3"].map(String::from)) {
    ///         co.try_yield(format!("caught {e}"))?;
    ///     }
    ///     Ok::<_, &str>(())
    /// });
    /// assert_eq!(g.next().as_deref(), Some("1"));
    /// assert_eq!(g.throw("boom"), Ok(Yield("caught boom".to_string())));
    /// ```
    ///
    /// # Errors
    ///
    /// The error thrown in while an item was yielded.
    pub fn try_yield_from_iter(&self, items: impl IntoIterator<Item = Y>) -> Result<(), E> {
        for item in items {
            self.try_yield(item)?;
        }
        Ok(())
    }
}

impl<I, Y> Co<I, Y, Infallible> {
    /// Yields `value` to the caller and returns the next input.
    ///
    /// If the generator is closed (or dropped) instead, this unwinds with
    /// [`GeneratorExit`].
    #[inline]
    pub fn yield_(&self, value: Y) -> I {
        match self.try_yield(value) {
            Ok(input) => input,
            Err(never) => match never {},
        }
    }

    /// Yields every item of `items` in turn (Python's `yield from` of a
    /// list, a range, or any other iterable that is not a generator).
    ///
    /// What is sent meanwhile is dropped, and closing the generator unwinds
    /// it from here; see [`try_yield_from_iter`](Self::try_yield_from_iter),
    /// the same for a generator that can be thrown into.
    ///
    /// ```
    /// use greenery::Generator;
    ///
    /// // Python: def g():
    /// //             yield from [10, 20]
    /// //             yield from range(3)
    /// //             yield from "ab"
    /// let g = Generator::new(|co, ()| {
    ///     co.yield_from_iter([10, 20]);
    ///     co.yield_from_iter(0..3);
    ///     co.yield_from_iter("ab".chars().map(|c| c as i32));
    /// });
    /// assert_eq!(g.collect::<Vec<_>>(), [10, 20, 0, 1, 2, 97, 98]);
    /// ```
    pub fn yield_from_iter(&self, items: impl IntoIterator<Item = Y>) {
        for item in items {
            self.yield_(item);
        }
    }
}

#[cold]
#[inline(never)]
fn close_unwind(suspender: &Suspender, delegate_ignored: bool) -> ! {
    panic::resume_unwind(Box::new(GeneratorExit { delegate_ignored, _token: suspender.unwind_token() }))
}

impl<I, Y, R, E> fmt::Debug for Generator<I, Y, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator").field("name", &self.name()).field("state", &self.state()).finish()
    }
}

impl<I, Y, E> fmt::Debug for Co<I, Y, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Co").finish_non_exhaustive()
    }
}
