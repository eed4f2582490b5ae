//! Stashed stacks under fire from other OS threads: no thread may ever see a
//! stack partly stashed or partly restored.
//!
//! A green thread lends data on its stack to scoped OS threads
//! (`std::thread::scope`) and then parks in a loop, with the hub stashing
//! parked stacks after 1 ms. The scoped threads keep reading and writing the
//! lent data meanwhile, so stashes, restores by the owner (the green thread
//! waking) and restores by the fault handler (a scoped thread touching the
//! stashed stack) all race with their accesses, thousands of times per
//! scenario. Each scenario checks what safe code can observe: a pointer read
//! through a shared reference, an increment, a value, the bytes a system
//! call sends.
//!
//! A fork from another thread while stacks are being stashed leaves a child
//! that can use them.
//!
//! Every scenario runs in a child process (this binary, built without the
//! libtest harness, runs itself again), so that one that crashes is reported
//! as a failure with its output. Where stacks cannot be stashed (no guard
//! regions, qemu-user), the scenarios run briefly and check behaviour only.

use std::cell::Cell;
use std::hint::black_box;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use greenery::stack;
use support::{Outcome, this_binary};

mod support;

const SCENARIO: &str = "GREENERY_STASH_RACE_SCENARIO";

/// Whether stacks are stashed here.
fn supported() -> bool {
    stack::stash_after().is_some()
}

/// How long the green thread of a scenario keeps parking.
fn duration() -> Duration {
    if supported() { Duration::from_secs(3) } else { Duration::from_millis(200) }
}

/// Parks the calling green thread again and again for [`duration`]. With
/// stashing after 1 ms, most 3 ms parks are stashed (a parked green thread
/// is stashed after one to two periods).
fn park_repeatedly() {
    let end = Instant::now() + duration();
    while Instant::now() < end {
        greenery::sleep(Duration::from_millis(3));
    }
}

/// A value no stash or zero page produces by accident.
const PATTERN: u64 = 0x5a17_c0de_0bad_f00d;

/// A busy OS thread, unrelated to the stack, until `stop` is set: it makes
/// the scheduler preempt the threads that race.
fn busy(stop: &AtomicBool) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n = black_box(n.wrapping_add(1));
    }
}

/// What a scenario saw, printed by the child for the parent to check.
#[derive(Default)]
struct Seen {
    /// Accesses made to the lent data.
    accesses: u64,
    /// Of those, wrong ones (a wrong value read, an increment lost, a byte
    /// sent that was not the buffer's).
    wrong: u64,
}

fn run_scenario(name: &str) -> Seen {
    match name {
        "fork-prepare-touches-stack" => return fork_prepare_touches_stack(),
        "fork-after-dropping-privileges" => return fork_after_dropping_privileges(),
        "restore-at-the-mapping-limit" => return restore_at_the_mapping_limit(),
        "fork-child-with-the-parents-pid" => return fork_child_with_the_parents_pid(),
        "early-fork-child-with-the-parents-pid" => return early_fork_child_with_the_parents_pid(),
        "two-forkers" => return two_forkers(),
        "cancel-while-restoring" => return cancel_while_restoring(),
        "fork-handler-takes-a-lock" => return fork_handler_takes_a_lock(),
        "child-handler-touches-stack" => return child_handler_touches_stack(),
        "async-cancel-while-restoring" => return async_cancel_while_restoring(),
        "restore-under-a-data-limit" => return restore_under_a_data_limit(),
        "fork-while-restoring-after-dropping-privileges" => {
            return fork_while_restoring_after_dropping_privileges();
        }
        "child-keeps-no-parent-memory-descriptor" => return child_keeps_no_parent_memory_descriptor(),
        _ => {}
    }
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let name = name.to_string();
    greenery::spawn(move || match name.as_str() {
        "signal-handler-touches-stack" => signal_handler_touches_stack(),
        "box-read" => box_read(),
        "atomic-adds" => atomic_adds(),
        "read-during-owner-restore" => read_during_owner_restore(),
        "syscall-write" => syscall_write(),
        "syscall-write-no-stash" => syscall_write_no_stash(),
        "fork-while-stashing" => fork_while_stashing(),
        other => panic!("unknown scenario {other}"),
    })
    .get()
    .unwrap()
}

/// A `Box` on the parked stack, read through `&Box` by two scoped threads:
/// safe code that must always find the box's value.
fn box_read() -> Seen {
    let boxed = Box::new(PATTERN);
    let stop = AtomicBool::new(false);
    let (boxed, stop) = (&boxed, &stop);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || {
                    let mut seen = Seen::default();
                    while !stop.load(Ordering::Relaxed) {
                        // The reference is opaque to the optimiser, so the
                        // box's pointer is read from the stack every time.
                        let value: u64 = **black_box(boxed);
                        seen.accesses += 1;
                        seen.wrong += u64::from(value != PATTERN);
                    }
                    seen
                })
            })
            .collect();
        park_repeatedly();
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|reader| reader.join().unwrap()).fold(Seen::default(), add)
    })
}

/// Two scoped threads increment one `AtomicU64` on the parked stack: no
/// increment may be lost, whether it lands during a stash, while stashed,
/// or during a restore.
fn atomic_adds() -> Seen {
    let counter = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (counter, stop) = (&counter, &stop);
    let made = std::thread::scope(|scope| {
        let adders: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || {
                    let mut made = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        counter.fetch_add(1, Ordering::Relaxed);
                        made += 1;
                    }
                    made
                })
            })
            .collect();
        park_repeatedly();
        stop.store(true, Ordering::Relaxed);
        adders.into_iter().map(|adder| adder.join().unwrap()).sum::<u64>()
    });
    let counted = counter.load(Ordering::Relaxed);
    Seen { accesses: made, wrong: made.abs_diff(counted) }
}

