//! aarch64, AAPCS64 (Linux).
//!
//! # Registers
//!
//! AAPCS64 makes x19–x29, sp and the low halves of v8–v15 (d8–d15)
//! callee-saved; x30 is the link register. At a switch:
//!
//! - **x19 and x29** are stored and loaded by hand: LLVM may use x19 as its
//!   base pointer and x29 is the frame pointer, so neither may be an operand
//!   of inline assembly.
//! - **x20–x28** are declared as clobbered outputs, and `clobber_abi("C")`
//!   declares x0–x17, x30 and all of v0–v31 clobbered, so the compiler spills
//!   only the registers (d8–d15 included) that hold live values at that call
//!   site.
//! - **x30** carries return addresses: the parent's `blr` sets it, and the
//!   coroutine's suspend puts the parent's return address back in it before
//!   its `ret`, so every resume and suspend form a `blr`/`ret` pair for the
//!   return-address predictor.
//! - **x18 is never read, written, saved or restored.** It is the platform
//!   register of the AAPCS64: Darwin, Windows (where it holds the TEB pointer),
//!   Fuchsia and Android reserve it, and the shadow call stack keeps its
//!   pointer there. On Linux the compiler treats it as a scratch register, so
//!   it needs no saving; elsewhere, saving and restoring it across a switch
//!   would hand one context the platform state of another.
//! - FPCR is shared by the thread (see the parent module).
//!
//! Arguments: x0 carries the transferred word both ways, x3 carries the
//! control word into the coroutine, x1 carries the arch top into the coroutine and the coroutine's stack pointer (0 once finished)
//! back out, x2 carries the target stack pointer (or, when suspending, the
//! arch top). sp is kept 16-byte aligned at every instruction, as Linux
//! checks.
//!
//! # Stack layout
//!
//! ```text
//!        coroutine stack                        parent stack
//!  top ->+------------------+
//!        | 0                |  frame-pointer chain ends here (lr = 0)
//!        | parent link      |--------------+    +------------------+
//!        | entry fn         |              |    | parent frames    |
//!        | obj              |              |    | saved x29        |
//!        +------------------+              |    | saved x19        |
//!        | coroutine frames |              |    | (padding)        |
//!        | ...              |              +--->| return address   | (x30 of the `blr`)
//!        | saved x29        |                   +------------------+
//!        | saved x19        |
//!        | 0                |
//!  sp -->| resume address   |
//!        +------------------+
//! ```
//!
//! A fresh stack:
//!
//! ```text
//!  top ->| 0                |
//!        | (parent link)    |  written by the first resume
//!        | entry fn         |
//!        | obj              |
//!        | 0                |
//!  sp -->| &trampoline      |
//! ```
//!
//! # Switching
//!
//! *Resume* ([`switch_and_link`]): store x19/x29 on the parent stack, load the
//! coroutine's resume address and `blr` to it. The code there, still on the
//! parent's stack, stores x30 below the saved pair, records sp in the parent
//! link, moves sp to the coroutine stack and loads the coroutine's x19/x29.
//!
//! *Suspend* ([`switch_yield`]): store x19/x29 and the resume address, hand sp
//! to the parent in x1, load the parent's return address into x30 from the
//! parent link, move sp back to the parent and `ret`.

use core::arch::{asm, naked_asm};

use super::{EntryFn, StackPointer, SymmetricEntryFn, Word, Words};

/// The top of a coroutine stack must be aligned to this.
pub(crate) const STACK_ALIGNMENT: usize = 16;

/// Lays out a fresh stack whose arch top is `top`.
///
/// # Safety
///
/// `top` must be aligned to [`STACK_ALIGNMENT`], and the 48 bytes below it
/// must be writable memory that nothing else uses until the coroutine has
/// finished.
#[inline]
pub(crate) unsafe fn init_stack(top: StackPointer, entry: EntryFn, obj: *mut u8) -> StackPointer {
    let top = top.get() as *mut usize;
    // SAFETY: the caller guarantees the six words below `top` are ours.
    unsafe {
        top.sub(1).write(0);
        top.sub(2).write(0);
        top.sub(3).write(entry as *const () as usize);
        top.sub(4).write(obj as usize);
        top.sub(5).write(0);
        top.sub(6).write(trampoline as *const () as usize);
    }
    StackPointer::new(top as usize - 48).expect("stack top below 48")
}

