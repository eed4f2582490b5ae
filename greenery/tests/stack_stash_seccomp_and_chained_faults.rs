//! Stashing under seccomp filters, and faults that are not the stash's
//! passed on to a SIGSEGV handler installed before greenery's.
//!
//! - A seccomp filter that kills the process for `unshare` (a default-kill
//!   allowlist, as systemd's `SystemCallFilter=` makes), refuses it with
//!   `EPERM`, or fakes it as a success, changes nothing: where `/proc` can
//!   be read, greenery counts threads there and never calls `unshare`; so
//!   every stash made while another thread runs protects the stack, and no
//!   write of that thread is lost.
//! - A fault in a green thread's stack that is not the stash's reaches the
//!   handler installed before greenery's, with stashing and without it
//!   (`GREENERY_STACK_GUARD=mprotect`, where the process-local page the
//!   stash uses is never mapped), with the signal mask that handler would
//!   have had without greenery (asynchronous signals not blocked).
//!
//! Each scenario runs in a child process (this binary, built without the
//! libtest harness, runs itself again with the scenario in its environment),
//! so that a crash or a hang is reported as a failure. Scenarios named
//! `control-*` show the same with nothing in the way.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use greenery::stack;
use support::this_binary;

mod support;

const SCENARIO: &str = "GREENERY_STASH_SECCOMP_SCENARIO";
const PATTERN: u64 = 0x5a17_c0de_0bad_f00d;

// ------------------------------------------------------------- seccomp

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// Installs, for every thread of the process, a seccomp filter whose only
/// rule is: `unshare` gets `action`. (An allowlist generated for the
/// program before greenery started calling `unshare`, with the kill
/// default of systemd's `SystemCallFilter=`, does the same for it; a filter
/// or a user-notification supervisor that fakes namespace calls as
/// successful no-ops answers 0.)
fn filter_unshare(action: u32) {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let program = [
        insn(0x20, 0, 0, 0),                        // ld [nr]
        insn(0x15, 0, 1, libc::SYS_unshare as u32), // jeq unshare
        insn(0x06, 0, 0, action),                   // ret action
        insn(0x06, 0, 0, SECCOMP_RET_ALLOW),        // ret allow
    ];
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: a valid filter program that outlives the calls.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let rc = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// A green thread parks and is stashed, then finishes: the plainest use of
/// stashing, in a process whose seccomp filter gives `unshare` `action`.
fn park_under_filter(action: u32) -> bool {
    filter_unshare(action);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let wrong = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(50));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count()
    })
    .get()
    .unwrap();
    let counts = stack::stash_counts();
    println!("wrong={wrong} counts={counts:?}");
    counts.stashed > 0 && wrong == 0
}

/// A scoped OS thread keeps incrementing an atomic counter that lives on a
/// green thread's stack, and counts its own increments, while the green
/// thread parks over and over (and is stashed each time). No increment may
/// be lost: the counter must end equal to the writer's own count. Since
/// the writer runs throughout, every stash must have been made as one
/// shared with another thread (the stack protected while it was copied):
/// that, unlike a lost increment, does not depend on timing.
fn lost_increments(action: Option<u32>) -> bool {
    if let Some(action) = action {
        filter_unshare(action);
    }
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let (written, seen) = greenery::spawn(|| {
        let counter = black_box(AtomicU64::new(0));
        let stop = AtomicBool::new(false);
        let (counter_ref, stop_ref) = (&counter, &stop);
        let written = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                let mut mine = 0u64;
                while !stop_ref.load(Ordering::Relaxed) {
                    counter_ref.fetch_add(1, Ordering::Relaxed);
                    mine += 1;
                }
                mine
            });
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                greenery::sleep(Duration::from_millis(3));
            }
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap()
        });
        (written, counter.load(Ordering::Relaxed))
    })
    .get()
    .unwrap();
    let counts = stack::stash_counts();
    println!("increments made={written} counter={seen} lost={} counts={counts:?}", written - seen);
    counts.stashed > 0 && counts.stashed_shared == counts.stashed && written == seen
}

// ------------------------------------------------- a fault passed on

/// The page of a green thread's stack that the test protects; 0 when none.
static PROTECTED: AtomicU64 = AtomicU64::new(0);
static FIXED: AtomicU64 = AtomicU64::new(0);
/// Whether the fixing handler ran with SIGUSR1 blocked (it is not in the
/// faulting thread's mask, nor in the handler's `sa_mask`).
static MASKED: AtomicBool = AtomicBool::new(false);