/// One scoped thread reads values on the parked stack in bursts timed to
/// meet the owner's own restore (the green thread waking from each park),
/// with two unrelated busy threads on the machine.
fn read_during_owner_restore() -> Seen {
    // When the green thread next wakes, in µs after `start`; not on the
    // stack, so that the reader can wait for it without touching the stack.
    static WAKE_AT: AtomicU64 = AtomicU64::new(u64::MAX);
    static STOP: AtomicBool = AtomicBool::new(false);
    let start = Instant::now();
    let values = [PATTERN; 64];
    let values = &values;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| busy(&STOP));
        }
        let reader = scope.spawn(move || {
            let mut seen = Seen::default();
            let mut round = 0u64;
            while !STOP.load(Ordering::Relaxed) {
                round += 1;
                // A burst of 300 µs that starts up to 0.5 ms before or
                // after the wake (bursts that start early restore the stack
                // themselves, those that start late meet the owner's
                // restore or read after it).
                let offset = round * 769 % 1000;
                let wake = WAKE_AT.load(Ordering::Relaxed);
                let now = start.elapsed().as_micros() as u64;
                if wake == u64::MAX || now + 500 > wake + offset {
                    std::hint::spin_loop();
                    continue;
                }
                std::thread::sleep(Duration::from_micros(wake + offset - 500 - now));
                let burst_end = wake + offset - 200;
                while start.elapsed().as_micros() as u64 <= burst_end {
                    let value = black_box(values)[(round % 64) as usize];
                    seen.accesses += 1;
                    seen.wrong += u64::from(value != PATTERN);
                }
            }
            seen
        });
        let end = Instant::now() + duration();
        while Instant::now() < end {
            let park = Duration::from_millis(3);
            WAKE_AT.store((start.elapsed() + park).as_micros() as u64, Ordering::Relaxed);
            greenery::sleep(park);
        }
        STOP.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    })
}

/// A scoped thread writes a 16 KiB buffer on the parked stack to a socket;
/// another thread reads what arrives. A system call handed a stashed stack
/// may fail with `EFAULT` (documented), but every byte it does send must be
/// the buffer's.
fn syscall_write() -> Seen {
    syscall_write_from(&[0xa5u8; 16 * 1024])
}

/// The same, with the buffer's green thread holding a `NoStash` guard:
/// its stack stays in place, and no system call fails.
fn syscall_write_no_stash() -> Seen {
    let _keep = stack::NoStash::new();
    let seen = syscall_write_from(&[0xa5u8; 16 * 1024]);
    assert_eq!(stack::stash_counts().stashed, 0, "a green thread holding NoStash was stashed");
    seen
}

fn syscall_write_from(buffer: &[u8; 16 * 1024]) -> Seen {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let (mut sender, mut receiver) = UnixStream::pair().unwrap();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut seen = Seen::default();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match receiver.read(&mut chunk) {
                    Ok(0) => break seen,
                    Ok(n) => {
                        seen.accesses += n as u64;
                        seen.wrong += chunk[..n].iter().filter(|&&byte| byte != 0xa5).count() as u64;
                    }
                    Err(err) => panic!("reading the socket: {err}"),
                }
            }
        });
        scope.spawn(move || {
            let mut faults = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match sender.write(black_box(buffer)) {
                    Ok(_) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EFAULT) => faults += 1,
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(err) => panic!("writing the socket: {err}"),
                }
            }
            println!("efault: {faults}");
            drop(sender);
        });
        park_repeatedly();
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    })
}

/// Another OS thread forks again and again while the hub stashes and
/// restores the stack it writes to. Each child increments the lent counter
/// (a write to the stack, which may be stashed in the child, or have been
/// halfway through a stash or restore without the fork gate) and exits with
/// its low bits and whether it restored the stack; a child that hangs is
/// killed and counted as wrong.
fn fork_while_stashing() -> Seen {
    // The flag is not on the stack: the forking thread must not touch the
    // stack itself (that would restore it before each fork).
    static STOP: AtomicBool = AtomicBool::new(false);
    let counter = AtomicU64::new(PATTERN);
    let counter = &counter;
    std::thread::scope(|scope| {
        let forker = scope.spawn(move || {
            let mut seen = Seen::default();
            let mut restored_in_child = 0u64;
            while !STOP.load(Ordering::Relaxed) {
                // SAFETY: the child calls only async-signal-safe functions
                // (an atomic add on mapped memory, whose fault handler is
                // async-signal-safe, and _exit).
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let after = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    // Whether the child found the stack stashed and restored
                    // it, in bit 6 of the exit code.
                    let restored = stack::stash_counts().restored_on_touch > 0;
                    // SAFETY: _exit ends the child without running anything.
                    unsafe { libc::_exit((after & 0x3f) as libc::c_int | i32::from(restored) << 6) };
                }
                assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
                seen.accesses += 1;
                match wait_for(pid, Duration::from_secs(5)) {
                    Some(code) => {
                        seen.wrong += u64::from(code & 0x3f != ((PATTERN + 1) & 0x3f) as i32);
                        if code & 0x40 != 0 {
                            restored_in_child += 1;
                        }
                    }
                    None => {
                        println!("child {pid} hung");
                        seen.wrong += 1;
                    }
                }
            }
            println!("children_that_restored: {restored_in_child}");
            seen
        });
        park_repeatedly();
        STOP.store(true, Ordering::Relaxed);
        forker.join().unwrap()
    })
}

/// Where the lent data of the signal and fork scenarios lies, for handlers
/// that have no other way to reach it.
static LENT: AtomicU64 = AtomicU64::new(0);

/// Reads the lent value (if any) and counts a wrong one in `WRONG`.
fn touch_lent() {
    let lent = LENT.load(Ordering::Acquire) as *const u64;
    if !lent.is_null() {
        // SAFETY: the scenarios publish the address of a value on a live
        // green thread's stack, and clear it before that thread returns.
        let value = unsafe { std::ptr::read_volatile(lent) };
        HANDLER_TOUCHES.fetch_add(1, Ordering::Relaxed);
        HANDLER_WRONG.fetch_add(u64::from(value != PATTERN), Ordering::Relaxed);
    }
}

