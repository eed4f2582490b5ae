//! Issue 16.4: `hub::dump` lists every hub's green threads with their
//! state, what each is parked on and for how long (gevent's
//! `print_run_info`); `dump_on_signal` has one written on a signal.

use std::future;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenery::hub;
use greenery::sync::{Event, Mutex, Queue};
use greenery::{Builder, JoinHandle};

mod support;

/// The line of the green thread called `name`.
fn line_of<'a>(dump: &'a str, name: &str) -> &'a str {
    let needle = format!("'{name}' (spawned by");
    dump.lines().find(|line| line.contains(&needle)).unwrap_or_else(|| panic!("no '{name}' in:\n{dump}"))
}

#[test]
fn a_dump_names_each_kind_of_wait() {
    let event = Rc::new(Event::new());
    let queue = Rc::new(Queue::<u32>::unbounded());
    let mutex = Rc::new(Mutex::new(()));
    let (reader_end, _writer_end) = greenery::net::UnixStream::pair().unwrap();
    let mut threads = Vec::new();

    let waiting = event.clone();
    threads.push(Builder::new().name("on-event").spawn(move || {
        let _ = waiting.wait();
    }));
    let getting = queue.clone();
    threads.push(Builder::new().name("on-queue").spawn(move || {
        let _ = getting.get();
    }));
    let guard = mutex.lock().unwrap();
    let locking = mutex.clone();
    threads.push(Builder::new().name("on-mutex").spawn(move || drop(locking.lock())));
    let reader_fd = {
        use std::os::fd::AsRawFd;
        reader_end.as_raw_fd()
    };
    threads.push(Builder::new().name("on-fd").spawn(move || {
        let mut buffer = [0u8; 8];
        let _ = std::io::Read::read(&mut &reader_end, &mut buffer);
    }));
    threads.push(Builder::new().name("sleeper").spawn(|| greenery::sleep(Duration::from_secs(60))));
    let sleeper_id = threads.last().unwrap().id();
    let joined = Builder::new().name("joined").spawn(|| greenery::sleep(Duration::from_secs(60)));
    let joined_id = joined.id();
    threads.push(Builder::new().name("joiner").spawn(move || {
        let _ = joined.join();
    }));
    threads.push(Builder::new().name("on-future").spawn(|| greenery::block_on(future::pending::<()>())));
    let (release, blocked) = mpsc::channel::<()>();
    let on_pool = Builder::new().name("on-pool").spawn(move || hub::spawn_blocking(move || blocked.recv()));
    let unstarted: JoinHandle<()> = Builder::new().name("unstarted").unstarted(|| ());
    greenery::sleep(Duration::from_millis(20)); // let them all park
    let ready = Builder::new().name("ready").spawn(|| ());

    let dump = hub::format_dump();

    let this = std::thread::current().name().unwrap().to_owned();
    assert!(dump.starts_with("greenery: "), "{dump}");
    assert!(dump.contains(&format!("hub of thread '{this}' (tid ")), "{dump}");
    assert!(dump.contains("  main greenlet: running\n"), "{dump}");
    let event_line = line_of(&dump, "on-event");
    assert!(
        event_line.starts_with("  green thread 1 'on-event' (spawned by main at greenery/tests/hub_dump.rs:"),
        "{event_line}"
    );
    assert!(event_line.contains("): parked for "), "{event_line}");
    assert!(event_line.contains(" on Event 0x"), "{event_line}");
    assert!(line_of(&dump, "on-queue").contains(" on Queue.get 0x"), "{dump}");
    assert!(line_of(&dump, "on-mutex").contains(" on Mutex 0x"), "{dump}");
    assert!(line_of(&dump, "on-fd").contains(&format!(" on fd {reader_fd} (readable)")), "{dump}");
    let sleeper = line_of(&dump, "sleeper");
    assert!(sleeper.starts_with(&format!("  green thread {sleeper_id} 'sleeper'")), "{sleeper}");
    assert!(sleeper.contains(" on a sleep, deadline in "), "{sleeper}");
    assert!(line_of(&dump, "joiner").contains(&format!(" on the end of green thread {joined_id}")), "{dump}");
    assert!(line_of(&dump, "on-future").contains(" on a future (block_on)"), "{dump}");
    assert!(
        line_of(&dump, "on-pool").contains(" on a function on the blocking pool (spawn_blocking)"),
        "{dump}"
    );
    assert!(line_of(&dump, "unstarted").ends_with("): not started"), "{dump}");
    assert!(line_of(&dump, "ready").ends_with("): ready (not started)"), "{dump}");

    drop(guard);
    event.set();
    queue.put(1).unwrap();
    release.send(()).unwrap();
    for thread in &threads {
        thread.kill().unwrap();
    }
    on_pool.join().unwrap();
    unstarted.kill().unwrap();
    ready.join().unwrap();
}

