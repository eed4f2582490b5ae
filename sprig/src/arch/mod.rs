//! The context switch: one file per CPU, one contract for all of them.
//!
//! Everything above this module (coroutines, generators, greenlets, the hub)
//! is written against the functions listed here and never against a register
//! name. A backend provides:
//!
//! | item | what it does |
//! |---|---|
//! | [`STACK_ALIGNMENT`] | alignment the backend needs for the top of a stack |
//! | [`init_stack`] | lays out a fresh stack so that the first [`switch_and_link`] into it calls an [`EntryFn`] |
//! | [`switch_and_link`] | *resume*: suspends the caller, records where it stopped in the coroutine's **parent link**, and continues the coroutine |
//! | [`switch_yield`] | *suspend*: the coroutine stops and the context recorded in its parent link continues |
//! | [`switch_and_reset`] | the coroutine's final switch back to its parent; its stack is never touched again |
//!
//! # The protocol
//!
//! A suspended context is a single [`StackPointer`]: the word it points at is
//! the address execution continues from, and the words above it hold the few
//! registers that cannot be handed to the compiler (the frame pointer and the
//! register LLVM reserves for itself). Every other callee-saved register is
//! declared clobbered by the inline assembly, so the compiler spills only the
//! registers that are live at that particular switch, and often none at all.
//!
//! The **arch top** of a coroutine stack is a 16-byte aligned address chosen
//! by the caller of [`init_stack`]; the words just below it belong to the
//! backend. One of them is the parent link: the stack pointer of whoever
//! resumed the coroutine last. It is rewritten on every resume, which is what
//! lets a coroutine be resumed from a different place (even from another
//! coroutine's stack) each time, and what lets unwinders walk from the
//! coroutine into its resumer (see "Backtraces" below).
//!
//! Resumes and suspends are paired as `call` and `ret` (x86_64) or `blr` and
//! `ret` (aarch64): the parent calls into the coroutine and the coroutine's
//! suspend returns into the parent, so the CPU's return-address predictor
//! stays in step. The first entry into a coroutine jumps (it does not call)
//! into its entry function for the same reason.
//!
//! Values cross a switch as one machine word (a [`Word`], which may hold
//! uninitialised bytes) plus, towards the coroutine, a control word the layers
//! above use to say "resume", "throw" or "unwind". Values that fit in a word
//! travel in it; larger ones travel as a pointer into the sender's suspended
//! frame, which the receiver reads before the sender can run again. Nothing
//! on the switch path allocates, reads thread-local storage or enters the
//! kernel.
//!
//! # Floating-point control state
//!
//! MXCSR and the x87 control word (x86_64) and FPCR (aarch64) are **not**
//! saved or restored: they belong to the thread, not to a coroutine. A
//! coroutine that changes the rounding mode changes it for every coroutine on
//! its thread. Rust has no stable way to change these registers short of
//! inline assembly, and loading MXCSR on every switch would cost more than the
//! rest of the switch together, so sprig shares them (as corosensei does) and
//! documents it here.
//!
//! # Backtraces
//!
//! The entry trampoline that sits at the root of every coroutine stack carries
//! DWARF call-frame information whose canonical frame address is computed from
//! the parent link (`DW_CFA_def_cfa_expression`). Unwinders (panics,
//! `std::backtrace`, gdb) therefore continue from the coroutine's root frame
//! into the frame that last resumed it.
//!
//! # Threads
//!
//! A suspended context holds the values of callee-saved registers, and the
//! compiler is free to keep the address of a thread-local variable in one of
//! them. Resuming a context on another OS thread would make such code read the
//! old thread's thread-locals. The layers above therefore make every handle
//! to a context `!Send`; nothing here checks it.

use core::mem::MaybeUninit;
use core::num::NonZeroUsize;

/// The stack pointer of a suspended context.
pub(crate) type StackPointer = NonZeroUsize;

/// The word a switch carries. `MaybeUninit` because a value smaller than a
/// word, or with padding, leaves some of its bytes uninitialised.
pub(crate) type Word = MaybeUninit<usize>;

/// The function a fresh stack starts in.
///
/// It is called with the word passed to the first [`switch_and_link`], the
/// `obj` pointer given to [`init_stack`], the arch top of the stack, and the
/// control word of that first switch. It
/// must never return: it ends with [`switch_and_reset`]. It must not unwind
/// either (it is `extern "C"`, so an escaping panic aborts).
pub(crate) type EntryFn = unsafe extern "C" fn(arg: Word, obj: *mut u8, top: StackPointer, ctrl: usize) -> !;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86_64::*;

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub(crate) use aarch64::*;

#[cfg(not(any(
    all(target_arch = "x86_64", target_os = "linux"),
    all(target_arch = "aarch64", target_os = "linux"),
)))]
compile_error!(
    "sprig supports x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu; \
     its context switch has no backend for this target"
);

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    /// A small stack on the heap, enough for these tests (no guard page).
    struct TestStack(Vec<u128>);

    impl TestStack {
        fn new() -> Self {
            TestStack(vec![0; 4096])
        }
        fn top(&mut self) -> StackPointer {
            let end = self.0.as_mut_ptr_range().end as usize;
            StackPointer::new(end & !(STACK_ALIGNMENT - 1)).unwrap()
        }
    }

    fn word(value: usize) -> Word {
        Word::new(value)
    }

    unsafe extern "C" fn add_one_forever(arg: Word, obj: *mut u8, top: StackPointer, _ctrl: usize) -> ! {
        // SAFETY: `obj` is the counter the test passed to `init_stack`, and
        // the test is suspended in `switch_and_link` while we run.
        let calls = unsafe { &mut *(obj as *mut usize) };
        // SAFETY: the test always passes initialised words.
        let mut value = unsafe { arg.assume_init() };
        loop {
            *calls += 1;
            if value == usize::MAX {
                // SAFETY: `top` is our arch top, and the parent is suspended
                // in `switch_and_link`.
                unsafe { switch_and_reset(word(7), top) }
            }
            // SAFETY: as above.
            let (next, ctrl) = unsafe { switch_yield(word(value + 1), top) };
            // SAFETY: as above.
            value = unsafe { next.assume_init() } + ctrl;
        }
    }

    #[test]
    fn resume_yield_and_finish() {
        let mut stack = TestStack::new();
        let top = stack.top();
        let mut calls = 0usize;
        // SAFETY: the stack outlives every switch below, and the entry
        // function only touches `calls` while we are suspended.
        unsafe {
            let mut sp = init_stack(top, add_one_forever, ptr::addr_of_mut!(calls).cast());
            for i in 0..1000 {
                // The control word arrives alongside the word.
                let ctrl = usize::from(i % 10 == 0);
                let (value, next) = switch_and_link(word(i), ctrl, sp, top);
                let expected = i + 1 + if i == 0 { 0 } else { ctrl };
                assert_eq!(value.assume_init(), expected);
                sp = next.expect("coroutine finished early");
            }
            let (value, next) = switch_and_link(word(usize::MAX), 0, sp, top);
            assert_eq!(value.assume_init(), 7);
            assert!(next.is_none());
        }
        assert_eq!(calls, 1001);
    }
}