static HANDLER_TOUCHES: AtomicU64 = AtomicU64::new(0);
static HANDLER_WRONG: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    touch_lent();
}

fn install_sigusr1() {
    // SAFETY: the handler only reads memory and atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
    }
}

/// Two scoped threads read the lent stack while a third OS thread sends
/// them SIGUSR1 every few microseconds, and the handler reads the lent
/// value too: the handler runs while greenery's fault handler waits for a
/// stash or restore, on the same thread, and must not kill the process
/// (nor see a wrong value).
fn signal_handler_touches_stack() -> Seen {
    install_sigusr1();
    let values = [PATTERN; 64];
    LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
    let stop = AtomicBool::new(false);
    let (values, stop) = (&values, &stop);
    let seen = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (id, ids) = std::sync::mpsc::channel();
                let reader = scope.spawn(move || {
                    // SAFETY: pthread_self has no preconditions.
                    id.send(unsafe { libc::pthread_self() }).unwrap();
                    let mut seen = Seen::default();
                    while !stop.load(Ordering::Relaxed) {
                        let value = black_box(values)[7];
                        seen.accesses += 1;
                        seen.wrong += u64::from(value != PATTERN);
                    }
                    seen
                });
                (ids.recv().unwrap(), reader)
            })
            .collect();
        let targets: Vec<libc::pthread_t> = readers.iter().map(|(id, _)| *id).collect();
        // The signalling thread does not touch the stack: its flag is static.
        static STOP_SIGNALS: AtomicBool = AtomicBool::new(false);
        let signaller = std::thread::spawn(move || {
            while !STOP_SIGNALS.load(Ordering::Relaxed) {
                for &target in &targets {
                    // SAFETY: the targets are scoped threads, alive until
                    // the signals stop.
                    unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        });
        park_repeatedly();
        STOP_SIGNALS.store(true, Ordering::Relaxed);
        signaller.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|(_, reader)| reader.join().unwrap()).fold(Seen::default(), add)
    });
    LENT.store(0, Ordering::Release);
    let touches = HANDLER_TOUCHES.load(Ordering::Relaxed);
    println!("handler_touches: {touches}");
    add(seen, Seen { accesses: touches, wrong: HANDLER_WRONG.load(Ordering::Relaxed) })
}

extern "C" fn prepare_touches_lent() {
    touch_lent();
}

/// A `pthread_atfork` prepare handler registered before greenery's (so it
/// runs after greenery's has closed the fork gate) touches a stashed stack:
/// the forking thread must restore it itself rather than wait for its own
/// fork.
fn fork_prepare_touches_stack() -> Seen {
    // SAFETY: the handler only reads memory and atomics.
    assert_eq!(unsafe { libc::pthread_atfork(Some(prepare_touches_lent), None, None) }, 0);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| {
        let values = [PATTERN; 64];
        LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
        let _keep = black_box(&values);
        let mut seen = Seen::default();
        for _ in 0..if supported() { 50 } else { 5 } {
            // A fork from another thread while this green thread is parked
            // long enough to be stashed.
            let forker = std::thread::spawn(|| {
                // By then the green thread, parked below, is stashed.
                std::thread::sleep(Duration::from_millis(10));
                // SAFETY: the child only calls _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(0) };
                }
                wait_for(pid, Duration::from_secs(10))
            });
            // The green thread waits on the hub (not blocking it): the
            // fork's prepare handler may need the stack restored meanwhile.
            greenery::sleep(Duration::from_millis(20));
            while !forker.is_finished() {
                greenery::sleep(Duration::from_millis(1));
            }
            seen.accesses += 1;
            seen.wrong += u64::from(forker.join().unwrap() != Some(0));
        }
        LENT.store(0, Ordering::Release);
        println!("handler_touches: {}", HANDLER_TOUCHES.load(Ordering::Relaxed));
        add(seen, Seen { accesses: 0, wrong: HANDLER_WRONG.load(Ordering::Relaxed) })
    })
    .get()
    .unwrap()
}

/// A program that drops privileges (it becomes non-dumpable, so its
/// children cannot open `/proc/self/mem`) and forks: the child restores the
/// stashed stacks it inherited (plainly: it has one thread) and its green
/// threads carry on.
fn fork_after_dropping_privileges() -> Seen {
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(100));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(20)); // the green thread is stashed
    // A process that is not dumpable cannot open its own memory, unless it
    // may trace any process (root can): root gives up its user and group.
    // SAFETY: these calls only change the process's credentials and flags.
    unsafe {
        if libc::getuid() == 0 {
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
        } else {
            assert_eq!(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0), 0);
        }
    }
    // SAFETY: the child runs on in this process's code (it has one thread,
    // this one, and greenery's handlers for what the fork interrupted).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let wrong = parked.get().unwrap();
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(if wrong == 0 { 0 } else { 1 }) };
    }
    let child = wait_for(pid, Duration::from_secs(30));
    let wrong = parked.get().unwrap();
    println!("child: {child:?}");
    Seen { accesses: 2, wrong: wrong + u64::from(child != Some(0)) }
}

