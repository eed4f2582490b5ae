//! Stashed stacks across `fork` and under signal handlers.
//!
//! - A forked child inherits the stacks its parent had stashed, and restores
//!   them when it touches them: also after confining itself with `chroot`
//!   into a directory without `/proc` (where it can neither open
//!   `/proc/self/mem` afresh nor count its threads there), with one thread
//!   or with several; and so does its own child, born in the `chroot`.
//! - A child never keeps a descriptor of its parent's memory
//!   (`/proc/<parent>/mem`), even one that the parent opened during the
//!   fork itself: a child that has not opened its own yet forks while a fork
//!   handler that runs after greenery's touches a stashed stack.
//! - A restore reached through a SIGSEGV handler installed after greenery's
//!   that passes faults on with every signal unblocked (`SA_NODEFER`, an
//!   empty mask, as wasmtime installs its own) survives signals whose
//!   handler touches the same stack: the fault handler blocks asynchronous
//!   signals itself, so no handler can run on a thread in the middle of its
//!   restore (one that did would fault again and wait for itself).
//! - greenery's fault handler fits, with room to spare, on the alternate
//!   signal stack std gives its threads.
//!
//! Each scenario runs in a child process (this binary, built without the
//! libtest harness, runs itself again with the scenario in its
//! environment), so that a crash or a hang is reported as a failure.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use greenery::stack;
use support::this_binary;

mod support;

const SCENARIO: &str = "GREENERY_STASH_FORK_SIGNALS_SCENARIO";
const PATTERN: u64 = 0x5a17_c0de_0bad_f00d;

fn supported() -> bool {
    stack::stash_after().is_some()
}

/// Waits up to `timeout` for child `pid`; its exit code, or `None` (killed,
/// or died of a signal: the signal is printed).
fn wait_for(pid: libc::pid_t, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            if libc::WIFSIGNALED(status) {
                println!("child {pid} died of signal {}", libc::WTERMSIG(status));
            }
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            println!("child {pid} hung");
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A program that is single-threaded forks while a green thread's stack is
/// stashed; the child confines itself with `chroot` (a safe std function)
/// into a directory without `/proc`, then lets the green thread finish,
/// which restores the stack it inherited. With `threads` set, the child
/// first starts a thread that lives on while the stack is restored.
///
/// The child cannot open `/proc/self/mem` after the `chroot`, nor count its
/// threads in `/proc`: it restores with the descriptor its fork handler
/// opened before the program could take `/proc` away.
fn chroot_child(threads: bool) -> bool {
    let empty = std::env::temp_dir().join(format!("greenery-stash-chroot-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(100));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(20)); // the green thread is stashed
    let stashed = stack::stash_counts().stashed;
    println!("stashed before fork: {stashed}");
    // SAFETY: the child runs on in this process's code, single-threaded
    // (the parent is: a hub runs on the thread that uses it).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::os::unix::fs::chroot(&empty).unwrap();
        std::env::set_current_dir("/").unwrap();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = threads.then(|| std::thread::spawn(move || stopped.recv()));
        let wrong = parked.get().unwrap();
        drop(stop);
        if let Some(other) = other {
            other.join().unwrap().unwrap_err();
        }
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(if wrong == 0 { 0 } else { 1 }) };
    }
    let child = wait_for(pid, Duration::from_secs(30));
    let wrong = parked.get().unwrap();
    let _ = std::fs::remove_dir(&empty);
    println!("child: {child:?}, parent wrong: {wrong}");
    stashed > 0 && child == Some(0) && wrong == 0
}

/// As [`chroot_child`], one generation further: the chrooted child forks a
/// grandchild, whose fork handler cannot open `/proc/self/mem` (there is
/// no `/proc` in its root); the grandchild, single-threaded, lets the green
/// thread finish, and must restore the stack plainly, having learnt from
/// the kernel (`unshare(CLONE_VM)`), not from `/proc`, that it is alone:
/// which greenery asks only because the child, before its `chroot`, saw no
/// seccomp filter or tracer, and the grandchild inherits that. Then the
/// child lets it finish too.
fn chroot_grandchild() -> bool {
    let empty = std::env::temp_dir().join(format!("greenery-stash-chroot-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(100));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(20)); // the green thread is stashed
    let stashed = stack::stash_counts().stashed;
    println!("stashed before fork: {stashed}");
    // SAFETY: the child runs on in this process's code, single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::os::unix::fs::chroot(&empty).unwrap();
        std::env::set_current_dir("/").unwrap();
        // SAFETY: as above, one generation further.
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            let wrong = parked.get().unwrap();
            // SAFETY: ends the grandchild at once.
            unsafe { libc::_exit(if wrong == 0 { 0 } else { 1 }) };
        }
        let outcome = wait_for(grandchild, Duration::from_secs(30));
        let wrong = parked.get().unwrap();
        println!("grandchild: {outcome:?}, child wrong: {wrong}");
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(if outcome == Some(0) && wrong == 0 { 0 } else { 1 }) };
    }
    let child = wait_for(pid, Duration::from_secs(60));
    let wrong = parked.get().unwrap();
    let _ = std::fs::remove_dir(&empty);
    println!("child: {child:?}, parent wrong: {wrong}");
    stashed > 0 && child == Some(0) && wrong == 0
}

