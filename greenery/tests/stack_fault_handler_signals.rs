//! greenery's SIGSEGV/SIGBUS handler and the signals it does not raise for
//! itself: a SIGSEGV sent by a process or thread (`kill`, `raise`,
//! `pthread_kill`, `sigqueue`: `si_code <= 0`), and faults of another
//! runtime's while greenery installs its handler.
//!
//! A sent SIGSEGV must get what it would have had without greenery (ignored
//! after `SIG_IGN`, the default action after `SIG_DFL`, the earlier handler
//! otherwise), and must not take greenery's handler away: a stack stashed
//! afterwards and touched by another thread must still be restored. If the
//! earlier handler changes the action (std's installs `SIG_DFL`), the next
//! sent SIGSEGV gets the new action. The earlier action must be recorded
//! before greenery's handler, which passes faults on to it, is installed.
//!
//! Each scenario runs in a child process (this binary, built without the
//! libtest harness, runs itself again with the scenario in its
//! environment), so that a crash or a hang is reported as a failure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use greenery::stack;
use support::this_binary;

mod support;

const SCENARIO: &str = "GREENERY_FAULT_HANDLER_SIGNALS_SCENARIO";
const PATTERN: u64 = 0x5a17_c0de_0bad_f00d;

/// A green thread lends a local to a scoped OS thread and parks; once the
/// stack is stashed, the scoped thread reads the local (its touch must be
/// restored by greenery's fault handler). Returns whether every value read
/// was intact and the touch was handled.
fn lent_touch() -> bool {
    let (good, before) = greenery::spawn(|| {
        let local = black_box([PATTERN; 64]);
        let shared = &local;
        let before = stack::stash_counts();
        let good = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while stack::stash_counts().stashed == before.stashed && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                black_box(shared).iter().filter(|&&value| value == PATTERN).count()
            });
            greenery::sleep(Duration::from_millis(500));
            reader.join().unwrap()
        });
        (good, before)
    })
    .get()
    .unwrap();
    let after = stack::stash_counts();
    println!("good={good} before={before:?} after={after:?}");
    good == 64 && after.restored_on_touch > before.restored_on_touch
}

/// `lent_touch`, after a SIGSEGV sent to this thread with `raise` once
/// greenery's handler is installed. `ignore` makes SIGSEGV ignored before
/// greenery installs its handler (so `SIG_IGN` is the action greenery
/// passes on to); otherwise std's handler is the earlier one.
fn lent_touch_after_raise(raise: bool, ignore: bool) -> bool {
    if ignore {
        // SAFETY: sets the action of SIGSEGV before greenery installs its
        // handler.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_IGN) };
    }
    stack::set_stash_after(Some(Duration::from_millis(1)));
    // The first green thread installs greenery's fault handler.
    greenery::spawn(|| ()).get().unwrap();
    if raise {
        // SAFETY: sends SIGSEGV to this thread (si_code SI_TKILL).
        unsafe { libc::raise(libc::SIGSEGV) };
        println!("survived raise(SIGSEGV)");
    }
    lent_touch()
}

// ------------------------------------------ the install of the handler

static FAULT_PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FIXED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A SIGSEGV handler installed before greenery's, that a runtime uses for
/// its own faults (a JVM's safepoint polls, say): it makes the page the
/// program protects writable again; any other fault gets the default action.
extern "C" fn fixing_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = FAULT_PAGE.load(std::sync::atomic::Ordering::Relaxed);
    if page != 0 && addr & !4095 == page {
        // SAFETY: the page the test mapped.
        unsafe { libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ | libc::PROT_WRITE) };
        FIXED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    }
    // SAFETY: installing the default action.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
}

/// Another thread takes faults its runtime's handler fixes, while greenery
/// installs its own handler: every one of them must still reach the earlier
/// handler. greenery must record the earlier action before its handler is
/// live: sigaction(2) installs the new action, then copies the old one out,
/// so a handler installed with the old action read back by that same call
/// could pass a fault in that window on to an action not yet recorded (read
/// as `SIG_DFL`), and the process would die. The window is short: this
/// catches it only sometimes.
fn faults_while_greenery_installs() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    // SAFETY: a fresh private page, and a handler that only changes its
    // protection or restores the default action.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(page, libc::MAP_FAILED);
        FAULT_PAGE.store(page as usize, Ordering::Relaxed);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = fixing_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()), 0);
    }
    static STOP: AtomicBool = AtomicBool::new(false);
    let faulter = std::thread::spawn(|| {
        let page = FAULT_PAGE.load(Ordering::Relaxed);
        while !STOP.load(Ordering::Relaxed) {
            // SAFETY: the test's page; the fixing handler makes it writable.
            unsafe {
                libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ);
                std::ptr::write_volatile(page as *mut u8, 1);
            }
        }
    });
    while FIXED.load(Ordering::Relaxed) < 50 {
        std::hint::spin_loop();
    }
    // The first green thread installs greenery's fault handler.
    greenery::spawn(|| ()).get().unwrap();
    let seen = FIXED.load(Ordering::Relaxed);
    while FIXED.load(Ordering::Relaxed) < seen + 50 {
        std::hint::spin_loop();
    }
    STOP.store(true, Ordering::Relaxed);
    faulter.join().unwrap();
    true
}

/// No core file from the scenarios that end by the default action.
fn no_core() {
    let limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: sets this process's core size limit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) };
}

/// Sends SIGSEGV to this thread (si_code SI_TKILL).
fn raise_segv() {
    // SAFETY: what the scenario's disposition makes of it is what it tests.
    unsafe { libc::raise(libc::SIGSEGV) };
}