/// The process reaches `vm.max_map_count` while a stack is stashed (other
/// code maps memory until the kernel refuses): the restore has no mapping
/// to spare, and with a single thread, it restores the stack plainly
/// instead of aborting.
fn restore_at_the_mapping_limit() -> Seen {
    // The monitor's thread would make this process multi-threaded: keep it
    // off, so that the stash sees a single thread.
    greenery::hub::set_max_blocking_time(None);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(50));
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(20)); // the green thread is stashed
    let page = 4096;
    let mut maps = Vec::new();
    loop {
        // Alternate protections, so that neighbouring pages do not merge.
        let prot = if maps.len() % 2 == 0 { libc::PROT_READ } else { libc::PROT_READ | libc::PROT_WRITE };
        // SAFETY: a fresh private anonymous page.
        let map = unsafe {
            libc::mmap(std::ptr::null_mut(), page, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if map == libc::MAP_FAILED {
            break;
        }
        maps.push(map);
    }
    let made = maps.len();
    let wrong = parked.get().unwrap();
    for map in maps {
        // SAFETY: the pages mapped above, unused.
        unsafe { libc::munmap(map, page) };
    }
    println!("mappings_made: {made}");
    Seen { accesses: 1, wrong }
}

/// A forked child whose pid is its parent's (the parent is pid 1 of its pid
/// namespace, the child pid 1 of a new one) restores a stack it inherited
/// stashed: into its own memory, never through the parent's open
/// `/proc/self/mem`. Run as pid 1 of a namespace of its own (`unshare`).
fn fork_child_with_the_parents_pid() -> Seen {
    println!("pid={}", std::process::id());
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let mut values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(30)); // stashed meanwhile
        for value in values.iter_mut() {
            *value = !PATTERN;
        }
        let _keep = stack::NoStash::new();
        greenery::sleep(Duration::from_millis(300));
        black_box(&values).iter().filter(|&&value| value != !PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(15)); // the green thread is stashed
    // SAFETY: the new namespace applies to this process's children only.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWPID) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    // SAFETY: the child runs on in this process's code, single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: getpid has no preconditions.
        assert_eq!(unsafe { libc::getpid() }, 1);
        // Wakes after the parent's green thread has restored its stack and
        // written to it.
        std::thread::sleep(Duration::from_millis(100));
        let wrong = parked.get().unwrap();
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(if wrong == 0 { 0 } else { 1 }) };
    }
    let wrong = parked.get().unwrap();
    let child = wait_for(pid, Duration::from_secs(30));
    println!("child: {child:?}");
    Seen { accesses: 2, wrong: wrong + u64::from(child != Some(0)) }
}

/// As [`fork_child_with_the_parents_pid`], with the fork made after
/// greenery opened `/proc/self/mem` (its probe, at the first park) and
/// before anything was stashed: the child must not inherit the descriptor
/// unseen.
fn early_fork_child_with_the_parents_pid() -> Seen {
    const PARENT: u64 = 0x1111_2222_3333_4444;
    println!("pid={}", std::process::id());
    stack::set_stash_after(Some(Duration::from_millis(200)));
    greenery::sleep(Duration::from_millis(1)); // probes /proc/self/mem
    // SAFETY: the new namespace applies to this process's children only.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWPID) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    // SAFETY: the child runs on in this process's code, single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        stack::set_stash_after(Some(Duration::from_millis(1)));
        let wrong = greenery::spawn(|| {
            let values = black_box([PATTERN; 512]);
            greenery::sleep(Duration::from_millis(400)); // stashed meanwhile
            black_box(&values).iter().filter(|&&value| value != PATTERN).count()
        })
        .get()
        .unwrap();
        let restored = stack::stash_counts().restored;
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(if wrong == 0 && restored > 0 { 0 } else { 1 }) };
    }
    // The parent's green thread, on the slot the child's uses.
    let wrong = greenery::spawn(|| {
        let _keep = stack::NoStash::new();
        let values = black_box([PARENT; 512]);
        greenery::sleep(Duration::from_millis(800));
        black_box(&values).iter().filter(|&&value| value != PARENT).count() as u64
    })
    .get()
    .unwrap();
    let child = wait_for(pid, Duration::from_secs(30));
    println!("child: {child:?}");
    Seen { accesses: 2, wrong: wrong + u64::from(child != Some(0)) }
}

thread_local! {
    /// Whether this thread's forks touch the lent stack in their prepare
    /// handler ([`two_forkers`]).
    static TOUCH_WHEN_FORKING: Cell<bool> = const { Cell::new(false) };
}

extern "C" fn prepare_touches_lent_on_some_threads() {
    if TOUCH_WHEN_FORKING.with(Cell::get) {
        touch_lent();
    }
}

/// Two threads fork at once, again and again, while a green thread with a
/// large stack is stashed and restored: one thread's forks touch the stack
/// in a prepare handler that runs after greenery's (so that thread restores
/// it while its fork waits), the other's do not. No child may inherit a
/// stack halfway through that restore.
fn two_forkers() -> Seen {
    // SAFETY: the handler only reads memory and atomics.
    assert_eq!(unsafe { libc::pthread_atfork(Some(prepare_touches_lent_on_some_threads), None, None) }, 0);
    static STOP: AtomicBool = AtomicBool::new(false);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    fn forker(touch: bool) -> Seen {
        TOUCH_WHEN_FORKING.with(|flag| flag.set(touch));
        let mut seen = Seen::default();
        while !STOP.load(Ordering::Relaxed) {
            // SAFETY: the child reads mapped memory (the handler that may
            // restore it is async-signal-safe) and calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let lent = LENT.load(Ordering::Acquire) as *const u64;
                // SAFETY: the lent value outlives the forks (see below).
                let value = unsafe { std::ptr::read_volatile(lent) };
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(if value == PATTERN { 0 } else { 1 }) };
            }
            seen.accesses += 1;
            if wait_for(pid, Duration::from_secs(5)) != Some(0) {
                println!(
                    "child {pid} of the {} forker failed or hung",
                    if touch { "touching" } else { "quiet" }
                );
                seen.wrong += 1;
            }
        }
        seen
    }
    greenery::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            // A large live frame makes each restore take a while.
            let values = [PATTERN; 64 * 1024];
            LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
            let _keep = black_box(&values);
            let touching = std::thread::spawn(|| forker(true));
            let quiet = std::thread::spawn(|| forker(false));
            park_repeatedly();
            STOP.store(true, Ordering::Relaxed);
            while !(touching.is_finished() && quiet.is_finished()) {
                greenery::sleep(Duration::from_millis(1));
            }
            let seen = add(touching.join().unwrap(), quiet.join().unwrap());
            LENT.store(0, Ordering::Release);
            seen
        })
        .get()
        .unwrap()
}