/// The address of a value on a parked green thread's stack, for the fork
/// handler (0: nothing to touch).
static LENT: AtomicU64 = AtomicU64::new(0);

extern "C" fn prepare_touches_lent() {
    let lent = LENT.load(Ordering::Acquire) as *const u64;
    if !lent.is_null() {
        // SAFETY: the address of a value on a live, parked green thread's
        // stack (inherited by this child process).
        let value = unsafe { std::ptr::read_volatile(lent) };
        assert_eq!(value, PATTERN);
    }
}

/// A forked child C (whose `/proc/self/mem` is not open yet: the
/// process-local page was wiped) forks a grandchild G, and a `pthread_atfork`
/// prepare handler that runs after greenery's (registered before it) touches
/// a stashed stack, which restores it and, in C, opens C's `/proc/self/mem`
/// after greenery's prepare handler ran. G must not keep that descriptor (a
/// read-write view of C's memory). (The same could happen without any fork
/// handler, with another thread of C restoring a stack, and so opening the
/// descriptor, between greenery's prepare handler and the fork system call.)
fn grandchild_inherits_memory_descriptor() -> bool {
    // SAFETY: the handler only reads memory.
    assert_eq!(unsafe { libc::pthread_atfork(Some(prepare_touches_lent), None, None) }, 0);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    static ADDR: AtomicU64 = AtomicU64::new(0);
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        ADDR.store(&values[5] as *const u64 as u64, Ordering::Release);
        greenery::sleep(Duration::from_millis(200));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(30)); // the green thread is stashed
    let stashed = stack::stash_counts().stashed;
    println!("stashed before fork: {stashed}");
    // SAFETY: the child forks again and exits; single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // In C: the stack is stashed (inherited), /proc/self/mem not open.
        LENT.store(ADDR.load(Ordering::Acquire), Ordering::Release);
        // SAFETY: the grandchild reads its descriptor table and exits.
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            // SAFETY: getppid has no preconditions.
            let parent = unsafe { libc::getppid() };
            let parents = format!("/proc/{parent}/mem");
            let leaked = std::fs::read_dir("/proc/self/fd")
                .map(|fds| {
                    fds.flatten()
                        .filter(|fd| {
                            std::fs::read_link(fd.path())
                                .is_ok_and(|target| target.to_string_lossy() == parents)
                        })
                        .count()
                })
                .unwrap_or(9);
            // SAFETY: ends the grandchild at once.
            unsafe { libc::_exit(leaked as libc::c_int) };
        }
        let leaked = wait_for(grandchild, Duration::from_secs(10));
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(leaked.unwrap_or(99)) };
    }
    let leaked = wait_for(pid, Duration::from_secs(30));
    let wrong = parked.get().unwrap();
    println!("descriptors of its parent's memory the grandchild kept: {leaked:?}; wrong: {wrong}");
    stashed > 0 && leaked == Some(0) && wrong == 0
}

/// How much alternate signal stack greenery's fault handler (kernel frame
/// included) takes on a thread that touches a stashed stack: it must fit,
/// with 2 KiB to spare, in the alternate stack std gives its threads
/// (`max(SIGSTKSZ, AT_MINSIGSTKSZ)`, 8 KiB on x86-64).
fn alt_stack_usage() -> bool {
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        let values = &values;
        std::thread::scope(|scope| {
            let toucher = scope.spawn(move || {
                const SIZE: usize = 64 * 1024;
                let mut alt = vec![0xa5u8; SIZE];
                let alt_stack = libc::stack_t { ss_sp: alt.as_mut_ptr().cast(), ss_flags: 0, ss_size: SIZE };
                // SAFETY: the buffer outlives its use as the alternate stack
                // (disabled below before it is freed).
                unsafe { assert_eq!(libc::sigaltstack(&alt_stack, std::ptr::null_mut()), 0) };
                let before = stack::stash_counts().restored_on_touch;
                let start = stack::stash_counts().stashed;
                while stack::stash_counts().stashed == start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let value = black_box(values)[9];
                let after = stack::stash_counts().restored_on_touch;
                let disable =
                    libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                // SAFETY: disables the alternate stack.
                unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
                let untouched = alt.iter().take_while(|&&b| b == 0xa5).count();
                let used = SIZE - untouched;
                println!(
                    "restored on touch: {}, value ok: {}, alt stack used: {used} bytes of std's {}",
                    after - before,
                    value == PATTERN,
                    std_sigstack_size()
                );
                assert_eq!(after - before, 1, "the touch restored the stack");
                assert_eq!(value, PATTERN);
                assert!(used + 2048 <= std_sigstack_size(), "the fault handler took {used} bytes");
            });
            for _ in 0..5 {
                greenery::sleep(Duration::from_millis(100));
            }
            toucher.join().unwrap();
        });
    })
    .get()
    .unwrap();
    true
}

