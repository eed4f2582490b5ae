//! Stashing the stacks of green threads that stay parked: their contents
//! come back intact however they are woken (an event, a timeout, a kill,
//! a socket), and a stack lent to another OS thread stays correct while
//! stashed.
//!
//! Built without the libtest harness, so that the first scenarios run while
//! the process has a single thread (the stash then needs no read-only
//! window) and the later ones while it has more (it does).

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use greenery::net::{TcpListener, TcpStream};
use greenery::stack::{self, StashCounts};
use greenery::sync::Event;
use greenery::{CoroutineResult, Generator};

/// The period of the hub's sweeps in these tests: a green thread parked for
/// [`PARKED`] has been stashed.
const PERIOD: Duration = Duration::from_millis(10);
const PARKED: Duration = Duration::from_millis(80);

/// Whether stacks can be stashed here (slabs with guard regions: Linux
/// 6.13+, not under qemu-user).
fn supported() -> bool {
    stack::stash_after().is_some()
}

fn counts() -> StashCounts {
    stack::stash_counts()
}

/// Whether the page holding `addr` is resident.
fn resident(addr: usize) -> bool {
    let page = 4096;
    let mut vec = 0u8;
    // SAFETY: one page of a live stack's mapping; mincore writes one byte.
    let rc = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, &mut vec) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec & 1 == 1
}

/// Recurses `depth` levels, each with locals of its own, and waits on
/// `event` at the bottom; returns a sum over every level's locals.
fn nest(depth: u64, event: &Event) -> u64 {
    let locals = black_box([depth; 16]);
    let below = if depth == 0 {
        event.wait().expect("the event is set");
        0
    } else {
        nest(depth - 1, event)
    };
    below + black_box(&locals).iter().sum::<u64>()
}

fn nest_sum(depth: u64) -> u64 {
    (0..=depth).map(|level| 16 * level).sum()
}

/// 200 green threads, each with a 4 KiB array and a recursion of its own,
/// park on an event long enough to be stashed; their stacks' pages go back
/// to the kernel; a touch from the main greenlet brings one back; then every
/// thread wakes and finds all its data as it left it.
fn parked_stacks_come_back_intact(shared: bool) {
    const THREADS: u64 = 200;
    let before = counts();
    let mut mappings_stashed = 0;
    let event = Rc::new(Event::new());
    let arrays = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (event, arrays) = (event.clone(), arrays.clone());
            greenery::spawn(move || {
                let mut array = [0u64; 512];
                for (j, slot) in array.iter_mut().enumerate() {
                    *slot = i * 1000 + j as u64;
                }
                let array = black_box(array);
                arrays.borrow_mut().push(array.as_ptr() as usize);
                let nested = nest(i % 7 * 10, &event);
                let intact = array.iter().enumerate().all(|(j, &value)| value == i * 1000 + j as u64);
                (intact, nested)
            })
        })
        .collect();
    greenery::sleep(PARKED);
    if supported() {
        let now = counts();
        assert!(now.stashed - before.stashed >= THREADS, "{before:?} -> {now:?}");
        assert_eq!(now.stashed_shared > before.stashed_shared, shared, "{before:?} -> {now:?}");
        // Every slab these stacks need exists by now.
        mappings_stashed = mappings();
        let addrs = arrays.borrow().clone();
        let gone = addrs.iter().filter(|&&addr| !resident(addr + 2048)).count();
        assert_eq!(gone, addrs.len(), "every parked stack gave its pages back");
        // A touch of a stashed stack from this greenlet brings it back. The
        // threads ran in the order they were spawned: the fourth array is
        // thread 3's.
        let addr = addrs[3];
        // SAFETY: the array lives on a parked green thread's stack, which
        // stays mapped while the thread is alive; nothing writes it now.
        let value = unsafe { std::ptr::read_volatile((addr as *const u64).add(300)) };
        assert_eq!(value, 3300, "a touch sees the stashed contents");
        assert!(counts().restored_on_touch > now.restored_on_touch, "the touch restored the stack");
        assert!(resident(addr + 2400));
    }
    event.set();
    for (i, handle) in handles.into_iter().enumerate() {
        let (intact, nested) = handle.get().unwrap();
        assert!(intact, "thread {i}'s array came back intact");
        assert_eq!(nested, nest_sum(i as u64 % 7 * 10), "thread {i}'s frames came back intact");
    }
    if supported() {
        let now = counts();
        assert!(now.restored - before.restored >= THREADS, "{before:?} -> {now:?}");
        // A restore changes the protection of a stack for a moment, which
        // splits its slab's mapping; the mapping must be whole again after
        // (two mappings left per restore would exhaust vm.max_map_count).
        // A little slack for the allocator's own mappings.
        let mappings_after = mappings();
        assert!(
            mappings_after <= mappings_stashed + 16,
            "{mappings_stashed} mappings with {THREADS} stacks stashed, {mappings_after} after they were restored"
        );
    }
}

/// The process's memory mappings, as `vm.max_map_count` counts them.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// A green thread's stack lent to a scoped OS thread, which keeps using it
/// while the green thread parks long enough to be stashed, more than once.
fn a_stack_lent_to_another_thread_stays_correct_while_stashed() {
    const INCREMENTS: u64 = 3000;
    let before = counts();
    let worker = greenery::spawn(|| {
        let counter = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let mut parks = 0;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for k in 0..INCREMENTS {
                    counter.fetch_add(1, Ordering::Relaxed);
                    if k % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                done.store(true, Ordering::Release);
            });
            while !done.load(Ordering::Acquire) {
                greenery::sleep(PERIOD * 3); // parked on the hub meanwhile
                parks += 1;
            }
        });
        (counter.into_inner(), parks)
    });
    let (count, parks) = worker.get().unwrap();
    assert_eq!(count, INCREMENTS, "no increment was lost");
    assert!(parks > 1);
    if supported() {
        let now = counts();
        assert!(now.stashed_shared > before.stashed_shared, "{before:?} -> {now:?}");
        assert!(now.restored_on_touch > before.restored_on_touch, "{before:?} -> {now:?}");
    }
}