/// A thread with a cancellation request pending (deferred, the default)
/// touches a stashed stack: the restore in the fault handler must not be a
/// cancellation point (the thread would be cancelled halfway through it,
/// unwinding through the handler, which aborts the process).
fn cancel_while_restoring() -> Seen {
    extern "C" fn toucher(_: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: a cancellation request to this very thread, acted on at
        // its next cancellation point.
        unsafe { libc::pthread_cancel(libc::pthread_self()) };
        let lent = LENT.load(Ordering::Acquire) as *const u64;
        // SAFETY: the lent value lives on the parked green thread's stack
        // until the thread is joined. No cancellation point in between.
        let value = unsafe { std::ptr::read_volatile(lent) };
        (value == PATTERN) as usize as *mut libc::c_void
    }
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| {
        let value = black_box(PATTERN);
        LENT.store(&value as *const u64 as u64, Ordering::Release);
        let thread = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50)); // the green thread is stashed
            let mut toucher_thread: libc::pthread_t = 0;
            // SAFETY: a plain thread running an `extern "C"` function; joined
            // below.
            unsafe {
                assert_eq!(
                    libc::pthread_create(
                        &mut toucher_thread,
                        std::ptr::null(),
                        toucher,
                        std::ptr::null_mut()
                    ),
                    0
                );
                let mut outcome = std::ptr::null_mut();
                libc::pthread_join(toucher_thread, &mut outcome);
                // Cancelled at its exit (glibc's PTHREAD_CANCELED is -1) or
                // read the value: either way the process is alive.
                outcome as isize == -1 || outcome as usize == 1
            }
        });
        greenery::sleep(Duration::from_millis(100));
        let joined = loop {
            if thread.is_finished() {
                break thread.join().unwrap();
            }
            greenery::sleep(Duration::from_millis(1));
        };
        LENT.store(0, Ordering::Release);
        Seen { accesses: 1, wrong: u64::from(!joined || black_box(value) != PATTERN) }
    })
    .get()
    .unwrap()
}

/// A pthread mutex, for a library's fork handlers.
struct ForkLock(std::cell::UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads.
unsafe impl Sync for ForkLock {}

static FORK_LOCK: ForkLock = ForkLock(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

extern "C" fn lock_fork_lock() {
    // SAFETY: a static, initialised mutex.
    unsafe { libc::pthread_mutex_lock(FORK_LOCK.0.get()) };
}

extern "C" fn unlock_fork_lock() {
    // SAFETY: as above; locked by the prepare handler.
    unsafe { libc::pthread_mutex_unlock(FORK_LOCK.0.get()) };
}

/// A library's fork handlers take its lock (prepare) and release it
/// (parent, child), the usual pattern; a thread holding that lock touches a
/// stashed stack while another thread forks. The touch must not wait for
/// the fork (which waits for the lock).
fn fork_handler_takes_a_lock() -> Seen {
    // SAFETY: the handlers only lock and unlock a static mutex.
    let rc =
        unsafe { libc::pthread_atfork(Some(lock_fork_lock), Some(unlock_fork_lock), Some(unlock_fork_lock)) };
    assert_eq!(rc, 0);
    static FORK_NOW: AtomicBool = AtomicBool::new(false);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| {
        let values = [PATTERN; 64];
        LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
        let _keep = black_box(&values);
        let mut seen = Seen::default();
        for _ in 0..if supported() { 20 } else { 2 } {
            FORK_NOW.store(false, Ordering::SeqCst);
            let toucher = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(10)); // the green thread is stashed
                // SAFETY: a static, initialised mutex, unlocked below.
                unsafe { libc::pthread_mutex_lock(FORK_LOCK.0.get()) };
                FORK_NOW.store(true, Ordering::SeqCst);
                // The forker gets to its prepare handlers meanwhile.
                std::thread::sleep(Duration::from_millis(10));
                touch_lent();
                // SAFETY: locked above.
                unsafe { libc::pthread_mutex_unlock(FORK_LOCK.0.get()) };
            });
            let forker = std::thread::spawn(|| {
                while !FORK_NOW.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_micros(100));
                }
                // SAFETY: the child only calls _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(0) };
                }
                wait_for(pid, Duration::from_secs(10))
            });
            // Parked (and stashed) while the threads work.
            greenery::sleep(Duration::from_millis(60));
            while !(toucher.is_finished() && forker.is_finished()) {
                greenery::sleep(Duration::from_millis(5));
            }
            toucher.join().unwrap();
            seen.accesses += 1;
            seen.wrong += u64::from(forker.join().unwrap() != Some(0));
        }
        LENT.store(0, Ordering::Release);
        println!("handler_touches: {}", HANDLER_TOUCHES.load(Ordering::Relaxed));
        add(seen, Seen { accesses: 0, wrong: HANDLER_WRONG.load(Ordering::Relaxed) })
    })
    .get()
    .unwrap()
}

extern "C" fn child_touches_lent() {
    let lent = LENT.load(Ordering::Acquire) as *const u64;
    if !lent.is_null() {
        // SAFETY: the lent value lives on the parent's parked green thread's
        // stack, copied into the child.
        let value = unsafe { std::ptr::read_volatile(lent) };
        if value != PATTERN {
            // SAFETY: ends the child, reporting the wrong value.
            unsafe { libc::_exit(3) };
        }
    }
}

