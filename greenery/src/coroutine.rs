//! The asymmetric coroutine: [`Coroutine`], [`Yielder`] and [`CoroutineResult`].
//!
//! A coroutine is a closure running on a stack of its own. Its caller
//! [`resume`](Coroutine::resume)s it with an input; the coroutine runs until
//! it [`suspend`](Yielder::suspend)s with a value (which `resume` returns as
//! [`CoroutineResult::Yield`]) or returns (`resume` returns
//! [`CoroutineResult::Return`]). The next `resume` makes the pending `suspend`
//! return its input. Suspending works from any depth of ordinary function
//! calls: pass the `&Yielder` down.
//!
//! ```
//! use greenery::{Coroutine, CoroutineResult};
//!
//! let mut running_total = Coroutine::new(|yielder, mut n: u64| {
//!     let mut total = 0;
//!     while n != 0 {
//!         total += n;
//!         n = yielder.suspend(total);
//!     }
//!     "done"
//! });
//! assert_eq!(running_total.resume(5), CoroutineResult::Yield(5));
//! assert_eq!(running_total.resume(10), CoroutineResult::Yield(15));
//! assert_eq!(running_total.resume(0), CoroutineResult::Return("done"));
//! assert!(running_total.is_done());
//! ```
//!
//! [`Generator`](crate::Generator) builds Python's generator protocol (throw,
//! close, `yield from`) on this type; greenlets and green threads share its
//! stacks and context switch.
//!
//! # Panics
//!
//! A panic in the coroutine is caught at the root of its stack, the coroutine
//! is finished, and the panic continues in the caller of `resume` with the
//! original payload.
//!
//! # Dropping
//!
//! Dropping a coroutine that has not started drops its closure. Dropping one
//! that is suspended *unwinds its stack*: the pending `suspend` panics with a
//! [`ForcedUnwind`] payload (without running the panic hook), so every value
//! on the coroutine's stack is dropped. Code that catches panics inside a
//! coroutine should let a [`ForcedUnwind`] through (see
//! [`is_forced_unwind`](crate::is_forced_unwind)); if it does not and suspends
//! again, it is unwound again at each suspend until it finishes. A panic with
//! another payload during that unwinding is reported on stderr, not
//! propagated.
//!
//! # Why `'static` and why not `Send`
//!
//! The closure, its input, yield and return types must be `'static`. A
//! coroutine that borrowed from its creator could be leaked with
//! `mem::forget` while suspended, and its stack then freed and reused while a
//! scoped thread it started still read from it (corosensei's issues 27 and
//! 59 show both ways this has bitten). With `'static` data, forgetting a
//! coroutine only leaks it.
//!
//! `Coroutine` and `Yielder` are neither `Send` nor `Sync`. A suspended
//! coroutine's stack can hold anything, `Rc`s and `MutexGuard`s included,
//! and compiled code may keep the address of a thread-local in a register
//! across a suspend; moving the coroutine to another thread would let both
//! escape their thread. The type system cannot see what is on a stack, so the
//! only sound answer is that coroutines stay on the thread that made them.

use std::borrow::Cow;
use std::fmt;
use std::panic;

use crate::arch::Word;
use crate::raw::{self, Body, CTRL_RESUME, Marker, Outgoing, RawCoroutine, Step, Suspender, UnwindToken};
use crate::stack::StackError;
use crate::unwind;

/// What a [`Coroutine::resume`] produced: a suspend or the return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine suspended with this value.
    Yield(Y),
    /// The coroutine returned this value and has finished.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if the coroutine suspended.
    pub fn into_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    pub fn into_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(r) => Some(r),
        }
    }
}

/// The payload of the unwinding that tears down a suspended [`Coroutine`]
/// when it is dropped.
///
/// Catch-all code running inside a coroutine should resume it:
///
/// ```
/// use std::panic::{self, AssertUnwindSafe};
///
/// let outcome = panic::catch_unwind(AssertUnwindSafe(|| { /* ... */ }));
/// if let Err(payload) = outcome {
///     if greenery::is_forced_unwind(&*payload) {
///         panic::resume_unwind(payload);
///     }
///     // handle a real panic
/// }
/// ```
pub struct ForcedUnwind {
    _token: UnwindToken,
}

impl fmt::Debug for ForcedUnwind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForcedUnwind")
    }
}

/// A stackful coroutine taking `Input`s, suspending with `Yield`s and
/// finishing with a `Return`. See the [module documentation](self).
pub struct Coroutine<Input, Yield, Return> {
    raw: RawCoroutine,
    _marker: Marker<Input, (Yield, Return)>,
}

/// The handle a coroutine uses to suspend itself.
///
/// A coroutine's closure receives `&Yielder`; the reference cannot leave the
/// closure (it is only valid for the call), which is what keeps `suspend`
/// from being called from any other stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    suspender: Suspender,
    _marker: Marker<Yield, Input>,
}

impl<I, Y> Yielder<I, Y> {
    fn from_suspender(suspender: &Suspender) -> &Self {
        // SAFETY: `Yielder` is a `repr(transparent)` wrapper of `Suspender`
        // (its other field is zero-sized).
        unsafe { &*(suspender as *const Suspender as *const Self) }
    }
}

