//! The untyped coroutine under [`Coroutine`](crate::Coroutine) and
//! [`Generator`](crate::Generator).
//!
//! A [`RawCoroutine`] owns a stack with a body on it and moves [`Word`]s in
//! and out; the typed wrappers decide what the words mean. This is the only
//! module above `arch` that switches stacks.
//!
//! # Protocol
//!
//! - [`RawCoroutine::new`] takes a stack from the pool, writes the name into
//!   its header and the body just below, and lays out the arch frame under
//!   that. Nothing runs yet.
//! - [`RawCoroutine::switch_in`] passes a word and a control word. The first
//!   one starts [`entry`], which moves the body off the stack and runs it with
//!   the word; later ones make the pending [`suspend`] return both words.
//! - [`suspend`] passes a word out: `switch_in` returns [`Step::Yielded`].
//! - When the body returns or panics, `entry` passes a pointer to the
//!   `Result<Return, Payload>` it left on the stack: `switch_in` returns
//!   [`Step::Finished`], and [`RawCoroutine::take_result`] reads the result
//!   and gives the stack back to the pool before anything can reuse it.
//!
//! # Words
//!
//! [`Outgoing`] and [`take`] encode a value as a word: values that fit in a
//! word (and are no more aligned than one) travel in it, by copy; larger ones
//! travel as a pointer to the sender's `Outgoing`, which stays alive (the
//! sender is suspended inside the switch) until the receiver has read it.
//! Either way the value is moved exactly once: the sender forgets it and the
//! receiver takes it.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use crate::arch::{self, StackPointer, Word};
use crate::coroutine::ForcedUnwind;
use crate::stack::{self, Limit, Stack, StackError};
use crate::unwind::Payload;

/// Control word: carry on.
pub(crate) const CTRL_RESUME: usize = 0;
/// Control word: unwind the stack with [`ForcedUnwind`].
pub(crate) const CTRL_UNWIND: usize = 1;

/// Whether a `T` travels inside a word rather than behind a pointer.
const fn fits_in_word<T>() -> bool {
    mem::size_of::<T>() <= mem::size_of::<Word>() && mem::align_of::<T>() <= mem::align_of::<Word>()
}

/// A value on its way through a switch; see the module documentation.
pub(crate) struct Outgoing<T>(ManuallyDrop<T>);

impl<T> Outgoing<T> {
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        Outgoing(ManuallyDrop::new(value))
    }

    /// The word to send. The receiver must [`take`] it exactly once, while
    /// `self` is still alive.
    #[inline(always)]
    pub(crate) fn word(&self) -> Word {
        let value: *const T = &*self.0;
        if fits_in_word::<T>() {
            let mut word = Word::uninit();
            // SAFETY: `T` fits in a word and is no more aligned than one. The
            // bytes are copied, not moved: `self` never drops its value.
            unsafe { ptr::copy_nonoverlapping(value, word.as_mut_ptr().cast::<T>(), 1) };
            word
        } else {
            Word::new(value as usize)
        }
    }
}

/// Takes ownership of the value a word carries.
///
/// # Safety
///
/// `word` must come from [`Outgoing::word`] for the same `T`, its sender must
/// still be suspended in the switch, and this must be the only `take`.
#[inline(always)]
pub(crate) unsafe fn take<T>(word: Word) -> T {
    if fits_in_word::<T>() {
        // SAFETY: the word holds a copy of a `T` (see `Outgoing::word`).
        unsafe { ptr::read(word.as_ptr().cast::<T>()) }
    } else {
        // SAFETY: the word holds the address of a live `T` that its owner
        // has forgotten.
        unsafe { ptr::read(word.assume_init() as *const T) }
    }
}

/// What runs on a coroutine stack.
pub(crate) trait Body: 'static {
    type Return: 'static;

    /// Runs the body with the first word passed in. `top` identifies the
    /// stack for [`suspend`].
    fn run(self, first: Word, top: StackPointer) -> Self::Return;
}