/// A library's child fork handler, registered before greenery's (so it
/// runs first in the child), touches a stack that was stashed when the
/// fork happened: the child restores it, without waiting for anything of
/// the parent's.
fn child_handler_touches_stack() -> Seen {
    // SAFETY: the handler reads memory and may call _exit.
    assert_eq!(unsafe { libc::pthread_atfork(None, None, Some(child_touches_lent)) }, 0);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::spawn(|| {
        let values = [PATTERN; 64];
        LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
        let _keep = black_box(&values);
        let mut seen = Seen::default();
        for _ in 0..if supported() { 20 } else { 2 } {
            let forker = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(10)); // the green thread is stashed
                // SAFETY: the child runs the fork handlers, then _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(0) };
                }
                wait_for(pid, Duration::from_secs(10))
            });
            while !forker.is_finished() {
                greenery::sleep(Duration::from_millis(20));
            }
            seen.accesses += 1;
            seen.wrong += u64::from(forker.join().unwrap() != Some(0));
        }
        LENT.store(0, Ordering::Release);
        seen
    })
    .get()
    .unwrap()
}

unsafe extern "C" {
    fn pthread_setcanceltype(kind: libc::c_int, old: *mut libc::c_int) -> libc::c_int;
}

/// Reads the lent stack in a loop, cancellable at any instruction.
/// "C-unwind": a cancellation unwinds out of it (it has nothing to drop).
extern "C-unwind" fn async_cancellable_reader(_: *mut libc::c_void) -> *mut libc::c_void {
    let mut old = 0;
    // SAFETY: sets this thread's cancellation type (1: asynchronous).
    unsafe { pthread_setcanceltype(1, &mut old) };
    READER_STARTED.store(true, Ordering::SeqCst);
    // Only atomics in the loop: the cancellation may unwind from any
    // instruction, and must not meet a frame that cannot be unwound (in
    // debug builds, `read_volatile`'s checks are such frames).
    loop {
        let lent = LENT.load(Ordering::Relaxed) as *const AtomicU64;
        if !lent.is_null() {
            // SAFETY: the lent value lives on the parked green thread's
            // stack while readers run; nothing writes it.
            let value = unsafe { &*lent }.load(Ordering::Relaxed);
            HANDLER_WRONG.fetch_add(u64::from(value != PATTERN), Ordering::Relaxed);
        }
    }
}

static READER_STARTED: AtomicBool = AtomicBool::new(false);

/// Threads with asynchronous cancellation read a large lent stack, and are
/// cancelled at varying moments just after it was stashed (while they are
/// likely restoring it in the fault handler): the process must survive, and
/// no read may be wrong.
fn async_cancel_while_restoring() -> Seen {
    stack::set_stash_after(Some(Duration::from_millis(1)));
    greenery::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            // A large live frame: each restore takes a while.
            let values = [PATTERN; 256 * 1024];
            LENT.store(&values[1000] as *const u64 as u64, Ordering::Release);
            let _keep = black_box(&values);
            let canceller = std::thread::spawn(|| {
                let mut seen = Seen::default();
                for round in 0..if supported() { 200u64 } else { 5 } {
                    READER_STARTED.store(false, Ordering::SeqCst);
                    let mut reader: libc::pthread_t = 0;
                    // SAFETY: the reader is `extern "C-unwind"`, which has
                    // the C calling convention pthread_create expects.
                    let start: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void = unsafe {
                        std::mem::transmute(async_cancellable_reader as extern "C-unwind" fn(_) -> _)
                    };
                    // SAFETY: a plain thread, joined below.
                    let rc = unsafe {
                        libc::pthread_create(&mut reader, std::ptr::null(), start, std::ptr::null_mut())
                    };
                    assert_eq!(rc, 0);
                    while !READER_STARTED.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                    // Wait for the next stash, then a varying moment.
                    let before = stack::stash_counts().stashed;
                    let deadline = Instant::now() + Duration::from_millis(500);
                    while stack::stash_counts().stashed == before && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                    let moment = Instant::now() + Duration::from_micros(round % 40 * 5);
                    while Instant::now() < moment {
                        std::hint::spin_loop();
                    }
                    let mut outcome = std::ptr::null_mut();
                    // SAFETY: cancels and joins the reader made above.
                    unsafe {
                        libc::pthread_cancel(reader);
                        libc::pthread_join(reader, &mut outcome);
                    }
                    seen.accesses += 1;
                    seen.wrong += u64::from(outcome as isize != -1);
                }
                seen
            });
            while !canceller.is_finished() {
                greenery::sleep(Duration::from_millis(4));
            }
            let seen = canceller.join().unwrap();
            LENT.store(0, Ordering::Release);
            add(seen, Seen { accesses: 0, wrong: HANDLER_WRONG.load(Ordering::Relaxed) })
        })
        .get()
        .unwrap()
}

/// The program lowers `RLIMIT_DATA` below what it uses while a stack is
/// stashed: the restore must not fail (a range made inaccessible for the
/// restore counts against the limit again when it is made writable).
fn restore_under_a_data_limit() -> Seen {
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parked = greenery::spawn(|| {
        let values = black_box([PATTERN; 64]);
        greenery::sleep(Duration::from_millis(100)); // stashed meanwhile
        black_box(&values).iter().filter(|&&value| value != PATTERN).count() as u64
    });
    greenery::sleep(Duration::from_millis(20));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let data_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmData:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap();
    let limit = libc::rlimit { rlim_cur: data_kib * 1024 - 4096, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) }, 0);
    let wrong = parked.get().unwrap();
    Seen { accesses: 1, wrong }
}

/// Drops the process's privileges (it becomes non-dumpable: its children
/// cannot open `/proc/self/mem`): root gives up its user and group; others
/// clear the dumpable flag.
fn drop_privileges() {
    // SAFETY: these calls only change the process's credentials and flags.
    unsafe {
        if libc::getuid() == 0 {
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
        } else {
            assert_eq!(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0), 0);
        }
    }
}