/// A coroutine's closure, with the types it is run at.
struct CoroutineBody<F, I, Y> {
    body: F,
    _marker: Marker<I, Y>,
}

impl<F, I, Y, R> Body for CoroutineBody<F, I, Y>
where
    F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    I: 'static,
    Y: 'static,
    R: 'static,
{
    type Return = R;

    #[inline]
    fn run(self, first: Word, suspender: &Suspender) -> R {
        // SAFETY: the first resume sends an `I`.
        let input = unsafe { raw::take::<I>(first) };
        (self.body)(Yielder::from_suspender(suspender), input)
    }
}

impl<I: 'static, Y: 'static, R: 'static> Coroutine<I, Y, R> {
    /// Creates a coroutine on a stack of the [default size](crate::stack::default_size)
    /// that will run `body` on its first [`resume`](Self::resume).
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (the message names the limit that was
    /// hit). Use [`Builder::coroutine`](crate::Builder::coroutine) to get the
    /// [`StackError`] instead.
    #[inline]
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        match Self::build(body, None, None) {
            Ok(coroutine) => coroutine,
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
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        let name = name.unwrap_or(Cow::Borrowed(std::any::type_name::<F>()));
        let body = CoroutineBody { body, _marker: Marker::default() };
        Ok(Coroutine { raw: RawCoroutine::new(body, name, stack_size)?, _marker: Marker::default() })
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Runs the coroutine until it suspends or returns.
    ///
    /// The first call starts the closure with `input`; later calls make its
    /// pending [`Yielder::suspend`] return `input`.
    ///
    /// # Panics
    ///
    /// If the coroutine has already finished, and if the coroutine panics
    /// (the panic continues here, and the coroutine is finished).
    #[inline]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        if self.raw.is_done() {
            resumed_after_finish(self.raw.name());
        }
        let input = Outgoing::new(input);
        // SAFETY: not done, and the body takes an `I` with CTRL_RESUME.
        match unsafe { self.raw.switch_in(input.word(), CTRL_RESUME) } {
            // SAFETY: a suspend sends a `Y`.
            Step::Yielded(word) => CoroutineResult::Yield(unsafe { raw::take::<Y>(word) }),
            // SAFETY: the body returns an `R`.
            Step::Finished(word) => match unsafe { self.raw.take_result::<R>(word) } {
                Ok(value) => CoroutineResult::Return(value),
                Err(payload) => panic::resume_unwind(payload),
            },
        }
    }

    /// Whether the coroutine has been resumed at least once.
    pub fn is_started(&self) -> bool {
        self.raw.is_started()
    }

    /// Whether the coroutine has finished (returned or panicked).
    pub fn is_done(&self) -> bool {
        self.raw.is_done()
    }

    /// The coroutine's name: the one given to its
    /// [`Builder`](crate::Builder), or else the type name of its closure.
    pub fn name(&self) -> &str {
        self.raw.name()
    }

    /// The usable size of the coroutine's stack, or `None` once it has
    /// finished and given the stack back.
    pub fn stack_size(&self) -> Option<usize> {
        self.raw.stack_size()
    }
}

#[cold]
#[inline(never)]
fn resumed_after_finish(name: &str) -> ! {
    panic!("resumed coroutine '{name}' after it finished")
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        if !self.raw.is_started() || self.raw.is_done() {
            return; // the raw coroutine drops an unstarted body itself
        }
        // SAFETY: `Y` and `R` are the body's types.
        let (suspended_again, panic) = unsafe { self.raw.force_unwind::<Y, R>() };
        if suspended_again {
            unwind::report_message(
                self.raw.name(),
                "caught its ForcedUnwind and suspended again while being dropped",
            );
        }
        if let Some(payload) = panic {
            unwind::report(self.raw.name(), "panicked while being dropped", &*payload);
        }
    }
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, handing `value` to the caller of
    /// [`Coroutine::resume`], and returns the input of the next `resume`.
    ///
    /// If the coroutine is being dropped instead of resumed, this panics with
    /// a [`ForcedUnwind`] payload (without running the panic hook) to unwind
    /// the coroutine's stack.
    #[inline]
    pub fn suspend(&self, value: Y) -> I {
        let value = Outgoing::new(value);
        // SAFETY: the parent takes a `Y` from a suspend.
        let (word, ctrl) = unsafe { self.suspender.suspend(value.word()) };
        if ctrl != CTRL_RESUME {
            forced_unwind(&self.suspender);
        }
        // SAFETY: a resume sends an `I`.
        unsafe { raw::take::<I>(word) }
    }
}

/// Unwinds the current coroutine's stack with [`ForcedUnwind`].
#[cold]
#[inline(never)]
pub(crate) fn forced_unwind(suspender: &Suspender) -> ! {
    panic::resume_unwind(Box::new(ForcedUnwind { _token: suspender.unwind_token() }))
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("name", &self.name())
            .field("started", &self.is_started())
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}