/// The size of the alternate signal stacks std gives its threads.
fn std_sigstack_size() -> usize {
    const AT_MINSIGSTKSZ: libc::c_ulong = 51;
    // SAFETY: getauxval has no preconditions.
    let dynamic = unsafe { libc::getauxval(AT_MINSIGSTKSZ) } as usize;
    dynamic.max(libc::SIGSTKSZ)
}

/// Gives the calling thread an alternate signal stack of `size` bytes: the
/// returned buffer, to be kept until [`disable_alt_stack`].
fn large_alt_stack(size: usize) -> Vec<u8> {
    let mut alt = vec![0u8; size];
    let alt_stack = libc::stack_t { ss_sp: alt.as_mut_ptr().cast(), ss_flags: 0, ss_size: size };
    // SAFETY: the buffer lives until the thread has stopped using it (the
    // caller keeps it until it returns; see `disable_alt_stack`).
    unsafe { assert_eq!(libc::sigaltstack(&alt_stack, std::ptr::null_mut()), 0) };
    alt
}

/// Takes the calling thread off its alternate signal stack, before the
/// buffer given to [`large_alt_stack`] is freed.
fn disable_alt_stack() {
    let disable = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
    // SAFETY: disables the alternate stack (no signal handler runs on it
    // now: this is the thread's own code).
    unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
}

/// The SIGSEGV handler that was in place before [`install_chaining_handler`].
static PREVIOUS_SEGV: AtomicU64 = AtomicU64::new(0);

/// A SIGSEGV handler like the ones runtimes install after greenery's
/// (wasmtime's trap handler, for instance: `SA_SIGINFO | SA_NODEFER |
/// SA_ONSTACK`, an empty mask) that handles faults of its own and passes
/// every other one to the handler that was there before, by calling it.
extern "C" fn chaining_handler(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let previous = PREVIOUS_SEGV.load(Ordering::Acquire) as usize;
    // SAFETY: greenery's handler, installed with SA_SIGINFO.
    let previous: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        unsafe { std::mem::transmute(previous) };
    previous(signal, info, ctx);
}

fn install_chaining_handler() {
    // SAFETY: installs a handler that calls the previous one.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = chaining_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, &mut old), 0);
        assert!(old.sa_flags & libc::SA_SIGINFO != 0, "greenery's handler is installed first");
        PREVIOUS_SEGV.store(old.sa_sigaction as u64, Ordering::Release);
    }
}

static SIGNAL_LENT: AtomicU64 = AtomicU64::new(0);
static SIGNAL_WRONG: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    let lent = SIGNAL_LENT.load(Ordering::Acquire) as *const u64;
    if !lent.is_null() {
        // SAFETY: a value on a live green thread's stack (cleared before it
        // returns).
        let value = unsafe { std::ptr::read_volatile(lent) };
        SIGNAL_WRONG.fetch_add(u64::from(value != PATTERN), Ordering::Relaxed);
    }
}

