//! x86_64, System V ABI (Linux).
//!
//! # Registers
//!
//! The System V ABI makes rbx, rbp, rsp and r12–r15 callee-saved (plus the
//! control bits of MXCSR and the x87 control word, see the parent module for
//! why those are shared). At a switch:
//!
//! - **rbx and rbp** are pushed and popped by hand: LLVM reserves rbx for its
//!   own use and rbp is the frame pointer, so neither may be named as an
//!   operand of inline assembly.
//! - **r12–r15** are declared as clobbered outputs, and `clobber_abi("sysv64")`
//!   declares every caller-saved register (rax, rcx, rdx, rsi, rdi, r8–r11,
//!   xmm0–15 and the rest of the vector state) clobbered. The compiler saves
//!   whichever of these hold live values at that call site, and nothing else.
//! - **rsp** is the context itself.
//!
//! Arguments travel in the registers the ABI uses for calls: rdi carries the
//! transferred word both ways, rcx carries the control word into the
//! coroutine, rsi carries the arch top into the coroutine and the
//! coroutine's stack pointer (0 once it has finished) back out, rdx carries
//! the target stack pointer.
//!
//! # Stack layout
//!
//! A suspended coroutine, and its parent while the coroutine runs:
//!
//! ```text
//!        coroutine stack                        parent stack
//!  top ->+------------------+
//!        | 0                |  frame-pointer chain ends here
//!        | parent link      |--------------+
//!        | entry fn         |              |
//!        | obj              |              |    +------------------+
//!        +------------------+              |    | parent frames    |
//!        | coroutine frames |              |    | saved rbp        |
//!        | ...              |              |    | saved rbx        |
//!        | saved rbp        |              +--->| return address   | (pushed by `call`)
//!        | saved rbx        |                   +------------------+
//!  sp -->| resume address   |
//!        +------------------+
//! ```
//!
//! A fresh stack looks the same with no coroutine frames, and the trampoline
//! as its resume address:
//!
//! ```text
//!  top ->| 0                |
//!        | (parent link)    |  written by the first resume
//!        | entry fn         |
//!        | obj              |
//!  sp -->| &trampoline      |
//! ```
//!
//! # Switching
//!
//! *Resume* (parent side, [`switch_and_link`]): push rbp and rbx, then
//! `call [rdx]`, i.e. call the coroutine's resume address. The code found
//! there still runs on the parent's stack: it stores rsp (which points at the
//! return address just pushed) into the parent link, moves rsp to the
//! coroutine's stack just above the resume address, pops the coroutine's rbx
//! and rbp, and carries on in the coroutine.
//!
//! *Suspend* (coroutine side, [`switch_yield`]): push rbp, rbx and the address
//! of the resume code, hand rsp to the parent in rsi, load rsp from the parent
//! link and `ret`. That `ret` pops the return address the parent's `call`
//! pushed, so calls and returns stay paired for the return stack buffer.
//!
//! *Finish* ([`switch_and_reset`]): load rsp from the parent link, set rsi to
//! 0 and `ret`.

use core::arch::{asm, naked_asm};

use super::{EntryFn, StackPointer, SymmetricEntryFn, Word, Words};

/// The top of a coroutine stack must be aligned to this.
pub(crate) const STACK_ALIGNMENT: usize = 16;

/// Lays out a fresh stack whose arch top is `top`.
///
/// The first [`switch_and_link`] into the returned context calls
/// `entry(arg, obj, top, ctrl)` on the new stack.
///
/// # Safety
///
/// `top` must be aligned to [`STACK_ALIGNMENT`], and the 40 bytes below it
/// must be writable memory that nothing else uses until the coroutine has
/// finished.
#[inline]
pub(crate) unsafe fn init_stack(top: StackPointer, entry: EntryFn, obj: *mut u8) -> StackPointer {
    let top = top.get() as *mut usize;
    // SAFETY: the caller guarantees the five words below `top` are ours.
    unsafe {
        top.sub(1).write(0);
        top.sub(2).write(0);
        top.sub(3).write(entry as *const () as usize);
        top.sub(4).write(obj as usize);
        top.sub(5).write(trampoline as *const () as usize);
    }
    StackPointer::new(top as usize - 40).expect("stack top below 40")
}