#[test]
fn a_green_thread_spawned_by_another_names_its_spawner() {
    let parent = Builder::new().name("parent").spawn(|| {
        let child = Builder::new().name("child").spawn(|| greenery::sleep(Duration::from_secs(60)));
        greenery::sleep(Duration::from_millis(5));
        let dump = hub::format_dump();
        child.kill().unwrap();
        dump
    });
    let parent_id = parent.id();
    let dump = parent.get().unwrap();
    assert!(line_of(&dump, "child").contains(&format!("(spawned by green thread {parent_id} at ")), "{dump}");
    let parent_line = dump.lines().find(|line| line.contains("'parent'")).unwrap();
    assert!(parent_line.ends_with("): running"), "{dump}");
    assert!(dump.contains("  main greenlet: parked for "), "{dump}");
    assert!(dump.contains(&format!("on the end of green thread {parent_id}")), "{dump}");
}

#[test]
fn a_dump_asks_the_other_hubs_and_names_the_blocked_ones() {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let parked = std::thread::Builder::new()
        .name("parked-hub".into())
        .spawn(move || {
            let event = Rc::new(Event::new());
            let waiting = event.clone();
            let waiter = Builder::new().name("far-away").spawn(move || {
                let _ = waiting.wait();
            });
            greenery::sleep(Duration::from_millis(1));
            ready_tx.send(()).unwrap();
            // Keep the hub running its loop until told to stop.
            let stop = greenery::hub::spawn_blocking(move || stop_rx.recv());
            drop(stop);
            event.set();
            waiter.join().unwrap();
        })
        .unwrap();
    ready_rx.recv().unwrap();

    let (blocked_tx, blocked_rx) = mpsc::channel();
    let (unblock_tx, unblock_rx) = mpsc::channel::<()>();
    let blocked = std::thread::Builder::new()
        .name("blocked-hub".into())
        .spawn(move || {
            let waiting = greenery::spawn(|| ());
            blocked_tx.send(()).unwrap();
            unblock_rx.recv().unwrap(); // blocks the hub: std's channel
            waiting.join().unwrap();
        })
        .unwrap();
    blocked_rx.recv().unwrap();

    let dump = hub::format_dump();
    stop_tx.send(()).unwrap();
    unblock_tx.send(()).unwrap();
    parked.join().unwrap();
    blocked.join().unwrap();

    assert!(dump.contains("hub of thread 'parked-hub' (tid "), "{dump}");
    assert!(line_of(&dump, "far-away").contains("): parked for "), "{dump}");
    assert!(line_of(&dump, "far-away").contains(" on Event 0x"), "{dump}");
    let blocked_line = dump.lines().find(|line| line.starts_with("hub of thread 'blocked-hub'")).unwrap();
    assert!(blocked_line.contains("did not answer within 500 ms"), "{dump}");
}

const SCENARIO: &str = "GREENERY_DUMP_SCENARIO";

#[test]
fn scenario_dump_on_signal() {
    if std::env::var_os(SCENARIO).is_none() {
        return;
    }
    let event = Rc::new(Event::new());
    let waiting = event.clone();
    let waiter = Builder::new().name("signalled").spawn(move || {
        let _ = waiting.wait();
    });
    greenery::sleep(Duration::from_millis(1));
    let dumping = hub::dump_on_signal(libc::SIGUSR1).unwrap();
    // SAFETY: raise only sends this thread a signal, which has a handler.
    unsafe { libc::raise(libc::SIGUSR1) };
    // The monitor's thread writes the dump; this hub answers its question.
    greenery::sleep(Duration::from_millis(1500));
    dumping.cancel();
    event.set();
    waiter.join().unwrap();
    println!("SCENARIO DONE");
}

#[test]
fn a_signal_has_the_monitor_thread_write_a_dump() {
    let mut command = support::this_binary();
    command.args(["--exact", "scenario_dump_on_signal", "--nocapture", "--test-threads=1"]);
    command.env(SCENARIO, "1");
    let outcome = support::run(command, Duration::from_secs(60));
    assert!(outcome.status.success(), "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.contains("SCENARIO DONE"), "{}", outcome.stdout);
    assert!(outcome.stderr.contains("greenery: 1 hub (process "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("'signalled' (spawned by main at "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains(" on Event 0x"), "{}", outcome.stderr);
}

#[test]
fn a_stashed_green_thread_is_shown_as_stashed() {
    greenery::stack::set_stash_after(Some(Duration::from_millis(1)));
    let event = Rc::new(Event::new());
    let waiting = event.clone();
    let idle = Builder::new().name("idle").spawn(move || {
        let _ = waiting.wait();
    });
    greenery::sleep(Duration::from_millis(30)); // several sweeps
    let dump = hub::format_dump();
    event.set();
    idle.join().unwrap();
    let line = line_of(&dump, "idle");
    if greenery::stack::stash_after().is_some() {
        assert!(line.contains("): stashed, parked for "), "{dump}");
    } else {
        // Stacks are not stashed here (no slabs with guard regions, or
        // qemu-user): it is merely parked.
        assert!(line.contains("): parked for "), "{dump}");
    }
    assert!(line.contains(" on Event 0x"), "{dump}");
}
