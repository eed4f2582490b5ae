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
use std::cell::{Cell, OnceCell};
use std::io::Write;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::arch::{self, StackPointer, Word};
use crate::coroutine::ForcedUnwind;
use crate::sanitizer;
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
///
/// A union, so that a value that fits in a word becomes the word without a
/// trip through memory.
pub(crate) union Outgoing<T> {
    value: ManuallyDrop<T>,
    word: Word,
}

impl<T> Outgoing<T> {
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        Outgoing { value: ManuallyDrop::new(value) }
    }

    /// The word to send. The receiver must [`take`] it exactly once, while
    /// `self` is still alive.
    #[inline(always)]
    pub(crate) fn word(&self) -> Word {
        if fits_in_word::<T>() {
            // SAFETY: `T` fits in the word, so the word's bytes are the
            // value's bytes, and any bytes beyond it are allowed to be
            // uninitialised in a `MaybeUninit`. They are copied, not moved:
            // `self` never drops its value.
            unsafe { self.word }
        } else {
            // SAFETY: reading the address of the field we wrote.
            Word::new(unsafe { &*self.value } as *const T as usize)
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

    /// Runs the body with the first word passed in; it suspends through
    /// `suspender`.
    fn run(self, first: Word, suspender: &Suspender) -> Self::Return;
}

/// What [`RawCoroutine::new`] leaves on the stack for [`entry`].
struct Launch<B> {
    body: B,
    /// The coroutine's name, owned by its handle, which outlives every run
    /// of the body.
    name: *const str,
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
    /// The body and its launch data, on the stack until the first switch
    /// moves them out.
    launch: *mut u8,
    drop_launch: unsafe fn(*mut u8),
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
            + mem::size_of::<Launch<B>>()
            + mem::align_of::<Launch<B>>()
            + arch::STACK_ALIGNMENT
            + 64;
        if needed + MIN_FREE > size {
            return Err(StackError::new(Limit::TooSmall { needed }, size));
        }
        let mut stack = stack::take(size)?;
        stack.set_name(&name);
        let launch_at = (stack.top() - stack::HEADER_SIZE - mem::size_of::<Launch<B>>())
            & !(mem::align_of::<Launch<B>>() - 1);
        let top = launch_at & !(arch::STACK_ALIGNMENT - 1);
        let launch = Launch { body, name: &*name as *const str };
        // SAFETY: `launch_at` is aligned for `Launch<B>` and lies in the
        // stack's usable range below the header; the arch area below `top`
        // is free too, and `needed` leaves room for both.
        let sp = unsafe {
            ptr::write(launch_at as *mut Launch<B>, launch);
            arch::init_stack(StackPointer::new_unchecked(top), entry::<B>, launch_at as *mut u8)
        };
        Ok(RawCoroutine {
            stack: Some(stack),
            sp,
            // SAFETY: `top` lies inside a mapping, so it is not null.
            top: unsafe { StackPointer::new_unchecked(top) },
            started: false,
            launch: launch_at as *mut u8,
            drop_launch: drop_launch::<Launch<B>>,
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
        let own = || self.stack.as_ref().map(|stack| (stack.bottom(), stack.top()));
        let switch = sanitizer::start(sanitizer::bounds_at(self.sp.get(), own));
        // SAFETY: the coroutine is suspended (or fresh) at `self.sp` on the
        // stack we own, on this thread (every handle is `!Send`).
        let (word, next) = unsafe { arch::switch_and_link(data, ctrl, self.sp, self.top) };
        switch.finish();
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
            // SAFETY: the launch data was written at `self.launch` and, the
            // coroutine never having started, not moved out since.
            unsafe { (self.drop_launch)(self.launch) };
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

/// The coroutine's side of a [`RawCoroutine`]: what
/// [`Yielder`](crate::Yielder) and [`Co`](crate::Co) wrap. It lives in the
/// root frame of the coroutine's stack, and the body only ever sees it by
/// reference, so it cannot be used from any other stack.
///
/// # Suspending while unwinding
///
/// A destructor that suspends while greenery unwinds its stack (for a close, or
/// a drop) would freeze the unwinding half-way: the thread's panic count
/// would stay raised in the resumer (poisoning its mutexes), and the next
/// close could only raise a panic inside a running destructor, which aborts.
/// Rust has no way to finish such a suspend, so [`suspend`](Self::suspend)
/// refuses it: it reports the coroutine by name and aborts. It knows an
/// unwind of greenery's is in flight on this stack while the unwind's payload
/// (which carries an [`UnwindToken`]) is alive: a body that catches the
/// payload and drops it may suspend again.
///
/// Checking costs one load and branch per suspend, on a cache line the
/// suspend touches anyway, and nothing on resume.
pub(crate) struct Suspender {
    top: StackPointer,
    /// The stack of the context that last resumed the coroutine, for
    /// [`sanitizer`] (zero-sized in other builds).
    parent_stack: Cell<sanitizer::Bounds>,
    name: *const str,
    /// Set when an unwind was raised here; cleared once its payload is gone.
    raised: Cell<bool>,
    /// Unwinds raised on this stack whose payloads are still alive.
    unwinds: OnceCell<Arc<AtomicUsize>>,
}

impl Suspender {
    /// Suspends the coroutine, sending `data`; returns the words of the next
    /// [`RawCoroutine::switch_in`].
    ///
    /// # Safety
    ///
    /// The body's parent must expect `data` as a yield.
    #[inline(always)]
    pub(crate) unsafe fn suspend(&self, data: Word) -> (Word, usize) {
        if self.raised.get() {
            self.check_not_unwinding();
        }
        let switch = sanitizer::start(self.parent_stack.get());
        // SAFETY: we run on this coroutine's stack (the body only sees the
        // suspender by reference), and its parent is suspended in
        // `switch_and_link`.
        let resumed = unsafe { arch::switch_yield(data, self.top) };
        self.parent_stack.set(switch.finish());
        resumed
    }

    #[cold]
    #[inline(never)]
    fn check_not_unwinding(&self) {
        if self.unwinds.get().is_some_and(|count| count.load(Ordering::Relaxed) > 0) && thread::panicking() {
            // SAFETY: the handle that owns the name outlives the body's run.
            let name = unsafe { &*self.name };
            let _ = writeln!(
                std::io::stderr(),
                "greenery: '{name}' tried to suspend while its stack was unwinding (a destructor \
                 suspended while the coroutine was being closed or dropped). A Rust stack cannot \
                 be suspended in the middle of unwinding, so the process aborts. Let destructors \
                 finish without suspending."
            );
            std::process::abort();
        }
        self.raised.set(false);
    }

    /// Counts an unwind raised on this stack until its payload is dropped.
    pub(crate) fn unwind_token(&self) -> UnwindToken {
        self.raised.set(true);
        UnwindToken::new(self.unwinds.get_or_init(|| Arc::new(AtomicUsize::new(0))))
    }
}

/// Carried by the payloads of greenery's own unwinds (see
/// [`Suspender::unwind_token`]).
pub(crate) struct UnwindToken(Arc<AtomicUsize>);

impl UnwindToken {
    /// Counts one more unwind in flight in `count`, until the token drops.
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> UnwindToken {
        count.fetch_add(1, Ordering::Relaxed);
        UnwindToken(count.clone())
    }
}

impl Drop for UnwindToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where every coroutine stack starts.
///
/// # Safety
///
/// Called only by the arch trampoline, with the first switch's words (its
/// control word is always [`CTRL_RESUME`]: nothing starts a coroutine
/// otherwise), the launch data written by `RawCoroutine::new`, and the arch
/// top.
#[cfg_attr(greenery_asan, sanitize(address = "off"))]
unsafe extern "C" fn entry<B: Body>(first: Word, launch: *mut u8, top: StackPointer, _ctrl: usize) -> ! {
    let parent_stack = Cell::new(sanitizer::first_arrival());
    let result = {
        // SAFETY: the launch data was written by `new`; the first switch
        // marked the coroutine started, so nobody else will drop it.
        let Launch { body, name } = unsafe { ptr::read(launch as *mut Launch<B>) };
        let suspender =
            Suspender { top, parent_stack, name, raised: Cell::new(false), unwinds: OnceCell::new() };
        let result = panic::catch_unwind(AssertUnwindSafe(|| body.run(first, &suspender)));
        (result, suspender.parent_stack.get())
    };
    let (result, parent_stack) = result;
    sanitizer::start_final(parent_stack);
    let result = Outgoing::new(result);
    // SAFETY: the parent is suspended in `switch_and_link`; it takes the
    // result before reusing this stack.
    unsafe { arch::switch_and_reset(result.word(), top) }
}

/// # Safety
///
/// `launch` must point at a live `L` that nobody else drops.
unsafe fn drop_launch<L>(launch: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::drop_in_place(launch as *mut L) }
}

/// Makes a handle `!Send + !Sync`, and gives it the variance of a function
/// from `In` to `Out`.
pub(crate) type Marker<In, Out> = PhantomData<(*mut (), fn(In) -> Out)>;