/// The root frame of every coroutine: moves onto the coroutine stack and jumps
/// into the entry function.
///
/// On entry (reached by the `call` in [`switch_and_link`]): rsp is the
/// parent's stack pointer, rdi the transferred word, rsi the arch top, rdx
/// the initial stack pointer, rcx the control word (already where the entry
/// function's fourth argument goes).
///
/// Its call-frame information describes the parent's frame, whatever stack it
/// is on: the canonical frame address is `*rbp + 24` (rbp holds the address
/// of the parent link from here on), and the parent's rip, rbx and rbp are
/// found 24, 16 and 8 bytes below it, where [`switch_and_link`] pushed them.
/// `.cfi_signal_frame` tells debuggers not to expect the parent frame to be
/// above this one on the same stack, and makes unwinders look up the return
/// address itself rather than the byte before it, which is why the `ud2`
/// after the jump belongs to this function.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc simple",
        ".cfi_signal_frame",
        // DW_CFA_def_cfa_expression, 5 bytes:
        //   DW_OP_breg6 (rbp) 0; DW_OP_deref; DW_OP_plus_uconst 24
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x18",
        ".cfi_offset rip, -24",
        ".cfi_offset rbx, -16",
        ".cfi_offset rbp, -8",
        // The parent link: where the parent's return address was pushed.
        "mov [rsi - 16], rsp",
        // rbp = &parent link, the base of the CFA expression above.
        "lea rbp, [rsi - 16]",
        // Move onto the coroutine stack, 16-byte aligned, just below `obj`.
        "lea rsp, [rsi - 32]",
        // entry(arg = rdi, obj, top, ctrl = rcx)
        "mov rdx, rsi",
        "mov rsi, [rsp]",
        // Push a return address and jump, rather than `call`: the entry
        // function never returns, and a `call` would leave an entry on the
        // return stack buffer that the coroutine's first suspend would pop.
        "lea rax, [rip + 2f]",
        "push rax",
        "jmp [rbp - 8]",
        "2:",
        "ud2",
        ".cfi_endproc",
    )
}

/// Resumes the coroutine suspended at `sp`, whose arch top is `top`, passing
/// it `arg` and the control word `ctrl`.
///
/// Returns the word the coroutine passed back, and its new stack pointer, or
/// `None` if it finished with [`switch_and_reset`].
///
/// # Safety
///
/// `sp` must be a context created by [`init_stack`] or saved by
/// [`switch_yield`] on the stack whose arch top is `top`, not resumed since,
/// and on this OS thread's side of any thread-local state (see the parent
/// module).
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
    // below `top`; the callee-saved registers the compiler may rely on are
    // either pushed here (rbx, rbp) or declared clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "call [rdx]",
            "pop rbx",
            "pop rbp",
            inout("rdi") arg => ret_arg,
            inout("rsi") top.get() => ret_sp,
            inout("rdx") sp.get() => _,
            inout("rcx") ctrl => _,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (ret_arg, StackPointer::new(ret_sp))
}

/// Suspends the running coroutine, whose arch top is `top`, passing `arg` to
/// its parent. Returns the word and the control word passed by the next
/// [`switch_and_link`].
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
    // the stack pointer of a parent suspended in `switch_and_link`, whose
    // `call` left its return address there.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            // Our context, for the parent.
            "mov rsi, rsp",
            "mov rsp, [rdx - 16]",
            "ret",
            // Resumed by `switch_and_link`, still on the parent's stack:
            // rsi = arch top, rdx = our stack pointer, rdi = the word,
            // rcx = the control word.
            "2:",
            "mov [rsi - 16], rsp",
            "lea rsp, [rdx + 8]",
            "pop rbx",
            "pop rbp",
            inout("rdi") arg => ret_arg,
            inout("rdx") top.get() => _,
            out("rcx") ctrl,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (ret_arg, ctrl)
}