/// A process that dropped privileges after it opened `/proc/self/mem` forks
/// again and again while another thread restores a large stashed stack on
/// touch: a child that inherits a restore half done (the range
/// inaccessible) and cannot open `/proc/self/mem` finishes it plainly, and
/// reads the right value.
fn fork_while_restoring_after_dropping_privileges() -> Seen {
    static STOP: AtomicBool = AtomicBool::new(false);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let _ = stack::stash_after(); // /proc/self/mem is open from here on
    drop_privileges();
    greenery::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            // A large live frame: each restore takes a while.
            let values = [PATTERN; 64 * 1024];
            LENT.store(&values[7] as *const u64 as u64, Ordering::Release);
            let _keep = black_box(&values);
            let reader = std::thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    touch_lent();
                }
            });
            let forker = std::thread::spawn(|| {
                let mut seen = Seen::default();
                while !STOP.load(Ordering::Relaxed) {
                    // SAFETY: the child reads mapped memory (its fault
                    // handler is async-signal-safe) and calls _exit.
                    let pid = unsafe { libc::fork() };
                    if pid == 0 {
                        let lent = LENT.load(Ordering::Acquire) as *const u64;
                        // SAFETY: the lent value, copied into the child.
                        let value = unsafe { std::ptr::read_volatile(lent) };
                        // SAFETY: ends the child at once.
                        unsafe { libc::_exit(if value == PATTERN { 0 } else { 1 }) };
                    }
                    seen.accesses += 1;
                    if wait_for(pid, Duration::from_secs(5)) != Some(0) {
                        seen.wrong += 1;
                    }
                }
                seen
            });
            park_repeatedly();
            STOP.store(true, Ordering::Relaxed);
            while !(reader.is_finished() && forker.is_finished()) {
                greenery::sleep(Duration::from_millis(1));
            }
            reader.join().unwrap();
            let seen = forker.join().unwrap();
            LENT.store(0, Ordering::Release);
            add(seen, Seen { accesses: 0, wrong: HANDLER_WRONG.load(Ordering::Relaxed) })
        })
        .get()
        .unwrap()
}

extern "C" fn child_touches_lent_quietly() {
    touch_lent();
}

/// A child fork handler registered before greenery's restores a stashed
/// stack (opening the child's own `/proc/self/mem` before greenery's handler
/// runs): the child still closes the parent's descriptor, a read-write view
/// of the parent's memory.
fn child_keeps_no_parent_memory_descriptor() -> Seen {
    // SAFETY: the handler only reads memory and atomics.
    assert_eq!(unsafe { libc::pthread_atfork(None, None, Some(child_touches_lent_quietly)) }, 0);
    stack::set_stash_after(Some(Duration::from_millis(1)));
    let parent = std::process::id();
    greenery::spawn(move || {
        let values = [PATTERN; 64];
        LENT.store(&values[3] as *const u64 as u64, Ordering::Release);
        let _keep = black_box(&values);
        let forker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20)); // the green thread is stashed
            // SAFETY: the child reads its fd table and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
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
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(leaked as libc::c_int) };
            }
            wait_for(pid, Duration::from_secs(10))
        });
        while !forker.is_finished() {
            greenery::sleep(Duration::from_millis(50));
        }
        let leaked = forker.join().unwrap();
        LENT.store(0, Ordering::Release);
        println!("handler_touches: {}", HANDLER_TOUCHES.load(Ordering::Relaxed));
        Seen { accesses: 1, wrong: u64::from(leaked != Some(0)) }
    })
    .get()
    .unwrap()
}