/// A SIGSEGV handler installed before greenery's (so greenery's handler is
/// the one that must pass faults that are not its own on to it). It handles
/// a fault on the page the test protected by making it writable again; any
/// other fault gets the default action.
extern "C" fn fixing_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as u64;
    let page = PROTECTED.load(Ordering::Acquire);
    if page != 0 && addr & !4095 == page {
        // SAFETY: the page the test protected, on a live stack.
        unsafe { libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ | libc::PROT_WRITE) };
        // SAFETY: reads this thread's mask into a set of our own.
        let masked = unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, libc::SIGUSR1) == 1
        };
        MASKED.store(masked, Ordering::Relaxed);
        FIXED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: installing the default action.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
}

/// A fault in the usable range of a green thread's stack that is not a
/// stash's (here: a page of it made read-only, standing in for any fault
/// there: an instruction fetch from the stack, a poisoned page, a runtime's
/// own protection) must reach the handler installed before greenery's.
/// greenery's handler looks the address up, finds a stack, and asks the
/// process-local page for this process's token. Where stashing is not
/// available (kernels before 6.13, `GREENERY_STACK_GUARD=mprotect`) that
/// page was never mapped: the handler must not use it (a panic there, in a
/// signal handler, was the bug). The earlier handler must run with the
/// mask it would have had without greenery: SIGUSR1, unblocked in the
/// faulting thread, unblocked.
fn fault_in_usable_range_is_passed_on() -> bool {
    // SAFETY: installs a handler that only makes a page writable or
    // restores the default action.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = fixing_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()), 0);
    }
    println!("stash_after: {:?}", stack::stash_after());
    let start = Instant::now();
    let ok = greenery::spawn(|| {
        let mut buf = black_box([0u8; 3 * 4096]);
        let page = (buf.as_mut_ptr() as u64 + 4095) & !4095;
        PROTECTED.store(page, Ordering::Release);
        // SAFETY: a page inside `buf`, on this green thread's stack, made
        // read-only for a moment (the fixing handler makes it writable).
        unsafe {
            assert_eq!(libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ), 0);
            std::ptr::write_volatile(page as *mut u8, 0x77);
        }
        PROTECTED.store(0, Ordering::Release);
        // SAFETY: as above; the page is writable again.
        let value = unsafe { std::ptr::read_volatile(page as *const u8) };
        black_box(&buf);
        value == 0x77
    })
    .get()
    .unwrap();
    let masked = MASKED.load(Ordering::Relaxed);
    println!(
        "fixed by the earlier handler: {} in {:?}, SIGUSR1 blocked there: {masked}",
        FIXED.load(Ordering::Relaxed),
        start.elapsed()
    );
    ok && FIXED.load(Ordering::Relaxed) == 1 && !masked
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        let ok = match scenario.as_str() {
            "seccomp-kill-unshare" => park_under_filter(SECCOMP_RET_KILL_PROCESS),
            "control-seccomp-eperm-unshare" => park_under_filter(SECCOMP_RET_ERRNO | libc::EPERM as u32),
            "seccomp-errno0-unshare" => lost_increments(Some(SECCOMP_RET_ERRNO)),
            "control-lost-increments" => lost_increments(None),
            "usable-range-fault" | "usable-range-fault-stashing" => fault_in_usable_range_is_passed_on(),
            other => panic!("unknown scenario {other}"),
        };
        std::process::exit(if ok { 0 } else { 1 });
    }
    if stack::stash_after().is_none() {
        println!("stashing unsupported here: nothing to test");
        return;
    }
    let mut failed = 0;
    for (test, scenario, env) in [
        ("control_eperm_from_seccomp_falls_back_to_proc", "control-seccomp-eperm-unshare", None),
        (
            "a_seccomp_filter_that_kills_on_unshare_does_not_kill_a_stashing_program",
            "seccomp-kill-unshare",
            None,
        ),
        ("control_no_increment_is_lost", "control-lost-increments", None),
        ("no_increment_is_lost_when_seccomp_answers_unshare_with_0", "seccomp-errno0-unshare", None),
        ("a_fault_in_a_stack_is_passed_on_with_stashing", "usable-range-fault-stashing", None),
        (
            "a_fault_in_a_stack_is_passed_on_without_stashing",
            "usable-range-fault",
            Some(("GREENERY_STACK_GUARD", "mprotect")),
        ),
    ] {
        let mut command = this_binary();
        command.env(SCENARIO, scenario);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        let outcome = support::run(command, Duration::from_secs(60));
        if outcome.status.success() {
            println!("test {test} ... ok\n{}", outcome.stdout.trim_end());
        } else {
            failed += 1;
            println!(
                "test {test} ... FAILED ({})\nstdout:\n{}\nstderr:\n{}",
                outcome.status, outcome.stdout, outcome.stderr
            );
        }
    }
    if failed > 0 {
        println!("\ntest result: FAILED. {failed} failed");
        std::process::exit(1);
    }
    println!("\ntest result: ok");
}