/// Switches to the parent for the last time, passing it `arg`. The stack of
/// the finishing coroutine is not touched again.
///
/// # Safety
///
/// As for [`switch_yield`]; in addition nothing left on this stack may need
/// to run again (destructors included).
#[inline(always)]
pub(crate) unsafe fn switch_and_reset(arg: Word, top: StackPointer) -> ! {
    // SAFETY: as for `switch_yield`; the parent sees rsi = 0 and knows the
    // coroutine has finished.
    unsafe {
        asm!(
            "mov rsp, [rsi - 16]",
            "xor esi, esi",
            "ret",
            in("rdi") arg,
            in("rsi") top.get(),
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
    // SAFETY: the caller guarantees the five words below `top` are ours.
    unsafe {
        top.sub(1).write(0);
        top.sub(2).write(0);
        top.sub(3).write(entry as *const () as usize);
        top.sub(4).write(obj as usize);
        top.sub(5).write(root_trampoline as *const () as usize);
    }
    StackPointer::new(top as usize - 40).expect("stack top below 40")
}

/// The root frame of a symmetrically switched stack. It is reached by the
/// `jmp` in [`switch_symmetric`] with rsp just above its own address in the
/// initial layout, the words in rdi and r8 and the control word in rcx: all
/// where the entry function's arguments go but for `obj` and `top`.
///
/// Nothing called this frame, so its call-frame information marks the return
/// address undefined: unwinders and debuggers stop here.
#[unsafe(naked)]
unsafe extern "C" fn root_trampoline() {
    naked_asm!(
        ".cfi_startproc simple",
        ".cfi_def_cfa rsp, 32",
        ".cfi_undefined rip",
        // rsp = top - 32: [rsp] = obj, [rsp + 8] = entry.
        "xor ebp, ebp",
        "lea rdx, [rsp + 32]",
        "mov rsi, [rsp]",
        // entry(w0 = rdi, obj, top, ctrl = rcx, w1 = r8), with a return
        // address pushed for the alignment a call would give.
        "lea rax, [rip + 2f]",
        "push rax",
        "jmp [rsp + 16]",
        "2:",
        "ud2",
        ".cfi_endproc",
    )
}

/// Suspends the current context, storing its stack pointer in `*save`, and
/// continues the context saved in `*target` with two words (in rdi and r8)
/// and `ctrl` (in rcx). Returns the words and control word of the switch
/// that resumes the current context.
///
/// `*target` is read after `*save` is written, so a context may switch to
/// itself (`target == save`): the switch then returns its own words at once.
///
/// Unlike [`switch_and_link`], neither side is the other's caller: the switch
/// ends with an indirect `jmp`, not a `ret`, and pushes nothing on the
/// return-stack buffer, so switching between any two contexts in any order
/// leaves the predictor alone. Contexts switched this way are resumed only
/// by this function (or entered through [`init_symmetric_stack`]).
///
/// # Safety
///
/// `*target` must be a context saved by `switch_symmetric` or made by
/// [`init_symmetric_stack`], not resumed since, on this thread (or `target`
/// must be `save`); both pointers must be valid.
#[inline(always)]
pub(crate) unsafe fn switch_symmetric(
    words: Words,
    ctrl: usize,
    target: *const StackPointer,
    save: *mut StackPointer,
) -> (Words, usize) {
    let (ret0, ret1): (Word, Word);
    let ret_ctrl: usize;
    // SAFETY: guaranteed by the caller; rbx and rbp are saved here and the
    // other callee-saved registers are declared clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rsi], rsp",
            "mov rsp, [rdx]",
            "pop rax",
            "jmp rax",
            // Resumed by a `switch_symmetric`: rsp is our context + 8.
            "2:",
            "pop rbx",
            "pop rbp",
            inout("rdi") words.0 => ret0,
            inout("r8") words.1 => ret1,
            inout("rcx") ctrl => ret_ctrl,
            in("rsi") save,
            in("rdx") target,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    ((ret0, ret1), ret_ctrl)
}

/// Continues the context at `target` without saving the current one, which
/// is never resumed again.
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
            "mov rsp, rdx",
            "pop rax",
            "jmp rax",
            in("rdi") words.0,
            in("r8") words.1,
            in("rcx") ctrl,
            in("rdx") target.get(),
            options(noreturn),
        )
    }
}