/// Waits up to `timeout` for child `pid` to exit; its exit code, or `None`
/// if it was still running (it is then killed) or died of a signal.
fn wait_for(pid: libc::pid_t, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child, writing `status`.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn add(a: Seen, b: Seen) -> Seen {
    Seen { accesses: a.accesses + b.accesses, wrong: a.wrong + b.wrong }
}

fn run_child(scenario: &str) -> Outcome {
    let mut command = this_binary();
    command.env(SCENARIO, scenario);
    support::run(command, Duration::from_secs(120))
}

/// A number printed by the child after `label`.
fn printed(outcome: &Outcome, label: &str) -> Option<u64> {
    let at = outcome.stdout.find(label)? + label.len();
    outcome.stdout[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Scenarios that stash a few stacks, not thousands.
const ONE_STASH: [&str; 10] = [
    "fork-prepare-touches-stack",
    "fork-after-dropping-privileges",
    "restore-at-the-mapping-limit",
    "cancel-while-restoring",
    "two-forkers",
    "fork-handler-takes-a-lock",
    "child-handler-touches-stack",
    "async-cancel-while-restoring",
    "restore-under-a-data-limit",
    "child-keeps-no-parent-memory-descriptor",
];

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        let seen = run_scenario(&scenario);
        let counts = stack::stash_counts();
        println!(
            "accesses={} wrong={} stashed={} shared={} restored={} on_touch={}",
            seen.accesses,
            seen.wrong,
            counts.stashed,
            counts.stashed_shared,
            counts.restored,
            counts.restored_on_touch
        );
        return;
    }
    let scenarios = [
        ("a_box_read_through_a_shared_reference_always_holds_its_value", "box-read"),
        ("increments_from_other_threads_are_never_lost", "atomic-adds"),
        ("reads_that_meet_the_owners_restore_see_the_contents", "read-during-owner-restore"),
        ("a_system_call_sends_the_buffer_or_fails_never_zeros", "syscall-write"),
        ("a_stack_held_with_no_stash_is_not_stashed_and_system_calls_succeed", "syscall-write-no-stash"),
        ("a_fork_while_stacks_are_stashed_leaves_a_working_child", "fork-while-stashing"),
        ("a_signal_handler_that_touches_the_stack_during_a_stash_is_safe", "signal-handler-touches-stack"),
        ("a_fork_whose_prepare_handler_touches_a_stashed_stack_goes_on", "fork-prepare-touches-stack"),
        (
            "a_child_of_a_process_that_dropped_privileges_restores_its_stacks",
            "fork-after-dropping-privileges",
        ),
        ("a_restore_at_the_mapping_limit_with_one_thread_goes_on", "restore-at-the-mapping-limit"),
        ("two_threads_forking_at_once_never_copy_a_half_restored_stack", "two-forkers"),
        ("a_thread_with_a_cancellation_pending_restores_a_stack_whole", "cancel-while-restoring"),
        (
            "a_touch_by_a_thread_holding_a_fork_handlers_lock_does_not_wait_for_the_fork",
            "fork-handler-takes-a-lock",
        ),
        ("a_child_fork_handler_that_runs_first_restores_a_stashed_stack", "child-handler-touches-stack"),
        ("an_asynchronous_cancellation_cannot_interrupt_a_restore", "async-cancel-while-restoring"),
        ("a_restore_under_a_lowered_data_limit_goes_on", "restore-under-a-data-limit"),
        (
            "a_child_that_cannot_open_its_memory_finishes_a_restore_it_inherited",
            "fork-while-restoring-after-dropping-privileges",
        ),
        ("a_child_closes_its_parents_memory_descriptor", "child-keeps-no-parent-memory-descriptor"),
    ];
    let mut failures = Vec::new();
    for (test, scenario) in scenarios {
        // The sanitizer maps memory of its own, which fails at the limit.
        if cfg!(greenery_asan) && scenario == "restore-at-the-mapping-limit" {
            println!("test {test} ... not run with AddressSanitizer (it maps memory of its own)");
            continue;
        }
        // Where stacks are not stashed (emulators such as qemu-user) there is
        // no restore to test, and the emulator itself fails at the limit.
        if !supported() && scenario == "restore-at-the-mapping-limit" {
            println!("test {test} ... not run: stacks are not stashed here");
            continue;
        }
        let outcome = run_child(scenario);
        let accesses = printed(&outcome, "accesses=");
        let wrong = printed(&outcome, "wrong=");
        let stashed = printed(&outcome, "stashed=").unwrap_or(0);
        let mut problems = Vec::new();
        if !outcome.status.success() {
            problems.push(format!("the child failed ({})", outcome.status));
        }
        if wrong != Some(0) {
            problems.push(format!("{wrong:?} wrong accesses of {accesses:?}"));
        }
        if accesses.unwrap_or(0) == 0 {
            problems.push("no access was made".to_string());
        }
        // The race has to have been run: many stashes with other threads
        // (and children that found the stack stashed).
        if scenario == "syscall-write-no-stash" {
            if printed(&outcome, "efault: ") != Some(0) {
                problems.push("a write failed with EFAULT".to_string());
            }
        } else if supported() && stashed < 100 && !ONE_STASH.contains(&scenario) {
            problems.push(format!("only {stashed} stashes"));
        } else if supported() && stashed == 0 {
            problems.push("nothing was stashed".to_string());
        }
        if supported()
            && ["signal-handler-touches-stack", "fork-prepare-touches-stack", "fork-handler-takes-a-lock"]
                .contains(&scenario)
            && (printed(&outcome, "handler_touches: ") == Some(0)
                || printed(&outcome, "on_touch=") == Some(0))
        {
            problems.push("the handler never touched a stashed stack".to_string());
        }
        if supported() && printed(&outcome, "children_that_restored: ") == Some(0) {
            problems.push("no child found the stack stashed".to_string());
        }
        if problems.is_empty() {
            println!("test {test} ... ok ({})", outcome.stdout.lines().last().unwrap_or_default());
        } else {
            println!("test {test} ... FAILED");
            failures.push(format!(
                "{test}: {}; stdout:\n{}\nstderr:\n{}",
                problems.join("; "),
                outcome.stdout,
                outcome.stderr
            ));
        }
    }
    // The child of pid 1 that is pid 1 too: in pid namespaces of its own,
    // where this process may make them (root, natively).
    let native = std::env::var("GREENERY_TEST_RUNNER").is_ok_and(|runner| runner.trim().is_empty())
        || std::env::var("GREENERY_TEST_RUNNER").is_err();
    for (test, scenario) in [
        ("a_child_with_its_parents_pid_restores_into_its_own_memory", "fork-child-with-the-parents-pid"),
        (
            "a_child_forked_before_the_first_stash_restores_into_its_own_memory",
            "early-fork-child-with-the-parents-pid",
        ),
    ] {
        // SAFETY: getuid has no preconditions.
        if native && unsafe { libc::getuid() } == 0 {
            let mut command = std::process::Command::new("unshare");
            command.args(["--pid", "--fork"]).arg(std::env::current_exe().unwrap());
            command.env(SCENARIO, scenario);
            let outcome = support::run(command, Duration::from_secs(120));
            if outcome.status.success()
                && outcome.stdout.contains("pid=1\n")
                && printed(&outcome, "wrong=") == Some(0)
                && (scenario.starts_with("early")
                    || printed(&outcome, "stashed=").is_some_and(|stashed| stashed > 0 || !supported()))
            {
                println!("test {test} ... ok");
            } else {
                println!("test {test} ... FAILED");
                failures.push(format!(
                    "{test}: {}; stdout:\n{}\nstderr:\n{}",
                    outcome.status, outcome.stdout, outcome.stderr
                ));
            }
        } else {
            println!("test {test} ... skipped (needs root to make a pid namespace, natively)");
        }
    }
    if failures.is_empty() {
        println!("\ntest result: ok. {} passed", scenarios.len() + 2);
    } else {
        for failure in &failures {
            println!("\n---- {failure}");
        }
        println!("\ntest result: FAILED. {} failed", failures.len());
        std::process::exit(1);
    }
}