/// What a [`RawCoroutine::switch_in`] came back with.
pub(crate) enum Step {
    /// The body suspended with this word.
    Yielded(Word),
    /// The body finished; the word is for [`RawCoroutine::take_result`].
    Finished(Word),
}

/// A body on a stack of its own; see the module documentation.
pub(crate) struct RawCoroutine {
    /// `None` once finished: the stack has gone back to the pool.
    stack: Option<Stack>,
    /// The suspended context; meaningless once finished.
    sp: StackPointer,
    /// The arch top of the stack.
    top: StackPointer,
    started: bool,
    /// The body, on the stack until the first switch moves it out.
    body: *mut u8,
    drop_body: unsafe fn(*mut u8),
    name: Cow<'static, str>,
}

/// Room the entry needs below the arch top for its own frames, at least.
const MIN_FREE: usize = 1024;

impl RawCoroutine {
    /// Puts `body` on a stack of `stack_size` bytes (or the default), ready
    /// to run on the first [`switch_in`](Self::switch_in).
    #[inline]
    pub(crate) fn new<B: Body>(
        body: B,
        name: Cow<'static, str>,
        stack_size: Option<usize>,
    ) -> Result<Self, StackError> {
        let size = match stack_size {
            Some(size) => stack::page_round(size),
            None => stack::default_size(),
        };
        let needed = stack::HEADER_SIZE
            + mem::size_of::<B>()
            + mem::align_of::<B>()
            + arch::STACK_ALIGNMENT
            + 64;
        if needed + MIN_FREE > size {
            return Err(StackError::new(Limit::TooSmall { needed }, size));
        }
        let mut stack = stack::take(size)?;
        stack.set_name(&name);
        let body_at =
            (stack.top() - stack::HEADER_SIZE - mem::size_of::<B>()) & !(mem::align_of::<B>() - 1);
        let top = body_at & !(arch::STACK_ALIGNMENT - 1);
        // SAFETY: `body_at` is aligned for `B` and lies in the stack's usable
        // range below the header; the arch area below `top` is free too, and
        // `needed` leaves room for both.
        let sp = unsafe {
            ptr::write(body_at as *mut B, body);
            arch::init_stack(
                StackPointer::new_unchecked(top),
                entry::<B>,
                body_at as *mut u8,
            )
        };
        Ok(RawCoroutine {
            stack: Some(stack),
            sp,
            // SAFETY: `top` lies inside a mapping, so it is not null.
            top: unsafe { StackPointer::new_unchecked(top) },
            started: false,
            body: body_at as *mut u8,
            drop_body: drop_body::<B>,
            name,
        })
    }

    /// Switches into the coroutine with `data` and `ctrl`.
    ///
    /// # Safety
    ///
    /// The coroutine must not be done, and the words must be what its body
    /// expects.
    #[inline(always)]
    pub(crate) unsafe fn switch_in(&mut self, data: Word, ctrl: usize) -> Step {
        debug_assert!(!self.is_done());
        self.started = true;
        // SAFETY: the coroutine is suspended (or fresh) at `self.sp` on the
        // stack we own, on this thread (every handle is `!Send`).
        let (word, next) = unsafe { arch::switch_and_link(data, ctrl, self.sp, self.top) };
        match next {
            Some(sp) => {
                self.sp = sp;
                Step::Yielded(word)
            }
            None => Step::Finished(word),
        }
    }

    /// Reads the result a finished body left on its stack, and gives the
    /// stack back.
    ///
    /// # Safety
    ///
    /// `word` must come from [`Step::Finished`] of the last `switch_in`, and
    /// `R` must be the body's return type.
    #[cold]
    pub(crate) unsafe fn take_result<R>(&mut self, word: Word) -> Result<R, Payload> {
        // SAFETY: `entry` sent its result this way, on the stack that we have
        // not reused yet.
        let result = unsafe { take::<Result<R, Payload>>(word) };
        if let Some(stack) = self.stack.take() {
            stack::give(stack);
        }
        result
    }