/// The scenario of `stack_stash_races`' signal test (scoped threads read a
/// parked green thread's stack while SIGUSR1, whose handler reads it too,
/// hits them), with a SIGSEGV handler installed after greenery's that passes
/// faults on with an empty mask and `SA_NODEFER` (as wasmtime's does): its
/// `sa_mask`, not greenery's, is in force when greenery's handler runs. A
/// SIGUSR1 that landed while a reader was restoring the stack would fault
/// again on the range the restore made inaccessible, and the nested handler
/// would wait for the restore under way on that very thread: the thread,
/// the green thread's owner, and the process would hang. greenery's handler
/// blocks asynchronous signals itself, first thing.
///
/// The readers get large alternate signal stacks: the chaining handler lets
/// a SIGUSR1 in before greenery's handler has run its first instruction, and
/// the handlers then nest three kernel frames deep on the alternate stack
/// (nearly 3 KiB each with AVX-512), more than std's 8 KiB hold. That is
/// the chaining handler's doing, and `stash_after`'s documentation says so.
fn chained_handler_and_signal_during_restore() -> bool {
    stack::set_stash_after(Some(Duration::from_millis(1)));
    // Maps a stack, which installs greenery's handler, before ours.
    greenery::spawn(|| ()).get().unwrap();
    install_chaining_handler();
    // SAFETY: the handler only reads memory and atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
    }
    let (accesses, wrong) = greenery::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            // A large live frame: each restore takes a while.
            let values = black_box([PATTERN; 16 * 1024]);
            SIGNAL_LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
            let stop = std::sync::atomic::AtomicBool::new(false);
            let (values, stop) = (&values, &stop);
            let result = std::thread::scope(|scope| {
                let readers: Vec<_> = (0..2)
                    .map(|_| {
                        let (id, ids) = std::sync::mpsc::channel();
                        let reader = scope.spawn(move || {
                            let alt = large_alt_stack(256 * 1024);
                            // SAFETY: pthread_self has no preconditions.
                            id.send(unsafe { libc::pthread_self() }).unwrap();
                            let (mut accesses, mut wrong) = (0u64, 0u64);
                            while !stop.load(Ordering::Relaxed) {
                                accesses += 1;
                                wrong += u64::from(black_box(values)[7] != PATTERN);
                            }
                            // The signals stopped before `stop` was set.
                            disable_alt_stack();
                            drop(alt);
                            (accesses, wrong)
                        });
                        (ids.recv().unwrap(), reader)
                    })
                    .collect();
                let targets: Vec<libc::pthread_t> = readers.iter().map(|(id, _)| *id).collect();
                static STOP_SIGNALS: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                let signaller = std::thread::spawn(move || {
                    while !STOP_SIGNALS.load(Ordering::Relaxed) {
                        for &target in &targets {
                            // SAFETY: the targets are alive until the signals stop.
                            unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                        }
                        std::thread::sleep(Duration::from_micros(20));
                    }
                });
                let end = Instant::now() + Duration::from_secs(5);
                while Instant::now() < end {
                    greenery::sleep(Duration::from_millis(3));
                }
                STOP_SIGNALS.store(true, Ordering::Relaxed);
                signaller.join().unwrap();
                stop.store(true, Ordering::Relaxed);
                readers
                    .into_iter()
                    .map(|(_, reader)| reader.join().unwrap())
                    .fold((0, 0), |(a, w), (a2, w2)| (a + a2, w + w2))
            });
            SIGNAL_LENT.store(0, Ordering::Release);
            result
        })
        .get()
        .unwrap();
    let counts = stack::stash_counts();
    println!(
        "accesses={accesses} wrong={wrong} handler_wrong={} stashed={} on_touch={}",
        SIGNAL_WRONG.load(Ordering::Relaxed),
        counts.stashed,
        counts.restored_on_touch
    );
    wrong == 0 && SIGNAL_WRONG.load(Ordering::Relaxed) == 0
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        let ok = match scenario.as_str() {
            "chroot-child" => chroot_child(false),
            "chroot-child-threads" => chroot_child(true),
            "chroot-grandchild" => chroot_grandchild(),
            "grandchild-fd" => grandchild_inherits_memory_descriptor(),
            "alt-stack" => alt_stack_usage(),
            "chained-handler" => chained_handler_and_signal_during_restore(),
            other => panic!("unknown scenario {other}"),
        };
        std::process::exit(if ok { 0 } else { 1 });
    }
    if !supported() {
        println!("stashing unsupported here: nothing to test");
        return;
    }
    let mut failed = 0;
    for (test, scenario) in [
        ("a_chrooted_single_threaded_child_restores_its_inherited_stacks", "chroot-child"),
        ("a_chrooted_child_with_threads_restores_its_inherited_stacks", "chroot-child-threads"),
        ("the_child_of_a_chrooted_child_restores_its_inherited_stacks", "chroot-grandchild"),
        ("a_grandchild_does_not_keep_its_parents_memory_descriptor", "grandchild-fd"),
        ("a_restore_reached_through_a_chaining_segv_handler_survives_signals", "chained-handler"),
        ("the_fault_handler_fits_on_stds_alternate_signal_stack", "alt-stack"),
    ] {
        // SAFETY: getuid has no preconditions.
        if scenario.starts_with("chroot-") && unsafe { libc::getuid() } != 0 {
            println!("test {test} ... skipped (needs root for chroot)");
            continue;
        }
        let mut command = this_binary();
        command.env(SCENARIO, scenario);
        let outcome = support::run(command, Duration::from_secs(60));
        if outcome.status.success() {
            println!("test {test} ... ok");
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