/// The root frame of every coroutine: moves onto the coroutine stack and
/// branches into the entry function.
///
/// On entry (reached by the `blr` in [`switch_and_link`]): sp is the parent's
/// stack pointer, x30 the parent's return address, x0 the transferred word,
/// x1 the arch top, x2 the initial stack pointer, x3 the control word (already
/// where the entry function's fourth argument goes).
///
/// Its call-frame information describes the parent's frame: the canonical
/// frame address is `*x29 + 32` (x29 holds the address of the parent link),
/// and the parent's x30, x19 and x29 are found 32, 16 and 8 bytes below it.
/// See the x86_64 backend for `.cfi_signal_frame` and the trap after the
/// branch.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc simple",
        ".cfi_signal_frame",
        // DW_CFA_def_cfa_expression, 5 bytes:
        //   DW_OP_breg29 (x29) 0; DW_OP_deref; DW_OP_plus_uconst 32
        ".cfi_escape 0x0f, 0x05, 0x8d, 0x00, 0x06, 0x23, 0x20",
        ".cfi_offset x30, -32",
        ".cfi_offset x19, -16",
        ".cfi_offset x29, -8",
        // The parent's return address, below its saved x19/x29.
        "str x30, [sp, #-16]!",
        // The parent link.
        "mov x4, sp",
        "str x4, [x1, #-16]",
        // x29 = &parent link, the base of the CFA expression above.
        "sub x29, x1, #16",
        // x5 = obj, x6 = entry fn.
        "ldp x5, x6, [x29, #-16]",
        // Move onto the coroutine stack, 16-byte aligned, at `obj`.
        "sub sp, x1, #32",
        // entry(arg = x0, obj, top, ctrl = x3)
        "mov x2, x1",
        "mov x1, x5",
        // Set the return address and branch, rather than `blr`: the entry
        // function never returns, and `blr` would push a return-stack entry
        // that the coroutine's first suspend would pop.
        "adr x30, 2f",
        "br x6",
        "2:",
        "brk #0",
        ".cfi_endproc",
    )
}

/// Resumes the coroutine suspended at `sp`, whose arch top is `top`, passing
/// it `arg`.
///
/// Returns the word the coroutine passed back, and its new stack pointer, or
/// `None` if it finished with [`switch_and_reset`].
///
/// # Safety
///
/// As for the x86_64 backend: `sp` must be a context created by
/// [`init_stack`] or saved by [`switch_yield`] on the stack whose arch top is
/// `top`, not resumed since.
#[inline(always)]
pub(crate) unsafe fn switch_and_link(
    arg: Word,
    ctrl: usize,
    sp: StackPointer,
    top: StackPointer,
) -> (Word, Option<StackPointer>) {
    let ret_arg: Word;
    let ret_sp: usize;
    // SAFETY: the caller guarantees `sp` is a suspended context on the stack
    // below `top`; x19 and x29 are saved here and every other register the
    // compiler may rely on is declared clobbered.
    unsafe {
        asm!(
            "ldr x4, [x2]",
            "stp x19, x29, [sp, #-16]!",
            "blr x4",
            "ldp x19, x29, [sp], #16",
            inout("x0") arg => ret_arg,
            inout("x1") top.get() => ret_sp,
            inout("x2") sp.get() => _,
            inout("x3") ctrl => _,
            lateout("x20") _, lateout("x21") _, lateout("x22") _,
            lateout("x23") _, lateout("x24") _, lateout("x25") _,
            lateout("x26") _, lateout("x27") _, lateout("x28") _,
            clobber_abi("C"),
        );
    }
    (ret_arg, StackPointer::new(ret_sp))
}

/// Suspends the running coroutine, whose arch top is `top`, passing `arg` to
/// its parent. Returns the word passed by the next [`switch_and_link`].
///
/// # Safety
///
/// Must run on the stack of the coroutine whose arch top is `top`, while its
/// parent is suspended in [`switch_and_link`].
#[inline(always)]
pub(crate) unsafe fn switch_yield(arg: Word, top: StackPointer) -> (Word, usize) {
    let ret_arg: Word;
    let ctrl: usize;
    // SAFETY: the caller guarantees that the parent link below `top` holds
    // the stack pointer of a parent suspended in `switch_and_link`, with its
    // return address stored there.
    unsafe {
        asm!(
            "adr x4, 2f",
            "stp x19, x29, [sp, #-16]!",
            "stp x4, xzr, [sp, #-16]!",
            // Our context, for the parent.
            "mov x1, sp",
            "ldr x4, [x2, #-16]",
            "ldr x30, [x4], #16",
            "mov sp, x4",
            "ret",
            // Resumed by `switch_and_link`, still on the parent's stack:
            // x1 = arch top, x2 = our stack pointer, x0 = the word,
            // x3 = the control word.
            "2:",
            "str x30, [sp, #-16]!",
            "mov x4, sp",
            "str x4, [x1, #-16]",
            "add sp, x2, #16",
            "ldp x19, x29, [sp], #16",
            inout("x0") arg => ret_arg,
            inout("x2") top.get() => _,
            out("x3") ctrl,
            lateout("x20") _, lateout("x21") _, lateout("x22") _,
            lateout("x23") _, lateout("x24") _, lateout("x25") _,
            lateout("x26") _, lateout("x27") _, lateout("x28") _,
            clobber_abi("C"),
        );
    }
    (ret_arg, ctrl)
}