    /// Unwinds a started, suspended coroutine with [`CTRL_UNWIND`] until it
    /// finishes.
    ///
    /// Returns whether the body suspended again during the unwinding, and
    /// the payload of a panic other than [`ForcedUnwind`], if any.
    ///
    /// # Safety
    ///
    /// `Y` and `R` must be the body's yield and return types.
    pub(crate) unsafe fn force_unwind<Y, R>(&mut self) -> (bool, Option<Payload>) {
        let mut suspended_again = false;
        while !self.is_done() {
            // SAFETY: not done; the body treats CTRL_UNWIND as "unwind".
            match unsafe { self.switch_in(Word::uninit(), CTRL_UNWIND) } {
                Step::Yielded(word) => {
                    suspended_again = true;
                    // SAFETY: a yield carries a `Y`.
                    drop(unsafe { take::<Y>(word) });
                }
                // SAFETY: guaranteed by the caller.
                Step::Finished(word) => match unsafe { self.take_result::<R>(word) } {
                    Ok(_) => {}
                    Err(payload) if payload.is::<ForcedUnwind>() => {}
                    Err(payload) => return (suspended_again, Some(payload)),
                },
            }
        }
        (suspended_again, None)
    }

    /// Drops the body of a coroutine that never started, and finishes it.
    pub(crate) fn discard_unstarted(&mut self) {
        debug_assert!(!self.started);
        if let Some(stack) = self.stack.take() {
            // SAFETY: the body was written at `self.body` and, the coroutine
            // never having started, not moved out since.
            unsafe { (self.drop_body)(self.body) };
            stack::give(stack);
        }
    }

    #[inline]
    pub(crate) fn is_started(&self) -> bool {
        self.started
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.stack.is_none()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn stack_size(&self) -> Option<usize> {
        self.stack.as_ref().map(Stack::size)
    }
}

impl Drop for RawCoroutine {
    fn drop(&mut self) {
        if self.is_done() {
            return;
        }
        if !self.started {
            self.discard_unstarted();
            return;
        }
        // The typed wrappers unwind a suspended body before we get here. If
        // one could not (a destructor panicked on the way), the stack may
        // still be in use by the suspended frames: leak it rather than reuse
        // memory that something might still point into.
        mem::forget(self.stack.take());
    }
}

/// Suspends the coroutine whose arch top is `top`, sending `data`; returns
/// the words of the next [`RawCoroutine::switch_in`].
///
/// # Safety
///
/// Must run on that coroutine's stack while it is running.
#[inline(always)]
pub(crate) unsafe fn suspend(top: StackPointer, data: Word) -> (Word, usize) {
    // SAFETY: guaranteed by the caller; the parent is suspended in
    // `switch_and_link`.
    unsafe { arch::switch_yield(data, top) }
}

/// Where every coroutine stack starts.
///
/// # Safety
///
/// Called only by the arch trampoline, with the first switch's word, the
/// body written by `RawCoroutine::new`, and the arch top.
unsafe extern "C" fn entry<B: Body>(first: Word, body: *mut u8, top: StackPointer) -> ! {
    let result = {
        // SAFETY: the body was written by `new`; the first switch marked the
        // coroutine started, so nobody else will drop it.
        let body = unsafe { ptr::read(body as *mut B) };
        panic::catch_unwind(AssertUnwindSafe(move || body.run(first, top)))
    };
    let result = Outgoing::new(result);
    // SAFETY: the parent is suspended in `switch_and_link`; it takes the
    // result before reusing this stack.
    unsafe { arch::switch_and_reset(result.word(), top) }
}

/// # Safety
///
/// `body` must point at a live `B` that nobody else drops.
unsafe fn drop_body<B>(body: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::drop_in_place(body as *mut B) }
}

/// Makes a handle `!Send + !Sync`, and gives it the variance of a function
/// from `In` to `Out`.
pub(crate) type Marker<In, Out> = PhantomData<(*mut (), fn(In) -> Out)>;