/// A stashed green thread wakes for a timeout and for a kill; its
/// destructors run.
fn timeouts_and_kills_reach_stashed_threads() {
    let before = counts();
    let dropped = Rc::new(Cell::new(0));
    struct Guard(Rc<Cell<u32>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let event = Rc::new(Event::new());
    let timed = {
        let event = event.clone();
        greenery::spawn(move || {
            let array = black_box([7u8; 1000]);
            let outcome = greenery::with_timeout(PARKED, || event.wait());
            (outcome.is_err(), array.iter().all(|&b| b == 7))
        })
    };
    let killed: Vec<_> = (0..10)
        .map(|_| {
            let (event, dropped) = (event.clone(), dropped.clone());
            greenery::spawn(move || {
                let _guard = Guard(dropped);
                event.wait().unwrap();
            })
        })
        .collect();
    let (timed_out, intact) = timed.get().unwrap();
    assert!(timed_out && intact);
    if supported() {
        assert!(counts().stashed - before.stashed >= 11, "{before:?} -> {:?}", counts());
    }
    greenery::hub::killall(&killed, None).unwrap();
    assert_eq!(dropped.get(), 10, "every killed thread's destructors ran");
    for handle in killed {
        assert!(handle.get().unwrap_err().is_killed());
    }
}

/// A green thread parked while it holds a suspended generator, and one
/// parked from inside a generator's body (its stack pointer is on the
/// generator's stack, so it is not stashed): both carry on.
fn generators_across_stashes() {
    let event = Rc::new(Event::new());
    let holder = {
        let event = event.clone();
        greenery::spawn(move || {
            let mut squares = Generator::new(|co, ()| {
                for n in 1..=4u64 {
                    co.yield_(n * n);
                }
                "done"
            });
            let first = squares.next();
            event.wait().unwrap();
            let rest: Vec<u64> = squares.by_ref().collect();
            (first, rest, squares.return_value())
        })
    };
    let inside = {
        let event = event.clone();
        greenery::spawn(move || {
            let mut waiting = Generator::<(), u64, u64>::new(move |co, ()| {
                co.yield_(1);
                event.wait().unwrap(); // parks the green thread from here
                co.yield_(2);
                3
            });
            let mut seen = Vec::new();
            loop {
                match waiting.resume(()).unwrap() {
                    CoroutineResult::Yield(n) => seen.push(n),
                    CoroutineResult::Return(n) => break (seen, n),
                }
            }
        })
    };
    greenery::sleep(PARKED);
    event.set();
    assert_eq!(holder.get().unwrap(), (Some(1), vec![4, 9, 16], Some("done")));
    assert_eq!(inside.get().unwrap(), (vec![1, 2], 3));
}

/// A green thread blocked reading a socket is stashed, and reads what
/// arrives afterwards.
fn a_thread_blocked_on_a_socket_is_stashed_and_reads() {
    let before = counts();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = greenery::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).unwrap();
        buf
    });
    let mut client = TcpStream::connect(addr).unwrap();
    greenery::sleep(PARKED);
    if supported() {
        assert!(counts().stashed > before.stashed, "{before:?} -> {:?}", counts());
    }
    client.write_all(b"hello").unwrap();
    assert_eq!(&reader.get().unwrap(), b"hello");
}

/// With stashing off, nothing is stashed.
fn stashing_can_be_turned_off() {
    stack::set_stash_after(None);
    assert_eq!(stack::stash_after(), None);
    let before = counts();
    let event = Rc::new(Event::new());
    let waiter = {
        let event = event.clone();
        greenery::spawn(move || event.wait().unwrap())
    };
    greenery::sleep(PARKED);
    assert_eq!(counts().stashed, before.stashed);
    event.set();
    waiter.get().unwrap();
    stack::set_stash_after(Some(PERIOD));
}

fn run(name: &str, scenario: fn()) {
    scenario();
    println!("test {name} ... ok");
}

fn main() {
    // The monitor's thread would make this process multi-threaded from its
    // first hub on: keep it off while the scenarios below need this to be
    // the only thread.
    let monitor = greenery::hub::set_max_blocking_time(None);
    stack::set_stash_after(Some(PERIOD));
    if !supported() {
        println!("stashing is not supported here (no guard regions): checking behaviour only");
    }
    // While this is the process's only thread.
    run("parked_stacks_come_back_intact (alone)", || parked_stacks_come_back_intact(false));
    run("timeouts_and_kills_reach_stashed_threads", timeouts_and_kills_reach_stashed_threads);
    run("generators_across_stashes", generators_across_stashes);
    run(
        "a_thread_blocked_on_a_socket_is_stashed_and_reads",
        a_thread_blocked_on_a_socket_is_stashed_and_reads,
    );
    run("stashing_can_be_turned_off", stashing_can_be_turned_off);
    // From here on the process has other threads.
    greenery::hub::set_max_blocking_time(monitor);
    let (stop, idle) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || idle.recv());
    run("parked_stacks_come_back_intact (shared)", || parked_stacks_come_back_intact(true));
    run(
        "a_stack_lent_to_another_thread_stays_correct_while_stashed",
        a_stack_lent_to_another_thread_stays_correct_while_stashed,
    );
    drop(stop);
    let _ = other.join();
}