/// Switches to the parent for the last time, passing it `arg`.
///
/// # Safety
///
/// As for [`switch_yield`]; in addition nothing left on this stack may need
/// to run again (destructors included).
#[inline(always)]
pub(crate) unsafe fn switch_and_reset(arg: Word, top: StackPointer) -> ! {
    // SAFETY: as for `switch_yield`; the parent sees x1 = 0 and knows the
    // coroutine has finished.
    unsafe {
        asm!(
            "ldr x4, [x1, #-16]",
            "ldr x30, [x4], #16",
            "mov sp, x4",
            "mov x1, xzr",
            "ret",
            in("x0") arg,
            in("x1") top.get(),
            options(noreturn),
        )
    }
}

/// Lays out a fresh stack whose arch top is `top` for symmetric switching:
/// the first [`switch_symmetric`] to the returned context calls
/// `entry(w0, obj, top, ctrl, w1)` on the new stack.
///
/// ```text
///  top ->| 0                |
///        | 0                |
///        | entry fn         |
///        | obj              |
///        | 0                |
///  sp -->| &root trampoline |
/// ```
///
/// # Safety
///
/// As for [`init_stack`].
#[inline]
pub(crate) unsafe fn init_symmetric_stack(
    top: StackPointer,
    entry: SymmetricEntryFn,
    obj: *mut u8,
) -> StackPointer {
    let top = top.get() as *mut usize;
    // SAFETY: the caller guarantees the six words below `top` are ours.
    unsafe {
        top.sub(1).write(0);
        top.sub(2).write(0);
        top.sub(3).write(entry as *const () as usize);
        top.sub(4).write(obj as usize);
        top.sub(5).write(0);
        top.sub(6).write(root_trampoline as *const () as usize);
    }
    StackPointer::new(top as usize - 48).expect("stack top below 48")
}

/// The root frame of a symmetrically switched stack, reached by the `br` in
/// [`switch_symmetric`] with sp 16 bytes above its own address in the initial
/// layout, the words in x0 and x5 and the control word in x3.
///
/// Nothing called this frame, so its call-frame information marks the return
/// address undefined: unwinders and debuggers stop here.
#[unsafe(naked)]
unsafe extern "C" fn root_trampoline() {
    naked_asm!(
        ".cfi_startproc simple",
        ".cfi_def_cfa sp, 32",
        ".cfi_undefined x30",
        // sp = top - 32: [sp] = obj, [sp + 8] = entry.
        "mov x29, xzr",
        "ldp x1, x7, [sp]",
        "add x2, sp, #32",
        // entry(w0 = x0, obj, top, ctrl = x3, w1)
        "mov x4, x5",
        "adr x30, 2f",
        "br x7",
        "2:",
        "brk #0",
        ".cfi_endproc",
    )
}

/// Suspends the current context, storing its stack pointer in `*save`, and
/// continues the context saved in `*target` with two words (in x0 and x5)
/// and `ctrl` (in x3); see the x86_64 backend (a context may switch to
/// itself). The switch ends with `br`, so the
/// return-stack predictor is left alone.
///
/// # Safety
///
/// As for the x86_64 backend.
#[inline(always)]
pub(crate) unsafe fn switch_symmetric(
    words: Words,
    ctrl: usize,
    target: *const StackPointer,
    save: *mut StackPointer,
) -> (Words, usize) {
    let (ret0, ret1): (Word, Word);
    let ret_ctrl: usize;
    // SAFETY: guaranteed by the caller; x19 and x29 are saved here and the
    // other callee-saved registers are declared clobbered.
    unsafe {
        asm!(
            "adr x4, 2f",
            "stp x19, x29, [sp, #-16]!",
            "stp x4, xzr, [sp, #-16]!",
            "mov x4, sp",
            "str x4, [x1]",
            "ldr x2, [x2]",
            "ldr x4, [x2]",
            "add sp, x2, #16",
            "br x4",
            // Resumed by a `switch_symmetric`: sp is our context + 16.
            "2:",
            "ldp x19, x29, [sp], #16",
            inout("x0") words.0 => ret0,
            inout("x5") words.1 => ret1,
            inout("x3") ctrl => ret_ctrl,
            in("x1") save,
            inout("x2") target => _,
            lateout("x20") _, lateout("x21") _, lateout("x22") _,
            lateout("x23") _, lateout("x24") _, lateout("x25") _,
            lateout("x26") _, lateout("x27") _, lateout("x28") _,
            clobber_abi("C"),
        );
    }
    ((ret0, ret1), ret_ctrl)
}

/// Continues the context at `target` without saving the current one.
///
/// # Safety
///
/// As for [`switch_symmetric`]; nothing left on the current stack may need
/// to run again.
#[inline(always)]
pub(crate) unsafe fn switch_symmetric_final(words: Words, ctrl: usize, target: StackPointer) -> ! {
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!(
            "ldr x4, [x2]",
            "add sp, x2, #16",
            "br x4",
            in("x0") words.0,
            in("x5") words.1,
            in("x3") ctrl,
            in("x2") target.get(),
            options(noreturn),
        )
    }
}