/// With std's handler before greenery's: the first sent SIGSEGV reaches std's
/// handler, which installs `SIG_DFL` and returns; stashed stacks still work;
/// the second sent SIGSEGV ends the process by the default action.
fn raise_twice_after_std() -> bool {
    no_core();
    if !lent_touch_after_raise(true, false) {
        return false;
    }
    println!("lent touch restored; raising again");
    raise_segv();
    println!("survived the second raise(SIGSEGV)");
    false
}

/// With `SIG_DFL` before greenery's, a sent SIGSEGV ends the process.
fn raise_after_default() -> bool {
    no_core();
    // SAFETY: sets the action of SIGSEGV before greenery installs its handler.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
    greenery::spawn(|| ()).get().unwrap();
    println!("raising");
    raise_segv();
    println!("survived raise(SIGSEGV)");
    false
}

/// With `SIG_IGN` before greenery's, sent SIGSEGVs are ignored, every one.
fn raise_twice_while_ignored() -> bool {
    if !lent_touch_after_raise(true, true) {
        return false;
    }
    raise_segv();
    println!("survived a second raise(SIGSEGV)");
    lent_touch()
}

static FIRST_CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static SECOND_CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn second_handler(_: libc::c_int) {
    SECOND_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Counts its calls and installs `second_handler` in its place.
extern "C" fn first_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    FIRST_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: signal(2) is async-signal-safe; installs a plain handler.
    unsafe { libc::signal(libc::SIGSEGV, second_handler as *const () as libc::sighandler_t) };
}

/// A handler before greenery's that replaces itself with another: the first
/// sent SIGSEGV reaches the first, the next ones the second, and greenery's
/// handler stays.
fn raise_with_switching_handlers() -> bool {
    use std::sync::atomic::Ordering;
    // SAFETY: installs a handler that only counts and calls signal(2).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = first_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()), 0);
    }
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| ()).get().unwrap();
    raise_segv();
    raise_segv();
    raise_segv();
    let (first, second) = (FIRST_CALLS.load(Ordering::Relaxed), SECOND_CALLS.load(Ordering::Relaxed));
    println!("first handler called {first} times, second {second}");
    first == 1 && second == 2 && lent_touch()
}

/// How a scenario's process must end.
enum Expect {
    Success,
    /// Killed by SIGSEGV after printing this line.
    KilledBySegvAfter(&'static str),
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        let ok = match scenario.as_str() {
            "control-lent-touch" => lent_touch_after_raise(false, false),
            "raise-segv-std-previous" => lent_touch_after_raise(true, false),
            "raise-segv-std-previous-twice" => raise_twice_after_std(),
            "raise-segv-default-previous" => raise_after_default(),
            "raise-segv-ignored-previous" => raise_twice_while_ignored(),
            "raise-segv-switching-previous" => raise_with_switching_handlers(),
            "install-race" => faults_while_greenery_installs(),
            other => panic!("unknown scenario {other}"),
        };
        std::process::exit(if ok { 0 } else { 1 });
    }
    if stack::stash_after().is_none() {
        println!("stashing unsupported here: nothing to test");
        return;
    }
    let mut failed = 0;
    for (test, scenario, expect) in [
        ("control_a_lent_stack_touched_while_stashed_is_restored", "control-lent-touch", Expect::Success),
        (
            "a_sigsegv_sent_with_raise_does_not_remove_the_stash_fault_handler",
            "raise-segv-std-previous",
            Expect::Success,
        ),
        (
            "a_sigsegv_sent_after_std_reset_its_handler_gets_the_default_action",
            "raise-segv-std-previous-twice",
            Expect::KilledBySegvAfter("lent touch restored; raising again"),
        ),
        (
            "a_sigsegv_sent_while_the_earlier_action_is_default_ends_the_process",
            "raise-segv-default-previous",
            Expect::KilledBySegvAfter("raising"),
        ),
        (
            "a_sigsegv_sent_with_raise_while_ignored_is_ignored_and_keeps_the_stash_fault_handler",
            "raise-segv-ignored-previous",
            Expect::Success,
        ),
        (
            "a_sigsegv_sent_reaches_the_handler_the_earlier_handler_installed",
            "raise-segv-switching-previous",
            Expect::Success,
        ),
    ] {
        let mut command = this_binary();
        command.env(SCENARIO, scenario);
        let outcome = support::run(command, Duration::from_secs(60));
        let ok = match expect {
            Expect::Success => outcome.status.success(),
            Expect::KilledBySegvAfter(line) => {
                use std::os::unix::process::ExitStatusExt;
                outcome.status.signal() == Some(libc::SIGSEGV) && outcome.stdout.lines().any(|l| l == line)
            }
        };
        if ok {
            println!("test {test} ... ok\n{}", outcome.stdout.trim_end());
        } else {
            failed += 1;
            println!(
                "test {test} ... FAILED ({})\nstdout:\n{}\nstderr:\n{}",
                outcome.status, outcome.stdout, outcome.stderr
            );
        }
    }
    // The install window is short: many processes try it.
    let test = "faults_of_another_runtime_while_greenery_installs_its_handler_reach_that_runtime";
    let tries = 400;
    let mut died = 0;
    for _ in 0..tries {
        let mut command = this_binary();
        command.env(SCENARIO, "install-race");
        let outcome = support::run(command, Duration::from_secs(60));
        if !outcome.status.success() {
            died += 1;
            if died == 1 {
                println!("first failure: {}\nstderr:\n{}", outcome.status, outcome.stderr);
            }
        }
    }
    if died > 0 {
        failed += 1;
        println!("test {test} ... FAILED ({died} of {tries} processes died)");
    } else {
        println!("test {test} ... ok ({tries} processes)");
    }
    if failed > 0 {
        println!("\ntest result: FAILED. {failed} failed");
        std::process::exit(1);
    }
    println!("\ntest result: ok");
}
