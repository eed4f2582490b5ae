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
//! | [`init_symmetric_stack`] | lays out a fresh stack so that the first [`switch_symmetric`] into it calls an [`EntryFn`] |
//! | [`switch_symmetric`] | suspends the current context, saving it, and continues any other: greenlets switch this way |
//! | [`switch_symmetric_final`] | continues another context without saving the current one (a finished greenlet) |
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
//! Symmetric switches (greenlets: any context to any other, in any order)
//! cannot pair calls with returns, so they use neither: each ends with an
//! indirect jump to the target's resume address, which leaves the
//! return-address predictor untouched and is predicted like any indirect
//! branch. Their suspended contexts have the same shape as asymmetric ones
//! (resume address, then the hand-saved registers), but the two kinds are
//! never mixed: a context saved by `switch_yield` is resumed only by
//! `switch_and_link`, and one saved by `switch_symmetric` only by
//! `switch_symmetric`.
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
//! rest of the switch together, so greenery shares them (as corosensei does) and
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

/// The two words a symmetric switch carries, both in registers.
pub(crate) type Words = (Word, Word);

/// The function a fresh stack starts in.
///
/// It is called with the word passed to the first [`switch_and_link`], the
/// `obj` pointer given to [`init_stack`], the arch top of the stack, and the
/// control word of that first switch. It
/// must never return: it ends with [`switch_and_reset`]. It must not unwind
/// either (it is `extern "C"`, so an escaping panic aborts).
pub(crate) type EntryFn = unsafe extern "C" fn(arg: Word, obj: *mut u8, top: StackPointer, ctrl: usize) -> !;

/// The function a fresh stack for symmetric switching starts in: like
/// [`EntryFn`], with the two words of the first [`switch_symmetric`] (the
/// first, then, after `obj`, `top` and the control word, the second).
pub(crate) type SymmetricEntryFn =
    unsafe extern "C" fn(w0: Word, obj: *mut u8, top: StackPointer, ctrl: usize, w1: Word) -> !;

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
    "greenery supports x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu; \
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

    /// Two symmetric contexts on their own stacks, and this thread's own,
    /// passing a counter round a ring.
    #[test]
    fn symmetric_switches_go_round_a_ring() {
        struct Ring {
            sp: [StackPointer; 3],
            hops: usize,
        }
        unsafe extern "C" fn hop(arg: Word, obj: *mut u8, _top: StackPointer, ctrl: usize, w1: Word) -> ! {
            // SAFETY: `obj` is the ring, only touched by whoever runs.
            let ring = unsafe { &mut *(obj as *mut Ring) };
            // The first switch tells each context its index.
            let me = ctrl;
            // SAFETY: the test always passes initialised words; the second
            // carries the value again, doubled.
            let mut value = unsafe { arg.assume_init() };
            // SAFETY: as above.
            unsafe { assert_eq!(w1.assume_init(), value * 2) };
            loop {
                ring.hops += 1;
                let next = (me + 1) % 3;
                let save: *mut StackPointer = &mut ring.sp[me];
                let target: *const StackPointer = &ring.sp[next];
                let v = value + 1;
                // SAFETY: the next context is suspended (or fresh) and saved in
                // the ring.
                let (words, _) = unsafe { switch_symmetric((word(v), word(v * 2)), next, target, save) };
                // SAFETY: as above.
                unsafe {
                    value = words.0.assume_init();
                    assert_eq!(words.1.assume_init(), value * 2);
                }
            }
        }
        let mut stacks = [TestStack::new(), TestStack::new()];
        let mut ring = Ring { sp: [StackPointer::new(1).unwrap(); 3], hops: 0 };
        let obj = ptr::addr_of_mut!(ring).cast();
        // SAFETY: the stacks outlive the switches, and each context only
        // touches the ring while it runs.
        unsafe {
            ring.sp[1] = init_symmetric_stack(stacks[0].top(), hop, obj);
            ring.sp[2] = init_symmetric_stack(stacks[1].top(), hop, obj);
            // Start context 1 (it learns its index from the control word),
            // which starts context 2, which comes back here as context 0.
            let save: *mut StackPointer = &mut ring.sp[0];
            let one: *const StackPointer = &ring.sp[1];
            // A context switching to itself gets its own words back.
            let (words, _) = switch_symmetric((word(1), word(2)), 0, save, save);
            assert_eq!((words.0.assume_init(), words.1.assume_init()), (1, 2));
            let (words, _) = switch_symmetric((word(10), word(20)), 1, one, save);
            assert_eq!(words.0.assume_init(), 12);
            assert_eq!(words.1.assume_init(), 24);
            for lap in 0..100 {
                let (words, _) = switch_symmetric((word(lap), word(lap * 2)), 1, one, save);
                assert_eq!(words.0.assume_init(), lap + 2);
                assert_eq!(words.1.assume_init(), (lap + 2) * 2);
            }
        }
        assert_eq!(ring.hops, 202);
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

/// Timing of the raw switches, for comparing the two kinds.
/// `cargo test --release -p greenery --lib raw_switch_timing -- --ignored --nocapture`
#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore = "a measurement, not a test"]
    fn raw_switch_timing() {
        let mut stack = vec![0u128; 8192];
        let top = StackPointer::new(stack.as_mut_ptr_range().end as usize & !15).unwrap();
        struct Pair {
            main: StackPointer,
            other: StackPointer,
        }
        unsafe extern "C" fn pong(w0: Word, obj: *mut u8, _: StackPointer, _: usize, _: Word) -> ! {
            let pair = obj as *mut Pair;
            let mut w = w0;
            loop {
                // SAFETY: a measurement harness.
                unsafe {
                    let v = w.assume_init() + 1;
                    let (r, _) = switch_symmetric(
                        (Word::new(v), Word::uninit()),
                        0,
                        &(*pair).main,
                        &mut (*pair).other,
                    );
                    w = r.0;
                }
            }
        }
        let mut pair = Pair { main: StackPointer::new(1).unwrap(), other: StackPointer::new(1).unwrap() };
        let p: *mut Pair = &mut pair;
        // SAFETY: a measurement harness.
        unsafe {
            (*p).other = init_symmetric_stack(top, pong, p.cast());
            let n = 20_000_000u64;
            for _ in 0..3 {
                let t = Instant::now();
                let mut sum = 0usize;
                for i in 0..n as usize {
                    let (r, _) = switch_symmetric(
                        (Word::new(std::hint::black_box(i)), Word::uninit()),
                        0,
                        &(*p).other,
                        &mut (*p).main,
                    );
                    sum = sum.wrapping_add(r.0.assume_init());
                }
                std::hint::black_box(sum);
                println!("raw symmetric round trip: {:.2} ns", t.elapsed().as_nanos() as f64 / n as f64);
            }
        }
    }
}
